"""Sequence layers: gradchecks, variable lengths, dropout modes, scopes and names, the fused seam, bad input."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np
from tinygrad_rnn.graph import walk
from tinygrad_rnn.nn import recurrent


def float64(array, device, requires_grad=False):
    return tr.Tensor(array, dtype="float64", device=device, requires_grad=requires_grad)


LAYERS = {
    "rnn_tanh": lambda **kw: tr.nn.RNN(2, 3, **kw),
    "rnn_relu": lambda **kw: tr.nn.RNN(2, 3, nonlinearity="relu", **kw),
    "lstm": lambda **kw: tr.nn.LSTM(2, 3, **kw),
    "lstm_proj": lambda **kw: tr.nn.LSTM(2, 3, proj_size=2, **kw),
    "gru": lambda **kw: tr.nn.GRU(2, 3, **kw),
    "gru_reset_before": lambda **kw: tr.nn.GRU(2, 3, reset_after=False, **kw),
    "layer_norm_lstm": lambda **kw: tr.nn.Recurrent(tr.nn.LayerNormLSTMCell, 2, 3, **kw),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_gradcheck(device, name):
    """Two bidirectional layers with variable lengths and given initial states, against finite differences."""
    tr.manual_seed(0)
    layer = LAYERS[name](num_layers=2, bidirectional=True, dtype="float64", device=device)
    rng = np.random.default_rng(0)
    x = float64(rng.standard_normal((3, 2, 2)), device, requires_grad=True)
    states = [float64(rng.standard_normal((4, 2, size)), device, requires_grad=True) for size in layer.state_sizes]

    def run(x, *tensors):
        hx = tuple(tensors[:len(states)])
        out, finals = layer(x, hx if len(hx) > 1 else hx[0], lengths=[3, 2])
        finals = finals if isinstance(finals, tuple) else (finals,)
        return tr.cat([out.reshape(-1)] + [f.reshape(-1) for f in finals])

    assert tr.gradcheck(run, x, *states, *layer.parameters())


# --- variable lengths, against each sequence run alone over its own steps

def run_alone(layer, x, lengths, hx):
    """Each sequence b through the layer by itself, cut to its length: the reference for lengths=."""
    outputs, finals = [], []
    for b, n in enumerate(lengths):
        states = tuple(s[:, b:b + 1] for s in hx)
        out, final = layer(x[:n, b:b + 1], states if len(states) > 1 else states[0])
        outputs.append(np.pad(to_np(out)[:, 0], ((0, x.shape[0] - n), (0, 0))))
        finals.append([to_np(f)[:, 0] for f in (final if isinstance(final, tuple) else (final,))])
    return np.stack(outputs, axis=1), [np.stack(f, axis=1) for f in zip(*finals)]


@pytest.mark.parametrize("name", list(LAYERS))
def test_lengths_match_each_sequence_run_alone(device, name):
    tr.manual_seed(1)
    layer = LAYERS[name](num_layers=2, bidirectional=True, dtype="float64", device=device)
    rng = np.random.default_rng(1)
    lengths = [4, 1, 3]
    x = float64(rng.standard_normal((4, 3, 2)), device)
    hx = tuple(float64(rng.standard_normal((4, 3, size)), device) for size in layer.state_sizes)
    out, finals = layer(x, hx if len(hx) > 1 else hx[0], lengths=np.array(lengths))
    expected_out, expected_finals = run_alone(layer, x, lengths, hx)
    np.testing.assert_allclose(to_np(out), expected_out, rtol=0, atol=1e-12)
    for got, want in zip(finals if isinstance(finals, tuple) else (finals,), expected_finals):
        np.testing.assert_allclose(to_np(got), want, rtol=0, atol=1e-12)
    assert not to_np(out)[1:, 1].any(), "padded outputs must be zero"


def test_padded_steps_get_no_gradient_and_leak_nothing(device):
    layer = tr.nn.GRU(2, 3, bidirectional=True, dtype="float64", device=device)
    x = float64(np.random.default_rng(2).standard_normal((5, 2, 2)), device, requires_grad=True)
    out, h_n = layer(x, lengths=[2, 5])
    (out.sum() + h_n.sum()).backward()
    assert not to_np(x.grad)[2:, 0].any()
    assert to_np(x.grad)[:, 1].all()
    x2 = float64(to_np(x.array) + np.where(np.arange(5)[:, None, None] >= 2, 100.0, 0.0) * [[1], [0]], device)
    out2, h_n2 = layer(x2, lengths=[2, 5])  # garbage in the padding changes nothing
    np.testing.assert_array_equal(to_np(out2), to_np(out))
    np.testing.assert_array_equal(to_np(h_n2), to_np(h_n))


def test_lengths_with_batch_first_and_unbatched_input():
    tr.manual_seed(3)
    lstm = tr.nn.LSTM(2, 3, batch_first=True, dtype="float64")
    x = np.random.default_rng(3).standard_normal((2, 4, 2))
    out, (h_n, _) = lstm(float64(x, "cpu"), lengths=[4, 2])
    alone, (h_alone, _) = lstm(float64(x[1:, :2], "cpu"))
    np.testing.assert_allclose(out.numpy()[1, :2], alone.numpy()[0], atol=1e-12)
    np.testing.assert_allclose(h_n.numpy()[:, 1], h_alone.numpy()[:, 0], atol=1e-12)
    out1, _ = lstm(float64(x[1], "cpu"), lengths=2)  # unbatched: one length
    np.testing.assert_allclose(out1.numpy(), out.numpy()[1], atol=1e-12)


# --- dropout between layers

def test_dropout_between_layers_is_active_in_train_and_off_in_eval():
    tr.manual_seed(4)
    lstm = tr.nn.LSTM(3, 8, num_layers=2, dropout=0.5, dtype="float64")
    plain = tr.nn.LSTM(3, 8, num_layers=2, dtype="float64")
    plain.load_state_dict(lstm.state_dict())
    x = float64(np.random.default_rng(4).standard_normal((5, 4, 3)), "cpu")
    assert lstm.training
    first, _ = lstm(x)
    second, _ = lstm(x)
    assert not np.allclose(first.numpy(), second.numpy()), "train(): a fresh dropout mask each call"
    lstm.eval()
    eval_first, _ = lstm(x)
    eval_second, _ = lstm(x)
    reference, _ = plain(x)
    np.testing.assert_array_equal(eval_first.numpy(), eval_second.numpy())
    np.testing.assert_array_equal(eval_first.numpy(), reference.numpy())
    lstm.train()
    assert not np.allclose(lstm(x)[0].numpy(), reference.numpy())


def test_dropout_acts_on_the_input_of_later_layers_only():
    """With p=1 every input to layer 1 is zero: its output equals the layer run on zeros."""
    tr.manual_seed(5)
    rnn = tr.nn.RNN(3, 4, num_layers=2, dropout=1.0, dtype="float64")
    x = float64(np.random.default_rng(5).standard_normal((4, 2, 3)), "cpu")
    out, h_n = rnn(x)
    top = tr.nn.RNN(4, 4, dtype="float64")
    top.load_state_dict({k[:-1] + "0": v for k, v in rnn.state_dict().items() if k.endswith("_l1")})
    expected, _ = top(tr.Tensor(np.zeros((4, 2, 4)), dtype="float64"))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-12)
    bottom = tr.nn.RNN(3, 4, dtype="float64")
    bottom.load_state_dict({k: v for k, v in rnn.state_dict().items() if k.endswith("_l0")})
    np.testing.assert_allclose(h_n.numpy()[0], bottom(x)[1].numpy()[0], atol=1e-12)


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        tr.nn.GRU(2, 3, dropout=0.2)


# --- scopes and names for the graph drawings

def test_each_step_records_layer_direction_and_time_scopes():
    lstm = tr.nn.LSTM(2, 3, num_layers=2, bidirectional=True, fused=False)
    out, (h_n, c_n) = lstm(tr.randn(4, 1, 2))
    assert (out.name, h_n.name, c_n.name) == ("output", "h_n", "c_n")
    nodes = [n for n in walk([out, h_n, c_n]) if isinstance(n, tr.Function)]
    for gate in ("i", "f", "g", "o", "c", "h"):
        places = sorted((dict(n.scope)["layer"], dict(n.scope)["direction"], dict(n.scope)["t"])
                        for n in nodes if n.name == gate)
        expected = sorted((layer, d, t) for layer in range(2) for d in ("forward", "reverse") for t in range(4))
        assert places == expected, gate
        assert all([name for name, _ in n.scope] == ["layer", "direction", "t"] for n in nodes if n.name == gate)
    leaves = {n.name for n in walk(out) if isinstance(n, tr.Tensor)}
    assert {"weight_ih_l0", "weight_hh_l1_reverse", "bias_hh_l1", "h0", "c0", "x"} <= leaves


def test_padded_steps_name_the_carried_state_h():
    gru = tr.nn.GRU(2, 3, fused=False)
    _, h_n = gru(tr.randn(3, 2, 2), lengths=[3, 1])
    hs = [n for n in walk(h_n) if isinstance(n, tr.Function) and n.name == "h"]
    assert sorted(dict(n.scope)["t"] for n in hs) == [0, 1, 2]
    assert {n.op for n in hs if dict(n.scope)["t"] > 0} == {"where"}


# --- any cell: the generic driver

class MinimalCell(tr.nn.Module):
    """A cell in a few lines: h' = tanh(W x + U h), no base class needed."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__()
        self.state_sizes = (hidden_size,)
        self.w = tr.nn.init.parameter(hidden_size, input_size, dtype=dtype, device=device)
        self.u = tr.nn.init.parameter(hidden_size, hidden_size, dtype=dtype, device=device)
        tr.nn.init.uniform_(self.w, -0.5, 0.5)
        tr.nn.init.orthogonal_(self.u)

    def forward(self, x, h):
        return (x @ self.w.T + h @ self.u.T).tanh().named("h")


