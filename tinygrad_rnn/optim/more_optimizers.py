"""Adadelta, Adamax, NAdam, RAdam, ASGD and Rprop with torch.optim's update rules, operation for operation.

As in optimizers.py, each rule follows torch's single-tensor code path in its order of operations, in
place with scratch arrays, and carries the same update as one CUDA kernel (`FUSED`) for the flat step.
Where torch's CPU kernels round differently from the plain order (addcdiv is (value * t1) / t2; a
scalar divided by a tensor is its reciprocal times the scalar) the rules here round as torch does.

Scalar state (step, ASGD's eta and mu, NAdam's mu_product) is a NumPy scalar of torch's scalar dtype
(float32, or float64 under a float64 default dtype), so state_dict() gives 0-d arrays of the dtypes
torch saves and the values torch rounds to: torch keeps eta and mu_product in that dtype, and the
steps after read the rounded values.
"""
import math

import numpy as np

from .. import backend
from ..dtypes import get_default_dtype
from .kernels import FusedUpdate
from .optimizer import Optimizer
from .optimizers import _LERP_SOURCE, _check_betas, _check_range, _lerp, _lerp_arguments, _torch_flags


def _scalar_type():
    """torch's dtype of scalar state and of `torch.as_tensor(a float)`: float64 under a float64 default, else float32."""
    return np.float64 if get_default_dtype() == np.float64 else np.float32


def _like(old, value):
    """`value` stored into the 0-d state `old` as torch's `old.copy_(torch.as_tensor(value))` rounds it."""
    return type(old)(_scalar_type()(value))


class _ScalarStateOptimizer(Optimizer):
    """An optimizer whose state has NumPy scalars (SCALARS) besides arrays of the parameter's shape."""

    SCALARS = ("step",)

    def load_state_dict(self, state_dict):
        """As Optimizer's; then the scalar entries (0-d arrays) become NumPy scalars as torch casts them:
        "step" keeps the saved dtype, the others take the parameter's floating dtype."""
        super().load_state_dict(state_dict)
        by_index = {}
        for saved, own in zip(state_dict["param_groups"], self.param_groups):
            by_index.update(zip(saved["params"], own["params"]))
        for i, entries in state_dict["state"].items():
            p = by_index[i]
            for name in self.SCALARS:
                if name in entries:
                    dtype = np.asarray(entries[name]).dtype if name == "step" else p.dtype
                    self.state[p][name] = dtype.type(float(self.state[p][name]))

    def new_state(self, p, **arrays):
        """The first step's state: step 0 and `arrays` (name: initial value) of the parameter's shape."""
        xp = backend.xp_of(p.array)
        return {"step": _scalar_type()(0), **{name: xp.full_like(p.array, value) for name, value in arrays.items()}}


def _decay_gradient(p, g, group):
    """torch's L2 weight decay: g + weight_decay * p (a new array; g may be the parameter's own gradient)."""
    return g + group["weight_decay"] * p.array if group["weight_decay"] != 0 else g


def _decay(p, g, group):
    """Adam-style weight decay: the parameters themselves with decoupled_weight_decay, else L2 into g."""
    if group["weight_decay"] != 0 and group["decoupled_weight_decay"]:
        p.array *= 1 - group["lr"] * group["weight_decay"]
        return g
    return _decay_gradient(p, g, group)


def _second_moment(exp_avg_sq, g, beta2, tmp):
    """exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)."""
    exp_avg_sq *= beta2
    backend.xp_of(g).multiply(g, 1 - beta2, out=tmp)
    tmp *= g
    exp_avg_sq += tmp


def _add_scaled_ratio(p, numerator, value, denominator, tmp):
    """p.addcdiv_(numerator, denominator, value=value), rounded as torch's CPU kernel: (value * t1) / t2."""
    backend.xp_of(p).multiply(numerator, value, out=tmp)
    tmp /= denominator
    p += tmp


