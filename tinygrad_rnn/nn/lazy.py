"""Lazy layers, as in torch.nn: LazyLinear, LazyConv1d/2d/3d, LazyConvTranspose1d/2d/3d, LazyBatchNorm1d/2d/3d
and LazyInstanceNorm1d/2d/3d, whose input size (in_features, in_channels, num_features) comes from their
first input."""
from .. import factory
from .. import tensor as _tensor
from . import init
from .checks import check_flag, check_int, check_tensor
from .conv import Conv1d, Conv2d, Conv3d
from .conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .linear import Linear
from .module import Module
from .normalization import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
)


class LazyLinear(Linear):
    """Linear(in_features, out_features) with in_features the last dim of the first input: the weight and
    bias are made and drawn (as Linear's, from the default generator) on that first call, which turns the
    module into a Linear, as torch's. Until then it has no parameters (torch's are uninitialized ones), so
    build it (call it once) before handing its parameters to an optimizer or loading a state_dict."""
    cls_to_become = Linear

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        Module.__init__(self)
        self.in_features = 0
        self.out_features = check_int("out_features", out_features, minimum=0)
        self._lazy_bias, self._lazy_options = check_flag("bias", bias), {"device": device, "dtype": dtype}
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)

    def initialize_parameters(self, input):
        """Make and draw the weight (out_features, input's last dim) and bias, and become a Linear."""
        check_tensor("LazyLinear", "input", input)
        if input.ndim == 0:
            raise ValueError("LazyLinear: the input needs at least one dim (its last is in_features)")
        self.in_features = input.shape[-1]
        with _tensor.no_grad():
            self.weight = init.parameter(self.out_features, self.in_features, **self._lazy_options)
            if self._lazy_bias:
                self.bias = init.parameter(self.out_features, **self._lazy_options)
            self.reset_parameters()
        del self._lazy_bias, self._lazy_options
        self.__class__ = self.cls_to_become

    def has_uninitialized_params(self):
        return self.weight is None

    def forward(self, x):
        self.initialize_parameters(x)
        return Linear.forward(self, x)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self._lazy_bias}"


class _LazyModule:
    """What the lazy layers share: parameters (and buffers) made on the first call, from its input, after
    which the module becomes `cls_to_become` and runs as one, as torch's LazyModuleMixin."""
    cls_to_become = None

    def has_uninitialized_params(self):
        return True   # until the first call turns it into cls_to_become

    def forward(self, input, *args, **kwargs):
        self.initialize_parameters(input)
        return self.forward(input, *args, **kwargs)   # now cls_to_become's

    def initialize_parameters(self, input):
        check_tensor(type(self).__name__, "input", input)
        options = self._lazy_options
        with _tensor.no_grad():
            self._materialize(input, options)
        del self._lazy_options
        self.__class__ = self.cls_to_become
        self.reset_parameters()   # the real one: drawn as the eager layer draws


