"""LPPool1d / 2d / 3d and F.lp_pool1d / 2d / 3d, as in torch.nn: the p-norm of each window, composed as
torch's from average pooling of x^p (the ±inf norms from max pooling of |x|)."""
import math
import numbers

from . import functional as F
from .checks import check_flag
from .conv import ntuple
from .module import Module


def _lp_pool(owner, dims, input, norm_type, kernel_size, stride, ceil_mode):
    max_pool, avg_pool = getattr(F, f"max_pool{dims}d"), getattr(F, f"avg_pool{dims}d")
    if isinstance(norm_type, numbers.Real) and math.isinf(norm_type):
        pooled = max_pool(input.abs() if norm_type > 0 else -input.abs(), kernel_size, stride, 0, 1, ceil_mode)
        return pooled if norm_type > 0 else -pooled
    size = math.prod(ntuple(owner, "kernel_size", kernel_size, dims, minimum=1))
    out = avg_pool(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    # torch's sign(out) * relu(|out|): a negative mean (odd p) kept, its gradient that of relu(|out|)
    return (out.sign() * F.relu(out.abs()) * size).pow(1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(sum of x^p over each window of (N, C, L) or (C, L)) ^ (1 / p)."""
    return _lp_pool("lp_pool1d", 1, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(sum of x^p over each window of (N, C, H, W) or (C, H, W)) ^ (1 / p)."""
    return _lp_pool("lp_pool2d", 2, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(sum of x^p over each window of (N, C, D, H, W) or (C, D, H, W)) ^ (1 / p)."""
    return _lp_pool("lp_pool3d", 3, input, norm_type, kernel_size, stride, ceil_mode)


class _LPPoolNd(Module):
    """torch's _LPPoolNd: the arguments kept as given."""
    pool = None

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type, self.kernel_size, self.stride = norm_type, kernel_size, stride
        self.ceil_mode = check_flag("ceil_mode", ceil_mode)

    def forward(self, input):
        return self.pool(input, float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self):
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPoolNd):
    """The p-norm of each window of (N, C, L) or (C, L)."""
    pool = staticmethod(lp_pool1d)


class LPPool2d(_LPPoolNd):
    """The p-norm of each window of (N, C, H, W) or (C, H, W)."""
    pool = staticmethod(lp_pool2d)


class LPPool3d(_LPPoolNd):
    """The p-norm of each window of (N, C, D, H, W) or (C, D, H, W)."""
    pool = staticmethod(lp_pool3d)
