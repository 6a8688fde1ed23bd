"""SGD, Adam, AdamW, Adagrad and RMSprop with PyTorch's update rules, operation for operation.

Each rule follows torch.optim's single-tensor code path in the order it applies its operations
(weight decay into the gradient, moment updates as `lerp`, bias correction, eps outside the root),
so float64 runs agree with PyTorch to rounding over many steps. The rules work in place, with one
scratch array of the parameter's shape (`Optimizer.scratch`) for what torch computes as a
temporary: a step makes no new arrays of the parameters' size.

Each rule's `FUSED` is the same update as one CUDA kernel for the flat step on CuPy (kernels.py):
its body repeats the rule's operations in the rule's order, one element at a time, and
`fused_arguments` computes the scalars on the host as `update` computes them.
"""
import math
import numbers

from .. import backend
from .kernels import FusedUpdate
from .optimizer import Optimizer


def _lerp(start, end, weight, tmp):
    """start + weight * (end - start), in place in `start`, rounded the way torch.lerp rounds it; tmp is scratch."""
    xp = backend.xp_of(start)
    xp.subtract(end, start, out=tmp)
    if abs(weight) < 0.5:
        tmp *= weight
        start += tmp
    else:
        tmp *= 1 - weight
        xp.subtract(end, tmp, out=start)
    return start


# _lerp for one element; low, weight and complement come from _lerp_arguments
_LERP_SOURCE = """
__device__ inline T lerp_toward(T start, T end, int low, T weight, T complement) {
  T diff = end - start;
  return low ? start + diff * weight : end - diff * complement;
}
"""


def _lerp_arguments(weight):
    return {"lerp_low": abs(weight) < 0.5, "lerp_weight": weight, "lerp_complement": 1 - weight}


def _check_range(opt, group, name, low, high=None, closed=False):
    """ValueError naming `name` unless low <= value < high (value <= high where `closed`; no bound above if None)."""
    value = group[name]
    below_high = high is None or value < high or (closed and value == high)
    ok = isinstance(value, numbers.Real) and low <= value and below_high
    if not ok:
        bounds = (f"in [{low}, {high}{']' if closed else ')'}" if high is not None else f">= {low}")
        raise ValueError(f"{type(opt).__name__}: invalid {name} {value!r}; expected a number {bounds}")


def _check_betas(opt, group):
    betas = group["betas"]
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2
            and all(isinstance(b, numbers.Real) and 0.0 <= b < 1.0 for b in betas)):
        raise ValueError(f"{type(opt).__name__}: invalid betas {betas!r}; expected two numbers in [0, 1)")


