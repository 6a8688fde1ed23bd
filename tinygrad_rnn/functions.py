"""PyTorch's free functions (`tr.tanh(x)`, `tr.matmul(a, b)`, `tr.einsum(...)`): each is its Tensor method.

The table below is the whole of it: a name here calls the method of the same name on its first
argument, so the function and the method can never disagree.
"""
import string

from .tensor import Tensor

# tr.NAME(tensor, *args, **kwargs) is tensor.NAME(*args, **kwargs)
METHODS = (
    "abs", "absolute", "acos", "acosh", "add", "addbmm", "addcdiv", "addcmul", "addmm", "addmv", "all", "allclose",
    "amax", "amin", "aminmax", "any", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh",
    "argmax", "argmin", "argsort", "asin", "asinh", "atan", "atan2", "atanh", "baddbmm", "bincount", "bmm", "ceil",
    "cholesky", "chunk", "clamp", "clamp_max", "clamp_min", "clip", "clone", "copysign", "cos", "cosh",
    "count_nonzero", "cummax", "cummin", "cumprod", "cumsum", "deg2rad", "det", "diag", "diagonal", "diff", "dist",
    "div", "dot", "eq", "equal", "erf", "erfc", "exp", "exp2", "expand", "expm1", "fix", "flatten", "flip",
    "float_power", "floor", "floor_divide", "fmod", "frac", "gather", "ge", "gt", "heaviside", "histc", "hypot",
    "index_add", "index_copy", "index_fill", "index_select", "inner", "inverse", "is_complex", "is_floating_point",
    "is_signed", "isclose", "isfinite", "isinf", "isnan", "isneginf", "isposinf", "isreal", "kron", "kthvalue",
    "le", "lerp", "log", "log10", "log1p", "log2", "log_softmax", "logaddexp", "logaddexp2", "logcumsumexp",
    "logdet", "logit", "logsumexp", "lt", "masked_fill", "masked_scatter", "masked_select", "matmul", "matrix_exp",
    "matrix_power", "max", "maximum", "mean", "median", "min", "minimum", "mm", "moveaxis", "movedim", "msort",
    "mul", "mv", "nan_to_num", "nanmean", "nansum", "narrow", "ne", "neg", "negative", "nonzero", "norm", "numel",
    "outer", "permute", "pinverse", "pow", "prod", "qr", "rad2deg", "reciprocal", "relu", "remainder", "renorm",
    "repeat", "repeat_interleave", "reshape", "roll", "rot90", "round", "rsqrt", "scatter", "scatter_add",
    "scatter_reduce", "sgn", "sigmoid", "sign", "signbit", "sin", "sinc", "sinh", "slogdet", "softmax", "sort",
    "split", "sqrt", "square", "squeeze", "std", "sub", "sum", "svd", "swapaxes", "swapdims", "t", "take",
    "take_along_dim", "tan", "tanh", "tile", "topk", "trace", "transpose", "tril", "triu", "true_divide", "trunc",
    "unbind", "unique", "unsqueeze", "var", "xlogy",
)


# functions whose first argument may be a number when the second is a tensor, as torch's overloads
NUMBER_FIRST = ("float_power", "xlogy")


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
