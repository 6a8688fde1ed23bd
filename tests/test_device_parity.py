"""Methods whose GPU form makes a CuPy call that differs from NumPy's (a keyword CuPy lacks, a NumPy
array it refuses, an index it wraps around instead of raising), run on each device and compared with
the CPU. On the CPU they compare NumPy with itself; where a GPU answers they catch what only CuPy does.
"""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import backend
from tinygrad_rnn.nn import functional as F

A3 = np.array([[[0.5, -1.0, 2.0, 2.0], [-0.25, 3.0, -3.0, 0.0], [1.5, 1.5, -0.5, 4.0]],
               [[-2.0, 0.75, 0.0, 1.0], [2.5, -1.5, 0.25, -0.75], [0.0, 0.0, 3.5, -4.0]]])  # ties on purpose
IDX3 = [[[3, 0], [1, 1], [0, 2]], [[2, 2], [0, 3], [1, 0]]]
INTS = [[3, -7, 0, 5], [-2, 4, 4, -9]]

DIFFERENTIABLE = {  # x: float64 (2, 3, 4) on the device; d: the device, for the index tensors
    "gather": lambda x, d: x.gather(2, tr.tensor(IDX3, device=d)),
    "index_select": lambda x, d: x.index_select(1, tr.tensor([2, 0, 2], device=d)),
    "masked_select": lambda x, d: x.masked_select(x > 0),
    "sort descending": lambda x, d: x.sort(dim=1, descending=True).values,
    "topk": lambda x, d: x.topk(2).values,
    "flip": lambda x, d: x.flip(0, 2),
    "tril, triu": lambda x, d: x.tril(1) + x.triu(-1),
    "logsumexp": lambda x, d: x.logsumexp((0, 2)),
    "repeat_interleave by a tensor": lambda x, d: x.repeat_interleave(tr.tensor([2, 0, 1, 3], device=d), dim=2),
    "repeat_interleave by an int": lambda x, d: x.repeat_interleave(2, dim=1),
    "max(dim), min(dim)": lambda x, d: x.max(dim=2).values + x.min(dim=2).values,
    "amax, amin": lambda x, d: x.amax((0, 2)) + x.amin((0, 2)),
    "cumsum": lambda x, d: x.cumsum(1),
    "softmax, log_softmax": lambda x, d: x.softmax(-1) + x.log_softmax(1),
    "softmax of an empty dim": lambda x, d: x[:, :, :0].softmax(-1),
    "var, std, norms": lambda x, d: x.var(1) + x.std(2).sum() + x.norm(1) + x.norm(float("inf")) + x.norm(0.5),
    "abs, sign": lambda x, d: x.abs() * x.sign(),
    "maximum, minimum": lambda x, d: x.maximum(x.flip(2)) + x.minimum(x.flip(0)),
    "remainder, fmod, //": lambda x, d: x.remainder(0.75) + x.fmod(-0.75) + x.div(0.3, rounding_mode="floor"),
    "clip by arrays": lambda x, d: x.clip(min=np.float64(-1.0), max=np.array([1.0, 0.5, 2.0, 3.0])),
    "clip by tensors": lambda x, d: x.clamp(min=tr.tensor(-0.5, dtype=tr.float64, device=d),
                                           max=tr.tensor([1.0, 2.0, 0.0, 3.0], dtype=tr.float64, device=d)),
    "where, masked_fill": lambda x, d: tr.where(x > 1, x, 0.0) + x.masked_fill(x < 0, 2.0),
    "cross_entropy": lambda x, d: F.cross_entropy(x.reshape(6, 4), tr.tensor([0, 3, -100, 1, 2, 2], device=d),
                                                  weight=tr.tensor([1.0, 2.0, 0.5, 1.5], dtype=tr.float64, device=d),
                                                  label_smoothing=0.1),
    "cross_entropy, every row ignored": lambda x, d: F.cross_entropy(x[0], tr.tensor([-100] * 3, device=d)),
    "nll_loss": lambda x, d: F.nll_loss(x.reshape(6, 4).log_softmax(1), tr.tensor([0, 3, 1, 1, 2, 2], device=d)),
    "einsum": lambda x, d: tr.einsum("ijk,ik->ij", x, x[:, 0]),
}

