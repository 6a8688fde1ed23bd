"""Values of the special functions (erfinv, lgamma, digamma, polygamma, i0, i1) on raw arrays.

NumPy has none of them. Each is vectorised, `xp` taken from the data, and follows the algorithm torch's
CPU kernels use where that algorithm decides the last digits (digamma's recurrence, trigamma's short series),
so that values agree with torch's to rounding. lgamma is the C library's, as torch's is.
"""
import math

import numpy as np

from . import backend

# ----------------------------------------------------------------------------- erfinv

# a rational fit as the first guess (torch's, central and tail), then Newton steps
_ERFINV_A = (0.886226899, -1.645349621, 0.914624893, -0.140543331)
_ERFINV_B = (-2.118377725, 1.442710462, -0.329097515, 0.012229801)
_ERFINV_C = (-1.970840454, -1.624906493, 3.429567803, 1.641345311)
_ERFINV_D = (3.543889200, 1.637067800)
_CENTRAL = 0.7


def _horner(z, coefficients):
    """c[-1] z^(n-1) + ... + c[0], evaluated from the highest power as C code does."""
    total = coefficients[-1]
    for c in coefficients[-2::-1]:
        total = total * z + c
    return total


def erfinv(y):
    """x with erf(x) = y, to rounding as torch's: in the tails the Newton steps solve erfc(x) = 1 - |y| (1 - |y|
    is exact there) rather than erf(x) = y, whose difference would lose every digit near |y| = 1."""
    xp = backend.xp_of(y)
    with backend.ieee_quiet(xp):
        size = xp.abs(y)
        inside = size < 1
        size = xp.where(inside, size, 0.5)  # the edges are set at the end
        z = size * size
        central = size * _horner(z, _ERFINV_A) / (_horner(z, _ERFINV_B) * z + 1.0)
        w = xp.sqrt(-xp.log((1.0 - size) / 2.0))
        x = xp.where(size <= _CENTRAL, central, _horner(w, _ERFINV_C) / (_horner(w, _ERFINV_D) * w + 1.0))
        rest = 1.0 - size
        for _ in range(3):
            miss = xp.where(size <= _CENTRAL, backend.erf(x) - size, rest - backend.erfc(x))
            x = x - miss / ((2.0 / math.sqrt(math.pi)) * xp.exp(-x * x))
        x = xp.copysign(x, y)
        x = xp.where(inside, x, xp.where(xp.abs(y) == 1, xp.copysign(xp.asarray(np.inf, y.dtype), y), np.nan))
        return x.astype(y.dtype, copy=False)


# ----------------------------------------------------------------------------- lgamma


def _lgamma_scalar(x):
    try:
        return math.lgamma(x)
    except (ValueError, OverflowError):  # a pole (0, -1, -2, ...) or past float64: inf, as torch
        return math.inf


_LGAMMA = np.frompyfunc(_lgamma_scalar, 1, 1)


def lgamma(x):
    """log|Gamma(x)|: the C library's, element by element (no vectorised series is as exact near its zeros
    at 1 and 2); inf at the poles, as torch."""
    if isinstance(x, np.ndarray):
        return np.asarray(_LGAMMA(x), dtype=x.dtype) if x.size else x.copy()
    import cupyx.scipy.special
    return cupyx.scipy.special.gammaln(x)


# ----------------------------------------------------------------------------- digamma, polygamma

_PSI_10 = 2.25175258906672110764  # digamma(10)
_PSI_SERIES = (8.33333333333333333333E-2, -2.10927960927960927961E-2, 7.57575757575757575758E-3,
               -4.16666666666666666667E-3, 3.96825396825396825397E-3, -8.33333333333333333333E-3,
               8.33333333333333333333E-2)[::-1]  # lowest power first


def _digamma_positive(x):
    """digamma for x > 0 as torch: shift x past 10 by the recurrence, then the asymptotic series."""
    xp = backend.xp_of(x)
    result = xp.zeros_like(x)
    while True:
        small = x < 10
        if not bool(small.any()):
            break
        result = xp.where(small, result - 1 / x, result)
        x = xp.where(small, x + 1, x)
    z = 1.0 / (x * x)
    series = xp.where(x < 1e17, z * _horner(z, _PSI_SERIES), 0.0)
    return xp.where(x == 10, result + _PSI_10, result + xp.log(x) - 0.5 / x - series)


def digamma(x):
    """Gamma'(x) / Gamma(x), torch's way: -inf at +0 (inf at -0), NaN at the negative integers, the
    reflection psi(1 - x) - pi / tan(pi frac(x)) below 0."""
    xp = backend.xp_of(x)
    with backend.ieee_quiet(xp):
        negative = x < 0
        positive = _digamma_positive(xp.where(negative, 1 - x, xp.where(x == 0, 1.0, x)))
        reflected = positive - math.pi / xp.tan(math.pi * xp.fmod(x, 1.0))
        out = xp.where(negative, xp.where(x == xp.trunc(x), np.nan, reflected), positive)
        out = xp.where(x == 0, xp.copysign(xp.asarray(np.inf, x.dtype), -x), out)
        return xp.where(xp.isnan(x), x, out).astype(x.dtype, copy=False)


