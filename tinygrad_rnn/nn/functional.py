"""Functions composed from primitives, as torch.nn.functional: activations, softmax, losses, dropout.

Each is written in Tensor ops, so gradients (and gradients of gradients) come from the primitives'.
One exception: cross-entropy over class indices, the loss of every training step, runs as one node
(`CrossEntropy`: log-softmax and NLL together, its VJP one pass over the logits) whose gradient is
still differentiable. Names, arguments and reductions follow PyTorch, including the deprecated
`size_average` / `reduce` pair of the losses.
"""
import math
import numbers
import warnings

import numpy as np

from .. import backend, draws
from ..factory import generator_for
from ..methods import check_dim
from ..ops import Clip, Compare, DetachedMax, where_tensor
from ..tensor import Function, Tensor, cat, forward_mode_active, index_used
from .checks import InputError
from .conv import conv1d, conv2d, conv3d  # noqa: F401 (F.conv1d and the pooling functions below are defined there)
from .ctc import ctc_loss  # noqa: F401 (F.ctc_loss)
from .pooling import (  # noqa: F401
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    adaptive_max_pool1d,
    adaptive_max_pool1d_with_indices,
    adaptive_max_pool2d,
    adaptive_max_pool2d_with_indices,
    adaptive_max_pool3d,
    adaptive_max_pool3d_with_indices,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    max_pool1d,
    max_pool1d_with_indices,
    max_pool2d,
    max_pool2d_with_indices,
    max_pool3d,
    max_pool3d_with_indices,
)

REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------- activations

def relu(input, inplace=False):
    """max(0, x). `inplace` is accepted for torch's signature; the result is always a new tensor."""
    return input.relu()


def tanh(input):
    return input.tanh()


def sigmoid(input):
    return input.sigmoid()


def _activation_input(name, input):
    """An activation's input: a floating tensor (torch refuses integer input to all of these)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: argument 'input' must be a Tensor, not {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: only floating point input is supported (use .float()); got {input.dtype}")
    return input


def _number(name, argument, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: argument '{argument}' must be a number, not {type(value).__name__}")
    return float(value)


# Written with relu and clamp, whose masks the step compiler recomputes each step, so these compile in a
# recurrent cell's step; each is exact against torch, forward and gradient, the kink included.

def elu(input, alpha=1.0, inplace=False):
    """x where x > 0, alpha * (exp(x) - 1) elsewhere (gradient alpha at 0, as torch)."""
    x = _activation_input("elu", input)
    alpha = _number("elu", "alpha", alpha)
    return x.relu() + x.clamp(max=0).expm1() * alpha


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, negative_slope * x elsewhere (gradient negative_slope at 0, as torch)."""
    x = _activation_input("leaky_relu", input)
    negative_slope = _number("leaky_relu", "negative_slope", negative_slope)
    return x.relu() + x.clamp(max=0) * negative_slope


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """x clamped to [min_val, max_val]; the gradient is 0 on the bounds themselves, as torch's."""
    x = _activation_input("hardtanh", input)
    low, high = _number("hardtanh", "min_val", min_val), _number("hardtanh", "max_val", max_val)
    if low > high:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return Clip.apply(x, low=low, high=high, strict=True)


def silu(input, inplace=False):
    """x * sigmoid(x) (swish)."""
    x = _activation_input("silu", input)
    return x * x.sigmoid()


def logsigmoid(input):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)): no overflow either way."""
    x = _activation_input("logsigmoid", input)
    negative = x.clamp(max=0)
    return negative - (negative - x.relu()).exp().log1p()


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold, as torch."""
    x = _activation_input("softplus", input)
    beta, threshold = _number("softplus", "beta", beta), _number("softplus", "threshold", threshold)
    scaled = x * beta
    # clamped below the threshold: the branch where() drops never overflows, so its gradient is 0, not NaN
    smooth = scaled.clamp(max=threshold).exp().log1p()
    above = Compare.apply(scaled, op="gt", other=threshold)   # an op: a traced step computes it too
    return where_tensor(above.array, x, smooth / beta if beta != 1 else smooth)


def relu6(input, inplace=False):
    """min(max(x, 0), 6): hardtanh on [0, 6], as torch's."""
    return hardtanh(input, 0.0, 6.0)


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def selu(input, inplace=False):
    """scale * elu(x, alpha) with the self-normalising constants (Klambauer et al. 2017)."""
    return elu(input, SELU_ALPHA) * SELU_SCALE


def celu(input, alpha=1.0, inplace=False):
    """x where x > 0, alpha * (exp(x / alpha) - 1) elsewhere (gradient 1 at 0, as torch)."""
    x = _activation_input("celu", input)
    alpha = _number("celu", "alpha", alpha)
    if alpha == 0:
        raise ValueError("celu: ZeroDivisionError, alpha cannot be 0")
    return x.relu() + (x.clamp(max=0) / alpha).expm1() * alpha


def mish(input, inplace=False):
    """x * tanh(softplus(x)) (Misra 2019)."""
    x = _activation_input("mish", input)
    return x * softplus(x).tanh()


def softsign(input):
    """x / (1 + |x|)."""
    x = _activation_input("softsign", input)
    return x / (x.abs() + 1)


def tanhshrink(input):
    """x - tanh(x)."""
    x = _activation_input("tanhshrink", input)
    return x - x.tanh()


def hardsigmoid(input, inplace=False):
    """min(max(x + 3, 0), 6) / 6; the gradient is 0 at -3 and 3 themselves, as torch's."""
    x = _activation_input("hardsigmoid", input)
    return Clip.apply(x + 3, low=0.0, high=6.0, strict=True) / 6


def hardswish(input, inplace=False):
    """x * min(max(x + 3, 0), 6) / 6 (Howard et al. 2019); at -3 and 3 the gradient is the outer
    pieces' (0 and 1), as torch's."""
    x = _activation_input("hardswish", input)
    return x * Clip.apply(x + 3, low=0.0, high=6.0, strict=True) / 6


def glu(input, dim=-1):
    """a * sigmoid(b), a and b the two halves of the input along dim (Dauphin et al. 2017)."""
    x = _activation_input("glu", input)
    if x.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    dim = check_dim("glu", dim, x.ndim)
    if x.shape[dim] % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim} is size {x.shape[dim]}")
    a, b = x.chunk(2, dim)
    return a * b.sigmoid()


