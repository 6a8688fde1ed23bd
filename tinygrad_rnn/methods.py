"""The rest of PyTorch's Tensor methods, composed from the primitives of ops.py.

Nothing here has a VJP of its own: each method is a few primitives, so gradients (of any order) and
forward-mode tangents come for free. Tensor (tensor.py) inherits these; in-place methods follow
PyTorch's rule that a leaf which requires grad is changed only under `no_grad`.
"""
import builtins
import collections
import functools
import math
import numbers
import warnings

import numpy as np

from . import backend

MaxMin = collections.namedtuple("MaxMin", ["values", "indices"])  # torch.return_types.max / min
AminMax = collections.namedtuple("aminmax", ["min", "max"])  # torch.return_types.aminmax
TENSOR_TYPE_NAMES = {np.dtype(kind): name for kind, name in (
    (np.float16, "HalfTensor"), (np.float32, "FloatTensor"), (np.float64, "DoubleTensor"), (np.uint8, "ByteTensor"),
    (np.int8, "CharTensor"), (np.int16, "ShortTensor"), (np.int32, "IntTensor"), (np.int64, "LongTensor"),
    (np.bool_, "BoolTensor"))}  # the legacy tensor type names torch's Tensor.type() uses


def _tensor_cls():
    from .tensor import Tensor
    return Tensor


def _ops():
    from . import ops
    return ops


def check_dim(op, dim, ndim, new_axis=False, needs_dims=False):
    """A dim in range, made non-negative; IndexError with PyTorch's wording otherwise.

    A 0-d tensor takes dim 0 and -1 as if it had one dim of size 1, except where `needs_dims`
    (an op that reads the dim's size: size, roll, narrow).
    """
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}: dim must be an int; got {type(dim).__name__} {dim!r}")
    if needs_dims and ndim == 0:
        raise IndexError(f"{op}: Dimension specified as {dim} but tensor has no dimensions")
    top = ndim + 1 if new_axis else max(ndim, 1)
    if not -top <= dim < top:
        raise IndexError(f"{op}: Dimension out of range (expected to be in range of [{-top}, {top - 1}], "
                         f"but got {dim})")
    return int(dim) % top


def numpy_aliases(method):
    """Take NumPy's axis= and keepdims= for dim= and keepdim=, as torch's methods do."""
    @functools.wraps(method)
    def method_with_aliases(self, *args, axis=None, keepdims=None, **kwargs):
        for alias, value, name in (("axis", axis, "dim"), ("keepdims", keepdims, "keepdim")):
            if value is not None:
                if name in kwargs:
                    raise TypeError(f"{method.__name__}: give {name}= or {alias}=, not both")
                kwargs[name] = value
        return method(self, *args, **kwargs)
    return method_with_aliases


def check_dims(op, dims, ndim):
    """Several dims, each in range, none given twice (as torch refuses)."""
    dims = [check_dim(op, d, ndim) for d in dims]
    for d in dims:
        if dims.count(d) > 1:
            raise RuntimeError(f"{op}: dim {d} appears multiple times in the list of dims")
    return dims


def sizes_argument(op, sizes, name="size"):
    """torch's `*sizes` or one tuple/list of them, as a tuple; at least one is required."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    elif not sizes:
        raise TypeError(f"{op}: missing the {name} argument")
    if all(n.__class__ is int for n in sizes):
        return sizes  # the common case, kept as given: no new tuple on every reshape
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"{op}: {name} must be ints; got {type(n).__name__} {n!r} in {tuple(sizes)}")
    return tuple(int(n) for n in sizes)


def _tensor_argument(op, name, value):
    from .tensor import _tensor_argument
    return _tensor_argument(op, name, value)


def _same_dtype(op, input, other):
    """`other`, when its dtype is input's; TypeError naming both otherwise (torch does not promote here)."""
    if other.dtype != input.dtype:
        raise TypeError(f"{op}: expected both operands to have the same dtype, but got {input.dtype} and "
                        f"{other.dtype}")
    return other


def _value_read(what):
    """A Python answer from the values (a bool, a string): an op tape that forbids reads refuses it."""
    from .tensor import _value_read
    _value_read(what)


def _constant(array):
    return _tensor_cls()._make(array, None)


def _computed(array, what):
    """A constant NumPy computed from tensors' values (an argmax's indices, a nonzero): an op tape notes
    it, so that a traced step that uses it is refused rather than replayed with this call's value."""
    from .tensor import computed_outside
    return computed_outside(_constant(array), what)


def _converted(tensor, dtype):
    return tensor if tensor.dtype == dtype else _ops().Convert.apply(tensor, dtype=np.dtype(dtype))


