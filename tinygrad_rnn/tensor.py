"""Tensor, graph recording and the iterative backward pass.

A recorded graph is made of `Function` nodes. Each node keeps its parents (the node that made each
input, or the input tensor itself when it is a leaf), the shapes of its inputs, what its backward
needs, its op name, the scope it was recorded in and the name of the tensor it produced. That is
enough to backpropagate and, for `viz`, to draw the graph without holding the forward activations.
"""
import contextlib

import numpy as np

from . import backend

FLOAT_DTYPES = (np.float16, np.float32, np.float64)
_constants = {}  # (value, dtype, array type) -> constant Tensor: scalars in expressions cost nothing


# ----------------------------------------------------------------------------- recording state

class _State:
    grad_enabled = True
    keep_grads = False
    scope = ()


_state = _State()


@contextlib.contextmanager
def no_grad():
    """Run without recording a graph (evaluation, optimizer updates)."""
    before = _state.grad_enabled
    _state.grad_enabled = False
    try:
        yield
    finally:
        _state.grad_enabled = before


@contextlib.contextmanager
def enable_grad():
    """Record a graph again inside a `no_grad` block."""
    before = _state.grad_enabled
    _state.grad_enabled = True
    try:
        yield
    finally:
        _state.grad_enabled = before


def is_grad_enabled():
    return _state.grad_enabled


@contextlib.contextmanager
def scope(name, index=None):
    """Tag every node recorded inside with a (name, index) pair, nestable.

    Layers use it for ("layer", 0), ("direction", "reverse"), ("t", 3), so a drawing can cluster the
    unrolled graph by time step and fold it back into the recurrent picture.
    """
    before = _state.scope
    _state.scope = before + ((name, index),)
    try:
        yield
    finally:
        _state.scope = before


def current_scope():
    return _state.scope


@contextlib.contextmanager
def retain_grads():
    """Every node recorded inside keeps the gradient of its output after backward (as `.grad`)."""
    before = _state.keep_grads
    _state.keep_grads = True
    try:
        yield
    finally:
        _state.keep_grads = before


# ----------------------------------------------------------------------------- graph nodes

class Function:
    """A recorded op. Subclasses define `forward(*arrays, **options)` and `backward(g)`.

    `backward` returns one gradient per input (None where the input needs none); gradients may
    have the broadcast shape, which the engine sums back to each input's shape.
    """
    __slots__ = (
        "__dict__",
        "freed",
        "g",
        "g_owned",
        "grad",
        "keep_grad",
        "name",
        "needs",
        "parents",
        "pending",
        "scope",
        "shape",
        "shapes",
    )
    backward_into = None  # ops whose gradient is a scatter define backward_into(g, input_grad_buffer)

    @classmethod
    def apply(cls, *inputs, **options):
        if len(inputs) > 1:
            _check_same_device(cls, inputs)
        node = cls.__new__(cls)
        try:
            out = node.forward(*[t.array for t in inputs], **options)
        except (ValueError, TypeError, IndexError) as e:
            described = ", ".join(f"{t.shape} {t.dtype}" for t in inputs)
            raise type(e)(f"{cls.__name__.lower()}: {e} (inputs: {described})") from e
        if not _state.grad_enabled:
            return Tensor._make(out, None)
        needs = tuple([t.requires_grad for t in inputs])
        if True not in needs:
            return Tensor._make(out, None)
        node.parents = tuple([t._ctx or t for t in inputs])
        node.needs = needs
        node.shapes = tuple([t.array.shape for t in inputs])
        node.scope = _state.scope
        node.shape = out.shape
        node.keep_grad = _state.keep_grads
        node.name = node.grad = node.g = None
        node.freed = False
        return Tensor._make(out, node)

    @property
    def op(self):
        return type(self).__name__.lower()

    def forward(self, *arrays, **options):
        raise NotImplementedError

    def backward(self, g):
        raise NotImplementedError

    def __repr__(self):
        return f"<{self.op} -> {self.name or ''}{self.shape} scope={self.scope}>"


def _check_same_device(cls, inputs):
    first = inputs[0].array.__class__
    for t in inputs:
        if t.array.__class__ is not first:
            break
    else:
        return
    if len({backend.device_of(t.array) for t in inputs}) > 1:
        devices = ", ".join(f"{t.shape} on {t.device}" for t in inputs)
        raise backend.DeviceError(f"{cls.__name__.lower()}: inputs are on different devices "
                                  f"({devices}); move them with .to(device) first")


