"""Initialisers that fill a tensor in place, as torch.nn.init does.

Values are drawn on the host from `tr.default_generator` (or `generator=`), in the tensor's dtype as
torch draws them, and then copied to the tensor's device, so `tr.manual_seed(s)` gives torch's weights,
the same on the CPU and on the GPU. Recurrent weights stack one
block of rows per gate (LSTM i,f,g,o; GRU r,z,n); `per_gate` applies an initialiser to each block.
"""
import math
import numbers
import warnings

import numpy as np

from .. import backend, draws, factory
from ..tensor import Tensor, no_grad
from .module import Parameter


def parameter(*shape, dtype=None, device=None):
    """A zero-filled Parameter (float32 unless dtype says otherwise) for an initialiser to fill."""
    return Parameter(factory.zeros(*shape, dtype=dtype, device=device))


def zeros_like_state(batch, size, like):
    """Zeros (batch, size) with the dtype and device of `like` (an initial state)."""
    return factory.zeros(batch, size, dtype=like.dtype, device=like.device)


def _checked(tensor):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"argument 'tensor' must be a Tensor, not {type(tensor).__name__}")
    return tensor


def _fill(tensor, values):
    """Write host values into the tensor in place under no_grad, as torch's initialisers (parameters keep
    their identity; the version counter moves on)."""
    _checked(tensor)
    with no_grad():
        tensor.copy_(backend.to_device(np.asarray(values, dtype=tensor.dtype), tensor.device))
    return tensor


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """U(a, b), in place."""
    if not a <= b:
        raise ValueError(f"uniform_: expects to return a [from, to) range, but found from={a} > to={b}")
    source, tensor = factory.generator_for(generator, "uniform_"), _checked(tensor)
    return _fill(tensor, draws.uniform(source, tensor.shape, tensor.dtype, a, b))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """N(mean, std^2), in place."""
    if not std >= 0:
        raise ValueError(f"normal_: expects std >= 0.0, but found std {std}")
    source, tensor = factory.generator_for(generator, "normal_"), _checked(tensor)
    return _fill(tensor, draws.normal(source, tensor.shape, tensor.dtype, mean, std))


def constant_(tensor, value):
    return _fill(tensor, np.full(tensor.shape, value))


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


# torch.nn.init.calculate_gain's table: the gain that keeps activations' variance through the nonlinearity
GAINS = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0, "conv_transpose1d": 1.0,
         "conv_transpose2d": 1.0, "conv_transpose3d": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3,
         "relu": math.sqrt(2.0), "selu": 3.0 / 4}


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity; leaky_relu's `param` is its negative slope (0.01 by default)."""
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in GAINS:
        raise ValueError(f"Unsupported nonlinearity {nonlinearity}")
    return GAINS[nonlinearity]


def _calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out): dim 1 and dim 0 times the receptive field (the product of the dims after them)."""
    if tensor.ndim < 2:
        raise ValueError(f"Fan in and fan out can not be computed for tensor with fewer than 2 dimensions "
                         f"(shape {tensor.shape})")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * (gain * math.sqrt(2.0 / float(fan_in + fan_out)))  # torch's rounding: std first
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity, name):
    """gain / sqrt(fan), or None for a tensor with a zero-size dim (torch warns and leaves it)."""
    if 0 in tensor.shape:
        warnings.warn(f"{name}: initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    return calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-bound, bound), bound = gain * sqrt(3 / fan) (He et al. 2015); `a` is leaky_relu's negative slope."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    return tensor if std is None else uniform_(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std^2), std = gain / sqrt(fan)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_")
    return tensor if std is None else normal_(tensor, 0.0, std, generator)


def _matrix_shape(tensor, name):
    if tensor.ndim < 2:
        raise ValueError(f"{name}: needs a tensor of at least 2 dims; got shape {tensor.shape}")
    return tensor.shape[0], int(np.prod(tensor.shape[1:]))


def orthogonal_(tensor, gain=1.0, generator=None):
    """A (semi-)orthogonal matrix (Saxe et al. 2014): orthonormal rows or columns, whichever fit."""
    rows, cols = _matrix_shape(tensor, "orthogonal_")
    flat = draws.normal(factory.generator_for(generator, "orthogonal_"), (rows, cols), tensor.dtype)
    flat = flat.astype(np.float64)
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))  # makes the draw uniform over orthogonal matrices
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))


def eye_(tensor, gain=1.0):
    """The identity (ones on the main diagonal of a 2-D tensor), scaled by gain."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: needs a 2-D tensor; got shape {tensor.shape}")
    return _fill(tensor, gain * np.eye(*tensor.shape))