class TensorMethods:
    __slots__ = ()

    # --- size and layout
    def size(self, dim=None):
        """The shape (a tuple), or one dim's size."""
        return self.shape if dim is None else self.shape[check_dim("size", dim, self.ndim, needs_dims=True)]

    def dim(self):
        return self.ndim

    ndimension = dim

    def numel(self):
        return int(self.array.size)

    nelement = numel

    def element_size(self):
        return self.array.itemsize

    def contiguous(self):
        return self

    def is_contiguous(self):
        return bool(self.array.flags.c_contiguous)

    @property
    def is_cuda(self):
        return self.device == "cuda"

    def clone(self):
        """A copy with its own storage, of the same dtype; gradients flow through it."""
        return self * 1 if self.dtype.kind == "f" else _ops().Convert.apply(self, dtype=self.dtype)

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with <= 2 dimensions, but it has {self.ndim} (shape {self.shape})")
        return self if self.ndim < 2 else self.transpose(0, 1)

    @numpy_aliases
    def narrow(self, dim, start, length):
        if self.ndim == 0:
            raise RuntimeError("narrow: cannot be applied to a 0-dim tensor")
        dim = check_dim("narrow", dim, self.ndim)
        n = self.shape[dim]
        start = start + n if start < 0 else start
        if not (0 <= start <= n and 0 <= length and start + length <= n):
            raise IndexError(f"narrow: start ({start}) + length ({length}) exceeds dimension size ({n}) "
                             f"of dim {dim} of shape {self.shape}")
        return self[(slice(None),) * dim + (slice(start, start + length),)]

    def repeat(self, *sizes):
        """Tile the tensor: dim k repeated sizes[k] times (new leading dims for extra sizes)."""
        sizes = sizes_argument("repeat", sizes, "repeats")
        if any(r < 0 for r in sizes):
            raise ValueError(f"repeat: repeats must be non-negative; got {sizes}")
        if len(sizes) < self.ndim:
            raise ValueError(f"repeat: number of repeat dims ({len(sizes)}) can not be smaller than the number "
                             f"of dims of the tensor ({self.ndim}, shape {self.shape})")
        shape = (1,) * (len(sizes) - self.ndim) + self.shape
        interleaved = tuple(x for n in shape for x in (1, n))
        expanded = tuple(x for r, n in zip(sizes, shape) for x in (r, n))
        tiled = self.reshape(interleaved).expand(expanded).reshape(tuple(r * n for r, n in zip(sizes, shape)))
        return tiled.clone() if all(r == 1 for r in sizes) else tiled  # repeats of 1 would be a view

    def roll(self, shifts, dims=None):
        """The elements shifted along dims, those past the end coming round to the start; a new tensor."""
        if dims is None:
            return self.reshape(-1).roll(shifts, 0).reshape(self.shape)
        shifts = shifts if isinstance(shifts, (tuple, list)) else (shifts,)
        dims = dims if isinstance(dims, (tuple, list)) else (dims,)
        if len(shifts) != len(dims):
            raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length")
        out = self
        for shift, dim in zip(shifts, dims):
            dim = check_dim("roll", dim, self.ndim, needs_dims=True)
            n = self.shape[dim]
            k = shift % n if n else 0
            if k:
                lead = (slice(None),) * dim
                out = _cat([out[lead + (slice(n - k, n),)], out[lead + (slice(0, n - k),)]], dim)
        return self.clone() if out is self else out

    def flip(self, *args, dims=None):
        """The order of the elements reversed along each of `dims` (flip(0, 1), flip((0, 1)) or
        flip(dims=...)), in a new tensor as torch's, never a view of this one."""
        if dims is not None and args:
            raise TypeError("flip: give the dims once, positionally or as dims=")
        dims = set(check_dims("flip", sizes_argument("flip", args if dims is None else (dims,), "dims"), self.ndim))
        return self[tuple(slice(None, None, -1) if d in dims else slice(None) for d in range(self.ndim))].clone()

    def tril(self, diagonal=0):
        """The lower triangle of the last two dims (j <= i + diagonal), zeros elsewhere."""
        return _triangle(self, "tril", diagonal)

    def triu(self, diagonal=0):
        """The upper triangle of the last two dims (j >= i + diagonal), zeros elsewhere."""
        return _triangle(self, "triu", diagonal)

    # --- selecting by index tensors: each an index into a primitive Getitem, whose VJP adds back
    def index_select(self, dim, index):
        """The entries `index` (1-D integers) along dim."""
        dim = check_dim("index_select", dim, self.ndim)  # a 0-d tensor: dim 0 or -1, as torch
        index = _indices("index_select", index, self, max_ndim=1)
        backend.check_indices(index, self.shape[dim] if self.ndim else 1, "index_select")
        if not self.ndim:
            if index.size != 1:
                raise IndexError(f"index_select: index to a 0-d tensor can have only 1 value; got {index.size}")
            return self.reshape(1)[index.reshape(())]
        return self[(slice(None),) * dim + (index.reshape(-1),)]

    def gather(self, dim, index):
        """out[..., i_dim, ...] = self[..., index[..., i_dim, ...], ...]: index has self's number of dims and
        no larger a size than self on the other dims."""
        dim = check_dim("gather", dim, self.ndim)
        index = _indices("gather", index, self)
        if index.ndim not in (self.ndim, builtins.max(self.ndim, 1)) and index.size:
            raise ValueError(f"gather: index {index.shape} and input {self.shape} must have the same number of dims")
        if any(n > m for d, (n, m) in enumerate(zip(index.shape, self.shape)) if d != dim):
            raise ValueError(f"gather: index {index.shape} is larger than input {self.shape} outside dim {dim}")
        backend.check_indices(index, self.shape[dim] if self.ndim else 1, "gather")
        if not self.ndim:
            return self.reshape(1)[index]
        grid = list(self.xp.ix_(*[self.xp.arange(n) for n in index.shape])) if index.ndim else []
        grid[dim] = index
        return self[tuple(grid)]

    def masked_select(self, mask):
        """The elements where the (broadcast) bool mask holds, as a 1-D tensor."""
        mask = _indices("masked_select", mask, self, kinds="b")
        shape = _broadcast_shape("masked_select", self, mask)
        return self.expand(shape)[self.xp.broadcast_to(mask, shape)]

    def repeat_interleave(self, repeats=None, dim=None, *, output_size=None):
        """Each element repeated `repeats` times (an int, or one count per element) along dim (the
        flattened tensor when dim is None). Without repeats, this 1-D tensor holds the counts and the
        result repeats their indices (torch.repeat_interleave(counts)). output_size, where given, must
        be the result's size along dim."""
        if repeats is None:
            if dim is not None or self.ndim != 1 or self.dtype.kind not in "iu":
                raise TypeError(f"repeat_interleave: without repeats, the tensor must hold 1-D integer counts; "
                                f"got shape {self.shape}, dtype {self.dtype}")
            counts = _constant(self.xp.arange(self.shape[0], dtype=np.int64))
            return counts.repeat_interleave(self, output_size=output_size)
        x = self.reshape(-1) if dim is None else self
        dim = 0 if dim is None else check_dim("repeat_interleave", dim, self.ndim, needs_dims=True)
        counts = repeats if isinstance(repeats, numbers.Integral) else _indices("repeat_interleave", repeats, self,
                                                                                 max_ndim=1)
        counts = backend.to_numpy(np.asarray(counts) if isinstance(counts, numbers.Integral) else counts)
        if np.any(counts < 0):
            raise ValueError(f"repeat_interleave: repeats must be non-negative; got {repeats}")
        if counts.size not in (1, x.shape[dim]):
            raise ValueError(f"repeat_interleave: repeats must have the same size as input along dim {dim}, but got "
                             f"{counts.size} repeats for size {x.shape[dim]}")
        # the index is made on the host, where the counts are read: CuPy's repeat takes no array of counts
        index = np.repeat(np.arange(x.shape[dim]), counts.reshape(-1) if counts.size > 1 else int(counts.reshape(-1)[0]))
        if output_size is not None and output_size != index.size:
            raise RuntimeError(f"repeat_interleave: output_size {output_size} does not match the repeated size "
                               f"{index.size}")
        return x.index_select(dim, _constant(x.xp.asarray(index)))

    def sort(self, dim=-1, descending=False, stable=False):
        """(values, indices) sorted along dim; equal values keep their order; NaN counts as the largest."""
        indices = self.argsort(dim, descending, stable)
        return MaxMin(self.gather(dim, indices) if self.ndim else self * 1, indices)

    def argsort(self, dim=-1, descending=False, stable=False):
        dim = check_dim("argsort", dim, self.ndim)
        if not self.ndim:
            return _constant(self.xp.zeros((), dtype=np.int64))
        if not descending:
            return _computed(self.xp.argsort(self.array, axis=dim, kind="stable").astype(np.int64), "argsort")
        # descending and stable: sort the reversed order ascending, then read it backwards
        reversed_order = self.xp.argsort(self.xp.flip(self.array, dim), axis=dim, kind="stable")
        return _computed((self.shape[dim] - 1 - self.xp.flip(reversed_order, dim)).astype(np.int64), "argsort")

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """(values, indices) of the k largest (smallest with largest=False) along dim."""
        n = self.shape[check_dim("topk", dim, self.ndim)] if self.ndim else check_dim("topk", dim, 0) + 1
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k <= n:
            raise ValueError(f"topk: k ({k!r}) must lie in [0, {n}], the size of dim {dim} of {self.shape}")
        values, indices = self.sort(dim, descending=largest)
        if not self.ndim:
            return MaxMin(values, indices)
        return MaxMin(values.narrow(dim, 0, k), indices.narrow(dim, 0, k))

    # --- arithmetic by name, as torch's methods (the operators are in tensor.py)
    def add(self, other, *, alpha=1):
        return self + (other if alpha == 1 else _scaled(self, other, alpha))

    def sub(self, other, *, alpha=1):
        if self.dtype.kind == "b" or isinstance(other, (bool, np.bool_)) or getattr(other, "dtype", None) == np.bool_:
            return self - other  # refused there, by name, whatever alpha is
        return self - (other if alpha == 1 else _scaled(self, other, alpha))

    def mul(self, other):
        return self * other

    def div(self, other, *, rounding_mode=None):
        """True division, or rounded "trunc" / "floor" as torch (a rounded quotient has no gradient)."""
        if rounding_mode is None:
            return self / other
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor'; got {rounding_mode!r}")
        from .dtypes import result_type
        b = self._operand(other, "div")
        if not isinstance(b, (bool, int, float)) and not isinstance(other, _tensor_cls()):
            b = self._lift(other, "div").array   # a list or array is data of this tensor, as for `/`
        a, xp = self.array, self.xp
        dtype = result_type(a, b)
        if dtype.kind == "b":
            raise TypeError(f"div: rounding_mode={rounding_mode!r} is not implemented for bool tensors")
        if dtype.kind in "iu":  # exact in integers: no float round trip
            a, b = a.astype(dtype, copy=False), xp.asarray(b).astype(dtype, copy=False)
            if math.prod(np.broadcast_shapes(a.shape, b.shape)) and bool((b == 0).any()):
                # torch's RuntimeError: an error of the interface (a ZeroDivisionError is a crash of ours)
                raise RuntimeError(f"div: ZeroDivisionError, integer division by zero (shapes {self.shape} and "
                                   f"{xp.shape(b)})")
            if rounding_mode == "floor":
                return _computed(xp.floor_divide(a, b), "integer division")
            return _computed(xp.sign(a) * xp.sign(b) * xp.floor_divide(xp.abs(a), xp.abs(b)), "integer division")
        divisor = other if isinstance(other, _tensor_cls()) else _constant(xp.asarray(b))
        x, y = self._as_dtype(dtype), divisor._as_dtype(dtype)
        return _ops().with_zero_gradient(_ops().RoundedDiv.apply(x, y, mode=rounding_mode), x, y)

    subtract, multiply, divide, true_divide = sub, mul, div, div

    def floor_divide(self, other):
        """self // other: the quotient rounded down, as Python's // and torch's."""
        return self.div(other, rounding_mode="floor")

    __floordiv__ = floor_divide

    def __rfloordiv__(self, other):
        return self._lift(other, "floor_divide").floor_divide(self)

    def remainder(self, other):
        """self - other * floor(self / other): the sign of `other`, as Python's % and torch.remainder."""
        return _remainder(self, other, "floor", "remainder")

    def fmod(self, other):
        """self - other * trunc(self / other): the sign of `self`, as C's fmod and torch.fmod."""
        return _remainder(self, other, "trunc", "fmod")

    # --- comparisons: elementwise boolean tensors, as in PyTorch
    def _compare(self, other, name):
        """An op (Compare), not an array computed here: a traced step sees the mask it makes."""
        from .tensor import _numeric
        if isinstance(other, _tensor_cls()):
            if other.device != self.device:
                raise backend.DeviceError(f"{name}: operands are on {self.device} and {other.device}")
        elif isinstance(other, (bool, int, float)):
            return _ops().Compare.apply(self, op=name, other=other)
        else:
            other = _constant(backend.to_device(_numeric(other, name), self.device))
        return _ops().Compare.apply(self, other, op=name)

    def __eq__(self, other): return self._compare(other, "eq")
    def __ne__(self, other): return self._compare(other, "ne")
    def __lt__(self, other): return self._compare(other, "lt")
    def __le__(self, other): return self._compare(other, "le")
    def __gt__(self, other): return self._compare(other, "gt")
    def __ge__(self, other): return self._compare(other, "ge")
    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__
    __hash__ = object.__hash__

    def __invert__(self):
        if self.dtype.kind not in "biu":
            raise TypeError(f"~ (bitwise_not) is only defined for bool and integer tensors; got {self.dtype}")
        return _ops().Bitwise.apply(self, op="invert")

    # bitwise and logical: bool and integer tensors, promoted as torch does
    def __and__(self, other): return self._bitwise(other, "bitwise_and")
    def __or__(self, other): return self._bitwise(other, "bitwise_or")
    def __xor__(self, other): return self._bitwise(other, "bitwise_xor")
    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def _bitwise(self, other, name):
        from .dtypes import result_type
        operand = other if isinstance(other, (bool, int, float)) else self._lift(other, name)
        theirs = operand if isinstance(operand, (bool, int, float)) else operand.array
        dtype = result_type(self.array, theirs)
        if dtype.kind not in "biu":  # torch's NotImplementedError: its kernel has no float case
            raise NotImplementedError(f"{name}: only bool and integer operands are supported; got {self.dtype} and "
                            f"{getattr(theirs, 'dtype', type(theirs).__name__)}")
        if isinstance(operand, (bool, int, float)):
            return _ops().Bitwise.apply(_converted(self, dtype), op=name, other=operand)
        return _ops().Bitwise.apply(_converted(self, dtype), _converted(operand, dtype), op=name)

    def __contains__(self, element):
        """`element in tensor`: whether any element equals it, as torch."""
        if not isinstance(element, (_tensor_cls(), bool, int, float, np.generic)):
            raise TypeError(f"Tensor.__contains__ only supports Tensor or scalar, but you passed in a "
                            f"{type(element).__name__}")
        _value_read("__contains__")
        return bool((self == element).array.any())

    def equal(self, other):
        """True if both have the same shape and elements."""
        other = _tensor_argument("equal", "other", other)
        _value_read("equal")
        return self.shape == other.shape and bool((self.array == other.array).all())

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        other = _tensor_argument("allclose", "other", other)
        _broadcast_shape("allclose", self, other)
        _check_tolerances("allclose", self, other, rtol, atol)
        _value_read("allclose")
        return bool(self.xp.allclose(self.array, other.array, rtol=rtol, atol=atol, equal_nan=equal_nan))

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """|self - other| <= atol + rtol * |other| elementwise, a bool tensor."""
        _check_tolerances("isclose", self, other, rtol, atol)
        return _computed(self.xp.isclose(self.array, self._operand(other, "isclose"), rtol=rtol, atol=atol,
                                         equal_nan=equal_nan), "isclose")

    def isnan(self):
        return _ops().Classify.apply(self, op="isnan")

    def isinf(self):
        return _ops().Classify.apply(self, op="isinf")

    def isfinite(self):
        return _ops().Classify.apply(self, op="isfinite")

    @numpy_aliases
    def any(self, dim=None, keepdim=False):
        axes = reduction_dims("any", self, dim, empty_means_all=False)
        return _computed(self.xp.asarray(self.array.any(axis=axes, keepdims=keepdim)), "any")

    @numpy_aliases
    def all(self, dim=None, keepdim=False):
        axes = reduction_dims("all", self, dim, empty_means_all=False)
        return _computed(self.xp.asarray(self.array.all(axis=axes, keepdims=keepdim)), "all")

    # --- elementwise math
    def abs(self):
        if self.dtype.kind == "b":
            raise TypeError("abs: not implemented for bool tensors")
        # torch's gradient: sign(x), 0 at 0 and at NaN; + 0 turns -0 * 0 into abs(-0) = +0
        return self * _ops().Sign.apply(self, nan_as_zero=True) + 0

    __abs__ = absolute = abs

    def sign(self):
        """-1, 0 or 1; NaN gives 0, as in torch."""
        if self.dtype.kind == "b":
            return _ops().Convert.apply(self, dtype=self.dtype)
        signs = _ops().Sign.apply(self, nan_as_zero=True)
        return _ops().with_zero_gradient(signs, self) if self.dtype.kind == "f" else signs

    sgn = sign  # torch's sign for complex numbers too; for real ones it is sign

    def signbit(self):
        """Whether the sign bit is set: True for -0.0 and a negative NaN too, never for bools."""
        return _ops().Classify.apply(self, op="signbit")

    def isposinf(self):
        return _ops().Compare.apply(self, op="eq", other=np.inf)

    def isneginf(self):
        return _ops().Compare.apply(self, op="eq", other=-np.inf)

    def isreal(self):
        """True everywhere: tensors here hold no complex numbers."""
        return _ops().Classify.apply(self, op="isreal")

    def deg2rad(self):
        return self._floating() * (math.pi / 180)

    def rad2deg(self):
        return self._floating() * (180 / math.pi)

    def hypot(self, other):
        return _floating_pair(self, "hypot", other, _ops().Hypot)

    def logaddexp(self, other):
        return _floating_pair(self, "logaddexp", other, _ops().LogAddExp)

    def logaddexp2(self, other):
        return _floating_pair(self, "logaddexp2", other, _ops().LogAddExp, base2=True)

    def xlogy(self, other):
        """self * log(other), 0 where self is 0 unless other is NaN; integers compute in the default float."""
        return self._binary(_ops().XLogY, other)

    def copysign(self, other):
        """|self| with the sign (bit) of other; integers compute in the default float."""
        return self._binary(_ops().CopySign, other)

    def heaviside(self, values):
        """0 where self < 0, `values` where self == 0, 1 where self > 0 (NaN gives 0), as torch: values a
        tensor of self's dtype that broadcasts with it. A step has no gradient."""
        from .tensor import where
        values = _tensor_argument("heaviside", "values", values)
        if values.dtype != self.dtype:
            raise RuntimeError(f"heaviside: not implemented for tensors with different dtypes ({self.dtype} and "
                               f"{values.dtype})")
        x = self.detach()
        return where(x == 0, values.detach(), (x > 0).to(dtype=self.dtype))

    def float_power(self, exponent):
        """self ** exponent computed in float64 (the result's dtype whatever the operands'), as torch."""
        return self.double() ** (exponent.double() if isinstance(exponent, _tensor_cls()) else exponent)

    def pow(self, exponent):
        return self ** exponent

    def square(self):
        x = self.long() if self.dtype.kind == "b" else self  # as torch: squares of bools count
        return x * x

    def rsqrt(self):
        return 1 / self._floating().sqrt()  # -0 gives -inf and -inf NaN, as torch

    def reciprocal(self):
        return 1 / self._floating()

    def neg(self):
        return -self

    negative = neg

    def view_as(self, other):
        return self.reshape(_tensor_argument("view_as", "other", other).shape)

    reshape_as = view_as

    def movedim(self, source, destination):
        """Dims `source` moved to the places `destination` (ints or sequences), the others kept in order."""
        sources = [source] if isinstance(source, numbers.Integral) else list(source)
        targets = [destination] if isinstance(destination, numbers.Integral) else list(destination)
        if len(sources) != len(targets):
            raise ValueError(f"movedim: Invalid source or destination dims: source ({sources} dims) should contain "
                             f"the same number of dims as destination ({targets} dims)")
        sources = [check_dim("movedim", d, self.ndim) for d in sources]
        targets = [check_dim("movedim", d, self.ndim) for d in targets]
        if len(set(sources)) != len(sources) or len(set(targets)) != len(targets):
            raise ValueError(f"movedim: repeated dim in source {sources} or destination {targets}")
        rest = iter(d for d in range(self.ndim) if d not in sources)
        placed = dict(zip(targets, sources))
        return self.permute(*[placed[k] if k in placed else next(rest) for k in range(self.ndim)])

    def moveaxis(self, source, destination):
        return self.movedim(source, destination)

    def swapdims(self, dim0, dim1):
        return self.transpose(dim0, dim1)

    def addcmul(self, tensor1, tensor2, *, value=1):
        """self + value * tensor1 * tensor2."""
        return self + tensor1 * tensor2 * value

    def addcdiv(self, tensor1, tensor2, *, value=1):
        """self + value * tensor1 / tensor2."""
        return self + tensor1 / tensor2 * value

    def log2(self):
        return self._floating().log() * (1 / math.log(2))

    def log10(self):
        return self._floating().log() * (1 / math.log(10))

    def exp2(self):
        return (self._floating() * math.log(2)).exp()

    def sinh(self):
        x = self._floating()
        return (x.expm1() - (-x).expm1()) * 0.5

    def cosh(self):
        x = self._floating()
        return (x.exp() + (-x).exp()) * 0.5

    def tan(self):
        x = self._floating()
        return x.sin() / x.cos()

    def logit(self, eps=None):
        """log(p / (1 - p)), p clamped to [eps, 1 - eps] first when eps is given."""
        return _ops().Logit.apply(self._floating(), eps=eps)

    def nansum(self, dim=None, keepdim=False):
        """The sum with NaNs counted as 0 (and given no gradient)."""
        from .tensor import where
        return where(self.isnan(), 0.0, self).sum(dim=() if dim is None else dim, keepdim=keepdim)

    def nanmean(self, dim=None, keepdim=False):
        """The mean of the values that are not NaN."""
        present = (~self.isnan()).to(dtype=self.dtype)
        return self.nansum(dim, keepdim) / present.sum(dim=() if dim is None else dim, keepdim=keepdim)

    def count_nonzero(self, dim=None):
        """How many elements are not zero (over dim), int64, as torch."""
        nonzero = (self != 0).long()
        return nonzero.sum() if dim is None else nonzero.sum(dim=dim)

    def diff(self, n=1, dim=-1, prepend=None, append=None):
        """The n-th forward difference along dim, prepend and append joined first, as torch.diff."""
        d = check_dim("diff", dim, self.ndim)
        x = _cat([t for t in (prepend, self, append) if t is not None], d) if prepend is not None or \
            append is not None else self
        for _ in range(n):
            size = x.shape[d]
            x = x.narrow(d, 1, size - 1) - x.narrow(d, 0, size - 1) if x.dtype.kind != "b" else \
                x.narrow(d, 1, size - 1) != x.narrow(d, 0, size - 1)
        return x

    def lerp(self, end, weight):
        """self + weight * (end - self), in torch's two forms (from the nearer end, by weight < 0.5)."""
        end = _tensor_argument("lerp", "end", end)
        low = (weight < 0.5) if isinstance(weight, numbers.Real) else (
            _ops().Compare.apply(weight, op="lt", other=0.5).array)
        difference = end - self
        near_start, near_end = self + difference * weight, end - difference * (1 - weight)
        if isinstance(low, bool):
            return near_start if low else near_end
        return _ops().where_tensor(low, near_start, near_end)

    def addmm(self, mat1, mat2, *, beta=1, alpha=1):
        """beta * self + alpha * (mat1 @ mat2); with beta 0 self is not read (its NaNs stay out), as torch."""
        mat1, mat2 = _tensor_argument("addmm", "mat1", mat1), _tensor_argument("addmm", "mat2", mat2)
        if mat1.ndim != 2 or mat2.ndim != 2:
            raise ValueError(f"addmm: mat1 and mat2 must be matrices; got shapes {mat1.shape} and {mat2.shape}")
        _one_dtype("addmm", self, mat1, mat2)
        return _beta_plus_alpha("addmm", self, mat1 @ mat2, beta, alpha)

    def trace(self):
        """The sum of a matrix's diagonal."""
        if self.ndim != 2:
            raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {self.ndim} (shape {self.shape})")
        return self.diag().sum()

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        """NaN, +inf and -inf replaced (by 0 and the dtype's largest and smallest by default); their
        gradient is 0, as torch's."""
        from .tensor import where
        if self.dtype.kind != "f":
            return self.clone()
        limits = np.finfo(self.dtype)

        def number(value):   # of this dtype: the largest float64 would overflow a default float32
            return _constant(self.xp.asarray(value, dtype=self.dtype))
        infinite = where(self > 0, number(limits.max if posinf is None else posinf),
                         number(limits.min if neginf is None else neginf))
        return where(self.isfinite(), self, where(self.isnan(), number(nan), infinite).detach())

    def maximum(self, other):
        """The larger of each pair; NaN wins, and a tie sends half the gradient each way (as torch)."""
        return _where_pick(self, other, "maximum", "gt")

    def minimum(self, other):
        return _where_pick(self, other, "minimum", "lt")

    @numpy_aliases
    def cumsum(self, dim, *, dtype=None):
        """Running sums along dim; integer and bool tensors sum in int64 unless `dtype` says otherwise, as torch."""
        dim = check_dim("cumsum", dim, self.ndim)
        x = self
        if dtype is not None:
            x = x.to(dtype=dtype)
        elif x.dtype.kind in "biu":
            x = x.long()
        if x.ndim == 0:
            return x.clone()
        if x.dtype.kind != "f":  # no gradient: NumPy's own sum, in the tensor's dtype
            return _computed(x.xp.cumsum(x.array, axis=dim, dtype=x.dtype), "cumsum of integers")
        if x.dtype == np.float16:  # the running sum in float32, as torch's: a partial sum may pass half's range
            return _ops().Cumsum.apply(x.float(), axis=dim).half()
        return _ops().Cumsum.apply(x, axis=dim)

    def unbind(self, dim=0):
        """The slices along dim, that dim removed, as a tuple (torch.unbind)."""
        if self.ndim == 0:
            raise IndexError("unbind: Dimension specified as 0 but tensor has no dimensions")
        dim = check_dim("unbind", dim, self.ndim)
        lead = (slice(None),) * dim
        return tuple(self[lead + (k,)] for k in range(self.shape[dim]))

    @numpy_aliases
    def softmax(self, dim, dtype=None):
        from .nn import functional
        return functional.softmax(self, _one_dim("softmax", dim), dtype=dtype)

    @numpy_aliases
    def log_softmax(self, dim, dtype=None):
        from .nn import functional
        return functional.log_softmax(self, _one_dim("log_softmax", dim), dtype=dtype)

    # --- rounding: torch's zero gradient (frac's is 1); integer tensors are already whole
    def floor(self):
        return _round(self, "floor")

    def ceil(self):
        return _round(self, "ceil")

    def trunc(self):
        return _round(self, "trunc")

    fix = trunc

    def round(self, decimals=0):
        """Half to even (0.5 -> 0, 1.5 -> 2), at `decimals` places (negative: tens, hundreds...)."""
        if isinstance(decimals, bool) or not isinstance(decimals, numbers.Integral):
            raise TypeError(f"round: argument 'decimals' must be an int, not {type(decimals).__name__}")
        return _round(self, "round", int(decimals))

    def frac(self):
        """x - trunc(x), the sign of x kept; gradient 1."""
        if self.dtype.kind != "f":
            raise NotImplementedError(f"frac: not implemented for {self.dtype} (only floating point tensors)")
        return self - self.trunc()

    # --- products: a tree and a scan of multiplications, so gradients (zeros included) are the products'
    @numpy_aliases
    def prod(self, dim=None, keepdim=False, *, dtype=None):
        """The product over dim (all elements when None); integer and bool tensors multiply in int64."""
        x = _product_input(self, "prod", dtype)
        if dim is None:
            if keepdim:
                raise TypeError("prod: keepdim needs a dim")
            return x.reshape(-1).prod(0) if x.ndim else x.clone()
        dim = check_dim("prod", _one_dim("prod", dim), x.ndim)
        if x.ndim == 0:
            return x.clone()
        if x.dtype.kind != "f":
            return _computed(x.xp.asarray(x.array.prod(axis=dim, keepdims=keepdim, dtype=x.dtype)), "prod of integers")
        if x.shape[dim] == 0:  # ones on the graph, as torch's: an empty product is 1, its gradient empty
            x = x.sum(dim, keepdim=True) * 0 + 1
        elif x.shape[dim] == 1:
            x = x.clone()  # a new tensor, never a view of the input
        while x.shape[dim] != 1:
            n = x.shape[dim]
            half = n // 2
            pairs = x.narrow(dim, 0, half) * x.narrow(dim, half, half)
            x = _cat([pairs, x.narrow(dim, 2 * half, 1)], dim) if n % 2 else pairs
        return x if keepdim else x.squeeze(dim)

    @numpy_aliases
    def cumprod(self, dim, *, dtype=None):
        """Running products along dim (a scan of log2(n) rounds of products)."""
        x = _product_input(self, "cumprod", dtype)
        dim = check_dim("cumprod", dim, x.ndim)
        if x.ndim == 0:
            return x.clone()
        if x.dtype.kind != "f":
            return _computed(x.xp.cumprod(x.array, axis=dim, dtype=x.dtype), "cumprod of integers")
        n, step = x.shape[dim], 1
        if n <= 1:
            return x.clone()  # a new tensor, never the input itself
        while step < n:
            x = _cat([x.narrow(dim, 0, step), x.narrow(dim, step, n - step) * x.narrow(dim, 0, n - step)], dim)
            step *= 2
        return x

    def diag(self, diagonal=0):
        """A 1-D tensor's square matrix with it on the `diagonal`, or a 2-D tensor's diagonal as 1-D."""
        if isinstance(diagonal, bool) or not isinstance(diagonal, numbers.Integral):
            raise TypeError(f"diag: argument 'diagonal' must be an int, not {type(diagonal).__name__}")
        if self.ndim not in (1, 2):
            raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {self.ndim}D (shape {self.shape})")
        xp, d = self.xp, int(diagonal)
        if self.ndim == 1:
            n = self.shape[0]
            m = n + abs(d)
            rows, cols = xp.arange(n) + builtins.max(-d, 0), xp.arange(n) + builtins.max(d, 0)
            return _ops().IndexPut.apply(_constant(xp.zeros((m, m), dtype=self.dtype)), self, index=(rows, cols))
        r, c = self.shape
        n = builtins.max(0, builtins.min(r - builtins.max(-d, 0), c - builtins.max(d, 0)))
        return self[xp.arange(n) + builtins.max(-d, 0), xp.arange(n) + builtins.max(d, 0)]

    def nonzero(self, *, as_tuple=False):
        """The indices of the non-zero elements: int64 (count, ndim), or one 1-D tensor per dim."""
        if not self.ndim and not as_tuple:
            return _computed(self.xp.zeros((int(bool(self.array)), 0), dtype=np.int64), "nonzero")
        found = self.xp.nonzero(self.array.reshape(-1) if not self.ndim else self.array)
        if as_tuple:
            return tuple(_computed(i.astype(np.int64), "nonzero") for i in found)
        return _computed(self.xp.stack(found, axis=1).astype(np.int64), "nonzero")

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        """The distinct values, sorted (each NaN its own value, as torch); with return_inverse each element's
        position among them, with return_counts how often each occurs. No gradient, as torch's."""
        if dim is not None:
            dim = check_dim("unique", dim, self.ndim)
        host = backend.to_numpy(self.array)
        options = {"axis": dim} if dim is not None else {"equal_nan": False}
        values, inverse, counts = np.unique(host.reshape(-1) if dim is None else host, return_inverse=True,
                                            return_counts=True, **options)
        inverse = inverse.reshape(self.shape if dim is None else -1)
        out = [_computed(backend.to_device(a, self.device), "unique")
               for a in (values, inverse.astype(np.int64), counts.astype(np.int64))]
        if not (return_inverse or return_counts):
            return out[0]
        return tuple(a for a, wanted in zip(out, (True, return_inverse, return_counts)) if wanted)

    @numpy_aliases
    def median(self, dim=None, keepdim=False):
        """The lower median (the (n - 1) // 2-th smallest; NaN where there is one): over all elements, or
        (values, indices) along dim, the first of equal values' indices, as torch."""
        if dim is None:
            if self.dtype.kind == "f" and not self.numel():
                return self.sum() + float("nan")  # torch's NaN of no elements, on the graph
            _check_nonempty("median", self, None, "median() input tensor cannot be empty")
            median = self.reshape(-1).median(0).values
            if self.dtype.kind != "f":
                return median
            # the elements equal to it (the NaNs, for a NaN) share its gradient evenly, as torch's median()
            flat, xp = self.reshape(-1), self.xp
            ties = (flat.array == median.array) | (xp.isnan(flat.array) & xp.isnan(median.array))
            return _ops().Max.apply(flat[_constant(ties)], axis=None, keepdims=False, nan_shares=True)
        dim = check_dim("median", _one_dim("median", dim), self.ndim)
        if not self.ndim:
            return MaxMin(self.clone(), _constant(self.xp.zeros((), dtype=np.int64)))
        _check_nonempty("median", self, dim)
        xp, n = self.xp, self.shape[dim]
        index = xp.take(xp.argsort(self.array, axis=dim, kind="stable"), [(n - 1) // 2], axis=dim)
        if self.dtype.kind == "f":  # a NaN is the median, the first one's index
            nan = xp.isnan(self.array)
            index = xp.where(nan.any(axis=dim, keepdims=True), nan.argmax(axis=dim, keepdims=True), index)
        index = _computed(index.astype(np.int64), "median's indices")
        values = self.gather(dim, index)
        if keepdim:
            return MaxMin(values, index)
        return MaxMin(values.squeeze(dim), _computed(index.array.squeeze(dim), "median's indices"))

    # --- scattering: an IndexPut (scatter) or IndexAdd (scatter_add) at the index's grid
    def scatter(self, dim, index, src=None, value=None, *, reduce=None):
        """A copy with self[..., index[i], ...] = src[i] along dim (or the number `value`); torch's older
        reduce="add" or "multiply" adds or multiplies src[i] in instead (scatter_reduce's sum or prod)."""
        if (src is None) == (value is None):
            raise TypeError("scatter: pass exactly one of src (a Tensor or a number) and value")
        src = value if src is None else src
        if reduce is not None and reduce not in _SCATTER_REDUCE_NAMES:
            raise RuntimeError("reduce argument must be either add or multiply.")
        grid, part = _scatter_grid("scatter", self, dim, index, src)
        if reduce is not None and isinstance(src, _tensor_cls()):
            warnings.warn("The reduce argument of torch.scatter with Tensor src is deprecated and will be removed "
                          "in a future PyTorch release. Use torch.scatter_reduce instead for more reduction "
                          "options.", UserWarning, stacklevel=2)
        if grid is None:
            return self.clone()
        if reduce is not None:
            if not isinstance(part, _tensor_cls()):  # a number: one src element at each index element
                shape = np.broadcast_shapes(*(g.shape for g in grid))
                part = _constant(self.xp.full(shape, _fill_value("scatter", self, part)))
            return self.scatter_reduce(dim, _constant(grid[dim]), part, _SCATTER_REDUCE_NAMES[reduce])
        if not isinstance(part, _tensor_cls()):
            part = _constant(_fill_value("scatter", self, part))
        return _ops().IndexPut.apply(self, part, index=grid)

    def scatter_add(self, dim, index, src):
        """A copy with src[i] added at self[..., index[i], ...] along dim (repeated indices add up)."""
        grid, part = _scatter_grid("scatter_add", self, dim, index, src, tensor_only=True)
        if grid is None:
            return self.clone()
        return self + _ops().IndexAdd.apply(part, index=grid, shape=self.shape)

    def scatter_(self, dim, index, src=None, value=None, *, reduce=None):
        operand = value if src is None else src
        return self._update("scatter_", lambda x, v: x.scatter(dim, index, v, reduce=reduce), operand,
                            reads_old=reduce == "multiply")

    def scatter_add_(self, dim, index, src):
        return self._update("scatter_add_", lambda x, v: x.scatter_add(dim, index, v), src)

    def scatter_reduce(self, dim, index, src, reduce, *, include_self=True):
        """A copy with src reduced into self[..., index[i], ...] along dim by sum, prod, mean, amax or amin
        (self's own value taking part unless include_self=False); gradients as torch's, ties of amax and
        amin sharing theirs evenly."""
        reduce = {"max": "amax", "min": "amin"}.get(reduce, reduce)  # torch takes these spellings too
        if reduce not in _SCATTER_REDUCTIONS:
            raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
        grid, part = _scatter_grid("scatter_reduce", self, dim, index, src, tensor_only=True)
        if grid is None:
            return self.clone()
        ops, xp, identity = _ops(), self.xp, _SCATTER_REDUCTIONS[reduce]
        counts = backend.scatter_add(xp.zeros(self.shape, np.int64), grid, xp.ones(part.shape, np.int64))
        touched = counts > 0
        x = self
        if not include_self:  # what the reduction starts from where src lands: its identity
            start = identity(self.dtype) if callable(identity) else identity
            x = ops.IndexPut.apply(self, _constant(xp.asarray(start, self.dtype)), index=grid)
        if reduce in ("sum", "mean"):
            total = x + ops.IndexAdd.apply(part, index=grid, shape=self.shape)
            if reduce == "sum":
                return total
            n = _constant(xp.where(touched, counts + int(include_self), 1).astype(self.dtype))
            return total / n if self.dtype.kind == "f" else total.div(n, rounding_mode="floor")
        if reduce == "prod":
            return x * _scattered_products(part, grid, self.shape)
        extreme = backend.scatter_extreme(x.array.copy(), grid, part.array, largest=reduce == "amax")
        result = _computed(extreme, f"scatter_reduce's {reduce}")
        if self.dtype.kind != "f" or not (self.requires_grad or part.requires_grad):
            return result
        # torch's gradient: shared evenly among self and the src elements equal to the result there
        self_is = (self.array == extreme).astype(self.dtype)
        src_is = (part.array == extreme[grid]).astype(self.dtype)
        shares = backend.scatter_add(self_is.copy(), grid, src_is)
        self_weight = self_is / shares
        if not include_self:
            self_weight[grid] = 0
        linear = (self * _computed(self_weight, "scatter_reduce's shares")
                  + ops.IndexAdd.apply(part * _computed(src_is / shares[grid], "scatter_reduce's shares"),
                                       index=grid, shape=self.shape))
        return linear + (result - linear).detach()  # the value exactly; the gradient that linear one's

    def scatter_reduce_(self, dim, index, src, reduce, *, include_self=True):
        return self._update("scatter_reduce_", lambda x, v: x.scatter_reduce(dim, index, v, reduce,
                                                                             include_self=include_self),
                            src, reads_old=reduce in ("prod", "amax", "amin"))

    # --- index_add, index_copy, index_fill: whole slices along dim at a 1-D index
    def index_add(self, dim, index, source, *, alpha=1):
        """A copy with alpha * source's slices added at `index` along dim (repeated indices add up)."""
        at, source = _index_along("index_add", self, dim, index, source)
        if at is None:
            return self.clone()
        added = source if alpha == 1 else _scaled(self, source, alpha)
        return _on_0d(self, lambda x: x + _ops().IndexAdd.apply(added.reshape(_sliced(x, at)), index=at,
                                                                 shape=x.shape))

    def index_copy(self, dim, index, source):
        """A copy with source's slices written at `index` along dim (a repeated index: the last wins)."""
        at, source = _index_along("index_copy", self, dim, index, source)
        if at is None:
            return self.clone()
        return _on_0d(self, lambda x: _ops().IndexPut.apply(x, source.reshape(_sliced(x, at)), index=at))

    def index_fill(self, dim, index, value):
        """A copy with the slices at `index` along dim set to value (a number, or a 0-d tensor that may
        require grad: it gets the gradient of every element it fills once)."""
        value = _fill_operand("index_fill", self, value, lambda ndim: RuntimeError(
            f"index_fill_ only supports a 0-dimensional value tensor, but got tensor with {ndim} dimension(s)."))
        at, _ = _index_along("index_fill", self, dim, index)
        if at is None:
            return self.clone()
        return _on_0d(self, lambda x: _ops().IndexPut.apply(x, value, index=at))

    def index_add_(self, dim, index, source, *, alpha=1):
        return self._update("index_add_", lambda x, v: x.index_add(dim, index, v, alpha=alpha), source)

    def index_copy_(self, dim, index, source):
        return self._update("index_copy_", lambda x, v: x.index_copy(dim, index, v), source)

    def index_fill_(self, dim, index, value):
        return self._update("index_fill_", lambda x, v: x.index_fill(dim, index, v), value)

    # --- running extremes and order statistics: indices found on the arrays, values picked by gather
    def cummax(self, dim):
        """(values, indices) of the running maximum along dim; of equal values the last index, as torch."""
        return _running_extreme(self, "cummax", dim)

    def cummin(self, dim):
        return _running_extreme(self, "cummin", dim)

    def kthvalue(self, k, dim=-1, keepdim=False):
        """(values, indices) of the k-th smallest element along dim (k from 1; NaN counts as the largest)."""
        dim = check_dim("kthvalue", dim, self.ndim)
        n = self.shape[dim] if self.ndim else 1
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"kthvalue(): argument 'k' must be int, not {type(k).__name__}")
        if self.ndim:
            _check_nonempty("kthvalue", self, dim)
        if not 1 <= k <= n:
            raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {dim}")
        if not self.ndim:
            return MaxMin(self.clone(), _constant(self.xp.zeros((), dtype=np.int64)))
        xp = self.xp
        index = xp.take(xp.argsort(self.array, axis=dim, kind="stable"), [k - 1], axis=dim).astype(np.int64)
        values = self.gather(dim, _computed(index, "kthvalue's indices"))
        if keepdim:
            return MaxMin(values, _computed(index, "kthvalue's indices"))
        return MaxMin(values.squeeze(dim), _computed(index.squeeze(dim), "kthvalue's indices"))

    # --- reductions with indices, statistics and norms
    @numpy_aliases
    def amax(self, dim=(), keepdim=False):
        axes = reduction_dims("amax", self, dim)
        _check_nonempty("amax", self, axes)
        if self.dtype.kind != "f":  # no gradient: NumPy's own reduction, in the tensor's dtype
            return _computed(self.xp.asarray(self.array.max(axis=axes, keepdims=keepdim)), "amax of integers")
        return _ops().Max.apply(self, axis=axes, keepdims=keepdim)

    @numpy_aliases
    def amin(self, dim=(), keepdim=False):
        axes = reduction_dims("amin", self, dim)
        _check_nonempty("amin", self, axes)
        if self.dtype.kind != "f":
            return _computed(self.xp.asarray(self.array.min(axis=axes, keepdims=keepdim)), "amin of integers")
        return -(-self).amax(dim, keepdim)

    def logsumexp(self, dim, keepdim=False):
        """log(sum(exp(x))) over dim, shifted by the (constant) maximum so that exp never overflows."""
        axes = reduction_dims("logsumexp", self._floating(), dim)
        x = self._floating()
        shift = _ops().DetachedMax.apply(x, axis=axes)
        finite = backend.xp_of(shift.array).isfinite(shift.array)
        shift = _ops().where_tensor(finite, shift, 0.0)   # rows all -inf (or +inf) stay so, not NaN
        total = (x - shift).exp().sum(axis=axes, keepdims=True).log() + shift
        return total if keepdim else total.reshape(_shape_without(self.shape, axes))

    def outer(self, vec2):
        """The outer product of two 1-D tensors."""
        vec2 = _tensor_argument("outer", "vec2", vec2)
        if self.ndim != 1 or vec2.ndim != 1:
            raise ValueError(f"outer: expects two 1-D tensors; got shapes {self.shape} and {vec2.shape}")
        return self.reshape(-1, 1) * vec2.reshape(1, -1)

    ger = outer

    # products of fixed ranks, as torch checks them (no broadcasting, one dtype); `@` does the work
    def mm(self, mat2):
        """The product of two matrices (n x m) @ (m x p)."""
        mat2 = _same_dtype("mm", self, _tensor_argument("mm", "mat2", mat2))
        if self.ndim != 2 or mat2.ndim != 2:
            raise ValueError(f"mm: expects two matrices; got shapes {self.shape} and {mat2.shape}")
        if self.shape[1] != mat2.shape[0]:
            raise ValueError(f"mm: mat1 and mat2 shapes cannot be multiplied ({self.shape[0]}x{self.shape[1]} and "
                             f"{mat2.shape[0]}x{mat2.shape[1]})")
        return self @ mat2

    def bmm(self, mat2):
        """Batched matrix products (b x n x m) @ (b x m x p)."""
        mat2 = _same_dtype("bmm", self, _tensor_argument("bmm", "mat2", mat2))
        for name, t in (("input", self), ("mat2", mat2)):
            if t.ndim != 3:
                raise ValueError(f"bmm: {name} must be a 3-D tensor; got shape {t.shape}")
        if mat2.shape[:2] != (self.shape[0], self.shape[2]):
            raise ValueError(f"bmm: expected size for first two dimensions of mat2 tensor to be: "
                             f"[{self.shape[0]}, {self.shape[2]}] but got: [{mat2.shape[0]}, {mat2.shape[1]}] "
                             f"(shapes {self.shape} and {mat2.shape})")
        return self @ mat2

    def mv(self, vec):
        """The product of a matrix (n x m) and a vector (m)."""
        vec = _same_dtype("mv", self, _tensor_argument("mv", "vec", vec))
        if self.ndim != 2 or vec.ndim != 1:
            raise ValueError(f"mv: expects a matrix and a vector; got shapes {self.shape} and {vec.shape}")
        if self.shape[1] != vec.shape[0]:
            raise ValueError(f"mv: size mismatch, got mat ({self.shape[0]}x{self.shape[1]}), vec ({vec.shape[0]})")
        return self @ vec

    def dot(self, other):
        """The inner product of two 1-D tensors of the same size."""
        other = _same_dtype("dot", self, _tensor_argument("dot", "other", other))
        if self.ndim != 1 or other.ndim != 1:
            raise ValueError(f"dot: 1D tensors expected, but got {self.ndim}D and {other.ndim}D tensors "
                             f"(shapes {self.shape} and {other.shape})")
        if self.shape != other.shape:
            raise ValueError(f"dot: inconsistent tensor size, expected tensor [{self.shape[0]}] and src "
                             f"[{other.shape[0]}] to have the same number of elements")
        return self @ other

    # --- more of torch's products: `@` does the work, the checks and the added term are torch's
    def matmul(self, other):
        """self @ other: 1-D operands promoted, batch dims broadcast (torch.matmul)."""
        return self @ _tensor_argument("matmul", "other", other)

    def inner(self, other):
        """The sums of products over the last dims, for every pair of the other dims: shape
        self.shape[:-1] + other.shape[:-1] (a product by a 0-d tensor is elementwise)."""
        other = _tensor_argument("inner", "other", other)
        if not self.ndim or not other.ndim:
            return self * other
        if self.shape[-1] != other.shape[-1]:
            raise RuntimeError(f"inner() the last dimension must match on both input tensors but got shapes "
                               f"{list(self.shape)} and {list(other.shape)}")
        _one_dtype("inner", self, other)
        rows, cols = (t.reshape(math.prod(t.shape[:-1]), t.shape[-1]) for t in (self, other))  # no -1: k may be 0
        return (rows @ cols.mT).reshape(self.shape[:-1] + other.shape[:-1])

    def addmv(self, mat, vec, *, beta=1, alpha=1):
        """beta * self + alpha * (mat @ vec), self broadcast to the product's shape."""
        mat, vec = _tensor_argument("addmv", "mat", mat), _tensor_argument("addmv", "vec", vec)
        if mat.ndim != 2 or vec.ndim != 1 or self.ndim > 1:
            raise RuntimeError(f"addmv: vector + matrix @ vector expected, got {self.ndim}, {mat.ndim}, {vec.ndim}")
        if mat.shape[1] != vec.shape[0] or (self.ndim and self.shape[0] not in (1, mat.shape[0])):
            raise RuntimeError(f"addmv: size mismatch, got input ({', '.join(map(str, self.shape))}), mat "
                               f"({mat.shape[0]}x{mat.shape[1]}), vec ({vec.shape[0]})")
        _one_dtype("addmv", self, mat, vec)
        return _beta_plus_alpha("addmv", self, mat @ vec, beta, alpha)

    def baddbmm(self, batch1, batch2, *, beta=1, alpha=1):
        """beta * self + alpha * (batch1 @ batch2) of 3-D batches, self broadcast to the products' shape."""
        batch1, batch2 = _batches("baddbmm", self, batch1, batch2)
        b, m = batch1.shape[0], batch1.shape[2]
        if batch2.shape[:2] != (b, m):
            raise RuntimeError(f"baddbmm: Expected size for first two dimensions of batch2 tensor to be: [{b}, {m}] "
                               f"but got: [{batch2.shape[0]}, {batch2.shape[1]}].")
        return _beta_plus_alpha("baddbmm", self, batch1 @ batch2, beta, alpha)

    def addbmm(self, batch1, batch2, *, beta=1, alpha=1):
        """beta * self + alpha * (the sum over the batch of batch1[i] @ batch2[i]): one matrix product of
        the batches laid side by side."""
        batch1, batch2 = _batches("addbmm", self, batch1, batch2)
        (b, n, m), (b2, m2, p) = batch1.shape, batch2.shape
        if b != b2:
            raise RuntimeError(f"addbmm: batch1 and batch2 must have same number of batches, got {b} and {b2}")
        if m != m2:
            raise RuntimeError(f"addbmm: Incompatible matrix sizes for bmm ({n}x{m} and {m2}x{p})")
        product = batch1.permute(1, 0, 2).reshape(n, b * m) @ batch2.reshape(b * m, p)
        return _beta_plus_alpha("addbmm", self, product, beta, alpha)

    def kron(self, other):
        """The Kronecker product: every element of self times the whole of other, in blocks; the shorter
        shape gets leading 1s, as torch.kron."""
        other = _tensor_argument("kron", "other", other)
        ndim = builtins.max(self.ndim, other.ndim)
        a_shape, b_shape = ((1,) * (ndim - t.ndim) + t.shape for t in (self, other))
        a = self.reshape(tuple(x for n in a_shape for x in (n, 1)))
        b = other.reshape(tuple(x for n in b_shape for x in (1, n)))
        return (a * b).reshape(tuple(m * n for m, n in zip(a_shape, b_shape)))

    def diagonal(self, offset=0, dim1=0, dim2=1):
        """The diagonal `offset` of the matrices in dims dim1 and dim2, as a new last dim (a copy here, not
        torch's view: writes to it do not reach this tensor)."""
        if isinstance(offset, bool) or not isinstance(offset, numbers.Integral):
            raise TypeError(f"diagonal(): argument 'offset' must be int, not {type(offset).__name__}")
        d1, d2 = (check_dim("diagonal", d, self.ndim, needs_dims=True) for d in (dim1, dim2))
        if d1 == d2:
            raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
        matrices = self.movedim((d1, d2), (-2, -1))
        rows, cols = matrices.shape[-2:]
        first_row, first_col = builtins.max(-offset, 0), builtins.max(offset, 0)
        n = builtins.max(0, builtins.min(rows - first_row, cols - first_col))
        xp = self.xp
        return matrices[..., xp.arange(n) + first_row, xp.arange(n) + first_col]

    def rot90(self, k=1, dims=(0, 1)):
        """A quarter turn k times in the plane of dims, from dims[0] towards dims[1] (a new tensor)."""
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"rot90(): argument 'k' must be int, not {type(k).__name__}")
        dims = tuple(dims)
        if len(dims) != 2:
            raise RuntimeError(f"rot90: expected total rotation dims == 2, but got dims = {len(dims)}")
        if self.ndim < 2:
            raise RuntimeError(f"rot90: expected total dims >= 2, but got total dims = {self.ndim}")
        d0, d1 = (check_dim("rot90", d, self.ndim) for d in dims)
        if d0 == d1:
            raise RuntimeError(f"rot90: expected rotation dims to be different, but got dim0 = {dims[0]} and "
                               f"dim1 = {dims[1]}")
        turns = int(k) % 4
        if turns == 1:
            return self.flip(d1).transpose(d0, d1)
        if turns == 2:
            return self.flip(d0, d1)
        return self.flip(d0).transpose(d0, d1) if turns == 3 else self.clone()

    def tile(self, *dims):
        """repeat() with 1s put in front of `dims` where it has fewer than the tensor has dims."""
        dims = sizes_argument("tile", dims, "dims")
        if any(n < 0 for n in dims):
            raise RuntimeError(f"tile: dims must be non-negative; got {tuple(dims)}")
        return self.repeat((1,) * (self.ndim - len(dims)) + tuple(dims))

    # --- picking and placing by flat positions
    def take(self, index):
        """The elements at `index` (int64) of the tensor read as 1-D, negative ones from the end, in
        index's shape."""
        index = _tensor_argument("take", "index", index)
        if index.dtype != np.int64:
            raise RuntimeError(f"take(): Expected a long tensor for index, but got {index.dtype}")
        flat, array = self.reshape(-1), _indices("take", index, self)
        n = flat.shape[0]
        outside = (array < -n) | (array >= n)
        backend.check(outside, lambda: IndexError(f"take(): out of range: tried to access index "
                                                  f"{int(array[outside].reshape(-1)[0])} on a tensor of {n} elements."))
        return flat[array % builtins.max(n, 1)]

    def take_along_dim(self, indices, dim=None):
        """gather() along dim with the other dims of self and indices broadcast; along the flattened tensor
        when dim is None."""
        indices = _tensor_argument("take_along_dim", "indices", indices)
        if indices.dtype.kind not in "iu":
            raise RuntimeError(f"torch.take_along_dim(): dtype of indices should be Long but got {indices.dtype}")
        if dim is None:
            return self.reshape(-1).gather(0, indices.reshape(-1))
        dim = check_dim("take_along_dim", dim, self.ndim)
        if self.ndim != indices.ndim:
            raise RuntimeError(f"torch.take_along_dim(): input and indices should have the same number of "
                               f"dimensions, but got {self.ndim} dimensions for input, and {indices.ndim} "
                               f"dimensions for indices")
        if not self.ndim:
            return self.gather(0, indices)

        def along(shape, size):  # the shape with dim's size replaced
            return shape[:dim] + (size,) + shape[dim + 1:]
        try:
            index_shape = np.broadcast_shapes(along(self.shape, indices.shape[dim]), indices.shape)
            input_shape = np.broadcast_shapes(along(indices.shape, self.shape[dim]), self.shape)
        except ValueError:
            raise RuntimeError(f"take_along_dim: input {self.shape} and indices {indices.shape} do not broadcast "
                               f"outside dim {dim}") from None
        return self.expand(input_shape).gather(dim, indices.expand(index_shape))

    def masked_scatter(self, mask, source):
        """A copy (of self and mask broadcast together) with source's elements, in order, written where the
        bool mask holds."""
        source = _tensor_argument("masked_scatter", "source", source)
        mask = _tensor_argument("masked_scatter", "mask", mask)
        if mask.dtype != np.bool_:
            raise RuntimeError(f"masked_scatter_ only supports boolean masks, but got mask with dtype {mask.dtype}")
        if source.dtype != self.dtype:
            raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but got {self.dtype} "
                               f"and {source.dtype}")
        mask_array = _indices("masked_scatter", mask, self, kinds="b")
        shape = _broadcast_shape("masked_scatter", self, mask)
        places = self.xp.flatnonzero(self.xp.broadcast_to(mask_array, shape))
        if places.size > source.numel():
            raise RuntimeError(f"masked_scatter: Number of elements of source ({source.numel()}) < number of ones "
                               f"in mask ({places.size})")
        written = source.reshape(-1)[:places.size]
        return _ops().IndexPut.apply(self.expand(shape).reshape(-1), written, index=(places,)).reshape(shape)

    def masked_scatter_(self, mask, source):
        return self._update("masked_scatter_", lambda x, v: x.masked_scatter(mask, v), source)

    # --- order, extremes, distances
    def msort(self):
        """The values sorted along dim 0."""
        return self.sort(0).values

    def aminmax(self, *, dim=None, keepdim=False):
        """(min, max) over all elements or along one dim, as torch.aminmax (ties share the gradient, as
        amin's and amax's)."""
        if dim is None:
            if not self.numel():
                raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as the operation has "
                                   "no identity.")
            extremes = self.amin(), self.amax()
            return AminMax(*(e.reshape((1,) * self.ndim) if keepdim else e for e in extremes))
        axes = reduction_dims("aminmax", self, _one_dim("aminmax", dim))
        _check_nonempty("aminmax", self, axes)
        return AminMax(self.amin(dim, keepdim), self.amax(dim, keepdim))

    def dist(self, other, p=2):
        """The p-norm of self - other (broadcast together)."""
        other = _tensor_argument("dist", "other", other)
        try:
            np.broadcast_shapes(self.shape, other.shape)
        except ValueError:
            raise RuntimeError(f"dist: the shapes {self.shape} and {other.shape} do not broadcast together") from None
        difference = self - other
        if difference.dtype.kind != "f":
            raise RuntimeError(f"dist: input dtype should be either floating point or complex. Got "
                               f"{difference.dtype} instead.")
        return difference.norm(p)

    def renorm(self, p, dim, maxnorm):
        """Each slice along dim whose p-norm passes maxnorm scaled down to norm maxnorm (by
        maxnorm / (norm + 1e-7), as torch)."""
        if self.dtype.kind != "f":
            raise RuntimeError(f"renorm: Expected a floating point tensor as input. Got {self.dtype}")
        if p <= 0:
            raise RuntimeError("renorm: non-positive-norm not supported")
        if maxnorm < 0:
            raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
        if self.ndim <= 1:
            raise RuntimeError(f"renorm: input needs at least 2 dimensions, got {self.ndim} dimensions")
        dim = check_dim("renorm", dim, self.ndim)
        norms = self.norm(p, tuple(d for d in range(self.ndim) if d != dim), keepdim=True)
        too_long = _ops().Compare.apply(norms, op="gt", other=maxnorm).array
        return self * _ops().where_tensor(too_long, maxnorm / (norms + 1e-7), 1.0)

    def logcumsumexp(self, dim):
        """log(cumsum(exp(x))) along dim without overflow: log(2) rounds of pairwise log-add-exp (a scan)."""
        dim = check_dim("logcumsumexp", dim, self.ndim)
        if self.dtype.kind != "f":
            raise NotImplementedError(f"logcumsumexp: not implemented for {self.dtype}")
        x, step = self.clone(), 1
        n = self.shape[dim] if self.ndim else 1
        while step < n:
            x = _cat([x.narrow(dim, 0, step), _log_add_exp(x.narrow(dim, step, n - step),
                                                           x.narrow(dim, 0, n - step))], dim)
            step *= 2
        return x

    # --- counting: integers out, no gradient (as torch's)
    def bincount(self, weights=None, minlength=0):
        """How often each of 0, 1, ... max occurs in this 1-D tensor of non-negative integers (at least
        minlength counts); with weights, their sums instead (float64 unless weights are floating)."""
        if self.dtype.kind not in "iu":
            raise NotImplementedError(f"bincount: not implemented for {self.dtype} (integers only)")
        if isinstance(minlength, bool) or not isinstance(minlength, numbers.Integral):
            raise TypeError(f"bincount(): argument 'minlength' must be int, not {type(minlength).__name__}")
        if minlength < 0:
            raise RuntimeError("bincount: minlength should be >= 0")
        xp = self.xp
        if self.ndim == 1 and not self.numel():  # int64 zeros, weights or not, as torch
            return _constant(xp.zeros(minlength, dtype=np.int64))
        if self.ndim != 1 or int(self.array.min()) < 0:
            raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
        if weights is None:
            return _computed(xp.bincount(self.array, minlength=minlength).astype(np.int64), "bincount")
        weights = _tensor_argument("bincount", "weights", weights)
        if weights.shape != self.shape:
            raise RuntimeError(f"bincount: weights should be 1-d and have the same length as input (input "
                               f"{self.shape}, weights {weights.shape})")
        dtype = weights.dtype if weights.dtype.kind == "f" else np.dtype(np.float64)
        sums = xp.bincount(self.array, weights=weights.array.astype(np.float64), minlength=minlength)
        return _computed(sums.astype(dtype), "bincount")

    def histc(self, bins=100, min=0, max=0):
        """The counts of the elements in `bins` equal bins from min to max (the data's own range when
        min == max), in this tensor's dtype; elements outside are left out."""
        if isinstance(bins, bool) or not isinstance(bins, numbers.Integral):
            raise TypeError(f"histc(): argument 'bins' must be int, not {type(bins).__name__}")
        if self.dtype.kind != "f":
            raise NotImplementedError(f"histc: not implemented for {self.dtype} (floating point only)")
        if bins <= 0:
            raise RuntimeError(f"histc: bins must be > 0, but got {bins}")
        values = backend.to_numpy(self.array).reshape(-1)
        low, high = float(min), float(max)
        if low == high and values.size:
            low, high = float(values.min()), float(values.max())
        if low == high:
            low, high = low - 1, high + 1
        if not (np.isfinite(low) and np.isfinite(high)):
            raise RuntimeError(f"torch.histc: range of [{low}, {high}] is not finite")
        if low > high:
            raise RuntimeError("torch.histc: max must be larger than min")
        from .factory import linspace
        edges = linspace(low, high, bins + 1, dtype=self.dtype).numpy()
        left, right = edges[0], edges[-1]
        inside = values[(values >= left) & (values <= right)]
        # torch's bin: (x - left) * bins / (right - left) in the tensor's dtype, rounded down (not a search
        # of the edges: an element a rounding away from an edge lands where torch puts it)
        which = np.minimum(((inside - left) * values.dtype.type(bins) / (right - left)).astype(np.int64), bins - 1)
        counts = np.bincount(which, minlength=bins).astype(self.dtype)
        return _computed(backend.to_device(counts, self.device), "histc")

    @numpy_aliases
    def max(self, dim=None, keepdim=False):
        """max() over everything; max(dim) -> (values, indices); max(other) elementwise, as torch."""
        return _max_or_min(self, "max", dim, keepdim)

    @numpy_aliases
    def min(self, dim=None, keepdim=False):
        return _max_or_min(self, "min", dim, keepdim)

    @numpy_aliases
    def argmax(self, dim=None, keepdim=False):
        return _arg(self, "argmax", dim, keepdim)

    @numpy_aliases
    def argmin(self, dim=None, keepdim=False):
        return _arg(self, "argmin", dim, keepdim)

    @numpy_aliases
    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        """Variance with Bessel's correction by default (correction=1), as torch.var; var(False), a bool
        alone, is torch's var(unbiased) over all elements."""
        if self.dtype == np.float16:  # half accumulates in float32, as torch's
            return self.float().var(dim, unbiased, keepdim, correction=correction).half()
        return _variance("var", self, dim, unbiased, keepdim, correction)

    @numpy_aliases
    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        if self.dtype == np.float16:
            return self.float().std(dim, unbiased, keepdim, correction=correction).half()
        return _root(_variance("std", self, dim, unbiased, keepdim, correction), 2)

    def norm(self, p="fro", dim=None, keepdim=False):
        """Vector p-norm over `dim` (all elements by default); 'fro' is the 2-norm; gradient 0 at 0."""
        p = 2 if p in ("fro", None) else p
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"norm: p must be a number or 'fro'; got {p!r}")
        _floating_only("norm", self)
        if self.dtype == np.float16:  # half accumulates in float32, as torch's: x * x would overflow
            return self.float().norm(p, dim, keepdim).half()
        axes = reduction_dims("norm", self, dim)
        if p in (np.inf, -np.inf):
            _check_nonempty("norm", self, axes, f"cannot compute the {p} norm on an empty tensor because the "
                                                "operation does not have an identity")
            return self.abs().amax(axes, keepdim) if p > 0 else self.abs().amin(axes, keepdim)
        if p == 1:
            return self.abs().sum(axis=axes, keepdims=keepdim)
        if p == 0:
            return _computed((self.array != 0).sum(axis=axes, keepdims=keepdim).astype(self.dtype), "norm of order 0")
        if p == 2:
            powers = self * self
        elif p < 1:  # |x| ** p has an infinite slope at 0: zeros get gradient 0, as in torch
            zero = _ops().Compare.apply(self, op="eq", other=0).array
            powers = _ops().where_tensor(zero, 0.0, _ops().where_tensor(zero, 1.0, self.abs()) ** p)
        else:
            powers = self.abs() ** p
        return _root(powers.sum(axis=axes, keepdims=keepdim), p)

    # --- conversion
    def __float__(self):
        return float(self.item())

    def __int__(self):
        value = self.item()
        if isinstance(value, float) and not np.isfinite(value):
            raise ValueError(f"int: cannot convert {value} to an integer")
        return int(value)

    def __index__(self):
        if self.dtype.kind not in "iub" or self.array.size != 1:
            raise TypeError(f"only integer tensors of a single element can be converted to an index; got "
                            f"{self.dtype} of shape {self.shape}")
        return int(self.item())

    def __format__(self, spec):
        if self.ndim == 0 and spec:  # as torch: a number format fits a 0-d tensor only
            return format(self.item(), spec)
        if spec:
            raise TypeError(f"unsupported format string {spec!r} passed to Tensor.__format__ (a tensor of shape "
                            f"{self.shape}; only one-element tensors take a number format)")
        return repr(self)

    def half(self):
        return self.to(dtype=np.float16)

    def short(self):
        return _ops().Convert.apply(self, dtype=np.dtype(np.int16))

    def char(self):
        return _ops().Convert.apply(self, dtype=np.dtype(np.int8))

    def byte(self):
        return _ops().Convert.apply(self, dtype=np.dtype(np.uint8))

    def is_floating_point(self):
        return self.dtype.kind == "f"

    def is_complex(self):
        return self.dtype.kind == "c"

    def is_signed(self):
        return self.dtype.kind in "fic"

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.array.nbytes

    def long(self):
        return _ops().Convert.apply(self, dtype=np.dtype(np.int64))

    def int(self):
        return _ops().Convert.apply(self, dtype=np.dtype(np.int32))

    def bool(self):
        return _ops().Convert.apply(self, dtype=np.dtype(np.bool_))

    def type(self, dtype=None, non_blocking=False):
        """type(): the tensor type's name, as torch ("tinygrad_rnn.FloatTensor"); type(dtype) casts,
        taking a dtype, its name, or a type name such as "torch.LongTensor"."""
        if dtype is None:
            prefix = "tinygrad_rnn.cuda." if self.device == "cuda" else "tinygrad_rnn."
            return prefix + TENSOR_TYPE_NAMES[self.dtype]
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            by_name = {name: kind for kind, name in TENSOR_TYPE_NAMES.items()}
            kind = by_name.get(dtype.rpartition(".")[2])
            if kind is None:
                raise TypeError(f"type: invalid type {dtype!r}; expected a dtype or one of {sorted(by_name)}")
            return self.to(device="cuda" if ".cuda." in dtype else self.device, dtype=kind)
        return self.to(dtype=dtype)

    def type_as(self, other):
        return self.to(dtype=_tensor_argument("type_as", "other", other).dtype)

    # new_*: this tensor's dtype and device unless given
    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        from .factory import full
        return full(size, fill_value, **self._new_options(dtype, device), requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        from .factory import zeros
        return zeros(*size, **self._new_options(dtype, device), requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        from .factory import ones
        return ones(*size, **self._new_options(dtype, device), requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        from .factory import empty
        return empty(*size, **self._new_options(dtype, device), requires_grad=requires_grad)

    def _new_options(self, dtype, device):
        return {"dtype": self.dtype if dtype is None else dtype, "device": self.device if device is None else device}

    def multinomial(self, num_samples, replacement=False, *, generator=None):
        from .factory import multinomial
        return multinomial(self, num_samples, replacement, generator=generator)

    def new_tensor(self, data):
        return _tensor_cls()(data, dtype=self.dtype, device=self.device)

    # --- in place: PyTorch's rules, and a version bump that backward checks
    def _in_place(self, op, operand=None, written=None, once=True):
        """Check an in-place change of this tensor by `operand`, which writes `written` (a view of the array;
        by default all of it), and, where `once`, writes no element twice (_check_overlap). True where
        the change is recorded as an op (_record does it; see records_in_place); otherwise the version moves
        on here and the caller writes the array (no_grad code, optimizer updates: nothing else to pay)."""
        from .tensor import _state
        state = _state
        if state.grad_enabled and self.requires_grad and self._ctx is None:
            raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an in-place "
                               f"operation (shape {self.shape}); wrap it in `with tr.no_grad():` or use .data")
        _check_overlap(op, self.array if written is None else written, operand, once)
        if not getattr(self.array.flags, "writeable", True):
            raise ValueError(f"{op}: the tensor's memory is read-only (a read-only NumPy array given to "
                             f"from_numpy?); copy it with .clone() first")
        if state.grad_enabled or state.forward_ad or state.tape is not None:
            from .tensor import records_in_place
            if records_in_place(self, operand):
                return True
        if self._ctx is not None or self._shared is not None:  # an op's output: its backward may read it
            from .tensor import note_in_place
            note_in_place(self)
        self._version += 1
        return False

    def _reshaped_in_place(self, op, make):
        """squeeze_, unsqueeze_, t_, transpose_: this tensor becomes make(self), a view of its own memory, and,
        where gradients are recorded, that view's place in the graph, as torch rebases grad_fn. Its version
        moves on, so a backward that kept its old value refuses. A view stays a view (of its old self)."""
        from .tensor import Tensor, _state, note_in_place
        if _state.grad_enabled and self.requires_grad and self._ctx is None:
            raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an in-place "
                               f"operation (shape {self.shape}); wrap it in `with tr.no_grad():` or use .data")
        _refuse_on_a_tape(op)
        # the old self, a tensor of its own over the same memory, is what the view is made of
        old = Tensor._make(self.array, self._ctx)
        old.requires_grad, old._output_nr, old._tangent = self.requires_grad, self._output_nr, self._tangent
        was_view = self._shared is not None and self._view is not None
        old._shared, old._view = self._shared_counter(), self._view
        new = make(old)
        note_in_place(self)
        self._version += 1
        self.array = new.array
        if was_view and new is not old:
            self._view = new._view
        if _state.grad_enabled:
            retained = self.retains_grad
            self._ctx, self.requires_grad, self._output_nr = new._ctx, new.requires_grad, new._output_nr
            if retained:
                self.retain_grad()
            if self._name is not None:
                self.name = self._name
        if _state.forward_ad:
            self._tangent = new._tangent
            if _state.duals is not None:
                from .tensor import note_dual
                note_dual(self)
        return self

    def squeeze_(self, dim=None):
        return self._reshaped_in_place("squeeze_", lambda x: x.squeeze(dim))

    def unsqueeze_(self, dim):
        return self._reshaped_in_place("unsqueeze_", lambda x: x.unsqueeze(dim))

    def transpose_(self, dim0, dim1):
        return self._reshaped_in_place("transpose_", lambda x: x.transpose(dim0, dim1))

    swapdims_ = swapaxes_ = transpose_

    def t_(self):
        if self.ndim > 2:
            raise RuntimeError(f"t_() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self._reshaped_in_place("t_", lambda x: x.t())

    def _operand(self, other, op):
        """Another operand's raw array (on this device), or the number itself."""
        if isinstance(other, _tensor_cls()):
            if other.device != self.device:
                raise backend.DeviceError(f"{op}: operands are on {self.device} and {other.device}")
            return other.array
        from .tensor import _as_number, _numeric
        other = _as_number(other)
        if isinstance(other, (bool, int, float)):
            return other
        return backend.to_device(_numeric(other, op), self.device)

    def _record(self, op, compute, operand=None, reads_old=False):
        """The in-place change as torch records it: compute(old value, operand) out of place, written into
        this tensor's memory, and this tensor rebased onto the node that made the result (as torch rebases
        grad_fn). reads_old: compute's backward reads the old value (True; "operand": only for the operand's
        gradient, as a product's), so where a gradient needs it the old value gets a copy of its own."""
        from .tensor import old_value, rebase_in_place
        shared = self._shared
        if shared is not None and shared.viewed:
            _refuse_on_a_tape(op)
            if self._view is not None:
                return self._record_through_base(op, compute, operand, reads_old)
        old = old_value(self, copy=_keeps_old(reads_old, self, operand))
        result = self._result(op, compute, old, operand)
        return rebase_in_place(self, old, result._as_dtype(self.dtype))

    def _record_through_base(self, op, compute, operand, reads_old):
        """The recorded in-place change of a view, as torch's CopySlices: the view's new value computed out of
        place, written into its base by the op's write_back (an IndexPut at a slice's index), the base rebased
        (a base that is a view itself writes into its own base), and the view made again from the base."""
        from .tensor import _state, current_view, made_again, old_value
        current_view(self)  # taken before an earlier change of its base: its graph first
        made_by, _, options, base, _, _ = self._view
        if made_by is None:
            raise RuntimeError(f"{op}: a view (shape {self.shape}) was created in no_grad mode and is being "
                               f"modified in place with grad mode enabled: take the view and make the change "
                               f"both inside the no_grad block or both outside")
        name = made_by.__name__.lower()
        if made_by.write_back is None or made_by.multiple_outputs:
            raise RuntimeError(f"{op}: an in-place change of a view made by {name} (shape {self.shape}) cannot be "
                               f"recorded while gradients are; use the out-of-place form ({_out_of_place(op)})")
        if _state.grad_enabled and base.requires_grad and base._ctx is None:
            raise RuntimeError(f"{op}: a view of a leaf Variable that requires grad is being used in an in-place "
                               f"operation (view of shape {self.shape} made by {name} of shape {base.shape})")
        # the old value comes from the view made again, as torch's CopySlices reads it from the root's gradient:
        # the nodes of this view and of the views between, and the hooks on them, see only the uses made of them
        fresh = made_again(self)
        old = old_value(fresh, copy=_keeps_old(reads_old, self, operand))
        result = self._result(op, compute, old, operand)._as_dtype(self.dtype)
        base._record(op, lambda x, v: made_by.write_back(x, v, **options), result)
        current_view(self)
        return self

    def _result(self, op, compute, x, operand):
        """compute(x, operand), the out-of-place result of an in-place op on this tensor, refused as torch
        refuses it: a result that needs another shape (broadcasting the operand) or a dtype of a higher kind
        (float into int)."""
        from .dtypes import promote_types
        try:
            result = compute(x, operand)
        except (ValueError, TypeError, IndexError) as e:
            # as torch: an operand of a shape that does not broadcast (a ValueError out of place) is a RuntimeError
            kind = next(k for k in (IndexError, TypeError, RuntimeError) if isinstance(e, k) or k is RuntimeError)
            raise kind(f"{op}: {e}") from None
        if result.shape != self.shape:
            raise RuntimeError(f"{op}: output with shape {self.shape} doesn't match the broadcast shape "
                               f"{result.shape}")
        if promote_types(result.dtype, self.dtype) != self.dtype and result.dtype.kind != self.dtype.kind:
            raise RuntimeError(f"{op}: result type {result.dtype} can't be cast to the desired output type "
                               f"{self.dtype}")
        return result

    def _update(self, op, compute, operand=None, reads_old=False):
        """self[...] = compute(self, operand): recorded where gradients flow (_record), else on the arrays."""
        from .tensor import no_grad
        if self._in_place(op, operand):
            return self._record(op, compute, operand, reads_old)
        try:
            with no_grad():
                result = self._result(op, compute, self, operand)
        except Exception:
            self._version -= 1
            raise
        self.array[...] = result.array
        return self

    def _put(self, op, index, value):
        """The recorded self[index] = value (a Tensor, an array or a number), as an IndexPut."""
        from .tensor import _assigned, _raw_index
        index = _raw_index(index)
        value = _assigned(op, self, index, self._lift(value, op))
        return self._record(op, lambda x, v: _ops().IndexPut.apply(x, v._as_dtype(x.dtype), index=index), value)

    def add_(self, other, *, alpha=1):
        return self._update("add_", lambda x, y: x + (y if alpha == 1 else _scaled(x, y, alpha)), other)

    def sub_(self, other, *, alpha=1):
        return self._update("sub_", lambda x, y: x - (y if alpha == 1 else _scaled(x, y, alpha)), other)

    def mul_(self, other):
        # the product's backward reads the old value only for the other operand's gradient
        return self._update("mul_", lambda x, y: x * y, other, reads_old="operand")

    def div_(self, other, *, rounding_mode=None):
        return self._update("div_", lambda x, y: x.div(y, rounding_mode=rounding_mode), other)

    true_divide_ = div_

    # these backwards read the old value: _update keeps a copy of it where a gradient wants it
    def floor_divide_(self, other):
        return self._update("floor_divide_", lambda x, y: x.floor_divide(y), other, reads_old=True)

    def pow_(self, exponent):
        return self._update("pow_", lambda x, e: x ** e, exponent, reads_old=True)

    def remainder_(self, other):
        return self._update("remainder_", lambda x, y: x.remainder(y), other, reads_old=True)

    # augmented assignment changes the tensor in place, as in torch (a += b is a.add_(b))
    __iadd__, __isub__, __imul__, __itruediv__ = add_, sub_, mul_, div_
    __ifloordiv__, __ipow__, __imod__ = floor_divide_, pow_, remainder_

    def clamp_(self, min=None, max=None):
        return self._update("clamp_", lambda x, _: x.clamp(min, max))

    clip_ = clamp_

    def clamp_min_(self, min):
        return self._update("clamp_min_", lambda x, _: x.clamp(min=min))

    def clamp_max_(self, max):
        return self._update("clamp_max_", lambda x, _: x.clamp(max=max))

    def fmod_(self, other):
        return self._update("fmod_", lambda x, y: x.fmod(y), other, reads_old=True)

    def asin_(self):
        return self._update("asin_", lambda x, _: x.asin(), reads_old=True)

    def acos_(self):
        return self._update("acos_", lambda x, _: x.acos(), reads_old=True)

    def atan2_(self, other):
        return self._update("atan2_", lambda x, y: x.atan2(y), other, reads_old=True)

    arcsin_, arccos_, arctan2_ = asin_, acos_, atan2_

    def float_power_(self, exponent):
        if self.dtype != np.float64:
            raise RuntimeError(f"float_power_: the base given to float_power_ has dtype {self.dtype} but the "
                               f"operation's result requires dtype float64")
        return self._update("float_power_", lambda x, e: x.float_power(e), exponent, reads_old=True)

    def lerp_(self, end, weight):
        """lerp, in place (weight a number, or a tensor that needs no gradient)."""
        return self._update("lerp_", lambda x, e: x.lerp(e, weight), end)

    def addcmul_(self, tensor1, tensor2, *, value=1):
        return self.add_(tensor1 * tensor2 if value == 1 else value * tensor1 * tensor2)

    def addcdiv_(self, tensor1, tensor2, *, value=1):
        return self.add_(tensor1 / tensor2 if value == 1 else value * tensor1 / tensor2)

    def tril_(self, diagonal=0):
        return self._update("tril_", lambda x, _: x.tril(diagonal))

    def triu_(self, diagonal=0):
        return self._update("triu_", lambda x, _: x.triu(diagonal))

    def zero_(self):
        if self._in_place("zero_", once=False):  # (torch lets zero_ and fill_ write an element twice)
            return self._put("zero_", Ellipsis, 0)
        self.array[...] = 0
        return self

    def fill_(self, value):
        if isinstance(value, _tensor_cls()):
            from .tensor import records_in_place
            if value.ndim:
                raise RuntimeError(f"fill_: only supports a 0-dimensional value tensor, but got one with "
                                   f"{value.ndim} dimension(s)")
            if value.device != self.device:
                raise backend.DeviceError(f"fill_: value is on {value.device}, the tensor on {self.device}")
            if records_in_place(self, value) and self._in_place("fill_", value):
                return self._put("fill_", Ellipsis, value)  # its gradient: the sum of the tensor's
            value = value.item()
        value = _fill_value("fill_", self, value)
        if self._in_place("fill_", once=False):
            return self._put("fill_", Ellipsis, value)
        self.array[...] = value
        return self

    def copy_(self, src):
        """Copy src's values in (cast to this dtype, moved to this device, broadcast to this shape)."""
        from .tensor import _native
        array = src.array if isinstance(src, _tensor_cls()) else _native(src, "copy_")
        _check_broadcasts_to(array.shape, self.shape, lambda: RuntimeError(
            f"copy_: the source's shape {tuple(array.shape)} does not broadcast to the tensor's {self.shape}"))
        if self._in_place("copy_", src):
            return self._put("copy_", Ellipsis, src.to(self.device) if isinstance(src, _tensor_cls()) else array)
        self.array[...] = backend.to_device(array, self.device)
        return self

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        from . import draws
        from .factory import generator_for
        _floating_only("normal_", self)
        if not (np.isfinite(mean) and np.isfinite(std) and std >= 0):
            raise ValueError(f"normal_: expects a finite mean and std >= 0; got mean={mean}, std={std}")
        drawn = draws.normal(generator_for(generator, "normal_"), self.shape, self.dtype, mean, std)
        if self._in_place("normal_"):
            return self._put("normal_", Ellipsis, drawn)
        self.array[...] = backend.to_device(drawn, self.device)
        return self

    def uniform_(self, a=0.0, b=1.0, *, generator=None):
        from . import draws
        from .factory import generator_for
        _floating_only("uniform_", self)
        _check_range("uniform_", a, b)
        drawn = draws.uniform(generator_for(generator, "uniform_"), self.shape, self.dtype, a, b)
        if self._in_place("uniform_"):
            return self._put("uniform_", Ellipsis, drawn)
        self.array[...] = backend.to_device(drawn, self.device)
        return self

    def __setitem__(self, index, value):
        from .tensor import Tensor, _assigned, _native, _raw_index
        if (isinstance(index, Tensor) and index.dtype == np.bool_ and index.shape == self.shape
                and (isinstance(value, (bool, int, float)) or isinstance(value, Tensor) and not value.ndim)):
            # a[a < 0] = 0 is masked_fill_: a select, which a traced step computes from each step's mask
            self.masked_fill_(index, value)
            return
        tensor = isinstance(value, Tensor)
        if tensor:
            if value.device != self.device:
                raise backend.DeviceError(f"__setitem__: value is on {value.device}, the tensor on {self.device}")
        else:
            from . import dtypes
            from .tensor import _python_data
            python_data = _python_data(value)
            value = _native(value, "__setitem__")
            if python_data:  # as torch: a number that does not fit (NaN into an int tensor) is refused
                dtypes.check_fits(value, self.dtype, "__setitem__")
            value = backend.to_device(value, self.device)  # CuPy refuses a NumPy array assigned to a slice
        index = _raw_index(index)
        array = value.array if tensor else value
        basic = _ops()._is_basic_index(index)  # index arrays may reach an element twice, as torch lets them
        if self._in_place("__setitem__", value, self._written("__setitem__", index, array) if basic else None,
                          once=basic):
            self._put("__setitem__", index, value)
            return
        try:
            self.array[index] = _assigned("__setitem__", self, index, array)
        except RuntimeError:
            self._version -= 1
            raise
        except (IndexError, ValueError, TypeError) as e:
            self._version -= 1
            # a value that does not broadcast is a RuntimeError, as torch's (and as when it is recorded)
            kind = next(k for k in (IndexError, TypeError, RuntimeError) if isinstance(e, k) or k is RuntimeError)
            raise kind(f"__setitem__: {e} (tensor of shape {self.shape}, value of shape "
                       f"{tuple(array.shape)})") from None

    def _written(self, op, index, value):
        """What self[index] = value writes at a basic index, a view, for _in_place."""
        try:
            return self.array[index]
        except IndexError as e:
            raise IndexError(f"{op}: {e} (tensor of shape {self.shape}, value of shape "
                             f"{tuple(np.shape(value))})") from None

    def masked_fill_(self, mask, value):
        mask = _mask("masked_fill_", self, mask, in_place=True)
        if isinstance(value, _tensor_cls()):
            from .tensor import records_in_place
            if value.ndim:
                raise RuntimeError(f"masked_fill_: only supports a 0-dimensional value tensor, but got one "
                                   f"with {value.ndim} dimension(s)")
            if records_in_place(self, value) and self._in_place("masked_fill_", value, once=False):
                return self._record("masked_fill_", lambda x, v: x.masked_fill(mask, v), value)
            value = value.item()
        value = _fill_value("masked_fill_", self, value)
        if self._in_place("masked_fill_", once=False):
            return self._record("masked_fill_", lambda x, v: x.masked_fill(mask, v), value)
        self.array[...] = self.xp.where(mask, value, self.array)
        return self

    def masked_fill(self, mask, value):
        """A copy with `value` (cast to this tensor's dtype) where the boolean `mask`, broadcast to this
        shape, is True."""
        from .tensor import where
        mask = _mask("masked_fill", self, mask, in_place=False)
        value = _fill_operand("masked_fill", self, value, lambda ndim: ValueError(
            f"masked_fill: only supports a 0-dimensional value tensor, but got one with {ndim} dimension(s)"))
        return where(_constant(mask), value, self)

    def where(self, condition, other):
        """self where the bool condition holds, else other: tr.where(condition, self, other)."""
        from .tensor import where
        return where(condition, self, other)


def _remainder(x, other, mode, op):
    """remainder / fmod in the dtype torch promotes to: exact integers (no gradient), or the primitive."""
    from .dtypes import result_type
    number = isinstance(other, (bool, int, float))
    y = other if number else x._lift(other, op)
    dtype = result_type(x.array, other if number else y.array)
    if dtype.kind == "b":
        raise TypeError(f"{op}: not implemented for bool tensors")
    y = x._lift(other, op) if number else y
    a, b = x._as_dtype(dtype), y._as_dtype(dtype)
    if a.device != b.device:
        raise backend.DeviceError(f"{op}: operands are on {a.device} and {b.device}")
    if dtype.kind in "iu":
        xp = x.xp
        if math.prod(np.broadcast_shapes(a.shape, b.shape)) and bool((b.array == 0).any()):
            raise RuntimeError(f"{op}: ZeroDivisionError, integer division by zero (shapes {a.shape} and {b.shape})")
        return _computed(getattr(xp, "remainder" if mode == "floor" else "fmod")(a.array, b.array), "integer remainder")
    return _ops().Remainder.apply(a, b, mode=mode)


# the out-of-place form to name where an in-place change cannot be recorded
_OUT_OF_PLACE = {"add_": "y = y + other", "sub_": "y = y - other", "mul_": "y = y * other", "div_": "y = y / other",
                 "clamp_": "y = y.clamp(min, max)", "masked_fill_": "y = y.masked_fill(mask, value)"}


def _keeps_old(reads_old, tensor, operand):
    """Whether the old value of an in-place change needs a copy of its own: its backward reads it (reads_old)
    for a gradient that is wanted."""
    operand_wants = isinstance(operand, _tensor_cls()) and operand.requires_grad
    return bool(reads_old) and (operand_wants or (reads_old is True and tensor.requires_grad))


def _elementwise_in_place(name):
    """The in-place form of the elementwise method `name` (exp_ of exp), as torch's."""
    def method(self):
        return self._update(f"{name}_", lambda x, _: getattr(x, name)(), reads_old=True)
    method.__name__ = method.__qualname__ = f"{name}_"
    method.__doc__ = f"{name}, written into this tensor (as torch's {name}_)."
    return method


for _name in ("exp", "log", "tanh", "sigmoid", "relu", "neg", "sqrt", "abs", "absolute", "sign", "sgn", "floor", "ceil",
              "round", "trunc", "reciprocal", "rsqrt", "square", "erf", "erfc", "expm1", "log1p", "sinc", "deg2rad",
              "rad2deg", "atan", "arctan", "asinh", "arcsinh", "acosh", "arccosh", "atanh", "arctanh"):
    setattr(TensorMethods, f"{_name}_", _elementwise_in_place(_name))


def _binary_in_place(name):
    """The in-place form of the binary method `name` (hypot_ of hypot), as torch's."""
    def method(self, other):
        return self._update(f"{name}_", lambda x, y: getattr(x, name)(y), other, reads_old=True)
    method.__name__ = method.__qualname__ = f"{name}_"
    method.__doc__ = f"{name}, written into this tensor (as torch's {name}_)."
    return method


for _name in ("hypot", "xlogy", "copysign", "heaviside"):
    setattr(TensorMethods, f"{_name}_", _binary_in_place(_name))


def _check_overlap(op, written, operand, once=True):
    """torch's refusals of an in-place change whose result would depend on the order elements are written in:
    `written` reaching one element of memory twice (an expanded tensor; asked where `once`), or
    the operand's memory partly the written memory (x[1:] = x[:-1]). As torch, only dense arrays are compared;
    an operand that is the written memory itself (x.add_(x)) is fine."""
    again = "Please clone() the tensor before performing the operation."
    if once and written.size > 1 and any(step == 0 and n > 1 for step, n in zip(written.strides, written.shape)):
        raise RuntimeError(f"{op}: unsupported operation: more than one element of the written-to tensor refers "
                           f"to a single memory location. {again}")
    operand = operand.array if isinstance(operand, _tensor_cls()) else operand
    if (getattr(operand, "strides", None) is None or operand.__class__ is not written.__class__
            or not operand.size or not written.size or not (_dense(written) and _dense(operand))):
        return
    (begin, end), (other_begin, other_end) = backend.memory_span(written), backend.memory_span(operand)
    if (begin, end) == (other_begin, other_end) and written.strides == operand.strides:
        return
    if begin < other_end and other_begin < end:
        raise RuntimeError(f"{op}: unsupported operation: some elements of the input tensor and the written-to "
                           f"tensor refer to a single memory location. {again}")


def _dense(array):
    """Whether the elements fill one block of memory, each once, in some order of the dims (torch's
    is_non_overlapping_and_dense)."""
    expected = array.itemsize
    for step, n in sorted((step, n) for step, n in zip(array.strides, array.shape) if n != 1):
        if step != expected:
            return False
        expected *= n
    return True


def _out_of_place(op):
    return _OUT_OF_PLACE.get(op, "build the new value out of place: tr.where(mask, value, y), or the pieces "
                                 "joined with tr.cat / tr.stack")


def _refuse_on_a_tape(op):
    """An op tape (a step being traced) names each value by its tensor and gives a changed tensor a new array
    (rebase_in_place), so memory that views or detached copies share cannot change in place on it: the step
    runs op by op."""
    from .tensor import ChangedInPlace, _state
    tape = _state.tape
    if tape is not None and tape.listening():
        raise ChangedInPlace(f"an in-place change ({op}) of memory a view or a detached copy shares (a slice, "
                             f"reshape, transpose or detach(), or the tensor it was taken of); build the value out of place "
                             f"({_out_of_place(op)})")


def _scaled(x, other, alpha):
    """alpha * other for add/sub, in the dtype of x and other (alpha takes no part in promotion)."""
    from .dtypes import result_type
    other = other if isinstance(other, (_tensor_cls(), bool, int, float)) else x._lift(other)
    dtype = result_type(x.array, other.array if isinstance(other, _tensor_cls()) else other)
    scaled = other * alpha
    return scaled._as_dtype(dtype) if isinstance(scaled, _tensor_cls()) else x._lift(scaled)._as_dtype(dtype)


def _mask(op, tensor, mask, in_place):
    """A boolean mask as a raw array that broadcasts with the tensor (to its shape, in place)."""
    from .tensor import _numeric
    mask = mask.array if isinstance(mask, _tensor_cls()) else tensor.xp.asarray(_numeric(mask, op))
    if mask.dtype != np.bool_:
        raise TypeError(f"{op}: mask must be a bool tensor; got {mask.dtype}")
    try:
        shape = np.broadcast_shapes(mask.shape, tensor.shape)
        if in_place and shape != tensor.shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"{op}: the mask's shape {tuple(mask.shape)} does not broadcast to the tensor's "
                         f"{tuple(tensor.shape)}") from None
    return mask


def _scalar_value(op, value):
    """A fill value: a Python or NumPy number (or a one-element array)."""
    if isinstance(value, (bool, int, float, np.generic)):
        return value
    from .tensor import _numeric
    array = _numeric(value, op)
    if array.size != 1:
        raise ValueError(f"{op}: value must be a number; got an array of shape {array.shape}")
    return array.reshape(()).item()


def _fill_value(op, tensor, value):
    """A fill value as a 0-d array of the tensor's dtype (ValueError if it has no such value)."""
    value = _scalar_value(op, value)
    if tensor.dtype.kind in "iu" and isinstance(value, float) and not np.isfinite(value):
        raise ValueError(f"{op}: value {value} cannot be converted to {tensor.dtype}")
    from .dtypes import check_fits
    check_fits(np.asarray(value), tensor.dtype, op)  # no silent wrap of 300 into uint8, as torch refuses
    return tensor.xp.asarray(value).astype(tensor.dtype)


def _fill_operand(op, tensor, value, too_many_dims):
    """A fill value as a tensor of the tensor's dtype: a 0-d tensor (whose gradient is kept), or a number
    (_fill_value); too_many_dims(ndim) is the error for a tensor of more dims, in torch's words for op."""
    if not isinstance(value, _tensor_cls()):
        return _constant(_fill_value(op, tensor, value))
    if value.ndim:
        raise too_many_dims(value.ndim)
    return value._as_dtype(tensor.dtype)


def _cat(tensors, dim):
    from .tensor import cat
    return cat(tensors, dim)


def reduction_dims(op, tensor, dim, empty_means_all=True):
    """The dims a reduction runs over, as NumPy's axis (None: all), checked as torch checks them.

    A 0-d tensor takes dim 0 or -1 and has nothing to reduce; a dim listed twice is an error; an
    empty tuple means every dim (as torch's sum, mean, amax) unless `empty_means_all` is False.
    """
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        dims = check_dims(op, dim, tensor.ndim)
        if tensor.ndim == 0 or (not dims and empty_means_all):
            return None
        return tuple(dims)
    dim = check_dim(op, dim, tensor.ndim)
    return None if tensor.ndim == 0 else dim


def _check_range(op, low, high):
    """[low, high) for uniform draws: finite, in order (torch's check)."""
    if not (np.isfinite(low) and np.isfinite(high) and low <= high):
        raise ValueError(f"{op}: expects to return a [from, to) range, but found from={low} > to={high} (both "
                         f"must be finite)")


def _broadcast_shape(op, a, b):
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} do not broadcast together") from None