# the decay at the head of a kernel: decoupled (the parameter scaled) or L2 (into the gradient)
_DECAY_SOURCE = """
    T grad = maximize ? -g[i] : g[i];
    T param = p[i];
    if (decay) {
      if (decoupled) param = param * decay_factor;
      else grad = grad + weight_decay * param;
    }"""


def _decay_arguments(group):
    return {"weight_decay": group["weight_decay"], "decay_factor": 1 - group["lr"] * group["weight_decay"],
            "decay": group["weight_decay"] != 0, "decoupled": group.get("decoupled_weight_decay", False)}


class Adadelta(_ScalarStateOptimizer):
    """Adadelta (Zeiler 2012) as torch.optim.Adadelta: eps inside both square roots, lr scaling the delta."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                                  "maximize": maximize, "foreach": foreach,
                                  **_torch_flags("capturable", "differentiable", capturable=capturable,
                                                 differentiable=differentiable)})

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        _check_range(self, group, "rho", 0.0, 1.0, closed=True)

    def update(self, p, g, state, group):
        xp = backend.xp_of(p.array)
        if not state:
            state.update(self.new_state(p, square_avg=0.0, acc_delta=0.0))
        state["step"] += 1
        g = _decay_gradient(p, g, group)
        rho, eps, tmp, delta = group["rho"], group["eps"], self.scratch(p.array), self.scratch(p.array, 1)
        _second_moment(state["square_avg"], g, rho, tmp)
        std = xp.sqrt(xp.add(state["square_avg"], eps, out=tmp), out=tmp)
        xp.sqrt(xp.add(state["acc_delta"], eps, out=delta), out=delta)
        delta /= std
        delta *= g
        _second_moment(state["acc_delta"], delta, rho, tmp)
        delta *= -group["lr"]  # p.add_(delta, alpha=-lr)
        p.array += delta

    FUSED = FusedUpdate("adadelta", arrays="square_avg acc_delta",
                        scalars="weight_decay decay_factor rho rho_complement eps neg_lr",
                        flags="decay decoupled", body=_DECAY_SOURCE + """
    T avg_sq = square_avg[i] * rho + (grad * rho_complement) * grad;
    square_avg[i] = avg_sq;
    T delta = sqrt(acc_delta[i] + eps) / sqrt(avg_sq + eps) * grad;
    acc_delta[i] = acc_delta[i] * rho + (delta * rho_complement) * delta;
    p[i] = param + delta * neg_lr;""")

    def fused_arguments(self, state, group):
        if not state:
            return None
        return {"square_avg": state["square_avg"], "acc_delta": state["acc_delta"], **_decay_arguments(group),
                "rho": group["rho"], "rho_complement": 1 - group["rho"], "eps": group["eps"], "neg_lr": -group["lr"]}


class Adamax(_ScalarStateOptimizer):
    """Adamax (Kingma & Ba 2015, section 7): Adam with the infinity norm, as torch.optim.Adamax."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "foreach": foreach, "maximize": maximize,
                                  **_torch_flags("differentiable", "capturable", capturable=capturable,
                                                 differentiable=differentiable)})

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        _check_betas(self, group)

    def update(self, p, g, state, group):
        xp = backend.xp_of(p.array)
        if not state:
            state.update(self.new_state(p, exp_avg=0.0, exp_inf=0.0))
        state["step"] += 1
        g = _decay_gradient(p, g, group)
        beta1, beta2 = group["betas"]
        exp_avg, exp_inf, tmp = state["exp_avg"], state["exp_inf"], self.scratch(p.array)
        _lerp(exp_avg, g, 1 - beta1, tmp)
        exp_inf *= beta2
        xp.abs(g, out=tmp)
        tmp += group["eps"]
        xp.maximum(exp_inf, tmp, out=exp_inf)
        _add_scaled_ratio(p.array, exp_avg, -_adamax_rate(group, state["step"]), exp_inf, tmp)

    FUSED = FusedUpdate("adamax", arrays="exp_avg exp_inf",
                        scalars="weight_decay decay_factor lerp_weight lerp_complement beta2 eps neg_clr",
                        flags="decay decoupled lerp_low", preamble=_LERP_SOURCE, body=_DECAY_SOURCE + """
    T avg = lerp_toward(exp_avg[i], grad, lerp_low, lerp_weight, lerp_complement);
    exp_avg[i] = avg;
    T norm = exp_inf[i] * beta2;
    T bound = (grad < 0 ? -grad : grad) + eps;
    norm = (norm > bound || norm != norm) ? norm : bound;  // as numpy.maximum: a NaN on either side wins
    exp_inf[i] = norm;
    p[i] = param + (avg * neg_clr) / norm;""")

    def fused_arguments(self, state, group):
        if not state:
            return None
        beta1, beta2 = group["betas"]
        return {"exp_avg": state["exp_avg"], "exp_inf": state["exp_inf"], **_decay_arguments(group),
                **_lerp_arguments(1 - beta1), "beta2": beta2, "eps": group["eps"],
                "neg_clr": -_adamax_rate(group, state["step"] + 1)}