def test_any_cell_runs_with_layers_directions_and_lengths():
    layer = tr.nn.Recurrent(MinimalCell, 2, 3, num_layers=2, bidirectional=True, dtype="float64")
    assert [n for n, _ in layer.named_parameters()] == ["w_l0", "u_l0", "w_l0_reverse", "u_l0_reverse",
                                                        "w_l1", "u_l1", "w_l1_reverse", "u_l1_reverse"]
    assert layer.w_l1.shape == (3, 6)
    x = float64(np.random.default_rng(6).standard_normal((4, 2, 2)), "cpu")
    out, h_n = layer(x, lengths=[4, 2])
    assert out.shape == (4, 2, 6) and h_n.shape == (4, 2, 3)
    expected, _ = run_alone(layer, x, [4, 2], (tr.Tensor(np.zeros((4, 2, 3)), dtype="float64"),))
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)


def test_layer_norm_lstm_parameters_are_named_per_layer_and_direction():
    layer = tr.nn.Recurrent(tr.nn.LayerNormLSTMCell, 3, 4, bidirectional=True, forget_bias=1.0)
    names = [n for n, _ in layer.named_parameters()]
    assert names[:6] == ["weight_ih_l0", "weight_hh_l0", "norm_gates_weight_l0", "norm_gates_bias_l0",
                         "norm_cell_weight_l0", "norm_cell_bias_l0"]
    assert "norm_gates_bias_l0_reverse" in names
    np.testing.assert_array_equal(layer.norm_gates_bias_l0.numpy()[4:8], 1.0)
    out, (h_n, c_n) = layer(tr.randn(5, 2, 3))
    assert out.shape == (5, 2, 8) and h_n.shape == c_n.shape == (2, 2, 4)


