"""Functions composed from primitives: softmax, losses, dropout. No op here has its own backward."""
import numpy as np

from .. import backend
from ..factory import rng
from ..tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def _shifted(x, dim):
    """x minus its (constant) maximum along dim: exp never overflows, the gradient is unchanged."""
    return x - Tensor._make(x.array.max(axis=dim, keepdims=True), None)


def softmax(x, dim=-1):
    e = _shifted(x, dim).exp()
    return e / e.sum(axis=dim, keepdims=True)


def log_softmax(x, dim=-1):
    z = _shifted(x, dim)
    return z - z.exp().sum(axis=dim, keepdims=True).log()


def _reduce(losses, reduction, count=None):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")
    if reduction == "none":
        return losses
    total = losses.sum()
    return total if reduction == "sum" else total / (losses.numel() if count is None else count)


def nll_loss(log_probs, target, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of class indices: log_probs (N, C) or (C,), target (N,) or ()."""
    target = target.array if isinstance(target, Tensor) else log_probs.xp.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold integer class indices; got dtype {target.dtype}")
    target_shape = target.shape  # the shape of reduction="none" losses, as in PyTorch
    if log_probs.ndim == 1:
        log_probs, target = log_probs.reshape(1, -1), target.reshape(1)
    if log_probs.ndim != 2 or target.shape != log_probs.shape[:1]:
        raise ValueError(f"nll_loss: expected log_probs (N, C) and target (N,); "
                         f"got {log_probs.shape} and {target.shape}")
    xp = log_probs.xp
    keep = target != ignore_index
    safe_target = xp.where(keep, target, 0)
    n_classes = log_probs.shape[1]
    if bool(((safe_target < 0) | (safe_target >= n_classes)).any()):
        raise IndexError(f"nll_loss: target values must lie in [0, {n_classes}) or equal "
                         f"ignore_index={ignore_index}; got min {int(target.min())}, max {int(target.max())}")
    picked = log_probs[xp.arange(len(target)), safe_target]
    losses = -picked * Tensor._make(keep.astype(log_probs.dtype), None)
    if reduction == "none":
        return losses.reshape(target_shape)
    return _reduce(losses, reduction, count=int(keep.sum()))


def cross_entropy(logits, target, ignore_index=-100, reduction="mean"):
    """Cross-entropy from unnormalised logits and class indices (PyTorch's F.cross_entropy).

    logits (N, C), (C,) or (N, C, d1, ...) with target (N, d1, ...).
    """
    if logits.ndim > 2:
        target = target.array if isinstance(target, Tensor) else logits.xp.asarray(target)
        if target.shape != logits.shape[:1] + logits.shape[2:]:
            raise ValueError(f"cross_entropy: logits {logits.shape} need a target of shape "
                             f"{logits.shape[:1] + logits.shape[2:]}; got {target.shape}")
        classes_last = logits.permute(0, *range(2, logits.ndim), 1).reshape(-1, logits.shape[1])
        losses = nll_loss(log_softmax(classes_last, dim=-1), target.reshape(-1), ignore_index, reduction)
        return losses.reshape(target.shape) if reduction == "none" else losses
    return nll_loss(log_softmax(logits, dim=-1), target, ignore_index, reduction)


def mse_loss(input, target, reduction="mean"):
    target = target if isinstance(target, Tensor) else input._lift(target)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input {input.shape} and target {target.shape} must have the same shape")
    diff = input - target
    return _reduce(diff * diff, reduction)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be in [0, 1]; got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    keep = (rng().random(x.shape) >= p).astype(x.dtype) / np.asarray(1 - p, dtype=x.dtype)
    return x * Tensor._make(backend.to_device(keep, x.device), None)
