"""The fused passes keep their large NumPy work buffers for the next pass (fused.BufferPool)."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.nn import fused
from tinygrad_rnn.nn.fused import BufferPool


def test_a_given_array_comes_back_once_and_views_never():
    pool = BufferPool(1 << 20)
    a = np.empty((4, 5))
    pool.give(a, a, a[:2], None)
    assert pool.held == a.nbytes
    assert pool.empty(np, (4, 5), np.float64) is a
    assert pool.empty(np, (4, 5), np.float64) is not a           # a fresh one: the pool is empty
    assert pool.empty(np, (4, 5), np.float32).dtype == np.float32  # dtype and shape are the key
    pool.give(a)
    pool.clear()
    assert pool.held == 0 and pool.empty(np, (4, 5), np.float64) is not a


def test_the_limit_drops_the_shapes_used_least_recently():
    pool = BufferPool(3 * 800)
    old, recent = [np.empty(100) for _ in range(2)], [np.empty((10, 10)) for _ in range(2)]
    pool.give(*old)
    pool.give(*recent)
    assert pool.held == 3 * 800                                   # one of the older shape was dropped
    taken = [pool.empty(np, shape, np.float64) for shape in [(10, 10), (10, 10), (100,), (100,)]]
    assert {id(a) for a in taken[:2]} == {id(a) for a in recent}
    assert any(taken[2] is a for a in old) and not any(taken[3] is a for a in old)


@pytest.fixture
def pool(monkeypatch):
    pool = BufferPool(64 << 20)
    monkeypatch.setattr(fused, "BUFFERS", pool)
    return pool


def step(layer, x):
    out, state = layer(x)
    states = list(state) if isinstance(state, tuple) else [state]
    loss = (out * out).sum() + sum(s.sum() for s in states)
    return [out] + states, loss


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("options", [{}, {"checkpoint_every": 2}, {"bidirectional": True, "num_layers": 2}],
                         ids=["plain", "checkpoint_every", "two layers, bidirectional"])
def test_steps_reuse_the_buffers_and_get_the_same_numbers(pool, mode, options):
    tr.manual_seed(0)
    layer = getattr(tr.nn, mode)(3, 4, dtype="float64", **options)
    x = tr.Tensor(np.random.default_rng(0).standard_normal((5, 2, 3)), dtype="float64")
    results = []
    for _ in range(3):
        layer.zero_grad()
        outputs, loss = step(layer, x)
        loss.backward()
        results.append([o.numpy() for o in outputs] + [p.grad.numpy() for p in layer.parameters()])
        if mode != "RNN" or options.get("checkpoint_every"):
            assert pool.held  # something came back for the next step
    for later in results[1:]:
        for a, b in zip(results[0], later):
            np.testing.assert_array_equal(a, b)


def test_graphs_alive_together_do_not_share_buffers(pool):
    """Two forwards before either backward (and a no_grad one between): each keeps its own buffers."""
    tr.manual_seed(0)
    layer = tr.nn.LSTM(3, 4, dtype="float64")
    rng = np.random.default_rng(1)
    xs = [tr.Tensor(rng.standard_normal((5, 2, 3)), dtype="float64") for _ in range(2)]
    alone = []
    for x in xs:
        layer.zero_grad()
        step(layer, x)[1].backward()
        alone.append([p.grad.numpy().copy() for p in layer.parameters()])
    layer.zero_grad()
    loss_a, loss_b = (step(layer, x)[1] for x in xs)
    with tr.no_grad():
        layer(xs[1])
    loss_b.backward()
    grads_b = [p.grad.numpy().copy() for p in layer.parameters()]
    layer.zero_grad()
    loss_a.backward()
    for a, b in zip(alone, ([p.grad.numpy() for p in layer.parameters()], grads_b)):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


def test_a_second_backward_recomputes_into_fresh_buffers(pool):
    tr.manual_seed(0)
    layer = tr.nn.GRU(3, 4, dtype="float64")
    x = tr.Tensor(np.random.default_rng(2).standard_normal((5, 2, 3)), dtype="float64")
    _, loss = step(layer, x)
    loss.backward(retain_graph=True)
    once = [p.grad.numpy().copy() for p in layer.parameters()]
    step(layer, x)[1].backward()          # another step in between takes what the first gave back
    layer.zero_grad()
    loss.backward()
    for a, p in zip(once, layer.parameters()):
        np.testing.assert_array_equal(a, p.grad.numpy())
