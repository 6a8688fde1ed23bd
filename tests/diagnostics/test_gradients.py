import numpy as np
import pytest

import tinygrad_rnn as tr
from examples.lecture_cells import LectureLSTM
from tinygrad_rnn import diagnostics as D
from tinygrad_rnn.vocabulary import state_names

from . import reference
from .elman import Elman


def squared_last_plus_projection(v):
    """A loss reading every step (through v) and the last one (squared), as training losses do."""
    return lambda output: (output * tr.Tensor(v, dtype="float64")).sum() + (output[-1] ** 2).sum()


def test_hidden_gradient_norms_equal_finite_differences(rng):
    model = Elman(3, 4, rng)
    x = rng.standard_normal((6, 2, 3))
    loss_of_output = squared_last_plus_projection(rng.standard_normal((6, 2, 4)))
    norms = D.state_gradient_norms(model, x, lambda result: loss_of_output(result[0]))
    assert set(norms) == {"h"}
    expected = [reference.state_gradient_norms(model, x, loss_of_output, t)[0] for t in range(6)]
    np.testing.assert_allclose(norms["h"], expected, rtol=1e-6)


def test_step_gradient_norms_read_a_graph_recorded_by_hand(rng):
    model = Elman(2, 3, rng)
    x = tr.Tensor(rng.standard_normal((5, 1, 2)), dtype="float64")
    with tr.retain_grads():
        _, h_n = model(x)
        loss = (h_n ** 2).sum()
    loss.backward()
    norms = D.step_gradient_norms(loss)
    assert norms.shape == (5,) and np.all(norms > 0)
    assert norms[4] == pytest.approx(2 * np.linalg.norm(h_n.numpy()))  # dL/dh(T-1) = 2 h(T-1)
    assert model.weight_hh_l0.grad is not None  # an ordinary backward: its parameter grads stay


def test_step_gradient_norms_explain_what_is_missing(rng):
    model = Elman(2, 3, rng)
    x = tr.Tensor(rng.standard_normal((3, 1, 2)), dtype="float64")
    loss = model(x)[0].sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="retain_grads"):
        D.step_gradient_norms(loss)
    with pytest.raises(ValueError, match="no node named 'c'"):
        D.step_gradient_norms(loss, "c")
    with pytest.raises(ValueError, match=r"no 'h' nodes for layer 0, direction 'reverse'.*\(0, 'forward'\)"):
        D.step_gradient_norms(loss, direction="reverse")
    with pytest.raises(ValueError, match="none of the names"):
        D.state_gradient_norms(model, x, lambda result: result[0].sum(), names=("c",))
    with pytest.raises(ValueError, match="scalar"):
        D.state_gradient_norms(model, x, lambda result: result[0])


LAYERS = {"LSTM": lambda **o: tr.nn.LSTM(3, 5, **o), "GRU": lambda **o: tr.nn.GRU(3, 5, **o),
          "RNN": lambda **o: tr.nn.RNN(3, 5, **o),
          "LayerNormLSTM": lambda **o: tr.nn.Recurrent(tr.nn.LayerNormLSTMCell, 3, 5, **o),
          "lecture LSTM": lambda **o: tr.nn.Recurrent(LectureLSTM, 3, 5, **o)}
SETUPS = {"one layer": {}, "two layers, bidirectional": {"num_layers": 2, "bidirectional": True},
          "lengths, bidirectional": {"bidirectional": True, "lengths": [6, 4, 1]}}


def layer_pair(kind, **options):
    """The default layer (one node per pass) and its op-by-op copy, same weights, float64."""
    tr.manual_seed(0)
    default = LAYERS[kind](dtype="float64", **options)
    op_by_op = LAYERS[kind](dtype="float64", fused=False, **options)
    op_by_op.load_state_dict(default.state_dict())
    return default, op_by_op


@pytest.mark.parametrize("setup", sorted(SETUPS))
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_a_default_layer_gives_the_state_gradient_norms_of_its_op_by_op_copy(kind, setup, rng):
    """Each pass (hand-written or compiled) recorded under retain_grads keeps dL/dh(t) and dL/dc(t)
    in its backward: the norms equal those of fused=False's per-step nodes."""
    options = dict(SETUPS[setup])
    lengths = options.pop("lengths", None)
    default, op_by_op = layer_pair(kind, **options)
    x = rng.standard_normal((6, 3, 3))
    v = tr.Tensor(rng.standard_normal((6, 3, default.num_directions * 5)), dtype="float64")

    def loss_fn(result):
        output, final = result
        first = final[0] if isinstance(final, tuple) else final
        return (output * v).sum() + (output[-1] ** 2).sum() + first.sum()

    directions = ("forward", "reverse") if default.bidirectional else ("forward",)
    names = state_names(default._cells[0][0])
    for layer_index in range(default.num_layers):
        for direction in directions:
            got, expected = (D.state_gradient_norms(
                (lambda inputs, layer=layer: layer(inputs, lengths=lengths)), x, loss_fn, names=names,
                layer=layer_index, direction=direction) for layer in (default, op_by_op))
            assert set(got) == set(expected) == set(names)
            for name in got:
                np.testing.assert_allclose(got[name], expected[name], rtol=1e-10, atol=1e-12)
                assert np.all(np.isfinite(got[name]))


def test_step_gradient_norms_read_a_default_layer_recorded_by_hand(rng):
    default, op_by_op = layer_pair("LayerNormLSTM")
    x = tr.Tensor(rng.standard_normal((5, 2, 3)), dtype="float64")
    norms = []
    for layer in (default, op_by_op):
        with tr.retain_grads():
            output, _ = layer(x)
            loss = (output ** 2).sum()
        loss.backward()
        norms.append([D.step_gradient_norms(loss, name) for name in ("h", "c")])
    np.testing.assert_allclose(norms[0], norms[1], rtol=1e-10)
    assert default.weight_hh_l0.grad is not None   # an ordinary backward: the parameters' grads are there


def test_a_default_layer_outside_retain_grads_says_what_to_do(rng):
    default, _ = layer_pair("LSTM")
    loss = default(tr.Tensor(rng.standard_normal((3, 1, 3)), dtype="float64"))[0].sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="retain_grads"):
        D.step_gradient_norms(loss)
