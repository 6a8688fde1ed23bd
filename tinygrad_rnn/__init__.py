"""tinygrad_rnn: a small autodiff engine over NumPy and CuPy for recurrent networks."""
from . import autograd, backends, cuda, diagnostics, dtypes, func, linalg, nn, optim, special, train, utils
from . import runtime as _runtime
from . import torch_functional as _torch_functional
from .backend import Device, DeviceError, cuda_available
from .checkpoint import load, save
from .dtypes import (
    double,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    int8,
    int16,
    int32,
    int64,
    long,
    set_default_dtype,
    short,
    uint8,
)
from .factory import LEGACY_TENSOR_TYPES as _LEGACY_TENSOR_TYPES
from .factory import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    manual_seed,
    multinomial,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    uniform,
    zeros,
    zeros_like,
)
from .functions import FUNCTIONS as _FUNCTIONS
from .functions import bucketize, einsum, is_tensor, isin, polygamma, searchsorted, std_mean, var_mean
from .generator import Generator, default_generator, get_rng_state, initial_seed, seed, set_rng_state
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .sampling import FUNCTIONS as _SAMPLING
from .shape_extras import FUNCTIONS as _SHAPES
from .tensor import (
    Function,
    Tensor,
    cat,
    concat,
    concatenate,
    current_scope,
    enable_grad,
    is_grad_enabled,
    no_grad,
    retain_grads,
    scope,
    set_grad_enabled,
    stack,
    using_config,
    where,
)

globals().update(_SHAPES)  # tr.broadcast_shapes, tr.meshgrid, tr.tensordot, ... (shape_extras.py)
globals().update(_SAMPLING)  # tr.normal, tr.bernoulli, tr.poisson, tr.randint_like (sampling.py)
globals().update(_FUNCTIONS)  # tr.tanh(x), tr.sum(x, dim), ...: each is the Tensor method of that name
globals().update(_LEGACY_TENSOR_TYPES)  # tr.FloatTensor([1.0]), tr.LongTensor(2, 3), ...
for _module in (_runtime, _torch_functional):  # torch's runtime settings; torch.dropout, torch.hann_window ...
    globals().update({_name: getattr(_module, _name) for _name in _module.__all__})

__version__ = "0.1.0"

device = Device  # torch.device
# torch.float, torch.int and torch.bool; they stay out of __all__, so `from tinygrad_rnn import *`
# leaves Python's builtins alone
float, int, bool = dtypes.float, dtypes.int, dtypes.bool

__all__ = [
    "Device",
    "DeviceError",
    "Function",
    "Generator",
    "GradcheckError",
    "Tensor",
    "arange",
    "as_tensor",
    "autograd",
    "backends",
    "cat",
    "concat",
    "concatenate",
    "cuda",
    "cuda_available",
    "current_scope",
    "default_generator",
    "device",
    "diagnostics",
    "double",
    "dtypes",
    "einsum",
    "empty",
    "empty_like",
    "enable_grad",
    "eye",
    "float16",
    "float32",
    "float64",
    "from_numpy",
    "full",
    "full_like",
    "func",
    "get_default_dtype",
    "get_rng_state",
    "gradcheck",
    "gradgradcheck",
    "half",
    "initial_seed",
    "int8",
    "int16",
    "int32",
    "int64",
    "is_grad_enabled",
    "is_tensor",
    "linalg",
    "linspace",
    "load",
    "long",
    "manual_seed",
    "multinomial",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "randperm",
    "retain_grads",
    "save",
    "scope",
    "seed",
    "set_default_dtype",
    "set_grad_enabled",
    "set_rng_state",
    "short",
    "stack",
    "std_mean",
    "tensor",
    "train",
    "uint8",
    "uniform",
    "using_config",
    "utils",
    "var_mean",
    "where",
    "zeros",
    "zeros_like",
]
__all__ += ["bucketize", "isin", "polygamma", "searchsorted", "special"]
__all__ += list(_FUNCTIONS)  # the names of the function table
__all__ += list(_LEGACY_TENSOR_TYPES)
__all__ += _runtime.__all__ + _torch_functional.__all__
__all__ += list(_SHAPES) + list(_SAMPLING)