def _adamax_rate(group, step):
    return group["lr"] / (1 - group["betas"][0] ** float(step))


class NAdam(_ScalarStateOptimizer):
    """NAdam (Dozat 2016) with torch's momentum_decay schedule and its running product of momenta
    (state "mu_product"); decoupled_weight_decay=True gives NAdamW."""

    SCALARS = ("step", "mu_product")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "momentum_decay": momentum_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize,
                                  "foreach": foreach,
                                  **_torch_flags("capturable", "differentiable", capturable=capturable,
                                                 differentiable=differentiable)})

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        _check_betas(self, group)
        _check_range(self, group, "momentum_decay", 0.0)

    def update(self, p, g, state, group):
        xp = backend.xp_of(p.array)
        if not state:
            state.update(self.new_state(p, exp_avg=0.0, exp_avg_sq=0.0), mu_product=_scalar_type()(1.0))
        state["step"] += 1
        g = _decay(p, g, group)
        scalars = self.count_step(state, group, counted=True)
        beta1, beta2 = group["betas"]
        tmp, ratio = self.scratch(p.array), self.scratch(p.array, 1)
        _lerp(state["exp_avg"], g, 1 - beta1, tmp)
        _second_moment(state["exp_avg_sq"], g, beta2, tmp)
        denom = xp.divide(state["exp_avg_sq"], scalars["bias_correction2"], out=tmp)
        xp.sqrt(denom, out=denom)
        denom += group["eps"]
        _add_scaled_ratio(p.array, g, scalars["grad_coefficient"], denom, ratio)
        _add_scaled_ratio(p.array, state["exp_avg"], scalars["avg_coefficient"], denom, ratio)

    def count_step(self, state, group, counted=False):
        """Count the step (unless `counted`) and multiply mu_product by its momentum; the step's scalars."""
        if not counted:
            state["step"] += 1
        step, beta1, beta2 = float(state["step"]), *group["betas"]
        mu, mu_next = (beta1 * (1.0 - 0.5 * (0.96 ** (t * group["momentum_decay"])))
                       for t in (step, step + 1))
        state["mu_product"] = state["mu_product"] * mu  # rounded to its dtype, as torch's 0-d tensor *= mu
        mu_product = float(state["mu_product"])
        lr = group["lr"]
        return {"bias_correction2": 1 - beta2 ** step, "grad_coefficient": -lr * (1.0 - mu) / (1.0 - mu_product),
                "avg_coefficient": (-lr * mu_next) / (1.0 - mu_product * mu_next)}

    FUSED = FusedUpdate("nadam", arrays="exp_avg exp_avg_sq",
                        scalars="weight_decay decay_factor lerp_weight lerp_complement beta2 beta2_complement "
                                "bias_correction2 eps grad_coefficient avg_coefficient",
                        flags="decay decoupled lerp_low", preamble=_LERP_SOURCE, body=_DECAY_SOURCE + """
    T avg = lerp_toward(exp_avg[i], grad, lerp_low, lerp_weight, lerp_complement);
    exp_avg[i] = avg;
    T avg_sq = exp_avg_sq[i] * beta2 + (grad * beta2_complement) * grad;
    exp_avg_sq[i] = avg_sq;
    T denom = sqrt(avg_sq / bias_correction2) + eps;
    param = param + (grad * grad_coefficient) / denom;
    p[i] = param + (avg * avg_coefficient) / denom;""")

    def fused_arguments(self, state, group):
        if not state:
            return None
        # the step to come's scalars, from a copy: the state advances after the launch (count_step)
        scalars = self.count_step({"step": state["step"] + 1, "mu_product": state["mu_product"]}, group,
                                  counted=True)
        beta1, beta2 = group["betas"]
        return {"exp_avg": state["exp_avg"], "exp_avg_sq": state["exp_avg_sq"], **_decay_arguments(group),
                **_lerp_arguments(1 - beta1), "beta2": beta2, "beta2_complement": 1 - beta2, "eps": group["eps"],
                **scalars}