def _root(total, p):
    """total ** (1/p) with gradient 0 where total is 0 (a norm or std of zeros), as torch's backward."""
    zero = _ops().Compare.apply(total, op="eq", other=0).array  # an op: a traced step sees it
    safe = _ops().where_tensor(zero, 1.0, total) ** (1.0 / p)  # no infinite slope at 0 enters the graph
    return _ops().where_tensor(zero, 0.0, safe)


def _one_dim(op, dim):
    """The dim of an op along one dim (softmax): an int, as the Tensor method requires."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}: argument 'dim' must be an int; got {type(dim).__name__} {dim!r}")
    return dim


def _check_nonempty(op, tensor, axes, message=None):
    """Reductions without an identity (max, argmax, the inf-norm) refuse empty dims, as torch does."""
    if not tensor.numel():
        if axes is None:
            raise RuntimeError(f"{op}: " + (message or "Expected reduction dim to be specified for "
                                                       "input.numel() == 0"))
        for a in np.atleast_1d(axes):
            if tensor.shape[a] == 0:
                raise IndexError(f"{op}: Expected reduction dim {int(a)} to have non-zero size (shape "
                                 f"{tensor.shape})")


def _floating_pair(x, op, other, cls, **options):
    """cls(x, other) for an op torch defines on floating tensors only (hypot, logaddexp): other must be a
    tensor, and the promoted dtype floating."""
    from .dtypes import result_type
    other = _tensor_argument(op, "other", other)
    dtype = result_type(x.array, other.array)
    if dtype.kind != "f":
        raise NotImplementedError(f"{op}: not implemented for {dtype} (only floating point tensors)")
    return x._binary(cls, other, **options)


def _floating_only(op, tensor):
    if tensor.dtype.kind != "f":
        raise TypeError(f"{op}: only floating point tensors are supported (use .float()); got {tensor.dtype}")


def _where_pick(a, b, op, better):
    """The masks are ops (Compare), so a traced step computes them from its values. Neither wins
    exactly where a == b: no NaN, neither better. Where either is NaN the result is a + b, NaN with
    the whole gradient to both, as torch's."""
    from .dtypes import result_type
    from .tensor import where
    b = a._lift(b, op)
    dtype = result_type(a.array, b.array)
    a, b = a._as_dtype(dtype), b._as_dtype(dtype)
    compare = _ops().Compare.apply
    floating = dtype.kind == "f"
    a_wins = compare(a, b, op=better, nan_wins=floating)
    if not floating:
        return where(a_wins, a, b)
    picked = where(a_wins, a, where(compare(a, b, op="eq"), a * 0.5 + b * 0.5, b))
    either_nan = a + b
    # two wheres, not one over a & b: a kernel fuses a where, and a compiled step replays both masks
    return where(compare(a, a, op="eq"), where(compare(b, b, op="eq"), picked, either_nan), either_nan)


