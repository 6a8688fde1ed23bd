"""How much each output step still depends on an earlier input step (Graves 2008, fig. 4.1).

`jacobian_norms(model, x)[t, s]` is the Frobenius norm of d output(t) / d x(s), the Jacobian of
the whole output at step t (every batch row, every unit) with respect to the whole input at
step s. It is exact, and there are two ways to get it:

- forward mode (tr.func.jvp): a tangent on one input entry x(s)[b, i], pushed forward through
  the model in one pass, comes out as the Jacobian's column for that entry at every output step
  at once. The sensitivity to the first input, x(1), needs one column per input feature.
- reverse mode (backpropagation through the recorded graph): a gradient seeded at one output
  unit output(t)[b, k] comes back as the Jacobian's row for that unit, at every input step.

`mode="auto"` (the default) takes whichever needs fewer passes: forward for a few source steps
(the sensitivity curve is one source step: a single pass), reverse for a few target steps.

And two ways to batch those passes, with the same result:

- "batched" (default): the sequence is copied along the batch axis, one copy per tangent (or
  per seed), so a single pass gives many columns (or rows) at once. Copies never mix because
  recurrent layers treat batch rows independently. This assumes exactly that: do not use it on
  a model whose batch rows interact.
- "loop": one pass per input entry (forward) or output unit (reverse) on the sequence itself.
  Needs no assumption; B times as many passes, so it is for small models and for checking.
"""
import numpy as np

from .. import backend
from ..func import jvp
from ..tensor import no_grad
from ._model import as_input, frozen, input_tensor, is_batch_first, sequence_output
from .progress import progress

METHODS = ("batched", "loop")
MODES = ("auto", "forward", "reverse")


def jacobian_norms(model, x, targets=None, *, method="batched", max_copies=256, mode="auto"):
    """Frobenius norms ||d output(t) / d x(s)|| as an array of shape (len(targets), T_in).

    `model(x)` must return the sequence output (T, B, K) or a tuple starting with it (a layer's
    `(output, h_n)`); `x` is (T, B, I), or (B, T, I) for a batch_first model, floating point.
    `targets` lists the output steps t (default: all). The model's parameters get no `.grad`.
    `max_copies` bounds the batch of one "batched" pass, to bound its memory. `mode` is
    "forward", "reverse" or "auto" (the one with fewer passes).
    """
    return _norms(model, x, targets, None, method, max_copies, mode)


def sensitivity(model, x, source=0, targets=None, **options):
    """||d output(t) / d x(source)|| for every output step t (or those in `targets`).

    The lecture's sensitivity curve: with `source=0` it is how strongly each later output still
    feels the first input. Zero for t < source in a causal model. By default one forward-mode
    pass (batched) gives the whole curve. Options as for `jacobian_norms`.
    """
    method, max_copies, mode = _options(**options)
    return _norms(model, x, targets, source, method, max_copies, mode)[:, 0]


def decay_rate(values, start=0, stop=None):
    """The ratio per step of a geometric fit to positive `values[start:stop]`.

    exp of the least-squares slope of log(values) against the step: 0.9 means the values shrink by
    10% a step on average, 1.1 that they grow by 10%.
    """
    values = np.asarray(values, dtype=np.float64)[start:stop]
    steps = np.arange(len(values))
    keep = np.isfinite(values) & (values > 0)
    if keep.sum() < 2:
        raise ValueError(f"decay_rate needs at least two positive finite values; got {values}")
    slope = np.polyfit(steps[keep], np.log(values[keep]), 1)[0]
    return float(np.exp(slope))


def _options(method="batched", max_copies=256, mode="auto"):
    return method, max_copies, mode


