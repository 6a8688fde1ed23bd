"""Across channels, as in torch.nn: LocalResponseNorm / F.local_response_norm (each value over the sum of
squares of its neighbouring channels) and ChannelShuffle / F.channel_shuffle, composed as torch's."""
from . import functional as F
from .checks import InputError, check_int, check_tensor
from .module import Module


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """x / (k + alpha * mean of x^2 over `size` neighbouring channels) ^ beta, the window zero-padded,
    over (N, C, *) with at least one spatial dim."""
    check_tensor("local_response_norm", "input", input)
    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.ndim} dimensions)")
    if input.numel() == 0:
        return input
    square = input * input
    padding = (size // 2, (size - 1) // 2)   # channels before and after each one
    if input.ndim == 3:
        square = F.pad(square.unsqueeze(1), (0, 0, *padding))
        div = F.avg_pool2d(square, (size, 1), stride=1).squeeze(1)
    else:
        n, c = input.shape[:2]
        square = F.pad(square.reshape(n, 1, c, input.shape[2], -1), (0, 0, 0, 0, *padding))
        div = F.avg_pool3d(square, (size, 1, 1), stride=1).squeeze(1).reshape(input.shape)
    return input / (div * alpha + k).pow(beta)


class LocalResponseNorm(Module):
    """F.local_response_norm(input, size, alpha, beta, k)."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


def channel_shuffle(input, groups):
    """(N, C, *) with its channels, read as a (groups, C / groups) grid, transposed: channel g * (C /
    groups) + i moves to i * groups + g."""
    check_tensor("channel_shuffle", "input", input)
    groups = check_int("groups", groups)
    if input.ndim <= 2:
        raise InputError(f"channel_shuffle expects input to have at least 3 dimensions, but got input with "
                         f"{input.ndim} dimension(s)")
    if groups <= 0:
        raise InputError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    batch, channels, rest = input.shape[0], input.shape[1], input.shape[2:]
    if channels % groups:
        raise InputError(f"Number of channels must be divisible by groups. Got {channels} channels and {groups} "
                         f"groups.")
    grid = input.reshape((batch, groups, channels // groups) + rest)
    return grid.transpose(1, 2).reshape(input.shape)


class ChannelShuffle(Module):
    """F.channel_shuffle(input, groups)."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, input):
        return channel_shuffle(input, self.groups)

    def extra_repr(self):
        return f"groups={self.groups}"
