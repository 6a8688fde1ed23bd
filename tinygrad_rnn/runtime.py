"""torch's top-level runtime settings and type queries: threads, print options, dtype limits and promotion,
the default device, determinism, matmul precision, anomaly and inference modes.

Several are recorded only, to keep PyTorch code running: what each means here is said where it is defined.
"""
import functools
import numbers
import os
import threading

import numpy as np

from . import autograd, backend, dtypes
from .printing import get_printoptions, set_printoptions  # noqa: F401 (tr.set_printoptions)
from .tensor import Tensor, using_config
from .train.threads import blas_controller

__all__ = [
    "are_deterministic_algorithms_enabled", "can_cast", "finfo", "get_default_device",
    "get_float32_matmul_precision", "get_num_interop_threads", "get_num_threads", "iinfo", "inference_mode",
    "is_anomaly_enabled", "is_deterministic_algorithms_warn_only_enabled", "is_inference_mode_enabled",
    "is_storage", "promote_types", "result_type", "set_anomaly_enabled", "set_default_device",
    "set_float32_matmul_precision", "set_num_interop_threads", "set_num_threads", "set_printoptions", "typename",
    "use_deterministic_algorithms",
]

# ----------------------------------------------------------------------------- threads


def _positive_int(fn, n):
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise RuntimeError(f"{fn} expects an int, but got {type(n).__name__}")  # noqa: TRY004 (torch's type)
    if n < 1:
        raise RuntimeError(f"{fn} expects a positive integer")
    return int(n)


_interop_threads = os.cpu_count() or 1


def set_num_threads(int):  # torch's parameter name
    """As torch.set_num_threads: the number of threads NumPy's BLAS (OpenBLAS, MKL or BLIS) uses for matrix
    products from now on, set through threadpoolctl as the training commands set it."""
    blas_controller().limit(limits=_positive_int("set_num_threads", int))


def get_num_threads():
    """The number of threads NumPy's BLAS uses (the first BLAS library found; 1 when none is)."""
    info = blas_controller().info()
    return info[0]["num_threads"] if info else 1


def set_num_interop_threads(int):  # torch's parameter name
    """Recorded only, for get_num_interop_threads: there is no inter-op thread pool here (ops run one after
    another on the calling thread), so the number has no effect."""
    global _interop_threads
    _interop_threads = _positive_int("set_num_interop_threads", int)


def get_num_interop_threads():
    """What set_num_interop_threads recorded (the number of CPUs at first, as torch's default)."""
    return _interop_threads


# ----------------------------------------------------------------------------- dtype limits and promotion


def _dtype_argument(fn, type):
    dtype = dtypes.get_default_dtype() if type is None else dtypes.check(type, fn)
    return dtype


class finfo:
    """As torch.finfo: the limits of a floating point dtype (the default float when None), as Python floats."""

    def __init__(self, type=None):  # torch's parameter name
        dtype = _dtype_argument("finfo", type)
        if dtype.kind != "f":
            raise TypeError("torch.finfo() requires a floating point input type. Use torch.iinfo to handle "
                            "'torch.finfo'")
        info = np.finfo(dtype)
        self.bits, self.dtype = info.bits, str(dtype)
        self.eps, self.max, self.min = float(info.eps), float(info.max), float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -info.precision  # as torch: exactly 1e-06 for float32

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """As torch.iinfo: the limits of an integer dtype, as Python ints."""

    def __init__(self, type):  # torch's parameter name
        dtype = _dtype_argument("iinfo", type)
        if dtype.kind == "b":
            raise TypeError("torch.bool is not supported by torch.iinfo")
        if dtype.kind not in "iu":
            raise TypeError("torch.iinfo() requires an integer input type. Use torch.finfo to handle "
                            "'torch.iinfo'")
        info = np.iinfo(dtype)
        self.bits, self.min, self.max, self.dtype = info.bits, int(info.min), int(info.max), str(dtype)

    def __repr__(self):
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


def promote_types(type1, type2):
    """As torch.promote_types: the smallest dtype both fit in, a higher kind (bool < int < float) winning."""
    return dtypes.promote_types(dtypes.check(type1, "promote_types"), dtypes.check(type2, "promote_types"))


def result_type(tensor, other):
    """As torch.result_type: the dtype an elementwise op of two tensors or numbers would give."""
    operands = [x.array if isinstance(x, Tensor) else x for x in (tensor, other)]
    for x in operands:
        if not isinstance(x, numbers.Number) and not hasattr(x, "dtype"):
            raise TypeError(f"result_type(): expected Tensors or Numbers; got {type(x).__name__}")
    return dtypes.result_type(*operands)


