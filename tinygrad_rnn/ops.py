"""Primitives: one class per op, its forward, its VJP and its JVP side by side.

`forward` works on raw arrays and takes `xp` from them, so every op runs on NumPy and CuPy.
`backward(g)` (the VJP) and `jvp(inputs, tangents)` are written with Tensor ops, so gradients of
gradients and forward over reverse work; the engine undoes broadcasting. Each op keeps only what its
backward needs (`saves` names the inputs), preferring its output (exp, tanh, sigmoid) over its input.
"""
import functools

import numpy as np

from . import backend, dtypes, lapack, special_values
from .lapack import LinAlgError
from .tensor import Function, Tensor, _state


def _constant(array):
    return Tensor._make(array, None)


def _ieee(forward):
    """A forward that meets values outside its op's domain or overflows (log(0), 1 / 0, exp(1000)): its
    IEEE result (-inf, inf, NaN) without NaN's warning, as torch gives it (see backend.ieee_quiet)."""
    @functools.wraps(forward)
    def quiet(self, x, *rest, **options):
        with backend.ieee_quiet(backend.xp_of(x)):
            return forward(self, x, *rest, **options)
    return quiet


def _zero_if_none(tangent, like):
    return tangent if tangent is not None else _constant(like.xp.zeros(like.shape, dtype=like.dtype))


def _add_tangents(*terms):
    present = [t for t in terms if t is not None]
    if not present:
        return None
    total = present[0]
    for t in present[1:]:
        total = total + t
    return total


# ----------------------------------------------------------------------------- binary, broadcasting


class Add(Function):
    saves = ()

    def forward(self, x, y):
        return x + y

    def backward(self, g):
        return g, g

    def jvp(self, inputs, tangents):
        return _add_tangents(*tangents)


class Sub(Function):
    saves = ()

    def forward(self, x, y):
        return x - y

    def backward(self, g):
        return g, -g if self.needs[1] else None

    def jvp(self, inputs, tangents):
        tx, ty = tangents
        return _add_tangents(tx, None if ty is None else -ty)


class Mul(Function):
    saves = (0, 1)

    def forward(self, x, y):
        return x * y

    def backward(self, g):
        return (g * self.input(1) if self.needs[0] else None,
                g * self.input(0) if self.needs[1] else None)

    def jvp(self, inputs, tangents):
        (x, y), (tx, ty) = inputs, tangents
        return _add_tangents(None if tx is None else tx * y, None if ty is None else x * ty)


class Div(Function):
    saves = (1,)

    @_ieee
    def forward(self, x, y):
        self.out = x / y
        return self.out

    def backward(self, g):
        gx = g / self.input(1)
        return gx, -gx * self.output(self.out) if self.needs[1] else None

    def jvp(self, inputs, tangents):
        (_, y), (tx, ty) = inputs, tangents
        out = _constant(self.out)
        return _add_tangents(tx, None if ty is None else -out * ty) / y


class Pow(Function):
    """x ** y; where y == 0 the gradient for x is 0, and where x == 0 (y >= 0) the one for y, as torch."""
    saves = (0, 1)

    @_ieee
    def forward(self, x, y):
        self.out = x ** y
        return self.out

    @staticmethod
    def partials(x, y, out, need_x, need_y):
        """d out/dx and d out/dy as tensors (None where not needed)."""
        with backend.ieee_quiet(x.xp):  # 0 ** -1 lands in a branch where() drops
            d_x = where_tensor(y.array == 0, 0.0, y * x ** (y - 1)) if need_x else None
        d_y = None
        if need_y:
            at_zero = (x.array == 0) & (y.array >= 0)
            safe_x = where_tensor(at_zero, 1.0, x)  # log(0) never enters, even in unselected branches
            d_y = where_tensor(at_zero, 0.0, out * safe_x.log())
        return d_x, d_y

    def backward(self, g):
        d_x, d_y = self.partials(self.input(0), self.input(1), self.output(self.out), *self.needs)
        return (None if d_x is None else g * d_x, None if d_y is None else g * d_y)

    def jvp(self, inputs, tangents):
        tx, ty = tangents
        d_x, d_y = self.partials(*inputs, _constant(self.out), tx is not None, ty is not None)
        return _add_tangents(None if tx is None else tx * d_x, None if ty is None else ty * d_y)


class Matmul(Function):
    """Matrix product with NumPy's rules: 1-D operands are promoted, leading dims broadcast."""
    saves = (0, 1)

    def forward(self, x, y):
        if x.ndim == 0 or y.ndim == 0:
            raise ValueError("both operands must have at least one dimension")
        if x.shape[-1] != y.shape[0 if y.ndim == 1 else -2]:
            raise ValueError(f"shapes {x.shape} and {y.shape} are not aligned: "
                             f"{x.shape[-1]} (last dim of the first) != "
                             f"{y.shape[0 if y.ndim == 1 else -2]} (the second's row count)")
        return x @ y

    def backward(self, g):
        x, y = self.input(0), self.input(1)
        # promote 1-D operands to matrices, so every case is a batched matrix product
        x2 = x.reshape(1, x.shape[0]) if x.ndim == 1 else x
        y2 = y.reshape(y.shape[0], 1) if y.ndim == 1 else y
        out2 = np.broadcast_shapes(x2.shape[:-2], y2.shape[:-2]) + (x2.shape[-2], y2.shape[-1])
        g2 = g.reshape(out2)
        gx = gy = None
        if self.needs[0]:
            gx = unbroadcast(g2 @ y2.transpose(-1, -2), x2.shape).reshape(x.shape)
        if self.needs[1]:
            gy = unbroadcast(x2.transpose(-1, -2) @ g2, y2.shape).reshape(y.shape)
        return gx, gy

    def jvp(self, inputs, tangents):
        (x, y), (tx, ty) = inputs, tangents
        return _add_tangents(None if tx is None else tx @ y, None if ty is None else x @ ty)


class Where(Function):
    """where(condition, x, y); the condition is data, not an input with a gradient."""
    saves = ()

    def forward(self, x, y, condition):
        self.condition = condition
        return backend.xp_of(x).where(condition, x, y)

    def backward(self, g):
        zero = _constant(g.xp.zeros((), dtype=g.dtype))
        return (Where.apply(g, zero, condition=self.condition) if self.needs[0] else None,
                Where.apply(zero, g, condition=self.condition) if self.needs[1] else None)

    def jvp(self, inputs, tangents):
        x, y = inputs
        return Where.apply(_zero_if_none(tangents[0], x), _zero_if_none(tangents[1], y), condition=self.condition)


def where_tensor(condition, x, y):
    """where() over a raw boolean array, with tensors or numbers as branches (for VJPs)."""
    like = x if isinstance(x, Tensor) else y
    return Where.apply(like._lift(x), like._lift(y), condition=condition)


# ----------------------------------------------------------------------------- masks: no gradient


class Piecewise(Function):
    """An op whose output is piecewise constant in its inputs (a comparison, a sign, where a maximum
    lies): it has no gradient, so it never records a node and its output never requires grad. It is
    an op at all so that a traced step (the step compiler) sees the mask computed from the step's
    values, not an array captured from one call's data."""
    saves = ()

    @classmethod
    def apply(cls, *inputs, **options):
        tape = _state.tape
        if tape is not None and tape.listening():
            return tape.apply(cls, inputs, options)
        return Tensor._make(cls.__new__(cls).forward(*[t.array for t in inputs], **options), None)

    def backward(self, g):
        return (None,) * len(self.shapes)


class StopGradient(Piecewise):
    """x itself, with no gradient: `detach()` and `.data` inside a traced step (elsewhere they make a
    leaf), so that the step compiler sees the cut as an op on the step's value, not as a constant
    taken from one call's data."""

    def forward(self, x):
        return x


COMPARISONS = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
               "ge": "greater_equal"}


