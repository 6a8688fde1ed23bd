"""torch's remaining shape, construction and indexing pieces: broadcasting, stacking, splitting, scatters,
windows, quantiles and friends, composed from the primitives of ops.py (Getitem, IndexPut, Reshape,
Expand, Cat, Stack, Permute, Unfold), so gradients of any order come for free.

`ShapeMethods` is mixed into Tensor (tensor.py); the free functions are exported by the package, and
the methods that torch also offers as `torch.NAME(input, ...)` are in functions.METHODS.
"""
import builtins
import itertools
import math
import numbers
import warnings

import numpy as np

from . import backend, dtypes
from .methods import MaxMin, _computed, _constant, _tensor_argument, check_dim

INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _ops():
    from . import ops
    return ops


def _tensor_cls():
    from .tensor import Tensor
    return Tensor


def _tensors(op, tensors):
    """`*tensors` or one list/tuple of them, each checked."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    return tuple(_tensor_argument(op, f"tensors[{k}]", t) for k, t in enumerate(tensors))


def _int(op, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{op}(): argument '{name}' must be int, not {type(value).__name__}")
    return int(value)


def _view(t, shape):
    """t broadcast to `shape` as a view of it (a new tensor even when the shape is t's, as torch's)."""
    return _ops().Expand.apply(t, shape=tuple(shape))


def _zeros(like, shape, dtype=None):
    return _constant(like.xp.zeros(shape, dtype=like.dtype if dtype is None else dtype))


# ----------------------------------------------------------------------------- broadcasting

def broadcast_shapes(*shapes):
    """The shape tensors of `shapes` broadcast to (an int is a 1-D shape), as torch.broadcast_shapes."""
    shapes = [(s,) if isinstance(s, numbers.Integral) else tuple(s) for s in shapes]
    ndim = builtins.max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for index, shape in enumerate(shapes):
        for k, n in enumerate(shape, ndim - len(shape)):
            if n < 0:
                raise RuntimeError(f"Trying to create tensor with negative dimension {n}: {list(shape)}")
            if out[k] == 1:
                out[k] = n
            elif n not in (1, out[k]):
                raise RuntimeError(f"Attempting to broadcast a dimension of length {n} at {k - ndim}! Mismatching "
                                   f"argument at index {index} had {shape}; but expected shape should be "
                                   f"broadcastable to {out}")
    return tuple(out)


def broadcast_tensors(*tensors):
    """Views of `tensors` broadcast to one shape."""
    tensors = _tensors("broadcast_tensors", tensors)
    shape = broadcast_shapes(*(t.shape for t in tensors))
    return tuple(_view(t, shape) for t in tensors)


# ----------------------------------------------------------------------------- stacking

def atleast_1d(*tensors):
    return _at_least("atleast_1d", tensors, lambda t: t.reshape(1) if t.ndim == 0 else t)


def atleast_2d(*tensors):
    return _at_least("atleast_2d", tensors, lambda t: t.reshape((1,) * (2 - t.ndim) + t.shape) if t.ndim < 2 else t)


def atleast_3d(*tensors):
    def lift(t):
        shape = {0: (1, 1, 1), 1: (1,) + t.shape + (1,), 2: t.shape + (1,)}.get(t.ndim)
        return t if shape is None else t.reshape(shape)
    return _at_least("atleast_3d", tensors, lift)


def _at_least(op, tensors, lift):
    """lift(each tensor) (itself when it already has the dims): one tensor for one, else a tuple."""
    single = len(tensors) == 1 and not isinstance(tensors[0], (list, tuple))
    lifted = tuple(lift(t) for t in _tensors(op, tensors))
    return lifted[0] if single else lifted


def _cat(tensors, dim):
    from .tensor import cat
    return cat(tensors, dim)


def hstack(tensors):
    tensors = atleast_1d(tuple(tensors))
    return _cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return _cat(atleast_2d(tuple(tensors)), 0)


row_stack = vstack


def dstack(tensors):
    return _cat(atleast_3d(tuple(tensors)), 2)


def column_stack(tensors):
    columns = [t.reshape(t.numel(), 1) if t.ndim < 2 else t for t in _tensors("column_stack", (tuple(tensors),))]
    return _cat(columns, 1)


def meshgrid(*tensors, indexing=None):
    """Coordinate grids (views) of 0-d or 1-D tensors: indexing 'ij' (the default) or 'xy' (the first two
    dims swapped)."""
    tensors = _tensors("meshgrid", tensors)
    indexing = "ij" if indexing is None else indexing
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but received: {indexing}")
    for t in tensors:
        if t.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: {t.shape}")
    order = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        order[0], order[1] = 1, 0
    shape = tuple(tensors[k].numel() for k in order)
    grids = []
    for k, t in enumerate(tensors):
        place = [1] * len(tensors)
        place[order.index(k)] = t.numel()  # each tensor varies along its own dim of the grid
        grids.append(_view(t.reshape(tuple(place)), shape))
    return tuple(grids)


def block_diag(*tensors):
    """The tensors (0-d, 1-D as one row, or 2-D) on the diagonal of one matrix, zeros elsewhere."""
    tensors = _tensors("block_diag", tensors)
    for k, t in enumerate(tensors):
        if t.ndim > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer dimensions. Input {k} has "
                               f"{t.ndim} dimensions")
    if not tensors:
        return _constant(np.zeros((1, 0), dtype=dtypes.get_default_dtype()))
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = dtypes.promote_types(dtype, t.dtype)
    blocks = [t.reshape((1,) * (2 - t.ndim) + t.shape).to(dtype) for t in tensors]
    width = builtins.sum(b.shape[1] for b in blocks)
    rows, left = [], 0
    for b in blocks:
        r, c = b.shape
        rows.append(_cat([_zeros(b, (r, left)), b, _zeros(b, (r, width - left - c))], 1))
        left += c
    return _cat(rows, 0)


def cartesian_prod(*tensors):
    """Every tuple of one element from each 1-D tensor, as rows (the tensor itself for one)."""
    tensors = _tensors("cartesian_prod", tensors)
    for t in tensors:
        if t.ndim != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    from .tensor import stack
    return stack([g.reshape(-1) for g in meshgrid(*tensors, indexing="ij")], 1)


def combinations(input, r=2, with_replacement=False):
    """The r-element combinations of a 1-D tensor's elements, as rows (itertools' order)."""
    input = _tensor_argument("combinations", "input", input)
    if input.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    r = _int("combinations", "r", r)
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return _zeros(input, (0,))
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    rows = np.array(list(pick(range(input.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    return input[input.xp.asarray(rows)]


# ----------------------------------------------------------------------------- index constructors

def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    return _triangle_indices(np.tril_indices, row, col, offset, dtype, device)


def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    return _triangle_indices(np.triu_indices, row, col, offset, dtype, device)


def _triangle_indices(indices, row, col, offset, dtype, device):
    """(2, N) coordinates of a row x col matrix's triangle, row by row, as torch.tril_indices."""
    dtype = np.dtype(np.int64) if dtype is None else dtypes.check(dtype, "tril_indices")
    rows, cols = indices(row, offset, col) if row and col else (np.zeros(0, np.int64),) * 2
    return _constant(backend.to_device(np.stack([rows, cols]).astype(dtype), backend.check_device(device)))


