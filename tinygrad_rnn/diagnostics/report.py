"""A short diagnosis of one recurrent layer: its spectrum, its memory of the first input, and how
far back a loss on the last step still reaches.
"""
import numpy as np

from ..tensor import Tensor, no_grad
from ._model import as_input, input_tensor
from .gradients import state_gradient_norms
from .sensitivity import decay_rate, sensitivity
from .spectrum import CONTENT_GATE, content_block, linear_recurrence_norms, recurrent_weights, spectral_radius


def last_step_loss(units, rng=0):
    """L = v . output(T-1), summed over the batch, for a fixed random unit vector v.

    A loss read at the last step only: its gradient at earlier steps is what survived the trip
    back through the recurrence, so it shows vanishing (or exploding) gradients undiluted.
    """
    v = np.random.default_rng(rng).standard_normal(units)
    v /= np.linalg.norm(v)

    def loss_fn(result):
        output = result[0] if isinstance(result, (tuple, list)) else result
        return (output[-1] * Tensor(v, dtype=output.dtype)).sum()
    return loss_fn


def diagnose(layer, x):
    """Everything the report prints, as numbers: a dict of arrays and floats.

    `layer` is a recurrent layer (tr.nn.RNN, LSTM, GRU, or one that follows their conventions),
    `x` its input sequence (T, B, I).
    """
    blocks = recurrent_weights(layer)
    content = content_block(blocks)
    steps = x.shape[1] if getattr(layer, "batch_first", False) else x.shape[0]
    h0 = np.random.default_rng(0).standard_normal(content.shape[0])
    with no_grad():
        output_units = layer(input_tensor(as_input(layer, x)))[0].shape[-1]
    return {
        "steps": steps,
        "radius": {gate: spectral_radius(w) for gate, w in blocks.items()},
        "content_gate": CONTENT_GATE[len(blocks)],
        "content_weight": content,
        "linear": linear_recurrence_norms(content, h0, steps - 1) / np.linalg.norm(h0),
        "sensitivity": sensitivity(layer, x),
        "gradients": state_gradient_norms(layer, x, last_step_loss(output_units)),
    }


def format_report(title, inputs, results):
    """The text report: a few lines a person reads in ten seconds. Steps are counted from 1, as the
    lecture writes x(1)."""
    steps = results["steps"]
    marks = sorted({1, min(10, steps), (steps + 1) // 2, steps})
    gated = len(results["radius"]) > 1
    radius = "   ".join(f"{gate} {value:#.3g}" for gate, value in results["radius"].items())  # 4.00, not 4
    sens = results["sensitivity"]
    lines = [title, f"inputs: {inputs}",
             f"spectral radius of weight_hh_l0{' by gate' if gated else ''}:   {radius}"]
    if not gated:
        lines.append(f"  the linearised recurrence h(t) = W_hh^(t-1) h(1) keeps {results['linear'][-1]:.2e} of "
                     f"||h(1)|| at t = {steps}")
    lines += [
        "sensitivity ||d output(t) / d x(1)||:   " + _at_steps(sens, marks),
        (f"  at t = {steps} the first input weighs {_ratio(sens[-1], sens[0])} of its weight at t = 1 "
         f"({_rate(sens)} a step)"),
    ]
    for name, norms in results["gradients"].items():
        lines.append(f"gradient ||dL/d{name}(t)|| of a loss on output({steps}):   " + _at_steps(norms, marks))
        lines.append(f"  what reaches t = 1 is {_ratio(norms[0], norms[-1])} of what leaves t = {steps}")
    return "\n".join(lines)


def _at_steps(values, marks):
    return "   ".join(f"t={t} {values[t - 1]:.2e}" for t in marks)


def _ratio(value, reference):
    return f"{value / reference:.2e}" if reference > 0 else "undefined (zero at the reference step)"


def _rate(values):
    try:
        return f"x{decay_rate(values):.3f}"
    except ValueError:
        return "no fitted rate"
