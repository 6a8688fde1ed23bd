"""Convolutions as in torch.nn: Conv1d / 2d / 3d and F.conv1d / conv2d / conv3d, composed from primitives.

Every window of the (padded) input is copied out at once, as strided views (the Unfold primitive,
whose VJP adds the windows back, one strided slice-add per kernel offset), and contracted with the
weight in one matrix product per group, the batch among its columns; so gradients of any order come
from those two primitives'. The pooling layers take their windows the same way (`windows_of`).
"""
import math
import numbers

import numpy as np

from ..ops import Unfold
from ..tensor import Tensor
from . import functional, init
from .checks import InputError, check_flag, check_int, check_matches_parameters, check_tensor
from .module import Module

PADDING_STRINGS = ("same", "valid")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}
KERNEL = {1: "kernel_size", 2: "kH, kW", 3: "kD, kH, kW"}   # how the weight's kernel dims are named


# ----------------------------------------------------------------------------- shared with pooling

def ntuple(owner, name, value, dims, minimum):
    """`value` (an int, or a tuple or list of `dims` ints or of one) as a tuple of `dims` ints >= minimum."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    values = values * dims if len(values) == 1 else values   # torch's functions spread one value too
    if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) for v in values):
        raise TypeError(f"{owner}: {name} must be an int or a tuple of {dims} ints; got {value!r}")
    if len(values) != dims:
        raise InputError(f"{owner}: {name} must be an int or a tuple of {dims} ints to match the {dims} "
                         f"spatial dims; got {value!r}")
    if any(v < minimum for v in values):
        bound = "greater than zero" if minimum == 1 else "non-negative"
        raise InputError(f"{owner}: {name} must be {bound}; got {value!r}")
    return tuple(int(v) for v in values)


def spatial_input(owner, input, dims):
    """(input as (N, C, *spatial), whether it came unbatched as (C, *spatial)), as torch accepts both."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{owner}: argument 'input' must be a Tensor, not {type(input).__name__}")
    if input.ndim not in (dims + 1, dims + 2):
        raise InputError(f"{owner}: expected a {dims + 1}-D (C, {SPATIAL[dims]}) or {dims + 2}-D "
                         f"(N, C, {SPATIAL[dims]}) input; got shape {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"{owner}: only floating point input is supported; got {input.dtype}")
    unbatched = input.ndim == dims + 1
    return (input.unsqueeze(0) if unbatched else input), unbatched


def window_positions(kernel, stride, dilation, out, offset=0):
    """(kernel, out) positions along one dim: window o's k-th element is o * stride + k * dilation - offset."""
    return (np.arange(kernel)[:, None] * dilation + np.arange(out)[None, :] * stride - offset).astype(np.int64)


def on_own_axes(per_dim, kernel_axes=True):
    """Per-dim arrays (kernel_j, out_j) (or (out_j,)) reshaped to broadcast to (*kernel, *out) (or (*out,))."""
    m = len(per_dim)
    shaped = []
    for j, a in enumerate(per_dim):
        shape = [1] * (2 * m if kernel_axes else m)
        if kernel_axes:
            shape[j], shape[m + j] = a.shape
        else:
            shape[j] = a.shape[0]
        shaped.append(a.reshape(shape))
    return shaped


def windows_of(x, kernel, stride, dilation, batch_inside=False):
    """x (N, C, *spatial) -> its windows (N, C, *kernel, *out), window o's element k at o * stride +
    k * dilation along each dim; (C, *kernel, N, *out) if batch_inside, the columns of a convolution."""
    m = len(kernel)
    axes = (1, *range(2, 2 + m), 0, *range(2 + m, 2 + 2 * m)) if batch_inside else None
    return Unfold.apply(x, kernel=tuple(kernel), stride=tuple(stride), dilation=tuple(dilation), axes=axes)


# ----------------------------------------------------------------------------- functional

def _padding(owner, padding, kernel, stride, dilation):
    """((left, right) per dim) for an int, a tuple, 'valid' or 'same' (the odd one more on the right)."""
    dims = len(kernel)
    if isinstance(padding, str):
        if padding not in PADDING_STRINGS:
            raise InputError(f"{owner}: Invalid padding string {padding!r}, should be one of {PADDING_STRINGS}")
        if padding == "valid":
            return ((0, 0),) * dims
        if any(s != 1 for s in stride):
            raise InputError(f"{owner}: padding='same' is not supported for strided convolutions")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in ntuple(owner, "padding", padding, dims, minimum=0))