class Compare(Piecewise):
    """x `op` y (eq, ne, lt, le, gt, ge) elementwise, a bool array; y a tensor, or a number `other`.
    nan_wins: true where x is NaN too (how maximum and minimum choose)."""

    def forward(self, x, *y, op, other=None, nan_wins=False):
        xp = backend.xp_of(x)
        operands = (x, y[0] if y else other)
        common = dtypes.result_type(*operands)   # compared in torch's common dtype: 1e-300 > 0 is False in float32
        operands = [v.astype(common) if hasattr(v, "dtype") and v.dtype != common else v for v in operands]
        out = getattr(xp, COMPARISONS[op])(*operands)
        if nan_wins:
            out |= xp.isnan(x)
        return out


class Sign(Piecewise):
    """-1, 0 or 1 in x's dtype (NaN stays NaN): abs's gradient, 0 at 0 as torch's. nan_as_zero: NaN
    gives 0, as torch.sign."""

    def forward(self, x, nan_as_zero=False):
        xp = backend.xp_of(x)
        signs = xp.sign(x)
        return xp.nan_to_num(signs, nan=0.0) if nan_as_zero and x.dtype.kind == "f" else signs


class Convert(Piecewise):
    """x in `dtype` with no gradient: a cast to integers or bools (long(), int(), bool()), or of a
    tensor that wants none, kept as an op so that a traced step casts each step's value."""

    def forward(self, x, dtype):
        return x.astype(dtype)


BITWISE = ("invert", "bitwise_and", "bitwise_or", "bitwise_xor")
SHIFTS = ("left_shift", "right_shift")


class Bitwise(Piecewise):
    """~x, x & y, x | y, x ^ y of bool or integer arrays (y a tensor, or the number `other`)."""

    def forward(self, x, *y, op, other=None):
        xp = backend.xp_of(x)
        if op == "invert":
            return xp.invert(x)
        y = y[0] if y else xp.asarray(other, x.dtype)
        return _shifted(xp, x, y, op) if op in SHIFTS else getattr(xp, op)(x, y)


def _shifted(xp, x, y, op):
    """x shifted by y bits as torch: a shift by a negative amount or by the width or more gives 0 to the left
    and the sign's fill (0 or -1) to the right, where C leaves it undefined."""
    width = x.dtype.itemsize * 8
    inside = (y >= 0) & (y < width)
    amount = xp.where(inside, y, 0).astype(x.dtype)
    if op == "left_shift":
        return xp.where(inside, xp.left_shift(x, amount), xp.zeros((), x.dtype)).astype(x.dtype, copy=False)
    fill = xp.right_shift(x, width - 1) if x.dtype.kind == "i" else xp.zeros((), x.dtype)
    return xp.where(inside, xp.right_shift(x, amount), fill).astype(x.dtype, copy=False)


class Classify(Piecewise):
    """isnan, isinf or isfinite (`op`) of x, a bool array."""

    def forward(self, x, op):
        return getattr(backend.xp_of(x), op)(x)


class Rounded(Piecewise):
    """x rounded to an integer by `mode` (floor, ceil, trunc, or round: half to even, at `decimals`
    places, as torch and NumPy): piecewise constant, so no gradient (`rounded` gives it torch's zero)."""

    def forward(self, x, mode, decimals=0):
        xp = backend.xp_of(x)
        if mode != "round":
            return getattr(xp, mode)(x)
        if decimals and x.dtype == np.float16:  # x * 10**decimals would overflow in half; torch scales in float32
            return xp.round(x.astype(np.float32), decimals).astype(np.float16)
        return xp.round(x, decimals)


def rounded(x, mode, decimals=0):
    """Rounded's value with a zero gradient to x, as torch's floor, ceil, trunc and round have."""
    return with_zero_gradient(Rounded.apply(x, mode=mode, decimals=decimals), x)


def with_zero_gradient(value, *inputs):
    """`value`, a piecewise constant of `inputs`, on the graph of those that require grad with a zero
    gradient to each: torch's rounding, sign and rounded division give outputs that require grad."""
    for x in inputs:
        if isinstance(x, Tensor) and x.requires_grad:
            value = where_tensor(backend.xp_of(value.array).ones(value.shape, dtype=bool), value, x)
    return value


class FirstExtreme(Piecewise):
    """True at the first maximum ("argmax") or minimum ("argmin") along `axis` (a NaN first), False
    elsewhere: where max(dim) and min(dim) take their value and send its gradient, as torch."""

    def forward(self, x, axis, op):
        xp = backend.xp_of(x)
        index = xp.expand_dims(getattr(x, op)(axis=axis), axis)
        positions = xp.arange(x.shape[axis]).reshape((-1,) + (1,) * (x.ndim - 1 - axis % x.ndim))
        return positions == index


# ----------------------------------------------------------------------------- unary, elementwise


class Neg(Function):
    saves = ()

    def forward(self, x):
        return -x

    def backward(self, g):
        return (-g,)

    def jvp(self, inputs, tangents):
        return -tangents[0]


class Exp(Function):
    saves = ()

    @_ieee
    def forward(self, x):
        self.out = backend.xp_of(x).exp(x)
        return self.out

    def backward(self, g):
        return (g * self.output(self.out),)

    def jvp(self, inputs, tangents):
        return tangents[0] * _constant(self.out)


class Log(Function):
    saves = (0,)

    @_ieee
    def forward(self, x):
        return backend.xp_of(x).log(x)

    def backward(self, g):
        return (g / self.input(0),)

    def jvp(self, inputs, tangents):
        return tangents[0] / inputs[0]


class Sqrt(Function):
    """Its own op, not x ** 0.5: IEEE's pow(-inf, 0.5) is +inf and pow(-0, 0.5) is +0, sqrt gives NaN and -0."""
    saves = ()

    @_ieee
    def forward(self, x):
        self.out = backend.xp_of(x).sqrt(x)
        return self.out

    def backward(self, g):
        return (g / (2 * self.output(self.out)),)

    def jvp(self, inputs, tangents):
        return tangents[0] / (2 * _constant(self.out))


class Tanh(Function):
    saves = ()

    def forward(self, x):
        self.out = backend.xp_of(x).tanh(x)
        return self.out

    def backward(self, g):
        out = self.output(self.out)
        return (g * (1 - out * out),)

    def jvp(self, inputs, tangents):
        out = _constant(self.out)
        return tangents[0] * (1 - out * out)


class Sigmoid(Function):
    saves = ()

    @_ieee
    def forward(self, x):
        # torch's form, 1 / (1 + exp(-x)): an exp costs half a tanh. Far below zero exp(-x) is inf
        # and the quotient the right 0, so NumPy's overflow warning says nothing worth saying.
        xp = backend.xp_of(x)
        out = xp.empty_like(x)  # an array even for a 0-d x, whose ufunc results are scalars
        xp.exp(xp.negative(x, out=out), out=out)
        out += 1
        xp.divide(1, out, out=out)
        self.out = out
        return out

    def backward(self, g):
        out = self.output(self.out)
        return (g * out * (1 - out),)

    def jvp(self, inputs, tangents):
        out = _constant(self.out)
        return tangents[0] * out * (1 - out)


class Relu(Function):
    saves = ()

    def forward(self, x):
        self.out = backend.xp_of(x).maximum(x, 0)
        return self.out

    def backward(self, g):
        return (g * _constant((self.out > 0).astype(g.dtype)),)

    def jvp(self, inputs, tangents):
        return tangents[0] * _constant((self.out > 0).astype(self.out.dtype))


class Clip(Function):
    """Clamp to [low, high]; the gradient passes where the input lies inside, bounds included (clamp),
    or strictly inside with `strict` (hardtanh's gradient, 0 on the bounds as in torch)."""
    saves = ()

    def forward(self, x, low, high, strict=False):
        self.inside = inside_mask(x, low, high, strict)
        return backend.xp_of(x).clip(x, low, high)

    def backward(self, g):
        return (g * _constant(self.inside),)

    def jvp(self, inputs, tangents):
        return tangents[0] * _constant(self.inside)


