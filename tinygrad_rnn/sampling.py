"""torch's remaining random draws: normal's four overloads, bernoulli, poisson, randint_like, and the
in-place fills random_, exponential_, geometric_, log_normal_ and cauchy_.

Every draw is torch's CPU draw after the same seed (a `tr.Generator`'s words, read as torch's kernels read
them, element after element): the uniform and normal draws of draws.py, and for the rest one uniform
double (53 bits of random64()) per element turned as torch's transformation:: functions turn it
(exponential -log1p(-u) / lambd, geometric ceil(log(u) / log1p(-p)), cauchy median + sigma * tan(pi *
(u - 0.5)), log-normal exp of normal_distribution<double>), and poisson torch's sample_poisson
(product of uniforms below 10, Hoermann's transformed rejection from 10 on).
"""
import math
import numbers

import numpy as np

from . import backend, draws, dtypes
from .methods import _constant, _tensor_argument


def _factory():
    from . import factory  # factory imports tensor.py, which mixes these methods in: read it when called
    return factory


def generator_for(generator, op):
    return _factory().generator_for(generator, op)


def _tensor_cls():
    from .tensor import Tensor
    return Tensor


def _fill(tensor, op, drawn):
    """Write `drawn` into `tensor` in place, as normal_ does (recorded where gradients are)."""
    drawn = np.asarray(drawn).astype(tensor.dtype)
    if tensor._in_place(op):
        return tensor._put(op, Ellipsis, drawn)
    tensor.array[...] = backend.to_device(drawn, tensor.device)
    return tensor


def _floating(op, tensor):
    if tensor.dtype.kind != "f":
        raise TypeError(f"{op} expects a floating point tensor; got {tensor.dtype}")


def _uniform_doubles(generator, op, tensor):
    return generator_for(generator, op).uniform(tensor.numel()).reshape(tensor.shape)


# ----------------------------------------------------------------------------- normal

def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """Draws from N(mean, std^2): mean and std tensors or numbers, broadcast (the shape given by size when
    both are numbers). As torch, N(0, 1) draws (N(0, std) for a number std) then scaled and shifted; the
    result carries no gradient to mean or std (torch's are zeros)."""
    Tensor = _tensor_cls()
    mean_t, std_t = isinstance(mean, Tensor), isinstance(std, Tensor)
    gen = generator_for(generator, "normal")
    if not (mean_t or std_t):
        if size is None:
            raise TypeError("normal(): with a number mean and std, give the size")
        if std < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        shape = _factory()._size((size,), "normal")
        dtype = _factory()._dtype(dtype, "normal")
        return _factory()._place(draws.normal(gen, shape, dtype, mean, std), dtype, device, requires_grad)
    if size is not None:
        raise TypeError("normal(): size is only for a number mean and std")
    like = mean if mean_t else std
    for name, value in (("mean", mean), ("std", std)):
        if isinstance(value, Tensor) and value.dtype.kind != "f":
            raise RuntimeError(f"normal expects floating-point {name}; got {value.dtype}")
    if std_t and (std.array < 0).any():
        raise RuntimeError("normal expects all elements of std >= 0.0")
    if not std_t and std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    shape = np.broadcast_shapes(mean.shape if mean_t else (), std.shape if std_t else ())
    dtype = like.dtype
    noise = draws.normal(gen, shape, dtype, 0.0, 1.0 if std_t else std)
    scaled = noise * backend.to_numpy(std.array) if std_t else noise
    drawn = np.asarray(scaled + (backend.to_numpy(mean.array) if mean_t else mean), dtype=dtype)
    return _constant(backend.to_device(drawn, like.device))


# ----------------------------------------------------------------------------- discrete draws

def _bernoulli_draws(generator, op, probabilities):
    """Booleans of probabilities' shape, as torch's bernoulli_(Tensor p) on the CPU: a uniform double per
    element for float64 p, a uniform float (24 bits of one word) otherwise."""
    gen = generator_for(generator, op)
    p = backend.to_numpy(probabilities.array)
    if ((p < 0) | (p > 1) | np.isnan(p)).any():
        raise RuntimeError(f"{op}: Expected p_in >= 0 && p_in <= 1 to be true, but got false.")
    if p.dtype == np.float64:
        u = gen.uniform(p.size)
    else:
        u = (gen.random32(p.size) & np.uint64(2 ** 24 - 1)).astype(np.float32) * np.float32(2.0 ** -24)
    return u.reshape(p.shape) < p


def bernoulli(input, p=None, *, generator=None):
    """0s and 1s of input's dtype: 1 with probability input (elementwise), or with probability p when given."""
    input = _tensor_argument("bernoulli", "input", input)
    return input.bernoulli(p, generator=generator)


def poisson(input, generator=None):
    """Counts drawn from Poisson(rate) for each rate of input, of input's dtype: torch's sample_poisson."""
    input = _tensor_argument("poisson", "input", input)
    rates = backend.to_numpy(input.array)
    if (rates < 0).any() or np.isnan(rates).any():
        raise RuntimeError("poisson: invalid Poisson rate, expected rate to be non-negative")
    gen = generator_for(generator, "poisson")
    drawn = [_poisson(gen, float(rate)) for rate in rates.reshape(-1)]
    return _constant(backend.to_device(np.asarray(drawn, dtype=input.dtype).reshape(input.shape), input.device))