def _check_conv_operands(owner, x, weight, bias, groups, dims):
    check_tensor(owner, "weight", weight)
    if weight.ndim != dims + 2:
        raise InputError(f"{owner}: expected a {dims + 2}-D weight (out_channels, in_channels / groups, "
                         f"{KERNEL[dims]}); got shape {weight.shape}")
    check_matches_parameters(owner, x, weight)
    out_channels, group_channels = weight.shape[:2]
    if out_channels % groups:
        raise InputError(f"{owner}: Given groups={groups}, expected weight to be divisible by {groups} at "
                         f"dimension 0, but got weight of size {list(weight.shape)} instead")
    if x.shape[1] != group_channels * groups:
        raise InputError(f"{owner}: Given groups={groups}, weight of size {list(weight.shape)}, expected "
                         f"input{list(x.shape)} to have {group_channels * groups} channels, but got "
                         f"{x.shape[1]} channels instead")
    if bias is not None:
        check_tensor(owner, "bias", bias)
        check_matches_parameters(owner, x, bias)
        if bias.shape != (out_channels,):
            raise InputError(f"{owner}: Given weight of size {list(weight.shape)}, expected bias to be "
                             f"1-dimensional with {out_channels} elements, but got bias of size "
                             f"{list(bias.shape)} instead")