def unravel_index(indices, shape):
    """The coordinates in `shape` of flat `indices`, one tensor per dim (indices wrap modulo the size,
    as torch's)."""
    indices = _tensor_argument("unravel_index", "indices", indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"expected 'indices' to be integer dtype, but got {indices.dtype}")
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
    if any(n < 0 for n in shape):
        raise ValueError("'shape' cannot have negative values, but got " + str(shape))
    flat, coordinates = indices.array.astype(np.int64), []
    for n in reversed(shape):
        coordinates.append(flat % n if n else flat * 0)
        flat = flat // n if n else flat
    return tuple(_computed(c, "unravel_index") for c in reversed(coordinates))


# ----------------------------------------------------------------------------- statistics helpers

def _quantile(input, q, dim, keepdim, interpolation, ignore_nan):
    op = "nanquantile" if ignore_nan else "quantile"
    if input.dtype.kind != "f":
        raise RuntimeError(f"{op}() input tensor must be either float or double dtype")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"{op}() interpolation must be one of linear, lower, higher, midpoint or nearest. "
                         f"Got {interpolation}")
    q_tensor = isinstance(q, _tensor_cls())
    if q_tensor:
        if q.dtype != input.dtype:
            raise RuntimeError(f"{op}() q tensor must be same dtype as the input tensor")
        if q.ndim > 1:
            raise RuntimeError(f"{op}() q must be a scalar or 1D tensor")
        qs = q.array.reshape(-1)
    else:
        qs = np.array([float(q)])
    if not ((qs >= 0) & (qs <= 1)).all():
        raise RuntimeError(f"{op}() q must be in the range [0, 1] but got {q if not q_tensor else qs.tolist()}")
    if not input.numel():
        raise IndexError(f"{op}() input tensor must be non-empty")
    if dim is None:
        values, out_shape = input.reshape(-1), ((1,) * input.ndim if keepdim else ())
    else:
        d = check_dim(op, dim, input.ndim)
        values = input.movedim(d, -1) if input.ndim else input.reshape(1)
        out_shape = input.shape[:d] + ((1,) if keepdim else ()) + input.shape[d + 1:]
    xp = input.xp
    ordered = values.sort(-1).values                               # NaN last
    n = ordered.shape[-1]
    nan = xp.isnan(ordered.array)
    # ranks q * (count - 1) as torch's: quantile reads the last value (a NaN) of a row with a NaN, nanquantile
    # counts the values that are not NaN and reads the first of a row with none
    if ignore_nan:
        scale = n - 1 - nan.sum(-1, keepdims=True)
        shape = (len(qs),) + scale.shape
        filled = xp.broadcast_to((qs.reshape((-1,) + (1,) * scale.ndim) * scale) < 0, shape), 0
    else:
        scale = xp.full(nan.shape[:-1] + (1,), n - 1)
        shape = (len(qs),) + scale.shape
        filled = xp.broadcast_to(nan.any(-1, keepdims=True), shape), n - 1
    scale = _constant(scale.astype(input.dtype))
    q_column = (q if q_tensor else _constant(xp.asarray(qs, dtype=input.dtype))).reshape((-1,) + (1,) * ordered.ndim)
    ranks = _where(_constant(xp.ascontiguousarray(filled[0])), filled[1], q_column * scale) \
        if filled[0].any() else q_column * scale
    picks = {"lower": xp.floor, "higher": xp.ceil, "nearest": xp.round}
    if interpolation in picks:
        result = _gather_ranks(ordered, picks[interpolation](ranks.array))
    else:
        below = xp.floor(ranks.array)
        low, high = _gather_ranks(ordered, below), _gather_ranks(ordered, xp.ceil(ranks.array))
        result = low.lerp(high, 0.5 if interpolation == "midpoint" else ranks - _constant(below))
    result = result.reshape((len(qs),) + out_shape)
    return result if q_tensor and q.ndim else result.reshape(out_shape)


