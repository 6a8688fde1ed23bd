"""Data types under PyTorch's names (`tr.float32`, `tr.long`, `tr.bool` ...).

Each one is a NumPy dtype object, the very value `tensor.dtype` holds, so `x.dtype == tr.float32`
is true, and NumPy, CuPy and every `dtype=` argument take them as they are (strings such as
"float64" keep working too).
"""
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
# last: from here on these names hide Python's builtins in this module, as torch.float does in torch
float, int, bool = DTYPES["float"], DTYPES["int"], DTYPES["bool"]