# --- the seam for a fused implementation

def test_fused_layers_hand_each_pass_to_the_registered_implementation(monkeypatch):
    calls = []

    def whole_sequence(cell, x, state, lengths, reverse):
        calls.append((tuple(x.shape), reverse, None if lengths is None else list(lengths)))
        outputs, final = recurrent.run_cell(cell, x, state, lengths, reverse)
        return tr.stack(outputs), final

    monkeypatch.setitem(recurrent._FUSED, tr.nn.LSTMCell, (whole_sequence, lambda cell: not cell.proj_size))
    tr.manual_seed(7)
    fused = tr.nn.LSTM(2, 3, num_layers=2, bidirectional=True, fused=True, dtype="float64")
    plain = tr.nn.LSTM(2, 3, num_layers=2, bidirectional=True, fused=False, dtype="float64")
    plain.load_state_dict(fused.state_dict())
    x = float64(np.random.default_rng(7).standard_normal((4, 2, 2)), "cpu")
    got, (h, c) = fused(x, lengths=[4, 3])
    want, (h_ref, c_ref) = plain(x, lengths=[4, 3])
    assert calls == [((4, 2, 2), False, [4, 3]), ((4, 2, 2), True, [4, 3]),
                     ((4, 2, 6), False, [4, 3]), ((4, 2, 6), True, [4, 3])]
    for a, b in ((got, want), (h, h_ref), (c, c_ref)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="does not handle"):
        tr.nn.LSTM(2, 3, proj_size=1, fused=True)