def _where(condition, x, y):
    from .tensor import where
    return where(condition, x, y)


def _gather_ranks(ordered, ranks):
    """ordered's values at integer `ranks` (shape (Q, *lead, 1)) along its last dim: (Q, *lead, 1)."""
    index = ordered.xp.broadcast_to(ranks.astype(np.int64), ranks.shape)
    q = index.shape[0]
    expanded = _view(ordered.unsqueeze(0), (q,) + ordered.shape)
    return expanded.gather(-1, _constant(index))


def _within(op, t, dim):
    """(t with dim moved last (a 0-d tensor as one element), dim, keepdim's shape for the values)."""
    d = check_dim(op, dim, t.ndim)
    return (t.movedim(d, -1) if t.ndim else t.reshape(1)), d


def _finish(t, values, indices, d, keepdim):
    """values and indices of shape t.shape without dim d; keepdim puts a 1 there."""
    if keepdim and t.ndim:
        values, indices = values.unsqueeze(d), indices.unsqueeze(d)
    return values, indices


def _first_run(array, along_rows):
    """Where each run of equal values (consecutive, along axis 0) starts: a bool per index of axis 0."""
    if not len(array):
        return np.zeros(0, dtype=bool)
    different = array[1:] != array[:-1]
    if along_rows and array.ndim > 1:
        different = different.reshape(len(array) - 1, -1).any(1)
    return np.concatenate([[True], different])


# ----------------------------------------------------------------------------- methods

