"""More of torch's elementwise Tensor methods: bitwise and logical ops, shifts, torch's aliases, fmax / fmin,
ldexp, nextafter, gcd / lcm, frexp, the gamma family, Bessel's i0, and in-place forms of existing methods.

Tensor (tensor.py) inherits ElementwiseMethods beside TensorMethods. Each is composed from the primitives of
ops.py, so gradients (where torch has them) come from those primitives.
"""
import collections
import numbers

import numpy as np

from .methods import TensorMethods, _binary_in_place, _computed, _elementwise_in_place, _ops, _tensor_argument

Frexp = collections.namedtuple("frexp", ["mantissa", "exponent"])  # torch.return_types.frexp


def _not_implemented(op, dtype, name=None):
    """torch's refusal of a dtype its kernel `op` has no case for (`name`: the method's, when another)."""
    names = {"b": "Bool", "f": {2: "Half", 4: "Float", 8: "Double"}}
    kind = np.dtype(dtype)
    dtype_name = names["b"] if kind.kind == "b" else names["f"].get(kind.itemsize) if kind.kind == "f" else str(kind)
    return NotImplementedError(f'{name or op}: "{op}_cpu" not implemented for \'{dtype_name}\'')


def _promoted(x, other, op, kinds, name=None):
    """(x, other) as tensors of the dtype torch promotes them to, which must be of `kinds`; other may be a
    number (weak)."""
    from .dtypes import result_type
    number = isinstance(other, (bool, int, float))
    other = other if number else x._lift(other, op)
    dtype = result_type(x.array, other if number else other.array)
    if dtype.kind not in kinds:
        raise _not_implemented(op, dtype, name)
    if number:
        other = x._lift(other, op) if not isinstance(other, bool) else _constant_like(x, other)
    return x._as_dtype(dtype), other._as_dtype(dtype)


def _constant_like(x, value):
    from .tensor import Tensor
    return Tensor._make(x.xp.asarray(value), None)


