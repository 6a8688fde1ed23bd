"""How many threads NumPy's BLAS may use for matrix products.

A recurrent step multiplies small matrices (batch x hidden by hidden x 4 hidden): spreading each
product over threads costs more than it saves, and on a machine busy with other work the waiting
threads slow training down many times over. The training commands therefore run BLAS on one
thread unless told otherwise. The environment variable OPENBLAS_NUM_THREADS only counts when set
before NumPy loads; threadpoolctl changes the count of the already loaded library (OpenBLAS, MKL
or BLIS), on every platform it supports.
"""
import contextlib


def blas_controller():
    """threadpoolctl's controller of the BLAS libraries NumPy has loaded."""
    import numpy  # noqa: F401  (NumPy loads its BLAS)
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController().select(user_api="blas")


@contextlib.contextmanager
def blas_threads(n):
    """Inside the block BLAS uses n threads (n < 1: leave it alone); the previous counts come back after.

    Yields whether a BLAS library was found to limit.
    """
    if n < 1:
        yield False
        return
    controller = blas_controller()
    with controller.limit(limits=n):
        yield bool(controller.lib_controllers)