# torch's flags of its own implementations (fused and foreach kernels, CUDA graph capture), kept in every
# group with torch's defaults so that state_dicts move both ways; the update here is the same either way
def _torch_flags(*names, fused=None, capturable=False, differentiable=False):
    given = {"fused": fused, "capturable": capturable, "differentiable": differentiable}
    return {name: given[name] for name in names}


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (and Nesterov momentum), as torch.optim.SGD."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                                  "foreach": foreach,
                                  **_torch_flags("differentiable", "fused", differentiable=differentiable,
                                                 fused=fused)})

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        _check_range(self, group, "momentum", 0.0)
        dampening = group["dampening"]
        if isinstance(dampening, bool) or not isinstance(dampening, numbers.Real) or math.isnan(dampening):
            raise ValueError(f"SGD: invalid dampening {dampening!r}; expected a number")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")

    def update(self, p, g, state, group):
        xp = backend.xp_of(p.array)
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.array
        momentum, tmp = group["momentum"], self.scratch(p.array)
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= momentum
                buf += xp.multiply(g, 1 - group["dampening"], out=tmp)
            if group["nesterov"]:  # g.add(buf, alpha=momentum)
                g = xp.add(g, xp.multiply(buf, momentum, out=tmp), out=tmp)
            else:
                g = buf
        p.array -= xp.multiply(g, group["lr"], out=tmp)

    FUSED = FusedUpdate("sgd", arrays="momentum_buffer", scalars="weight_decay momentum dampening_complement lr",
                        flags="decay has_momentum nesterov", body="""
    T grad = maximize ? -g[i] : g[i];
    if (decay) grad = grad + weight_decay * p[i];
    if (has_momentum) {
      T buf = momentum_buffer[i] * momentum;
      buf = buf + grad * dampening_complement;
      momentum_buffer[i] = buf;
      grad = nesterov ? grad + buf * momentum : buf;
    }
    p[i] = p[i] - grad * lr;""")

    def fused_arguments(self, state, group):
        momentum = group["momentum"]
        if momentum != 0 and "momentum_buffer" not in state:  # the first step copies the gradient
            return None
        return {"momentum_buffer": state.get("momentum_buffer"), "weight_decay": group["weight_decay"],
                "momentum": momentum, "dampening_complement": 1 - group["dampening"], "lr": group["lr"],
                "decay": group["weight_decay"] != 0, "has_momentum": momentum != 0, "nesterov": group["nesterov"]}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with optional AMSGrad; weight_decay is L2 added to the gradient, or decays
    the parameters themselves with decoupled_weight_decay=True (AdamW's rule), as torch's."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                                  "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                                  **_torch_flags("capturable", "differentiable", "fused", capturable=capturable,
                                                 differentiable=differentiable, fused=fused),
                                  "decoupled_weight_decay": bool(decoupled_weight_decay)})

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        _check_betas(self, group)

    def update(self, p, g, state, group):
        xp = backend.xp_of(p.array)
        beta1, beta2 = group["betas"]
        lr, weight_decay = group["lr"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.array)
            state["exp_avg_sq"] = xp.zeros_like(p.array)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p.array)
        state["step"] += 1
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p.array *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * p.array
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        tmp = self.scratch(p.array)
        _lerp(exp_avg, g, 1 - beta1, tmp)
        xp.multiply(g, 1 - beta2, out=tmp)  # exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        tmp *= g
        exp_avg_sq *= beta2
        exp_avg_sq += tmp
        bias_correction2_sqrt, step_size = _adam_step_scalars(group, state["step"])
        if group["amsgrad"]:
            xp.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            second = state["max_exp_avg_sq"]
        else:
            second = exp_avg_sq
        denom = xp.sqrt(second, out=tmp)
        denom /= bias_correction2_sqrt
        denom += group["eps"]
        xp.divide(exp_avg, denom, out=tmp)  # p.addcdiv_(exp_avg, denom, value=-step_size)
        tmp *= -step_size
        p.array += tmp

    FUSED = FusedUpdate("adam", arrays="exp_avg exp_avg_sq max_exp_avg_sq",
                        scalars="weight_decay decay_factor lerp_weight lerp_complement beta2 beta2_complement "
                                "bias_correction2_sqrt eps neg_step_size",
                        flags="decay decoupled lerp_low amsgrad", preamble=_LERP_SOURCE, body="""
    T grad = maximize ? -g[i] : g[i];
    T param = p[i];
    if (decay) {
      if (decoupled) param = param * decay_factor;
      else grad = grad + weight_decay * param;
    }
    T avg = lerp_toward(exp_avg[i], grad, lerp_low, lerp_weight, lerp_complement);
    exp_avg[i] = avg;
    T avg_sq = exp_avg_sq[i] * beta2 + (grad * beta2_complement) * grad;
    exp_avg_sq[i] = avg_sq;
    T second = avg_sq;
    if (amsgrad) {  // as numpy.maximum: a NaN on either side wins
      T top = max_exp_avg_sq[i];
      second = (top > avg_sq || top != top) ? top : avg_sq;
      max_exp_avg_sq[i] = second;
    }
    T denom = sqrt(second) / bias_correction2_sqrt + eps;
    p[i] = param + (avg / denom) * neg_step_size;""")

    def fused_arguments(self, state, group):
        if not state or (group["amsgrad"] and "max_exp_avg_sq" not in state):
            return None
        beta1, beta2 = group["betas"]
        lr, weight_decay = group["lr"], group["weight_decay"]
        bias_correction2_sqrt, step_size = _adam_step_scalars(group, state["step"] + 1)  # the step to come
        return {"exp_avg": state["exp_avg"], "exp_avg_sq": state["exp_avg_sq"],
                "max_exp_avg_sq": state.get("max_exp_avg_sq"), "weight_decay": weight_decay,
                "decay_factor": 1 - lr * weight_decay, **_lerp_arguments(1 - beta1), "beta2": beta2,
                "beta2_complement": 1 - beta2, "bias_correction2_sqrt": bias_correction2_sqrt,
                "eps": group["eps"], "neg_step_size": -step_size, "decay": weight_decay != 0,
                "decoupled": group["decoupled_weight_decay"], "amsgrad": group["amsgrad"]}