def _unbroadcast(g, shape):
    """Sum a broadcast gradient back to the shape of the input it flows into."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _graph_nodes(root):
    """All nodes above `root`, each with `pending` = how many consumers it has in this graph."""
    root.pending = 0
    seen = {root}
    stack = [root]
    while stack:
        node = stack.pop()
        for p in node.parents:
            if isinstance(p, Function):
                if p in seen:
                    p.pending += 1
                else:
                    p.pending = 1
                    seen.add(p)
                    stack.append(p)
    return seen


def backward(tensor, grad=None, retain_graph=False):
    """Backpropagate from `tensor` into the `.grad` of every leaf that requires a gradient.

    Iterative (Kahn's order), so an unrolled graph of any depth works. A node runs once every
    consumer has sent its gradient; leaf gradients accumulate across calls like PyTorch's.
    """
    if not tensor.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad and has no graph "
                           "(was it made under no_grad, or from inputs without requires_grad?)")
    xp = tensor.xp
    if grad is None:
        if tensor.array.size != 1:
            raise RuntimeError(f"backward: grad can be implicitly created only for a scalar output; "
                               f"got shape {tensor.shape}, pass grad= of that shape")
        g = xp.ones_like(tensor.array)
    else:
        g = grad.array if isinstance(grad, Tensor) else xp.asarray(grad, dtype=tensor.dtype)
        if g.shape != tensor.shape:
            raise ValueError(f"backward: grad has shape {g.shape} but the tensor has {tensor.shape}")
    root = tensor._ctx
    if root is None:
        _accumulate_leaf(tensor, g)
        return
    _graph_nodes(root)
    root.g, root.g_owned = g, False
    ready = [root]
    while ready:
        node = ready.pop()
        if node.freed:
            raise RuntimeError(f"backward: trying to backward through the graph a second time "
                               f"(op {node.op}); its saved arrays were freed. Pass "
                               f"retain_graph=True to the first backward to keep them")
        g, node.g = node.g, None
        if g is not None and node.keep_grad:
            node.grad = g if node.grad is None else node.grad + g
        if g is not None and node.backward_into is not None:
            parent = node.parents[0]  # a slice: its gradient lands in the input's own buffer
            if isinstance(parent, Function) or parent.requires_grad:
                node.backward_into(g, _gradient_buffer(parent, node.shapes[0], g))
            grads = (None,)
        else:
            grads = (None,) * len(node.parents) if g is None else node.backward(g)
        if not retain_graph:
            node.__dict__.clear()
            node.freed = True
        for parent, gi, shape in zip(node.parents, grads, node.shapes):
            if isinstance(parent, Function):
                if gi is not None:
                    if gi.shape != shape:
                        gi = _unbroadcast(gi, shape)
                    if parent.g is None:
                        parent.g, parent.g_owned = gi, False
                    elif parent.g_owned:
                        parent.g += gi
                    else:
                        parent.g, parent.g_owned = parent.g + gi, True
                parent.pending -= 1
                if parent.pending == 0:
                    ready.append(parent)  # every consumer has sent its gradient (or None)
            elif gi is not None and parent.requires_grad:
                _accumulate_leaf(parent, gi if gi.shape == shape else _unbroadcast(gi, shape))


def _gradient_buffer(parent, shape, like):
    """A gradient array that belongs to `parent` alone, so it can be written in place.

    A gradient handed over by an op may be shared (Add sends the same array to both inputs);
    only arrays the engine made itself are marked owned.
    """
    if isinstance(parent, Function):
        if parent.g is None:
            parent.g = backend.xp_of(like).zeros(shape, dtype=like.dtype)
        elif not parent.g_owned:
            parent.g = parent.g.copy()
        parent.g_owned = True
        return parent.g
    if parent._grad is None:
        parent._grad = parent.xp.zeros(shape, dtype=parent.dtype)
    return parent._grad


def _accumulate_leaf(tensor, g):
    if g.dtype != tensor.dtype:
        g = g.astype(tensor.dtype)
    if tensor._grad is None:
        tensor._grad = g.copy()  # a fresh array: backward may hand the same g to several inputs
    else:
        tensor._grad += g


# ----------------------------------------------------------------------------- Tensor

def _as_array(data, dtype, device):
    xp = backend.xp_for(device)
    if isinstance(data, Tensor):
        data, dtype = data.array, dtype or data.dtype  # a tensor keeps its dtype
    if dtype is not None:
        return xp.asarray(backend.to_device(data, device) if hasattr(data, "dtype") else data,
                          dtype=np.dtype(dtype))
    if hasattr(data, "dtype"):
        array = xp.asarray(backend.to_device(data, device))
    else:
        array = xp.asarray(np.asarray(data))
    if array.dtype.kind in "fc" or array.dtype.kind not in "biu":
        array = array.astype(np.float32) if array.dtype != np.float32 else array
    elif array.dtype.kind in "iu" and not hasattr(data, "dtype"):
        array = array.astype(np.int64)
    return array


class Tensor:
    """An n-dimensional array that records the ops applied to it.

    `Tensor(data, requires_grad=False, dtype=None, device=None)`: floating data becomes float32
    unless `dtype` says otherwise; integer and boolean arrays keep their type (indices, masks).
    """
    __slots__ = ("__weakref__", "_ctx", "_grad", "_name", "array", "requires_grad")
    __array_ufunc__ = None  # make NumPy hand `array * tensor` over to Tensor.__rmul__

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        if device is None and isinstance(data, Tensor):
            device = data.device
        elif device is None and hasattr(data, "dtype") and not isinstance(data, np.generic):
            device = backend.device_of(data)
        self.array = _as_array(data, dtype, backend.check_device(device))
        self._ctx = None
        self._grad = None
        self._name = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, ctx):
        t = object.__new__(Tensor)
        if data.__class__ is not np.ndarray and isinstance(data, np.generic):
            data = np.asarray(data)  # NumPy reductions return scalars; keep arrays throughout
        t.array = data
        t._ctx = ctx
        t.requires_grad = ctx is not None
        t._grad = None
        t._name = None
        return t

    # --- storage: `array` is the raw NumPy or CuPy array; `data` is PyTorch's detached view of it
    @property
    def data(self):
        """A tensor sharing this one's storage, cut from the graph, with requires_grad False."""
        return Tensor._make(self.array, None)

    @data.setter
    def data(self, value):
        value = value.array if isinstance(value, Tensor) else value
        if value.shape != self.shape or value.dtype != self.dtype:
            raise ValueError(f"data: assigned {value.shape} {value.dtype} to a tensor of {self.shape} {self.dtype}")
        self.array = value

    # --- metadata
    @property
    def shape(self):
        return self.array.shape

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def ndim(self):
        return self.array.ndim

    @property
    def size(self):
        return self.array.size

    def __len__(self):
        return len(self.array)

    @property
    def device(self):
        return backend.device_of(self.array)

    @property
    def xp(self):
        return backend.xp_of(self.array)

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, value):
        self._name = value
        if self._ctx is not None:
            self._ctx.name = value

    def named(self, name):
        """Set the name shown in graph drawings and return self (for use inside expressions)."""
        self.name = name
        return self

    # --- gradients
    @property
    def grad(self):
        """The gradient: accumulated for leaves; for other tensors only when retained."""
        if self._ctx is not None:
            g = self._ctx.grad
            return None if g is None else g
        return self._grad

    @grad.setter
    def grad(self, value):
        if self._ctx is not None:
            if value is not None:
                raise RuntimeError("grad: only leaf tensors have a settable .grad")
            self._ctx.grad = None
            return
        if value is not None and value.shape != self.shape:
            raise ValueError(f"grad: assigned gradient has shape {value.shape}, tensor has {self.shape}")
        self._grad = value.array if isinstance(value, Tensor) else value

    def requires_grad_(self, flag=True):
        if flag and self.dtype.type not in FLOAT_DTYPES:
            raise TypeError(f"only floating point tensors can require gradients; got dtype {self.dtype}")
        if self._ctx is not None and not flag:
            raise RuntimeError("requires_grad_: cannot turn off gradients of a non-leaf tensor; "
                               "use .detach()")
        self.requires_grad = flag
        return self

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient after backward (in `.grad`)."""
        if self._ctx is not None:
            self._ctx.keep_grad = True
        return self

    def backward(self, grad=None, retain_graph=False):
        backward(self, grad, retain_graph)

    def zero_grad(self):
        self._grad = None

    # --- conversion
    def detach(self):
        """The same data as a new leaf, cut from the graph."""
        t = Tensor._make(self.array, None)
        t._name = self._name
        return t

    def numpy(self):
        return backend.to_numpy(self.array).copy()

    def item(self):
        if self.array.size != 1:
            raise ValueError(f"item: only one-element tensors convert to a Python number; got shape {self.shape}")
        return self.array.reshape(()).item()

    def tolist(self):
        return backend.to_numpy(self.array).tolist()

    def to(self, device=None, dtype=None):
        """A copy on another device and/or with another dtype; gradients flow back through it."""
        from . import ops
        out = self
        if device is not None and backend.check_device(device) != self.device:
            out = ops.ToDevice.apply(out, device=backend.check_device(device))
        if dtype is not None and np.dtype(dtype) != out.dtype:
            out = ops.Cast.apply(out, dtype=np.dtype(dtype))
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def __repr__(self):
        extra = ""
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        if self.dtype != np.float32:
            extra += f", dtype={self.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn={self._ctx.op}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        if self._name:
            extra += f", name={self._name!r}"
        body = np.array2string(backend.to_numpy(self.array), separator=", ", prefix="tensor(",
                               threshold=200, precision=4)
        return f"tensor({body}{extra})"


    # --- arithmetic (the ops module defines each primitive once; these only route to it)
    def _lift(self, other):
        """A Python number or array as a constant tensor of this tensor's dtype and device."""
        if isinstance(other, Tensor):
            return other
        if other.__class__ is float or other.__class__ is int:
            key = (other, self.array.dtype, self.array.__class__)
            constant = _constants.get(key)
            if constant is None:
                if len(_constants) > 4096:
                    _constants.clear()
                constant = _constants[key] = self._lift(np.asarray(other))
            return constant
        array = self.xp.asarray(other, dtype=self.dtype if self.dtype.kind == "f" else None)
        return Tensor._make(array, None)

    def __add__(self, other): return ops.Add.apply(self, self._lift(other))
    def __radd__(self, other): return ops.Add.apply(self._lift(other), self)
    def __sub__(self, other): return ops.Sub.apply(self, self._lift(other))
    def __rsub__(self, other): return ops.Sub.apply(self._lift(other), self)
    def __mul__(self, other): return ops.Mul.apply(self, self._lift(other))
    def __rmul__(self, other): return ops.Mul.apply(self._lift(other), self)
    def __truediv__(self, other): return ops.Div.apply(self, self._lift(other))
    def __rtruediv__(self, other): return ops.Div.apply(self._lift(other), self)
    def __pow__(self, other): return ops.Pow.apply(self, self._lift(other))
    def __rpow__(self, other): return ops.Pow.apply(self._lift(other), self)
    def __matmul__(self, other): return ops.Matmul.apply(self, self._lift(other))
    def __rmatmul__(self, other): return ops.Matmul.apply(self._lift(other), self)
    def __neg__(self): return ops.Neg.apply(self)
    def __getitem__(self, index): return ops.Getitem.apply(self, index=_raw_index(index))

    # comparisons give constant boolean tensors (masks for where); == stays identity for hashing
    def __lt__(self, other): return Tensor._make(self.array < self._lift(other).array, None)
    def __le__(self, other): return Tensor._make(self.array <= self._lift(other).array, None)
    def __gt__(self, other): return Tensor._make(self.array > self._lift(other).array, None)
    def __ge__(self, other): return Tensor._make(self.array >= self._lift(other).array, None)

    def exp(self): return ops.Exp.apply(self)
    def log(self): return ops.Log.apply(self)
    def tanh(self): return ops.Tanh.apply(self)
    def sigmoid(self): return ops.Sigmoid.apply(self)
    def relu(self): return ops.Relu.apply(self)
    def sqrt(self): return self ** 0.5

    def clip(self, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clip: give at least one of min and max")
        return ops.Clip.apply(self, low=min, high=max)

    clamp = clip

    # --- reductions: NumPy's axis/keepdims, PyTorch's dim/keepdim accepted too
    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return ops.Sum.apply(self, **_reduce_args(self, axis, keepdims, dim, keepdim))

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return ops.Mean.apply(self, **_reduce_args(self, axis, keepdims, dim, keepdim))

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return ops.Max.apply(self, **_reduce_args(self, axis, keepdims, dim, keepdim))

    # --- shapes
    def reshape(self, *shape):
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops.Reshape.apply(self, shape=shape)

    view = reshape

    def flatten(self):
        return self.reshape(-1)

    def permute(self, *axes):
        axes = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if sorted(a % self.ndim for a in axes) != list(range(self.ndim)):
            raise ValueError(f"permute: {axes} is not a permutation of the {self.ndim} dims of {self.shape}")
        return ops.Permute.apply(self, axes=tuple(a % self.ndim for a in axes))

    def transpose(self, dim0=-2, dim1=-1):
        """Swap two dims (PyTorch's transpose); `.T` reverses all of them."""
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return ops.Permute.apply(self, axes=tuple(axes))

    @property
    def T(self):
        return ops.Permute.apply(self, axes=tuple(reversed(range(self.ndim))))

    def unsqueeze(self, dim):
        shape = list(self.shape)
        shape.insert(dim if dim >= 0 else self.ndim + dim + 1, 1)
        return self.reshape(tuple(shape))

    def squeeze(self, dim):
        if self.shape[dim] != 1:
            raise ValueError(f"squeeze: dim {dim} of shape {self.shape} is not 1")
        shape = list(self.shape)
        del shape[dim]
        return self.reshape(tuple(shape))

    def split(self, split_size_or_sections, dim=0):
        """Pieces of `split_size` along `dim` (an int), or of the given sizes (a list), like PyTorch."""
        n = self.shape[dim]
        if isinstance(split_size_or_sections, int):
            sizes = [split_size_or_sections] * (n // split_size_or_sections)
            if n % split_size_or_sections:
                sizes.append(n % split_size_or_sections)
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise ValueError(f"split: sizes {sizes} do not add up to {n}, dim {dim} of {self.shape}")
        pieces, start = [], 0
        lead = (slice(None),) * (dim % self.ndim)
        for size in sizes:
            pieces.append(self[lead + (slice(start, start + size),)])
            start += size
        return tuple(pieces)

    def chunk(self, chunks, dim=0):
        n = self.shape[dim]
        return self.split(-(-n // chunks), dim)

    def __bool__(self):
        if self.array.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.item())

    __hash__ = object.__hash__


def _raw_index(index):
    """Integer tensors used as indices become their arrays."""
    if isinstance(index, Tensor):
        return index.array
    if isinstance(index, tuple):
        return tuple(i.array if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _reduce_args(tensor, axis, keepdims, dim, keepdim):
    axis = dim if dim is not None else axis
    if isinstance(axis, list):
        axis = tuple(axis)
    for a in (axis if isinstance(axis, tuple) else () if axis is None else (axis,)):
        if not -tensor.ndim <= a < tensor.ndim:
            raise ValueError(f"axis {a} is out of range for a tensor of shape {tensor.shape}")
    return {"axis": axis, "keepdims": keepdim if keepdim is not None else keepdims}


def cat(tensors, dim=0):
    """Concatenate along an existing dim."""
    tensors = list(tensors)
    _check_same_ranks("cat", tensors, dim)
    return ops.Cat.apply(*tensors, axis=dim)


def stack(tensors, dim=0):
    """Stack along a new dim; all shapes must match."""
    tensors = list(tensors)
    if len({t.shape for t in tensors}) > 1:
        raise ValueError(f"stack: all tensors must have the same shape; got {[t.shape for t in tensors]}")
    return ops.Stack.apply(*tensors, axis=dim)


def where(condition, x, y):
    """Elements of x where condition holds, else of y (condition gets no gradient)."""
    like = x if isinstance(x, Tensor) else y
    condition = condition.array if isinstance(condition, Tensor) else like.xp.asarray(condition)
    return ops.Where.apply(like._lift(x), like._lift(y), condition=condition)


def _check_same_ranks(op, tensors, dim):
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of tensors")
    shapes = [t.shape for t in tensors]
    ref = shapes[0]
    for s in shapes:
        if len(s) != len(ref) or any(a != b for i, (a, b) in enumerate(zip(s, ref)) if i != dim % len(ref)):
            raise ValueError(f"{op}: shapes {shapes} differ outside dim {dim}")


from . import ops  # last: ops subclasses Function, defined above
