"""Gradient norms of the states and the colours that show them.

Workflow: record the forward pass inside `with tr.retain_grads():` (or call `.retain_grad()` on
the states you want), call `loss.backward()`, then draw with view="gradient". Each state node is
coloured by log10 ||dL/dstate||, the Frobenius norm of the gradient its node kept.
"""
import math

from . import style


def grad_norm(g):
    """The Frobenius norm of a gradient array (NumPy or CuPy) as a Python float."""
    g = g.astype("float64")
    return math.sqrt(float((g * g).sum()))


def log_norm(g):
    """log10 of the gradient's norm; -inf for an all-zero gradient; None when none was kept."""
    if g is None:
        return None
    norm = grad_norm(g)
    return math.log10(norm) if norm > 0 else -math.inf


def state_positions(rec):
    """Walk positions of the state tensors (h, c, h0, c0, h_n, c_n): what the view colours."""
    return [i for i, item in enumerate(rec.items) if item.name is not None and rec.kind(i) == "state"]


def scale_for(log_norms, grad_range=None):
    """The colour scale: over `grad_range` when given, else over the finite values seen."""
    if grad_range is not None:
        try:
            low, high = (float(v) for v in grad_range)
        except (TypeError, ValueError):
            raise ValueError(f"grad_range must be (low, high) log10 norms, got {grad_range!r}") from None
        return style.GradientScale(low, high)
    return style.GradientScale.spanning([v for v in log_norms if v is not None])


def state_label_and_attrs(text, value, scale, constant=False):
    """The label text and the fill/font attributes of a state coloured by its log10 norm."""
    if value is None:
        fill, extra = style.NO_GRAD, "constant" if constant else "no grad kept"
    else:
        fill = scale.colour(value)
        extra = "grad 0" if value == -math.inf else f"{value:.2f}"
    return f"{text}\n{extra}", f'fillcolor="{fill}" fontcolor="{style.text_colour(fill)}"'


LEGEND_TITLE = "colour and number under each state: log10 of its gradient norm ‖∂L/∂h(t)‖, ‖∂L/∂c(t)‖"
