"""Folding an eval-mode BatchNorm into the convolution or Linear before it, as torch.nn.utils.fusion:
fuse_conv_bn_eval / fuse_conv_bn_weights and fuse_linear_bn_eval / fuse_linear_bn_weights."""
import copy

from ... import factory
from ..module import Parameter


def _fused_parameter(value, dtype, requires_grad):
    return Parameter(value.detach().to(dtype), requires_grad=requires_grad)


def _check_eval(layer, bn):
    if layer.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("bn.running_mean and bn.running_var must not be None")


def fuse_conv_bn_eval(conv, bn, transpose=False):
    """A copy of `conv` whose weight and bias also apply `bn` (both in eval mode) after it."""
    _check_eval(conv, bn)
    fused = copy.deepcopy(conv)
    fused.weight, fused.bias = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                    bn.eps, bn.weight, bn.bias, transpose)
    return fused


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """(weight, bias) Parameters of the convolution followed by the batch norm: each output channel's
    weight scaled by bn_w / sqrt(bn_rv + eps) (dim 1 of a transposed convolution's weight), as torch's."""
    bias_dtype = conv_b.dtype if conv_b is not None else conv_w.dtype
    conv_b = factory.zeros_like(bn_rm) if conv_b is None else conv_b
    bn_w = factory.ones_like(bn_rm) if bn_w is None else bn_w
    bn_b = factory.zeros_like(bn_rm) if bn_b is None else bn_b
    rsqrt = (bn_rv + bn_eps).rsqrt()
    shape = ((1, -1) if transpose else (-1, 1)) + (1,) * (conv_w.ndim - 2)
    weight = conv_w * (bn_w * rsqrt).reshape(shape)
    bias = (conv_b - bn_rm) * rsqrt * bn_w + bn_b
    return (_fused_parameter(weight, conv_w.dtype, conv_w.requires_grad),
            _fused_parameter(bias, bias_dtype, conv_b.requires_grad))


def fuse_linear_bn_eval(linear, bn):
    """A copy of `linear` whose weight and bias also apply `bn` (both in eval mode) after it; bn's
    num_features is linear's out_features, or 1."""
    _check_eval(linear, bn)
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise AssertionError(f"To fuse, linear.out_features == bn.num_features or bn.num_features == 1, got "
                             f"linear.out_features={linear.out_features} and bn.num_features={bn.num_features}")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                      bn.eps, bn.weight, bn.bias)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """(weight, bias) Parameters of the Linear followed by the batch norm, as torch's."""
    bias_dtype = linear_b.dtype if linear_b is not None else linear_w.dtype
    linear_b = factory.zeros_like(bn_rm) if linear_b is None else linear_b
    scale = bn_w * (bn_rv + bn_eps).rsqrt()
    weight = linear_w * scale.unsqueeze(-1).to(linear_w.dtype)
    bias = (linear_b - bn_rm) * scale + bn_b
    return (_fused_parameter(weight, linear_w.dtype, linear_w.requires_grad),
            _fused_parameter(bias, bias_dtype, linear_b.requires_grad))