class ShapeMethods:
    """Tensor methods of torch's for shapes, indices, scatters, windows and statistics."""

    def broadcast_to(self, size):
        shape = tuple(self.shape[k - (len(size) - self.ndim)] if n == -1 else n for k, n in enumerate(size))
        for i, n in enumerate(self.shape):
            k = len(shape) - self.ndim + i
            if k < 0 or (n != 1 and n != shape[k]):
                raise RuntimeError(f"The expanded size of the tensor ({shape[k] if k >= 0 else '?'}) must match the "
                                   f"existing size ({n}) at non-singleton dimension {k}.  Target sizes: "
                                   f"{list(size)}.  Tensor sizes: {list(self.shape)}")
        return _view(self, shape)

    # --- splitting
    def tensor_split(self, indices_or_sections, dim=0):
        """Views along dim: `sections` nearly equal pieces (the first n % sections one longer) or pieces
        between `indices` (a list, or a tensor: 0-d for sections, 1-D for indices)."""
        if self.ndim == 0:
            raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims")
        d = check_dim("tensor_split", dim, self.ndim)
        split = indices_or_sections
        if isinstance(split, _tensor_cls()):
            if split.dtype != np.int64:
                raise RuntimeError(f"tensor_split expected tensor_indices_or_sections to have Long dtype, but got "
                                   f"{split.dtype}")
            if split.ndim > 1:
                raise RuntimeError("tensor_split expected tensor_indices_or_sections to be a zero-dimensional or "
                                   f"one-dimensional tensor, but got a tensor with {split.ndim} dims")
            split = int(split.array) if split.ndim == 0 else split.array.tolist()
        n = self.shape[d]
        if isinstance(split, numbers.Integral):
            if split <= 0:
                raise RuntimeError(f"number of sections must be larger than 0, got {split}")
            size, extra = divmod(n, split)
            bounds = list(itertools.accumulate([0] + [size + (k < extra) for k in range(split)]))
        else:
            bounds = [0] + [int(i) for i in split] + [n]
        lead = (slice(None),) * d
        return tuple(self[lead + (slice(lo, builtins.max(lo, hi)),)] for lo, hi in itertools.pairwise(bounds))

    def _split_at(self, op, dim, min_dims, indices_or_sections):
        if self.ndim < min_dims:
            raise RuntimeError(f"torch.{op} requires a tensor with at least {min_dims} dimension, but got a tensor "
                               f"with {self.ndim} dimensions!")
        if isinstance(indices_or_sections, numbers.Integral):
            n = self.shape[dim]
            if indices_or_sections == 0 or n % indices_or_sections:
                raise RuntimeError(f"torch.{op} attempted to split along dimension {dim}, but the size of the "
                                   f"dimension {n} is not divisible by the split_size {indices_or_sections}!")
        return self.tensor_split(indices_or_sections, dim)

    def hsplit(self, indices_or_sections):
        return self._split_at("hsplit", 0 if self.ndim == 1 else 1, 1, indices_or_sections)

    def vsplit(self, indices_or_sections):
        return self._split_at("vsplit", 0, 2, indices_or_sections)

    def dsplit(self, indices_or_sections):
        return self._split_at("dsplit", 2, 3, indices_or_sections)

    def split_with_sizes(self, split_sizes, dim=0):
        d = check_dim("split_with_sizes", dim, self.ndim)
        sizes = [int(s) for s in split_sizes]
        if builtins.sum(sizes) != self.shape[d] or any(s < 0 for s in sizes):
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {self.shape[d]} (input "
                               f"tensor's size at dimension {d}), but got split_sizes={sizes}")
        return self.split(sizes, d)

    # --- flips and diagonals
    def fliplr(self):
        if self.ndim < 2:
            raise RuntimeError(f"fliplr: input must be >= 2-d; got a {self.ndim}-d tensor")
        return self.flip(1)

    def flipud(self):
        if self.ndim < 1:
            raise RuntimeError("flipud: input must be >= 1-d; got a 0-d tensor")
        return self.flip(0)

    def diag_embed(self, offset=0, dim1=-2, dim2=-1):
        """The last dim put on the `offset` diagonal of new matrices in dims dim1 and dim2 (zeros elsewhere)."""
        offset = _int("diag_embed", "offset", offset)
        d1, d2 = (check_dim("diag_embed", d, self.ndim + 1) for d in (dim1, dim2))
        if d1 == d2:
            raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
        n = self.shape[-1] if self.ndim else 1
        m, xp = n + abs(offset), self.xp
        rows, cols = xp.arange(n) + builtins.max(-offset, 0), xp.arange(n) + builtins.max(offset, 0)
        lead = self.shape[:-1]
        index = (Ellipsis, rows, cols)
        matrices = _ops().IndexPut.apply(_zeros(self, lead + (m, m)), self.reshape(lead + (n,)), index=index)
        return matrices.movedim((-2, -1), (d1, d2))

    def diagflat(self, offset=0):
        return self.reshape(-1).diag(offset)

    # --- selecting and scattering
    def select(self, dim, index):
        """The slice at `index` of dim (a view, one dim fewer)."""
        d = check_dim("select", dim, self.ndim, needs_dims=True)
        index, n = _int("select", "index", index), self.shape[d]
        if not -n <= index < n:
            raise IndexError(f"select(): index {index} out of range for tensor of size {list(self.shape)} at "
                             f"dimension {d}")
        return self[(slice(None),) * d + (index % n,)]

    def _scatter_into(self, op, src, index, expected):
        src = _tensor_argument(op, "src", src)
        if src.shape != expected:
            raise RuntimeError(f"{op}(): expected src to have a size equal to the slice of self. src size = "
                               f"{list(src.shape)}, slice size = {list(expected)}")
        return _ops().IndexPut.apply(self, src.to(self.dtype), index=index)

    def select_scatter(self, src, dim, index):
        """A copy of this tensor with src written at select(dim, index)."""
        d = check_dim("select_scatter", dim, self.ndim, needs_dims=True)
        self.select(d, index)  # checks the index
        index = (slice(None),) * d + (int(index) % self.shape[d],)
        return self._scatter_into("select_scatter", src, index, self[index].shape)

    def slice_scatter(self, src, dim=0, start=None, end=None, step=1):
        """A copy of this tensor with src written at the slice start:end:step of dim."""
        d = check_dim("slice_scatter", dim, self.ndim, needs_dims=True)
        index = (slice(None),) * d + (slice(start, end, step),)
        return self._scatter_into("slice_scatter", src, index, self[index].shape)

    def diagonal_scatter(self, src, offset=0, dim1=0, dim2=1):
        """A copy of this tensor with src written on diagonal(offset, dim1, dim2)."""
        expected = self.diagonal(offset, dim1, dim2).shape
        d1, d2 = (check_dim("diagonal_scatter", d, self.ndim) for d in (dim1, dim2))
        matrices = self.movedim((d1, d2), (-2, -1))
        n = expected[-1]
        xp = self.xp
        index = (Ellipsis, xp.arange(n) + builtins.max(-offset, 0), xp.arange(n) + builtins.max(offset, 0))
        return matrices._scatter_into("diagonal_scatter", src, index, expected).movedim((-2, -1), (d1, d2))

    # --- windows, reshapes
    def unfold(self, dimension, size, step):
        """The windows of `size` every `step` along `dimension`: that dim becomes the window count and a new
        last dim holds each window. A copy here (torch's is a view): writes to it do not reach this tensor."""
        d = check_dim("unfold", dimension, self.ndim)
        size, step = _int("unfold", "size", size), _int("unfold", "step", step)
        n = self.shape[d] if self.ndim else 1
        if size > n:
            raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is {size}")
        if step <= 0:
            raise RuntimeError(f"step is {step} but must be > 0")
        if size < 0:
            raise RuntimeError(f"size is {size} but must be >= 0")
        x = self.reshape(1) if not self.ndim else self
        windows = _ops().Unfold.apply(x.movedim(d, -1), kernel=(size,), stride=(step,), dilation=(1,))
        out = windows.movedim(-1, d)   # (*lead with the count at d, size)
        return out.reshape(out.shape[-1:]) if not self.ndim else out

    def ravel(self):
        return self.reshape(-1)

    def narrow_copy(self, dim, start, length):
        return self.narrow(dim, start, length).clone()

    def sum_to_size(self, *size):
        """Summed down to `size`, which this tensor's shape must broadcast from (expand's adjoint)."""
        size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
        lead = self.ndim - len(size)
        if lead < 0 or any(n != 1 and n != m for n, m in zip(size, self.shape[lead:])):
            raise RuntimeError(f"size {{{list(size)}}} is not expandable to size {{{list(self.shape)}}}.")
        dims = tuple(range(lead)) + tuple(lead + k for k, n in enumerate(size) if n == 1 and self.shape[lead + k] != 1)
        return self.sum(dims).reshape(size) if dims else self

    def argwhere(self):
        return self.nonzero()

    def unique_consecutive(self, return_inverse=False, return_counts=False, dim=None):
        """The first of each run of equal consecutive values (slices along dim, when given); with
        return_inverse each element's run, with return_counts each run's length. No gradient, as torch."""
        if dim is None:
            array = self.array.reshape(-1)
        else:
            d = check_dim("unique_consecutive", dim, self.ndim)
            array = np.moveaxis(backend.to_numpy(self.array), d, 0)
        array = backend.to_numpy(array)
        starts = _first_run(array, dim is not None)
        run = np.cumsum(starts) - 1
        counts = np.diff(np.append(np.flatnonzero(starts), len(array)))
        output = array[starts] if dim is None else np.moveaxis(array[starts], 0, d)
        inverse = run.reshape(self.shape) if dim is None else run
        results = [_computed(backend.to_device(output, self.device), "unique_consecutive")]
        for wanted, value in ((return_inverse, inverse), (return_counts, counts)):
            if wanted:
                results.append(_computed(backend.to_device(value.astype(np.int64), self.device),
                                         "unique_consecutive"))
        return results[0] if len(results) == 1 else tuple(results)

    # --- products
    def vdot(self, other):
        other = _tensor_argument("vdot", "other", other)
        if self.dtype != other.dtype:
            raise RuntimeError(f"dot : expected both vectors to have same dtype, but found {self.dtype} and "
                               f"{other.dtype}")
        return self.dot(other)

    def cross(self, other, dim=None):
        """The cross product of 3-vectors along dim (when None, the first dim of size 3, as torch's
        deprecated default, with its warning), the inputs broadcast."""
        other = _tensor_argument("cross", "other", other)
        a, b = broadcast_tensors(self, other)
        if dim is None:
            warnings.warn("Using torch.cross without specifying the dim arg is deprecated.", UserWarning,
                          stacklevel=2)
            dim = next((k for k, n in enumerate(a.shape) if n == 3), None)
            if dim is None:
                raise RuntimeError("no dimension of size 3 in input")
        d = check_dim("cross", dim, a.ndim)
        if a.shape[d] != 3:
            raise RuntimeError(f"linalg.cross: inputs dimension {d} must have length 3. Got {self.shape[d]} and "
                               f"{other.shape[d]}")
        xp = a.xp
        turn1, turn2 = xp.asarray([1, 2, 0]), xp.asarray([2, 0, 1])
        return (a.index_select(d, _constant(turn1)) * b.index_select(d, _constant(turn2))
                - a.index_select(d, _constant(turn2)) * b.index_select(d, _constant(turn1)))

    # --- statistics
    def quantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        """The q-th quantiles (q a number or 1-D tensor, whose dim then leads) along dim, or of all elements;
        NaN where a NaN is among the values."""
        return _quantile(self, q, dim, keepdim, interpolation, ignore_nan=False)

    def nanquantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        """quantile over the values that are not NaN (NaN where there are none)."""
        return _quantile(self, q, dim, keepdim, interpolation, ignore_nan=True)

    def nanmedian(self, dim=None, keepdim=False):
        """The lower median of the values that are not NaN (NaN where there are none); with dim,
        (values, indices)."""
        if dim is None:
            if not self.numel():
                return self.sum() + float("nan") if self.dtype.kind == "f" else self.median()
            return self.reshape(-1).nanmedian(0).values
        values, d = _within("nanmedian", self, dim)
        order = values.argsort(-1)
        xp = self.xp
        valid = (~xp.isnan(values.array)).sum(-1, keepdims=True) if values.dtype.kind == "f" else \
            xp.full(values.shape[:-1] + (1,), values.shape[-1])
        rank = xp.where(valid > 0, (valid - 1) // 2, values.shape[-1] - 1)
        index = order.gather(-1, _constant(rank.astype(np.int64)))
        return MaxMin(*_finish(self, values.gather(-1, index).squeeze(-1), index.squeeze(-1), d, keepdim))

    def mode(self, dim=-1, keepdim=False):
        """(values, indices): the most frequent value along dim (the smallest of equally frequent ones) and
        the index of its last occurrence, as torch's CPU mode."""
        values, d = _within("mode", self, dim)
        host = backend.to_numpy(values.array)
        rows = host.reshape(-1, host.shape[-1])
        found = np.zeros(len(rows), dtype=np.int64)
        for r, row in enumerate(rows):
            if not len(row):
                raise IndexError(f"mode(): Expected reduction dim {d} to have non-zero size.")
            distinct, counts = np.unique(row, return_counts=True)
            value = distinct[np.argmax(counts)]
            found[r] = np.flatnonzero((row == value) | (np.isnan(row) & np.isnan(value)))[-1]
        index = _computed(backend.to_device(found.reshape(host.shape[:-1] + (1,)), self.device), "mode")
        return MaxMin(*_finish(self, values.gather(-1, index).squeeze(-1), index.squeeze(-1), d, keepdim))

    # --- properties and questions
    def is_nonzero(self):
        n = self.numel()
        if n != 1:
            raise RuntimeError("is_nonzero: Boolean value of Tensor with " + ("no values" if n == 0 else "more than one value")
                               + " is ambiguous")
        return bool(self.array.reshape(-1)[0])

    def is_same_size(self, other):
        return self.shape == _tensor_argument("is_same_size", "other", other).shape

    @property
    def is_cpu(self):
        return str(self.device) == "cpu"

    def get_device(self):
        """-1 on the CPU, else the GPU's index, as torch."""
        return -1 if self.is_cpu else int(str(self.device).partition(":")[2] or 0)

    @property
    def mH(self):
        if self.ndim < 2:
            raise RuntimeError(f"tensor.mH is only supported on matrices or batches of matrices. Got "
                               f"{self.ndim}-D tensor.")
        return self.transpose(-2, -1)

    @property
    def H(self):
        if self.ndim > 2 or self.ndim == 1:
            batches = " For batches of matrices, consider using tensor.mH" if self.ndim > 2 else ""
            raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got {self.ndim}-D "
                               f"tensor.{batches}")
        return self.transpose(0, 1) if self.ndim == 2 else _view(self, ())

    def adjoint(self):
        if self.ndim < 2:
            raise RuntimeError(f"tensor.adjoint() is only supported on matrices or batches of matrices. Got "
                               f"{self.ndim}-D tensor.")
        return self.transpose(-2, -1)

    def stride(self, dim=None):
        """The step in elements between neighbours along each dim, read from the array's layout."""
        strides = tuple(s // self.array.itemsize for s in self.array.strides)
        return strides if dim is None else strides[check_dim("stride", dim, self.ndim)]

    def storage_offset(self):
        """Where the first element is, in elements from the start of the memory this tensor shares."""
        owner = self.array
        while getattr(owner, "base", None) is not None and hasattr(owner.base, "__array_interface__"):
            owner = owner.base
        start = _address(owner) if owner is not self.array else _address(self.array)
        return (_address(self.array) - start) // self.array.itemsize

    def new(self, *args):
        """Legacy: an uninitialised tensor of the sizes given (ints or a torch.Size-like tuple; an empty 1-D
        one for none), or a list's values, with this tensor's dtype and device."""
        if len(args) == 1 and isinstance(args[0], list):
            return self.new_tensor(args[0])
        sizes = args[0] if len(args) == 1 and isinstance(args[0], tuple) else args
        return self.new_empty(tuple(sizes) or (0,))

    def resize_(self, *sizes):
        """Resize in place, as torch for a fresh tensor (a leaf, outside any graph, that shares its memory
        with no other): the first elements kept, new ones uninitialised. Anything else is refused."""
        sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else tuple(sizes)
        storage = _resizable_storage(self)
        if storage is None:
            raise RuntimeError("resize_: only a fresh tensor can be resized here (a leaf that does not require "
                               "grad, owns its memory and shares it with no view); use reshape or a new tensor")
        count = math.prod(sizes)
        if count > storage.size:  # a larger storage, the old elements first (the rest uninitialised, as torch)
            grown = self.xp.empty(count, dtype=self.dtype)
            grown[:storage.size] = storage
            storage = grown
        self.array = storage[:count].reshape(sizes)  # a smaller size keeps the storage, as torch's
        self._version += 1
        return self


def _resizable_storage(t):
    """The flat memory a fresh tensor's elements start, or None for any other tensor."""
    if t.requires_grad or t._ctx is not None or t._shared is not None or not t.array.flags.c_contiguous:
        return None
    owner = t.array if t.array.base is None else t.array.base
    if owner.ndim != 1 or not owner.flags.c_contiguous or _address(owner) != _address(t.array):
        return t.array.reshape(-1) if t.array.base is None else None
    return owner


def _address(array):
    return array.__array_interface__["data"][0] if hasattr(array, "__array_interface__") else array.data.ptr


# ----------------------------------------------------------------------------- free functions

def tensordot(a, b, dims=2, out=None):
    """Contract the last `dims` dims of a with the first of b, or the dims listed in a pair of lists."""
    a, b = _tensor_argument("tensordot", "a", a), _tensor_argument("tensordot", "b", b)
    if isinstance(dims, _tensor_cls()):
        dims = dims.array.tolist()
    if isinstance(dims, numbers.Integral):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > builtins.min(a.ndim, b.ndim):
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims}")
        dims_a, dims_b = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        dims_a, dims_b = ([d] if isinstance(d, numbers.Integral) else list(d) for d in dims)
    if len(dims_a) != len(dims_b):
        raise RuntimeError("both dimension lists should have same length")
    dims_a = [check_dim("tensordot", d, a.ndim) for d in dims_a]
    dims_b = [check_dim("tensordot", d, b.ndim) for d in dims_b]
    for da, db in zip(dims_a, dims_b):
        if a.shape[da] != b.shape[db]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size {a.shape[da]} in dim {da} "
                               f"and second has size {b.shape[db]} in dim {db}")
    free_a = [d for d in range(a.ndim) if d not in dims_a]
    free_b = [d for d in range(b.ndim) if d not in dims_b]
    k = math.prod(a.shape[d] for d in dims_a)
    left = a.permute(free_a + dims_a).reshape(math.prod(a.shape[d] for d in free_a), k)
    right = b.permute(dims_b + free_b).reshape(k, math.prod(b.shape[d] for d in free_b))
    return (left @ right).reshape(tuple(a.shape[d] for d in free_a) + tuple(b.shape[d] for d in free_b))


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """The p-norm distances between the rows of x1 (*, P, M) and of x2 (*, R, M): (*, P, R). Computed
    directly for every compute_mode (torch's matrix-product route agrees to rounding)."""
    x1, x2 = _tensor_argument("cdist", "x1", x1), _tensor_argument("cdist", "x2", x2)
    if x1.ndim < 2 or x2.ndim < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X1 got: {x1.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: {x2.shape[-1]}")
    if p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values, got {p}")
    if compute_mode not in ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                            "donot_use_mm_for_euclid_dist"):
        raise ValueError(f"{compute_mode} is not a valid value for compute_mode")
    difference = (x1.unsqueeze(-2) - x2.unsqueeze(-3)).abs()
    if p == 0:
        return difference.sign().sum(-1)  # the count of differing coordinates, with torch's zero gradient
    if p == math.inf:
        return difference.amax(-1)
    if p == 1:
        return difference.sum(-1)
    return (difference ** p).sum(-1) ** (1 / p)


