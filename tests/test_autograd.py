"""Higher-order gradients, autograd.grad, tensor hooks and in-place checks, against torch in float64."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.test_ops_gradcheck import CASES
from tinygrad_rnn import ops


def f64(values, requires_grad=True):
    return tr.Tensor(np.asarray(values, dtype=np.float64), dtype="float64", requires_grad=requires_grad)


# --- every primitive differentiates twice

@pytest.mark.parametrize("op,case", [(op, i) for op in CASES for i in range(len(CASES[op]))
                                     if op not in (ops.ToDevice, ops.Cast)],
                         ids=lambda v: v.__name__ if isinstance(v, type) else str(v))
def test_gradgradcheck(op, case):
    fn, make = CASES[op][case]
    assert tr.gradgradcheck(fn, *make("cpu"))


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable():
    class Square(tr.Function):
        saves = (0,)

        def forward(self, x):
            return x * x

        def backward(self, g):
            return (g * tr.Tensor(2 * self.input(0).array, dtype="float64"),)  # right value, no graph

    x = f64([0.5, -1.5])
    assert tr.gradcheck(lambda x: Square.apply(x), x)
    with pytest.raises(tr.GradcheckError):
        tr.gradgradcheck(lambda x: Square.apply(x), x)


# --- create_graph, autograd.grad

def test_third_derivative_of_a_polynomial():
    x = f64([1.5, -2.0])
    y = (x ** 4).sum()
    (g,) = tr.autograd.grad(y, x, create_graph=True)
    (gg,) = tr.autograd.grad(g.sum(), x, create_graph=True)
    (ggg,) = tr.autograd.grad(gg.sum(), x)
    np.testing.assert_allclose(g.numpy(), 4 * x.numpy() ** 3)
    np.testing.assert_allclose(gg.numpy(), 12 * x.numpy() ** 2)
    np.testing.assert_allclose(ggg.numpy(), 24 * x.numpy())


def test_backward_with_create_graph_gives_grads_with_a_graph(torch):
    xs = np.array([0.3, -0.7, 1.1])
    x = f64(xs)
    (x.tanh() * x.exp()).sum().backward(create_graph=True)
    assert x.grad.requires_grad and x.grad.grad_fn is not None
    g = x.grad
    x.grad = None
    (g * g).sum().backward()
    xt = torch.tensor(xs, requires_grad=True)
    (xt.tanh() * xt.exp()).sum().backward(create_graph=True)
    gt = xt.grad
    xt.grad = None
    (gt * gt).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)


def test_autograd_grad_returns_without_accumulating(torch):
    x, w = f64([1.0, 2.0]), f64([3.0, -1.0])
    y = (x * w).tanh()
    gx, gw = tr.autograd.grad(y, [x, w], grad_outputs=f64([1.0, 0.5], False))
    assert x.grad is None and w.grad is None
    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    wt = torch.tensor([3.0, -1.0], requires_grad=True)
    ref = torch.autograd.grad((xt * wt).tanh(), [xt, wt], grad_outputs=torch.tensor([1.0, 0.5]))
    np.testing.assert_allclose(gx.numpy(), ref[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(gw.numpy(), ref[1].numpy(), rtol=1e-12)


def test_autograd_grad_of_an_intermediate_tensor():
    x = f64([2.0])
    h = x * 3
    y = (h * h).sum()
    (gh,) = tr.autograd.grad(y, h)
    np.testing.assert_allclose(gh.numpy(), [12.0])


def test_autograd_grad_unused_input():
    x, unused = f64([1.0]), f64([2.0])
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        tr.autograd.grad(y, [x, unused], retain_graph=True)
    _, gu = tr.autograd.grad(y, [x, unused], allow_unused=True, retain_graph=True)
    assert gu is None
    _, gz = tr.autograd.grad(y, [x, unused], materialize_grads=True)
    np.testing.assert_array_equal(gz.numpy(), [0.0])


def test_backward_inputs_restricts_accumulation():
    x, w = f64([1.0]), f64([2.0])
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None and w.grad.item() == 1.0


def test_grad_is_a_tensor_and_data_shares_storage():
    p = tr.nn.Parameter(np.array([1.0, 2.0]), dtype="float64")
    (p * p).sum().backward()
    assert isinstance(p.grad, tr.Tensor) and not p.grad.requires_grad
    p.data.add_(p.grad, alpha=-0.25)   # the classic hand-written SGD step
    np.testing.assert_allclose(p.numpy(), [0.5, 1.0])
    assert not p.data.requires_grad


# --- hooks

def test_tensor_hooks_against_torch(torch):
    seen, seen_t = [], []
    x = f64([1.0, -2.0])
    h = x * 3
    handle = h.register_hook(lambda g: seen.append(g.numpy()) or g * 2)
    x.register_hook(lambda g: seen.append(g.numpy()))
    (h * h).sum().backward()
    xt = torch.tensor([1.0, -2.0], requires_grad=True)
    ht = xt * 3
    ht.register_hook(lambda g: seen_t.append(g.numpy()) or g * 2)
    xt.register_hook(lambda g: seen_t.append(g.numpy()))
    (ht * ht).sum().backward()
    assert len(seen) == len(seen_t) == 2
    for a, b in zip(seen, seen_t):
        np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy())
    handle.remove()
    x.grad = None
    h2 = x * 3
    (h2 * h2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy() / 2)


def test_hook_on_a_tensor_without_grad_is_refused():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        tr.Tensor([1.0]).register_hook(lambda g: g)


# --- in-place changes between forward and backward

def test_optimizer_step_between_forward_and_backward_is_an_error():
    w = tr.nn.Parameter(np.array([2.0, 3.0]))
    x = tr.Tensor([3.0, 4.0], requires_grad=True)
    opt = tr.optim.SGD([w], lr=0.1)
    y = (w * x).sum()
    (w * w).sum().backward()
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*mul"):
        y.backward()


def test_in_place_on_a_leaf_that_requires_grad_is_refused_outside_no_grad():
    w = tr.Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.add_(1.0)
    with tr.no_grad():
        w.add_(1.0)
    assert w.item() == 2.0


def test_in_place_change_of_a_saved_input_is_detected():
    x = tr.Tensor([2.0])
    w = tr.Tensor([3.0], requires_grad=True)
    y = w * x
    x.mul_(10)
    with pytest.raises(RuntimeError, match="version 1; expected version 0"):
        y.backward()


# --- the faults of 1-D products and powers at zero (as torch)

def test_dot_product_of_two_vectors_backpropagates(torch):
    a, b = f64([1.0, 2.0]), f64([3.0, 4.0])
    (a @ b).backward()
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 2.0])


def test_powers_at_zero_have_torchs_gradients(torch):
    x, e = f64([0.0, 2.0]), f64([0.0, 3.0])
    (x ** e).sum().backward()
    xt = torch.tensor([0.0, 2.0], requires_grad=True)
    et = torch.tensor([0.0, 3.0], requires_grad=True)
    (xt ** et).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy())
    np.testing.assert_allclose(e.grad.numpy(), et.grad.numpy())
    z = f64([0.0])
    (z ** 0).sum().backward()
    assert z.grad.item() == 0.0


def test_post_accumulate_grad_hooks_fire_once_with_the_final_gradient(torch):
    def run(lib, t):
        w, v = t([1.0, 2.0]), t([3.0])
        seen = []
        w.register_post_accumulate_grad_hook(lambda p: seen.append(("w", p.grad.tolist())))
        handle = v.register_post_accumulate_grad_hook(lambda p: seen.append(("v", p.grad.tolist())))
        ((w * w).sum() + (w * v).sum() + w.sum() * 3).backward()
        handle.remove()
        (v * 2).sum().backward()
        return sorted(seen)

    ours = run(tr, lambda a: tr.tensor(a, dtype=tr.float64, requires_grad=True))
    theirs = run(torch, lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True))
    assert ours == theirs == [("v", [3.0]), ("w", [8.0, 10.0])]
