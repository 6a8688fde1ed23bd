"""Normalisation layers composed from primitives (mean, subtract, power), as in torch.nn: LayerNorm,
RMSNorm, GroupNorm, BatchNorm1d / 2d / 3d (with running statistics) and InstanceNorm1d / 2d / 3d, and their Lazy forms."""
import numbers
import warnings

import numpy as np

from .. import factory
from . import functional, init
from .checks import check_int, check_matches_parameters, check_tensor
from .module import Module


def _normalized_shape(normalized_shape):
    if isinstance(normalized_shape, numbers.Integral):
        dims = (normalized_shape,)
    elif isinstance(normalized_shape, (tuple, list)):
        dims = tuple(normalized_shape)
    else:
        raise TypeError(f"normalized_shape must be an int or a tuple of ints; got "
                        f"{type(normalized_shape).__name__} {normalized_shape!r}")
    return tuple(check_int("normalized_shape", n) for n in dims)


class LayerNorm(Module):
    """Normalise over the trailing `normalized_shape` dims with the biased variance, then scale and shift."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None,
                 dtype=None):
        super().__init__()
        shape = _normalized_shape(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        self.has_bias = bias
        affine = elementwise_affine
        self.register_parameter("weight", init.parameter(*shape, dtype=dtype, device=device) if affine else None)
        self.register_parameter("bias", init.parameter(*shape, dtype=dtype, device=device)
                                if affine and bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        check_tensor("LayerNorm", "input", x)
        if self.weight is not None:
            check_matches_parameters("LayerNorm", x, self.weight)
        return functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.has_bias}")


class RMSNorm(Module):
    """x / sqrt(mean(x^2) + eps) over the trailing `normalized_shape` dims, times a learned scale; eps None
    is the input dtype's machine epsilon."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.register_parameter("weight", init.parameter(*self.normalized_shape, dtype=dtype, device=device)
                                if elementwise_affine else None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x):
        check_tensor("RMSNorm", "input", x)
        return functional.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


def _affine_parameters(module, channels, affine, bias, dtype, device):
    """A per-channel scale (with `affine`) and shift (with `affine` and `bias`), as torch's norms."""
    module.register_parameter("weight", init.parameter(channels, dtype=dtype, device=device) if affine else None)
    module.register_parameter("bias", init.parameter(channels, dtype=dtype, device=device)
                              if affine and bias else None)


def _reset_affine(module):
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class GroupNorm(Module):
    """Normalise (N, C, *) over groups of C // num_groups channels, then scale and shift per channel."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        self.num_groups = check_int("num_groups", num_groups, minimum=1)
        self.num_channels = check_int("num_channels", num_channels, minimum=0)
        if num_channels % num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.eps, self.affine, self.has_bias = eps, affine, bias
        _affine_parameters(self, num_channels, affine, bias, dtype, device)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, x):
        check_tensor("GroupNorm", "input", x)
        return functional.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, bias={self.has_bias}"


class _NormBase(Module):
    """torch's _NormBase: per-channel affine parameters and, with track_running_stats, the running_mean,
    running_var and num_batches_tracked buffers."""

    def __init__(self, num_features, eps, momentum, affine, track_running_stats, device, dtype, bias):
        super().__init__()
        self.num_features = check_int("num_features", num_features, minimum=0)
        self.eps, self.momentum, self.affine, self.has_bias = eps, momentum, affine, bias
        self.track_running_stats = track_running_stats
        _affine_parameters(self, num_features, affine, bias, dtype, device)
        if track_running_stats:
            self.register_buffer("running_mean", factory.zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", factory.ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", factory.tensor(0, dtype=np.int64, device=device))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self):
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, x):
        check_tensor(type(self).__name__, "input", x)
        if x.ndim not in self.input_dims:
            wanted = " or ".join(f"{n}D" for n in self.input_dims)
            raise ValueError(f"expected {wanted} input (got {x.ndim}D input)")

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.affine and self.has_bias}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    """Normalise per channel over the batch (and the spatial dims): in training with the batch's
    statistics, moving the running ones by `momentum` (None: their average over all batches so far);
    in eval with the running statistics (the batch's, without track_running_stats)."""
    input_dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias)

    def forward(self, x):
        self._check_input_dim(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.array[...] += 1
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.item())
        batch_statistics = self.training or not self.track_running_stats
        return functional.batch_norm(x, self.running_mean if not self.training or self.track_running_stats else None,
                                     self.running_var if not self.training or self.track_running_stats else None,
                                     self.weight, self.bias, batch_statistics, momentum, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L)."""
    input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W)."""
    input_dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of (N, C, D, H, W)."""
    input_dims = (5,)


class _InstanceNorm(_NormBase):
    """Normalise each sample's channels over their own spatial dims (F.instance_norm); an unbatched input
    (one dim fewer) is one sample. Without affine, num_features is only compared (a warning), as torch's."""
    input_dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False,
                 device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias)

    def forward(self, x):
        self._check_input_dim(x)
        unbatched = x.ndim == self.input_dims[0]
        feature_dim = 0 if unbatched else 1
        if x.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"expected input's size at dim={feature_dim} to match num_features "
                                 f"({self.num_features}), but got: {x.shape[feature_dim]}.")
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. You can silence this "
                          f"warning by not passing in num_features, which is not used because affine=False",
                          stacklevel=3)
        y = functional.instance_norm(x.unsqueeze(0) if unbatched else x, self.running_mean, self.running_var,
                                     self.weight, self.bias, self.training or not self.track_running_stats,
                                     0.0 if self.momentum is None else self.momentum, self.eps)
        return y.squeeze(0) if unbatched else y


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) or (C, L)."""
    input_dims = (2, 3)


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) or (C, H, W)."""
    input_dims = (3, 4)


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W) or (C, D, H, W)."""
    input_dims = (4, 5)