def inside_mask(x, low, high, strict=False):
    """1 where low <= x <= high (low < x < high if strict), else 0, in x's dtype: clip's VJP mask."""
    low, high = -np.inf if low is None else low, np.inf if high is None else high
    inside = ((x > low) & (x < high)) if strict else ((x >= low) & (x <= high))
    return inside.astype(x.dtype)


class Log1p(Function):
    """log(1 + x), exact for small x."""
    saves = (0,)

    @_ieee
    def forward(self, x):
        return backend.xp_of(x).log1p(x)

    def backward(self, g):
        return (g / (1 + self.input(0)),)

    def jvp(self, inputs, tangents):
        return tangents[0] / (1 + inputs[0])


class Logit(Function):
    """log(x / (1 - x)), x clamped to [eps, 1 - eps] first when eps is given, as torch computes it. Its
    slope 1 / (x (1 - x)) is inf at 0 and 1 (-inf at -0); outside [0, 1] NaN, or 0 outside [eps, 1 - eps]."""
    saves = (0,)

    @_ieee
    def forward(self, x, eps=None):
        xp, self.eps = backend.xp_of(x), eps
        p = x if eps is None else xp.clip(x, eps, 1 - eps)
        return xp.log(p / (1 - p))

    def slope_times(self, x, g):
        x_, lo, hi = x.array, 0.0 if self.eps is None else self.eps, 1.0 if self.eps is None else 1 - self.eps
        with backend.ieee_quiet(x.xp):
            inside = g / (x * (1 - x))
        return where_tensor((x_ < lo) | (x_ > hi), float("nan") if self.eps is None else 0.0, inside)

    def backward(self, g):
        return (self.slope_times(self.input(0), g),)

    def jvp(self, inputs, tangents):
        return self.slope_times(inputs[0], tangents[0])


class Expm1(Function):
    """exp(x) - 1, exact for small x; its slope exp(x) is the output plus one."""
    saves = ()

    @_ieee
    def forward(self, x):
        self.out = backend.xp_of(x).expm1(x)
        return self.out

    def backward(self, g):
        return (g * (self.output(self.out) + 1),)

    def jvp(self, inputs, tangents):
        return tangents[0] * (_constant(self.out) + 1)


class Sin(Function):
    saves = (0,)

    def forward(self, x):
        return backend.xp_of(x).sin(x)

    def backward(self, g):
        return (g * self.input(0).cos(),)

    def jvp(self, inputs, tangents):
        return tangents[0] * inputs[0].cos()


class Cos(Function):
    saves = (0,)

    def forward(self, x):
        return backend.xp_of(x).cos(x)

    def backward(self, g):
        return (-(g * self.input(0).sin()),)

    def jvp(self, inputs, tangents):
        return -(tangents[0] * inputs[0].sin())


class Asin(Function):
    """arcsin; its slope 1 / sqrt(1 - x**2) (infinite at +-1, as torch's)."""
    saves = (0,)

    @_ieee
    def forward(self, x):
        return backend.xp_of(x).arcsin(x)

    @staticmethod
    def slope(x):
        return (1 - x * x).rsqrt()

    def backward(self, g):
        return (g * self.slope(self.input(0)),)

    def jvp(self, inputs, tangents):
        return tangents[0] * self.slope(inputs[0])


class Acos(Function):
    """arccos; its slope is arcsin's, negated."""
    saves = (0,)

    @_ieee
    def forward(self, x):
        return backend.xp_of(x).arccos(x)

    def backward(self, g):
        return (-(g * Asin.slope(self.input(0))),)

    def jvp(self, inputs, tangents):
        return -(tangents[0] * Asin.slope(inputs[0]))


class Atan(Function):
    """arctan; its slope 1 / (1 + x**2), 0 at +-inf."""
    saves = (0,)

    def forward(self, x):
        return backend.xp_of(x).arctan(x)

    def backward(self, g):
        x = self.input(0)
        return (g / (x * x + 1),)

    def jvp(self, inputs, tangents):
        return tangents[0] / (inputs[0] * inputs[0] + 1)


class Asinh(Function):
    """arcsinh; its slope 1 / sqrt(x**2 + 1) (0 where x**2 overflows, as torch's)."""
    saves = (0,)

    def forward(self, x):
        return backend.xp_of(x).arcsinh(x)

    @staticmethod
    def slope(x):
        return (x * x + 1).rsqrt()

    def backward(self, g):
        return (g * self.slope(self.input(0)),)

    def jvp(self, inputs, tangents):
        return tangents[0] * self.slope(inputs[0])


class Acosh(Function):
    """arccosh, NaN below 1; its slope 1 / sqrt(x**2 - 1) as torch writes it: inf at +-1, and finite
    for x < -1, where the value is NaN."""
    saves = (0,)

    @_ieee
    def forward(self, x):
        return backend.xp_of(x).arccosh(x)

    @staticmethod
    def slope(x):
        return (x * x - 1).rsqrt()

    def backward(self, g):
        return (g * self.slope(self.input(0)),)

    def jvp(self, inputs, tangents):
        return tangents[0] * self.slope(inputs[0])


class Atanh(Function):
    """arctanh, +-inf at +-1 and NaN past them; its slope 1 / (1 - x**2) as torch writes it (inf at +-1,
    finite past them)."""
    saves = (0,)

    @_ieee
    def forward(self, x):
        return backend.xp_of(x).arctanh(x)

    def backward(self, g):
        x = self.input(0)
        return (g / (1 - x * x),)

    def jvp(self, inputs, tangents):
        return tangents[0] / (1 - inputs[0] * inputs[0])


class Atan2(Function):
    """atan2(y, x), the angle of the point (x, y); d/dy = x / r**2, d/dx = -y / r**2, both 0 at the origin
    (as torch's)."""
    saves = (0, 1)

    def forward(self, y, x):
        return backend.xp_of(y).arctan2(y, x)

    @staticmethod
    def partials(y, x):
        r2 = y * y + x * x
        origin = r2.array == 0
        recip = where_tensor(origin, 0.0, 1 / where_tensor(origin, 1.0, r2))  # no 1 / 0, even unselected
        return x * recip, -y * recip

    def backward(self, g):
        d_y, d_x = self.partials(self.input(0), self.input(1))
        return (g * d_y if self.needs[0] else None, g * d_x if self.needs[1] else None)

    def jvp(self, inputs, tangents):
        d_y, d_x = self.partials(*inputs)
        ty, tx = tangents
        return _add_tangents(None if ty is None else ty * d_y, None if tx is None else tx * d_x)


class Hypot(Function):
    """sqrt(x**2 + y**2) without overflow; d/dx = x / out, d/dy = y / out (NaN at the origin, as torch's)."""
    saves = (0, 1)

    def forward(self, x, y):
        self.out = backend.xp_of(x).hypot(x, y)
        return self.out

    def backward(self, g):
        out = self.output(self.out)
        return (g * self.input(0) / out if self.needs[0] else None,
                g * self.input(1) / out if self.needs[1] else None)

    def jvp(self, inputs, tangents):
        (x, y), (tx, ty) = inputs, tangents
        return _add_tangents(None if tx is None else tx * x, None if ty is None else ty * y) / _constant(self.out)


class LogAddExp(Function):
    """log(exp(x) + exp(y)) (base 2: log2(2**x + 2**y)) without overflow; d/dx = 1 / (1 + base**(y - x)),
    NaN where x and y are the same infinity, as torch's."""
    saves = (0, 1)

    @_ieee
    def forward(self, x, y, base2=False):
        self.base2 = base2
        xp = backend.xp_of(x)
        return (xp.logaddexp2 if base2 else xp.logaddexp)(x, y)

    def share(self, x, y):
        """d out / dx: x's share of the sum."""
        return 1 / (1 + (2 ** (y - x) if self.base2 else (y - x).exp()))

    def backward(self, g):
        x, y = self.input(0), self.input(1)
        return (g * self.share(x, y) if self.needs[0] else None, g * self.share(y, x) if self.needs[1] else None)

    def jvp(self, inputs, tangents):
        (x, y), (tx, ty) = inputs, tangents
        return _add_tangents(None if tx is None else tx * self.share(x, y), None if ty is None else ty * self.share(y, x))


