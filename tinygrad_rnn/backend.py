"""Array backends: NumPy on the CPU, CuPy on the GPU.

The only module that imports CuPy. Everything else asks this one for the array module `xp`
that matches its data, so the same op code runs on both devices.
"""
import contextlib
import math
import os
import threading

import numpy as np

DEVICES = ("cpu", "cuda")
_cupy = None


class DeviceError(RuntimeError):
    """A device was asked for that cannot be used, or two devices met in one op."""


def _load_cupy():
    """Import CuPy on first use and check that a GPU answers."""
    global _cupy
    if _cupy is None:
        try:
            import cupy
            cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # ImportError, or CUDA driver/runtime errors
            raise DeviceError(
                "device 'cuda' needs CuPy and a working NVIDIA GPU: install the CuPy wheel for your "
                "CUDA version (for CUDA 12: `pip install \"tinygrad-rnn[cuda]\"`, in a source checkout "
                "`pip install -e \".[cuda]\"`, or `pip install cupy-cuda12x`); "
                f"the import failed with: {type(e).__name__}: {e}") from e
        _cupy = cupy
    return _cupy


def cuda_available():
    """True when CuPy imports and at least one GPU is visible."""
    try:
        _load_cupy()
        return True
    except DeviceError:
        return False


def cuda_device_count():
    """How many GPUs CuPy sees; 0 without CuPy or a GPU."""
    try:
        return _load_cupy().cuda.runtime.getDeviceCount()
    except DeviceError:
        return 0


def synchronize():
    """Wait for all work queued on the current GPU to finish (and raise a check that failed there)."""
    _load_cupy().cuda.runtime.deviceSynchronize()
    raise_failed_checks()


class Device(str):
    """A device, as torch.device: Device("cpu"), Device("cuda"), Device("cuda:1"), Device("cuda", 1).

    It is the string it names ("cuda:1"), so every `device=` argument takes it, and it compares
    equal to that string (`tensor.device == Device("cpu")`). `.type` and `.index` as in PyTorch.
    """

    def __new__(cls, type, index=None):
        if isinstance(type, Device) and index is None:
            return type
        if isinstance(type, int) and not isinstance(type, bool) and index is None:
            type, index = "cuda", type  # torch.device(0) is the first GPU
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string like 'cpu' or 'cuda:0'; got {type!r}")
        name, _, number = type.partition(":")
        if number:
            if index is not None:
                raise ValueError(f"device: type {type!r} already names an index; got index={index!r} too")
            if not number.isdigit():
                raise DeviceError(f"device: invalid device string {type!r}")
            index = int(number)
        if name not in DEVICES:
            raise DeviceError(f"device: expected one of {DEVICES} device type at start of device string: {type}")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise DeviceError(f"device: index must be a non-negative integer; got {index!r}")
        self = super().__new__(cls, name if index is None else f"{name}:{index}")
        self.type, self.index = name, index
        return self

    def __repr__(self):
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"


def check_device(device):
    """Normalise a device name ("cpu", "cuda", "cuda:0") and return "cpu" or "cuda"."""
    if device is None:
        return default_device()
    name = str(device).split(":")[0]
    if name not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; expected one of {DEVICES}")
    return name


_chosen_default = None  # tr.set_default_device's choice; None: the environment decides


def default_device():
    """The device new tensors go to: tr.set_default_device's choice, else `TINYGRAD_RNN_DEVICE` if set,
    else the CPU."""
    return _chosen_default or check_device(os.environ.get("TINYGRAD_RNN_DEVICE", "cpu"))


def set_default_device(device):
    """Make `device` ("cpu" or "cuda"; None: back to the environment's) where factories put new tensors."""
    global _chosen_default
    _chosen_default = None if device is None else check_device(device)


def xp_for(device):
    """The array module for a device name."""
    return np if device == "cpu" else _load_cupy()


def is_cupy_array(value):
    """Whether `value` is a CuPy array, without importing CuPy."""
    return type(value).__module__.split(".")[0] == "cupy"


def device_of(array):
    """"cpu" for NumPy arrays, "cuda" for CuPy arrays."""
    return "cpu" if isinstance(array, (np.ndarray, np.generic)) else "cuda"


def xp_of(array):
    """The array module that owns `array`."""
    return np if isinstance(array, (np.ndarray, np.generic)) else _cupy


def to_device(array, device):
    """Move an array to a device (a no-op when it is already there)."""
    if device_of(array) == device:
        return array
    if device == "cpu":
        raise_failed_checks()
        return array.get()
    return _load_cupy().asarray(array)


