"""Checks that layers share: input ranks, sizes, dtypes and devices against the layer's own."""
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
