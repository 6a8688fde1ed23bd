"""`tr.cuda`, as torch.cuda: whether a GPU can be used, how many there are, waiting for one.

CuPy is loaded (through backend) only when asked; without it or without a GPU,
`is_available()` is False and `device_count()` is 0, with no error.
"""
from . import backend


def is_available():
    """True when CuPy imports and at least one GPU answers."""
    return backend.cuda_available()


def device_count():
    """The number of GPUs visible; 0 when none can be used."""
    return backend.cuda_device_count()


def synchronize():
    """Block until the GPU has finished all queued work (for timing); an error without a GPU."""
    backend.synchronize()