def to_numpy(array):
    """A host NumPy array for any backend array."""
    return array if isinstance(array, np.ndarray) else np.asarray(to_device(array, "cpu"))


def ieee_quiet(xp):
    """A context where NumPy says nothing of results that are inf or NaN (log(0), 1 / 0, exp(1000),
    sqrt(-1), 0 * inf): torch returns the IEEE value and says nothing, and so do the primitives that
    meet such values, backward and the recurrent passes, which run inside it. CuPy never warns."""
    return np.errstate(all="ignore") if xp is np else contextlib.nullcontext()


_C_LIBRARY = {"erf": np.frompyfunc(math.erf, 1, 1), "erfc": np.frompyfunc(math.erfc, 1, 1)}  # NumPy has neither


def _special(name, array):
    """The C library's `name` (erf, erfc) of a floating array, element by element, in its dtype."""
    if isinstance(array, np.ndarray):
        return np.asarray(_C_LIBRARY[name](array), dtype=array.dtype) if array.size else array.copy()
    import cupyx.scipy.special
    return getattr(cupyx.scipy.special, name)(array)


def erf(array):
    """The error function of a floating array, in its dtype."""
    return _special("erf", array)


def erfc(array):
    """1 - erf, exact where erf is nearly 1 (erfc(10) is 2e-45, not 0)."""
    return _special("erfc", array)


def scatter_add(target, index, values):
    """target[index] += values with repeated indices summed (the backward of a gather)."""
    if isinstance(target, np.ndarray):
        np.add.at(target, index, values)
    else:
        import cupyx
        cupyx.scatter_add(target, index, values)
    return target


def scatter_extreme(target, index, values, largest):
    """target[index] = max(target[index], values) (min unless `largest`), repeated indices included."""
    if isinstance(target, np.ndarray):
        (np.maximum if largest else np.minimum).at(target, index, values)
    else:
        import cupyx
        (cupyx.scatter_max if largest else cupyx.scatter_min)(target, index, values)
    return target


# ----------------------------------------------------------------------------- checks of device values
# Reading a value from a GPU waits for all the work queued there, so a check made where its value is
# computed (indices in range, a barrier that did not time out) would stall every training step. It
# is read instead with the next value read from the GPU (to_numpy, a tensor's item() or numpy(),
# synchronize()), as torch reports its device-side asserts; on NumPy it runs at once.
MAX_PENDING_CHECKS = 64  # then they are read, so that a loop that never reads keeps none of their arrays
_DEFER_ON_HOST = False   # tests set it to run the GPU's order on NumPy arrays


class _PendingChecks(threading.local):
    def __init__(self):
        self.checks = []


_pending = _PendingChecks()


def reads_stall(array):
    """Whether reading the values of `array` into Python waits for a device (CuPy arrays)."""
    return _DEFER_ON_HOST or not isinstance(array, (np.ndarray, np.generic))


def memory_span(array):
    """(first byte, one past the last) of a dense array's elements, to tell whether two arrays overlap."""
    start = array.data.ptr if is_cupy_array(array) else array.__array_interface__["data"][0]
    return start, start + array.size * array.itemsize


def check(failed, error):
    """Raise error() where the boolean array `failed` holds a true value: at once on NumPy, with the
    next read from the GPU on CuPy. `error` is called only then (it may read the arrays it names)."""
    if not reads_stall(failed):
        if failed.any():
            raise error()
        return
    _pending.checks.append((failed.any(), error))
    if len(_pending.checks) >= MAX_PENDING_CHECKS:
        raise_failed_checks()


def check_indices(index, size, op):
    """IndexError naming `op` where an integer index array lies outside [0, size), as torch's gather and
    index_select refuse a negative index (NumPy's indexing would count it from the end, silently; CuPy's
    wraps any index around). On a GPU the check is made with the next read from it."""
    if index.size:
        check((index < 0) | (index >= size), lambda: IndexError(
            f"{op}: index out of range for a dim of size {size}: the indices span "
            f"[{int(index.min())}, {int(index.max())}]"))


def raise_failed_checks():
    """Read this thread's pending checks in one transfer and raise the first that failed."""
    checks = _pending.checks
    if not checks:
        return
    _pending.checks = []
    flags = xp_of(checks[0][0]).stack([failed for failed, _ in checks])
    flags = flags if isinstance(flags, np.ndarray) else flags.get()
    for (_, error), failed in zip(checks, flags):
        if failed:
            raise error()