def _check_tolerances(op, x, other, rtol, atol):
    """torch's checks: tolerances of at least zero, and two tensors of one dtype."""
    for name, tolerance in (("rtol", rtol), ("atol", atol)):
        if tolerance < 0:
            raise RuntimeError(f"{op}: {name} must be greater than or equal to zero, but got {tolerance}")
    if isinstance(other, _tensor_cls()) and other.dtype != x.dtype:
        raise RuntimeError(f"{op}: the dtypes of the two tensors must match; got {x.dtype} and {other.dtype}")


def _variance(op, x, dim, unbiased, keepdim, correction):
    if isinstance(dim, bool) and unbiased is None:  # torch's overload var(unbiased): over all elements
        if keepdim or correction is not None:
            raise TypeError(f"{op}(): a bool alone is {op}(unbiased), which takes no keepdim or correction; "
                            f"pass dim=None to reduce everything")
        dim, unbiased = None, dim
    if unbiased is not None and not isinstance(unbiased, (bool, np.bool_)):
        raise TypeError(f"{op}: argument 'unbiased' must be a bool, not {type(unbiased).__name__}")
    if unbiased is not None and correction is not None:
        raise ValueError(f"{op}: pass either unbiased or correction, not both")
    correction = correction if correction is not None else (1 if unbiased is None or unbiased else 0)
    _floating_only(op, x)
    axes = reduction_dims(op, x, dim)
    count = x.numel() if axes is None else int(np.prod([x.shape[a] for a in np.atleast_1d(axes)]))
    centred = x - x.mean(axis=axes, keepdims=True)
    return (centred * centred).sum(axis=axes, keepdims=keepdim) / builtins.max(count - correction, 0)


