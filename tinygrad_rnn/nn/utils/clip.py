"""Gradient clipping, in place on the parameters' `.grad` arrays, as torch.nn.utils does it.

clip_grad_norm_ never waits for the device: the per-gradient norms, the total, the scale and the
scaling all stay where the gradients are, and the total comes back as a Tensor there (as torch's
does). Only error_if_nonfinite=True reads it on the host, to decide whether to raise.
"""
import math
import warnings

import numpy as np

from ... import backend
from ...tensor import Tensor


def _tensors(tensors):
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _grads(parameters):
    return [p.grad.array for p in _tensors(parameters) if p.grad is not None]


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


def _total_norm_array(arrays, norm_type=2.0):
    """torch's total norm of a list of arrays: the norm of their norms, a 0-d array on the first one's device."""
    first = arrays[0]
    xp = backend.xp_of(first)
    device = backend.device_of(first)
    norms = [_vector_norm(backend.xp_of(a), a.reshape(-1), norm_type) for a in arrays]
    norms = [n if backend.device_of(n) == device else backend.to_device(n, device) for n in norms]
    return _vector_norm(xp, xp.stack(norms), norm_type)


def _norm_order(norm_type):
    norm_type = float(norm_type)   # "inf" too, as torch takes it
    if math.isnan(norm_type):
        raise ValueError(f"norm_type must be a number or +-inf, got {norm_type}")
    return norm_type


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The norm of `tensors` (a tensor or several, usually gradients) taken as one vector: the norm of
    their norms, a 0-d Tensor on their device, outside the graph, as torch.nn.utils.get_total_norm.
    With error_if_nonfinite, an inf or NaN total raises (the one read from the device)."""
    norm_type = _norm_order(norm_type)
    arrays = [t.array for t in _tensors(tensors)]
    if not arrays:
        return Tensor(0.0)
    total = _total_norm_array(arrays, norm_type)
    if error_if_nonfinite and not bool(backend.xp_of(total).isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite "
                           f"({float(total)}), so it cannot be clipped. To disable this error and scale the "
                           f"gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
    return Tensor._make(total, None)


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Multiply every gradient by min(1, max_norm / (total_norm + 1e-6)), in place, `total_norm` a
    Tensor as get_total_norm gives it (the second half of clip_grad_norm_, as torch splits it)."""
    if not isinstance(total_norm, Tensor):
        raise TypeError(f"clip_grads_with_norm_: argument 'total_norm' must be a Tensor (as get_total_norm "
                        f"returns it), not {type(total_norm).__name__}")
    grads = _grads(parameters)
    if not grads:
        return
    total = total_norm.array
    coef = backend.xp_of(total).minimum(float(max_norm) / (total + 1e-6), 1.0)
    for g in grads:   # an infinite entry times a coefficient of 0 is NaN, as in torch, without a warning
        with np.errstate(invalid="ignore"):
            g *= coef if backend.device_of(g) == backend.device_of(coef) else backend.to_device(coef, backend.device_of(g))


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients together so that their joint norm is at most `max_norm` (Pascanu et al. 2013).

    The norm is taken over all gradients as if they were one vector: the norm of the per-tensor
    norms (get_total_norm). Every gradient is multiplied by min(1, max_norm / (total_norm + 1e-6))
    (clip_grads_with_norm_). Returns the total norm before clipping as a 0-d Tensor on the
    gradients' device (float() reads it), as torch does. `norm_type` is any order of
    torch.linalg.vector_norm (2, 1, inf, 0, -inf, any other number); `foreach` is accepted for
    torch's signature (there is one way here).
    """
    parameters = _tensors(parameters)   # a generator is read once, by both halves
    grads = [p.grad for p in parameters if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        backend.xp_of(g).clip(g, -clip_value, clip_value, out=g)


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """clip_grad_norm_ under torch's deprecated name, with torch's FutureWarning."""
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of `torch.nn.utils.clip_grad_norm_`.",
                  FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)
