"""Spectral normalisation, torch.nn.utils.spectral_norm's old hook API: w = w_orig / sigma(w_orig) (Miyato
et al., https://arxiv.org/abs/1802.05957).

sigma, the largest singular value of the weight seen as a matrix (dim `dim` its rows), is estimated by
power iteration: `name_u` and `name_v` (buffers, drawn from N(0, 1) and normalised at registration, as
torch draws them) are updated in place by `n_power_iterations` steps before every forward in training
mode, none in eval, and sigma = u . (W v). The parameter `name` becomes `name_orig`; a forward pre-hook
sets `name` to w_orig / sigma as a plain tensor attribute. The parametrization form is in
parametrizations.spectral_norm.
"""
from ...tensor import no_grad
from .. import functional as F
from ..module import Parameter


def default_dim(module):
    """The weight's dim that indexes output features: 1 for a transposed convolution (its weight is
    (in, out, ...)), 0 otherwise, as torch."""
    transposed = tuple(cls for cls in type(module).__mro__ if cls.__name__.startswith("ConvTranspose"))
    return 1 if transposed else 0


def weight_matrix(weight, dim):
    """The weight as a matrix whose rows run along `dim`."""
    if dim != 0:
        weight = weight.permute(dim, *[d for d in range(weight.ndim) if d != dim])
    return weight.reshape(weight.shape[0], -1)


def random_unit_vectors(matrix, eps):
    """u (rows) and v (columns) drawn from N(0, 1) and normalised, u first, as torch draws them."""
    h, w = matrix.shape
    u = F.normalize(matrix.new_empty(h).normal_(0, 1), dim=0, eps=eps)
    return u, F.normalize(matrix.new_empty(w).normal_(0, 1), dim=0, eps=eps)


def check_iterations(n_power_iterations):
    if n_power_iterations <= 0:
        raise ValueError("Expected n_power_iterations to be positive, but got "
                         f"n_power_iterations={n_power_iterations}")
    return n_power_iterations


class SpectralNorm:
    """The forward pre-hook that sets `name` to `name_orig` / sigma."""
    _version = 1

    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        self.name = name
        self.dim = dim
        self.n_power_iterations = check_iterations(n_power_iterations)
        self.eps = eps

    def reshape_weight_to_matrix(self, weight):
        return weight_matrix(weight, self.dim)

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        matrix = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():   # u and v change in place, so that replicas of the module share them (torch)
                for _ in range(self.n_power_iterations):
                    v.copy_(F.normalize(matrix.t().mv(u), dim=0, eps=self.eps))
                    u.copy_(F.normalize(matrix.mv(v), dim=0, eps=self.eps))
                # copies, so a graph built on them survives the next forward's update
                u, v = u.clone(), v.clone()
        return weight / u.dot(matrix.mv(v))

    def remove(self, module):
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        for suffix in ("", "_u", "_v", "_orig"):
            delattr(module, self.name + suffix)
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    @staticmethod
    def apply(module, name, n_power_iterations, dim, eps):
        if any(isinstance(hook.fn, SpectralNorm) and hook.fn.name == name for hook in module._forward_pre_hooks):
            raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters[name]
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        with no_grad():
            u, v = random_unit_vectors(fn.reshape_weight_to_matrix(weight), fn.eps)
        del module._parameters[name]
        module.register_parameter(name + "_orig", weight)
        setattr(module, name, weight.detach())   # a plain attribute until the first forward, as torch's weight.data
        module.register_buffer(name + "_u", u)
        module.register_buffer(name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Divide parameter `name` by its largest singular value, estimated by power iteration before
    every training forward: `name_orig` is the parameter, `name_u` and `name_v` the buffers."""
    SpectralNorm.apply(module, name, n_power_iterations, default_dim(module) if dim is None else dim, eps)
    return module


def remove_spectral_norm(module, name="weight"):
    """Undo spectral_norm: `name` becomes a plain parameter again, holding the normalised weight now."""
    for hook in module._forward_pre_hooks:
        if isinstance(hook.fn, SpectralNorm) and hook.fn.name == name:
            hook.fn.remove(module)
            module._forward_pre_hooks.remove(hook)
            return module
    raise ValueError(f"spectral_norm of '{name}' not found in {module}")
