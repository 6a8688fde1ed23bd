"""torch.special's common functions under its names, each our Tensor method or a short composite of them.

erfcx is left out: exp(x**2) * erfc(x) overflows long before its value does, and an exact form needs a
continued fraction of its own.
"""
import math

from .functions import polygamma
from .methods import _tensor_argument
from .tensor import Tensor, where

__all__ = ["digamma", "entr", "erf", "erfc", "erfinv", "exp2", "expit", "expm1", "gammaln", "i0", "i1",
           "log1p", "log_ndtr", "log_softmax", "logit", "logsumexp", "multigammaln", "ndtr", "ndtri",
           "polygamma", "psi", "round", "sinc", "softmax", "xlog1py", "xlogy"]


def _input(op, input):
    return _tensor_argument(f"special.{op}", "input", input)


def _method(name, op=None):
    """special.`op` as input.`name`(...)."""
    op = op or name

    def function(input, *args, **kwargs):
        return getattr(_input(op, input), name)(*args, **kwargs)
    function.__name__ = function.__qualname__ = op
    function.__doc__ = f"special.{op}(input, ...) is input.{name}(...)."
    return function


expit = _method("sigmoid", "expit")
gammaln = _method("lgamma", "gammaln")
psi = _method("digamma", "psi")
i1 = _method("_i1", "i1")
erf, erfc, erfinv, exp2, expm1, log1p, digamma, i0, sinc, logit, logsumexp = (
    _method(name) for name in ("erf", "erfc", "erfinv", "exp2", "expm1", "log1p", "digamma", "i0", "sinc", "logit",
                               "logsumexp"))


def round(input, *, decimals=0):
    return _input("round", input).round(decimals=decimals)


def softmax(input, dim, *, dtype=None):
    return _input("softmax", input).softmax(dim, dtype=dtype)


def log_softmax(input, dim, *, dtype=None):
    return _input("log_softmax", input).log_softmax(dim, dtype=dtype)


def xlogy(input, other):
    from .functions import FUNCTIONS
    return FUNCTIONS["xlogy"](input, other)


def xlog1py(input, other):
    """input * log1p(other), 0 where input is 0 unless other is NaN (as xlogy); either may be a number."""
    from . import ops
    x = input if isinstance(input, Tensor) else _input("xlog1py", other)._lift(input, "xlog1py")
    return x._binary(ops.XLogY, other, log1p=True)


def ndtr(input):
    """The standard normal distribution function: erfc(-x / sqrt 2) / 2, exact in the lower tail."""
    return _input("ndtr", input).mul(-math.sqrt(0.5)).erfc() * 0.5


def ndtri(input):
    """ndtr's inverse, sqrt 2 * erfinv(2 p - 1) (good to rounding where 2 p - 1 is: p away from 0)."""
    return (_input("ndtri", input) * 2 - 1).erfinv() * math.sqrt(2)


def log_ndtr(input):
    """log(ndtr(x)): log1p of the upper tail above -1, the log of the lower one below."""
    x = _input("log_ndtr", input)
    low = x < -1
    lower, upper = where(low, x, -2.0), where(low, 0.0, x)  # each branch away from where the other overflows
    return where(low, ((lower * -math.sqrt(0.5)).erfc() * 0.5).log(), ((upper * math.sqrt(0.5)).erfc() * -0.5).log1p())


def entr(input):
    """-x log x for x > 0, 0 at 0, -inf below (NaN stays NaN)."""
    x = _input("entr", input)
    return where(x > 0, -x * x.log(), where(x == 0, 0.0, where(x < 0, -math.inf, x)))


def multigammaln(input, p):
    """log of the multivariate gamma function of dimension p: sum_i lgamma(x - i / 2) + p (p - 1) / 4 log pi
    (inf, not an error, where x <= (p - 1) / 2, as torch 2.x)."""
    x = _input("multigammaln", input)
    if p < 1:
        raise RuntimeError(f"p has to be greater than or equal to 1, but got {p}")
    total = x.lgamma()
    for i in range(1, p):
        total = total + (x - i / 2).lgamma()
    return total + p * (p - 1) / 4 * math.log(math.pi)
