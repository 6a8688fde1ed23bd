"""Checks that layers share: input ranks, sizes, dtypes and devices against the layer's own."""
import numpy as np

from ..backend import DeviceError


class InputError(ValueError, RuntimeError):
    """Input of the wrong shape or dtype for a layer.

    PyTorch raises RuntimeError for some of these and ValueError for others; this is both, so code
    written against either catches it.
    """


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
    if x.shape[-1] != size:
        raise InputError(f"{layer}: input.size(-1) must be equal to {what}. Expected {size}, got "
                         f"{x.shape[-1]} (input shape {tuple(x.shape)})")


def check_lengths(owner, lengths, steps, batch):
    """Sequence lengths as a host int64 array (batch,), each in [1, steps]; None stays None.

    They stay on the host because they decide which steps run, which Python code reads.
    """
    if lengths is None:
        return None
    values = getattr(lengths, "data", lengths)
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