def _conv(owner, dims, input, weight, bias, stride, padding, dilation, groups):
    x, unbatched = spatial_input(owner, input, dims)
    groups = check_int("groups", groups)
    _check_conv_operands(owner, x, weight, bias, groups, dims)
    kernel = weight.shape[2:]
    stride = ntuple(owner, "stride", stride, dims, minimum=1)
    dilation = ntuple(owner, "dilation", dilation, dims, minimum=1)
    pads = _padding(owner, padding, kernel, stride, dilation)
    if any(p for pair in pads for p in pair):
        x = functional.pad(x, tuple(p for pair in reversed(pads) for p in pair))
    reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if any(n < r for n, r in zip(x.shape[2:], reach)):
        raise InputError(f"{owner}: Calculated padded input size per channel: {tuple(x.shape[2:])}. Kernel size "
                         f"(dilated): {tuple(reach)}. Kernel size can't be greater than actual input size")
    out = [(n - r) // s + 1 for n, r, s in zip(x.shape[2:], reach, stride)]
    windows = windows_of(x, kernel, stride, dilation, batch_inside=True)
    batch, channels, out_channels = x.shape[0], x.shape[1], weight.shape[0]
    # one product per group, the batch among the columns (as one large product runs faster than N small
    # ones, for the weight's gradient too): (groups, out / groups, C / groups * K) @ (groups, C / groups * K, N * positions)
    columns = windows.reshape(groups, channels // groups * math.prod(kernel), batch * math.prod(out))
    y = weight.reshape(groups, out_channels // groups, columns.shape[1]) @ columns
    y = y.reshape((out_channels, batch, *out)).permute(1, 0, *range(2, 2 + dims))
    if bias is not None:
        y = y + bias.reshape((out_channels,) + (1,) * dims)
    return y.squeeze(0) if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation of (N, C_in, L) or (C_in, L) with weight (C_out, C_in / groups, kernel_size)."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation of (N, C_in, H, W) or (C_in, H, W) with weight (C_out, C_in / groups, kH, kW)."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation of (N, C_in, D, H, W) or (C_in, D, H, W) with weight (C_out, C_in / groups, kD, kH, kW)."""
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


# ----------------------------------------------------------------------------- modules

class _ConvNd(Module):
    """torch's _ConvNd: the arguments, their checks, the attributes torch keeps, and the parameters."""
    dims = None
    conv = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        self._configure(in_channels, out_channels, kernel_size, stride, padding, dilation, False, 0, groups, bias,
                        padding_mode, device, dtype)

    def _configure(self, in_channels, out_channels, kernel_size, stride, padding, dilation, transposed,
                   output_padding, groups, bias, padding_mode, device, dtype):
        """torch's _ConvNd.__init__: checks, attributes and parameters, the weight (in_channels,
        out_channels / groups, *kernel) when transposed, else (out_channels, in_channels / groups, *kernel)."""
        owner = type(self).__name__
        self.in_channels = check_int("in_channels", in_channels, minimum=0)
        self.out_channels = check_int("out_channels", out_channels, minimum=0)
        if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, numbers.Integral) or groups <= 0:
            raise ValueError(f"groups must be a positive integer; got {groups!r}")
        for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels % groups:
                raise ValueError(f"{name} must be divisible by groups; got {name}={channels}, groups={groups}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, but got padding_mode={padding_mode!r}")
        self.kernel_size = ntuple(owner, "kernel_size", kernel_size, self.dims, minimum=1)
        self.stride = ntuple(owner, "stride", stride, self.dims, minimum=1)
        self.dilation = ntuple(owner, "dilation", dilation, self.dims, minimum=1)
        pads = _padding(owner, padding, self.kernel_size, self.stride, self.dilation)
        self.padding = padding if isinstance(padding, str) else tuple(left for left, _ in pads)
        self._reversed_padding_repeated_twice = [p for pair in reversed(pads) for p in pair]
        self.transposed = transposed
        self.output_padding = ntuple(owner, "output_padding", output_padding, self.dims, minimum=0)
        self.groups, self.padding_mode = int(groups), padding_mode
        channels = (in_channels, out_channels // groups) if transposed else (out_channels, in_channels // groups)
        self.weight = init.parameter(*channels, *self.kernel_size, dtype=dtype, device=device)
        self.register_parameter("bias", init.parameter(out_channels, dtype=dtype, device=device)
                                if check_flag("bias", bias) else None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # torch's: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in:
                init.uniform_(self.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))

    def forward(self, input):
        if self.padding_mode == "zeros":
            return self.conv(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                             self.groups)
        check_tensor(type(self).__name__, "input", input)
        padded = functional.pad(input, tuple(self._reversed_padding_repeated_twice), mode=self.padding_mode)
        return self.conv(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self):
        shown = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        padding = self.padding
        if padding != (0,) * self.dims:
            shown += f", padding={padding}"
        if self.dilation != (1,) * self.dims:
            shown += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self.dims:
            shown += f", output_padding={self.output_padding}"
        if self.groups != 1:
            shown += f", groups={self.groups}"
        if self.bias is None:
            shown += ", bias=False"
        if self.padding_mode != "zeros":
            shown += f", padding_mode={self.padding_mode}"
        return shown


class Conv1d(_ConvNd):
    """A 1-D convolution over (N, C_in, L) or (C_in, L): weight (out_channels, in_channels / groups,
    kernel_size), bias (out_channels,), both U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as torch's."""
    dims = 1
    conv = staticmethod(conv1d)


class Conv2d(_ConvNd):
    """A 2-D convolution over (N, C_in, H, W) or (C_in, H, W): weight (out_channels, in_channels / groups,
    kH, kW), bias (out_channels,), both U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as torch's."""
    dims = 2
    conv = staticmethod(conv2d)


class Conv3d(_ConvNd):
    """A 3-D convolution over (N, C_in, D, H, W) or (C_in, D, H, W): weight (out_channels, in_channels /
    groups, kD, kH, kW), bias (out_channels,), both U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as torch's."""
    dims = 3
    conv = staticmethod(conv3d)