class _LazyConvNd(_LazyModule):
    """A convolution whose in_channels is the channel dim of its first input (dim 1, or 0 unbatched);
    built as torch's with in_channels = out_channels = 0 (so out_channels is first checked against
    groups on that call), the weight and bias made then."""

    def _become_lazy(self, out_channels, device, dtype):
        self.out_channels = check_int("out_channels", out_channels, minimum=0)
        self._lazy_bias, self._lazy_options = self.bias is not None, {"device": device, "dtype": dtype}
        self.weight = self.bias = None

    def reset_parameters(self):
        if self.in_channels != 0:
            super().reset_parameters()

    def _materialize(self, input, options):
        dims = self.dims
        if input.ndim not in (dims + 1, dims + 2):
            raise RuntimeError(f"Expected {dims + 1}D (unbatched) or {dims + 2}D (batched) input to "
                               f"{type(self).__name__}, but got input of size: {input.shape}")
        self.in_channels = input.shape[1] if input.ndim == dims + 2 else input.shape[0]
        if self.in_channels % self.groups:
            raise ValueError("in_channels must be divisible by groups")
        groups, kernel = self.groups, self.kernel_size
        channels = ((self.in_channels, self.out_channels // groups) if self.transposed
                    else (self.out_channels, self.in_channels // groups))
        self.weight = init.parameter(*channels, *kernel, **options)
        if self._lazy_bias:
            self.bias = init.parameter(self.out_channels, **options)
        del self._lazy_bias

    def extra_repr(self):
        shown = super().extra_repr()   # torch's lazy bias is there, only not yet made
        return shown.replace(", bias=False", "") if self._lazy_bias else shown


def _lazy_conv(eager):
    class LazyConv(_LazyConvNd, eager):
        __doc__ = f"{eager.__name__} with in_channels taken from the first input, as torch.nn.Lazy{eager.__name__}."
        cls_to_become = eager

        def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                     padding_mode="zeros", device=None, dtype=None):
            Module.__init__(self)
            self._configure(0, 0, kernel_size, stride, padding, dilation, False, 0, groups, bias, padding_mode,
                            device, dtype)
            self._become_lazy(out_channels, device, dtype)
    return _named(LazyConv, f"Lazy{eager.__name__}")


def _lazy_conv_transpose(eager):
    class LazyConvTranspose(_LazyConvNd, eager):
        __doc__ = f"{eager.__name__} with in_channels taken from the first input, as torch.nn.Lazy{eager.__name__}."
        cls_to_become = eager

        def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True,
                     dilation=1, padding_mode="zeros", device=None, dtype=None):
            eager.__init__(self, 0, 0, kernel_size, stride, padding, output_padding, groups, bias, dilation,
                           padding_mode, device, dtype)
            self._become_lazy(out_channels, device, dtype)
    return _named(LazyConvTranspose, f"Lazy{eager.__name__}")


class _LazyNormBase(_LazyModule):
    """A norm whose num_features is dim 1 of its first input (as torch's, unbatched too): built with
    num_features = 0 and no parameters or running statistics (num_batches_tracked is there), which that
    first call makes (with neither affine nor track_running_stats, nothing is made and num_features stays
    0, as torch's)."""

    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None, dtype=None, *,
                 bias=True):
        self.cls_to_become.__init__(self, 0, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self._lazy_options = {"device": device, "dtype": dtype}
        self.weight = self.bias = None
        if track_running_stats:
            self.running_mean = self.running_var = None

    def reset_parameters(self):
        if self.num_features != 0:
            super().reset_parameters()

    def _materialize(self, input, options):
        if not (self.affine or self.track_running_stats):
            return   # nothing to make: num_features stays 0, as torch's
        if input.ndim < 2:
            raise IndexError(f"{type(self).__name__}: the input needs a dim 1 (num_features); got shape "
                             f"{input.shape}")
        features = self.num_features = input.shape[1]
        if self.affine:
            self.weight = init.parameter(features, **options)
            if self.has_bias:
                self.bias = init.parameter(features, **options)
        if self.track_running_stats:
            self.running_mean = factory.zeros(features, **options)
            self.running_var = factory.ones(features, **options)


def _lazy_norm(eager):
    return _named(type(f"Lazy{eager.__name__}", (_LazyNormBase, eager), {
        "__doc__": f"{eager.__name__} with num_features taken from the first input, as torch.nn.Lazy{eager.__name__}.",
        "cls_to_become": eager}), f"Lazy{eager.__name__}")


def _named(cls, name):
    cls.__name__ = cls.__qualname__ = name
    cls.__module__ = __name__
    return cls


LazyConv1d, LazyConv2d, LazyConv3d = map(_lazy_conv, (Conv1d, Conv2d, Conv3d))
LazyConvTranspose1d, LazyConvTranspose2d, LazyConvTranspose3d = map(
    _lazy_conv_transpose, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d))
LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d = map(_lazy_norm, (BatchNorm1d, BatchNorm2d, BatchNorm3d))
LazyInstanceNorm1d, LazyInstanceNorm2d, LazyInstanceNorm3d = map(
    _lazy_norm, (InstanceNorm1d, InstanceNorm2d, InstanceNorm3d))
