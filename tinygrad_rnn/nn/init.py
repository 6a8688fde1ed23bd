"""Initialisers that fill a tensor in place, as torch.nn.init does.

Values are drawn on the host from `tr.factory.rng()` and then copied to the tensor's device, so
`tr.manual_seed(s)` gives the same weights on the CPU and on the GPU. Recurrent weights stack one
block of rows per gate (LSTM i,f,g,o; GRU r,z,n); `per_gate` applies an initialiser to each block.
"""
import numpy as np

from .. import backend, factory
from ..tensor import Tensor
from .module import Parameter


def parameter(*shape, dtype=None, device=None):
    """A zero-filled Parameter (float32 unless dtype says otherwise) for an initialiser to fill."""
    return Parameter(factory.zeros(*shape, dtype=dtype, device=device))


def zeros_like_state(batch, size, like):
    """Zeros (batch, size) with the dtype and device of `like` (an initial state)."""
    return factory.zeros(batch, size, dtype=like.dtype, device=like.device)


def _fill(tensor, values):
    """Write host values into the tensor's array in place (parameters keep their identity)."""
    tensor.array[...] = backend.to_device(np.asarray(values, dtype=tensor.dtype), tensor.device)
    return tensor


def uniform_(tensor, a=0.0, b=1.0):
    return _fill(tensor, factory.rng().uniform(a, b, size=tensor.shape))


def normal_(tensor, mean=0.0, std=1.0):
    return _fill(tensor, factory.rng().normal(mean, std, size=tensor.shape))


def constant_(tensor, value):
    return _fill(tensor, np.full(tensor.shape, value))


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def _matrix_shape(tensor, name):
    if tensor.ndim < 2:
        raise ValueError(f"{name}: needs a tensor of at least 2 dims; got shape {tensor.shape}")
    return tensor.shape[0], int(np.prod(tensor.shape[1:]))


def orthogonal_(tensor, gain=1.0):
    """A (semi-)orthogonal matrix (Saxe et al. 2014): orthonormal rows or columns, whichever fit."""
    rows, cols = _matrix_shape(tensor, "orthogonal_")
    flat = factory.rng().standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))  # makes the draw uniform over orthogonal matrices
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))


def eye_(tensor, gain=1.0):
    """The identity (ones on the main diagonal of a 2-D tensor), scaled by gain."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: needs a 2-D tensor; got shape {tensor.shape}")
    return _fill(tensor, gain * np.eye(*tensor.shape))


def per_gate(init, weight, n_gates, **options):
    """Apply `init` to each of the n_gates row blocks of a stacked gate weight (or bias)."""
    if weight.shape[0] % n_gates:
        raise ValueError(f"per_gate: {weight.shape[0]} rows do not split into {n_gates} gates")
    block = weight.shape[0] // n_gates
    for k in range(n_gates):
        init(Tensor._make(weight.array[k * block:(k + 1) * block], None), **options)  # a view
    return weight