def per_gate(init, weight, n_gates, **options):
    """Apply `init` to each of the n_gates row blocks of a stacked gate weight (or bias)."""
    if weight.shape[0] % n_gates:
        raise ValueError(f"per_gate: {weight.shape[0]} rows do not split into {n_gates} gates")
    block = weight.shape[0] // n_gates
    for k in range(n_gates):
        init(Tensor._make(weight.array[k * block:(k + 1) * block], None), **options)  # a view
    return weight


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """N(mean, std^2) truncated to [a, b], in place, drawn as torch's: where [a, b] holds more than 0.3 of
    the mass, normals with every value outside redrawn (a whole tensor drawn each round); else uniform
    proposals on [a, b], each accepted with the normal's density relative to its peak in [a, b]."""
    _checked(tensor)
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The distribution of values "
                      "may be incorrect.", stacklevel=2)
    mass = _normal_cdf((b - mean) / std) - _normal_cdf((a - mean) / std)
    source = factory.generator_for(generator, "trunc_normal_")
    if mass > 0.3:
        return _fill(tensor, _normals_redrawn(source, tensor.shape, tensor.dtype, mean, std, a, b))
    if not a <= b:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}")
    return _fill(tensor, _uniforms_accepted(source, tensor.shape, tensor.dtype, mean, std, a, b))


def _normal_cdf(x):
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def _normals_redrawn(source, shape, dtype, mean, std, a, b):
    low, high = np.dtype(dtype).type(a), np.dtype(dtype).type(b)  # the bounds as the tensor holds them
    values = draws.normal(source, shape, dtype, mean, std)
    outside = (values < low) | (values > high)
    while outside.any():
        values = np.where(outside, draws.normal(source, shape, dtype, mean, std), values)
        outside = (values < low) | (values > high)
    return values


def _uniforms_accepted(source, shape, dtype, mean, std, a, b):
    """torch's rejection sampler, in the tensor's dtype op by op: log(u) > log_pdf(x) - log_pdf(peak) rejects x."""
    scalar = np.dtype(dtype).type
    mode = max(a, min(mean, b))
    log_peak = -0.5 * ((mode - mean) / std) ** 2
    values, pending = None, None
    while pending is None or pending.any():
        proposed = draws.uniform(source, shape, dtype, a, b)
        log_pdf = ((proposed - scalar(mean)) / scalar(std)) ** 2 * scalar(-0.5) - scalar(log_peak)
        with np.errstate(divide="ignore"):
            rejected = np.log(draws.uniform(source, shape, dtype)) > log_pdf
        values = proposed if values is None else np.where(pending, proposed, values)
        pending = rejected if pending is None else pending & rejected
    return values


def dirac_(tensor, groups=1):
    """The Dirac delta of a 3-, 4- or 5-D conv weight: in each of `groups` blocks of output channels,
    channel d passes input channel d through at the kernel's centre (zeros elsewhere)."""
    _checked(tensor)
    if tensor.ndim not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if tensor.shape[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    per_group = tensor.shape[0] // groups
    kept = np.arange(min(per_group, tensor.shape[1]))
    outputs = (np.arange(groups)[:, None] * per_group + kept).ravel()
    centre = tuple(size // 2 for size in tensor.shape[2:])
    values = np.zeros(tensor.shape)
    values[(outputs, np.tile(kept, groups)) + centre] = 1
    return _fill(tensor, values)


def sparse_(tensor, sparsity, std=0.01, generator=None):
    """A 2-D tensor of N(0, std^2) values with ceil(sparsity * rows) zeros in each column (Martens 2010), as
    torch's: the normals from `generator`, each column's zero rows from a randperm of the default generator."""
    _checked(tensor)
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = tensor.shape
    zeros = math.ceil(sparsity * rows)
    values = draws.normal(factory.generator_for(generator, "sparse_"), tensor.shape, tensor.dtype, 0.0, std)
    for col in range(cols):
        values[factory.randperm(rows).numpy()[:zeros], col] = 0
    return _fill(tensor, values)