def _poisson(gen, rate):
    def uniform():
        return float(gen.uniform(1)[0])
    if rate >= 10:  # Hoermann's transformed rejection (PTRS), as torch's
        slam, loglam = math.sqrt(rate), math.log(rate)
        b = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * b
        invalpha = 1.1239 + 1.1328 / (b - 3.4)
        vr = 0.9277 - 3.6224 / (b - 2)
        while True:
            u, v = uniform() - 0.5, uniform()
            us = 0.5 - abs(u)
            k = math.floor((2 * a / us + b) * u + rate + 0.43)
            if us >= 0.07 and v <= vr:
                return k
            if k < 0 or (us < 0.013 and v > us):
                continue
            if math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b) <= \
                    -rate + k * loglam - math.lgamma(k + 1):
                return k
    if rate == 0:
        return 0
    bound, count, product = math.exp(-rate), 0, 1.0
    while True:
        product *= uniform()
        if product <= bound:
            return count
        count += 1


def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False, generator=None):
    """randint over input's shape: randint_like(input, high) or randint_like(input, low, high); input's
    dtype and device unless given."""
    input = _tensor_argument("randint_like", "input", input)
    if high is None:
        low, high = 0, low
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"randint_like: {name} must be an integer; got {value!r}")
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    dtype = input.dtype if dtype is None else dtypes.check(dtype, "randint_like")
    dtypes.check_fits(np.asarray([low, high - 1]), dtype, "randint_like")
    drawn = _factory()._torch_integers(generator_for(generator, "randint_like"), low, high, input.shape)
    return _factory()._place(drawn, dtype, input.device if device is None else device, requires_grad)


# ----------------------------------------------------------------------------- methods

class SamplingMethods:
    """Tensor methods of torch's that draw random numbers."""

    def bernoulli(self, p=None, *, generator=None):
        """0s and 1s of this dtype, 1 with probability self (elementwise), or p when given."""
        if p is None:
            _floating("bernoulli", self)
            drawn = _bernoulli_draws(generator, "bernoulli", self)
        else:
            drawn = draws.bernoulli(generator_for(generator, "bernoulli"), self.shape, float(p))
        return _constant(backend.to_device(drawn.astype(self.dtype), self.device))

    def bernoulli_(self, p=0.5, *, generator=None):
        """Fill with 0s and 1s, 1 with probability p (a number, or a tensor broadcast to this one)."""
        if isinstance(p, _tensor_cls()):
            drawn = _bernoulli_draws(generator, "bernoulli_", p.expand(self.shape))
        else:
            if not 0 <= p <= 1:
                raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")
            drawn = draws.bernoulli(generator_for(generator, "bernoulli_"), self.shape, float(p))
        return _fill(self, "bernoulli_", drawn)

    def random_(self, from_=0, to=None, *, generator=None, **kwargs):
        """Fill with integers from [from, to) (random_(to): from 0), or, with neither, from 0 to the largest
        integer the dtype holds exactly (2**mantissa bits for floats), as torch draws them."""
        from_ = kwargs.pop("from", from_)
        if kwargs:
            raise TypeError(f"random_() got an unexpected keyword argument {next(iter(kwargs))!r}")
        gen = generator_for(generator, "random_")
        if to is None and from_ != 0:
            from_, to = 0, from_
        if to is None:
            if self.dtype.kind == "f":
                span = 2 ** (np.finfo(self.dtype).nmant + 1) + 1
            elif self.dtype.kind == "b":
                span = 2
            else:
                span = int(np.iinfo(self.dtype).max) + 1
            wide = self.dtype in (np.float64, np.int64)
            words = gen.random64(self.numel()) if wide else gen.random32(self.numel())
            drawn = (words % np.uint64(span)).reshape(self.shape)
        else:
            if from_ >= to:
                raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={from_} >= to={to}")
            drawn = _factory()._torch_integers(gen, from_, to, self.shape)
        return _fill(self, "random_", drawn)

    def exponential_(self, lambd=1.0, *, generator=None):
        _floating("exponential_", self)
        if not lambd > 0:
            raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
        return _fill(self, "exponential_", -np.log1p(-_uniform_doubles(generator, "exponential_", self)) / lambd)

    def geometric_(self, p, *, generator=None):
        if not 0 < p < 1:
            raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p}")
        u = _uniform_doubles(generator, "geometric_", self)
        return _fill(self, "geometric_", np.ceil(np.log(u) / np.log1p(-p)))

    def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
        _floating("log_normal_", self)
        if not std > 0:
            raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std}")
        normals = draws._normal_doubles(generator_for(generator, "log_normal_"), self.numel())
        return _fill(self, "log_normal_", np.exp(normals * std + mean).reshape(self.shape))

    def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
        _floating("cauchy_", self)
        u = _uniform_doubles(generator, "cauchy_", self)
        return _fill(self, "cauchy_", median + sigma * np.tan(math.pi * (u - 0.5)))


FUNCTIONS = {f.__name__: f for f in (normal, bernoulli, poisson, randint_like)}
