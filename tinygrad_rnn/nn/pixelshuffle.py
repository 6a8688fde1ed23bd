"""PixelShuffle and PixelUnshuffle, as in torch.nn: channels traded for a finer spatial grid and back,
by reshapes and one permute (so gradients of any order come from theirs)."""
from .checks import check_int, check_tensor
from .module import Module


def _spatial_input(name, input, factor, argument):
    check_tensor(name, "input", input)
    check_int(argument, factor)
    if input.ndim < 3:
        raise RuntimeError(f"{name} expects input to have at least 3 dimensions, but got input with {input.ndim} "
                           f"dimension(s)")
    return input.shape[:-3], input.shape[-3:]


def _permuted(x, lead, order):
    """x's last dims permuted by `order` (counted from the first of them); the leading ones stay."""
    n = len(lead)
    return x.permute(tuple(range(n)) + tuple(n + k for k in order))


def pixel_shuffle(input, upscale_factor):
    """(*, C * r^2, H, W) -> (*, C, H * r, W * r)."""
    lead, (c, h, w) = _spatial_input("pixel_shuffle", input, upscale_factor, "upscale_factor")
    r = upscale_factor
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square "
                           f"of upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    x = input.reshape(lead + (c // (r * r), r, r, h, w))
    return _permuted(x, lead, (0, 3, 1, 4, 2)).reshape(lead + (c // (r * r), h * r, w * r))


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H * r, W * r) -> (*, C * r^2, H, W)."""
    lead, (c, h, w) = _spatial_input("pixel_unshuffle", input, downscale_factor, "downscale_factor")
    r = downscale_factor
    for size, what, dim in ((h, "height", -2), (w, "width", -1)):
        if size % r:
            raise RuntimeError(f"pixel_unshuffle expects {what} to be divisible by downscale_factor, but "
                               f"input.size({dim})={size} is not divisible by {r}")
    x = input.reshape(lead + (c, h // r, r, w // r, r))
    return _permuted(x, lead, (0, 2, 4, 1, 3)).reshape(lead + (c * r * r, h // r, w // r))


class PixelShuffle(Module):
    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"
