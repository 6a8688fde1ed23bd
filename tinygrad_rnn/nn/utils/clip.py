"""Gradient clipping, in place on the parameters' `.grad` arrays, as torch.nn.utils does it."""
import math

from ... import backend
from ...tensor import Tensor


def _grads(parameters):
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad.array for p in parameters if p.grad is not None]


def _vector_norm(g, norm_type):
    xp = backend.xp_of(g)
    flat = g.reshape(-1)
    if norm_type == math.inf:
        return xp.abs(flat).max() if flat.size else xp.zeros((), dtype=g.dtype)
    if norm_type == 2.0:
        return xp.sqrt(flat @ flat)
    return (xp.abs(flat) ** norm_type).sum() ** (1.0 / norm_type)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so that their joint norm is at most `max_norm` (Pascanu et al. 2013).

    The norm is taken over all gradients as if they were one vector: the norm of the per-tensor
    norms. Every gradient is multiplied by min(1, max_norm / (total_norm + 1e-6)). Returns the
    total norm before clipping, as a float. `norm_type` is a positive number or math.inf.
    """
    norm_type = float(norm_type)
    if not (norm_type > 0 or norm_type == math.inf):
        raise ValueError(f"clip_grad_norm_: norm_type must be a positive number or inf, got {norm_type}")
    grads = _grads(parameters)
    if not grads:
        return 0.0
    norms = [float(_vector_norm(g, norm_type)) for g in grads]
    if norm_type == math.inf:
        total = max(norms)
    else:
        total = math.fsum(n ** norm_type for n in norms) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
                           f"non-finite ({total}), so it cannot be clipped; pass error_if_nonfinite=False "
                           f"to scale the gradients by it anyway")
    coef = min(float(max_norm) / (total + 1e-6), 1.0)
    for g in grads:
        g *= backend.xp_of(g).asarray(coef, dtype=g.dtype)
    return total


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        backend.xp_of(g).clip(g, -clip_value, clip_value, out=g)