class RAdam(_ScalarStateOptimizer):
    """RAdam (Liu et al. 2020): Adam whose adaptive rate is rectified once the variance's length of
    approximated SMA, rho_t, passes 5 (plain momentum SGD before), exactly as torch.optim.RAdam."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "maximize": maximize, "foreach": foreach,
                                  **_torch_flags("capturable", capturable=capturable),
                                  "decoupled_weight_decay": decoupled_weight_decay,
                                  **_torch_flags("differentiable", differentiable=differentiable)})

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        _check_betas(self, group)

    def update(self, p, g, state, group):
        xp = backend.xp_of(p.array)
        if not state:
            state.update(self.new_state(p, exp_avg=0.0, exp_avg_sq=0.0))
        state["step"] += 1
        g = _decay(p, g, group)
        beta1, beta2 = group["betas"]
        tmp, adaptive = self.scratch(p.array), self.scratch(p.array, 1)
        _lerp(state["exp_avg"], g, 1 - beta1, tmp)
        _second_moment(state["exp_avg_sq"], g, beta2, tmp)
        scalars = _radam_scalars(group, state["step"])
        change = xp.divide(state["exp_avg"], scalars["bias_correction1"], out=tmp)  # bias_corrected_exp_avg * lr
        change *= group["lr"]
        if scalars["rectify"]:  # * (bias_correction2 ** 0.5 / (sqrt(exp_avg_sq) + eps)) * rect
            xp.sqrt(state["exp_avg_sq"], out=adaptive)
            adaptive += group["eps"]
            xp.reciprocal(adaptive, out=adaptive)  # torch divides a number by a tensor as reciprocal() * number
            adaptive *= scalars["bias_correction2_sqrt"]
            change *= adaptive
            change *= scalars["rect"]
        p.array -= change

    FUSED = FusedUpdate("radam", arrays="exp_avg exp_avg_sq",
                        scalars="weight_decay decay_factor lerp_weight lerp_complement beta2 beta2_complement "
                                "bias_correction1 lr eps bias_correction2_sqrt rect",
                        flags="decay decoupled lerp_low rectify", preamble=_LERP_SOURCE, body=_DECAY_SOURCE + """
    T avg = lerp_toward(exp_avg[i], grad, lerp_low, lerp_weight, lerp_complement);
    exp_avg[i] = avg;
    T avg_sq = exp_avg_sq[i] * beta2 + (grad * beta2_complement) * grad;
    exp_avg_sq[i] = avg_sq;
    T change = (avg / bias_correction1) * lr;
    if (rectify) change = (change * (((T)1 / (sqrt(avg_sq) + eps)) * bias_correction2_sqrt)) * rect;
    p[i] = param - change;""")

    def fused_arguments(self, state, group):
        if not state:
            return None
        beta1, beta2 = group["betas"]
        return {"exp_avg": state["exp_avg"], "exp_avg_sq": state["exp_avg_sq"], **_decay_arguments(group),
                **_lerp_arguments(1 - beta1), "beta2": beta2, "beta2_complement": 1 - beta2, "lr": group["lr"],
                "eps": group["eps"], **_radam_scalars(group, state["step"] + 1)}


def _radam_scalars(group, step):
    """Step `step`'s bias corrections and, once rho_t > 5 (torch's threshold), the rectification term."""
    step, (beta1, beta2) = float(step), group["betas"]
    bias_correction2 = 1 - beta2 ** step
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
    rectify = rho_t > 5.0
    rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5 if rectify else 1.0
    return {"bias_correction1": 1 - beta1 ** step, "bias_correction2_sqrt": bias_correction2 ** 0.5,
            "rect": rect, "rectify": rectify}


class ASGD(_ScalarStateOptimizer):
    """Averaged SGD (Polyak & Juditsky 1992) as torch.optim.ASGD: a decaying rate eta, and the running
    average "ax" of the parameters from step t0 on (weight mu)."""

    SCALARS = ("step", "eta", "mu")

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False):
        super().__init__(params, {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0, "weight_decay": weight_decay,
                                  "foreach": foreach, "maximize": maximize,
                                  **_torch_flags("differentiable", "capturable", capturable=capturable,
                                                 differentiable=differentiable)})

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        for name in ("lambd", "alpha", "t0"):  # torch takes any number here
            _check_range(self, group, name, -math.inf)

    def update(self, p, g, state, group):
        xp = backend.xp_of(p.array)
        if not state:
            state.update(self.new_state(p, ax=0.0), eta=_scalar_type()(group["lr"]), mu=_scalar_type()(1.0))
        state["step"] += 1
        g = _decay_gradient(p, g, group)
        eta, mu, tmp = float(state["eta"]), float(state["mu"]), self.scratch(p.array)
        p.array *= 1 - group["lambd"] * eta
        p.array += xp.multiply(g, -eta, out=tmp)
        if mu != 1:
            xp.subtract(p.array, state["ax"], out=tmp)
            tmp *= mu
            state["ax"] += tmp
        else:
            state["ax"][...] = p.array
        self._schedule(state, group)

    def count_step(self, state, group):
        state["step"] += 1
        self._schedule(state, group)

    @staticmethod
    def _schedule(state, group):
        """The next step's eta and mu from the step just counted, stored as torch stores them."""
        step, lr = float(state["step"]), group["lr"]
        state["eta"] = _like(state["eta"], lr / ((1 + group["lambd"] * lr * step) ** group["alpha"]))
        state["mu"] = _like(state["mu"], 1 / max(1, step - group["t0"]))

    FUSED = FusedUpdate("asgd", arrays="ax", scalars="weight_decay decay_factor neg_eta mu",
                        flags="decay averaging", body="""
    T grad = maximize ? -g[i] : g[i];
    if (decay) grad = grad + weight_decay * p[i];
    T param = p[i] * decay_factor;
    param = param + grad * neg_eta;
    p[i] = param;
    ax[i] = averaging ? ax[i] + (param - ax[i]) * mu : param;""")

    def fused_arguments(self, state, group):
        if not state:
            return None
        eta, mu = float(state["eta"]), float(state["mu"])
        return {"ax": state["ax"], "weight_decay": group["weight_decay"], "decay_factor": 1 - group["lambd"] * eta,
                "neg_eta": -eta, "mu": mu, "decay": group["weight_decay"] != 0, "averaging": mu != 1}