def can_cast(from_, to):
    """As torch.can_cast: whether a cast keeps the kind or widens it (bool < integer < float); any width
    within a kind goes (float64 -> float16, int64 -> uint8), a narrower kind never (float -> int)."""
    return dtypes._category(dtypes.check(from_, "can_cast")) <= dtypes._category(dtypes.check(to, "can_cast"))


# ----------------------------------------------------------------------------- the default device


def set_default_device(device):
    """As torch.set_default_device: the device ("cpu", "cuda"; None: back to the default) where the shape
    factories (zeros, ones, full, empty, eye, arange, linspace, rand, randn, randint, randperm) put new
    tensors; tr.tensor(data) still keeps the device of its data (the CPU for Python data)."""
    backend.set_default_device(device)


def get_default_device():
    """The device new tensors go to, as a tr.device ("cpu" or "cuda")."""
    return backend.Device(backend.default_device())


# ----------------------------------------------------------------------------- determinism, precision


class _Settings:
    deterministic = False
    deterministic_warn_only = False
    float32_matmul_precision = "highest"


_settings = _Settings()
MATMUL_PRECISIONS = ("highest", "high", "medium")


def use_deterministic_algorithms(mode, *, warn_only=False):
    """Recorded only: every op here is deterministic already (a given seed gives the same numbers, and
    sums reduce in a fixed order), so there is nothing to switch."""
    for name, value in (("mode", mode), ("warn_only", warn_only)):
        if not isinstance(value, bool):
            raise TypeError(f"_set_deterministic_algorithms(): argument '{name}' must be bool, "
                            f"not {type(value).__name__}")
    _settings.deterministic, _settings.deterministic_warn_only = mode, warn_only


def are_deterministic_algorithms_enabled():
    return _settings.deterministic


def is_deterministic_algorithms_warn_only_enabled():
    return _settings.deterministic_warn_only


def set_float32_matmul_precision(precision):
    """Recorded only: float32 products always run in full float32 here ("highest"); NumPy and CuPy's
    default GEMMs do not trade precision for speed with TF32 or bfloat16 as torch may under "high"/"medium".
    An unknown value warns and changes nothing, as in torch."""
    if precision not in MATMUL_PRECISIONS:
        import warnings
        warnings.warn(f"{precision} is not one of 'highest', 'high', or 'medium'; the current "
                      f"setFloat32MatmulPrecision call has no effect.", stacklevel=2)
        return
    _settings.float32_matmul_precision = precision


def get_float32_matmul_precision():
    return _settings.float32_matmul_precision


# ----------------------------------------------------------------------------- anomaly and inference modes

is_anomaly_enabled = autograd.is_anomaly_enabled


def set_anomaly_enabled(enabled, check_nan=True):
    """As torch.set_anomaly_enabled: anomaly mode (tr.autograd.detect_anomaly's NaN check of every backward)
    on or off from now on. Without check_nan there is nothing to check, so the mode stays off."""
    autograd.set_detect_anomaly(enabled, check_nan)


class _InferenceState(threading.local):
    enabled = False


_inference = _InferenceState()


class inference_mode:
    """As torch.inference_mode: inside, no graph is recorded (the same as no_grad here: tensors made
    inside are ordinary ones). A context manager, and a decorator with or without parentheses;
    inference_mode(False) turns both off inside."""

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):  # @tr.inference_mode, without parentheses
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode=True):
        self.mode = bool(mode)
        self._saved = []

    def __enter__(self):
        grad = using_config("grad_enabled", not self.mode)
        grad.__enter__()
        self._saved.append((grad, _inference.enabled))
        _inference.enabled = self.mode

    def __exit__(self, *exc):
        grad, _inference.enabled = self._saved.pop()
        grad.__exit__(*exc)

    def __call__(self, function):
        @functools.wraps(function)
        def in_inference_mode(*args, **kwargs):
            with inference_mode(self.mode):
                return function(*args, **kwargs)
        return in_inference_mode


def is_inference_mode_enabled():
    """Inside an inference_mode block (a no_grad block alone is not one, as in torch)."""
    return _inference.enabled


# ----------------------------------------------------------------------------- small queries


def typename(obj):
    """As torch.typename: a tensor's type name ("tinygrad_rnn.FloatTensor"), else module.qualname."""
    if isinstance(obj, Tensor):
        return obj.type()
    module = getattr(obj, "__module__", "") or ""
    if hasattr(obj, "__qualname__"):
        qualname = obj.__qualname__
    elif hasattr(obj, "__name__"):
        qualname = obj.__name__
    else:
        module, qualname = obj.__class__.__module__ or "", obj.__class__.__qualname__
    return qualname if module in ("", "builtins") else f"{module}.{qualname}"


def is_storage(obj):
    """False: tensors here own NumPy or CuPy arrays, not torch storages."""
    return False
