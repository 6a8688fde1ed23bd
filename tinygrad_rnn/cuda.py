"""`tr.cuda`, as torch.cuda: whether a GPU can be used, how many there are, waiting for one, seeding.

CuPy is loaded (through backend) only when asked; without it or without a GPU,
`is_available()` is False and `device_count()` is 0, with no error.
"""
from . import backend
from .generator import check_seed


def is_available():
    """True when CuPy imports and at least one GPU answers."""
    return backend.cuda_available()


def device_count():
    """The number of GPUs visible; 0 when none can be used."""
    return backend.cuda_device_count()


def synchronize():
    """Block until the GPU has finished all queued work (for timing); an error without a GPU."""
    backend.synchronize()


def manual_seed(seed):
    """Accepted, as torch's: GPU tensors draw their numbers on the host from the generator that
    `tr.manual_seed` seeds (so one seed gives the same weights on every device); this only checks
    the seed."""
    check_seed(seed, "cuda.manual_seed")


def manual_seed_all(seed):
    """As manual_seed, for every GPU."""
    check_seed(seed, "cuda.manual_seed_all")
