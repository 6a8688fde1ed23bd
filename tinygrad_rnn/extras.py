"""Optional packages: which extra of tinygrad-rnn brings each one, and how to install it.

The package needs only NumPy (and threadpoolctl); pictures, loss curves, the progress bar and the
GPU come with extras. A missing one is reported in one line that says how to install it, both for
an installed package and for a source checkout.
"""
import importlib

EXTRA_OF = {"matplotlib": "train", "tqdm": "train", "graphviz": "viz", "cupy": "cuda", "mpi4py": "mpi",
            "torch": "parity"}


class MissingPackage(ImportError):
    """An optional package a feature needs is not installed; the message says how to install it."""


def install_hint(package):
    """The commands that install `package` through the extra that brings it."""
    extra = EXTRA_OF[package]
    return f'pip install "tinygrad-rnn[{extra}]" (in a source checkout: pip install -e ".[{extra}]")'


def missing(package, purpose):
    """The one-line message for `purpose` (e.g. "the loss curve") lacking `package`."""
    return f"{purpose} needs the {package} package, which is not installed: {install_hint(package)}"


def require(package, purpose):
    """Import and return `package`, or raise MissingPackage saying how to install it."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise MissingPackage(missing(package, purpose)) from None


def available(package):
    """Whether `package` can be imported (without importing it when it has been already)."""
    try:
        importlib.import_module(package)
    except ImportError:
        return False
    return True
