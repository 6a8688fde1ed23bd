"""How the diagnostics call a user's model without changing it.

A model here is anything callable on a time-major input tensor: a recurrent layer, a Module that
wraps one, or a plain function. Its result is a tensor or a tuple whose first item is the
sequence output (PyTorch's `(output, h_n)` and `(output, (h_n, c_n))` both qualify).
"""
import contextlib

import numpy as np

from .. import backend
from ..tensor import Tensor


def modules_of(model):
    """The modules inside `model` (itself included), or none for a plain function."""
    return list(model.modules()) if hasattr(model, "modules") else []


def parameters_of(model):
    return list(model.parameters()) if hasattr(model, "parameters") else []


def model_dtype(model, default):
    params = parameters_of(model)
    return params[0].dtype if params else default


def is_batch_first(model):
    return any(getattr(m, "batch_first", False) for m in modules_of(model))


@contextlib.contextmanager
def frozen(model):
    """Parameters stop requiring grad, so a diagnostic backward leaves their `.grad` untouched.

    Layers with a fused fast path run their composed, op-by-op path instead: only that one records
    a node per step state, which is what the diagnostics read.
    """
    params = [p for p in parameters_of(model) if p.requires_grad]
    fused = [m for m in modules_of(model) if getattr(m, "fused", False) is True]
    for p in params:
        p.requires_grad = False
    for m in fused:
        object.__setattr__(m, "fused", False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad = True
        for m in fused:
            object.__setattr__(m, "fused", True)


def sequence_output(result):
    """The sequence output from what a model returned: the tensor itself or the tuple's first item."""
    output = result[0] if isinstance(result, (tuple, list)) else result
    if not isinstance(output, Tensor):
        raise TypeError(f"the model must return a Tensor or a tuple starting with one; "
                        f"got {type(output).__name__}")
    return output


def as_input(model, x):
    """`x` (array or Tensor) as a float array of the model's dtype, on the model's device."""
    data = x.array if isinstance(x, Tensor) else x
    if not hasattr(data, "dtype"):
        data = np.asarray(data)
    if data.dtype.kind != "f":
        raise TypeError(f"the input must be floating point to differentiate through it; got dtype "
                        f"{data.dtype} (embed token ids first and pass the embedded sequence)")
    if data.ndim != 3:
        raise ValueError(f"expected a sequence input of 3 dims (T, B, I), or (B, T, I) for a "
                         f"batch_first model; got shape {tuple(data.shape)}")
    params = parameters_of(model)
    if params:
        data = backend.to_device(data, params[0].device)
    return data.astype(model_dtype(model, data.dtype), copy=False)


def input_tensor(data, requires_grad=False):
    """A Tensor over `data` that keeps its dtype (Tensor() alone would make float64 data float32)."""
    return Tensor(data, requires_grad=requires_grad, dtype=data.dtype)