def _norms(model, x, targets, source, method, max_copies, mode):
    """Norms for the target steps (rows) and the source step (one column) or all source steps."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    data = as_input(model, x)
    axes = _Axes(*((1, 0) if is_batch_first(model) else (0, 1)))
    with frozen(model), no_grad():
        out_shape = sequence_output(model(input_tensor(data))).shape
    _check_output(out_shape, data.shape, axes.batch)
    steps_in, steps_out = data.shape[axes.time], out_shape[axes.time]
    targets = list(range(steps_out)) if targets is None else [_step(t, steps_out) for t in targets]
    sources = list(range(steps_in)) if source is None else [_step(source, steps_in)]
    if mode == "auto":  # passes, up to the batch factor both share: one per tangent or per seed
        mode = "forward" if len(sources) * data.shape[-1] <= len(targets) * out_shape[-1] else "reverse"
    with frozen(model):  # through the backward too: it checks requires_grad when it reaches a leaf
        if mode == "forward":
            squares = _forward_columns(model, data, sources, axes, method, max_copies)[targets]
        else:
            squares = _reverse_rows(model, data, targets, out_shape, axes, method, max_copies)[:, sources]
    return np.sqrt(squares)


class _Axes:
    def __init__(self, time, batch):
        self.time, self.batch = time, batch

    def at(self, t, batch_index, last):
        """The index (t, batch_index, last) in this layout."""
        return (t, batch_index, last) if self.time == 0 else (batch_index, t, last)


# --------------------------------------------------------------------------- forward mode: columns

def _forward_columns(model, data, sources, axes, method, max_copies):
    """Squared norms (T_out, len(sources)): one tangent per input entry (s, [b,] i), pushed forward.

    "batched" puts the tangent on feature i of x(s) in every row of one copy of the sequence;
    "loop" on the single entry x(s)[b, i] of the sequence itself.
    """
    xp = backend.xp_of(data)
    batch, features = data.shape[axes.batch], data.shape[-1]
    rows = [None] if method == "batched" else range(batch)
    directions = [(col, s, b, i) for col, s in enumerate(sources) for b in rows for i in range(features)]
    per_pass = max(1, max_copies // batch) if method == "batched" else 1
    squares = None
    chunks = range(0, len(directions), per_pass)
    with progress(len(chunks), "sensitivity (forward mode)") as bar:
        for first in chunks:
            chunk = directions[first:first + per_pass]
            inputs = xp.concatenate([data] * len(chunk), axis=axes.batch) if len(chunk) > 1 else data
            tangent = xp.zeros(inputs.shape, dtype=inputs.dtype)
            for j, (_, s, b, i) in enumerate(chunk):
                tangent[axes.at(s, slice(j * batch, (j + 1) * batch) if b is None else b, i)] = 1
            _, column = jvp(lambda inp: sequence_output(model(inp)), (input_tensor(inputs),),
                            (input_tensor(tangent),))
            per_copy = _per_step_squares(column.array, len(chunk), batch, axes.time)  # (copies, T_out)
            if squares is None:
                squares = np.zeros((per_copy.shape[1], len(sources)))
            for j, (col, *_) in enumerate(chunk):
                squares[:, col] += per_copy[j]
            bar.update(1)
    return squares


# --------------------------------------------------------------------------- reverse mode: rows

def _reverse_rows(model, data, targets, out_shape, axes, method, max_copies):
    """Squared norms (len(targets), T_in): one seed per output unit (t, [b,] k), propagated back."""
    run = _reverse_batched if method == "batched" else _reverse_looped
    return run(model, data, targets, out_shape, axes, max_copies)


def _reverse_batched(model, data, targets, out_shape, axes, max_copies):
    xp = backend.xp_of(data)
    batch, units = data.shape[axes.batch], out_shape[-1]
    seeds = [(row, t, k) for row, t in enumerate(targets) for k in range(units)]
    per_pass = max(1, max_copies // batch)
    squares = np.zeros((len(targets), data.shape[axes.time]))
    chunks = range(0, len(seeds), per_pass)
    with progress(len(chunks), "sensitivity (reverse mode)") as bar:
        for first in chunks:
            chunk = seeds[first:first + per_pass]
            copies = input_tensor(xp.concatenate([data] * len(chunk), axis=axes.batch), requires_grad=True)
            output = sequence_output(model(copies))
            seed = xp.zeros(output.shape, dtype=output.dtype)
            for j, (_, t, k) in enumerate(chunk):
                seed[axes.at(t, slice(j * batch, (j + 1) * batch), k)] = 1
            output.backward(seed)
            rows = _per_step_squares(_grad_array(copies), len(chunk), batch, axes.time)  # (copies, T_in)
            for j, (row, _, _) in enumerate(chunk):
                squares[row] += rows[j]
            bar.update(1)
    return squares


def _reverse_looped(model, data, targets, out_shape, axes, max_copies):
    xp = backend.xp_of(data)
    inputs = input_tensor(data, requires_grad=True)
    output = sequence_output(model(inputs))
    squares = np.zeros((len(targets), data.shape[axes.time]))
    with progress(len(targets) * out_shape[axes.batch] * out_shape[-1], "sensitivity (reverse mode)") as bar:
        for row, t in enumerate(targets):
            for b in range(out_shape[axes.batch]):
                for k in range(out_shape[-1]):
                    seed = xp.zeros(output.shape, dtype=output.dtype)
                    seed[axes.at(t, b, k)] = 1
                    inputs.grad = None
                    output.backward(seed, retain_graph=True)
                    squares[row] += _per_step_squares(_grad_array(inputs), 1, data.shape[axes.batch], axes.time)[0]
                    bar.update(1)
    return squares


# --------------------------------------------------------------------------- helpers

def _grad_array(tensor):
    return None if tensor.grad is None else tensor.grad.array


def _per_step_squares(g, copies, batch, time_axis):
    """Sum of squared entries per (copy, step) of a (T, copies * B, F) or (copies * B, T, F) array."""
    if g is None:  # nothing in the output depends on the input at all
        return np.zeros((copies, 1))
    g = backend.to_numpy(g).astype(np.float64)
    if time_axis == 0:  # (T, copies * B, F)
        return (g.reshape(g.shape[0], copies, batch, -1) ** 2).sum(axis=(2, 3)).T
    return (g.reshape(copies, batch, g.shape[1], -1) ** 2).sum(axis=(1, 3))  # (copies * B, T, F)


def _step(t, steps):
    if not -steps <= t < steps:
        raise IndexError(f"step {t} is out of range for a sequence of {steps} steps")
    return t % steps


def _check_output(out_shape, in_shape, batch_axis):
    if len(out_shape) != 3:
        raise ValueError(f"the model's sequence output must have 3 dims (steps, batch, units); "
                         f"got shape {tuple(out_shape)}")
    if out_shape[batch_axis] != in_shape[batch_axis]:
        raise ValueError(f"the output's batch dim ({out_shape[batch_axis]}) differs from the input's "
                         f"({in_shape[batch_axis]}): output {tuple(out_shape)}, input {tuple(in_shape)}")
