"""LayerNorm composed from primitives (mean, subtract, power), as in PyTorch."""
import numbers

from . import functional, init
from .checks import check_int, check_matches_parameters, check_tensor
from .module import Module


class LayerNorm(Module):
    """Normalise over the trailing `normalized_shape` dims with the biased variance, then scale and shift."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None,
                 dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            dims = (normalized_shape,)
        elif isinstance(normalized_shape, (tuple, list)):
            dims = tuple(normalized_shape)
        else:
            raise TypeError(f"normalized_shape must be an int or a tuple of ints; got "
                            f"{type(normalized_shape).__name__} {normalized_shape!r}")
        shape = tuple(check_int("normalized_shape", n) for n in dims)
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
