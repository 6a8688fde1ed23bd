"""Weight normalisation, torch.nn.utils.weight_norm's old API: w = g * v / ||v|| (Salimans and Kingma,
https://arxiv.org/abs/1602.07868).

The parameter `name` is replaced by two, `name_g` (the magnitude) and `name_v` (the direction), and a
forward pre-hook recomputes `name` from them before every forward, as a plain tensor attribute that the
layer reads where it read its parameter.
"""
import warnings

from ...tensor import no_grad
from ..module import Parameter


def norm_except_dim(v, dim):
    """The 2-norm of v over every dimension but `dim`, kept as size-1 dimensions; over the whole tensor
    (a 0-d tensor) when dim is -1, as torch.norm_except_dim."""
    if dim == -1:
        return v.norm()
    if not -v.ndim <= dim < v.ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-v.ndim}, {v.ndim - 1}], "
                         f"but got {dim})")
    dim = dim % v.ndim
    return v.norm(dim=tuple(d for d in range(v.ndim) if d != dim), keepdim=True)


def _weight_norm(v, g, dim):
    """g * v / ||v||, the norm taken as norm_except_dim(v, dim) (torch._weight_norm)."""
    return v * (g / norm_except_dim(v, dim))


class WeightNorm:
    """The forward pre-hook that recomputes `name` from `name_g` and `name_v`."""

    def __init__(self, name, dim):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module):
        return _weight_norm(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"), self.dim)

    @staticmethod
    def apply(module, name, dim):
        warnings.warn("`torch.nn.utils.weight_norm` is deprecated in favor of "
                      "`torch.nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=3)
        if any(isinstance(hook.fn, WeightNorm) and hook.fn.name == name for hook in module._forward_pre_hooks):
            raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
        fn = WeightNorm(name, dim)
        weight = getattr(module, name)
        if not isinstance(module._parameters.get(name), Parameter):
            raise KeyError(f"weight_norm: name={name!r} is not a parameter of {type(module).__name__}")
        with no_grad():
            g = Parameter(norm_except_dim(weight, fn.dim))   # before any change: a bad dim raises here
        del module._parameters[name]
        module.register_parameter(name + "_g", g)
        module.register_parameter(name + "_v", Parameter(weight.detach()))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module):
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.detach()))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module, name="weight", dim=0):
    """Replace parameter `name` by `name_g` (its norm over every dimension but `dim`, or over the whole
    tensor when dim is None) and `name_v` (its direction), recombined before every forward. Deprecated in
    torch in favour of parametrizations.weight_norm, with the same FutureWarning here."""
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module, name="weight"):
    """Undo weight_norm: `name` becomes a plain parameter again, holding the weight g and v give now."""
    for hook in module._forward_pre_hooks:
        if isinstance(hook.fn, WeightNorm) and hook.fn.name == name:
            hook.fn.remove(module)
            module._forward_pre_hooks.remove(hook)
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {module}")