class XLogY(Function):
    """x * log(y) (x * log1p(y) with log1p=True: xlog1py), 0 where x is 0 (y 0 or inf included) unless y is NaN,
    as torch.xlogy. As torch's, the gradient for x is xlogy(g, y), 0 where x is 0 and y <= 0 (y <= -1); for y it
    is g * x / y (g * x / (1 + y))."""
    saves = (0, 1)

    @_ieee
    def forward(self, x, y, log1p=False):
        xp = backend.xp_of(x)
        self.log1p = log1p
        out = x * (xp.log1p(y) if log1p else xp.log(y))
        return xp.where((x == 0) & ~xp.isnan(y), xp.zeros((), out.dtype), out)

    def partial_x(self, g, x, y):
        return where_tensor((x.array == 0) & (y.array <= (-1 if self.log1p else 0)), 0.0,
                            XLogY.apply(g, y, log1p=self.log1p))

    def partial_y(self, g, x, y):
        return g * x / (y + 1 if self.log1p else y)

    def backward(self, g):
        x, y = self.input(0), self.input(1)
        return (self.partial_x(g, x, y) if self.needs[0] else None, self.partial_y(g, x, y) if self.needs[1] else None)

    def jvp(self, inputs, tangents):
        (x, y), (tx, ty) = inputs, tangents
        return _add_tangents(None if tx is None else self.partial_x(tx, x, y),
                             None if ty is None else self.partial_y(ty, x, y))


class CopySign(Function):
    """|x| with the sign of y (its sign bit: -0 and -NaN count as negative). As torch's, the gradient for x
    is g * out / x (NaN at +-inf), 0 where x is 0, and y's is 0."""
    saves = (0,)

    def forward(self, x, y):
        self.out = backend.xp_of(x).copysign(x, y)
        return self.out

    @staticmethod
    def ratio(x, out):
        return where_tensor(x.array == 0, 0.0, out / x)

    def backward(self, g):
        gx = g * self.ratio(self.input(0), self.output(self.out)) if self.needs[0] else None
        return gx, _constant(g.xp.zeros(g.shape, dtype=g.dtype)) if self.needs[1] else None

    def jvp(self, inputs, tangents):
        return None if tangents[0] is None else tangents[0] * self.ratio(inputs[0], _constant(self.out))


class NextAfter(Function):
    """The next float after x toward y. As torch's, the gradient passes to x unchanged where x != y (0 where
    they are equal and the result is y) and y's is 0."""
    saves = (0, 1)

    def forward(self, x, y):
        return backend.xp_of(x).nextafter(x, y)

    @staticmethod
    def moved(x, y):
        return x.array != y.array

    def backward(self, g):
        x, y = self.input(0), self.input(1)
        gx = where_tensor(self.moved(x, y), g, 0.0) if self.needs[0] else None
        return gx, _constant(g.xp.zeros(g.shape, dtype=g.dtype)) if self.needs[1] else None

    def jvp(self, inputs, tangents):
        return None if tangents[0] is None else where_tensor(self.moved(*inputs), tangents[0], 0.0)


class Erf(Function):
    """The error function; its slope is 2 / sqrt(pi) * exp(-x**2)."""
    saves = (0,)

    def forward(self, x):
        return backend.erf(x)

    @staticmethod
    def slope(x):
        return (-(x * x)).exp() * (2 / np.sqrt(np.pi))

    def backward(self, g):
        return (g * self.slope(self.input(0)),)

    def jvp(self, inputs, tangents):
        return tangents[0] * self.slope(inputs[0])


class Erfc(Function):
    """1 - erf(x), exact far out where 1 - erf(x) would round to 0; its slope is erf's, negated."""
    saves = (0,)

    def forward(self, x):
        return backend.erfc(x)

    def backward(self, g):
        return (-(g * Erf.slope(self.input(0))),)

    def jvp(self, inputs, tangents):
        return -(tangents[0] * Erf.slope(inputs[0]))


class Sinc(Function):
    """sin(pi x) / (pi x), 1 at 0. Its VJP is torch's expression, g (p cos p - sin p) / (pi x**2) with
    p = pi x, and 0 where pi x**2 is 0 (underflow included), so that gradients agree with torch's to the
    last digits near 0 too, and second derivatives there are NaN as torch's."""
    saves = (0,)

    @_ieee
    def forward(self, x):
        xp = backend.xp_of(x)
        p = x * np.pi
        out = xp.sin(p) / p
        return xp.where(x == 0, xp.ones((), x.dtype), out)

    @staticmethod
    def vjp(g, x):
        p, denominator = x * np.pi, x * x * np.pi
        with backend.ieee_quiet(x.xp):
            return where_tensor(denominator.array == 0, 0.0, g * (p * p.cos() - p.sin()) / denominator)

    def backward(self, g):
        return (self.vjp(g, self.input(0)),)

    def jvp(self, inputs, tangents):
        return self.vjp(tangents[0], inputs[0])


class Erfinv(Function):
    """x with erf(x) = y; its slope sqrt(pi) / 2 * exp(x**2), from the output (torch's)."""
    saves = ()

    def forward(self, y):
        self.out = special_values.erfinv(y)
        return self.out

    def slope(self, out):
        return (out * out).exp() * (np.sqrt(np.pi) / 2)

    def backward(self, g):
        return (g * self.slope(self.output(self.out)),)

    def jvp(self, inputs, tangents):
        return tangents[0] * self.slope(_constant(self.out))


class Lgamma(Function):
    """log|Gamma(x)|; its slope is digamma."""
    saves = (0,)

    def forward(self, x):
        return special_values.lgamma(x)

    def backward(self, g):
        return (g * Polygamma.apply(self.input(0), n=0),)

    def jvp(self, inputs, tangents):
        return tangents[0] * Polygamma.apply(inputs[0], n=0)


class Polygamma(Function):
    """The n-th derivative of digamma (n = 0: digamma itself); its slope is the next one."""
    saves = (0,)

    def forward(self, x, n):
        self.n = n
        return special_values.polygamma(n, x)

    def backward(self, g):
        return (g * Polygamma.apply(self.input(0), n=self.n + 1),)

    def jvp(self, inputs, tangents):
        return tangents[0] * Polygamma.apply(inputs[0], n=self.n + 1)


class BesselI(Function):
    """The modified Bessel function I_order of the first kind, order 0 or 1. I0's slope is I1; I1's is
    I0 - I1 / x, 0.5 where |x| is at most the dtype's epsilon (torch's, which avoids 0 / 0)."""
    saves = (0,)

    def forward(self, x, order):
        self.order = order
        return (special_values.i0 if order == 0 else special_values.i1)(x)

    @staticmethod
    def slope(x, order):
        if order == 0:
            return BesselI.apply(x, order=1)
        tiny = (x.abs() <= np.finfo(x.dtype).eps).array
        safe = where_tensor(tiny, np.finfo(x.dtype).eps, x)
        return where_tensor(tiny, 0.5, BesselI.apply(safe, order=0) - BesselI.apply(safe, order=1) / safe)

    def backward(self, g):
        return (g * self.slope(self.input(0), self.order),)

    def jvp(self, inputs, tangents):
        return tangents[0] * self.slope(inputs[0], self.order)


class RoundedDiv(Piecewise):
    """x / y rounded down ("floor", NumPy's and Python's floor division: 1 // 0.1 is 9, the quotient of
    remainder's x - 9 * y) or toward zero ("trunc"): piecewise constant, so no gradient."""

    @_ieee
    def forward(self, x, y, mode):
        xp = backend.xp_of(x)
        return xp.floor_divide(x, y) if mode == "floor" else xp.trunc(x / y)


