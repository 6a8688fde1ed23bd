"""tinygrad_rnn: a small autodiff engine over NumPy and CuPy for recurrent networks."""
from . import autograd, diagnostics, func, nn, optim, train
from .backend import DeviceError, cuda_available
from .factory import arange, full, manual_seed, ones, ones_like, rand, randn, uniform, zeros, zeros_like
from .functions import FUNCTIONS as _FUNCTIONS
from .functions import einsum, is_tensor, matmul
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .tensor import (
    Function,
    Tensor,
    cat,
    current_scope,
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    retain_grads,
    scope,
    set_grad_enabled,
    stack,
    using_config,
    where,
)

globals().update(_FUNCTIONS)  # tr.tanh(x), tr.sum(x, dim), ...: each is the Tensor method of that name

__version__ = "0.1.0"

float32 = "float32"
float64 = "float64"

__all__ = [
    "DeviceError",
    "Function",
    "GradcheckError",
    "Tensor",
    "arange",
    "autograd",
    "cat",
    "cuda_available",
    "current_scope",
    "diagnostics",
    "einsum",
    "enable_grad",
    "float32",
    "float64",
    "full",
    "func",
    "gradcheck",
    "gradgradcheck",
    "inference_mode",
    "is_grad_enabled",
    "is_tensor",
    "manual_seed",
    "matmul",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "rand",
    "randn",
    "retain_grads",
    "scope",
    "set_grad_enabled",
    "stack",
    "train",
    "uniform",
    "using_config",
    "where",
    "zeros",
    "zeros_like",
]
__all__ += list(_FUNCTIONS)  # the names of the function table