VALUES = {  # no gradient: the values and the dtype must agree
    "argsort": lambda x, d: x.argsort(dim=2),
    "argsort descending": lambda x, d: x.argsort(dim=1, descending=True),
    "topk indices": lambda x, d: x.topk(3, dim=1).indices,
    "argmax, argmin": lambda x, d: x.argmax(2) * 10 + x.argmin(),
    "isclose": lambda x, d: x.isclose(x + 1e-9),
    "allclose": lambda x, d: tr.tensor(x.allclose(x.flip(0))),
    "isnan, isinf, isfinite": lambda x, d: (x / 0).isnan() | (x / 0).isinf() | x.isfinite(),
    "any, all": lambda x, d: (x > 0).any(1) & (x > -3).all(1),
    "sign of NaN": lambda x, d: (x / 0).sign(),
    "integer max(dim), amax": lambda x, d: (x * 4).long().max(dim=1).values + (x * 4).long().amax(1),
    "integer cumsum": lambda x, d: (x > 0).cumsum(2),
    "integer remainder, fmod, //": lambda x, d: (x * 4).long() % 3 + (x * 4).long().fmod(-3) + (x * 4).long() // 2,
    "bitwise": lambda x, d: ((x > 0) & (x < 2)) | ((x * 4).long() ^ 5 > 3),
    "norm 0": lambda x, d: x.norm(0, dim=1),
}


def _run(fn, device):
    x = tr.tensor(A3, dtype=tr.float64, device=device, requires_grad=True)
    out = fn(x, device)
    grad = None
    if out.requires_grad:
        out.backward(tr.ones(out.shape, dtype=out.dtype, device=device))
        grad = x.grad.numpy()
    return out, grad


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
def test_a_method_and_its_gradient_on_the_device_equal_the_cpus(name, device):
    (expected, expected_grad), (out, grad) = _run(DIFFERENTIABLE[name], "cpu"), _run(DIFFERENTIABLE[name], device)
    assert out.device == device and out.dtype == expected.dtype
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(VALUES))
def test_a_method_without_gradient_on_the_device_equals_the_cpus(name, device):
    with np.errstate(divide="ignore", invalid="ignore"):
        expected, out = VALUES[name](tr.tensor(A3, dtype=tr.float64), "cpu"), VALUES[name](
            tr.tensor(A3, dtype=tr.float64, device=device), device)
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out.numpy(), expected.numpy())


def test_setitem_takes_numbers_lists_and_host_arrays(device):
    t = tr.zeros(3, 4, device=device)
    t[0] = [1, 2, 3, 4]                           # CuPy refuses a NumPy array assigned to a slice
    t[1, 1:] = np.array([5.0, 6.0, 7.0])
    t[2, tr.tensor([0, 3], device=device)] = np.array([8.0, 9.0])
    t[:, 0] = 7
    np.testing.assert_array_equal(t.numpy(), [[7, 2, 3, 4], [7, 5, 6, 7], [7, 0, 0, 9]])
    assert t.device == device


def test_integer_setitem_refuses_a_value_that_does_not_fit_on_every_device(device):
    t = tr.zeros(3, dtype=tr.int64, device=device)
    with pytest.raises(ValueError, match="cannot be converted to type int64"):
        t[0] = float("nan")


@pytest.mark.parametrize("method", ["gather", "index_select"])
def test_an_index_out_of_range_raises_by_the_next_read_on_every_device(method, device):
    """NumPy raises at once; CuPy would wrap the index around, so the check is read with the next value."""
    x = tr.tensor(A3, device=device)
    bad = tr.tensor(np.full((2, 3, 1), 4) if method == "gather" else [0, 3], device=device)
    with pytest.raises(IndexError):
        getattr(x, method)(2 if method == "gather" else 1, bad).numpy()
    backend._pending.checks = []


def test_the_gpus_index_check_names_the_method(monkeypatch):
    """The check CuPy needs, taken on NumPy arrays in the GPU's order (NumPy's own error comes first)."""
    monkeypatch.setattr(backend, "_DEFER_ON_HOST", True)
    backend._pending.checks = []
    x = tr.tensor(A3)
    with pytest.raises(IndexError):
        x.index_select(1, tr.tensor([0, -4]))
    with pytest.raises(IndexError, match=r"index_select: index out of range for a dim of size 3: the indices "
                                         r"span \[-4, 0\]"):
        backend.raise_failed_checks()
    x.gather(2, tr.tensor(np.full((2, 3, 1), 3)))  # in range: nothing is left to raise
    backend.raise_failed_checks()
    with pytest.raises(IndexError):
        x.gather(2, tr.tensor(np.full((2, 3, 1), 4)))
    with pytest.raises(IndexError, match=r"gather: index out of range for a dim of size 4"):
        backend.raise_failed_checks()


def test_raw_arrays_on_the_device_take_the_same_calls(device):
    """Reductions and scatters the engine makes on raw arrays: a tensor indexed with repeats and a mask."""
    x = tr.tensor(A3, dtype=tr.float64, device=device, requires_grad=True)
    index = tr.tensor([0, 0, 2, 0], device=device)                 # repeated rows: the scatter adds them
    (x[1][index].sum() + x[x > 1].sum()).backward()
    expected = np.zeros_like(A3)
    expected[1, 0] += 3
    expected[1, 2] += 1
    expected[A3 > 1] += 1
    np.testing.assert_array_equal(x.grad.numpy(), expected)
    assert np.array_equal(tr.tensor(INTS, device=device).sum(dim=1).numpy(), np.sum(INTS, axis=1))
