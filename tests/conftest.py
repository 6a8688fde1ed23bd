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
        pytest.skip("PyTorch is not installed, so the parity tests cannot compare with it "
                    "(make test installs it; else pip install -e \".[parity]\")")
    torch.set_default_dtype(torch.float64)
    return torch


@pytest.fixture
def torch_default_float32():
    """torch at its own default dtype, float32, as both libraries start, for tests that compare dtypes
    (the `torch` fixture leaves it at float64)."""
    import torch
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def to_np(x):
    """Host numpy view of a Tensor or backend array, for assertions."""
    return x.numpy() if isinstance(x, tr.Tensor) else tr.backend.to_numpy(x)


def pytest_terminal_summary(terminalreporter):
    """One line per reason for the skipped tests, with how many it skipped (the -r list gives each one)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    terminalreporter.section(f"{len(skipped)} skipped, by reason")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count:6d}  {reason}")
