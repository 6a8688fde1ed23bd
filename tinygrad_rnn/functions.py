"""PyTorch's free functions (`tr.tanh(x)`, `tr.matmul(a, b)`, `tr.einsum(...)`): each is its Tensor method.

The table below is the whole of it: a name here calls the method of the same name on its first
argument, so the function and the method can never disagree.
"""
import string

import numpy as np

from .tensor import Tensor

# tr.NAME(tensor, *args, **kwargs) is tensor.NAME(*args, **kwargs)
METHODS = (
    "abs", "absolute", "acos", "acosh", "add", "addbmm", "addcdiv", "addcmul", "addmm", "addmv", "adjoint", "all",
    "allclose", "amax", "amin", "aminmax", "any", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2",
    "arctanh", "argmax", "argmin", "argsort", "argwhere", "asin", "asinh", "atan", "atan2", "atanh", "baddbmm",
    "bincount", "bitwise_and", "bitwise_left_shift", "bitwise_not", "bitwise_or", "bitwise_right_shift", "bitwise_xor",
    "bmm", "broadcast_to", "ceil", "cholesky", "chunk", "clamp", "clamp_max", "clamp_min", "clip", "clone", "copysign",
    "cos", "cosh", "count_nonzero", "cross", "cummax", "cummin", "cumprod", "cumsum", "deg2rad", "det", "diag",
    "diag_embed", "diagflat", "diagonal", "diagonal_scatter", "diff", "digamma", "dist", "div", "divide", "dot",
    "dsplit", "eq", "equal", "erf", "erfc", "erfinv", "exp", "exp2", "expand", "expm1", "fix", "flatten", "flip",
    "fliplr", "flipud", "float_power", "floor", "floor_divide", "fmax", "fmin", "fmod", "frac", "frexp", "gather",
    "gcd", "ge", "greater", "greater_equal", "gt", "heaviside", "histc", "hsplit", "hypot", "i0", "index_add",
    "index_copy", "index_fill", "index_select", "inner", "inverse", "is_complex", "is_floating_point", "is_nonzero",
    "is_same_size", "is_signed", "isclose", "isfinite", "isinf", "isnan", "isneginf", "isposinf", "isreal", "kron",
    "kthvalue", "lcm", "ldexp", "le", "lerp", "less", "less_equal", "lgamma", "log", "log10", "log1p", "log2",
    "log_softmax", "logaddexp", "logaddexp2", "logcumsumexp", "logdet", "logical_and", "logical_not", "logical_or",
    "logical_xor", "logit", "logsumexp", "lt", "masked_fill", "masked_scatter", "masked_select", "matmul",
    "matrix_exp", "matrix_power", "max", "maximum", "mean", "median", "min", "minimum", "mm", "mode", "moveaxis",
    "movedim", "msort", "mul", "multiply", "mv", "nan_to_num", "nanmean", "nanmedian", "nanquantile", "nansum",
    "narrow", "narrow_copy", "ne", "neg", "negative", "nextafter", "nonzero", "norm", "not_equal", "numel", "outer",
    "permute", "pinverse", "positive", "pow", "prod", "qr", "quantile", "rad2deg", "ravel", "reciprocal", "relu",
    "remainder", "renorm", "repeat", "repeat_interleave", "reshape", "roll", "rot90", "round", "rsqrt", "scatter",
    "scatter_add", "scatter_reduce", "select", "select_scatter", "sgn", "sigmoid", "sign", "signbit", "sin", "sinc",
    "sinh", "slice_scatter", "slogdet", "softmax", "sort", "split", "split_with_sizes", "sqrt", "square", "squeeze",
    "std", "sub", "subtract", "sum", "svd", "swapaxes", "swapdims", "t", "take", "take_along_dim", "tan", "tanh",
    "tensor_split", "tile", "topk", "trace", "transpose", "tril", "triu", "true_divide", "trunc", "unbind",
    "unflatten", "unique", "unique_consecutive", "unsqueeze", "var", "vdot", "vsplit", "xlogy",
)


# functions whose first argument may be a number when the second is a tensor, as torch's overloads
NUMBER_FIRST = ("bitwise_and", "bitwise_left_shift", "bitwise_or", "bitwise_right_shift", "bitwise_xor", "float_power",
                "xlogy")


def _forward_to_method(name):
    def function(input, *args, **kwargs):
        if name in NUMBER_FIRST and args and isinstance(args[0], Tensor) and isinstance(input, (int, float)):
            input = args[0]._lift(input, name)  # a number beside a tensor, weak as in torch's promotion
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}(): argument 'input' must be a Tensor, not {type(input).__name__}")
        return getattr(input, name)(*args, **kwargs)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"tr.{name}(input, ...) is input.{name}(...)."
    return function


FUNCTIONS = {name: _forward_to_method(name) for name in METHODS}


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(input.var(...), input.mean(...)) over the same dims, as torch.var_mean."""
    return _statistic_and_mean("var_mean", input, dim, unbiased, keepdim, correction)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(input.std(...), input.mean(...)) over the same dims, as torch.std_mean."""
    return _statistic_and_mean("std_mean", input, dim, unbiased, keepdim, correction)


def _statistic_and_mean(name, input, dim, unbiased, keepdim, correction):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be a Tensor, not {type(input).__name__}")
    if isinstance(dim, bool) and unbiased is None:  # torch's overload var_mean(input, unbiased)
        dim, unbiased = None, dim
    statistic = getattr(input, name[:3])(dim, unbiased, keepdim, correction=correction)
    return statistic, input.mean(dim=() if dim is None else dim, keepdim=keepdim)