class ElementwiseMethods:
    __slots__ = ()

    # --- bitwise: bool and integer tensors (the operators &, |, ^, ~ are in methods.py)
    def bitwise_and(self, other): return self._bitwise(other, "bitwise_and")
    def bitwise_or(self, other): return self._bitwise(other, "bitwise_or")
    def bitwise_xor(self, other): return self._bitwise(other, "bitwise_xor")

    def bitwise_not(self):
        if self.dtype.kind not in "biu":  # by name torch's kernel refuses (NotImplementedError); ~ is a TypeError
            raise _not_implemented("bitwise_not", self.dtype)
        return ~self

    def bitwise_left_shift(self, other):
        """self * 2**other in its integer dtype; 0 where other is negative or the dtype's width or more."""
        return self._shift(other, "left_shift", "lshift")

    def bitwise_right_shift(self, other):
        """self // 2**other; the sign's fill where other is negative or the dtype's width or more."""
        return self._shift(other, "right_shift", "rshift")

    def _shift(self, other, op, kernel):
        x, y = _promoted(self, other, kernel, "iu", f"bitwise_{op}")
        return _ops().Bitwise.apply(x, y, op=op)

    __lshift__, __rshift__ = bitwise_left_shift, bitwise_right_shift

    def __rlshift__(self, other):
        return self._lift(other, "lshift").bitwise_left_shift(self)

    def __rrshift__(self, other):
        return self._lift(other, "rshift").bitwise_right_shift(self)

    # --- logical: any dtype, nonzero is true, a bool result
    def logical_not(self):
        return self == 0

    def logical_and(self, other): return self._logical(other, "bitwise_and", "logical_and")
    def logical_or(self, other): return self._logical(other, "bitwise_or", "logical_or")
    def logical_xor(self, other): return self._logical(other, "bitwise_xor", "logical_xor")

    def _logical(self, other, op, name):
        other = _tensor_argument(name, "other", other)
        return _ops().Bitwise.apply(self != 0, other != 0, op=op)

    # --- torch's other names
    greater, greater_equal, less, less_equal, not_equal = (
        TensorMethods.gt, TensorMethods.ge, TensorMethods.lt, TensorMethods.le, TensorMethods.ne)

    multiply_, divide_, subtract_ = TensorMethods.mul_, TensorMethods.div_, TensorMethods.sub_

    def positive(self):
        if self.dtype.kind == "b":
            raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
        return self

    # --- NaN-ignoring extremes: the number wins over NaN; a tie sends the whole gradient to self (torch's)
    def fmax(self, other):
        return self._nan_ignoring(other, "fmax", "ge")

    def fmin(self, other):
        return self._nan_ignoring(other, "fmin", "le")

    def _nan_ignoring(self, other, op, keeps_self):
        from .tensor import where
        x, y = _promoted(self, _tensor_argument(op, "other", other), op, "biuf")
        keep = getattr(x, keeps_self)(y)
        if y.dtype.kind == "f":
            keep = keep | y.isnan()
        return where(keep, x, y)

    def ldexp(self, other):
        """self * 2**other, as torch's (a float result whatever the operands)."""
        return self * (2.0 ** _tensor_argument("ldexp", "other", other))

    def nextafter(self, other):
        """The next float after self toward other; the gradient passes to self unchanged, as torch's."""
        x, y = _promoted(self, _tensor_argument("nextafter", "other", other), "nextafter", "f")
        return _ops().NextAfter.apply(x, y)

    def gcd(self, other):
        """The greatest common divisor (non-negative; gcd(0, 0) = 0), integers only."""
        x, y = _promoted(self, _tensor_argument("gcd", "other", other), "gcd", "iu")
        return _computed(self.xp.gcd(x.array, y.array), "gcd")

    def lcm(self, other):
        """The least common multiple (non-negative; 0 where either is 0), integers only."""
        x, y = _promoted(self, _tensor_argument("lcm", "other", other), "lcm", "iu")
        return _computed(self.xp.lcm(x.array, y.array), "lcm")

    def frexp(self):
        """(mantissa, exponent) with self = mantissa * 2**exponent, |mantissa| in [0.5, 1), exponent int32.
        The mantissa is self scaled by a power of two (in two steps, each in range), so its gradient is
        1 / 2**exponent, torch's wherever torch's float32 2**exponent does not overflow (|self| >= 2**128 or
        below 2**-126, where torch's gradient is 0 or inf)."""
        if self.dtype.kind != "f":
            raise RuntimeError("torch.frexp() only supports floating-point dtypes")
        exponent = self.xp.frexp(self.array)[1]
        first = -(exponent // 2)
        scales = [_constant_like(self, self.xp.ldexp(self.xp.ones((), self.dtype), e)) for e in (first, -exponent - first)]
        return Frexp(self * scales[0] * scales[1], _computed(exponent.astype(np.int32), "frexp"))

    # --- the gamma family, erfinv and Bessel's i0: primitives (ops.py), integers computed in the default float
    def erfinv(self):
        return _ops().Erfinv.apply(self._floating())

    def lgamma(self):
        return _ops().Lgamma.apply(self._floating())

    def digamma(self):
        return _ops().Polygamma.apply(self._floating(), n=0)

    def polygamma(self, n):
        """The n-th derivative of digamma (torch's Tensor.polygamma(n); tr.polygamma(n, input) too)."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"polygamma: argument 'n' must be an int, not {type(n).__name__}")
        if n < 0:
            raise RuntimeError("polygamma(n, x) does not support negative n.")
        return _ops().Polygamma.apply(self._floating(), n=int(n))

    def i0(self):
        return _ops().BesselI.apply(self._floating(), order=0)

    def _i1(self):
        return _ops().BesselI.apply(self._floating(), order=1)


def _with_arguments_in_place(name):
    """The in-place form of `name`, a method with arguments other than a tensor operand (nan_to_num_, logit_)."""
    def method(self, *args, **kwargs):
        return self._update(f"{name}_", lambda x, _: getattr(x, name)(*args, **kwargs), reads_old=True)
    method.__name__ = method.__qualname__ = f"{name}_"
    method.__doc__ = f"{name}, written into this tensor (as torch's {name}_)."
    return method


_UNARY_IN_PLACE = ("sin", "cos", "tan", "sinh", "cosh", "exp2", "log2", "log10", "frac", "fix", "negative",
                   "bitwise_not", "logical_not", "erfinv", "lgamma", "digamma", "i0")
_BINARY_IN_PLACE = ("eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal",
                    "not_equal", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
                    "bitwise_right_shift", "logical_and", "logical_or", "logical_xor", "ldexp", "nextafter", "gcd",
                    "lcm")
_WITH_ARGUMENTS_IN_PLACE = ("logit", "nan_to_num", "polygamma", "cumsum", "cumprod", "renorm")

for _name in _UNARY_IN_PLACE:
    setattr(ElementwiseMethods, f"{_name}_", _elementwise_in_place(_name))
for _name in _BINARY_IN_PLACE:
    setattr(ElementwiseMethods, f"{_name}_", _binary_in_place(_name))
for _name in _WITH_ARGUMENTS_IN_PLACE:
    setattr(ElementwiseMethods, f"{_name}_", _with_arguments_in_place(_name))
ElementwiseMethods.__ilshift__ = ElementwiseMethods.bitwise_left_shift_
ElementwiseMethods.__irshift__ = ElementwiseMethods.bitwise_right_shift_
ElementwiseMethods.__iand__ = ElementwiseMethods.bitwise_and_
ElementwiseMethods.__ior__ = ElementwiseMethods.bitwise_or_
ElementwiseMethods.__ixor__ = ElementwiseMethods.bitwise_xor_
