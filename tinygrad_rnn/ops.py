"""Primitives: one class per op, its forward and its backward (the VJP) side by side.

`forward` works on raw arrays and takes `xp` from them, so every op runs on NumPy and CuPy.
`backward(g)` returns one gradient per input; the engine undoes broadcasting. Each op keeps only
what its backward needs, preferring its output (exp, tanh, sigmoid) over its input.
"""
import numpy as np

from . import backend
from .tensor import Function

# ----------------------------------------------------------------------------- binary, broadcasting


class Add(Function):
    def forward(self, x, y):
        return x + y

    def backward(self, g):
        return g, g


class Sub(Function):
    def forward(self, x, y):
        return x - y

    def backward(self, g):
        return g, -g if self.needs[1] else None


class Mul(Function):
    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, g):
        return (g * self.y if self.needs[0] else None,
                g * self.x if self.needs[1] else None)


class Div(Function):
    def forward(self, x, y):
        self.y, self.out = y, x / y
        return self.out

    def backward(self, g):
        gx = g / self.y
        return gx, -gx * self.out if self.needs[1] else None


class Pow(Function):
    def forward(self, x, y):
        self.x, self.y, self.out = x, y, x ** y
        return self.out

    def backward(self, g):
        xp = backend.xp_of(g)
        gx = g * self.y * self.x ** (self.y - 1) if self.needs[0] else None
        gy = g * self.out * xp.log(self.x) if self.needs[1] else None
        return gx, gy


class Matmul(Function):
    """Matrix product with NumPy's rules: 1-D operands are promoted, leading dims broadcast."""

    def forward(self, x, y):
        if x.ndim == 0 or y.ndim == 0:
            raise ValueError("both operands must have at least one dimension")
        if x.shape[-1] != y.shape[0 if y.ndim == 1 else -2]:
            raise ValueError(f"shapes {x.shape} and {y.shape} are not aligned: "
                             f"{x.shape[-1]} (last dim of the first) != "
                             f"{y.shape[0 if y.ndim == 1 else -2]} (the second's row count)")
        self.x, self.y = x, y
        return x @ y

    def backward(self, g):
        x, y = self.x, self.y
        x2 = x[None] if x.ndim == 1 else x
        y2 = y[:, None] if y.ndim == 1 else y
        if x.ndim == 1:
            g = g[..., None, :]
        if y.ndim == 1:
            g = g[..., None]
        gx = g @ y2.swapaxes(-1, -2) if self.needs[0] else None
        gy = x2.swapaxes(-1, -2) @ g if self.needs[1] else None
        if gx is not None and x.ndim == 1:
            gx = gx[..., 0, :]
        if gy is not None and y.ndim == 1:
            gy = gy[..., 0]
        return gx, gy


class Where(Function):
    """where(condition, x, y); the condition is data, not an input with a gradient."""

    def forward(self, x, y, condition):
        self.condition = condition
        return backend.xp_of(x).where(condition, x, y)

    def backward(self, g):
        xp = backend.xp_of(g)
        zero = xp.zeros((), dtype=g.dtype)
        return (xp.where(self.condition, g, zero) if self.needs[0] else None,
                xp.where(self.condition, zero, g) if self.needs[1] else None)


# ----------------------------------------------------------------------------- unary, elementwise


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):
        return (-g,)


class Exp(Function):
    def forward(self, x):
        self.out = backend.xp_of(x).exp(x)
        return self.out

    def backward(self, g):
        return (g * self.out,)


class Log(Function):
    def forward(self, x):
        self.x = x
        return backend.xp_of(x).log(x)

    def backward(self, g):
        return (g / self.x,)


class Tanh(Function):
    def forward(self, x):
        self.out = backend.xp_of(x).tanh(x)
        return self.out

    def backward(self, g):
        return (g * (1 - self.out * self.out),)


class Sigmoid(Function):
    def forward(self, x):
        # the tanh form never overflows (no exp of a large number at |x| = 1000) and costs one
        # transcendental instead of an exp and two branches
        out = backend.xp_of(x).tanh(x * 0.5)
        out *= 0.5
        out += 0.5
        self.out = out
        return out

    def backward(self, g):
        return (g * self.out * (1 - self.out),)


class Relu(Function):
    def forward(self, x):
        self.out = backend.xp_of(x).maximum(x, 0)
        return self.out

    def backward(self, g):
        return (g * (self.out > 0),)


