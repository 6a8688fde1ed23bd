"""Gradient clipping, in place on the parameters' `.grad` arrays, as torch.nn.utils does it.

clip_grad_norm_ never waits for the device: the per-gradient norms, the total, the scale and the
scaling all stay where the gradients are, and the total comes back as a Tensor there (as torch's
does). Only error_if_nonfinite=True reads it on the host, to decide whether to raise.
"""
import math

import numpy as np

from ... import backend
from ...tensor import Tensor


def _grads(parameters):
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad.array for p in parameters if p.grad is not None]


def _vector_norm(xp, flat, norm_type):
    """The norm of a 1-D array, as a 0-d array of its dtype, as torch.linalg.vector_norm gives it: order 0
    counts the non-zero entries, -inf is the smallest magnitude, a negative p has zeros give 0. A sum of
    powers past the dtype's range is inf, as torch's, without NumPy's warning."""
    with np.errstate(over="ignore", divide="ignore"):
        return _vector_norm_of(xp, flat, norm_type)


def _vector_norm_of(xp, flat, norm_type):
    if not flat.size:
        if norm_type < 0:
            raise ValueError(f"clip_grad_norm_: the norm of order {norm_type} of an empty gradient is undefined")
        return xp.zeros((), dtype=flat.dtype)
    if norm_type == math.inf:
        return xp.abs(flat).max()
    if norm_type == -math.inf:
        return xp.abs(flat).min()
    if norm_type == 0:
        return (flat != 0).sum().astype(flat.dtype)
    if norm_type == 2.0:
        return xp.sqrt(flat @ flat)
    return (xp.abs(flat) ** norm_type).sum() ** (1.0 / norm_type)   # a negative p: 0 ** p is inf, the norm 0


def total_norm(grads, norm_type=2.0):
    """torch's total norm of a list of gradient arrays: the norm of their norms, a 0-d array on the first one's device."""
    first = grads[0]
    xp = backend.xp_of(first)
    device = backend.device_of(first)
    norms = [_vector_norm(backend.xp_of(g), g.reshape(-1), norm_type) for g in grads]
    norms = [n if backend.device_of(n) == device else backend.to_device(n, device) for n in norms]
    return _vector_norm(xp, xp.stack(norms), norm_type)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients together so that their joint norm is at most `max_norm` (Pascanu et al. 2013).

    The norm is taken over all gradients as if they were one vector: the norm of the per-tensor
    norms. Every gradient is multiplied by min(1, max_norm / (total_norm + 1e-6)). Returns the
    total norm before clipping as a 0-d Tensor on the gradients' device (float() reads it), as
    torch does. `norm_type` is any order of torch.linalg.vector_norm (2, 1, inf, 0, -inf, any
    other number); `foreach` is accepted for torch's signature (there is one way here).
    """
    norm_type = float(norm_type)
    if math.isnan(norm_type):
        raise ValueError(f"clip_grad_norm_: norm_type must be a number or +-inf, got {norm_type}")
    grads = _grads(parameters)
    if not grads:
        return Tensor(0.0)
    total = total_norm(grads, norm_type)
    xp = backend.xp_of(total)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
                           f"non-finite ({float(total)}), so it cannot be clipped; pass error_if_nonfinite=False "
                           f"to scale the gradients by it anyway")
    coef = xp.minimum(float(max_norm) / (total + 1e-6), 1.0)
    for g in grads:   # an infinite entry times a coefficient of 0 is NaN, as in torch, without a warning
        with np.errstate(invalid="ignore"):
            g *= coef if backend.device_of(g) == backend.device_of(coef) else backend.to_device(coef, backend.device_of(g))
    return Tensor._make(total, None)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        backend.xp_of(g).clip(g, -clip_value, clip_value, out=g)