def test_fused_without_an_implementation_is_refused(monkeypatch):
    monkeypatch.delitem(recurrent._FUSED, tr.nn.GRUCell, raising=False)
    monkeypatch.delitem(recurrent._FUSED, tr.nn.Module, raising=False)  # the step compiler's, for any cell
    with pytest.raises(ValueError, match="no fused implementation is registered for GRUCell"):
        tr.nn.GRU(2, 3, fused=True)
    assert tr.nn.GRU(2, 3).fused is False


# --- bad input: PyTorch-like errors that name the expected and the actual shapes

def test_bad_input_is_reported_with_shapes():
    lstm = tr.nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"Expected input to be 2D or 3D, got 4D.*\(1, 2, 3, 3\)"):
        lstm(tr.zeros(1, 2, 3, 3))
    with pytest.raises(RuntimeError, match="input_size. Expected 3, got 5"):
        lstm(tr.zeros(6, 2, 5))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(2, 2, 4\), got \[1, 2, 4\]"):
        lstm(tr.zeros(6, 2, 3), (tr.zeros(1, 2, 4), tr.zeros(2, 2, 4)))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[1\] size \(2, 2, 4\), got \[2, 3, 4\]"):
        lstm(tr.zeros(6, 2, 3), (tr.zeros(2, 2, 4), tr.zeros(2, 3, 4)))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 4\), got \[1, 1, 4\]"):
        tr.nn.GRU(3, 4)(tr.zeros(6, 3), tr.zeros(1, 1, 4))  # unbatched input wants (L*D, H)
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 6\].*max 7"):
        lstm(tr.zeros(6, 2, 3), lengths=[7, 2])
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 6\].*min 0"):
        lstm(tr.zeros(6, 2, 3), lengths=[0, 2])
    with pytest.raises(ValueError, match=r"lengths must have shape \(2,\).*\(3,\)"):
        lstm(tr.zeros(6, 2, 3), lengths=[1, 2, 3])
    with pytest.raises(ValueError, match="float64.*float32"):
        lstm(tr.Tensor(np.zeros((6, 2, 3)), dtype="float64"))


