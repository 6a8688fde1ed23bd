"""Truncated BPTT: the state crosses chunks detached; each update sees only its own chunk."""
import numpy as np
import pytest

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn.nn import Parameter
from tinygrad_rnn.optim import SGD
from tinygrad_rnn.tbptt import chunk_bounds, detach_state, truncated_bptt

from .conftest import to_np

T, B, I, H = 12, 3, 2, 4


class TinyRNN:
    """h_t = tanh(x_t W + h_{t-1} U): built by hand so the test does not depend on the layers."""

    def __init__(self, device, rng):
        self.W = Parameter(0.5 * rng.standard_normal((I, H)), dtype="float64", device=device)
        self.U = Parameter(0.5 * rng.standard_normal((H, H)), dtype="float64", device=device)

    def __call__(self, x, h):
        if h is None:
            h = tr.zeros(B, H, dtype="float64", device=self.W.device)
        outputs = []
        for t in range(len(x)):
            h = (x[t] @ self.W + h @ self.U).tanh()
            outputs.append(h)
        return tr.stack(outputs), (h, [h * 2.0])  # a nested state, as detach_state must handle


def data(device, rng):
    x = tr.Tensor(rng.standard_normal((T, B, I)), dtype="float64", device=device)
    y = tr.Tensor(rng.standard_normal((T, B, H)), dtype="float64", device=device)
    return x, y


def forward_state(model, x, state):
    output, (h, _) = model(x, None if state is None else state[0])
    return output, (h, [h * 2.0])


def test_detach_state_keeps_values_and_nesting():
    x = tr.Tensor(np.ones(3), requires_grad=True)
    state = ((x * 2.0, x * 3.0), [x * 4.0], None)
    detached = detach_state(state)
    assert isinstance(detached, tuple) and isinstance(detached[0], tuple) and isinstance(detached[1], list)
    assert detached[2] is None
    for a in (detached[0][0], detached[0][1], detached[1][0]):
        assert a.is_leaf and not a.requires_grad
    np.testing.assert_array_equal(detached[1][0].array, np.full(3, 4.0))
    with pytest.raises(TypeError, match="expected a Tensor, None or a tuple/list"):
        detach_state({"h": x})


def test_chunk_bounds():
    assert chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunk_bounds(3, 5) == [(0, 3)]
    with pytest.raises(ValueError, match="positive integer"):
        chunk_bounds(10, 0)


def test_carried_state_equals_one_long_forward_and_gradients_stop_at_the_chunk(device):
    rng = np.random.default_rng(0)
    model = TinyRNN(device, rng)
    x, y = data(device, rng)
    opt = SGD([model.W, model.U], lr=0.0)  # lr 0: parameters stay, so passes can be compared
    losses, state = truncated_bptt(lambda xc, s: forward_state(model, xc, s), x, y, k=5,
                                   loss_fn=F.mse_loss, optimizer=opt)
    assert len(losses) == 3
    last_update_grad = to_np(model.W.grad).copy()
    full_output, (h_full, _) = model(x, None)
    np.testing.assert_allclose(to_np(state[0].array), to_np(h_full.array), rtol=1e-12)
    assert state[0].is_leaf and state[1][0].is_leaf

    # the last update's gradient is that of the last chunk alone, started from the carried state
    h_start, _ = model(x[:10], None)[1]
    model.W.grad = model.U.grad = None
    last_output, _ = model(x[10:], h_start.detach())
    F.mse_loss(last_output, y[10:]).backward()
    np.testing.assert_allclose(last_update_grad, to_np(model.W.grad), rtol=1e-12)
    assert losses[-1] == pytest.approx(F.mse_loss(full_output[10:], y[10:]).item(), rel=1e-12)


def test_one_chunk_is_full_bptt(device):
    rng = np.random.default_rng(1)
    model = TinyRNN(device, rng)
    x, y = data(device, rng)
    W0 = to_np(model.W.array)
    output, _ = model(x, None)
    F.mse_loss(output, y).backward()
    expected = W0 - 0.1 * to_np(model.W.grad)
    model.W.grad = model.U.grad = None
    truncated_bptt(lambda xc, s: forward_state(model, xc, s), x, y, k=T, loss_fn=F.mse_loss,
                   optimizer=SGD([model.W, model.U], lr=0.1))
    np.testing.assert_allclose(to_np(model.W.array), expected, rtol=1e-12)


def test_without_detaching_the_second_chunk_fails():
    """What the helper exists for: carrying a live state makes backward reach a freed graph."""
    rng = np.random.default_rng(2)
    model = TinyRNN("cpu", rng)
    x, y = data("cpu", rng)
    h = None
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        for start in (0, 6):
            output, (h, _) = model(x[start:start + 6], h)
            F.mse_loss(output, y[start:start + 6]).backward()


def test_clipping_and_mismatched_lengths(device):
    rng = np.random.default_rng(3)
    model = TinyRNN(device, rng)
    x, y = data(device, rng)
    opt = SGD([model.W, model.U], lr=0.0)
    truncated_bptt(lambda xc, s: forward_state(model, xc, s), x, 100.0 * y, k=4, loss_fn=F.mse_loss,
                   optimizer=opt, clip_norm=0.01)
    norm = np.sqrt(sum((to_np(p.grad) ** 2).sum() for p in (model.W, model.U)))
    assert norm == pytest.approx(0.01, rel=1e-4)
    with pytest.raises(ValueError, match="inputs have 12 steps but targets 11"):
        truncated_bptt(lambda xc, s: forward_state(model, xc, s), x, y[1:], k=4, loss_fn=F.mse_loss,
                       optimizer=opt)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_chunk_with_non_finite_gradients_changes_nothing():
    rng = np.random.default_rng(3)
    model = TinyRNN("cpu", rng)
    x, y = data("cpu", rng)
    optimizer = SGD([model.W, model.U], lr=0.1)
    before = model.W.numpy()

    def poisoned_loss(output, target):  # finite, but sqrt's gradient at 0 makes every gradient NaN
        return F.mse_loss(output, target) + (model.W * 0).sum().sqrt()

    with pytest.warns(RuntimeWarning, match="the chunk of steps 0 to 5 .* its update was skipped"):
        losses, _ = truncated_bptt(lambda xs, state: forward_state(model, xs, state), x[:6], y[:6], k=6,
                                   loss_fn=poisoned_loss, optimizer=optimizer)
    assert np.isfinite(losses).all()
    np.testing.assert_array_equal(model.W.numpy(), before)
