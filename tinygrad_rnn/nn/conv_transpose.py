"""Transposed convolutions as in torch.nn: ConvTranspose1d / 2d / 3d and F.conv_transpose1d / 2d / 3d,
composed from primitives.

A transposed convolution is the adjoint of a convolution (its input's gradient): each input position
spreads weight-scaled copies of the kernel over the output. So it is one matrix product per group,
weight^T @ input, the batch among the columns, giving every window's contribution, and the Unfold
primitive's `fold=` form adding the windows back at their strided, dilated places (overlaps summed);
then `padding` is cropped off both sides and `output_padding` zeros added on the far one. Gradients
of any order come from those primitives'.
"""
import math
import numbers

import numpy as np

from ..ops import Unfold
from . import functional
from .checks import InputError, check_matches_parameters, check_tensor
from .conv import KERNEL, _ConvNd, ntuple, spatial_input
from .module import Module


def _check_groups(owner, groups):
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, numbers.Integral):
        raise TypeError(f"{owner}: argument 'groups' must be int, not {type(groups).__name__}")
    if groups <= 0:
        raise InputError(f"{owner}: non-positive groups is not supported; got groups={groups}")
    return int(groups)


def _check_operands(owner, x, weight, bias, groups, dims):
    """weight (in_channels, out_channels / groups, *kernel), bias (out_channels,), as torch checks them."""
    check_tensor(owner, "weight", weight)
    if weight.ndim != dims + 2:
        raise InputError(f"{owner}: expected a {dims + 2}-D weight (in_channels, out_channels / groups, "
                         f"{KERNEL[dims]}); got shape {weight.shape}")
    check_matches_parameters(owner, x, weight)
    if weight.shape[0] % groups:
        raise InputError(f"{owner}: Given groups={groups}, expected weight to be divisible by {groups} at "
                         f"dimension 0, but got weight of size {list(weight.shape)} instead")
    if x.shape[1] != weight.shape[0]:
        raise InputError(f"{owner}: Given transposed=1, weight of size {list(weight.shape)}, expected input"
                         f"{list(x.shape)} to have {weight.shape[0]} channels, but got {x.shape[1]} channels instead")
    if bias is not None:
        check_tensor(owner, "bias", bias)
        check_matches_parameters(owner, x, bias)
        out_channels = weight.shape[1] * groups
        if bias.shape != (out_channels,):
            raise InputError(f"{owner}: Given transposed=1, weight of size {list(weight.shape)}, expected bias to "
                             f"be 1-dimensional with {out_channels} elements, but got bias of size "
                             f"{list(bias.shape)} instead")


