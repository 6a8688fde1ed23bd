"""Adafactor (Shazeer & Stern 2018) as torch.optim.Adafactor (torch 2.5+), following torch's single-tensor
step operation for operation.

A parameter of two or more dims keeps its second moment factored over its last two dims: a row factor
(..., rows, 1) and a column factor (..., 1, cols), whose outer product over the row factor's mean estimates
it; a vector (or a 0-d parameter) keeps it whole. The moments move by lerp with weight step ** beta2_decay;
the step is rho = min(lr, 1 / sqrt(step)) times the parameter's RMS (at least eps[1]), and the update's
RMS is clipped to d. eps[0] None means the parameter dtype's machine epsilon. foreach is accepted and
ignored: each parameter is updated on its own, as the factored state has shapes of its own.
"""
import numpy as np

from .. import backend
from .more_optimizers import _scalar_type, _ScalarStateOptimizer
from .optimizers import _lerp


def _norm(x):
    xp = backend.xp_of(x)
    return float(xp.sqrt(xp.sum(x * x)))


def _mean_square(g, axis):
    """torch's norm(g, dim=axis, keepdim=True).square_().div_(g.size(axis)): the mean of g * g along axis."""
    xp = backend.xp_of(g)
    return xp.square(xp.sqrt(xp.sum(g * g, axis=axis, keepdims=True))) / g.shape[axis]


FACTORED = {"row_var": -1, "col_var": -2}  # a factored state's name -> the dim it reduces to 1


class Adafactor(_ScalarStateOptimizer):
    """Adafactor with torch's arguments, defaults, checks and state_dict (step, row_var and col_var, or
    variance)."""

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, *,
                 foreach=None, maximize=False):
        super().__init__(params, {"lr": lr, "beta2_decay": beta2_decay, "eps": eps, "d": d,
                                  "weight_decay": weight_decay, "foreach": foreach, "maximize": maximize})

    def check_hyperparameters(self, group):
        """torch's checks and words (its eps is a pair, so the base's check of a number does not apply)."""
        eps1, eps2 = group["eps"]
        checks = ((lambda: 0.0 <= group["lr"], f"Learning rate should be >= 0 but is: {group['lr']}"),
                  (lambda: 0.0 >= group["beta2_decay"], f"beta2_decay should be <= 0 but is: {group['beta2_decay']}"),
                  (lambda: eps1 is None or 0.0 <= eps1, f"epsilon1 should be >= 0 but is: {eps1}"),
                  (lambda: 0.0 <= eps2, f"epsilon2 should be >= 0 but is: {eps2}"),
                  (lambda: 1.0 <= group["d"], f"Clipping threshold d should be >= 1 but is: {group['d']}"),
                  (lambda: 0.0 <= group["weight_decay"], f"weight_decay should be >= 0 but is: {group['weight_decay']}"))
        for holds, message in checks:
            if not holds():
                raise ValueError(message)

    def state_shape(self, p, name):
        if name not in FACTORED:
            return p.shape
        shape = list(p.shape)
        shape[FACTORED[name]] = 1
        return tuple(shape)

    def step(self, closure=None):
        """One update of each parameter with a gradient, one parameter at a time."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            eps1 = group["eps"][0]
            if eps1 is None and params:  # torch takes the first parameter's epsilon for the whole group
                eps1 = float(np.finfo(params[0].dtype).eps)
            for p in params:
                self._step_one(p, {**group, "eps1": eps1})
        return loss

    def update(self, p, g, state, group):
        xp = backend.xp_of(p.array)
        if not state:
            state["step"] = _scalar_type()(0)
            for name in FACTORED if g.ndim > 1 else ("variance",):
                state[name] = xp.zeros(self.state_shape(p, name), p.dtype)
        state["step"] += 1
        step = float(state["step"])
        weight = step ** group["beta2_decay"]
        alpha = max(group["eps"][1], _norm(p.array) / p.array.size ** 0.5) * min(group["lr"], 1 / step ** 0.5)
        if group["weight_decay"] != 0:
            p.array *= 1 - group["lr"] * group["weight_decay"]
        eps1 = group["eps1"]
        if g.ndim > 1:
            for name, axis in FACTORED.items():
                _lerp(state[name], _mean_square(g, axis), weight, xp.empty_like(state[name]))
            estimate = state["row_var"] @ state["col_var"]
            estimate /= xp.maximum(state["row_var"].mean(axis=-2, keepdims=True), eps1)
        else:
            estimate = _lerp(state["variance"], g * g, weight, xp.empty_like(state["variance"])).copy()
        update = 1 / xp.sqrt(xp.maximum(estimate, eps1 * eps1))
        update *= g
        clip = max(1.0, _norm(update) / (update.size ** 0.5 * group["d"]))
        p.array += update * (-alpha / clip)
