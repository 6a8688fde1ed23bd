"""Functions with several outputs: one node makes them all, and each output keeps its own gradient."""
import numpy as np
import pytest

import tinygrad_rnn as tr


class ExpBoth(tr.Function):
    """(exp x, exp -x) from one node; the backward written in primitives, so it differentiates again."""
    multiple_outputs = True
    saves = (0,)

    def forward(self, x):
        return np.exp(x), np.exp(-x)

    def backward(self, g_up, g_down):
        x = self.input(0)
        total = None
        if g_up is not None:
            total = g_up * x.exp()
        if g_down is not None:
            part = -g_down * (-x).exp()
            total = part if total is None else total + part
        return (total,)


class MaybeSecond(tr.Function):
    """An op whose second output is absent (None) when asked."""
    multiple_outputs = True

    def forward(self, x, second):
        return x * 2.0, (x * 3.0 if second else None)

    def backward(self, g_first, g_second=None):
        total = g_first * 2.0 if g_first is not None else None
        if g_second is not None:
            total = g_second * 3.0 if total is None else total + g_second * 3.0
        return (total,)


def leaf(values=(0.3, -1.2, 2.0)):
    return tr.tensor(np.array(values), dtype=tr.float64, requires_grad=True)


def test_one_node_makes_every_output():
    x = leaf()
    s, c = ExpBoth.apply(x)
    assert s.grad_fn is c.grad_fn and s.grad_fn.op == "expboth"
    np.testing.assert_allclose(s.numpy(), np.exp(x.numpy()))
    np.testing.assert_allclose(c.numpy(), np.exp(-x.numpy()))
    s.named("s")
    c.named("c")
    assert (s.name, c.name) == ("s", "c")
    assert s.grad_fn.name == "s" and s.grad_fn.names == ["s", "c"]


@pytest.mark.parametrize("use", ["up", "down", "both", "down twice"])
def test_gradients_reach_the_input_from_any_outputs(use):
    x = leaf()
    s, c = ExpBoth.apply(x)
    loss = {"up": lambda: (s * s).sum(), "down": lambda: c.sum(), "both": lambda: (s * c * c).sum(),
            "down twice": lambda: c.sum() + (c * 2.0).sum()}[use]()
    loss.backward()
    v = x.numpy()
    expected = {"up": 2 * np.exp(2 * v), "down": -np.exp(-v), "both": -np.exp(-v),
                "down twice": -3 * np.exp(-v)}[use]
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)


def test_gradcheck_and_gradgradcheck():
    def both(x):
        s, c = ExpBoth.apply(x)
        return s * c.exp()

    assert tr.gradcheck(both, leaf())
    assert tr.gradgradcheck(both, leaf())


def test_autograd_grad_of_and_with_respect_to_a_later_output():
    x = leaf()
    s, c = ExpBoth.apply(x)
    y = (c * c).sum() + s.sum()
    (dc,) = tr.autograd.grad(y, c, retain_graph=True)
    np.testing.assert_allclose(dc.numpy(), 2 * np.exp(-x.numpy()))
    (ds,) = tr.autograd.grad(y, s)
    np.testing.assert_allclose(ds.numpy(), np.ones(3))


def test_hooks_and_retained_gradients_are_per_output():
    x = leaf()
    s, c = ExpBoth.apply(x)
    seen = []
    c.register_hook(lambda g: seen.append(("c", g.numpy().copy())))
    handle = s.register_hook(lambda g: g * 0.0)   # cuts the sine's share
    c.retain_grad()
    (s.sum() + (c * 3.0).sum()).backward()
    assert [name for name, _ in seen] == ["c"]
    np.testing.assert_allclose(seen[0][1], np.full(3, 3.0))
    np.testing.assert_allclose(c.grad.numpy(), np.full(3, 3.0))
    assert s.grad is None or np.all(s.grad.numpy() == 0)
    np.testing.assert_allclose(x.grad.numpy(), -3 * np.exp(-x.numpy()))
    handle.remove()
    x.grad = None
    s, c = ExpBoth.apply(x)
    s.register_hook(lambda g: g * 0.0).remove()
    s.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp(x.numpy()))


def test_an_absent_output_is_none():
    x = leaf()
    first, second = MaybeSecond.apply(x, second=False)
    assert second is None
    first.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 2.0))


def test_a_slice_of_a_later_output():
    x = leaf()
    _, second = MaybeSecond.apply(x, second=True)
    second[1:].sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 3.0, 3.0])


def test_forward_mode_through_several_outputs():
    class ExpBothJvp(ExpBoth):
        def jvp(self, inputs, tangents):
            x, dx = inputs[0], tangents[0]
            return dx * x.exp(), -dx * (-x).exp()

    x = leaf()
    _, tangent = tr.func.jvp(lambda v: ExpBothJvp.apply(v)[1] * 2.0, (x.detach(),), (tr.ones_like(x),))
    np.testing.assert_allclose(tangent.numpy(), -2 * np.exp(-x.numpy()))


def test_recorded_under_no_grad_gives_plain_tensors():
    with tr.no_grad():
        s, c = ExpBoth.apply(leaf())
    assert s.grad_fn is None and c.grad_fn is None and not c.requires_grad