def _max_or_min(tensor, op, dim, keepdim):
    if isinstance(dim, _tensor_cls()):
        return tensor.maximum(dim) if op == "max" else tensor.minimum(dim)
    if dim is None:
        if tensor.dtype.kind != "f":
            return tensor.amax() if op == "max" else tensor.amin()
        _check_nonempty(op, tensor, None)
        # over all elements a NaN maximum's gradient goes to the NaNs, as torch's max() (not its amax)
        if op == "max":
            return _ops().Max.apply(tensor, axis=None, keepdims=False, nan_shares=True)
        return -_ops().Max.apply(-tensor, axis=None, keepdims=False, nan_shares=True)
    if isinstance(dim, (tuple, list)):
        raise TypeError(f"{op}: dim must be one int (use amax/amin for several dims); got {dim!r}")
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}: expected an int dim or a Tensor to compare with; got {type(dim).__name__}")
    indices = _arg(tensor, "arg" + op, dim, keepdim=True, bools=True)
    if tensor.ndim == 0:
        return MaxMin(tensor[...], indices)
    # the values are picked at the indices, so the gradient goes to that element alone, as in torch
    dim = check_dim(op, dim, tensor.ndim)
    if tensor.dtype.kind == "f":  # a sum of the picked element and -0s (exact), over a mask op a trace can see
        picked = _ops().FirstExtreme.apply(tensor, axis=dim, op="arg" + op)
        values = _ops().where_tensor(picked.array, tensor, -0.0).sum(axis=dim, keepdims=keepdim)
        return MaxMin(values, indices if keepdim else _computed(indices.array.squeeze(dim), "the indices of max or min"))
    xp, shape = tensor.xp, indices.shape
    where = tuple(indices.array if k == dim else
                  xp.arange(n).reshape((1,) * k + (n,) + (1,) * (len(shape) - k - 1))
                  for k, n in enumerate(shape))
    values = tensor[where]
    if not keepdim:
        values, indices = values.squeeze(dim), _computed(indices.array.squeeze(dim), "the indices of max or min")
    return MaxMin(values, indices)