class Remainder(Function):
    """x - y * q with q = x / y rounded: the sign of y (mode "floor": remainder, %) or of x ("trunc": fmod).
    As torch, the gradient is g for x and -g * q for y."""
    saves = (0, 1)

    @_ieee
    def forward(self, x, y, mode):
        self.mode = mode
        return getattr(backend.xp_of(x), "remainder" if mode == "floor" else "fmod")(x, y)

    def backward(self, g):
        q = RoundedDiv.apply(self.input(0), self.input(1), mode=self.mode) if self.needs[1] else None
        return g, None if q is None else -g * q

    def jvp(self, inputs, tangents):
        (x, y), (tx, ty) = inputs, tangents
        return _add_tangents(tx, None if ty is None else -ty * RoundedDiv.apply(x, y, mode=self.mode))


# ----------------------------------------------------------------------------- reductions


def _reduced_shape(shape, axis):
    """The keepdims shape of a reduction over `axis` (None: all axes)."""
    if axis is None:
        return (1,) * len(shape)
    axes = {a % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,))}
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    saves = ()

    def forward(self, x, axis, keepdims):
        self.in_shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    def backward(self, g):
        return (g.reshape(_reduced_shape(self.in_shape, self.axis)).expand(self.in_shape),)

    def jvp(self, inputs, tangents):
        return tangents[0].sum(axis=self.axis, keepdims=self.keepdims)


class Mean(Function):
    saves = ()

    def forward(self, x, axis, keepdims):
        self.in_shape, self.axis, self.keepdims = x.shape, axis, keepdims
        out = x.mean(axis=axis, keepdims=keepdims)
        self.count = x.size // max(out.size, 1) if x.size else 1
        return out

    def backward(self, g):
        return ((g / self.count).reshape(_reduced_shape(self.in_shape, self.axis)).expand(self.in_shape),)

    def jvp(self, inputs, tangents):
        return tangents[0].mean(axis=self.axis, keepdims=self.keepdims)


def max_weights(x, out, axis, nan_shares=False):
    """Where x equals its maximum `out` over `axis`, 1 / (how many do), else 0: max's VJP weights.
    nan_shares: a NaN maximum's gradient is shared by the NaNs (torch's max() of all elements; its
    amax gives NaN gradients there)."""
    equal = x == out
    if nan_shares and x.dtype.kind == "f":
        xp = backend.xp_of(x)
        equal |= xp.isnan(x) & xp.isnan(out)
    # a float mask keeps the gradient in x's dtype; integer inputs never get a gradient
    weights = equal.astype(x.dtype if x.dtype.kind == "f" else np.float32)
    with backend.ieee_quiet(backend.xp_of(x)):   # a NaN maximum no element equals: 0 / 0, torch's NaN
        weights /= weights.sum(axis=axis, keepdims=True)
    return weights


class Max(Function):
    """Maximum over axes; ties share the gradient equally (like torch.amax)."""
    saves = ()

    def forward(self, x, axis, keepdims, nan_shares=False):
        self.axis, self.keepdims, self.nan_shares = axis, keepdims, nan_shares
        out = x.max(axis=axis, keepdims=True)
        self.weights = max_weights(x, out, axis, nan_shares)
        return out if keepdims else out.squeeze(axis) if axis is not None else out.reshape(())

    def backward(self, g):
        return (g.reshape(_reduced_shape(self.weights.shape, self.axis)) * _constant(self.weights),)

    def jvp(self, inputs, tangents):
        return (tangents[0] * _constant(self.weights)).sum(axis=self.axis, keepdims=self.keepdims)


class DetachedMax(Function):
    """The maximum along `axis` (kept) as a constant: no gradient, no tangent. An op of its own rather
    than a captured array, so that a traced step (the step compiler) recomputes it from x each step."""
    saves = ()

    def forward(self, x, axis):
        if x.size == 0:   # -inf for empty rows (CuPy's max takes no `initial`)
            return backend.xp_of(x).full(_reduced_shape(x.shape, axis), -np.inf, x.dtype)
        return x.max(axis=axis, keepdims=True)

    def backward(self, g):
        return (None,)

    def jvp(self, inputs, tangents):
        return None


class Cumsum(Function):
    """Running sum along `axis`; its VJP is the running sum from the other end (total - cumsum + g)."""
    saves = ()

    def forward(self, x, axis):
        self.axis = axis
        return backend.xp_of(x).cumsum(x, axis=axis)

    def backward(self, g):
        return (g.sum(axis=self.axis, keepdims=True) - Cumsum.apply(g, axis=self.axis) + g,)

    def jvp(self, inputs, tangents):
        return Cumsum.apply(tangents[0], axis=self.axis)


class Expand(Function):
    """broadcast_to: repeat size-1 (or missing leading) dims without copying."""
    saves = ()

    def forward(self, x, shape):
        self.in_shape, self.out_shape = x.shape, tuple(shape)
        lead = len(shape) - x.ndim
        if (x.__class__ is np.ndarray and x.flags.c_contiguous and x.flags.writeable and x.size and lead >= 0
                and all(n in (1, m) for n, m in zip(x.shape, shape[lead:]))):
            # writable, as torch's expand (NumPy's broadcast_to is read-only; CuPy's is not): an in-place
            # change that would write one element twice is refused before it runs (TensorMethods._in_place)
            strides = (0,) * lead + tuple(s if n == m else 0 for n, m, s in zip(x.shape, shape[lead:], x.strides))
            return np.ndarray(tuple(shape), x.dtype, buffer=x, strides=strides)
        out = backend.xp_of(x).broadcast_to(x, shape)
        if out.__class__ is np.ndarray and x.flags.writeable:  # (a strided x: the slower way to the same)
            return np.lib.stride_tricks.as_strided(x, out.shape, out.strides)
        return out

    def backward(self, g):
        return (unbroadcast(g, self.in_shape),)

    def jvp(self, inputs, tangents):
        return tangents[0].expand(self.out_shape)


def unbroadcast(g, shape):
    """Sum a broadcast gradient (a Tensor) back to the shape of the input it flows into."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape) if g.shape != tuple(shape) else g


# ----------------------------------------------------------------------------- movement


class Reshape(Function):
    saves = ()

    def forward(self, x, shape):
        self.in_shape = x.shape
        out = x.reshape(shape)
        self.out_shape = out.shape
        return out

    def backward(self, g):
        return (g.reshape(self.in_shape),)

    @staticmethod
    def write_back(x, v, shape):
        return Reshape.apply(v, shape=x.shape)

    def jvp(self, inputs, tangents):
        return tangents[0].reshape(self.out_shape)


class Permute(Function):
    saves = ()

    def forward(self, x, axes):
        self.axes = axes
        return x.transpose(axes)

    def backward(self, g):
        return (g.permute(tuple(int(a) for a in np.argsort(self.axes))),)

    @staticmethod
    def write_back(x, v, axes):
        return Permute.apply(v, axes=tuple(int(a) for a in np.argsort(axes)))

    def jvp(self, inputs, tangents):
        return tangents[0].permute(self.axes)


def _is_basic_index(index):
    """Slices, ints, None and Ellipsis select each element at most once."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (slice, int, type(None), type(Ellipsis))) for i in items)


def _device_index(x, index):
    """Index arrays must live where the data lives."""
    if _is_basic_index(index):
        return index
    xp = backend.xp_of(x)
    return tuple(xp.asarray(i) if hasattr(i, "__len__") and not isinstance(i, slice) else i
                 for i in (index if isinstance(index, tuple) else (index,)))


class Getitem(Function):
    """x[index] for slices, ints and integer arrays; its VJP is a scatter-add (IndexAdd)."""
    saves = ()

    def forward(self, x, index):
        index = _device_index(x, index)
        self.in_shape, self.index = x.shape, index
        out = x[index]
        if isinstance(out, np.generic):  # one element: a 0-d view (as CuPy's, torch's), which x[i].fill_() writes through
            out = x[index + (Ellipsis,) if isinstance(index, tuple) else (index, Ellipsis)]
        return out

    def backward(self, g):
        return (IndexAdd.apply(g, index=self.index, shape=self.in_shape),)

    @staticmethod
    def write_back(x, v, index):
        return IndexPut.apply(x, v, index=index)

    def backward_into(self, g, gx):
        """Add g into the input's gradient at the indexed places (the engine's fast path)."""
        _scatter(gx, self.index, g)

    def kept_for_drawing(self):
        """A slice's index outlives backward (a few ints), so the gradient view can write it; index arrays do not."""
        return {"index": self.index} if _is_basic_index(self.index) else None

    def jvp(self, inputs, tangents):
        return Getitem.apply(tangents[0], index=self.index)