def test_bad_constructor_arguments_are_refused_like_torch():
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM, not RNN or GRU"):
        tr.nn.RNN(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM, not RNN or GRU"):
        tr.nn.GRU(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size.*proj_size=4, hidden_size=4"):
        tr.nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="dropout should be a number in range"):
        tr.nn.LSTM(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="num_layers must be greater than zero"):
        tr.nn.GRU(3, 4, num_layers=0)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        tr.nn.RNN(3, 0)
    with pytest.raises(TypeError, match="batch_first should be of type bool"):
        tr.nn.RNN(3, 4, batch_first=1)


def test_errors_are_both_value_and_runtime_errors():
    assert issubclass(tr.nn.InputError, ValueError) and issubclass(tr.nn.InputError, RuntimeError)


# --- devices and dtypes

def test_layer_on_device_with_dtype(device):
    gru = tr.nn.GRU(2, 3, num_layers=2, dtype="float64", device=device)
    out, h_n = gru(tr.Tensor(np.ones((3, 2, 2)), dtype="float64", device=device))
    assert out.device == h_n.device == device and out.dtype == h_n.dtype == np.float64
    out.sum().backward()
    assert all(p.grad is not None and p.grad.device == device for p in gru.parameters())


# --- weight tying and surgery: the layer's attributes are what forward uses

@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", ["rnn_tanh", "lstm", "gru", "layer_norm_lstm"])
def test_an_assigned_parameter_is_what_forward_uses_and_gets_the_gradient(name, fused):
    if name == "layer_norm_lstm" and fused:
        pytest.skip("the layer norm cell has no fused path")
    tr.manual_seed(8)
    layer = LAYERS[name](num_layers=2, bidirectional=True, fused=fused, dtype="float64")
    other = LAYERS[name](num_layers=2, bidirectional=True, fused=fused, dtype="float64")
    keys = list(layer.state_dict())
    x = float64(np.random.default_rng(8).standard_normal((4, 2, 2)), "cpu")
    for key, p in other.named_parameters():
        setattr(layer, key, p)
    assert list(layer.state_dict()) == keys  # PyTorch's keys, no cell keys added
    assert all(getattr(layer, key) is p for key, p in other.named_parameters())
    ours, theirs = layer(x)[0], other(x)[0]
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    ours.sum().backward()
    assert all(p.grad is not None for p in other.parameters())


def test_weight_tying_between_two_recurrent_layers():
    tr.manual_seed(9)
    first, second = tr.nn.GRU(3, 3, dtype="float64"), tr.nn.GRU(3, 3, dtype="float64")
    second.weight_hh_l0 = first.weight_hh_l0
    model = tr.nn.Sequential(first, second)
    assert [n for n, _ in model.named_parameters()].count("1.weight_hh_l0") == 0
    assert list(model.state_dict()).count("1.weight_hh_l0") == 1
    x = float64(np.random.default_rng(9).standard_normal((4, 2, 3)), "cpu")
    second(first(x)[0])[0].sum().backward()
    shared_grad = to_np(first.weight_hh_l0.grad).copy()
    first.weight_hh_l0.grad = None
    first(x)[0].sum().backward()  # the first layer alone gives less: the second use adds its share
    assert not np.allclose(shared_grad, to_np(first.weight_hh_l0.grad))


def test_assigning_a_tensor_to_a_recurrent_weight_is_refused():
    gru = tr.nn.GRU(2, 3)
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'weight_hh_l0'"):
        gru.weight_hh_l0 = tr.zeros(9, 3)


# --- argument errors name the argument at fault

def test_numpy_states_and_inputs_are_refused_with_a_type_error_naming_the_argument():
    lstm, gru = tr.nn.LSTM(3, 4), tr.nn.GRU(3, 4)
    x = tr.zeros(5, 2, 3)
    with pytest.raises(TypeError, match="GRU: hx must be a Tensor, got numpy.ndarray"):
        gru(x, np.zeros((1, 2, 4), np.float32))
    with pytest.raises(TypeError, match=r"LSTM: hx must be a tuple of 2 Tensors \(h0, c0\), got numpy.ndarray"):
        lstm(x, np.zeros((1, 2, 4), np.float32))
    with pytest.raises(TypeError, match=r"LSTM: hx\[0\] \(h0\) must be a Tensor, got numpy.ndarray"):
        lstm(x, (np.zeros((1, 2, 4), np.float32), np.zeros((1, 2, 4), np.float32)))
    with pytest.raises(TypeError, match=r"LSTM: hx\[1\] \(c0\) must be a Tensor, got list"):
        lstm(x, (tr.zeros(1, 2, 4), [0.0]))
    with pytest.raises(TypeError, match="LSTM: input must be a Tensor, got numpy.ndarray"):
        lstm(np.zeros((5, 2, 3), np.float32))
    with pytest.raises(TypeError, match="GRUCell: input must be a Tensor, got numpy.ndarray"):
        tr.nn.GRUCell(3, 4)(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match=r"LSTMCell: hx\[1\] \(c\) must be a Tensor"):
        tr.nn.LSTMCell(3, 4)(tr.zeros(2, 3), (tr.zeros(2, 4), np.zeros((2, 4))))
    with pytest.raises(TypeError, match="Linear: input must be a Tensor"):
        tr.nn.Linear(3, 4)(np.zeros((2, 3)))


def test_constructor_errors_blame_the_argument_at_fault():
    with pytest.raises(ValueError, match="hidden_size must be greater than zero; got 0"):
        tr.nn.LSTM(3, 0)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        tr.nn.LSTMCell(3, 0)
    with pytest.raises(ValueError, match="input_size must be greater than zero"):
        tr.nn.LSTM(0, 3)
    with pytest.raises(TypeError, match="hidden_size should be of type int, got: float"):
        tr.nn.GRU(3, 4.0)
    with pytest.raises(TypeError, match="num_layers should be of type int, got: bool"):
        tr.nn.GRU(3, 4, num_layers=True)
    with pytest.raises(ValueError, match="proj_size should be a positive integer or zero"):
        tr.nn.LSTM(3, 4, proj_size=-1)
    with pytest.raises(TypeError, match="bias should be of type bool"):
        tr.nn.RNN(3, 4, bias="no")


def test_numpy_integers_are_accepted_where_ints_are():
    lstm = tr.nn.LSTM(np.int64(3), np.int32(4), num_layers=np.int64(2), proj_size=np.int64(2),
                      bidirectional=np.bool_(True))
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers) == (3, 4, 2)
    assert all(type(v) is int for v in (lstm.input_size, lstm.hidden_size, lstm.num_layers))
    assert lstm(tr.zeros(5, 2, 3))[0].shape == (5, 2, 4)
    assert tr.nn.GRU(3, 4, checkpoint_every=np.int64(2)).checkpoint_every == 2
    assert tr.nn.Linear(np.int64(3), np.int64(2))(tr.zeros(1, 3)).shape == (1, 2)
    assert tr.nn.LayerNorm(np.int64(3))(tr.zeros(1, 3)).shape == (1, 3)