def _arg(tensor, op, dim, keepdim, bools=False):
    if tensor.dtype.kind == "b" and not bools:
        raise TypeError(f"{op}: does not support bool input")
    axes = reduction_dims(op, tensor, dim)
    if isinstance(axes, tuple):
        raise TypeError(f"{op}: dim must be one int; got {dim!r}")
    _check_nonempty(op, tensor, axes)
    array = tensor.array
    if axes is None:
        index = getattr(array.reshape(-1), op)()
        shape = (1,) * tensor.ndim if keepdim and dim is None else ()
        return _computed(tensor.xp.asarray(index, dtype=np.int64).reshape(shape if tensor.ndim else ()), "argmax or argmin")
    index = getattr(array, op)(axis=axes)
    if keepdim:
        index = tensor.xp.expand_dims(index, axes)
    return _computed(index.astype(np.int64), "argmax or argmin")


def _shape_without(shape, axes):
    """shape with the reduced `axes` (checked, non-negative; None: all) dropped."""
    dropped = range(len(shape)) if axes is None else set(np.atleast_1d(axes).tolist())
    return tuple(n for d, n in enumerate(shape) if d not in dropped)


def _indices(op, index, tensor, max_ndim=None, kinds="iu"):
    """An index tensor's array (integers, or a bool mask with kinds="b") on the tensor's device, checked."""
    if not isinstance(index, _tensor_cls()):
        raise TypeError(f"{op}: the index must be a Tensor, not {type(index).__name__}")
    if index.dtype.kind not in kinds:
        wanted = "a bool mask" if kinds == "b" else "integers (int64)"
        raise TypeError(f"{op}: the index must hold {wanted}; got dtype {index.dtype}")
    if index.device != tensor.device:
        raise backend.DeviceError(f"{op}: the index is on {index.device} and the tensor on {tensor.device}")
    if max_ndim is not None and index.ndim > max_ndim:
        raise ValueError(f"{op}: the index must have at most {max_ndim} dim; got shape {index.shape}")
    from .tensor import index_used
    return index_used(index, op).array