def polygamma(n, input):
    """The n-th derivative of digamma of input, as torch.polygamma (n first)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"polygamma(): argument 'input' must be a Tensor, not {type(input).__name__}")
    return input.polygamma(n)


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """Whether each of elements is among test_elements (either may be a number), a bool tensor."""
    from .methods import _computed
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError("isin(): at least one of 'elements' and 'test_elements' must be a Tensor")
    like = elements if isinstance(elements, Tensor) else test_elements
    values, tests = (t.array if isinstance(t, Tensor) else like.xp.asarray(t) for t in (elements, test_elements))
    return _computed(like.xp.isin(values, tests, assume_unique=assume_unique, invert=invert), "isin")


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None):
    """Where each value of input would go in sorted_sequence (along its last dim) to keep it sorted, as
    torch.searchsorted: the first such place, the last with right=True or side="right"."""
    from .methods import _computed
    op = "torch.searchsorted()"
    if not isinstance(sorted_sequence, Tensor):
        raise TypeError(f"searchsorted(): argument 'sorted_sequence' must be a Tensor, not "
                        f"{type(sorted_sequence).__name__}")
    if side not in (None, "left", "right"):
        raise RuntimeError(f"{op}: side can only be 'left' or 'right' but got {side}")
    if right and side == "left":
        raise RuntimeError(f"{op}: side and right can't be set to opposites, got side of {side} while right was True")
    side = side or ("right" if right else "left")
    xp, boundaries = sorted_sequence.xp, sorted_sequence.array
    scalar = not isinstance(input, Tensor)
    values = xp.asarray(input) if scalar else input.array
    if boundaries.ndim == 0:
        raise RuntimeError(f"{op}: boundaries tensor should have positive dimension, but got 0 dimension")
    if boundaries.ndim > 1 and (values.ndim != boundaries.ndim or values.shape[:-1] != boundaries.shape[:-1]):
        raise RuntimeError(f"{op}: boundaries tensor should be 1 dimension or the first N-1 dimensions of "
                           f"boundaries tensor and input value tensor must match, but we got boundaries tensor "
                           f"{list(boundaries.shape)} and input value tensor {list(values.shape)}")
    if sorter is not None:
        if not isinstance(sorter, Tensor) or sorter.shape != sorted_sequence.shape:
            raise RuntimeError(f"{op}: boundary and sorter must have the same size")
        boundaries = xp.take_along_axis(boundaries, sorter.array, axis=-1)
    rows = boundaries.reshape(-1, boundaries.shape[-1])
    if boundaries.ndim == 1:
        found = xp.searchsorted(rows[0], values, side=side)
    else:
        flat = values.reshape(rows.shape[0], -1)
        found = xp.stack([xp.searchsorted(row, v, side=side) for row, v in zip(rows, flat)]).reshape(values.shape)
    return _computed(xp.asarray(found, dtype=np.int32 if out_int32 else np.int64), "searchsorted")


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The bucket of each value of input among the 1-d sorted boundaries, as torch.bucketize."""
    if not isinstance(boundaries, Tensor) or boundaries.ndim != 1:
        raise RuntimeError(f"bucketize: boundaries tensor must be 1 dimension, but got dim("
                           f"{getattr(boundaries, 'ndim', 0)})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def is_tensor(obj):
    return isinstance(obj, Tensor)


def einsum(equation, *operands):
    """Einstein summation as torch.einsum: "ij,jk->ik", implicit outputs and "..." included."""
    from . import ops
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for k, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum(): operand {k} must be a Tensor, not {type(t).__name__}")
    if len({t.dtype for t in operands}) > 1:
        raise TypeError(f"einsum(): expected all operands to have the same dtype, but got "
                        f"{[str(t.dtype) for t in operands]}")
    inputs, output = _parse_einsum(equation, [t.shape for t in operands])
    return ops.Einsum.apply(*operands, inputs=inputs, output=output)


def _parse_einsum(equation, shapes):
    """(one subscript string per operand, the output's), with "..." spelt out as letters."""
    equation = equation.replace(" ", "")
    lhs, arrow, output = equation.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(shapes):
        raise ValueError(f"einsum(): the equation {equation!r} names {len(inputs)} operands but {len(shapes)} "
                         f"were given")
    used = set(equation) - set(".,->")
    spare = [c for c in string.ascii_letters if c not in used]
    widest = 0
    for subs, shape in zip(inputs, shapes):
        named = len(subs.replace("...", ""))
        if ("..." in subs and named > len(shape)) or ("..." not in subs and named != len(shape)):
            raise ValueError(f"einsum(): subscripts {subs!r} do not fit an operand of shape {tuple(shape)}")
        if "..." in subs:
            widest = max(widest, len(shape) - named)
    ellipsis = "".join(spare[:widest])
    filled = []
    for subs, shape in zip(inputs, shapes):
        if "..." in subs:
            subs = subs.replace("...", ellipsis[widest - (len(shape) - len(subs.replace("...", ""))):])
        if len(set(subs)) != len(subs):
            raise ValueError(f"einsum(): an index repeated within one operand ({subs!r}, a diagonal) is not "
                             f"supported")
        filled.append(subs)
    if not arrow:
        counts = {c: "".join(filled).count(c) for c in set("".join(filled))}
        output = ellipsis + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ellipsis))
    else:
        output = output.replace("...", ellipsis)
    sizes = {}
    for subs, shape in zip(filled, shapes):
        for c, n in zip(subs, shape):
            if sizes.setdefault(c, n) != n:
                raise ValueError(f"einsum(): index {c!r} has size {sizes[c]} in one operand and {n} in another "
                                 f"(shapes {[tuple(s) for s in shapes]}); broadcasting is not supported here")
    missing = set(output) - set("".join(filled))
    if missing or len(set(output)) != len(output):
        raise ValueError(f"einsum(): output subscripts {output!r} must be distinct and appear in the inputs")
    return filled, output