def _adam_step_scalars(group, step):
    """Step `step`'s sqrt of the second moment's bias correction and its step size lr / (1 - beta1^step)."""
    beta1, beta2 = group["betas"]
    return (1 - beta2 ** step) ** 0.5, group["lr"] / (1 - beta1 ** step)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): p *= 1 - lr * weight_decay."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011) with PyTorch's lr_decay and initial_accumulator_value."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10, foreach=None, maximize=False, differentiable=False, fused=None):
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value, "eps": eps,
                                  "maximize": maximize, "foreach": foreach,
                                  **_torch_flags("differentiable", "fused", differentiable=differentiable,
                                                 fused=fused)})

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        _check_range(self, group, "lr_decay", 0.0)
        _check_range(self, group, "initial_accumulator_value", 0.0)

    def update(self, p, g, state, group):
        xp = backend.xp_of(p.array)
        if not state:
            state["step"] = 0
            state["sum"] = xp.full_like(p.array, group["initial_accumulator_value"])
        state["step"] += 1
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.array
        clr = _adagrad_rate(group, state["step"])
        tmp = self.scratch(p.array)
        state["sum"] += xp.multiply(g, g, out=tmp)
        std = xp.sqrt(state["sum"], out=tmp)
        std += group["eps"]
        xp.divide(g, std, out=tmp)  # p.addcdiv_(g, std, value=-clr)
        tmp *= -clr
        p.array += tmp

    FUSED = FusedUpdate("adagrad", arrays="sum", scalars="weight_decay eps neg_clr", flags="decay", body="""
    T grad = maximize ? -g[i] : g[i];
    if (decay) grad = grad + weight_decay * p[i];
    T total = sum[i] + grad * grad;
    sum[i] = total;
    p[i] = p[i] + (grad / (sqrt(total) + eps)) * neg_clr;""")

    def fused_arguments(self, state, group):
        if not state:
            return None
        clr = _adagrad_rate(group, state["step"] + 1)  # the step to come
        return {"sum": state["sum"], "weight_decay": group["weight_decay"], "eps": group["eps"], "neg_clr": -clr,
                "decay": group["weight_decay"] != 0}


def _adagrad_rate(group, step):
    """Step `step`'s learning rate, decayed as torch's: lr / (1 + (step - 1) lr_decay)."""
    return group["lr"] / (1 + (step - 1) * group["lr_decay"])


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e) as torch.optim.RMSprop: eps added after the square root."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                                  "momentum": momentum, "centered": centered, "maximize": maximize,
                                  "foreach": foreach,
                                  **_torch_flags("capturable", "differentiable", capturable=capturable,
                                                 differentiable=differentiable)})

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        _check_range(self, group, "alpha", 0.0)
        _check_range(self, group, "momentum", 0.0)

    def update(self, p, g, state, group):
        xp = backend.xp_of(p.array)
        alpha, momentum = group["alpha"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(p.array)
            if momentum > 0:
                state["momentum_buffer"] = xp.zeros_like(p.array)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(p.array)
        state["step"] += 1
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.array
        square_avg, tmp = state["square_avg"], self.scratch(p.array)
        square_avg *= alpha
        xp.multiply(g, 1 - alpha, out=tmp)
        tmp *= g
        square_avg += tmp
        if group["centered"]:
            grad_avg = _lerp(state["grad_avg"], g, 1 - alpha, tmp)
            avg = xp.multiply(grad_avg, grad_avg, out=tmp)
            xp.subtract(square_avg, avg, out=avg)
            xp.sqrt(avg, out=avg)
        else:
            avg = xp.sqrt(square_avg, out=tmp)
        avg += group["eps"]
        xp.divide(g, avg, out=avg)
        if momentum > 0:  # buf.mul_(momentum).addcdiv_(g, avg); p.add_(buf, alpha=-lr)
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += avg
            p.array -= xp.multiply(buf, group["lr"], out=avg)
        else:  # p.addcdiv_(g, avg, value=-lr)
            avg *= -group["lr"]
            p.array += avg

    FUSED = FusedUpdate("rmsprop", arrays="square_avg grad_avg momentum_buffer",
                        scalars="weight_decay alpha alpha_complement lerp_weight lerp_complement eps momentum lr "
                                "neg_lr",
                        flags="decay centered lerp_low has_momentum", preamble=_LERP_SOURCE, body="""
    T grad = maximize ? -g[i] : g[i];
    if (decay) grad = grad + weight_decay * p[i];
    T avg_sq = square_avg[i] * alpha + (grad * alpha_complement) * grad;
    square_avg[i] = avg_sq;
    T avg;
    if (centered) {
      T mean = lerp_toward(grad_avg[i], grad, lerp_low, lerp_weight, lerp_complement);
      grad_avg[i] = mean;
      avg = sqrt(avg_sq - mean * mean);
    } else {
      avg = sqrt(avg_sq);
    }
    avg = grad / (avg + eps);
    if (has_momentum) {
      T buf = momentum_buffer[i] * momentum + avg;
      momentum_buffer[i] = buf;
      p[i] = p[i] - buf * lr;
    } else {
      p[i] = p[i] + avg * neg_lr;
    }""")

    def fused_arguments(self, state, group):
        alpha, momentum = group["alpha"], group["momentum"]
        needed = ["square_avg"] + ["momentum_buffer"] * (momentum > 0) + ["grad_avg"] * group["centered"]
        if any(name not in state for name in needed):  # the first step makes them
            return None
        return {"square_avg": state["square_avg"], "grad_avg": state.get("grad_avg"),
                "momentum_buffer": state.get("momentum_buffer"), "weight_decay": group["weight_decay"],
                "alpha": alpha, "alpha_complement": 1 - alpha, **_lerp_arguments(1 - alpha), "eps": group["eps"],
                "momentum": momentum, "lr": group["lr"], "neg_lr": -group["lr"], "decay": group["weight_decay"] != 0,
                "centered": group["centered"], "has_momentum": momentum > 0}
