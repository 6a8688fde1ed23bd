"""Gradient clipping against torch.nn.utils, and its edge cases."""
import math

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import backend
from tinygrad_rnn.nn import Parameter
from tinygrad_rnn.nn.utils import clip_grad_norm_, clip_grad_value_

from .conftest import to_np

SHAPES = [(4, 3), (6,), (2, 2, 2)]


def gradients(scale):
    rng = np.random.default_rng(1)
    return [scale * rng.standard_normal(shape) for shape in SHAPES]


def ours_with(grads, device):
    params = [Parameter(np.zeros(g.shape), dtype="float64", device=device) for g in grads]
    for p, g in zip(params, grads):
        p.grad = backend.to_device(g.copy(), device)
    return params


def theirs_with(torch, grads):
    params = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.from_numpy(g.copy())
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf, 0, -math.inf, -1.5])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(torch, device, norm_type, max_norm):
    grads = gradients(2.0)
    ours, theirs = ours_with(grads, device), theirs_with(torch, grads)
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, tr.Tensor) and total.shape == () and total.device == device  # as torch: no host sync
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(to_np(p.grad), q.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_clipped_gradients_have_the_max_norm_and_keep_their_direction():
    grads = gradients(5.0)
    params = ours_with(grads, "cpu")
    total = clip_grad_norm_(params, 1.0).item()
    flat_before = np.concatenate([g.ravel() for g in grads])
    flat_after = np.concatenate([p.grad.numpy().ravel() for p in params])
    assert total == pytest.approx(np.linalg.norm(flat_before))
    assert np.linalg.norm(flat_after) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(flat_after, flat_before / (total + 1e-6), rtol=1e-12)


def test_small_gradients_and_missing_gradients_are_left_alone():
    grads = gradients(1e-3)
    params = ours_with(grads, "cpu") + [Parameter(np.zeros(3))]
    clip_grad_norm_(params, 10.0)
    for p, g in zip(params, grads):
        np.testing.assert_array_equal(p.grad, g)
    assert params[-1].grad is None
    assert clip_grad_norm_([Parameter(np.zeros(3))], 1.0).item() == 0.0


def test_single_tensor_is_accepted():
    p = ours_with([np.array([3.0, 4.0])], "cpu")[0]
    assert clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-6)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_non_finite_norm(torch):
    grads = gradients(1.0)
    grads[1][2] = np.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ours_with(grads, "cpu"), 1.0, error_if_nonfinite=True)
    ours = ours_with(grads, "cpu")
    theirs = theirs_with(torch, grads)
    assert clip_grad_norm_(ours, 1.0).item() == math.inf
    torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad, q.grad.numpy())  # nan where torch has nan


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_a_norm_past_the_dtypes_range_is_inf_without_a_warning_as_torch(torch, norm_type):
    grads = [np.full(3, 1e30, np.float32), np.array([np.inf, 1.0], np.float32)]
    ours = [Parameter(np.zeros(g.shape, np.float32)) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float32, requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = tr.tensor(g.copy()), torch.from_numpy(g.copy())
    with np.errstate(all="raise"):   # any warning NumPy gives raises here
        total = clip_grad_norm_(ours, 1.0, norm_type=norm_type)
    assert total.item() == torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=norm_type).item() == math.inf
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(to_np(p.grad), q.grad.numpy())


@pytest.mark.parametrize("norm_type", [0, -1.0, -math.inf])
def test_zero_gradients_in_orders_below_one_match_torch(torch, norm_type):
    grads = gradients(1.0)
    grads[0][1] = 0.0  # order 0 does not count it; a negative order makes the norm of its tensor 0
    grads[2][:] = 0.0
    ours, theirs = ours_with(grads, "cpu"), theirs_with(torch, grads)
    total = clip_grad_norm_(ours, 0.5, norm_type=norm_type).item()
    assert total == pytest.approx(torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type=norm_type).item(), rel=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(to_np(p.grad), q.grad.numpy(), rtol=1e-12)


def test_bad_norm_type():
    with pytest.raises(ValueError, match="norm_type must be a number or"):
        clip_grad_norm_(ours_with(gradients(1.0), "cpu"), 1.0, norm_type=math.nan)
    with pytest.raises(ValueError, match="order -1.0 of an empty gradient"):  # as torch, which cannot either
        clip_grad_norm_(ours_with([np.ones(2), np.zeros(0)], "cpu"), 1.0, norm_type=-1)


@pytest.mark.parametrize("clip_value", [0.3, 5.0])
def test_clip_grad_value_matches_torch(torch, device, clip_value):
    grads = gradients(1.0)
    ours, theirs = ours_with(grads, device), theirs_with(torch, grads)
    clip_grad_value_(ours, clip_value)
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(to_np(p.grad), q.grad.numpy())


def test_float32_gradients_are_clipped_in_float32_as_torch(torch):
    grads = [g.astype(np.float32) for g in gradients(3.0)]
    ours = [Parameter(np.zeros(g.shape)) for g in grads]
    for p, g in zip(ours, grads):
        p.grad = g.copy()
    theirs = [torch.zeros(g.shape, dtype=torch.float32, requires_grad=True) for g in grads]
    for p, g in zip(theirs, grads):
        p.grad = torch.from_numpy(g.copy())
    total = clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total.dtype == np.float32 and total.item() == pytest.approx(expected.item(), rel=1e-6)
    for p, q in zip(ours, theirs):
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-6)


def test_zero_dim_parameters_are_clipped_with_the_rest(torch):
    """A 0-d parameter's gradient is a 0-d tensor: the joint norm counts it and both clips change it."""
    def run(lib, param):
        a, b = param(np.float64(3.0)), param(np.array([4.0]))
        (a * a * 10 + (b * b).sum() * 10).backward()
        total = float(lib.nn.utils.clip_grad_norm_([a, b], 1.0))
        after = float(np.sqrt(float(a.grad) ** 2 + float(b.grad.sum()) ** 2))
        lib.nn.utils.clip_grad_value_([a, b], 0.1)
        return total, after, float(a.grad), float(b.grad.sum())

    ours = run(tr, lambda v: Parameter(v, dtype="float64"))
    theirs = run(torch, lambda v: torch.nn.Parameter(torch.tensor(v)))
    assert ours == pytest.approx(theirs, rel=1e-9)
    assert ours[0] == pytest.approx(100.0) and ours[1] == pytest.approx(1.0, rel=1e-5)