def threshold(input, threshold, value, inplace=False):
    """x where x > threshold, `value` elsewhere (gradient 0 there and at the threshold, as torch's)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"threshold: argument 'input' must be a Tensor, not {type(input).__name__}")
    threshold, value = _number("threshold", "threshold", threshold), _number("threshold", "value", value)
    above = Compare.apply(input, op="gt", other=threshold)   # an op: a traced step computes it too
    if input.dtype.kind != "f":   # the value in the input's dtype: an integer tensor stays one, as torch's
        value = Tensor._make(input.xp.asarray(value).astype(input.dtype), None)
    return where_tensor(above.array, input, value)


def prelu(input, weight):
    """x where x > 0, weight * x elsewhere; weight has one element, or one per channel (dim 1; an input of
    fewer dims has one channel)."""
    x = _activation_input("prelu", input)
    if not isinstance(weight, Tensor):
        raise TypeError(f"prelu: argument 'weight' must be a Tensor, not {type(weight).__name__}")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if weight.ndim > 1 or weight.numel() not in (1, channels):
        raise InputError(f"prelu: mismatch of parameter numbers and input channel size: weight of shape "
                         f"{weight.shape} for input of shape {x.shape} ({channels} channels)")
    if weight.numel() > 1 and x.ndim >= 2:
        weight = weight.reshape((channels,) + (1,) * (x.ndim - 2))
    elif weight.numel() == 1:
        weight = weight.reshape(())
    return x.relu() + x.clamp(max=0) * weight


def hardshrink(input, lambd=0.5):
    """x where |x| > lambd, 0 elsewhere (value and gradient 0 at +-lambd, NaN kept, as torch's)."""
    x = _activation_input("hardshrink", input)
    lambd = _number("hardshrink", "lambd", lambd)
    inside = Compare.apply(x, op="ge", other=-lambd).array & Compare.apply(x, op="le", other=lambd).array
    return where_tensor(inside, 0.0, x)


def softshrink(input, lambd=0.5):
    """x - lambd where x > lambd, x + lambd where x < -lambd, 0 between (gradient 0 at +-lambd, as torch's)."""
    x = _activation_input("softshrink", input)
    lambd = _number("softshrink", "lambd", lambd)
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    return x - x.clamp(-lambd, lambd)   # clamp's gradient is 1 on its bounds: the difference's is 0 there


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """x where x > 0, a * x elsewhere: a drawn from U(lower, upper) for each element while training (from
    the default tr.Generator; not torch's numbers), the fixed (lower + upper) / 2 otherwise."""
    x = _activation_input("rrelu", input)
    lower, upper = _number("rrelu", "lower", lower), _number("rrelu", "upper", upper)
    if lower > upper:
        raise ValueError(f"rrelu: lower bound ({lower}) must be at most the upper bound ({upper})")
    if not training:
        return leaky_relu(x, (lower + upper) / 2)
    slopes = draws.uniform(generator_for(None, "rrelu"), x.shape, x.dtype, lower, upper)
    positive = Compare.apply(x, op="gt", other=0.0).array
    return where_tensor(positive, x, x * Tensor._make(backend.to_device(slopes, x.device), None))


def _written_in_place(function):
    """torch's F.<name>_: function's result written into the input, recorded as the in-place methods are."""
    name = f"{function.__name__}_"

    def in_place(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: argument 'input' must be a Tensor, not {type(input).__name__}")
        return input._update(name, lambda x, _: function(x, *args, **kwargs), reads_old=True)
    in_place.__name__ = in_place.__qualname__ = name
    in_place.__doc__ = f"{function.__name__}, written into the input (as torch's F.{name})."
    return in_place


GELU_APPROXIMATIONS = ("none", "tanh")


def gelu(input, approximate="none"):
    """x * Phi(x), Phi the normal distribution's CDF: with erf ("none") or torch's tanh approximation."""
    x = _activation_input("gelu", input)
    if approximate not in GELU_APPROXIMATIONS:
        raise ValueError(f"gelu: approximate must be one of {GELU_APPROXIMATIONS}; got {approximate!r}")
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)
        return x * 0.5 * (inner.tanh() + 1)
    return x * 0.5 * ((x * math.sqrt(0.5)).erf() + 1)


def linear(input, weight, bias=None):
    """input @ weight.T + bias, as torch.nn.functional.linear: input (*, in_features), weight
    (out_features, in_features) or (in_features,), bias (out_features,) or None."""
    for argument, value in (("input", input), ("weight", weight)) + ((("bias", bias),) if bias is not None else ()):
        if not isinstance(value, Tensor):
            raise TypeError(f"linear: argument '{argument}' must be a Tensor, not {type(value).__name__}")
    if weight.ndim not in (1, 2):
        raise ValueError(f"linear: weight must have 1 or 2 dims, (out_features, in_features) or (in_features,); "
                         f"got shape {weight.shape}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input's last dim must equal weight's in_features: input {input.shape}, weight "
                         f"{weight.shape}")
    dtypes = {t.dtype for t in (input, weight, bias) if t is not None}
    if len(dtypes) > 1:
        raise TypeError(f"linear: input, weight and bias must have the same dtype; got input {input.dtype}, "
                        f"weight {weight.dtype}" + (f", bias {bias.dtype}" if bias is not None else ""))
    out_shape = input.shape[:-1] + weight.shape[:-1]
    if bias is not None and not _broadcasts_to(bias.shape, out_shape):
        raise ValueError(f"linear: bias of shape {bias.shape} does not broadcast to the output's {out_shape} "
                         f"(input {input.shape}, weight {weight.shape})")
    # one 2-D product, not a batch (rows counted, not inferred: -1 is ambiguous for an empty input)
    flat = input.reshape(math.prod(input.shape[:-1]), input.shape[-1]) if input.ndim > 2 else input
    y = flat @ (weight.T if weight.ndim == 2 else weight)
    if input.ndim > 2:
        y = y.reshape(out_shape)
    return y if bias is None else y + bias


def _broadcasts_to(shape, target):
    try:
        return np.broadcast_shapes(shape, target) == tuple(target)
    except ValueError:
        return False


def _softmax_dim(name, input, dim, stacklevel):
    """The dim, checked; torch's legacy choice when none is given (with its warning): 0 for 0-, 1- and
    3-D input, else 1. Only floating point input has a softmax."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include "
                      f"dim=X as an argument.", stacklevel=stacklevel)
        dim = 0 if input.ndim in (0, 1, 3) else 1
    dim = check_dim(name, dim, input.ndim)
    return None if input.ndim == 0 else dim


def _floating_input(name, input, dtype):
    x = input if dtype is None else input.to(dtype=dtype)
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: only floating point input is supported (pass dtype= or use .float()); "
                        f"got {x.dtype}")
    return x


def _shifted(x, dim):
    """x minus its (constant) maximum along dim: exp never overflows, the gradient is unchanged. A row
    all -inf gives NaN, as torch's softmax does, and as quietly."""
    with backend.ieee_quiet(x.xp):
        return x - DetachedMax.apply(x, axis=dim)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(x) / sum(exp(x)) along dim; `dtype` casts the input first."""
    dim = _softmax_dim("softmax", input, dim, _stacklevel)
    x = _floating_input("softmax", input, dtype)
    e = _shifted(x, dim).exp()
    return e / e.sum(axis=dim, keepdims=True)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """x - log(sum(exp(x))) along dim, without overflow; `dtype` casts the input first."""
    dim = _softmax_dim("log_softmax", input, dim, _stacklevel)
    x = _floating_input("log_softmax", input, dtype)
    z = _shifted(x, dim)
    return z - z.exp().sum(axis=dim, keepdims=True).log()


def gumbel_softmax(logits, tau=1, hard=False, eps=1e-10, dim=-1):
    """softmax((logits + g) / tau) along dim, g Gumbel(0, 1) noise (-log of exponential draws from the
    default generator; not torch's numbers, which its exponential_ draws in a way not reproduced here).
    With hard, the one-hot of the argmax forward and the soft sample's gradient backward, as torch's."""
    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    x = _activation_input("gumbel_softmax", logits)
    uniform = draws.uniform(generator_for(None, "gumbel_softmax"), x.shape, x.dtype)
    exponential = -np.log1p(-uniform)
    gumbels = Tensor._make(backend.to_device(-np.log(exponential), x.device), None)
    y_soft = ((x + gumbels) / tau).softmax(dim)
    if not hard:
        return y_soft
    index = y_soft.argmax(dim, keepdim=True)
    y_hard = Tensor._make(x.xp.zeros(x.shape, dtype=x.dtype), None).scatter(dim, index, value=1.0)
    return y_hard - y_soft.detach() + y_soft


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """softmax(-x) along dim; `dtype` casts the input first."""
    dim = _softmax_dim("softmin", input, dim, _stacklevel)
    return softmax(-_floating_input("softmin", input, dtype), dim)


def bilinear(input1, input2, weight, bias=None):
    """input1^T weight[o] input2 + bias[o] for each output o: inputs (*, in1) and (*, in2), weight
    (out, in1, in2), as torch.nn.functional.bilinear."""
    from ..functions import einsum
    for name, x, size in (("input1", input1, weight.shape[1]), ("input2", input2, weight.shape[2])):
        if not isinstance(x, Tensor) or x.ndim < 1 or x.shape[-1] != size:
            raise InputError(f"bilinear: {name} of shape {getattr(x, 'shape', None)} must end in {size} "
                             f"(weight of shape {weight.shape})")
    if input1.shape[:-1] != input2.shape[:-1]:
        raise InputError(f"bilinear: input1 of shape {input1.shape} and input2 of shape {input2.shape} "
                         f"must have the same batch dims")
    y = einsum("...i,oij,...j->...o", input1, weight, input2)
    return y if bias is None else y + bias


# ----------------------------------------------------------------------------- similarities and distances

def _raised_to(x, eps):
    """max(x, eps) with x's own gradient (1) where it is raised: torch raises such values in place
    under no_grad, outside autograd."""
    small = Compare.apply(x, op="lt", other=eps).array
    return where_tensor(small, x - x.detach() + eps, x)


def _norm_at_least(x, dim, eps):
    """||x|| over dim (kept), raised to eps where smaller; the gradient is the norm's alone, as torch
    clamps it outside autograd."""
    return _raised_to(x.norm(2, dim=dim, keepdim=True), eps)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1 / max(||x1||, eps) * x2 / max(||x2||, eps)) over dim, the inputs broadcast together."""
    for name, x in (("x1", x1), ("x2", x2)):
        _activation_input("cosine_similarity", x)
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise InputError(f"cosine_similarity: x1 of shape {x1.shape} and x2 of shape {x2.shape} do not "
                         f"broadcast") from None
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    dim = check_dim("cosine_similarity", dim, len(shape))
    return ((x1 / _norm_at_least(x1, dim, eps)) * (x2 / _norm_at_least(x2, dim, eps))).sum(dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p over the last dim, as torch.nn.functional.pairwise_distance."""
    for x in (x1, x2):
        _activation_input("pairwise_distance", x)
    dim = max(x1.ndim, x2.ndim) - 1
    return (x1 - x2 + eps).norm(p, dim=max(dim, 0), keepdim=keepdim)


def pdist(input, p=2):
    """The p-norm distance between every pair of rows of (N, M): N * (N - 1) / 2 of them, row i's to each
    later row j in (i, j) order, as torch.nn.functional.pdist."""
    x = _activation_input("pdist", input)
    if x.ndim != 2:
        raise InputError(f"pdist only supports 2D tensors, got: {x.ndim}D")
    if p < 0:
        raise InputError("pdist only supports non-negative p values")
    first, second = (Tensor._make(x.xp.asarray(i.astype(np.int64)), None) for i in np.triu_indices(x.shape[0], 1))
    return (x.index_select(0, first) - x.index_select(0, second)).norm(p, dim=1)


# ----------------------------------------------------------------------------- losses: shared parts

def _reduction(size_average, reduce, reduction):
    """The reduction, from `reduction` or, when either is given, torch's legacy size_average/reduce."""
    if size_average is not None or reduce is not None:
        warnings.warn("size_average and reduce args will be deprecated, please use reduction='"
                      f"{_legacy_reduction(size_average, reduce)}' instead.", stacklevel=3)
        reduction = _legacy_reduction(size_average, reduce)
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")
    return reduction


def _legacy_reduction(size_average, reduce):
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else "mean" if size_average else "sum"


def _reduce(losses, reduction, denominator=None):
    """none: the losses; sum; mean: the sum over `denominator` (the number of losses by default)."""
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "sum":
        return total
    if not isinstance(denominator, Tensor):
        return total / (losses.numel() if denominator is None else denominator)
    # every row ignored: NaN as in torch, with gradient 0, not 0/0 (chosen on the device, never read)
    empty = denominator.array == 0
    return where_tensor(empty, float("nan"), total / where_tensor(empty, 1.0, denominator))


def _classes_last(x):
    """Class scores with classes on the last axis, one row per prediction: (N, C, d1, ...) -> (N*d1*..., C)."""
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim == 2:
        return x
    return x.permute(0, *range(2, x.ndim), 1).reshape(-1, x.shape[1])


def _check_scores(fn, input):
    """Class scores: a floating tensor with a class dim ((C,), (N, C) or (N, C, d1, ...))."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim == 0:
        raise ValueError(f"{fn}: input must have a class dim: (C,), (N, C) or (N, C, d1, ...); got a 0-d tensor")
    if input.dtype.kind != "f":
        raise TypeError(f"{fn}: input must hold floating point scores; got dtype {input.dtype}")


def _index_target(fn, input, target, what):
    """Class indices as a flat array (one per row of _classes_last(input)) and the losses' shape."""
    target = target.array if isinstance(target, Tensor) else input.xp.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{fn}: target must hold integer class indices; got dtype {target.dtype}")
    expected = () if input.ndim == 1 else input.shape[:1] + input.shape[2:]
    if input.ndim == 1 and target.shape == (1,):   # torch takes one class index in a (1,) target too
        target = target.reshape(())
    if input.ndim == 0 or target.shape != expected:
        layout = {1: "(C,) and target ()", 2: "(N, C) and target (N,)"}.get(
            input.ndim, "(N, C, d1, ...) and target (N, d1, ...)")
        raise ValueError(f"{fn}: expected {what} {layout}; got {input.shape} and {target.shape}")
    return target.reshape(-1), expected


def _class_weight(fn, weight, input):
    """A rescaling weight per class as a tensor of the input's dtype (None stays None)."""
    if weight is None:
        return None
    n_classes = input.shape[1 if input.ndim > 1 else 0]
    weight = weight if isinstance(weight, Tensor) else input._lift(np.asarray(weight))
    if weight.shape != (n_classes,):
        raise ValueError(f"{fn}: weight tensor should be defined either for all {n_classes} classes or no "
                         f"classes but got weight tensor of shape: {weight.shape}")
    return weight


def _kept_rows(fn, rows, target, ignore_index):
    """The target with ignored rows pointing at class 0, and the kept-row mask (arrays), range-checked."""
    xp = rows.xp
    keep = target != ignore_index
    safe_target = xp.where(keep, target, 0)
    n_classes = rows.shape[1]
    backend.check((safe_target < 0) | (safe_target >= n_classes), lambda: IndexError(
        f"{fn}: target values must lie in [0, {n_classes}) or equal ignore_index={ignore_index}; got min "
        f"{int(target.min())}, max {int(target.max())}"))
    return safe_target, keep


def _row_weights(fn, rows, target, weight, ignore_index):
    """For each row: the kept-row mask (a constant tensor) and its weight (weight[target] * mask)."""
    safe_target, keep = _kept_rows(fn, rows, target, ignore_index)
    mask = Tensor._make(keep.astype(rows.dtype), None)
    return safe_target, mask, (mask if weight is None else weight[safe_target] * mask)


def _nll(log_probs, target, weight, ignore_index, reduction, shape, fn):
    """-weight[y] * log p[y] per kept row; the mean divides by the kept rows' total weight, as torch."""
    safe_target, _, row_weight = _row_weights(fn, log_probs, target, weight, ignore_index)
    picked = log_probs[log_probs.xp.arange(len(safe_target)), safe_target]
    losses = -picked * row_weight
    if reduction == "none":
        return losses.reshape(shape)
    return _reduce(losses, reduction, row_weight.sum())


# ----------------------------------------------------------------------------- losses

def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log-likelihood of class indices: input (N, C), (C,) or (N, C, d1, ...) of log-probabilities,
    target (N,), () or (N, d1, ...); weight (C,) rescales each class; ignore_index rows count for nothing."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_scores("nll_loss", input)
    target, shape = _index_target("nll_loss", input, target, "log_probs")
    weight = _class_weight("nll_loss", weight, input)
    return _nll(_classes_last(input), target, weight, ignore_index, reduction, shape, "nll_loss")


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Cross-entropy from unnormalised logits, as torch.nn.functional.cross_entropy.

    input (N, C), (C,) or (N, C, d1, ...); target class indices (N,), () or (N, d1, ...), or class
    probabilities of the input's shape. label_smoothing=e mixes the target with the uniform
    distribution: (1 - e) * nll + e * (the mean over classes of -log p), ignored rows excluded.
    """
    reduction = _reduction(size_average, reduce, reduction)
    _check_scores("cross_entropy", input)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    weight = _class_weight("cross_entropy", weight, input)
    if _holds_probabilities(target):
        if ignore_index >= 0:  # a negative one can name no class: torch lets it pass
            raise ValueError(f"cross_entropy: ignore_index ({ignore_index}) is not supported for a target of "
                             f"class probabilities (a floating point target)")
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing)
    target, shape = _index_target("cross_entropy", input, target, "logits")
    rows = _classes_last(input)
    if not forward_mode_active() and (weight is None or not weight.requires_grad):
        return _fused_cross_entropy(rows, target, weight, ignore_index, reduction, label_smoothing, shape)
    # composed: tangents pushed forward op by op, or a weight that wants its own gradient
    log_probs = log_softmax(rows, dim=-1)
    loss = _nll(log_probs, target, weight, ignore_index, reduction, shape, "cross_entropy")
    if label_smoothing == 0:
        return loss
    _, mask, row_weight = _row_weights("cross_entropy", log_probs, target, weight, ignore_index)
    per_class = log_probs if weight is None else log_probs * weight
    smooth = -per_class.sum(axis=-1) * mask
    smooth = smooth.reshape(shape) if reduction == "none" else _reduce(smooth, reduction, row_weight.sum())
    n_classes = log_probs.shape[1]
    return loss * (1 - label_smoothing) + smooth * (label_smoothing / n_classes)


def _fused_cross_entropy(rows, target, weight, ignore_index, reduction, label_smoothing, shape):
    safe_target, keep = _kept_rows("cross_entropy", rows, target, ignore_index)
    keep = keep.astype(rows.dtype)
    class_weight = None if weight is None else weight.array.astype(rows.dtype, copy=False)
    row_weight = keep if class_weight is None else class_weight[safe_target] * keep
    losses = CrossEntropy.apply(rows, target=safe_target, keep=keep, row_weight=row_weight,
                                class_weight=class_weight, smoothing=float(label_smoothing), reduction=reduction)
    return losses.reshape(shape) if reduction == "none" else losses


class CrossEntropy(Function):
    """log-softmax and NLL of (N, C) logits and class indices in one node, with label smoothing.

    Row i's loss is (1 - e) w[y_i] (-log p_iy) + (e / C) sum_c w_c (-log p_ic), zero for ignored
    rows; the mean divides by the kept rows' total weight w[y_i], as torch does. Its gradient is
    one pass over the logits: s_i (a_i p_ic - b_ic) with a_i = sum_c b_ic and b the target
    distribution, (1 - e) w[y_i] at y_i plus (e / C) w_c everywhere, times s_i the row's share
    of the output gradient. The backward works on arrays; gradients of gradients take
    `differentiable_backward`, the same formula with p = softmax(logits) as recorded ops.
    """
    array_backward = True
    saves = (0,)  # the logits, for the differentiable backward only

    def forward(self, x, target, keep, row_weight, class_weight, smoothing, reduction):
        xp = backend.xp_of(x)
        n, n_classes = x.shape
        z = x - x.max(axis=1, keepdims=True)
        ones = xp.ones(n_classes, x.dtype)  # row sums as products: NumPy sums short rows one by one, 5x slower
        at_target = z[xp.arange(n), target]
        per_row = z @ (ones if class_weight is None else class_weight) if smoothing else None
        e = xp.exp(z, out=z)  # z is read no more: its memory becomes e's
        s = (e @ ones)[:, None]
        log_s = xp.log(s)[:, 0]
        losses = (log_s - at_target) * row_weight
        if smoothing:
            total_weight = n_classes if class_weight is None else class_weight.sum()
            losses = losses * (1 - smoothing) + (total_weight * log_s - per_row) * keep * (smoothing / n_classes)
        self.e, self.s, self.target, self.keep, self.row_weight = e, s, target, keep, row_weight
        self.class_weight, self.smoothing, self.reduction = class_weight, smoothing, reduction
        if reduction == "none":
            return losses
        total = losses.sum()
        if reduction == "sum":
            return total
        self.denominator = row_weight.sum()
        with np.errstate(invalid="ignore", divide="ignore"):  # every row ignored: NaN, as torch gives
            return total / self.denominator

    def _mean_divisor(self):
        """(the mean's denominator, or 1 where it is 0; 1, or 0 where it is 0), as arrays: every row
        ignored gives no row a gradient (none had a part in the NaN mean, as in torch), and nothing is
        read from a GPU to decide it."""
        xp = backend.xp_of(self.e)
        kept = self.denominator != 0
        return xp.where(kept, self.denominator, 1).astype(self.e.dtype), xp.asarray(kept, self.e.dtype)

    def _row_scale(self, g):
        """Each row's share of the output gradient: (N,) for reduction none, else a scalar."""
        if self.reduction != "mean":
            return g
        divisor, kept = self._mean_divisor()
        return g / divisor * kept

    def _target_mass(self):
        """a_i = sum_c b_ic: the total mass of row i's target distribution."""
        n_classes = self.e.shape[1]
        if not self.smoothing:
            return self.row_weight
        total_weight = n_classes if self.class_weight is None else self.class_weight.sum()
        return self.row_weight * (1 - self.smoothing) + self.keep * (total_weight * self.smoothing / n_classes)

    def backward(self, g):
        xp = backend.xp_of(g)
        n, n_classes = self.e.shape
        scale = xp.broadcast_to(self._row_scale(g), (n,))
        dx = self.e * ((scale * self._target_mass())[:, None] / self.s)
        dx[xp.arange(n), self.target] -= scale * self.row_weight * (1 - self.smoothing)
        if self.smoothing:
            spread = (scale * self.keep * (self.smoothing / n_classes))[:, None]
            dx -= spread if self.class_weight is None else spread * self.class_weight
        return (dx,)

    def differentiable_backward(self, g):
        xp = g.xp
        n, n_classes = self.e.shape
        b = xp.zeros((n, n_classes), self.e.dtype)
        b[xp.arange(n), self.target] = self.row_weight * (1 - self.smoothing)
        if self.smoothing:
            b += (self.keep * (self.smoothing / n_classes))[:, None] * (1 if self.class_weight is None
                                                                        else self.class_weight)
        scale = g
        if self.reduction == "mean":
            divisor, kept = self._mean_divisor()
            scale = g / Tensor._make(divisor, None) * Tensor._make(kept, None)
        if self.reduction == "none":
            scale = scale.reshape(n, 1)
        p = softmax(self.input(0), dim=1)
        a = Tensor._make(self._target_mass()[:, None], None)
        return ((p * a - Tensor._make(b, None)) * scale,)


def _holds_probabilities(target):
    dtype = target.dtype if hasattr(target, "dtype") else np.asarray(target).dtype
    return dtype.kind == "f"


def _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing):
    """-sum_c weight_c * target_c * log p_c per prediction; the mean divides by the number of predictions."""
    target = input._lift(target)
    if target.shape != input.shape:
        raise TypeError(f"cross_entropy: target must hold integer class indices, or class probabilities of the "
                        f"input's shape {input.shape}; got dtype {target.dtype} of shape {target.shape}")
    class_dim = 1 if input.ndim > 1 else 0
    n_classes = input.shape[class_dim]
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / n_classes
    terms = log_softmax(input, dim=class_dim) * target
    if weight is not None:
        terms = terms * weight.reshape(n_classes, *([1] * (input.ndim - class_dim - 1)))
    losses = -terms.sum(axis=class_dim)
    return _reduce(losses, reduction, input.numel() // n_classes)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error; `weight` (the input's shape) scales each term, and the mean divides by its sum."""
    reduction = _reduction(size_average, reduce, reduction)
    diff = input - _pointwise_pair("mse_loss", input, target)
    losses = diff * diff
    if weight is None:
        return _reduce(losses, reduction)
    weight = _elementwise_weight("mse_loss", weight, input)
    return _reduce(losses * weight, reduction, weight.sum())


def _elementwise_weight(fn, weight, input):
    """mse, l1 and huber losses take one weight per element, of the input's shape, as torch."""
    weight = weight if isinstance(weight, Tensor) else input._lift(weight)
    if weight.shape != input.shape:
        raise ValueError(f"{fn}: weights and input must have the same size; got weight {weight.shape} "
                         f"and input {input.shape}")
    return weight


def _pointwise_pair(fn, input, target):
    """input and target of one shape (a number or array target is lifted to the input's dtype)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(input).__name__}")
    target = target if isinstance(target, Tensor) else input._lift(target)
    if input.shape != target.shape:
        raise ValueError(f"{fn}: input {input.shape} and target {target.shape} must have the same shape")
    if input.dtype.kind != "f":
        raise TypeError(f"{fn}: input must be floating point; got {input.dtype}")
    return target


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """|input - target|, its gradient 0 where they are equal (as torch); `weight` scales each term."""
    reduction = _reduction(size_average, reduce, reduction)
    losses = (input - _pointwise_pair("l1_loss", input, target)).abs()
    if weight is None:
        return _reduce(losses, reduction)
    weight = _elementwise_weight("l1_loss", weight, input)
    return _reduce(losses * weight, reduction, weight.sum())  # the mean divides by the weights' sum, as mse's


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 * d**2 / beta where |d| < beta, |d| - 0.5 * beta elsewhere (d = input - target; beta 0: l1)."""
    reduction = _reduction(size_average, reduce, reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative; got {beta}")
    d = input - _pointwise_pair("smooth_l1_loss", input, target)
    if beta == 0:
        return _reduce(d.abs(), reduction)
    return _reduce(_quadratic_near_zero(d, beta, 0.5 / beta, 0.5 * beta, 1.0), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 * d**2 where |d| < delta, delta * (|d| - 0.5 * delta) elsewhere (d = input - target)."""
    reduction = _reduction(None, None, reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive; got {delta}")
    d = input - _pointwise_pair("huber_loss", input, target)
    losses = _quadratic_near_zero(d, delta, 0.5, 0.5 * delta * delta, delta)
    # torch's huber mean divides by the number of elements, not by the weights' sum as l1 and mse
    return _reduce(losses if weight is None else losses * _elementwise_weight("huber_loss", weight, input), reduction)


def _quadratic_near_zero(d, bound, curvature, offset, slope):
    """curvature * d**2 where |d| < bound, slope * |d| - offset elsewhere (each branch finite everywhere)."""
    size = d.abs()
    inside = Compare.apply(size, op="lt", other=bound).array
    return where_tensor(inside, d * d * curvature, size * slope - offset)


def _weighted(losses, weight, reduction, fn):
    if weight is None:
        return _reduce(losses, reduction)
    weight = weight if isinstance(weight, Tensor) else losses._lift(weight)
    if not _broadcasts_to(weight.shape, losses.shape):
        raise ValueError(f"{fn}: weight {weight.shape} does not broadcast to the input's shape {losses.shape}")
    return _reduce(losses * weight, reduction)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-(target * log(input) + (1 - target) * log(1 - input)), each log at least -100 (as torch); input in [0, 1]."""
    reduction = _reduction(size_average, reduce, reduction)
    target = _pointwise_pair("binary_cross_entropy", input, target)
    # "not inside [0, 1]" rather than "below 0 or above 1": a NaN is refused too, as torch refuses it
    backend.check(~((input.array >= 0) & (input.array <= 1)),
                  lambda: ValueError("binary_cross_entropy: all elements of input should be between 0 and 1 "
                                     "(probabilities; for logits use binary_cross_entropy_with_logits)"))
    backend.check(~((target.array >= 0) & (target.array <= 1)),
                  lambda: ValueError("binary_cross_entropy: all elements of target should be between 0 and 1"))
    return _weighted(BinaryCrossEntropy.apply(input, target), weight, reduction, "binary_cross_entropy")


class BinaryCrossEntropy(Function):
    """-(t log p + (1 - t) log(1 - p)) elementwise, each log at least -100, with torch's gradients:
    (p - t) / max(p (1 - p), eps) for p, finite and large where p is 0 or 1 (the clamped logs alone
    would give the clamped term nothing), and log(1 - p) - log(p) for t. eps is torch's 1e-12, a
    float32 constant there."""
    eps = float(np.float32(1e-12))
    saves = (0, 1)

    def forward(self, p, t):
        xp = backend.xp_of(p)
        with np.errstate(divide="ignore"):
            return -(t * xp.maximum(xp.log(p), -100) + (1 - t) * xp.maximum(xp.log1p(-p), -100))

    @classmethod
    def gradients(cls, g, p, t):
        """g times each slope, in torch's order of operations (t's slope is -logit(p))."""
        return g * (p - t) / ((1 - p) * p).clamp(min=cls.eps), g * -(p / (1 - p)).log()

    def backward(self, g):
        return self.gradients(g, self.input(0), self.input(1))

    def jvp(self, inputs, tangents):
        terms = [self.gradients(tangent, *inputs)[k] for k, tangent in enumerate(tangents) if tangent is not None]
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """binary_cross_entropy(sigmoid(input), target) without overflow; pos_weight (broadcast over the last
    dim, one per class) weighs the positive term."""
    reduction = _reduction(size_average, reduce, reduction)
    target = _pointwise_pair("binary_cross_entropy_with_logits", input, target)
    log_weight = 1
    if pos_weight is not None:
        pos_weight = pos_weight if isinstance(pos_weight, Tensor) else input._lift(pos_weight)
        if not _broadcasts_to(pos_weight.shape, input.shape):
            raise ValueError(f"binary_cross_entropy_with_logits: pos_weight {pos_weight.shape} does not broadcast "
                             f"to the input's shape {input.shape}")
        log_weight = (pos_weight - 1) * target + 1
    losses = (1 - target) * input - log_weight * logsigmoid(input)
    return _weighted(losses, weight, reduction, "binary_cross_entropy_with_logits")


KL_REDUCTIONS = REDUCTIONS + ("batchmean",)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL(target || exp(input)) pointwise: target * (log(target) - input), 0 where target is 0; with
    log_target, target holds log-probabilities. "batchmean" divides the sum by the batch size."""
    if reduction not in KL_REDUCTIONS:
        raise ValueError(f"kl_div: reduction must be one of {KL_REDUCTIONS}; got {reduction!r}")
    if reduction != "batchmean":
        reduction = _reduction(size_average, reduce, reduction)
        if reduction == "mean":
            warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                          "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                          "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                          stacklevel=2)
    target = _pointwise_pair("kl_div", input, target)
    if log_target:
        losses = target.exp() * (target - input)
    else:
        zero = Compare.apply(target, op="eq", other=0).array
        # log 1 = 0 where target is 0 (torch's xlogy); a negative target's log is NaN, as in torch
        log_target_values = where_tensor(zero, 1.0, target).log()
        losses = target * log_target_values - target * input
    if reduction == "batchmean":
        return losses.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(losses, reduction)


def _broadcast_shape(fn, **tensors):
    """The shape the named tensors broadcast to; an error naming them and their shapes otherwise."""
    try:
        return np.broadcast_shapes(*(t.shape for t in tensors.values()))
    except ValueError:
        shapes = ", ".join(f"{name} {tuple(t.shape)}" for name, t in tensors.items())
        raise InputError(f"{fn}: the shapes of {shapes} do not broadcast together") from None


def _loss_operands(fn, broadcast=True, **tensors):
    """The named operands as tensors (numbers and arrays lifted to the first one's dtype), checked to
    broadcast together unless told not to; the first must be a floating tensor."""
    first = next(iter(tensors.values()))
    _activation_input(fn, first)
    tensors = {name: t if isinstance(t, Tensor) else first._lift(t) for name, t in tensors.items()}
    if broadcast:
        _broadcast_shape(fn, **tensors)
    return tensors.values()


def _where(condition, x, otherwise=0.0):
    """x where `condition` (a bool tensor, computed by ops) holds, `otherwise` elsewhere; x is broadcast
    to the condition's shape first, so the mask never has to."""
    shape = np.broadcast_shapes(x.shape, condition.shape)
    condition = condition.array if condition.shape == shape else condition.xp.broadcast_to(condition.array, shape)
    return where_tensor(condition, x.expand(*shape) if x.shape != shape else x, otherwise)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """0.5 * (log(var) + (input - target)**2 / var), var raised to eps (its gradient untouched), plus
    0.5 * log(2 pi) when `full`. var has the input's shape, or one dim of size 1 where the input's is
    larger, or lacks the input's last dim; a float is one variance for all, as torch's."""
    reduction = _reduction(None, None, reduction)
    x = _activation_input("gaussian_nll_loss", input)
    if isinstance(var, float):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = Tensor._make(x.xp.full(x.shape, var, dtype=x.dtype), None)
    elif not isinstance(var, Tensor):
        raise TypeError(f"gaussian_nll_loss: argument 'var' must be a Tensor or a float, not {type(var).__name__}")
    else:
        backend.check(var.array < 0, lambda: ValueError("var has negative entry/entries"))
    if var.shape != x.shape:
        if x.shape[:-1] == var.shape:   # one variance per row: broadcast along the last dim
            var = var.unsqueeze(-1)
        elif not (x.ndim == var.ndim and sum(v for i, v in zip(x.shape, var.shape) if i != v) == 1):
            raise ValueError(f"var is of incorrect size: var of shape {var.shape} for input of shape {x.shape} "
                             f"(the same, one dim of size 1, or the input's shape without its last dim)")
    x, target, var = _loss_operands("gaussian_nll_loss", input=x, target=target, var=var)
    var = _raised_to(var, eps)
    losses = (var.log() + (x - target) ** 2 / var) * 0.5
    if full:
        losses = losses + 0.5 * math.log(2 * math.pi)
    return _reduce(losses, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    """exp(input) - target * input (input a log-rate), or input - target * log(input + eps) without
    log_input; `full` adds Stirling's approximation of log(target!) where target > 1."""
    reduction = _reduction(size_average, reduce, reduction)
    x, target = _loss_operands("poisson_nll_loss", input=input, target=target)
    losses = x.exp() - target * x if log_input else x - target * (x + eps).log()
    if full:
        above_one = Compare.apply(target, op="gt", other=1)
        safe = _where(above_one, target, 2.0)   # the term is dropped at or below 1, where its log may be -inf
        stirling = safe * safe.log() - safe + (safe * (2 * math.pi)).log() * 0.5
        losses = losses + _where(above_one, stirling)
    return _reduce(losses, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    """max(0, -target * (input1 - input2) + margin): input1 should rank above input2 where target is 1,
    below where it is -1."""
    reduction = _reduction(size_average, reduce, reduction)
    for name, value in (("input1", input1), ("input2", input2), ("target", target)):
        if not isinstance(value, Tensor):
            raise TypeError(f"margin_ranking_loss: argument '{name}' must be a Tensor, not {type(value).__name__}")
    if not input1.ndim == input2.ndim == target.ndim:
        raise InputError(f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
                         f"input1: {input1.shape}, input2: {input2.shape}, target: {target.shape}")
    input1, input2, target = _loss_operands("margin_ranking_loss", input1=input1, input2=input2, target=target)
    return _reduce((-target * (input1 - input2) + margin).clamp(min=0), reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + exp(-target * input)), the two-class logistic loss for targets of 1 and -1 (computed
    without overflow)."""
    reduction = _reduction(size_average, reduce, reduction)
    x, target = _loss_operands("soft_margin_loss", input=input, target=target)
    return _reduce(-logsigmoid(x * target), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    """input where target is 1, max(0, margin - input) where it is -1 (the sum of both elsewhere, as
    torch's); input is usually a distance."""
    reduction = _reduction(size_average, reduce, reduction)
    x, target = _loss_operands("hinge_embedding_loss", input=input, target=target)
    apart = _where(Compare.apply(target, op="ne", other=1), (margin - x).clamp(min=0))
    together = _where(Compare.apply(target, op="ne", other=-1), x)
    return _reduce(apart + together, reduction)


COSINE_EMBEDDING_EPSILON = 1e-12   # torch's, added to each squared norm


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    """1 - cos(input1, input2) where target is 1, max(0, cos - margin) where it is -1, 0 elsewhere; the
    cosine over the last dim, as torch computes it: x1.x2 / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))."""
    reduction = _reduction(size_average, reduce, reduction)
    input1, input2, target = _loss_operands("cosine_embedding_loss", False, input1=input1, input2=input2,
                                            target=target)
    if target.ndim > 1:
        raise InputError("0D or 1D target tensor expected, multi-target not supported")
    if not input1.ndim == input2.ndim == target.ndim + 1:
        raise InputError(f"{target.ndim}D target tensor expects {target.ndim + 1}D input tensors, but found "
                         f"inputs with sizes {list(input1.shape)} and {list(input2.shape)}.")
    dim = target.ndim
    _broadcast_shape("cosine_embedding_loss", input1=input1, input2=input2)
    products = (input1 * input2).sum(dim)
    _broadcast_shape("cosine_embedding_loss", cosine=products, target=target)
    squares1 = (input1 * input1).sum(dim) + COSINE_EMBEDDING_EPSILON
    squares2 = (input2 * input2).sum(dim) + COSINE_EMBEDDING_EPSILON
    cos = products / (squares1 * squares2).sqrt()
    alike = _where(Compare.apply(target, op="eq", other=1), 1 - cos)
    unlike = _where(Compare.apply(target, op="eq", other=-1), (cos - margin).clamp(min=0))
    return _reduce(alike + unlike, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """max(0, margin + d(anchor, positive) - d(anchor, negative)), d the pairwise p-distance over the last
    dim; with `swap`, d(anchor, negative) is the smaller of it and d(positive, negative) (Balntas et al. 2016)."""
    reduction = _reduction(size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    anchor, positive, negative = _loss_operands("triplet_margin_loss", False, anchor=anchor, positive=positive,
                                                negative=negative)
    _same_ndim(anchor, positive, negative)
    _broadcast_shape("triplet_margin_loss", anchor=anchor, positive=positive, negative=negative)
    to_positive = pairwise_distance(anchor, positive, p, eps)
    to_negative = pairwise_distance(anchor, negative, p, eps)
    if swap:
        to_negative = to_negative.minimum(pairwise_distance(positive, negative, p, eps))
    return _reduce((to_positive - to_negative + margin).clamp(min=0), reduction)


def _same_ndim(anchor, positive, negative):
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise InputError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                         f"dimensions, but got: anchor {anchor.ndim}D, positive {positive.ndim}D, and negative "
                         f"{negative.ndim}D inputs")


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0, swap=False,
                                      reduction="mean"):
    """max(0, margin + d(anchor, positive) - d(anchor, negative)) with any distance d (pairwise_distance by
    default) taking two tensors to one per sample; `swap` as in triplet_margin_loss."""
    reduction = _reduction(None, None, reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    _same_ndim(anchor, positive, negative)
    distance = pairwise_distance if distance_function is None else distance_function
    to_positive, to_negative = distance(anchor, positive), distance(anchor, negative)
    if swap:
        to_negative = to_negative.minimum(distance(positive, negative))
    return _reduce((to_positive + margin - to_negative).clamp(min=0), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """The mean over classes (the last dim) of each class's binary logistic loss, target 0 or 1 per class;
    `weight` scales each class."""
    reduction = _reduction(size_average, reduce, reduction)
    x, target = _loss_operands("multilabel_soft_margin_loss", input=input, target=target)
    losses = -(target * logsigmoid(x) + (1 - target) * logsigmoid(-x))
    if weight is not None:
        weight = weight if isinstance(weight, Tensor) else x._lift(weight)
        _broadcast_shape("multilabel_soft_margin_loss", losses=losses, weight=weight)
        losses = losses * weight
    class_dim = x.ndim - 1
    return _reduce(losses.sum(class_dim) / x.shape[class_dim], reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    """The multi-class hinge loss: sum over classes j != y of max(0, margin - x[y] + x[j])**p, times
    weight[y], over the number of classes; input (N, C), (C,) or (), target the class y of each row."""
    reduction = _reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and weight.ndim != 1:
        raise ValueError("weight must be one-dimensional")
    x, rows = _score_rows("multi_margin_loss", input)
    if not isinstance(target, Tensor) or target.dtype != np.int64:
        raise InputError(f"multi_margin_loss: target must be an int64 tensor of class indices; got "
                        f"{getattr(target, 'dtype', type(target).__name__)}")
    if target.ndim > 1 or target.numel() != rows.shape[0]:
        raise InputError(f"multi_margin_loss: target tensor should be 1-D with size equal to the number of input "
                         f"samples (batch size). Expected target size [{rows.shape[0]}], but got "
                         f"{list(target.shape)}. Input has shape {list(x.shape)}.")
    classes = rows.shape[1]
    if weight is not None and weight.numel() != classes:
        raise InputError(f"inconsistent weight size, expected {classes} but got {list(weight.shape)}")
    y = index_used(target, "multi_margin_loss").array.reshape(-1)
    if y.size:
        backend.check((y < 0) | (y >= classes), lambda: RuntimeError(
            f"multi_margin_loss: target out of range: classes span [0, {classes}) but target holds "
            f"[{int(y.min())}, {int(y.max())}]"))
    xp = rows.xp
    picked = rows[xp.arange(rows.shape[0]), y].reshape(-1, 1)
    others = Tensor._make((xp.arange(classes) != y[:, None]).astype(rows.dtype), None)
    hinge = (rows - picked + margin).clamp(min=0)
    terms = (hinge if p == 1 else hinge * hinge) * others
    losses = terms.sum(1) / classes
    if weight is not None:
        losses = losses * weight[y]
    return _reduce(losses.reshape(target.shape if x.ndim < 2 else (rows.shape[0],)), reduction)


def _score_rows(fn, input):
    """(input, its rows): scores (N, C), (C,) or () as a (N, C) matrix."""
    x = _activation_input(fn, input)
    if x.ndim > 2 or (x.ndim and x.shape[-1] == 0):
        raise InputError(f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
                         f"{list(x.shape)}")
    return x, x.reshape(-1 if x.ndim == 2 else 1, x.shape[-1] if x.ndim else 1)


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """The multi-label hinge loss: for each target class j (the entries of a target row before its first -1,
    a repeated one counted again) and each class i not among them, max(0, 1 - x[j] + x[i]), summed, over
    the number of classes; input (N, C), (C,) or (), target class indices of the same shape."""
    reduction = _reduction(size_average, reduce, reduction)
    x, rows = _score_rows("multilabel_margin_loss", input)
    if not isinstance(target, Tensor) or target.dtype != np.int64:
        raise InputError(f"multilabel_margin_loss: target must be an int64 tensor of class indices; got "
                         f"{getattr(target, 'dtype', type(target).__name__)}")
    if target.shape != x.shape:
        raise InputError(f"inconsistent target size: {list(target.shape)} for input of size: {list(x.shape)}")
    xp, (n, classes) = rows.xp, rows.shape
    y = index_used(target, "multilabel_margin_loss").array.reshape(n, classes)
    backend.check((y < -1) | (y >= classes), lambda: RuntimeError(
        f"multilabel_margin_loss: argument #2 'target' is out of range: classes span [0, {classes}) and -1 ends "
        f"a row's targets; target holds [{int(y.min())}, {int(y.max())}]"))
    listed = xp.cumprod(y != -1, axis=1).astype(bool)  # the entries before the first -1
    labels = xp.where(listed, y, 0)
    is_target = ((labels[:, :, None] == xp.arange(classes)) & listed[:, :, None]).any(axis=1)
    picked = rows[xp.arange(n)[:, None], labels]
    hinge = (1 - picked[:, :, None] + rows[:, None, :]).relu()  # the gradient at 0 is 0, as torch's
    counted = listed[:, :, None] & ~is_target[:, None, :]
    losses = where_tensor(counted, hinge, 0.0).sum((1, 2)) / classes
    return _reduce(losses.reshape(x.shape[:-1]), reduction)


# ----------------------------------------------------------------------------- regularisation

def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout).

    `inplace` is accepted for torch's signature; the result is always a new tensor.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be in [0, 1]; got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0.0
    keep = draws.bernoulli(generator_for(None, "dropout"), input.shape, 1 - p).astype(input.dtype)
    keep /= np.asarray(1 - p, dtype=input.dtype)  # torch's mask: bernoulli_(1 - p), divided by 1 - p
    return input * Tensor._make(backend.to_device(keep, input.device), None)


ALPHA_DROPOUT_ALPHA = 1.7580993408473766   # -SELU_SCALE * SELU_ALPHA, the value SELU saturates to


def _check_dropout_p(p):
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _dropout_noise(input, p, training, feature, alpha):
    """torch's _dropout_impl: input * mask (+ shift for alpha dropout). The mask, bernoulli_(1 - p) from the
    default tr.Generator as torch draws it, has input's shape, or (N, C, 1, ...) for feature dropout (whole
    channels). Alpha dropout sets dropped values to SELU's saturation and rescales to keep mean and variance."""
    _check_dropout_p(p)
    if not training or p == 0 or input.numel() == 0:
        return input
    if feature and input.ndim < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    if p == 1:
        return input * 0.0
    shape = input.shape[:2] + (1,) * (input.ndim - 2) if feature else input.shape
    noise = draws.bernoulli(generator_for(None, "dropout"), shape, 1 - p).astype(input.dtype)
    if not alpha:
        noise /= np.asarray(1 - p, dtype=input.dtype)
        return input * Tensor._make(backend.to_device(noise, input.device), None)
    a = 1.0 / math.sqrt((ALPHA_DROPOUT_ALPHA ** 2 * p + 1) * (1 - p))
    shift = (noise - 1) * np.asarray(ALPHA_DROPOUT_ALPHA * a, input.dtype) + np.asarray(ALPHA_DROPOUT_ALPHA * a * p,
                                                                                         input.dtype)
    noise *= np.asarray(a, input.dtype)
    return input * Tensor._make(backend.to_device(noise, input.device), None) + Tensor._make(
        backend.to_device(shift.astype(input.dtype), input.device), None)


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Whole channels of (N, C, L) or (C, L) zeroed with probability p, the rest scaled by 1/(1-p)."""
    _check_dropout_p(p)
    if not isinstance(input, Tensor) or input.ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {getattr(input, 'ndim', None)}D "
                           f"input. Note that dropout1d exists to provide channel-wise dropout on inputs with 1 "
                           f"spatial dimension, a channel dimension, and an optional batch dimension (i.e. 2D or "
                           f"3D inputs).")
    if input.ndim == 2:
        return _dropout_noise(input.unsqueeze(0), p, training, True, False).squeeze(0)
    return _dropout_noise(input, p, training, True, False)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Whole channels of (N, C, H, W) zeroed with probability p, the rest scaled by 1/(1-p). A 3-D input is
    (N, C, L), as torch reads it (with its warning)."""
    _check_dropout_p(p)
    if input.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated and will "
                      f"result in an error in a future release. To retain the behavior and silence this warning, "
                      f"please use dropout instead. Note that dropout2d exists to provide channel-wise dropout on "
                      f"inputs with 2 spatial dimensions, a channel dimension, and an optional batch dimension "
                      f"(i.e. 3D or 4D inputs).", stacklevel=2)
    if input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel dim. "
                      "This behavior will change in a future release to interpret the input as one without a "
                      "batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout behavior, "
                      "please switch to using dropout1d instead.", stacklevel=2)
    return _dropout_noise(input, p, training, True, False)


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Whole channels of (N, C, D, H, W) or (C, D, H, W) zeroed with probability p, the rest scaled by
    1/(1-p); any other input is read as unbatched, as torch reads it (with its warning)."""
    _check_dropout_p(p)
    if input.ndim not in (4, 5):
        warnings.warn(f"dropout3d: Received a {input.ndim}-D input to dropout3d, which is deprecated and will "
                      f"result in an error in a future release. To retain the behavior and silence this warning, "
                      f"please use dropout instead. Note that dropout3d exists to provide channel-wise dropout on "
                      f"inputs with 3 spatial dimensions, a channel dimension, and an optional batch dimension "
                      f"(i.e. 4D or 5D inputs).", stacklevel=2)
    if input.ndim != 5:
        return _dropout_noise(input.unsqueeze(0), p, training, True, False).squeeze(0)
    return _dropout_noise(input, p, training, True, False)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout for SELU networks: dropped elements set to SELU's negative saturation, then an affine map
    that keeps the input's mean and variance (Klambauer et al. 2017)."""
    return _dropout_noise(input, p, training, False, True)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """alpha_dropout of whole channels (dim 1) at once."""
    return _dropout_noise(input, p, training, True, True)


# ----------------------------------------------------------------------------- lookups, padding, normalisation

def one_hot(tensor, num_classes=-1):
    """int64 (*tensor.shape, num_classes) with a 1 at each index; num_classes=-1 means max + 1. No gradient."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"one_hot: argument 'tensor' must be a Tensor, not {type(tensor).__name__}")
    if tensor.dtype != np.int64:
        raise TypeError(f"one_hot is only applicable to index tensor of type LongTensor (int64); got {tensor.dtype}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"one_hot: argument 'num_classes' must be an int, not {type(num_classes).__name__}")
    index = index_used(tensor, "one_hot").array
    if num_classes == -1:
        if not index.size:
            raise RuntimeError("one_hot: can not infer total number of classes from empty tensor")
        num_classes = int(index.max()) + 1
    elif num_classes < 0:
        raise ValueError(f"one_hot: num_classes must be -1 or non-negative; got {num_classes}")
    if index.size:
        backend.check(index < 0, lambda: RuntimeError(f"one_hot: class values must be non-negative; got "
                                                      f"{int(index.min())}"))
        backend.check(index >= num_classes, lambda: RuntimeError(
            f"one_hot: class values must be smaller than num_classes ({num_classes}); got {int(index.max())}"))
    xp = tensor.xp
    return Tensor._make((index[..., None] == xp.arange(num_classes)).astype(np.int64), None)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """weight[input]: rows of weight (num_embeddings, embedding_dim) looked up by integer index; the
    padding_idx row gets no gradient, as torch's. With max_norm, each row read whose norm_type-norm
    exceeds it is first scaled down in place, outside the graph (see renormalize_rows_). With
    scale_grad_by_freq, the gradient each row gets is divided by how often `input` names it."""
    from .linear import FrequencyScaledLookup, Lookup
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ValueError(f"embedding: argument 'weight' must be a 2-D Tensor; got "
                         f"{getattr(weight, 'shape', type(weight).__name__)}")
    refuse_embedding_options("embedding", sparse=sparse)
    rows = weight.shape[0]
    index = index_used(input, "embedding").array if isinstance(input, Tensor) else weight.xp.asarray(input)
    if index.dtype.kind not in "iu":
        raise InputError(f"Embedding: indices must be integers; got dtype {index.dtype}")
    check_rows_exist("Embedding", index, rows)
    if max_norm is not None:
        renormalize_rows_(weight, index, max_norm, norm_type)
    table = weight
    if padding_idx is not None:
        if not -rows <= padding_idx < rows:
            raise ValueError(f"embedding: padding_idx must be within num_embeddings={rows}; got {padding_idx}")
        keep = (table.xp.arange(rows) != padding_idx % rows)[:, None]
        table = where_tensor(keep, table, Tensor._make(table.array, None))  # same values, no gradient to the row
    return (FrequencyScaledLookup if scale_grad_by_freq else Lookup).apply(table, index=index)


def check_rows_exist(fn, index, rows):
    """IndexError unless every index names one of a table's `rows` rows (no negative index)."""
    if index.size:
        backend.check((index < 0) | (index >= rows), lambda: IndexError(
            f"{fn}: index out of range: indices span [{int(index.min())}, {int(index.max())}] but "
            f"num_embeddings={rows}"))


def refuse_embedding_options(fn, **options):
    """NotImplementedError naming the first of `options` (argument: value) that is set."""
    for argument, value in options.items():
        if value is not False:
            raise NotImplementedError(f"{fn}: argument '{argument}' is not supported; got {value!r}")


def renormalize_rows_(weight, index, max_norm, norm_type=2.0):
    """torch's embedding_renorm_: each row of weight that `index` names (once, however often named) whose
    norm_type-norm exceeds max_norm is multiplied, in place and outside the graph, by
    max_norm / (norm + 1e-7). Counts as an in-place change of weight every time, as torch's; nothing is
    read from the device to decide it."""
    max_norm, norm_type = _number("embedding", "max_norm", max_norm), _number("embedding", "norm_type", norm_type)
    xp = weight.xp
    rows = xp.unique(index.reshape(-1))
    picked = weight.array[rows]
    norms = xp.linalg.norm(picked, ord=norm_type, axis=1).astype(np.float64)   # torch reads each as a double
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(weight.dtype)
    weight.array[rows] = picked * scale[:, None]   # a row within max_norm is multiplied by 1: unchanged
    weight._version += 1


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode="constant", value=None):
    """Pad the last len(pad) // 2 dims: pad = (left of the last dim, right of it, left of the one before, ...).

    constant: `value` (0 by default) around; reflect, replicate, circular: the input's own elements,
    gathered by index (so gradients of any order come from index_select's). Negative pads crop."""
    if not isinstance(input, Tensor):
        raise TypeError(f"pad: argument 'input' must be a Tensor, not {type(input).__name__}")
    if not isinstance(pad, (tuple, list)) or any(isinstance(p, bool) or not isinstance(p, numbers.Integral)
                                                 for p in pad):
        raise TypeError(f"pad: argument 'pad' must be a tuple of ints; got {pad!r}")
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding length must be even and at most twice the input's dims "
                         f"({input.ndim}); got pad={tuple(pad)}")
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {PAD_MODES}; got {mode!r}")
    if mode != "constant":
        if value not in (None, 0):
            raise ValueError(f"pad: padding mode '{mode}' doesn't take in value argument")
        if not len(pad) // 2 + 1 <= input.ndim <= len(pad) // 2 + 2:
            raise NotImplementedError(f"pad: {mode} padding of {len(pad) // 2} dims needs a "
                                      f"{len(pad) // 2 + 1}-D or {len(pad) // 2 + 2}-D input; got shape {input.shape}")
    x = input
    for k in range(len(pad) // 2):
        dim, before, after = input.ndim - 1 - k, int(pad[2 * k]), int(pad[2 * k + 1])
        x = _pad_dim(x, dim, before, after, mode, 0 if value is None else value)
    return x


def _pad_dim(x, dim, before, after, mode, value):
    n = x.shape[dim]
    if mode == "constant":
        if n + before + after < 0:
            raise ValueError(f"pad: the padded size of dim {dim} ({n} + {before} + {after}) is negative")
        lo, hi = max(-before, 0), n - max(-after, 0)
        x = x.narrow(dim, lo, max(hi - lo, 0))
        parts = [Tensor._make(x.xp.full(x.shape[:dim] + (max(p, 0),) + x.shape[dim + 1:], value,
                                        dtype=x.dtype), None)
                 for p in (before, after)]
        return cat([part for part, size in ((parts[0], before), (x, None), (parts[1], after))
                    if size is None or size > 0], dim)
    size = n + before + after  # a negative pad crops that side first, as torch
    if size < (0 if mode == "circular" else 1):
        raise ValueError(f"pad: input (size {n} of dim {dim}) is too small for {mode} padding ({before}, "
                         f"{after}): the output size would be {size}")
    if mode == "reflect" and (before >= n or after >= n):
        raise ValueError(f"pad: padding size should be less than the corresponding input dimension, but got: "
                         f"padding ({before}, {after}) at dimension {dim} of input {x.shape}")
    if n == 0 and before + after:
        raise ValueError(f"pad: {mode} padding of an empty dim {dim} (input {x.shape})")
    positions = np.arange(-before, n + after)
    if mode == "replicate":
        positions = np.clip(positions, 0, n - 1)
    elif mode == "circular":
        if before > n or after > n:
            raise ValueError(f"pad: padding value causes wrapping around more than once (pad ({before}, {after}) "
                             f"at dimension {dim} of input {x.shape})")
        # the wrapped parts repeat the cropped input, as torch's circular padding
        kept = np.arange(max(-before, 0), n - max(-after, 0))
        if size and not kept.size:
            raise ValueError(f"pad: circular padding ({before}, {after}) crops all of dim {dim} of input {x.shape}")
        positions = kept[(np.arange(size) - max(before, 0)) % max(kept.size, 1)]
    else:
        positions = np.abs(positions)
        positions = np.where(positions > n - 1, 2 * (n - 1) - positions, positions)
    return x.index_select(dim, Tensor._make(x.xp.asarray(positions.astype(np.int64)), None))


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """input / max(||input||_p over dim, eps), as torch.nn.functional.normalize."""
    x = _activation_input("normalize", input)
    return x / x.norm(p, dim=dim, keepdim=True).clamp(min=eps).expand(x.shape)


def _normalized_dims(fn, input, normalized_shape):
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
    if input.ndim < len(shape) or tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise InputError(f"{fn}: given normalized_shape={list(shape)}, expected input with shape "
                         f"[*, {', '.join(map(str, shape))}], but got input of size {list(input.shape)}")
    return shape


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing `normalized_shape` dims with the biased variance, then scale and shift."""
    if not isinstance(input, Tensor):
        raise TypeError(f"layer_norm: argument 'input' must be a Tensor, not {type(input).__name__}")
    shape = _normalized_dims("layer_norm", input, normalized_shape)
    n = len(shape)
    for argument, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != shape:
            raise InputError(f"layer_norm: {argument} of shape {tuple(value.shape)} must have normalized_shape "
                             f"{shape}")
    axes = tuple(range(-n, 0))
    centered = input - input.mean(axis=axes, keepdims=True)
    variance = (centered * centered).mean(axis=axes, keepdims=True)
    y = centered / (variance + eps) ** 0.5
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2) + eps) over the trailing normalized_shape dims, times weight; eps defaults to
    the dtype's machine epsilon, as torch."""
    x = _activation_input("rms_norm", input)
    shape = _normalized_dims("rms_norm", x, normalized_shape)
    eps = float(np.finfo(x.dtype).eps) if eps is None else eps
    axes = tuple(range(-len(shape), 0))
    y = x * ((x * x).mean(axis=axes, keepdims=True) + eps).rsqrt()
    return y if weight is None else y * weight


def _channel_shaped(value, ndim):
    """A per-channel (C,) tensor shaped to broadcast along dim 1 of an (N, C, *) input."""
    return value.reshape((value.shape[0],) + (1,) * (ndim - 2))


def _per_channel_affine(y, weight, bias):
    """y scaled and shifted per channel (dim 1), where weight and bias are given."""
    if weight is not None:
        y = y * _channel_shaped(weight, y.ndim)
    if bias is not None:
        y = y + _channel_shaped(bias, y.ndim)
    return y


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise (N, C, *) over each group of C // num_groups channels (and the rest of the dims) with the
    biased variance, then scale and shift per channel."""
    x = _activation_input("group_norm", input)
    if x.ndim < 2 or x.shape[1] % num_groups:
        raise InputError(f"group_norm: expected input of shape (N, C, *) with C divisible by num_groups="
                         f"{num_groups}; got {x.shape}")
    grouped = x.reshape((x.shape[0], num_groups, -1))
    centered = grouped - grouped.mean(axis=-1, keepdims=True)
    variance = (centered * centered).mean(axis=-1, keepdims=True)
    y = (centered / (variance + eps) ** 0.5).reshape(x.shape)
    return _per_channel_affine(y, weight, bias)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """Normalise (N, C) or (N, C, L) per channel: in training with the batch's statistics (the biased
    variance), moving running_mean and running_var (the unbiased variance) by `momentum` in place; else
    with the running statistics, as torch.nn.functional.batch_norm."""
    x = _activation_input("batch_norm", input)
    if x.ndim < 2:
        raise InputError(f"batch_norm: expected input of shape (N, C) or (N, C, L); got {x.shape}")
    axes = (0,) + tuple(range(2, x.ndim))
    count = x.numel() // x.shape[1]
    if training:
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {list(x.shape)}")
        mean = x.mean(axis=axes, keepdims=True)
        centered = x - mean
        variance = (centered * centered).mean(axis=axes, keepdims=True)
        for running, batch in ((running_mean, mean), (running_var, variance * (count / (count - 1)))):
            if running is not None:
                xp = backend.xp_of(running.array)
                running.array[...] = (1 - momentum) * running.array + momentum * xp.asarray(
                    batch.array.reshape(-1), dtype=running.dtype)
                running._version += 1
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var must be given when training=False")
        centered = x - _channel_shaped(running_mean, x.ndim)
        variance = _channel_shaped(running_var, x.ndim)
    y = centered / (variance + eps) ** 0.5
    return _per_channel_affine(y, weight, bias)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalise each (sample, channel) of (N, C, *) over its own spatial dims, as batch_norm of the
    input seen as (1, N * C, *); the running statistics move by the average over the samples' updates."""
    x = _activation_input("instance_norm", input)
    if x.ndim < 2:
        raise InputError(f"instance_norm: expected input of shape (N, C, *); got {x.shape}")
    if use_input_stats and math.prod(x.shape[2:]) == 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size {list(x.shape)}")
    n, c = x.shape[:2]
    repeated = [None if r is None else Tensor._make(r.xp.tile(r.array, n), None) for r in (running_mean, running_var)]
    y = batch_norm(x.reshape((1, n * c) + x.shape[2:]), *repeated, training=use_input_stats, momentum=momentum,
                   eps=eps).reshape(x.shape)
    for running, moved in zip((running_mean, running_var), repeated):
        if use_input_stats and running is not None:
            running.array[...] = moved.array.reshape(n, c).mean(axis=0)
            running._version += 1
    return _per_channel_affine(y, weight, bias)


relu_, elu_, leaky_relu_, hardtanh_, selu_, celu_, threshold_, rrelu_ = (
    _written_in_place(f) for f in (relu, elu, leaky_relu, hardtanh, selu, celu, threshold, rrelu))

from .attention import scaled_dot_product_attention  # noqa: F401  (last: built on the functions above)
from .conv_transpose import conv_transpose1d, conv_transpose2d, conv_transpose3d  # noqa: F401
from .embedding_bag import embedding_bag  # noqa: F401
from .fold import fold, unfold  # noqa: F401
from .grid_sample import affine_grid, grid_sample  # noqa: F401
from .local_channels import channel_shuffle, local_response_norm  # noqa: F401
from .lp_pooling import lp_pool1d, lp_pool2d, lp_pool3d  # noqa: F401
from .pixelshuffle import pixel_shuffle, pixel_unshuffle  # noqa: F401
from .unpooling import max_unpool1d, max_unpool2d, max_unpool3d  # noqa: F401
from .upsample import interpolate, upsample, upsample_bilinear, upsample_nearest  # noqa: F401
