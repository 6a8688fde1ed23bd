"""How much each output step still depends on an earlier input step (Graves 2008, fig. 4.1).

`jacobian_norms(model, x)[t, s]` is the Frobenius norm of d output(t) / d x(s), the Jacobian of
the whole output at step t (every batch row, every unit) with respect to the whole input at
step s. It is exact, obtained by backpropagation through the recorded graph, one output unit at
a time: the unit's gradient with respect to the input is one row of the Jacobian.

Two ways to get the rows, with the same result:

- "batched" (default): the sequence is copied along the batch axis, one copy per output unit
  (t, k), and one backward pass seeds each copy at its own unit. Copies never mix because
  recurrent layers treat batch rows independently, so a single pass gives many rows at once.
  This assumes exactly that: do not use it on a model whose batch rows interact.
- "loop": one backward pass per output unit through one graph (retain_graph=True). Needs no
  assumption; T * B * K passes, so it is for small models and for checking.
"""
import numpy as np

from .. import backend
from ..tensor import no_grad
from ._model import as_input, frozen, input_tensor, is_batch_first, sequence_output

METHODS = ("batched", "loop")


def jacobian_norms(model, x, targets=None, *, method="batched", max_copies=256):
    """Frobenius norms ||d output(t) / d x(s)|| as an array of shape (len(targets), T_in).

    `model(x)` must return the sequence output (T, B, K) or a tuple starting with it (a layer's
    `(output, h_n)`); `x` is (T, B, I), or (B, T, I) for a batch_first model, floating point.
    `targets` lists the output steps t (default: all). The model's parameters get no `.grad`.
    `max_copies` bounds the batch of one "batched" pass, to bound its memory.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    data = as_input(model, x)
    time_axis, batch_axis = (1, 0) if is_batch_first(model) else (0, 1)
    with frozen(model), no_grad():
        out_shape = sequence_output(model(input_tensor(data))).shape
    _check_output(out_shape, data.shape, batch_axis)
    steps_out = out_shape[time_axis]
    targets = list(range(steps_out)) if targets is None else [_step(t, steps_out) for t in targets]
    run = _batched_rows if method == "batched" else _looped_rows
    with frozen(model):  # through the backward too: it checks requires_grad when it reaches a leaf
        squares = run(model, data, targets, out_shape, time_axis, batch_axis, max_copies)
    return np.sqrt(squares)


def sensitivity(model, x, source=0, targets=None, **options):
    """||d output(t) / d x(source)|| for every output step t (or those in `targets`).

    The lecture's sensitivity curve: with `source=0` it is how strongly each later output still
    feels the first input. Zero for t < source in a causal model. See `jacobian_norms`.
    """
    norms = jacobian_norms(model, x, targets=targets, **options)
    return norms[:, _step(source, norms.shape[1])]


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


# --------------------------------------------------------------------------- the two methods

def _batched_rows(model, data, targets, out_shape, time_axis, batch_axis, max_copies):
    xp = backend.xp_of(data)
    batch, units = data.shape[batch_axis], out_shape[-1]
    seeds = [(row, t, k) for row, t in enumerate(targets) for k in range(units)]
    per_pass = max(1, max_copies // batch)
    squares = np.zeros((len(targets), data.shape[time_axis]))
    for first in range(0, len(seeds), per_pass):
        chunk = seeds[first:first + per_pass]
        copies = input_tensor(xp.concatenate([data] * len(chunk), axis=batch_axis), requires_grad=True)
        output = sequence_output(model(copies))
        seed = xp.zeros(output.shape, dtype=output.dtype)
        for j, (_, t, k) in enumerate(chunk):
            seed[_at(time_axis, t, slice(j * batch, (j + 1) * batch), k)] = 1
        output.backward(seed)
        rows = _per_step_squares(copies.grad, len(chunk), batch, time_axis)  # (copies, T_in)
        for j, (row, _, _) in enumerate(chunk):
            squares[row] += rows[j]
    return squares


def _looped_rows(model, data, targets, out_shape, time_axis, batch_axis, max_copies):
    xp = backend.xp_of(data)
    inputs = input_tensor(data, requires_grad=True)
    output = sequence_output(model(inputs))
    squares = np.zeros((len(targets), data.shape[time_axis]))
    for row, t in enumerate(targets):
        for b in range(out_shape[batch_axis]):
            for k in range(out_shape[-1]):
                seed = xp.zeros(output.shape, dtype=output.dtype)
                seed[_at(time_axis, t, b, k)] = 1
                inputs.grad = None
                output.backward(seed, retain_graph=True)
                squares[row] += _per_step_squares(inputs.grad, 1, data.shape[batch_axis], time_axis)[0]
    return squares


# --------------------------------------------------------------------------- helpers

def _per_step_squares(grad, copies, batch, time_axis):
    """Sum of squared gradient entries per (copy, input step) from a (.., copies * batch, ..) grad."""
    if grad is None:  # nothing in the output depends on the input at all
        return np.zeros((copies, 1))
    g = backend.to_numpy(grad.array).astype(np.float64)
    if time_axis == 0:  # (T, copies * B, I)
        return (g.reshape(g.shape[0], copies, batch, -1) ** 2).sum(axis=(2, 3)).T
    return (g.reshape(copies, batch, g.shape[1], -1) ** 2).sum(axis=(1, 3))  # (copies * B, T, I)


def _at(time_axis, t, batch_index, unit):
    return (t, batch_index, unit) if time_axis == 0 else (batch_index, t, unit)


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
