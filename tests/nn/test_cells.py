"""Cells: PyTorch parity (float64), gradchecks of the composed steps, initialisation options."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np
from tests.nn.parity import assert_close, assert_same_gradients, backpropagate_both, copy_torch_weights, pair
from tinygrad_rnn.graph import walk

# name -> (our class, torch class name, constructor options)
CELLS = {
    "rnn_tanh": ("RNNCell", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNNCell", {"nonlinearity": "relu"}),
    "lstm": ("LSTMCell", {}),
    "gru": ("GRUCell", {}),
}


def cell_pair(torch, name, input_size, hidden_size, bias, device, seed=0):
    cls, options = CELLS[name]
    torch.manual_seed(seed)
    theirs = getattr(torch.nn, cls)(input_size, hidden_size, bias=bias, dtype=torch.float64, **options)
    ours = getattr(tr.nn, cls)(input_size, hidden_size, bias=bias, dtype="float64", device=device, **options)
    copy_torch_weights(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("given_state", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("name", list(CELLS))
def test_cell_matches_torch(torch, device, name, batched, given_state):
    rng = np.random.default_rng(len(name) + 2 * batched + given_state)
    ours, theirs = cell_pair(torch, name, 3, 5, bias=given_state, device=device)
    lead = (4,) if batched else ()
    x, tx = pair(torch, rng.standard_normal(lead + (3,)), device)
    states = [pair(torch, rng.standard_normal(lead + (5,)), device) for _ in ours.state_sizes]
    mine = tuple(s for s, _ in states)
    their = tuple(s for _, s in states)
    if len(states) == 1:
        mine, their = mine[0], their[0]
    out = ours(x, mine if given_state else None)
    tout = theirs(tx, their if given_state else None)
    outs = list(zip(out, tout)) if isinstance(out, tuple) else [(out, tout)]
    for k, (a, b) in enumerate(outs):
        assert_close(a, b, f"state {k}")
    backpropagate_both(torch, outs, rng)
    assert_close(x.grad, tx.grad, "input gradient")
    if given_state:
        for k, (a, b) in enumerate(states):
            assert_close(a.grad, b.grad, f"state {k} gradient")
    assert_same_gradients(ours, theirs)


def parameters_of(cell):
    return [p for p in cell.parameters()]


CELL_MAKERS = {
    "rnn_relu": lambda: tr.nn.RNNCell(2, 3, nonlinearity="relu", dtype="float64"),
    "lstm": lambda: tr.nn.LSTMCell(2, 3, dtype="float64"),
    "lstm_proj": lambda: tr.nn.LSTMCell(2, 3, proj_size=2, dtype="float64"),
    "gru": lambda: tr.nn.GRUCell(2, 3, dtype="float64"),
    "gru_reset_before": lambda: tr.nn.GRUCell(2, 3, reset_after=False, dtype="float64"),
    "layer_norm_lstm": lambda: tr.nn.LayerNormLSTMCell(2, 3, dtype="float64"),
}


@pytest.mark.parametrize("name", list(CELL_MAKERS))
def test_cell_gradcheck(device, name):
    tr.manual_seed(1)
    cell = CELL_MAKERS[name]().to(device)
    rng = np.random.default_rng(1)
    x = tr.Tensor(rng.standard_normal((2, 2)), dtype="float64", device=device, requires_grad=True)
    states = [tr.Tensor(rng.standard_normal((2, size)), dtype="float64", device=device, requires_grad=True)
              for size in cell.state_sizes]

    def two_steps(x, *tensors):  # two steps, so the state's gradient path through a step is checked too
        state = tuple(tensors[:len(states)])
        for _ in range(2):
            new = cell(x, state if len(state) > 1 else state[0])
            state = new if isinstance(new, tuple) else (new,)
        return tr.cat(list(state), dim=-1)

    assert tr.gradcheck(two_steps, x, *states, *cell.parameters())


def test_gru_reset_before_follows_its_equation(device):
    tr.manual_seed(2)
    cell = tr.nn.GRUCell(3, 4, reset_after=False, dtype="float64").to(device)
    rng = np.random.default_rng(2)
    x, h = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    out = cell(tr.Tensor(x, dtype="float64", device=device), tr.Tensor(h, dtype="float64", device=device))
    w_ih, w_hh = to_np(cell.weight_ih.array), to_np(cell.weight_hh.array)
    b_ih, b_hh = to_np(cell.bias_ih.array), to_np(cell.bias_hh.array)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))
    x_r, x_z, x_n = np.split(x @ w_ih.T + b_ih, 3, axis=1)
    w_hr, w_hz, w_hn = np.split(w_hh, 3, axis=0)
    b_hr, b_hz, b_hn = np.split(b_hh, 3)
    r = sigmoid(x_r + h @ w_hr.T + b_hr)
    z = sigmoid(x_z + h @ w_hz.T + b_hz)
    n = np.tanh(x_n + (r * h) @ w_hn.T + b_hn)
    np.testing.assert_allclose(to_np(out), (1 - z) * n + z * h, rtol=0, atol=1e-12)


def test_layer_norm_lstm_cell_follows_its_equation():
    tr.manual_seed(3)
    cell = tr.nn.LayerNormLSTMCell(3, 4, dtype="float64")
    for p in (cell.norm_gates.weight, cell.norm_gates.bias, cell.norm_cell.weight, cell.norm_cell.bias):
        tr.nn.init.uniform_(p, -1, 1)
    rng = np.random.default_rng(3)
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    h_new, c_new = cell(tr.Tensor(x, dtype="float64"), (tr.Tensor(h, dtype="float64"), tr.Tensor(c, dtype="float64")))

    def norm(v, module):
        v = (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-5)
        return v * module.weight.numpy() + module.bias.numpy()

    sigmoid = lambda v: 1 / (1 + np.exp(-v))
    pre = norm(x @ cell.weight_ih.numpy().T + h @ cell.weight_hh.numpy().T, cell.norm_gates)
    i, f, g, o = np.split(pre, 4, axis=1)
    c_ref = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h_ref = sigmoid(o) * np.tanh(norm(c_ref, cell.norm_cell))
    np.testing.assert_allclose(c_new.numpy(), c_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_new.numpy(), h_ref, rtol=0, atol=1e-12)


def test_step_names_its_gates_and_states():
    cell = tr.nn.LSTMCell(2, 3)
    h, c = cell(tr.randn(4, 2, requires_grad=True))
    named = {n.name for n in walk([h, c]) if isinstance(n, tr.Function)}
    assert {"i", "f", "g", "o", "c", "h"} <= named
    h = tr.nn.GRUCell(2, 3)(tr.randn(4, 2))
    assert {"r", "z", "n", "h"} <= {n.name for n in walk(h) if isinstance(n, tr.Function)}


# --- initialisation

@pytest.mark.parametrize("cls", [tr.nn.RNNCell, tr.nn.LSTMCell, tr.nn.GRUCell])
def test_default_init_is_uniform_within_one_over_sqrt_hidden(cls):
    tr.manual_seed(0)
    cell = cls(30, 64)
    bound = 1 / np.sqrt(64)
    values = np.concatenate([p.numpy().ravel() for p in cell.parameters()])
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.95 * bound  # spread over the whole range, not a narrower one
    assert abs(values.mean()) < 0.05 * bound


def test_manual_seed_makes_init_deterministic():
    tr.manual_seed(5)
    first = tr.nn.LSTM(3, 4, num_layers=2).state_dict()
    tr.manual_seed(5)
    second = tr.nn.LSTM(3, 4, num_layers=2).state_dict()
    third = tr.nn.LSTM(3, 4, num_layers=2).state_dict()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    assert not np.array_equal(first["weight_hh_l0"], third["weight_hh_l0"])


@pytest.mark.parametrize("cls,gates", [(tr.nn.LSTMCell, 4), (tr.nn.GRUCell, 3), (tr.nn.RNNCell, 1)])
def test_orthogonal_recurrent_init_makes_each_gate_block_orthogonal(cls, gates):
    cell = cls(3, 5, recurrent_init="orthogonal", dtype="float64")
    for block in np.split(cell.weight_hh.numpy(), gates, axis=0):
        np.testing.assert_allclose(block @ block.T, np.eye(5), atol=1e-12)


def test_identity_init_gives_the_irnn():
    rnn = tr.nn.RNN(3, 5, nonlinearity="relu", recurrent_init="identity")
    np.testing.assert_array_equal(rnn.weight_hh_l0.numpy(), np.eye(5))
    np.testing.assert_array_equal(rnn.bias_ih_l0.numpy(), 0)
    np.testing.assert_array_equal(rnn.bias_hh_l0.numpy(), 0)
    assert np.abs(rnn.weight_ih_l0.numpy()).max() > 0
    # with zero input, positive states are carried unchanged
    h0 = tr.Tensor(np.abs(np.random.default_rng(0).standard_normal((1, 2, 5))))
    _, h_n = rnn(tr.zeros(4, 2, 3), h0)
    np.testing.assert_allclose(h_n.numpy(), h0.numpy(), rtol=1e-6)


@pytest.mark.parametrize("make", [lambda: tr.nn.LSTMCell(3, 4, forget_bias=1.0).state_dict(),
                                  lambda: {k[:-3]: v for k, v in tr.nn.LSTM(3, 4, num_layers=2, forget_bias=1.0)
                                           .state_dict().items() if k.endswith("_l1")}])
def test_forget_bias_sets_the_forget_gates_total_bias(make):
    state = make()
    total = state["bias_ih"] + state["bias_hh"]
    np.testing.assert_array_equal(total[4:8], 1.0)
    assert total[:4].abs().max() > 0  # the other gates keep PyTorch's init


def test_forget_bias_of_the_layer_norm_cell_is_in_the_gate_norm_shift():
    cell = tr.nn.LayerNormLSTMCell(3, 4, forget_bias=2.0)
    np.testing.assert_array_equal(cell.norm_gates.bias.numpy(), [0] * 4 + [2.0] * 4 + [0] * 8)


def test_layer_dtype_and_device_arguments(device):
    cell = tr.nn.GRUCell(2, 3, dtype="float64", device=device)
    assert {p.dtype for p in cell.parameters()} == {np.dtype("float64")}
    assert {p.device for p in cell.parameters()} == {device}
    assert {p.dtype for p in tr.nn.GRUCell(2, 3).parameters()} == {np.dtype("float32")}


# --- bad input

def test_cell_bad_input_is_reported_with_shapes():
    cell = tr.nn.LSTMCell(3, 4)
    with pytest.raises(ValueError, match="Expected input to be 1D or 2D, got 3D"):
        cell(tr.zeros(2, 2, 3))
    with pytest.raises(RuntimeError, match="Expected 3, got 5"):
        cell(tr.zeros(2, 5))
    with pytest.raises(RuntimeError, match=r"hx\[1\] \(c\) of shape \(2, 4\).*got \(2, 3\)"):
        cell(tr.zeros(2, 3), (tr.zeros(2, 4), tr.zeros(2, 3)))
    with pytest.raises(ValueError, match="float64.*float32"):
        cell(tr.Tensor(np.zeros((2, 3)), dtype="float64"))
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        tr.nn.RNNCell(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        tr.nn.LSTMCell(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="recurrent_init"):
        tr.nn.GRUCell(3, 4, recurrent_init="zeros")