def _round(tensor, mode, decimals=0):
    if tensor.dtype.kind != "f":
        return tensor.clone()
    return _ops().rounded(tensor, mode, decimals)


def _product_input(tensor, op, dtype):
    """The tensor in the dtype a product is taken in: `dtype`, or int64 for integer and bool tensors."""
    if dtype is not None:
        return tensor.to(dtype=dtype)
    return tensor.long() if tensor.dtype.kind in "biu" else tensor


def _scatter_grid(op, tensor, dim, index, src, tensor_only=False):
    """(the full index of self's elements the index tensor points at, src's matching part), checked as torch
    checks them; (None, None) for an empty index."""
    if not tensor.ndim:
        raise RuntimeError(f"{op}: needs a tensor of at least 1 dim; got a 0-d tensor (reshape it to (1,))")
    dim = check_dim(op, dim, tensor.ndim)
    array = _indices(op, index, tensor)
    is_tensor = isinstance(src, _tensor_cls())
    if not is_tensor and (tensor_only or isinstance(src, bool) or not isinstance(src, numbers.Number)):
        raise TypeError(f"{op}: argument 'src' must be a Tensor{'' if tensor_only else ' or a number'}, not "
                        f"{type(src).__name__}")
    if is_tensor:
        if src.dtype != tensor.dtype:
            raise RuntimeError(f"{op}(): Expected self.dtype to be equal to src.dtype (self {tensor.dtype}, src "
                               f"{src.dtype})")
        if src.device != tensor.device:
            raise backend.DeviceError(f"{op}: src is on {src.device} and the tensor on {tensor.device}")
    ndim = tensor.ndim
    if array.size == 0:
        return None, None
    if array.ndim != ndim or (is_tensor and builtins.max(src.ndim, 1) != ndim):
        raise RuntimeError(f"{op}(): Index tensor must have the same number of dimensions as self tensor and src "
                           f"(index {array.shape}, self {tensor.shape}, src "
                           f"{src.shape if is_tensor else 'a number'})")
    self_shape, src_shape = tensor.shape, (src.shape or (1,)) if is_tensor else None
    if any((d != dim and n > m) or (src_shape and n > src_shape[d]) for d, (n, m) in
           enumerate(zip(array.shape, self_shape))):
        raise RuntimeError(f"{op}(): Expected index {list(array.shape)} to be no larger than self "
                           f"{list(self_shape)} apart from dimension {dim}"
                           + (f" and to be no larger size than src {list(src_shape)}" if src_shape else ""))
    size = self_shape[dim]
    backend.check((array < 0) | (array >= size), lambda: IndexError(  # no negative indices, as torch's
        f"{op}(): index out of range for dimension {dim} of size {size}: the indices span "
        f"[{int(array.min())}, {int(array.max())}]"))
    xp = tensor.xp
    grid = list(xp.ix_(*[xp.arange(n) for n in array.shape]))
    grid[dim] = array
    part = src[tuple(slice(0, n) for n in array.shape)] if is_tensor and src.ndim else src
    return tuple(grid), part


