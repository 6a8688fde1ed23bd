"""Dropout as modules: active in train(), the identity in eval(). Dropout zeroes elements, Dropout1d,
Dropout2d and Dropout3d whole channels; AlphaDropout and FeatureAlphaDropout keep a SELU network's mean and variance."""
import numbers

from . import functional as F
from .checks import check_tensor
from .module import Module


class _DropoutNd(Module):
    """F.<function>(input, p, training), with p in [0, 1]."""
    function = None

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        if inplace:
            raise ValueError(f"{type(self).__name__}(inplace=True) is not supported: layers here never change "
                             f"their input in place (a tensor saved for backward would change under it)")
        self.p, self.inplace = float(p), False

    def forward(self, x):
        check_tensor(type(self).__name__, "input", x)
        return self.function(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability p while training and scale the rest by 1/(1-p)."""
    function = staticmethod(F.dropout)


class Dropout1d(_DropoutNd):
    """Zero whole channels of (N, C, L) or (C, L) with probability p while training; scale the rest by 1/(1-p)."""
    function = staticmethod(F.dropout1d)


class Dropout2d(_DropoutNd):
    """Zero whole channels of (N, C, H, W) with probability p while training; scale the rest by 1/(1-p)."""
    function = staticmethod(F.dropout2d)


class Dropout3d(_DropoutNd):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) with probability p while training; scale the
    rest by 1/(1-p)."""
    function = staticmethod(F.dropout3d)


class AlphaDropout(_DropoutNd):
    """Alpha dropout of each element while training (for SELU networks)."""
    function = staticmethod(F.alpha_dropout)


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels while training (for SELU networks)."""
    function = staticmethod(F.feature_alpha_dropout)