def _geometry(owner, dims, stride, padding, output_padding, dilation):
    if isinstance(padding, str):
        raise TypeError(f"{owner}: argument 'padding' must be tuple of ints, not str")
    stride = ntuple(owner, "stride", stride, dims, minimum=1)
    padding = ntuple(owner, "padding", padding, dims, minimum=0)
    output_padding = ntuple(owner, "output_padding", output_padding, dims, minimum=0)
    dilation = ntuple(owner, "dilation", dilation, dims, minimum=1)
    if any(o >= s and o >= d for o, s, d in zip(output_padding, stride, dilation)):
        raise InputError(f"{owner}: output padding must be smaller than either stride or dilation, but got "
                         f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
    return stride, padding, output_padding, dilation


def _conv_transpose(owner, dims, input, weight, bias, stride, padding, output_padding, groups, dilation):
    x, unbatched = spatial_input(owner, input, dims)
    groups = _check_groups(owner, groups)
    _check_operands(owner, x, weight, bias, groups, dims)
    stride, padding, output_padding, dilation = _geometry(owner, dims, stride, padding, output_padding, dilation)
    kernel, size = weight.shape[2:], x.shape[2:]
    if 0 in size:
        raise InputError(f"{owner}: Only zero batch or zero channel inputs are supported, but got input shape: "
                         f"{list(x.shape)}")
    # every window's full extent, before padding is cropped off and output_padding added
    full = [(n - 1) * s + d * (k - 1) + 1 for n, s, d, k in zip(size, stride, dilation, kernel)]
    out = [f - 2 * p + o for f, p, o in zip(full, padding, output_padding)]
    if any(n < 1 for n in out):
        raise InputError(f"{owner}: Given input size per channel: {tuple(size)}. Calculated output size per "
                         f"channel: {tuple(out)}. Output size is too small")
    batch, in_channels, out_channels = x.shape[0], x.shape[1], weight.shape[1] * groups
    # (groups, out / groups * K, in / groups) @ (groups, in / groups, N * positions): every window's values
    rows = x.permute(1, 0, *range(2, 2 + dims)).reshape(groups, in_channels // groups, batch * math.prod(size))
    weights = weight.reshape(groups, in_channels // groups, out_channels // groups * math.prod(kernel))
    windows = (weights.transpose(1, 2) @ rows).reshape((out_channels, *kernel, batch, *size))
    batch_inside = (1, *range(2, 2 + dims), 0, *range(2 + dims, 2 + 2 * dims))   # as a convolution lays them out
    y = Unfold.apply(windows, kernel=tuple(kernel), stride=stride, dilation=dilation, axes=batch_inside,
                     fold=(batch, out_channels, *full))
    if any(padding) or any(output_padding):   # negative pads crop
        y = functional.pad(y, tuple(q for p, o in zip(reversed(padding), reversed(output_padding))
                                    for q in (-p, o - p)))
    if bias is not None:
        y = y + bias.reshape((out_channels,) + (1,) * dims)
    return y.squeeze(0) if unbatched else y


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The transposed convolution of (N, C_in, L) or (C_in, L) with weight (C_in, C_out / groups, kernel_size)."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The transposed convolution of (N, C_in, H, W) or (C_in, H, W) with weight (C_in, C_out / groups, kH, kW)."""
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The transposed convolution of (N, C_in, D, H, W) or (C_in, D, H, W) with weight (C_in, C_out / groups,
    kD, kH, kW)."""
    return _conv_transpose("conv_transpose3d", 3, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


class _ConvTransposeNd(_ConvNd):
    """torch's _ConvTransposeNd: _ConvNd's arguments and parameters with the weight transposed
    (in_channels, out_channels / groups, *kernel), initialised from that shape's fan_in as torch's."""
    conv_transpose = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        Module.__init__(self)   # not _ConvNd's, which takes a convolution's arguments
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        self._configure(in_channels, out_channels, kernel_size, stride, padding, dilation, True, output_padding,
                        groups, bias, padding_mode, device, dtype)

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        return self.conv_transpose(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                   self.groups, self.dilation)

    def _output_padding(self, input, output_size):
        """output_padding, or what gives `output_size` (its spatial dims, or all of them), as torch's."""
        if output_size is None:
            return self.output_padding
        check_tensor(type(self).__name__, "input", input)
        dims = self.dims
        lead = 2 if input.ndim == dims + 2 else 1
        output_size = [int(n) for n in output_size]
        if len(output_size) == lead + dims:
            output_size = output_size[lead:]
        if len(output_size) != dims:
            raise ValueError(f"ConvTranspose{dims}D: for {input.ndim}D input, output_size must have {dims} or "
                             f"{lead + dims} elements (got {len(output_size)})")
        smallest = [(input.shape[lead + j] - 1) * s - 2 * p + d * (k - 1) + 1
                    for j, (s, p, d, k) in enumerate(zip(self.stride, self.padding, self.dilation, self.kernel_size))]
        largest = [n + s - 1 for n, s in zip(smallest, self.stride)]
        if any(not lo <= n <= hi for n, lo, hi in zip(output_size, smallest, largest)):
            raise ValueError(f"requested an output size of {output_size}, but valid sizes range from {smallest} "
                             f"to {largest} (for an input of {tuple(input.shape[2:])})")
        return tuple(n - lo for n, lo in zip(output_size, smallest))


class ConvTranspose1d(_ConvTransposeNd):
    """A 1-D transposed convolution over (N, C_in, L) or (C_in, L): weight (in_channels,
    out_channels / groups, kernel_size), bias (out_channels,), both U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    fan_in = out_channels / groups * kernel_size, as torch's."""
    dims = 1
    conv_transpose = staticmethod(conv_transpose1d)


class ConvTranspose2d(_ConvTransposeNd):
    """A 2-D transposed convolution over (N, C_in, H, W) or (C_in, H, W): weight (in_channels,
    out_channels / groups, kH, kW), bias (out_channels,), both U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    fan_in = out_channels / groups * kH * kW, as torch's."""
    dims = 2
    conv_transpose = staticmethod(conv_transpose2d)


class ConvTranspose3d(_ConvTransposeNd):
    """A 3-D transposed convolution over (N, C_in, D, H, W) or (C_in, D, H, W): weight (in_channels,
    out_channels / groups, kD, kH, kW), bias (out_channels,), both U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    fan_in = out_channels / groups * kD * kH * kW, as torch's."""
    dims = 3
    conv_transpose = staticmethod(conv_transpose3d)
