"""Numerical gradient checking by central differences in float64."""
import numpy as np

from . import autograd
from .backend import to_numpy
from .tensor import Tensor, enable_grad, no_grad


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree; the message names the worst element."""


def _outputs(out):
    return [t for t in (out if isinstance(out, (tuple, list)) else (out,)) if t is not None]


def gradcheck(fn, *tensors, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check the gradients of `fn(*tensors)` against central differences.

    The output (a Tensor or a tuple of them) is projected on a fixed random direction v, so one
    backward pass gives the analytic gradient of sum(v * fn(...)) for every input; each input element
    is then perturbed by +-eps. Inputs that require grad must be float64. Returns True or raises
    GradcheckError.
    """
    inputs = [t for t in tensors if isinstance(t, Tensor) and t.requires_grad]
    if not inputs:
        raise ValueError("gradcheck: no input requires grad")
    for t in inputs:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64 for finite differences; got {t.dtype} "
                            f"for an input of shape {t.shape}")
    outs = _outputs(fn(*tensors))
    rng = np.random.default_rng(seed)
    directions = [o.xp.asarray(rng.standard_normal(o.shape)) for o in outs]
    projection = sum((o * Tensor(d, dtype=np.float64)).sum() for o, d in zip(outs, directions) if o.requires_grad)
    analytic = [np.zeros(t.shape) for t in inputs]
    if isinstance(projection, Tensor):
        grads = autograd.grad(projection, inputs, allow_unused=True)
        analytic = [to_numpy(g.array) if g is not None else a for g, a in zip(grads, analytic)]

    def projected():
        with no_grad():
            return float(sum(to_numpy((o.array * d).sum()) for o, d in zip(_outputs(fn(*tensors)), directions)))

    worst = None
    for k, t in enumerate(inputs):
        flat = t.array.reshape(-1)  # a view: perturbing it perturbs the input
        for i in range(flat.size):
            original = flat[i].item()
            flat[i] = original + eps
            up = projected()
            flat[i] = original - eps
            down = projected()
            flat[i] = original
            numeric = (up - down) / (2 * eps)
            exact = analytic[k].reshape(-1)[i]
            error = abs(exact - numeric)
            excess = error - (atol + rtol * abs(numeric))
            if worst is None or excess > worst[0]:
                worst = (excess, k, np.unravel_index(i, t.shape), exact, numeric, error)
    excess, k, index, exact, numeric, error = worst
    if excess > 0:
        raise GradcheckError(
            f"gradcheck failed for input {k} (shape {inputs[k].shape}) at index {tuple(map(int, index))}: "
            f"analytic {exact:.10g}, numerical {numeric:.10g}, |difference| {error:.3g} > "
            f"atol {atol} + rtol {rtol} * |numerical|")
    return True


def gradgradcheck(fn, *tensors, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check second derivatives: gradcheck of (inputs, v) -> the VJP of `fn` with v, as torch's.

    The VJP is computed with create_graph=True, so this checks that every op's backward is itself
    differentiated correctly, with respect to the inputs and to the incoming gradient v.
    """
    wanted = [k for k, t in enumerate(tensors) if isinstance(t, Tensor) and t.requires_grad]
    outs = _outputs(fn(*tensors))
    rng = np.random.default_rng(seed + 1)
    vs = [Tensor(o.xp.asarray(rng.standard_normal(o.shape)), dtype=np.float64, requires_grad=True)
          for o in outs if o.requires_grad]
    count = len(tensors)

    def vjp(*args):
        with enable_grad():  # gradcheck evaluates this under no_grad too: the VJP still needs its graph
            outs = [o for o in _outputs(fn(*args[:count])) if o.requires_grad]
            return autograd.grad(outs, [args[k] for k in wanted], list(args[count:]), create_graph=True,
                                 materialize_grads=True)

    return gradcheck(vjp, *tensors, *vs, eps=eps, atol=atol, rtol=rtol, seed=seed)