@pytest.mark.parametrize("fused", [True, False])
def test_an_empty_batch_runs_with_empty_lengths(fused):
    lstm = tr.nn.LSTM(3, 4, fused=fused)
    for lengths in (None, [], np.array([], dtype=np.int64)):
        out, (h_n, c_n) = lstm(tr.zeros(5, 0, 3), lengths=lengths)
        assert out.shape == (5, 0, 4) and h_n.shape == c_n.shape == (1, 0, 4)


class PlainCell(tr.nn.RecurrentCell):
    """A cell whose constructor takes only the sizes, as a PyTorch user writes one."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.w = tr.nn.Parameter(tr.randn(input_size + hidden_size, hidden_size) * 0.3)
        self.register_buffer("scale", tr.ones(hidden_size))

    def step(self, x, state):
        (h,) = state
        return ((tr.cat([x, h], 1) @ self.w).tanh() * self.scale,)


def test_a_cell_whose_constructor_takes_no_device_or_dtype_is_made_and_then_cast(device):
    layer = tr.nn.Recurrent(PlainCell, 3, 4, num_layers=2, dtype="float64", device=device)
    assert {p.dtype for p in layer.parameters()} == {np.dtype("float64")}
    assert {layer._cells[k][0].scale.dtype for k in range(2)} == {np.dtype("float64")}
    out, h_n = layer(tr.randn(5, 2, 3, dtype="float64", device=device))
    assert out.dtype == np.float64 and out.shape == (5, 2, 4) and h_n.shape == (2, 2, 4)
    assert tr.nn.Recurrent(PlainCell, 3, 4).w_l0.dtype == np.float32   # nothing asked: as the cell makes it


def test_a_cell_that_takes_device_and_dtype_gets_them_in_its_constructor():
    seen = []

    class Cell(PlainCell):
        def __init__(self, input_size, hidden_size, device=None, dtype=None):
            seen.append((device, dtype))
            super().__init__(input_size, hidden_size)

    tr.nn.Recurrent(Cell, 3, 4, dtype="float64")
    tr.nn.Recurrent(Cell, 3, 4)
    assert seen == [(None, "float64"), (None, None)]
