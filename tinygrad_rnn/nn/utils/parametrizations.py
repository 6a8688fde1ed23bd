"""Parametrizations ready to register, as torch.nn.utils.parametrizations: weight_norm."""
from ..module import Module
from . import parametrize
from .weight_norm import _weight_norm, norm_except_dim

__all__ = ["weight_norm"]


class _WeightNorm(Module):
    """w = g * v / ||v||, from (original0, original1) = (g, v)."""

    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight):
        return norm_except_dim(weight, self.dim), weight


def weight_norm(module, name="weight", dim=0):
    """Weight normalisation as a parametrization: module.<name> is computed from
    `parametrizations.<name>.original0` (g, its norm over every dimension but `dim`, or over the whole
    tensor when dim is None) and `original1` (v, its direction) on every read."""
    return parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
