"""Connectionist temporal classification: torch.nn.functional.ctc_loss and torch.nn.CTCLoss.

The CTC loss of a sequence of per-step class log-probabilities against a shorter label sequence is
-log of the total probability of every alignment that collapses to the labels (repeats merged, then
blanks dropped). It is summed by the forward (alpha) and backward (beta) recursions over the extended
labels blank, l1, blank, l2, ..., blank, in log space, one step at a time; each step is one array
operation over the batch and the label positions. The operations run in the order of torch's CPU
kernel, so that values and gradients are torch's to the last bits.

As in torch, the loss has first derivatives only: its node's backward works on arrays, so
create_graph=True through it (a gradient of the gradient) raises an error, and it has no forward mode.
"""
import numbers

import numpy as np

from .. import backend
from ..ops import where_tensor
from ..tensor import Function, Tensor
from .checks import InputError
from .module import Module

REDUCTIONS = ("mean", "sum", "none")


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """The CTC loss, as torch.nn.functional.ctc_loss.

    log_probs (T, N, C), or (T, C) for one sequence: log-probabilities over C classes, blank among
    them (log_softmax's output). targets: (N, S) labels padded past each target length, or all the
    targets concatenated (sum(target_lengths),). input_lengths and target_lengths (N,): tensors of
    integers, lists or tuples. reduction 'mean' divides each loss by its target length (at least 1),
    then averages over the batch; 'sum' adds; 'none' gives the N losses. A target that no alignment
    of its input reaches has loss inf; zero_infinity=True makes it 0, with a zero gradient.

    The gradient is torch's: that of the loss through the log_softmax that gave log_probs (so
    exp(log_probs) minus each class's posterior occupation), not of the loss as a function of
    log_probs alone. Gradients of this gradient are not defined (create_graph=True raises an error),
    as in torch, which does not differentiate ctc_loss twice either.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"ctc_loss: reduction must be one of {REDUCTIONS}; got {reduction!r}")
    batched = _check_log_probs(log_probs)
    rows = log_probs if batched else log_probs.unsqueeze(1)
    steps, batch, classes = rows.shape
    if not isinstance(blank, numbers.Integral) or not 0 <= blank < classes:
        raise InputError(f"ctc_loss: blank must be in label range [0, {classes}); got blank={blank}")
    input_lengths = _lengths("input_lengths", input_lengths, batch)
    target_lengths = _lengths("target_lengths", target_lengths, batch)
    if (input_lengths > steps).any():
        raise InputError(f"ctc_loss: input_lengths must be at most the number of steps of log_probs, {steps}; "
                         f"got {int(input_lengths.max())}")
    labels = _padded_targets(targets, target_lengths, batch, classes)
    losses = CtcLoss.apply(rows, labels=labels, input_lengths=input_lengths, target_lengths=target_lengths,
                           blank=int(blank), zero_infinity=bool(zero_infinity))
    if zero_infinity:
        losses = where_tensor(losses.array == np.inf, 0.0, losses)
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        divisor = Tensor(np.maximum(target_lengths, 1), dtype=losses.dtype, device=losses.device)
        return (losses / divisor).mean()
    return losses if batched else losses.reshape(())


class CTCLoss(Module):
    """The CTC loss as a module (see ctc_loss): forward(log_probs, targets, input_lengths, target_lengths)."""

    def __init__(self, blank=0, reduction="mean", zero_infinity=False):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"CTCLoss: reduction must be one of {REDUCTIONS}; got {reduction!r}")
        self.blank, self.reduction, self.zero_infinity = blank, reduction, zero_infinity

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=self.blank,
                        reduction=self.reduction, zero_infinity=self.zero_infinity)

    def extra_repr(self):
        defaults = {"blank": 0, "reduction": "mean", "zero_infinity": False}
        return ", ".join(f"{name}={getattr(self, name)!r}" for name, default in defaults.items()
                         if getattr(self, name) != default)


# ----------------------------------------------------------------------------- arguments

def _check_log_probs(log_probs):
    """Whether log_probs is batched (T, N, C) rather than (T, C); refuses anything else."""
    if not isinstance(log_probs, Tensor):
        raise TypeError(f"ctc_loss: argument 'log_probs' must be a Tensor, not {type(log_probs).__name__}")
    if log_probs.dtype.kind != "f":
        raise TypeError(f"ctc_loss: log_probs must be floating point; got {log_probs.dtype}")
    if log_probs.dim() not in (2, 3):
        raise InputError(f"ctc_loss: expected log_probs of shape (T, N, C) or (T, C); got {log_probs.shape}")
    if log_probs.numel() == 0:
        raise InputError(f"ctc_loss: log_probs tensor must not be empty; got shape {log_probs.shape}")
    return log_probs.dim() == 3


def _lengths(name, lengths, batch):
    """One length per sample, as a host int64 array: from a tensor of integers (any shape, as torch
    reads its elements), a list or a tuple of ints."""
    if isinstance(lengths, Tensor):
        if lengths.dtype.kind not in "iu":
            raise InputError(f"ctc_loss: {name} must be integral; got a tensor of {lengths.dtype}")
        values = backend.to_numpy(lengths.array).astype(np.int64).reshape(-1)
    elif isinstance(lengths, (list, tuple)):
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in lengths):
            raise TypeError(f"ctc_loss: {name} must hold ints; got {lengths!r}")
        values = np.array(lengths, dtype=np.int64).reshape(-1)
    else:
        raise TypeError(f"ctc_loss: {name} must be a Tensor, a list or a tuple of ints; got {type(lengths).__name__}")
    if values.shape[0] != batch:
        raise InputError(f"ctc_loss: {name} must be of size batch_size, {batch}; got {values.shape[0]} values")
    if (values < 0).any():
        raise InputError(f"ctc_loss: {name} must be at least 0; got {int(values.min())}")
    return values


def _padded_targets(targets, target_lengths, batch, classes):
    """The targets as a host (N, max target length) int64 array, padded or concatenated ones alike."""
    if not isinstance(targets, Tensor):
        raise TypeError(f"ctc_loss: argument 'targets' must be a Tensor, not {type(targets).__name__}")
    values = backend.to_numpy(targets.array)
    longest = int(target_lengths.max())
    if values.ndim == 1:  # concatenated
        total = int(target_lengths.sum())
        if values.shape[0] != total:
            raise InputError(f"ctc_loss: concatenated targets must hold sum(target_lengths) = {total} labels; got "
                             f"{values.shape[0]}")
        position = np.arange(longest)
        inside = position < target_lengths[:, None]
        starts = np.cumsum(target_lengths) - target_lengths
        labels = values[np.where(inside, starts[:, None] + position, 0)] if total else np.zeros((batch, longest))
    elif values.ndim == 2:
        if values.shape[0] != batch:
            raise InputError(f"ctc_loss: targets must have batch_size, {batch}, rows; got {values.shape[0]}")
        if values.shape[1] < longest:
            raise InputError(f"ctc_loss: targets must have at least max(target_lengths) = {longest} columns; got "
                             f"{values.shape[1]}")
        labels = values[:, :longest]
        inside = np.arange(longest) < target_lengths[:, None]
    else:
        raise InputError(f"ctc_loss: targets must be 1-D (concatenated) or 2-D (padded); got shape {values.shape}")
    labels = labels.astype(np.int64)
    outside = inside & ((labels < 0) | (labels >= classes))
    if outside.any():  # torch reads out of its bounds here
        raise IndexError(f"ctc_loss: targets must lie in [0, {classes}); got {int(labels[outside][0])}")
    return np.where(inside, labels, 0)


# ----------------------------------------------------------------------------- the recursions

def _log_sum(*terms):
    """log(sum(exp(terms))) elementwise, in torch's kernel's order: the largest term taken out (0 when
    all are -inf), the exponentials added left to right."""
    xp = backend.xp_of(terms[0])
    top = terms[0]
    for term in terms[1:]:
        top = xp.where(term > top, term, top)
    top = xp.where(top == -np.inf, 0, top)
    total = xp.exp(terms[0] - top)
    for term in terms[1:]:
        total = total + xp.exp(term - top)
    return xp.log(total) + top


def _shifted(a, k):
    """a moved k places along its last axis (to higher positions for k > 0), -inf where nothing arrives."""
    out = backend.xp_of(a).full_like(a, -np.inf)
    kept = a.shape[-1] - abs(k)
    if kept > 0:
        if k > 0:
            out[..., k:] = a[..., :kept]
        else:
            out[..., :kept] = a[..., -k:]
    return out


class CtcLoss(Function):
    """Each sample's negative log-likelihood (N,) from log-probabilities (T, N, C) and (N, S) labels.

    The backward is torch's formula: (exp(log_probs) - exp(log(sum over the positions s of class c
    of alpha_s * beta_s) + nll - log_probs)) times the sample's output gradient, 0 at the steps past
    its input length, and 0 for the whole sample when its loss is inf and zero_infinity is set.
    """
    array_backward = True  # no differentiable_backward: first derivatives only, as torch
    saves = (0,)

    def forward(self, log_probs, labels, input_lengths, target_lengths, blank, zero_infinity):
        xp = backend.xp_of(log_probs)
        batch = log_probs.shape[1]
        # extended labels (N, 2S + 1): blank, l1, blank, l2, ..., blank
        extended = np.full((batch, 2 * labels.shape[1] + 1), blank, dtype=np.int64)
        extended[:, 1::2] = labels
        position = np.arange(extended.shape[1])
        valid = position < 2 * target_lengths[:, None] + 1
        # a path may jump over a blank to the next label unless that label repeats this one
        skip = (position >= 2) & (extended != np.roll(extended, 2, axis=1))
        skip_ahead = np.zeros_like(skip)  # from position s to s + 2, for the backward recursion
        skip_ahead[:, :-2] = skip[:, 2:]
        last = (position == 2 * target_lengths[:, None]) | (position == 2 * target_lengths[:, None] - 1)
        self.extended = xp.asarray(extended)
        self.valid, self.skip, self.skip_ahead, self.last = (xp.asarray(a) for a in (valid, skip, skip_ahead, last))
        self.input_lengths, self.zero_infinity = xp.asarray(input_lengths), zero_infinity
        self.log_probs = log_probs
        # each extended label's log-probability at each step: (T, N, L)
        self.at_labels = log_probs[:, xp.arange(batch)[:, None], self.extended]
        with backend.ieee_quiet(xp):
            self.alpha = self._alpha()
            self.nll = -self._log_likelihood(xp.asarray(target_lengths))
        return self.nll

    def _alpha(self):
        xp = backend.xp_of(self.at_labels)
        alpha = xp.empty_like(self.at_labels)
        first = xp.arange(alpha.shape[2]) < 2  # a path starts on the first blank or the first label
        alpha[0] = xp.where(first & self.valid, self.at_labels[0], -np.inf)
        for t in range(1, len(alpha)):
            before = alpha[t - 1]
            jump = xp.where(self.skip, _shifted(before, 2), -np.inf)
            alpha[t] = xp.where(self.valid, _log_sum(before, _shifted(before, 1), jump) + self.at_labels[t], -np.inf)
        return alpha

    def _log_likelihood(self, target_lengths):
        """log p(target | input): the paths that end on the last label or the blank after it."""
        xp = backend.xp_of(self.alpha)
        samples = xp.arange(self.alpha.shape[1])
        final = self.alpha[xp.maximum(self.input_lengths - 1, 0), samples]
        on_blank = final[samples, 2 * target_lengths]
        on_label = xp.where(target_lengths > 0, final[samples, xp.maximum(2 * target_lengths - 1, 0)], -np.inf)
        empty = xp.where(target_lengths == 0, 0.0, -np.inf).astype(final.dtype)  # no steps at all
        return xp.where(self.input_lengths == 0, empty, _log_sum(on_blank, on_label))

    def _beta(self):
        xp = backend.xp_of(self.at_labels)
        beta = xp.empty_like(self.at_labels)
        ends = xp.where(self.last, self.at_labels, -np.inf)
        for t in reversed(range(len(beta))):
            step = ends[t]  # a sample whose input ends at t starts there
            if t + 1 < len(beta):
                after = beta[t + 1]
                jump = xp.where(self.skip_ahead, _shifted(after, -2), -np.inf)
                inner = xp.where(self.valid, _log_sum(after, _shifted(after, -1), jump) + self.at_labels[t], -np.inf)
                step = xp.where((t < self.input_lengths - 1)[:, None], inner, step)
            beta[t] = xp.where((t < self.input_lengths)[:, None], step, -np.inf)
        return beta

    def _occupation(self):
        """log of the sum of alpha * beta over the positions of each class: (T, N, C), added up position
        by position from the last, as torch does."""
        xp = backend.xp_of(self.alpha)
        both = self.alpha + self._beta()
        total = xp.full(self.log_probs.shape, -np.inf, dtype=both.dtype)
        samples = xp.arange(both.shape[1])
        for s in reversed(range(both.shape[2])):
            classes = self.extended[:, s]
            total[:, samples, classes] = _log_sum(total[:, samples, classes], both[:, :, s])
        return total

    def backward(self, g):
        xp = backend.xp_of(self.log_probs)
        steps, batch, _ = self.log_probs.shape
        g = xp.broadcast_to(g, (batch,))
        with backend.ieee_quiet(xp):
            occupation = self._occupation()
            lp = self.log_probs
            grad = (xp.exp(lp) - xp.exp(occupation + self.nll[:, None] - lp)) * g[:, None]
        counted = xp.arange(steps)[:, None] < self.input_lengths
        if self.zero_infinity:
            counted = counted & (self.nll != np.inf)
        return (xp.where(counted[..., None], grad, 0).astype(lp.dtype, copy=False),)
