"""Shared fixtures: every test that takes `device` runs on NumPy and, where a GPU answers, on CuPy."""
import os

import numpy as np
import pytest

import tinygrad_rnn as tr

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    if request.param == "cuda" and not tr.cuda_available():
        pytest.skip("CuPy with a working GPU is not available here")
    return request.param


@pytest.fixture
def torch():
    """PyTorch for parity tests: skipped where it is missing, a failure in CI."""
    try:
        import torch
    except ImportError:
        if IN_CI:
            pytest.fail("PyTorch is required for parity tests in CI (pip install torch==2.13.0)")
        pytest.skip("PyTorch is not installed (pip install -e .[parity])")
    torch.set_default_dtype(torch.float64)
    return torch


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def to_np(x):
    """Host numpy view of a Tensor or backend array, for assertions."""
    return x.numpy() if isinstance(x, tr.Tensor) else tr.backend.to_numpy(x)
