"""Tensor constructors and the random number generator behind initialisation.

Random numbers are drawn on the host from one NumPy generator and then moved, so a seed gives the
same weights on the CPU and on the GPU.
"""
import numpy as np

from . import backend
from .tensor import Tensor

_rng = np.random.default_rng()


def manual_seed(seed):
    """Seed the generator used by randn, rand, uniform_ and the layers' initialisation."""
    global _rng
    _rng = np.random.default_rng(seed)


def rng():
    return _rng


def _shape(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def _place(array, dtype, device, requires_grad):
    dtype = np.dtype(dtype or np.float32)
    array = backend.to_device(array.astype(dtype, copy=False), backend.check_device(device))
    return Tensor(array, dtype=dtype, requires_grad=requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad=False):
    device = backend.check_device(device)
    dtype = np.dtype(dtype or np.float32)
    return Tensor(backend.xp_for(device).zeros(_shape(shape), dtype=dtype), dtype=dtype,
                  requires_grad=requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False):
    return full(_shape(shape), 1.0, dtype=dtype, device=device, requires_grad=requires_grad)


def full(shape, value, dtype=None, device=None, requires_grad=False):
    device = backend.check_device(device)
    dtype = np.dtype(dtype or np.float32)
    return Tensor(backend.xp_for(device).full(tuple(shape), value, dtype=dtype), dtype=dtype,
                  requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False):
    return _place(_rng.standard_normal(_shape(shape)), dtype, device, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False):
    return _place(_rng.random(_shape(shape)), dtype, device, requires_grad)


def uniform(shape, low, high, dtype=None, device=None, requires_grad=False):
    return _place(_rng.uniform(low, high, size=tuple(shape)), dtype, device, requires_grad)


def arange(*args, dtype=None, device=None):
    device = backend.check_device(device)
    values = np.arange(*args)
    return Tensor(backend.to_device(values.astype(dtype) if dtype else values, device))
