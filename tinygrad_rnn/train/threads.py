"""How many threads NumPy's BLAS may use for matrix products.

A recurrent step multiplies small matrices (batch x hidden by hidden x 4 hidden): spreading each
product over threads costs more than it saves, and on a machine busy with other work the waiting
threads slow training down many times over. The training commands therefore run BLAS on one
thread unless told otherwise. The environment variable OPENBLAS_NUM_THREADS only counts when set
before NumPy loads; this changes the count of the already loaded library (OpenBLAS or MKL, found
among the libraries this process has mapped; on systems without /proc it does nothing).
"""
import contextlib
import ctypes
import os

# (setter, getter) names: OpenBLAS as NumPy's wheels bundle it, plain OpenBLAS, MKL
_FUNCTIONS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
              ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
              ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
              ("openblas_set_num_threads", "openblas_get_num_threads"),
              ("MKL_Set_Num_Threads", "MKL_Get_Max_Threads"))


def _thread_controls():
    """(set, get) function pairs of the BLAS libraries mapped into this process."""
    import numpy  # noqa: F401  (NumPy loads its BLAS)
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if ".so" in line})
    except OSError:
        return []
    controls = []
    for path in paths:
        name = os.path.basename(path).lower()
        if "blas" not in name and "mkl_rt" not in name:
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _FUNCTIONS:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                controls.append((getattr(lib, set_name), getattr(lib, get_name)))
                break
    return controls


@contextlib.contextmanager
def blas_threads(n):
    """Inside the block BLAS uses n threads (n < 1: leave it alone); the previous counts come back after."""
    controls = _thread_controls() if n >= 1 else []
    before = [get() for _, get in controls]
    for set_threads, _ in controls:
        set_threads(ctypes.c_int(n))
    try:
        yield bool(controls)
    finally:
        for (set_threads, _), count in zip(controls, before):
            set_threads(ctypes.c_int(count))
