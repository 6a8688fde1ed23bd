"""cross_entropy, nll_loss and mse_loss against torch.nn.functional: values and gradients in float64."""
import numpy as np
import pytest

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F

from .conftest import to_np


def pair(torch, array, device):
    """The same float64 array as our tensor (on device) and torch's, both requiring grad."""
    return (tr.Tensor(array, requires_grad=True, dtype="float64", device=device),
            torch.tensor(array, requires_grad=True))


def check_value_and_grad(torch, ours, theirs, x, y):
    g = np.random.default_rng(5).standard_normal(ours.shape) if ours.ndim else None
    ours.backward(None if g is None else tr.Tensor(g, dtype="float64", device=x.device))
    theirs.backward(None if g is None else torch.from_numpy(g))
    np.testing.assert_allclose(to_np(ours.array), theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(to_np(x.grad), y.grad.numpy(), rtol=1e-10, atol=1e-14)


# (logits shape, target shape)
CE_SHAPES = [((6, 5), (6,)), ((5,), ()), ((3, 5, 4), (3, 4)), ((2, 5, 3, 2), (2, 3, 2))]
CE_CASES = [(shapes, reduction) for shapes in CE_SHAPES for reduction in ("mean", "sum", "none")]


@pytest.mark.parametrize("shapes,reduction", CE_CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("ignore", [False, True])
def test_cross_entropy_matches_torch(torch, device, rng, shapes, reduction, ignore):
    logits_shape, target_shape = shapes
    n_classes = logits_shape[1 if len(logits_shape) > 1 else 0]
    target = rng.integers(0, n_classes, size=target_shape)
    if ignore and target.ndim:
        target.flat[::2] = 3  # every other element ignored; 3 is also a real class of these logits
    ignore_index = 3 if ignore else -100
    x, y = pair(torch, 3 * rng.standard_normal(logits_shape), device)
    ours = F.cross_entropy(x, tr.Tensor(target, device=device), ignore_index=ignore_index, reduction=reduction)
    theirs = torch.nn.functional.cross_entropy(y, torch.from_numpy(target), ignore_index=ignore_index,
                                               reduction=reduction)
    assert ours.shape == tuple(theirs.shape)
    check_value_and_grad(torch, ours, theirs, x, y)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_torch(torch, device, rng, reduction):
    x, y = pair(torch, np.log(rng.dirichlet(np.ones(7), size=9)), device)
    target = rng.integers(0, 7, size=9)
    target[4] = -1
    ours = F.nll_loss(x, tr.Tensor(target, device=device), ignore_index=-1, reduction=reduction)
    theirs = torch.nn.functional.nll_loss(y, torch.from_numpy(target), ignore_index=-1, reduction=reduction)
    check_value_and_grad(torch, ours, theirs, x, y)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(torch, device, rng, reduction):
    x, y = pair(torch, rng.standard_normal((4, 3)), device)
    t, u = pair(torch, rng.standard_normal((4, 3)), device)
    ours = F.mse_loss(x, t, reduction=reduction)
    theirs = torch.nn.functional.mse_loss(y, u, reduction=reduction)
    check_value_and_grad(torch, ours, theirs, x, y)
    np.testing.assert_allclose(to_np(t.grad), u.grad.numpy(), rtol=1e-10)


def test_cross_entropy_is_stable_for_huge_logits(torch):
    logits = np.array([[1000.0, -1000.0, 0.0], [-800.0, 900.0, 900.0]])
    x, y = pair(torch, logits, "cpu")
    target = np.array([1, 2])
    ours = F.cross_entropy(x, target)
    theirs = torch.nn.functional.cross_entropy(y, torch.from_numpy(target))
    check_value_and_grad(torch, ours, theirs, x, y)
    assert np.isfinite(ours.item())


def test_loss_errors_name_the_problem():
    logits = tr.Tensor(np.zeros((4, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"expected log_probs \(N, C\) and target \(N,\); got \(4, 3\) and \(5,\)"):
        F.nll_loss(logits, np.zeros(5, dtype=np.int64))
    with pytest.raises(IndexError, match=r"must lie in \[0, 3\)"):
        F.cross_entropy(logits, np.array([0, 1, 2, 3]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(logits, np.zeros(4))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(logits, np.zeros(4, dtype=np.int64), reduction="avg")
    with pytest.raises(ValueError, match=r"input \(4, 3\) and target \(3, 4\)"):
        F.mse_loss(logits, np.zeros((3, 4)))
