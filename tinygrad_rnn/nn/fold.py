"""Unfold and Fold, as in torch.nn: the sliding blocks of (N, C, H, W) as columns (im2col) and columns
added back into an image (col2im), and F.unfold / F.fold.

Both are the Unfold primitive, one in each direction (its windows copied out, or with `fold=` added
back, overlapping ones summed), between reshapes and zero padding; each is the other's VJP, so
gradients of any order are theirs.
"""
import math

from ..ops import Unfold as UnfoldWindows
from ..tensor import Tensor
from . import functional
from .checks import InputError
from .conv import ntuple, spatial_input, windows_of
from .module import Module


def _geometry(owner, kernel_size, dilation, padding, stride):
    """(kernel, dilation, padding, stride), each a pair of ints, checked as torch checks them."""
    return (ntuple(owner, "kernel_size", kernel_size, 2, minimum=1),
            ntuple(owner, "dilation", dilation, 2, minimum=1),
            ntuple(owner, "padding", padding, 2, minimum=0),
            ntuple(owner, "stride", stride, 2, minimum=1))


def _blocks(size, kernel, dilation, padding, stride):
    """How many blocks fit along each dim of a spatial size (as torch counts them, rounding toward zero)."""
    return tuple(int((n + 2 * p - d * (k - 1) - 1) / s) + 1
                 for n, k, d, p, s in zip(size, kernel, dilation, padding, stride))


def _description(size_name, size, kernel, dilation, padding):
    return f"{size_name}={tuple(size)}, kernel_size={kernel}, dilation={dilation}, padding={padding}"


def _check_no_empty_dims(owner, input, batched_ndim, expected):
    if any(n == 0 for n in input.shape[input.ndim - batched_ndim + 1:]):
        raise InputError(f"{owner}: Expected {expected} tensor with possibly 0 batch size and other non-zero "
                         f"dimensions for input, but got: {list(input.shape)}")


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """(N, C, H, W) or (C, H, W) -> (N, C * kH * kW, L) or (C * kH * kW, L): every block as a column,
    its elements in (channel, kernel row, kernel column) order, the blocks in row-major order."""
    x, unbatched = spatial_input("unfold", input, 2)
    _check_no_empty_dims("unfold", input, 4, "3D or 4D (batch mode)")
    kernel, dilation, padding, stride = _geometry("unfold", kernel_size, dilation, padding, stride)
    blocks = _blocks(x.shape[2:], kernel, dilation, padding, stride)
    if any(b < 1 for b in blocks):
        raise InputError(f"unfold: Given input with {_description('spatial size', x.shape[2:], kernel, dilation, padding)}, "
                         f"calculated shape of the array of sliding blocks as {blocks}, but its components "
                         f"must be at least one.")
    if any(padding):
        x = functional.pad(x, (padding[1], padding[1], padding[0], padding[0]))
    windows = windows_of(x, kernel, stride, dilation)   # (N, C, kH, kW, *blocks)
    columns = windows.reshape(x.shape[0], x.shape[1] * math.prod(kernel), math.prod(blocks))
    return columns.squeeze(0) if unbatched else columns


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """(N, C * kH * kW, L) or (C * kH * kW, L) -> (N, C, *output_size) or (C, *output_size): unfold's
    adjoint, every column added back at its block's places (where blocks overlap, they add up)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"fold: argument 'input' must be a Tensor, not {type(input).__name__}")
    if input.ndim not in (2, 3):
        raise InputError(f"fold: Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and "
                         f"non-zero dimensions for input, but got: {list(input.shape)}")
    _check_no_empty_dims("fold", input, 3, "2D or 3D (batch mode)")
    if input.dtype.kind != "f":
        raise TypeError(f"fold: only floating point input is supported; got {input.dtype}")
    output_size = ntuple("fold", "output_size", output_size, 2, minimum=0)
    kernel, dilation, padding, stride = _geometry("fold", kernel_size, dilation, padding, stride)
    unbatched = input.ndim == 2
    columns = input.unsqueeze(0) if unbatched else input
    batch, rows, length = columns.shape
    if rows % math.prod(kernel):
        raise InputError(f"fold: Expected size of input's dimension 1 to be divisible by the product of "
                         f"kernel_size, but got input.size(1)={rows} and kernel_size={kernel}.")
    blocks = _blocks(output_size, kernel, dilation, padding, stride)
    described = f"{_description('output_size', output_size, kernel, dilation, padding)}, stride={stride}"
    if length != blocks[0] * blocks[1]:
        raise InputError(f"fold: Given {described}, expected size of input's dimension 2 to match the calculated "
                         f"number of sliding blocks {blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]}, but got "
                         f"input.size(2)={length}.")
    if any(b < 1 for b in blocks):
        raise InputError(f"fold: Given {described}, calculated shape of the array of sliding blocks as {blocks}, "
                         f"but its components must be at least one.")
    channels = rows // math.prod(kernel)
    windows = columns.reshape(batch, channels, *kernel, *blocks)
    padded = (batch, channels) + tuple(n + 2 * p for n, p in zip(output_size, padding))
    y = UnfoldWindows.apply(windows, kernel=kernel, stride=stride, dilation=dilation, fold=padded)
    if any(padding):
        y = functional.pad(y, (-padding[1], -padding[1], -padding[0], -padding[0]))
    return y.squeeze(0) if unbatched else y


class Unfold(Module):
    """Every sliding block of (N, C, H, W) as a column of (N, C * prod(kernel_size), L)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, input):
        return unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, "
                f"stride={self.stride}")


class Fold(Module):
    """Columns of (N, C * prod(kernel_size), L) added back into (N, C, *output_size)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input):
        return fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")