def _scatter(target, index, values):
    if _is_basic_index(index):
        target[index] += values
    else:
        backend.scatter_add(target, index, values)


class IndexAdd(Function):
    """zeros(shape) with `g` added at `index` (repeated indices add up); its VJP is Getitem."""
    saves = ()

    def forward(self, g, index, shape):
        self.index, self.out_shape = index, shape
        out = backend.xp_of(g).zeros(shape, dtype=g.dtype)
        _scatter(out, index, g)
        return out

    def backward(self, g):
        return (Getitem.apply(g, index=self.index),)

    def jvp(self, inputs, tangents):
        return IndexAdd.apply(tangents[0], index=self.index, shape=self.out_shape)


class IndexPut(Function):
    """A copy of x with x[index] = v (v broadcast to the slice; where an index repeats, the last write
    wins): what `x[index] = v` and the in-place methods record. The slice's gradient goes to v (summed
    back to v's shape), the rest to x."""
    saves = ()

    def forward(self, x, v, index):
        index = _device_index(x, index)
        self.index = index
        out = x.copy()
        out[index] = v
        return out

    def backward(self, g):
        return (_zero_at(g, self.index) if self.needs[0] else None,
                Getitem.apply(g, index=self.index) if self.needs[1] else None)

    def kept_for_drawing(self):
        return {"index": self.index} if _is_basic_index(self.index) else None

    def jvp(self, inputs, tangents):
        x, v = inputs
        return IndexPut.apply(_zero_if_none(tangents[0], x), _zero_if_none(tangents[1], v), index=self.index)


def _zero_at(g, index):
    """g with g[index] = 0."""
    return IndexPut.apply(g, _constant(g.xp.zeros((), dtype=g.dtype)), index=index)


class Unfold(Function):
    """The sliding windows of x's last len(kernel) dims, copied out (im2col): (*lead, *kernel, *out),
    window o's element k at o * stride + k * dilation along each dim, then laid out by `axes` (a
    permutation of those dims), so that a convolution is one matrix product. With `fold=shape` it is
    the adjoint instead (col2im): windows so laid out, added back into zeros(shape) at their places.
    Each direction's VJP is the other, so gradients of any order are strided copies, with no scatter."""
    saves = ()

    def forward(self, x, kernel, stride, dilation, axes=None, fold=None):
        self.geometry = {"kernel": kernel, "stride": stride, "dilation": dilation, "axes": axes}
        self.fold, self.in_shape = fold, x.shape
        if fold is None:
            return _window_view(x, kernel, stride, dilation).transpose(_axes(axes, x.ndim + len(kernel))).copy()
        windows = x.transpose(tuple(int(a) for a in np.argsort(_axes(axes, x.ndim))))   # the natural order
        if windows.shape != _windows_shape(fold, kernel, stride, dilation):
            raise ValueError(f"windows of shape {windows.shape} (in their natural order) are not those of an "
                             f"input of shape {tuple(fold)}: {_windows_shape(fold, kernel, stride, dilation)}")
        out = backend.xp_of(x).zeros(fold, dtype=x.dtype)
        _add_windows(out, windows, kernel, stride, dilation)
        return out

    def backward(self, g):
        return (Unfold.apply(g, **self.geometry, fold=None if self.fold is not None else self.in_shape),)

    def jvp(self, inputs, tangents):
        return Unfold.apply(tangents[0], **self.geometry, fold=self.fold)


def _axes(axes, ndim):
    return tuple(range(ndim)) if axes is None else tuple(axes)


