"""cross_entropy over class indices as one node: second derivatives against torch, the composed path's
numbers, and the graph it records."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.nn.parity import assert_close, pair

from .test_loss import IGNORED_CLASS, arguments, class_targets

OPTIONS = [{}, {"weight": True, "ignore": True}, {"label_smoothing": 0.2, "ignore": True},
           {"label_smoothing": 0.1, "weight": True, "ignore": True}]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_hessian_vector_products_match_torch(torch, device, rng, options, reduction):
    target = class_targets(rng, (6, 5), (6,), options.get("ignore"))
    ours_kw, their_kw = arguments(torch, rng, 5, options, device)
    x, y = pair(torch, 3 * rng.standard_normal((6, 5)), device)
    v = rng.standard_normal((6, 5))
    ours = tr.nn.functional.cross_entropy(x, tr.Tensor(target, device=device), reduction=reduction, **ours_kw)
    theirs = torch.nn.functional.cross_entropy(y, torch.from_numpy(target), reduction=reduction, **their_kw)
    assert ours.grad_fn.op == ("reshape" if reduction == "none" else "crossentropy")
    g = rng.standard_normal(tuple(theirs.shape))
    (gx,) = tr.autograd.grad(ours, x, tr.Tensor(g, dtype="float64", device=device), create_graph=True)
    (gy,) = torch.autograd.grad(theirs, y, torch.tensor(g), create_graph=True)
    assert_close(gx, gy, "first derivative")
    (gx * tr.Tensor(v, dtype="float64", device=device)).sum().backward()
    (gy * torch.tensor(v)).sum().backward()
    assert_close(x.grad, y.grad, "Hessian-vector product")


@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_gradgradcheck(options):
    rng = np.random.default_rng(3)
    target = tr.Tensor(class_targets(rng, (4, 3), (4,), options.get("ignore")))
    weight = tr.Tensor(rng.uniform(0.5, 2.0, 3), dtype="float64") if options.get("weight") else None
    x = tr.Tensor(rng.standard_normal((4, 3)), dtype="float64", requires_grad=True)
    kw = {"ignore_index": IGNORED_CLASS if options.get("ignore") else -100,
          "label_smoothing": options.get("label_smoothing", 0.0)}
    assert tr.gradgradcheck(lambda x: tr.nn.functional.cross_entropy(x, target, weight, **kw), x)


def test_the_node_and_the_composed_ops_agree_in_float32():
    """A weight that wants its own gradient takes the composed path: the same numbers, op by op."""
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((64, 40)).astype(np.float32) * 4
    target = rng.integers(0, 40, 64)
    weight = rng.uniform(0.5, 2.0, 40)
    results = []
    for wants_grad in (False, True):
        x = tr.Tensor(logits, requires_grad=True)
        w = tr.Tensor(weight, requires_grad=wants_grad)
        loss = tr.nn.functional.cross_entropy(x, target, weight=w, label_smoothing=0.1)
        loss.backward()
        results.append((loss.item(), x.grad.numpy(), loss.grad_fn.op))
    (fused, g_fused, op_fused), (composed, g_composed, op_composed) = results
    assert op_fused == "crossentropy" and op_composed != "crossentropy"
    assert fused == pytest.approx(composed, rel=1e-6)
    np.testing.assert_allclose(g_fused, g_composed, rtol=1e-5, atol=1e-7)


def test_forward_mode_takes_the_composed_path(torch):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 4))
    t = rng.standard_normal((5, 4))
    target = rng.integers(0, 4, 5)
    _, tangent = tr.func.jvp(lambda x: tr.nn.functional.cross_entropy(x, target, label_smoothing=0.1),
                             (tr.Tensor(x, dtype="float64"),), (tr.Tensor(t, dtype="float64"),))
    _, expected = torch.func.jvp(
        lambda x: torch.nn.functional.cross_entropy(x, torch.from_numpy(target), label_smoothing=0.1),
        (torch.tensor(x),), (torch.tensor(t),))
    assert_close(tangent, expected, "tangent")


def test_a_second_backward_with_retain_graph_gives_the_same_gradient():
    rng = np.random.default_rng(4)
    x = tr.Tensor(rng.standard_normal((8, 6)), dtype="float64", requires_grad=True)
    loss = tr.nn.functional.cross_entropy(x, rng.integers(0, 6, 8), label_smoothing=0.3)
    loss.backward(retain_graph=True)
    first = x.grad.numpy()
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-14)
