"""Numerical gradient checking by central differences in float64."""
import numpy as np

from .backend import to_numpy
from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree; the message names the worst element."""


def gradcheck(fn, *tensors, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check the gradients of `fn(*tensors)` against central differences.

    The output is projected on a fixed random direction v, so one backward pass gives the
    analytic gradient of sum(v * fn(...)) for every input; each input element is then perturbed
    by +-eps. Inputs that require grad must be float64. Returns True or raises GradcheckError.
    """
    inputs = [t for t in tensors if isinstance(t, Tensor) and t.requires_grad]
    if not inputs:
        raise ValueError("gradcheck: no input requires grad")
    for t in inputs:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64 for finite differences; got {t.dtype} "
                            f"for an input of shape {t.shape}")
    out = fn(*tensors)
    direction = out.xp.asarray(np.random.default_rng(seed).standard_normal(out.shape))
    for t in inputs:
        t.grad = None
    (out * Tensor(direction, dtype=np.float64)).sum().backward()
    analytic = [to_numpy(t.grad) if t.grad is not None else np.zeros(t.shape) for t in inputs]

    def projected():
        with no_grad():
            return float(to_numpy((fn(*tensors).array * direction).sum()))

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