def _windows_shape(shape, kernel, stride, dilation):
    """(*lead, *kernel, *out): the shape of the windows of an input of `shape`, in their natural order."""
    m = len(kernel)
    out = (max((n - d * (k - 1) - 1) // s + 1, 0) for n, k, s, d in zip(shape[-m:], kernel, stride, dilation))
    return tuple(shape[:-m]) + tuple(kernel) + tuple(out)


def _window_view(x, kernel, stride, dilation):
    """x's windows in their natural order as a strided view of x (no copy)."""
    m = len(kernel)
    spatial = x.strides[-m:]
    strides = (x.strides[:-m] + tuple(t * d for t, d in zip(spatial, dilation))
               + tuple(t * s for t, s in zip(spatial, stride)))
    return backend.xp_of(x).lib.stride_tricks.as_strided(x, _windows_shape(x.shape, kernel, stride, dilation), strides)


def _add_windows(target, windows, kernel, stride, dilation):
    """target += windows (natural order) at their places: in one strided add where no two windows'
    places meet (pooling's usual windows), else one strided slice-add per kernel offset."""
    m = len(kernel)
    out = windows.shape[-m:]
    if all(k == 1 or o <= 1 or d * (k - 1) < s for k, o, s, d in zip(kernel, out, stride, dilation)):
        view = _window_view(target, kernel, stride, dilation)
        view += windows
        return
    lead = (slice(None),) * (target.ndim - m)
    for offset in np.ndindex(*kernel):
        places = tuple(slice(k * d, k * d + s * (o - 1) + 1, s) for k, d, s, o in zip(offset, dilation, stride, out))
        target[lead + places] += windows[lead + offset]


class Cat(Function):
    saves = ()

    def forward(self, *arrays, axis):
        self.axis = axis
        self.bounds = [0] + [int(b) for b in np.cumsum([a.shape[axis] for a in arrays])]
        return backend.xp_of(arrays[0]).concatenate(arrays, axis=axis)

    def backward(self, g):
        lead = (slice(None),) * (self.axis % g.ndim)
        return tuple(Getitem.apply(g, index=lead + (slice(lo, hi),)) if need else None
                     for need, lo, hi in zip(self.needs, self.bounds, self.bounds[1:]))

    def jvp(self, inputs, tangents):
        return Cat.apply(*[_zero_if_none(t, x) for t, x in zip(tangents, inputs)], axis=self.axis)


class Stack(Function):
    saves = ()

    def forward(self, *arrays, axis):
        self.axis = axis
        return backend.xp_of(arrays[0]).stack(arrays, axis=axis)

    def backward(self, g):
        lead = (slice(None),) * (self.axis % g.ndim)
        return tuple(Getitem.apply(g, index=lead + (k,)) if need else None for k, need in enumerate(self.needs))

    def jvp(self, inputs, tangents):
        return Stack.apply(*[_zero_if_none(t, x) for t, x in zip(tangents, inputs)], axis=self.axis)


class Einsum(Function):
    """einsum over explicit subscripts ("ij,jk->ik"); the VJP of each operand is an einsum of the rest.

    The subscripts reach here normalised (tensor.einsum): explicit output, no ellipsis. An index that
    only one operand has is summed out there, so its gradient is broadcast back along it.
    """
    saves = "all"

    def forward(self, *arrays, inputs, output):
        self.inputs, self.output_subs = inputs, output
        return backend.xp_of(arrays[0]).einsum(",".join(inputs) + "->" + output, *arrays)

    def backward(self, g):
        operands = [self.input(k) for k in range(len(self.inputs))]
        return tuple(_einsum_grad(g, self.output_subs, operands, self.inputs, k) if need else None
                     for k, need in enumerate(self.needs))

    def jvp(self, inputs, tangents):
        terms = []
        for k, t in enumerate(tangents):
            if t is not None:
                operands = list(inputs)
                operands[k] = t
                terms.append(Einsum.apply(*operands, inputs=self.inputs, output=self.output_subs))
        return _add_tangents(*terms)


def _einsum_grad(g, output, operands, subs, k):
    """d/d operand k of einsum(subs -> output), contracted with g, as an einsum."""
    others = [(s, t) for j, (s, t) in enumerate(zip(subs, operands)) if j != k]
    present = set(output).union(*[set(s) for s, _ in others])
    target = "".join(c for c in subs[k] if c in present)  # indices only operand k has were summed out
    grad = Einsum.apply(g, *[t for _, t in others], inputs=[output] + [s for s, _ in others], output=target)
    if target != subs[k]:
        shape = operands[k].shape
        kept = tuple(n if c in present else 1 for c, n in zip(subs[k], shape))
        grad = grad.reshape(kept).expand(shape)
    return grad


# ----------------------------------------------------------------------------- linear algebra
# Each factorisation runs batched over leading dims (xp.linalg on stacks of matrices). The VJPs are
# torch's formulas (FunctionsManual.cpp), written with Tensor ops, so second derivatives follow.


def _eye(n, like):
    return _constant(like.xp.eye(n, dtype=like.dtype))


def _diag_embed(v):
    """Batches of vectors as batches of diagonal matrices."""
    return v.unsqueeze(-1) * _eye(v.shape[-1], v)


def _solve(a, b):
    """a^-1 b for batches of matrices b, as the differentiable Solve. A VJP's solve by a singular factor gives
    the inf and NaN of LAPACK's LU solve rather than raising, as torch's VJPs do."""
    return Solve.apply(a, b, check=False)


class Inv(Function):
    """A^-1; a singular A raises LinAlgError, or without `check` gives what LAPACK leaves (inf, NaN)."""
    saves = ()

    def forward(self, a, check=True):
        xp = backend.xp_of(a)
        try:
            self.out = xp.linalg.inv(a)
        except np.linalg.LinAlgError:
            if check:
                lapack.raise_singular("linalg.inv", a)
            self.out = lapack.lu_solve(a, xp.broadcast_to(xp.eye(a.shape[-1], dtype=a.dtype), a.shape))
        return self.out

    def backward(self, g):
        inverse = self.output(self.out).mT
        return (-(inverse @ g @ inverse),)

    def jvp(self, inputs, tangents):
        inverse = _constant(self.out)
        return -(inverse @ tangents[0] @ inverse)


def _finite(a):
    return bool(backend.xp_of(a).isfinite(a).all())


def _inverse_transpose(a):
    """A^-T, with inf and NaN where A is singular (as the LU solve in torch's VJPs gives)."""
    return _solve(a.mT, _eye(a.shape[-1], a).expand(*a.shape))


def _cofactors_by_svd(a):
    """det(A) A^-T for any square A, singular too: det(U) det(Vh) U diag(prod_{j != i} s_j) Vh, as torch's."""
    u, s, vh = SVD.apply(a, full_matrices=False)
    xp, n = a.xp, s.shape[-1]
    signs = _constant(xp.linalg.det(u.array) * xp.linalg.det(vh.array))
    others = where_tensor(xp.eye(n, dtype=bool), 1.0, s.unsqueeze(-2).expand(*s.shape[:-1], n, n)).prod(-1)
    return signs.unsqueeze(-1).unsqueeze(-1) * ((u * others.unsqueeze(-2)) @ vh)


class Det(Function):
    """det(A), from its LU factors; its gradient is the cofactor matrix det(A) A^-T (by an SVD where A is
    singular, as torch's)."""
    saves = (0,)

    def forward(self, a):
        self.out = backend.xp_of(a).linalg.det(a) if _finite(a) else lapack.lu_determinants(a)[0]
        return self.out

    def backward(self, g):
        a = self.input(0)
        if a.shape[-1] == 1:  # det(a) = a: its gradient is g, even at 0, inf or NaN, as torch's
            return (g.unsqueeze(-1).unsqueeze(-1),)
        if bool((self.out != 0).all()):
            cofactors = self.output(self.out).unsqueeze(-1).unsqueeze(-1) * _inverse_transpose(a)
        else:
            cofactors = _cofactors_by_svd(a)
        return (g.unsqueeze(-1).unsqueeze(-1) * cofactors,)

    def jvp(self, inputs, tangents):
        return _constant(self.out) * _solve(inputs[0], tangents[0]).diagonal(0, -2, -1).sum(-1)


class Slogdet(Function):
    """(sign, log|det A|); only the log has a gradient, g A^-T. A singular matrix gives (0, -inf)."""
    saves = (0,)
    multiple_outputs = True

    def forward(self, a):
        if _finite(a):
            return backend.xp_of(a).linalg.slogdet(a)
        return lapack.lu_determinants(a)[1:]  # inf and NaN carried through the LU factors, as torch

    def backward(self, g_sign, g_logabsdet):
        if g_logabsdet is None:
            return (None,)
        return (g_logabsdet.unsqueeze(-1).unsqueeze(-1) * _inverse_transpose(self.input(0)),)

    def jvp(self, inputs, tangents):
        a, t = inputs[0], tangents[0]
        return _constant(a.xp.zeros(a.shape[:-2], dtype=a.dtype)), _solve(a, t).diagonal(0, -2, -1).sum(-1)


class Solve(Function):
    """X with A X = B, for batches of matrices B whose batch dims match A's (linalg.solve broadcasts first)."""
    saves = (0,)

    def forward(self, a, b, check=True):
        self.check = check
        xp = backend.xp_of(a)
        try:
            self.out = xp.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            if check:
                raise LinAlgError("torch.linalg.solve: The solver failed because the input matrix is singular.") \
                    from None
            self.out = lapack.lu_solve(a, b)
        return self.out

    def backward(self, g):
        g_b = Solve.apply(self.input(0).mT, g, check=self.check)
        return (-(g_b @ self.output(self.out).mT) if self.needs[0] else None, g_b)

    def jvp(self, inputs, tangents):
        (a, _), (t_a, t_b) = inputs, tangents
        x = _constant(self.out)
        return Solve.apply(a, _add_tangents(t_b, None if t_a is None else -(t_a @ x)), check=self.check)


def _tril_half_diagonal(x):
    """The lower triangle with its diagonal halved (Cholesky's derivative keeps this part)."""
    return x.tril() - 0.5 * _diag_embed(x.diagonal(0, -2, -1))


class Cholesky(Function):
    """The lower factor L of A = L L^T (reads A's lower triangle); a matrix that is not positive-definite raises
    LinAlgError, or without `check` gives the factor as far as LAPACK got (cholesky_ex)."""
    saves = ()

    def forward(self, a, check=True):
        try:
            self.out = backend.xp_of(a).linalg.cholesky(a)
        except np.linalg.LinAlgError:
            if check:
                lapack.raise_not_positive_definite("linalg.cholesky", a)
            self.out = lapack.partial_cholesky(a)
        return self.out

    def backward(self, g):
        lower = self.output(self.out)
        g_a = (lower.mT @ g).tril()
        g_a = 0.5 * (g_a + g_a.tril(-1).mT)
        g_a = _solve(lower.mT, g_a)                    # L^-T g_a
        return (_solve(lower.mT, g_a.mT).mT,)          # ... L^-1

    def jvp(self, inputs, tangents):
        lower = _constant(self.out)
        inner = _solve(lower, _solve(lower, tangents[0]).mT).mT   # L^-1 dA L^-T
        return lower @ _tril_half_diagonal(inner)


class QR(Function):
    """(Q, R) of A = QR; mode "reduced", "complete" or "r" (R alone, no gradient, as in torch)."""
    saves = ()
    multiple_outputs = True

    def forward(self, a, mode):
        self.mode = mode
        if mode == "r":  # Q is empty, as torch's
            return backend.xp_of(a).zeros((0,), dtype=a.dtype), backend.xp_of(a).linalg.qr(a, mode="r")
        self.q, self.r = backend.xp_of(a).linalg.qr(a, mode=mode)
        return self.q, self.r

    def backward(self, g_q, g_r):
        if self.mode == "r":
            raise RuntimeError("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. "
                               "Please use linalg.qr(A, mode='reduced') if you are going to differentiate through "
                               "linalg.qr.")
        m, n = self.q.shape[-2], self.r.shape[-1]
        if self.mode == "complete" and m > n:
            raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")
        q, r = self.output(self.q, 0), self.output(self.r, 1)
        g_q = _zero_if_none(g_q, q)
        g_r = _zero_if_none(g_r, r)
        if m >= n:
            return (_qr_square_backward(q, r, g_q, g_r),)
        # A = [X | Y], R = [U | V]: X = Q U is a square QR, Y = Q V
        u, v, g_u, g_v = r[..., :m], r[..., m:], g_r[..., :m], g_r[..., m:]
        g_x = _qr_square_backward(q, u, g_q + (q @ v) @ g_v.mT, g_u)
        return (Cat.apply(g_x, q @ g_v, axis=g_x.ndim - 1),)

    def jvp(self, inputs, tangents):
        m, n = self.q.shape[-2], self.r.shape[-1]
        if self.mode != "reduced" or m < n:
            raise NotImplementedError("linalg.qr: forward-mode derivative only for mode='reduced' and nrows >= ncols")
        q, r = _constant(self.q), _constant(self.r)
        y = _solve(r.mT, tangents[0].mT).mT               # dA R^-1
        x = q.mT @ y
        lower = x.tril(-1)
        omega = lower - lower.mT                          # Q^T dQ, skew-symmetric
        return q @ omega + y - q @ x, (x - omega) @ r


def _qr_square_backward(q, r, g_q, g_r):
    """The VJP of A = QR for nrows >= ncols: (gQ + Q copyltu(M)) R^-T, M = R gR^T - gQ^T Q."""
    m = r @ g_r.mT - g_q.mT @ q
    lower = m.tril(-1)
    return _solve(r, (g_q + q @ (m.tril() + lower.mT)).mT).mT


def _reciprocal_gaps(values, squared=False):
    """1 / (v_j - v_i) off the diagonal (of v^2 for an SVD), 0 on it, for each batch of values v."""
    v = values * values if squared else values
    gaps = v.unsqueeze(-2) - v.unsqueeze(-1)
    eye = _eye(v.shape[-1], v)
    return (1 - eye) / (gaps + eye)


class Eigh(Function):
    """(eigenvalues ascending, eigenvectors) of a symmetric A, read from its UPLO triangle."""
    saves = ()
    multiple_outputs = True

    def forward(self, a, uplo):
        self.values, self.vectors = backend.xp_of(a).linalg.eigh(a, UPLO=uplo)
        return self.values, self.vectors

    def backward(self, g_values, g_vectors):
        values, vectors = self.output(self.values, 0), self.output(self.vectors, 1)
        inner = 0
        if g_vectors is not None:
            projected = vectors.mT @ g_vectors
            inner = 0.5 * (projected - projected.mT) * _reciprocal_gaps(values)
        if g_values is not None:
            inner = inner + _diag_embed(g_values)
        return (vectors @ inner @ vectors.mT,)

    def jvp(self, inputs, tangents):
        values, vectors = _constant(self.values), _constant(self.vectors)
        rotated = vectors.mT @ tangents[0] @ vectors
        return rotated.diagonal(0, -2, -1), vectors @ (rotated * _reciprocal_gaps(values))


class SVD(Function):
    """(U, S, Vh) of A = U diag(S) Vh; with full_matrices the gradient reads the first k columns of U and
    rows of Vh only, as torch's; forward mode needs the thin factors."""
    saves = ()
    multiple_outputs = True

    def forward(self, a, full_matrices):
        self.full_matrices = full_matrices
        self.u, self.s, self.vh = backend.xp_of(a).linalg.svd(a, full_matrices=full_matrices)
        return self.u, self.s, self.vh

    def backward(self, g_u, g_s, g_vh):
        k = self.s.shape[-1]
        u, s, vh = self.output(self.u, 0)[..., :k], self.output(self.s, 1), self.output(self.vh, 2)[..., :k, :]
        g_u = None if g_u is None else g_u[..., :k]
        g_vh = None if g_vh is None else g_vh[..., :k, :]
        return (_svd_backward(u, s, vh, g_u, g_s, g_vh),)

    def jvp(self, inputs, tangents):
        """torch's svd_jvp: with dP = U^T dA V, dS = diag(dP) and U^T dU, V^T dV the gap-weighted skew parts of
        dP S + S dP^T and S dP + dP^T S, plus what dA moves outside the thin factors' span."""
        u, s, v, t = _constant(self.u), _constant(self.s), _constant(self.vh).mT, tangents[0]
        m, n, k = u.shape[-2], v.shape[-2], s.shape[-1]
        if self.full_matrices and m != n:
            raise NotImplementedError("linalg.svd: forward-mode derivative only for full_matrices=False or a "
                                      "square input, as torch's")
        dp, gaps = u.mT @ t @ v, _reciprocal_gaps(s, squared=True)
        columns, rows = s.unsqueeze(-2), s.unsqueeze(-1)   # X * columns is X S; rows * X is S X
        du = u @ (gaps * (dp * columns + rows * dp.mT))
        dv = v @ (gaps * (rows * dp + dp.mT * columns))
        if m > k:
            du = du + (t @ v - u @ (u.mT @ (t @ v))) / columns
        if n > k:
            dv = dv + (t.mT @ u - v @ (v.mT @ (t.mT @ u))) / columns
        return du, dp.diagonal(0, -2, -1), dv.mT


def _svd_backward(u, s, vh, g_u, g_s, g_vh):
    """torch's svd_backward for the thin factors."""
    m, n = u.shape[-2], vh.shape[-1]
    if g_u is None and g_vh is None:
        return u @ (g_s.unsqueeze(-1) * vh) if m >= n else (u * g_s.unsqueeze(-2)) @ vh
    inner = 0
    if g_u is not None:
        projected = u.mT @ g_u
        inner = (projected - projected.mT) * s.unsqueeze(-2)
    if g_vh is not None:
        projected = vh @ g_vh.mT
        inner = inner + s.unsqueeze(-1) * (projected - projected.mT)
    inner = inner * _reciprocal_gaps(s, squared=True)
    if g_s is not None:
        inner = inner + _diag_embed(g_s)
    if m > n and g_u is not None:
        scaled = g_u / s.unsqueeze(-2)
        return (u @ inner + scaled - u @ (u.mT @ scaled)) @ vh
    if m < n and g_vh is not None:
        scaled = g_vh / s.unsqueeze(-1)
        return u @ (inner @ vh + scaled - (scaled @ vh.mT) @ vh)
    return u @ inner @ vh


# ----------------------------------------------------------------------------- devices and dtypes


class ToDevice(Function):
    saves = ()

    def forward(self, x, device):
        self.source, self.target = backend.device_of(x), device
        return backend.to_device(x, device)

    def backward(self, g):
        return (ToDevice.apply(g, device=self.source),)

    def jvp(self, inputs, tangents):
        return ToDevice.apply(tangents[0], device=self.target)


class Cast(Function):
    saves = ()

    @_ieee   # a float too large for the narrower type becomes inf, as in torch
    def forward(self, x, dtype):
        self.source, self.target = x.dtype, dtype
        return x.astype(dtype)

    def backward(self, g):
        return (Cast.apply(g, dtype=self.source),)

    def jvp(self, inputs, tangents):
        return Cast.apply(tangents[0], dtype=self.target)


PRIMITIVES = (Add, Sub, Mul, Div, Pow, Matmul, Where, Neg, Exp, Log, Sqrt, Tanh, Sigmoid, Relu, Clip,
              Log1p, Logit, Expm1, Erf, Erfc, Sinc, Asin, Acos, Atan, Asinh, Acosh, Atanh, Atan2, Hypot,
              LogAddExp, XLogY, CopySign, NextAfter, Erfinv, Lgamma, Polygamma, BesselI, RoundedDiv, Remainder, Compare, Sign, FirstExtreme, Sum, Mean, Max, Cumsum, Expand, Reshape, Permute, Getitem, IndexAdd, IndexPut, Unfold, Cat, Stack, Einsum, ToDevice, Cast,
              Inv, Det, Slogdet, Solve, Cholesky, QR, Eigh, SVD)