def _trapezoid_steps(op, y, x, dx, dim):
    d = check_dim(op, dim, y.ndim, needs_dims=True)
    n = y.shape[d]
    lead = (slice(None),) * d
    left, right = y[lead + (slice(None, n - 1),)], y[lead + (slice(1, None),)]
    if x is None:
        return (left + right) * (0.5 * (1 if dx is None else dx)), d
    x = _tensor_argument(op, "x", x)
    if x.ndim == 1:
        if x.shape[0] != n:
            raise RuntimeError(f"{op}: There must be one `x` value for each sample point")
        widths = x.diff().reshape((n - 1 if n else 0,) + (1,) * (y.ndim - d - 1))
    else:
        widths = x.diff(dim=dim)
    return widths * (left + right) * 0.5, d


def trapezoid(y, x=None, *, dx=None, dim=-1):
    """The trapezoidal rule along dim: samples y at points x (or spaced dx, 1 by default)."""
    y = _tensor_argument("trapezoid", "y", y)
    areas, d = _trapezoid_steps("trapezoid", y, x, dx, dim)
    return areas.sum(d)


def trapz(y, x=None, *, dx=None, dim=-1):
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    """The running sums of the trapezoidal rule along dim (one fewer than the samples)."""
    y = _tensor_argument("cumulative_trapezoid", "y", y)
    areas, d = _trapezoid_steps("cumulative_trapezoid", y, x, dx, dim)
    return areas.cumsum(d)


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False):
    """A tensor of obj, sharing its memory where it can (a tensor, a NumPy array) unless copy=True;
    copy=False refuses where a copy is needed."""
    from .factory import tensor
    Tensor = _tensor_cls()
    wanted = None if dtype is None else dtypes.check(dtype, "asarray")
    if isinstance(obj, (Tensor, np.ndarray)) or backend.is_cupy_array(obj):
        t = obj if isinstance(obj, Tensor) else _constant(obj)
        target = backend.check_device(device) if device is not None else t.device
        same = (wanted is None or wanted == t.dtype) and target == t.device
        if copy is False and not same:
            raise ValueError("asarray: can't alias the data without copying (a dtype or device change); "
                             "pass copy=None or copy=True")
        if same and not copy:
            if isinstance(obj, Tensor):
                return obj if not requires_grad or obj.requires_grad else obj.detach().requires_grad_(True)
            return t.requires_grad_(True) if requires_grad else t
        out = t.detach().to(device=target, dtype=t.dtype if wanted is None else wanted)
        out = out.clone() if out.array is t.array or np.shares_memory(out.array, t.array) else out
        return out.requires_grad_(True) if requires_grad else out
    if copy is False:
        raise ValueError("asarray: can't alias Python data without copying; pass copy=None or copy=True")
    return tensor(obj, dtype=dtype, device=device, requires_grad=requires_grad)


def scalar_tensor(s, *, dtype=None, device=None, requires_grad=False):
    """A 0-d tensor of the number s, of the default float dtype unless dtype is given (ints too, as torch)."""
    from .factory import tensor
    return tensor(float(s) if dtype is None else s, dtype=dtype, device=device, requires_grad=requires_grad)


FUNCTIONS = {f.__name__: f for f in (
    broadcast_shapes, broadcast_tensors, atleast_1d, atleast_2d, atleast_3d, hstack, vstack, dstack, column_stack,
    meshgrid, block_diag, cartesian_prod, combinations, tril_indices, triu_indices, unravel_index, tensordot,
    cdist, trapezoid, trapz, cumulative_trapezoid, asarray, scalar_tensor)}
FUNCTIONS["row_stack"] = row_stack