class Rprop(_ScalarStateOptimizer):
    """Resilient backpropagation (Riedmiller & Braun 1993) as torch.optim.Rprop: each element's step size
    grows by etas[1] while its gradient keeps its sign, shrinks by etas[0] when the sign flips (and that
    step is skipped), within step_sizes; the parameter moves by the step size against the gradient's sign."""

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False, foreach=None,
                 maximize=False, differentiable=False):
        super().__init__(params, {"lr": lr, "etas": etas, "step_sizes": step_sizes, "foreach": foreach,
                                  "maximize": maximize,
                                  **_torch_flags("differentiable", "capturable", capturable=capturable,
                                                 differentiable=differentiable)})

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        etas = group["etas"]
        if not (isinstance(etas, (tuple, list)) and len(etas) == 2 and 0.0 < etas[0] < 1.0 < etas[1]):
            raise ValueError(f"Rprop: invalid etas {etas!r}; expected (etaminus, etaplus) with "
                             f"0 < etaminus < 1 < etaplus")
        sizes = group["step_sizes"]
        if not (isinstance(sizes, (tuple, list)) and len(sizes) == 2):
            raise ValueError(f"Rprop: invalid step_sizes {sizes!r}; expected (smallest, largest)")

    def update(self, p, g, state, group):
        xp = backend.xp_of(p.array)
        if not state:
            state.update(self.new_state(p, prev=0.0, step_size=group["lr"]))
        state["step"] += 1
        (etaminus, etaplus), (smallest, largest) = group["etas"], group["step_sizes"]
        prev, step_size, factor = state["prev"], state["step_size"], self.scratch(p.array)
        product = xp.multiply(g, prev, out=self.scratch(p.array, 1))  # torch.sign gives 0 for NaN: a NaN product keeps the step size
        factor.fill(1)
        xp.copyto(factor, etaplus, where=product > 0)
        xp.copyto(factor, etaminus, where=product < 0)
        step_size *= factor
        _clamp(step_size, smallest, largest)
        prev[...] = g  # the gradient, with the elements whose sign flipped set to 0, is the next prev
        xp.copyto(prev, 0, where=factor == etaminus)
        direction = _torch_sign(prev, out=factor)
        direction *= step_size  # p.addcmul_(grad.sign(), step_size, value=-1)
        p.array -= direction

    FUSED = FusedUpdate("rprop", arrays="prev step_size", scalars="etaminus etaplus smallest largest",
                        flags="", body="""
    T grad = maximize ? -g[i] : g[i];
    T product = grad * prev[i];
    T factor = product > 0 ? etaplus : (product < 0 ? etaminus : (T)1);
    T size = step_size[i] * factor;
    size = size < smallest ? smallest : size;  // torch.clamp: NaN stays
    size = size > largest ? largest : size;
    step_size[i] = size;
    if (factor == etaminus) grad = 0;
    prev[i] = grad;
    T sign = grad > 0 ? (T)1 : (grad < 0 ? (T)-1 : (T)0);
    p[i] = p[i] - sign * size;""")

    def fused_arguments(self, state, group):
        if not state:
            return None
        (etaminus, etaplus), (smallest, largest) = group["etas"], group["step_sizes"]
        return {"prev": state["prev"], "step_size": state["step_size"], "etaminus": etaminus, "etaplus": etaplus,
                "smallest": smallest, "largest": largest}


def _clamp(array, low, high):
    """array.clamp_(low, high) in place: max then min, so NaN stays and low > high gives high."""
    xp = backend.xp_of(array)
    xp.maximum(array, low, out=array)
    xp.minimum(array, high, out=array)


def _torch_sign(array, out):
    """torch.sign: -1, 0 or 1, and 0 for NaN (where numpy.sign gives NaN)."""
    xp = backend.xp_of(array)
    xp.sign(array, out=out)
    xp.copyto(out, 0, where=xp.isnan(out))
    return out