class Clip(Function):
    """Clamp to [low, high]; the gradient passes where the input lies inside, bounds included."""

    def forward(self, x, low, high):
        xp = backend.xp_of(x)
        self.inside = (x >= (-np.inf if low is None else low)) & (x <= (np.inf if high is None else high))
        return xp.clip(x, low, high)

    def backward(self, g):
        return (g * self.inside,)


# ----------------------------------------------------------------------------- reductions


def _expand_reduced(g, shape, axis, keepdims):
    """Give a reduced gradient its reduced axes back so it broadcasts over the input."""
    if axis is not None and not keepdims:
        g = backend.xp_of(g).expand_dims(g, axis)
    elif axis is None and not keepdims:
        g = g.reshape((1,) * len(shape))
    return g


class Sum(Function):
    def forward(self, x, axis, keepdims):
        self.in_shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    def backward(self, g):
        g = _expand_reduced(g, self.in_shape, self.axis, self.keepdims)
        return (backend.xp_of(g).broadcast_to(g, self.in_shape),)


class Mean(Function):
    def forward(self, x, axis, keepdims):
        self.in_shape, self.axis, self.keepdims = x.shape, axis, keepdims
        out = x.mean(axis=axis, keepdims=keepdims)
        self.count = x.size // max(out.size, 1) if x.size else 1
        return out

    def backward(self, g):
        g = _expand_reduced(g, self.in_shape, self.axis, self.keepdims) / self.count
        return (backend.xp_of(g).broadcast_to(g, self.in_shape),)


class Max(Function):
    """Maximum over axes; ties share the gradient equally (like torch.amax)."""

    def forward(self, x, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims
        out = x.max(axis=axis, keepdims=True)
        weights = (x == out).astype(x.dtype)  # a float mask keeps the gradient in x's dtype
        weights /= weights.sum(axis=axis, keepdims=True)
        self.weights = weights
        return out if keepdims else out.squeeze(axis) if axis is not None else out.reshape(())

    def backward(self, g):
        return (_expand_reduced(g, self.weights.shape, self.axis, self.keepdims) * self.weights,)


# ----------------------------------------------------------------------------- movement


class Reshape(Function):
    def forward(self, x, shape):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return (g.reshape(self.in_shape),)


class Permute(Function):
    def forward(self, x, axes):
        self.axes = axes
        return x.transpose(axes)

    def backward(self, g):
        return (g.transpose(np.argsort(self.axes)),)


def _is_basic_index(index):
    """Slices, ints, None and Ellipsis select each element at most once."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (slice, int, type(None), type(Ellipsis))) for i in items)


class Getitem(Function):
    """x[index] for slices, ints and integer arrays; the backward of a gather is a scatter-add."""

    def forward(self, x, index):
        if not _is_basic_index(index):  # index arrays must live where the data lives
            xp = backend.xp_of(x)
            index = tuple(xp.asarray(i) if hasattr(i, "__len__") and not isinstance(i, slice) else i
                          for i in (index if isinstance(index, tuple) else (index,)))
        self.in_shape, self.index = x.shape, index
        return x[index]

    def backward(self, g):
        gx = backend.xp_of(g).zeros(self.in_shape, dtype=g.dtype)
        self.backward_into(g, gx)
        return (gx,)

    def backward_into(self, g, gx):
        """Add g into the input's gradient at the indexed places (the engine's fast path)."""
        if _is_basic_index(self.index):
            gx[self.index] += g
        else:
            backend.scatter_add(gx, self.index, g)


class Cat(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        self.bounds = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return backend.xp_of(arrays[0]).concatenate(arrays, axis=axis)

    def backward(self, g):
        return tuple(backend.xp_of(g).split(g, self.bounds, axis=self.axis))


class Stack(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        return backend.xp_of(arrays[0]).stack(arrays, axis=axis)

    def backward(self, g):
        xp = backend.xp_of(g)
        return tuple(xp.moveaxis(g, self.axis, 0))


# ----------------------------------------------------------------------------- devices and dtypes


class ToDevice(Function):
    def forward(self, x, device):
        self.source = backend.device_of(x)
        return backend.to_device(x, device)

    def backward(self, g):
        return (backend.to_device(g, self.source),)


class Cast(Function):
    def forward(self, x, dtype):
        self.source = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return (g.astype(self.source),)


PRIMITIVES = (Add, Sub, Mul, Div, Pow, Matmul, Where, Neg, Exp, Log, Tanh, Sigmoid, Relu, Clip,
              Sum, Mean, Max, Reshape, Permute, Getitem, Cat, Stack, ToDevice, Cast)
