"""Data types under PyTorch's names (`tr.float32`, `tr.long`, `tr.bool` ...).

Each one is a NumPy dtype object, the very value `tensor.dtype` holds, so `x.dtype == tr.float32`
is true, and NumPy, CuPy and every `dtype=` argument take them as they are (strings such as
"float64" keep working too).
"""
import builtins
import numbers

import numpy as np

# PyTorch's name -> NumPy dtype; aliases as in torch (float = float32, long = int64, ...)
DTYPES = {
    "float16": np.dtype(np.float16), "half": np.dtype(np.float16),
    "float32": np.dtype(np.float32), "float": np.dtype(np.float32),
    "float64": np.dtype(np.float64), "double": np.dtype(np.float64),
    "uint8": np.dtype(np.uint8),
    "int8": np.dtype(np.int8),
    "int16": np.dtype(np.int16), "short": np.dtype(np.int16),
    "int32": np.dtype(np.int32), "int": np.dtype(np.int32),
    "int64": np.dtype(np.int64), "long": np.dtype(np.int64),
    "bool": np.dtype(np.bool_),
}

float16 = half = DTYPES["float16"]
float32 = DTYPES["float32"]
float64 = double = DTYPES["float64"]
uint8, int8 = DTYPES["uint8"], DTYPES["int8"]
int16 = short = DTYPES["int16"]
int32 = DTYPES["int32"]
int64 = long = DTYPES["int64"]


# ----------------------------------------------------------------------------- the default float, as torch

_default_float = float32  # what Python floats, float factories and new layers' parameters become


def get_default_dtype():
    """The floating point dtype Python floats, float factories and layers' parameters take (float32 at first)."""
    return _default_float


def set_default_dtype(d):
    """Make `d` (a floating point dtype) the default float, as torch.set_default_dtype."""
    global _default_float
    dtype = check(d, "set_default_dtype")
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: only floating-point types are supported as the default type; "
                        f"got {dtype}")
    _default_float = dtype


# ----------------------------------------------------------------------------- type promotion, as torch


def _category(dtype):
    return "bif".index(dtype.kind if dtype.kind != "u" else "i")  # bool < integer < floating


def promote_types(a, b):
    """torch.promote_types: the larger kind wins and keeps its own width (int64 + float32 is float32)."""
    a, b = np.dtype(a), np.dtype(b)
    if _category(a) != _category(b):
        return a if _category(a) > _category(b) else b
    return np.promote_types(a, b)


def _combine(higher, lower):
    """torch's rule between operand groups: a lower group only counts where it is of a higher kind."""
    if higher is None or lower is None:
        return lower if higher is None else higher
    if higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return promote_types(higher, lower)
    return higher


def result_type(*operands):
    """The dtype torch gives an elementwise op of `operands`: tensors with dims decide, 0-d tensors
    only where they are of a higher kind (bool < int < float), then Python numbers (a float one
    means the default float, an int one int64). An operand is an array-like with `.dtype` and `.ndim`, or a
    Python number; a NumPy scalar (np.float64(0.5)) counts as a Python number, as in torch."""
    groups = [None, None, None]  # tensors with dims, 0-d tensors, Python numbers
    for x in operands:
        if isinstance(x, (builtins.bool, np.bool_)):  # this module's `bool` is torch's dtype name
            group, dtype = 2, np.dtype(np.bool_)
        elif isinstance(x, numbers.Integral) and (not hasattr(x, "ndim") or isinstance(x, np.generic)):
            group, dtype = 2, np.dtype(np.int64)
        elif isinstance(x, numbers.Real) and (not hasattr(x, "ndim") or isinstance(x, np.generic)):
            group, dtype = 2, _default_float
        else:
            group, dtype = (0 if x.ndim else 1), np.dtype(x.dtype)
        groups[group] = dtype if groups[group] is None else promote_types(groups[group], dtype)
    return _combine(groups[0], _combine(groups[1], groups[2]))


def check(dtype, op):
    """`dtype` as a NumPy dtype of a kind tensors hold (bool, integer, float); TypeError naming `op`."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: dtype {dtype!r} is not a data type; use tr.float32, tr.int64, ...") from None
    if dtype.kind not in "biuf":
        raise TypeError(f"{op}: tensors hold booleans, integers or floats; got dtype {dtype}")
    return dtype


def check_fits(values, dtype, op):
    """Python numbers must fit the integer dtype they are made into, as torch checks (no silent wrap to 0);
    a float too large for a float dtype becomes inf, as in torch."""
    if values.dtype.kind not in "biuf" or dtype.kind not in "iu" or not values.size:
        return
    finite = np.isfinite(values) if values.dtype.kind == "f" else np.ones(values.shape, np.bool_)
    info = np.iinfo(dtype)
    bad = ~finite | (values < info.min) | (values > info.max)
    if bad.any():
        raise ValueError(f"{op}: value {values[bad].reshape(-1)[0].item()!r} cannot be converted to type {dtype} "
                         f"without overflow")


def floating(dtype):
    """The dtype a float-valued op (exp, division, mean ...) computes in: integers and bools go to the
    default float."""
    return np.dtype(dtype) if np.dtype(dtype).kind == "f" else _default_float


# last: from here on these names hide Python's builtins in this module, as torch.float does in torch
float, int, bool = DTYPES["float"], DTYPES["int"], DTYPES["bool"]