def _trigamma(x):
    """torch's trigamma: the reflection below 1/2, six steps of the recurrence, a short asymptotic series."""
    xp = backend.xp_of(x)
    low = x < 0.5
    sin_pi_x = xp.sin(math.pi * x)
    result = xp.where(low, -(math.pi * math.pi) / (sin_pi_x * sin_pi_x), 0.0)
    x = xp.where(low, 1 - x, x)
    for _ in range(6):
        result = result + 1 / (x * x)
        x = x + 1
    ixx = 1 / (x * x)
    result = result + (1 + 1 / (2 * x) + ixx * (1. / 6 - ixx * (1. / 30 - ixx * (1. / 42)))) / x
    return xp.where(low, -result, result)


# B_2j / (2j)!, the Euler-Maclaurin tail of the Hurwitz zeta function
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798, -174611 / 330)
_EULER_MACLAURIN = tuple(b / math.factorial(2 * j + 2) for j, b in enumerate(_BERNOULLI))
_DIRECT_SUM_UNTIL = 20.0


def _hurwitz_zeta(s, q):
    """sum over k >= 0 of (q + k)^-s for an integer s >= 2: the terms summed directly until q + k passes 20,
    the rest by Euler-Maclaurin (accurate to rounding there). inf at the poles q = 0, -1, ..."""
    xp = backend.xp_of(q)
    total = xp.zeros_like(q)
    a = q
    while True:
        near = (a < _DIRECT_SUM_UNTIL) & (a > -np.inf)
        if not bool(near.any()):
            break
        total = xp.where(near, total + a ** -s, total)
        a = xp.where(near, a + 1, a)
    tail = a ** (1 - s) / (s - 1) + 0.5 * a ** -s
    rising, power = float(s), a ** (-s - 1)
    for j, coefficient in enumerate(_EULER_MACLAURIN):
        tail = tail + coefficient * rising * power
        rising *= (s + 2 * j + 1) * (s + 2 * j + 2)
        power = power / (a * a)
    out = xp.where(q == np.inf, np.nan, total + tail)  # torch's tail meets 0 * inf there
    return xp.where((q <= 0) & (q == xp.floor(q)), np.inf, out)


def polygamma(n, x):
    """The n-th derivative of digamma: digamma itself for n = 0, torch's trigamma for n = 1, and
    (-1)^(n+1) n! zeta(n + 1, x) beyond."""
    if n == 0:
        return digamma(x)
    xp = backend.xp_of(x)
    with backend.ieee_quiet(xp):
        if n == 1:
            out = _trigamma(x)
        else:
            out = (-1) ** (n + 1) * math.factorial(n) * _hurwitz_zeta(n + 1, x)
        return xp.where(xp.isnan(x), x, out).astype(x.dtype, copy=False)


# ----------------------------------------------------------------------------- modified Bessel functions

_SERIES_BELOW = 30.0  # the power series below |x| = 30, the asymptotic expansion above


def _bessel_i(order, x):
    """I_order(x) (order 0 or 1) for x >= 0: its power series (positive terms, no cancellation) below 30, the
    asymptotic expansion e^x / sqrt(2 pi x) * sum_k (-1)^k a_k(order) / x^k above (overflowing with e^x, and
    NaN at inf, as torch's)."""
    xp = backend.xp_of(x)
    small = xp.where(x < _SERIES_BELOW, x, 0.0)
    half_squared = small * small / 4
    term = xp.ones_like(x) if order == 0 else small / 2
    total = term
    for k in range(1, 120):
        term = term * half_squared / (k * (k + order))
        total = total + term
    large = xp.where(x < _SERIES_BELOW, _SERIES_BELOW, x)
    mu = 4 * order * order
    term, expansion = xp.ones_like(x), xp.ones_like(x)
    for k in range(1, 40):
        term = -term * (mu - (2 * k - 1) ** 2) / (k * 8 * large)
        expansion = expansion + term
    asymptotic = xp.exp(large) * (expansion / xp.sqrt(2 * math.pi * large))
    return xp.where(x < _SERIES_BELOW, total, asymptotic)  # NaN at inf (inf / inf), as torch's


def i0(x):
    """The modified Bessel function of the first kind, order 0 (even)."""
    xp = backend.xp_of(x)
    with backend.ieee_quiet(xp):
        return _bessel_i(0, xp.abs(x)).astype(x.dtype, copy=False)


def i1(x):
    """The modified Bessel function of the first kind, order 1 (odd)."""
    xp = backend.xp_of(x)
    with backend.ieee_quiet(xp):
        return (xp.sign(x) * _bessel_i(1, xp.abs(x))).astype(x.dtype, copy=False)