_SCATTER_REDUCE_NAMES = {"add": "sum", "multiply": "prod"}  # scatter's reduce= as scatter_reduce names them
_SCATTER_REDUCTIONS = {  # reduce -> where it starts from when include_self=False
    "sum": 0, "mean": 0, "prod": 1,
    "amax": lambda dtype: -np.inf if dtype.kind == "f" else np.iinfo(dtype).min,
    "amin": lambda dtype: np.inf if dtype.kind == "f" else np.iinfo(dtype).max}


def _scattered_products(part, grid, shape):
    """ones(shape) times each element of `part` at its place in `grid`: a product of IndexPuts, one for
    each round of the elements that land on one place (the first, then the second...), so that the
    gradient is the product rule's, zeros included."""
    xp = part.xp
    places = xp.ravel_multi_index(tuple(xp.broadcast_to(i, part.shape).reshape(-1) for i in grid), shape)
    order = xp.argsort(places, kind="stable")
    sorted_places = places[order]
    first = xp.searchsorted(sorted_places, sorted_places, side="left")
    rank = xp.empty_like(order)
    rank[order] = xp.arange(order.size) - first
    flat, ones = part.reshape(-1), xp.ones(math.prod(shape), part.dtype)
    product = None
    for r in range(int(rank.max()) + 1):
        chosen = xp.nonzero(rank == r)[0]
        factor = _ops().IndexPut.apply(_constant(ones), flat[chosen], index=(places[chosen],))
        product = factor if product is None else product * factor
    return product.reshape(shape)


# the errors torch raises for a bad index (its dtype, its dims, its count, its range) and which dtypes it takes
_INDEX_ERRORS = {"index_add": (RuntimeError, IndexError, RuntimeError, RuntimeError, (np.int32, np.int64)),
                 "index_copy": (RuntimeError, IndexError, IndexError, IndexError, (np.int64,)),
                 "index_fill": (IndexError, RuntimeError, None, IndexError, (np.int64,))}


def _index_along(op, tensor, dim, index, source=None):
    """(the index of the slices `index` picks along dim, source) checked as torch checks them; (None, source)
    for an empty index. A 0-d tensor counts as one of shape (1,) (see _on_0d)."""
    bad_dtype, bad_ndim, bad_count, out_of_range, index_dtypes = _INDEX_ERRORS[op]
    dim = check_dim(op, dim, tensor.ndim)
    if not isinstance(index, _tensor_cls()):
        raise TypeError(f"{op}(): argument 'index' must be a Tensor, not {type(index).__name__}")
    if index.dtype not in index_dtypes:
        raise bad_dtype(f"{op}_(): Expected dtype {'/'.join(np.dtype(d).name for d in index_dtypes)} for index but "
                        f"got {index.dtype}")
    if index.ndim > 1:
        raise bad_ndim(f"{op}_(): Index is supposed to be a vector, but got dim: {index.ndim} (shape {index.shape})")
    array = _indices(op, index, tensor).reshape(-1)
    shape = tensor.shape or (1,)
    size = shape[dim]
    if source is not None:
        source = _tensor_argument(op, "source", source)
        if source.dtype != tensor.dtype:
            raise RuntimeError(f"{op}_(): self ({tensor.dtype}) and source ({source.dtype}) must have the same "
                               f"scalar type")
        if source.device != tensor.device:
            raise backend.DeviceError(f"{op}: source is on {source.device} and the tensor on {tensor.device}")
        source_shape = source.shape or (1,)
        if len(source_shape) != len(shape) or any(n != m for d, (n, m) in enumerate(zip(source_shape, shape))
                                                  if d != dim):
            raise RuntimeError(f"{op}_(): source tensor shape must match self tensor shape, excluding the specified "
                               f"dimension. Got self.shape = {list(tensor.shape)} source.shape = "
                               f"{list(source.shape)}")
        if source_shape[dim] != array.size:
            raise bad_count(f"{op}_(): Number of indices ({array.size}) should be equal to source.size(dim) "
                            f"({source_shape[dim]}), for dim: {dim}")
    low = -size if op == "index_fill" else 0  # index_fill alone counts from the end, as torch's
    outside = (array < low) | (array >= size)
    backend.check(outside, lambda: out_of_range(f"{op}_(): index {int(array[outside][0])} is out of bounds for "
                                                f"dimension {dim} with size {size}"))
    if not array.size:
        return None, source
    if op == "index_fill":  # each filled element once, so a value tensor's gradient counts it once
        array = tensor.xp.unique(array % size)
    return (slice(None),) * dim + (array,), source


def _sliced(tensor, at):
    """The shape of tensor[at]: what a source is reshaped to (a 0-d source of a 0-d tensor's one slice)."""
    dim = len(at) - 1
    return tensor.shape[:dim] + (at[-1].size,) + tensor.shape[dim + 1:]


def _on_0d(tensor, change):
    """change(tensor), a 0-d tensor changed as the one element of shape (1,) it is."""
    if tensor.ndim:
        return change(tensor)
    return change(tensor.reshape(1)).reshape(())


def _running_extreme(tensor, op, dim):
    dim = check_dim(op, dim, tensor.ndim)
    if not tensor.ndim:
        return MaxMin(tensor.clone(), _constant(tensor.xp.zeros((), dtype=np.int64)))
    xp, x = tensor.xp, tensor.array
    running = (xp.maximum if op == "cummax" else xp.minimum).accumulate(x, axis=dim)
    # the last place where the running extreme was reached (NaN: the last NaN, which it stays)
    reached = (x == running) | (xp.isnan(x) if x.dtype.kind == "f" else False)
    steps = xp.arange(x.shape[dim]).reshape((-1,) + (1,) * (x.ndim - dim - 1))
    index = xp.maximum.accumulate(xp.where(reached, steps, 0), axis=dim).astype(np.int64)
    index = _computed(index, f"{op}'s indices")
    return MaxMin(tensor.gather(dim, index), index)


def _one_dtype(op, *tensors):
    """RuntimeError naming the dtypes where the operands' differ (torch does not promote these products)."""
    if len({t.dtype for t in tensors}) > 1:
        raise RuntimeError(f"{op}: input tensors must have the same dtype, but got "
                           f"{', '.join(str(t.dtype) for t in tensors)}")


def _batches(op, input, batch1, batch2):
    """batch1 and batch2, checked as torch's baddbmm and addbmm check them: 3-D, of input's dtype."""
    batch1, batch2 = _tensor_argument(op, "batch1", batch1), _tensor_argument(op, "batch2", batch2)
    for name, batch in (("batch1", batch1), ("batch2", batch2)):
        if batch.ndim != 3:
            raise RuntimeError(f"{op}: {name} must be a 3D tensor; got shape {batch.shape}")
    _one_dtype(op, input, batch1, batch2)
    return batch1, batch2


def _check_broadcasts_to(shape, target, error):
    """Raises error() unless `shape` broadcasts to `target` without growing it."""
    try:
        fits = np.broadcast_shapes(shape, target) == tuple(target)
    except ValueError:
        fits = False
    if not fits:
        raise error()


def _beta_plus_alpha(op, input, product, beta, alpha):
    """beta * input + alpha * product, input broadcast to the product's shape (never past it), as torch's
    addmm family; with beta 0 input is not read (its NaNs stay out) and its gradient is zeros, as torch's."""
    _check_broadcasts_to(input.shape, product.shape, lambda: RuntimeError(
        f"{op}: input of shape {input.shape} does not broadcast to the product's shape {product.shape}"))
    scaled = product if alpha == 1 else product * alpha
    if beta == 0:
        return scaled + _ops().where_tensor(input.xp.ones((), dtype=bool), 0, input)
    return scaled + (input if beta == 1 else input * beta)


def _log_add_exp(a, b):
    """log(exp(a) + exp(b)) as the larger plus log1p(exp(smaller - larger)): no overflow, exact for values far
    apart, each one's gradient its softmax weight (a tie splits it evenly); two equal infinities give
    themselves, a NaN NaN."""
    ops = _ops()
    a_larger = ops.Compare.apply(a, b, op="ge").array
    larger, smaller = ops.where_tensor(a_larger, a, b), ops.where_tensor(a_larger, b, a)
    same_infinity = (larger.isinf() & (larger == smaller)).array
    # the infinities leave the subtraction (inf - inf would warn) and come back as a gap of -inf
    gap = ops.where_tensor(same_infinity, -np.inf, smaller - ops.where_tensor(same_infinity, 0.0, larger))
    return larger + gap.exp().log1p()


def _triangle(tensor, op, diagonal):
    if tensor.ndim < 2:
        raise ValueError(f"{op}: input tensor must have at least 2 dimensions; got shape {tensor.shape}")
    rows, cols = tensor.shape[-2:]
    lower = tensor.xp.tri(rows, cols, diagonal if op == "tril" else diagonal - 1, dtype=bool)
    keep = lower if op == "tril" else ~lower
    return _ops().where_tensor(keep, tensor, _constant(tensor.xp.zeros((), dtype=tensor.dtype)))
