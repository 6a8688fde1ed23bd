"""Argument checks that layers share: constructor arguments, and inputs against the layer's own
ranks, sizes, dtypes and devices. Each error names the argument and what was given."""
import numbers

import numpy as np

from ..backend import DeviceError
from ..tensor import Tensor


class InputError(ValueError, RuntimeError):
    """Input of the wrong shape or dtype for a layer.

    PyTorch raises RuntimeError for some of these and ValueError for others; this is both, so code
    written against either catches it.
    """


# ----------------------------------------------------------------------------- constructor arguments

def check_int(name, value, minimum=1):
    """`value` as a Python int >= minimum; NumPy integers are ints too, bools are not."""
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    value = int(value)
    if value < minimum:
        bound = "greater than zero" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {bound}; got {value}")
    return value


def check_sizes(input_size, hidden_size):
    """(input_size, hidden_size) as ints > 0: the hidden size first, as PyTorch checks it."""
    hidden_size = check_int("hidden_size", hidden_size)
    return check_int("input_size", input_size), hidden_size


def check_proj_size(proj_size, hidden_size):
    """LSTM's proj_size: an int in [0, hidden_size)."""
    if not isinstance(proj_size, numbers.Integral) or isinstance(proj_size, (bool, np.bool_)) or proj_size < 0:
        raise ValueError(f"proj_size should be a positive integer or zero to disable projections; "
                         f"got {proj_size!r}")
    if proj_size >= hidden_size:
        raise ValueError(f"proj_size has to be smaller than hidden_size; got proj_size={proj_size}, "
                         f"hidden_size={hidden_size}")
    return int(proj_size)


def check_flag(name, value):
    """A bool (NumPy's included) as a Python bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
    return bool(value)


def check_probability(name, value):
    """A dropout probability in [0, 1] as a float."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) or not 0 <= value <= 1:
        raise ValueError(f"{name} should be a number in range [0, 1] representing the probability of an "
                         f"element being zeroed; got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------- call arguments

def type_name(value):
    """"numpy.ndarray", "list", "torch.Tensor": what an error message calls a value's type."""
    module = type(value).__module__.split(".")[0]
    return type(value).__name__ if module == "builtins" else f"{module}.{type(value).__name__}"


def check_tensor(owner, what, value):
    """`value` must be a Tensor: arrays are not converted behind the caller's back (as in PyTorch)."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{owner}: {what} must be a Tensor, got {type_name(value)}; convert it with "
                        f"tr.tensor(...)")
    return value


def check_states(owner, hx, names):
    """hx (a Tensor, or a tuple of Tensors named `names`) as a tuple of Tensors; None stays None."""
    if hx is None:
        return None
    count = len(names)
    if isinstance(hx, Tensor):
        states = (hx,)
    elif isinstance(hx, (tuple, list)):
        states = tuple(hx)
    else:
        expected = "a Tensor" if count == 1 else f"a tuple of {count} Tensors ({', '.join(names)})"
        raise TypeError(f"{owner}: hx must be {expected}, got {type_name(hx)}; convert arrays with "
                        f"tr.tensor(...)")
    if len(states) != count:
        raise InputError(f"{owner}: hx must hold {count} tensor(s) ({', '.join(names)}); got {len(states)}")
    for k, (state, name) in enumerate(zip(states, names)):
        check_tensor(owner, "hx" if count == 1 else f"hx[{k}] ({name})", state)
    return states


def check_matches_parameters(layer, x, parameter):
    """x must have the dtype and device of the layer's parameters (no silent casts or copies)."""
    if x.device != parameter.device:
        raise DeviceError(f"{layer}: input is on {x.device} but the parameters are on "
                          f"{parameter.device}; move one with .to(device)")
    if x.dtype != parameter.dtype:
        raise InputError(f"{layer}: input dtype ({x.dtype}) does not match weight dtype "
                         f"({parameter.dtype}); convert the input with .to(dtype='{parameter.dtype}') "
                         f"or the layer with .to(dtype='{x.dtype}')")


def check_last_dim(layer, x, size, what):
    if x.ndim == 0:
        raise InputError(f"{layer}: input must have at least one dim, of size {what} ({size}); got a 0-d tensor")
    if x.shape[-1] != size:
        raise InputError(f"{layer}: input.size(-1) must be equal to {what}. Expected {size}, got "
                         f"{x.shape[-1]} (input shape {tuple(x.shape)})")


def check_lengths(owner, lengths, steps, batch):
    """Sequence lengths as a host int64 array (batch,), each in [1, steps]; None stays None.

    They stay on the host because they decide which steps run, which Python code reads.
    """
    if lengths is None:
        return None
    values = lengths.array if isinstance(lengths, Tensor) else lengths
    if hasattr(values, "get"):
        raise DeviceError(f"{owner}: lengths must be on the host (a list or NumPy array), not on the GPU")
    values = np.asarray(values)
    if values.size == 0 and values.dtype.kind == "f":
        values = values.astype(np.int64)  # [] is an empty float array to NumPy
    if values.dtype.kind not in "iu":
        raise InputError(f"{owner}: lengths must be integers; got dtype {values.dtype}")
    if values.shape != (batch,):
        raise InputError(f"{owner}: lengths must have shape ({batch},), one per sequence in the batch; "
                         f"got shape {values.shape}")
    if values.size and (values.min() < 1 or values.max() > steps):
        raise InputError(f"{owner}: lengths must lie in [1, {steps}] (the input has T={steps} steps); "
                         f"got min {values.min()}, max {values.max()}")
    return values.astype(np.int64)


def padding_mask(lengths, steps):
    """(T, B) host bool array, True where step t lies inside sequence b; None when nothing is padded."""
    if lengths is None or not lengths.size or int(lengths.min()) >= steps:
        return None
    return np.arange(steps)[:, None] < lengths[None, :]
