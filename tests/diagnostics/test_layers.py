"""The diagnostics on the library's own layers: exact against finite differences, and the lecture's
claims about forgetting and remembering as measured facts."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import diagnostics as D
from tinygrad_rnn.data.tasks import adding_problem

from . import reference

LAYERS = {"rnn": tr.nn.RNN, "lstm": tr.nn.LSTM, "gru": tr.nn.GRU}


def layer(name, input_size=2, hidden_size=3, **options):
    tr.manual_seed(0)
    return LAYERS[name](input_size, hidden_size, dtype="float64", **options)


@pytest.mark.parametrize("name", list(LAYERS))
def test_sensitivity_equals_finite_differences(name, rng):
    model = layer(name)
    x = rng.standard_normal((5, 2, 2))
    expected = reference.jacobian_norms(model, x)
    for mode in ("forward", "reverse"):
        np.testing.assert_allclose(D.jacobian_norms(model, x, mode=mode), expected, rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(D.jacobian_norms(model, x, method="loop", mode=mode), expected,
                                   rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(D.sensitivity(model, x, mode=mode), expected[:, 0], rtol=1e-6, atol=1e-10)


def test_sensitivity_reads_batch_first_layers(rng):
    x = rng.standard_normal((5, 2, 2))
    expected = D.jacobian_norms(layer("gru"), x)
    np.testing.assert_allclose(D.jacobian_norms(layer("gru", batch_first=True), x.transpose(1, 0, 2)),
                               expected, rtol=1e-12)


@pytest.mark.parametrize("name", list(LAYERS))
def test_state_gradient_norms_equal_finite_differences(name, rng):
    model = layer(name)
    x = rng.standard_normal((5, 2, 2))
    v = tr.Tensor(rng.standard_normal((5, 2, 3)), dtype="float64")

    def loss_of_output(output):
        return (output * v).sum() + (output[-1] ** 2).sum()
    norms = D.state_gradient_norms(model, x, lambda result: loss_of_output(result[0]))
    assert set(norms) == ({"h", "c"} if name == "lstm" else {"h"})
    for t in range(5):
        expected = reference.state_gradient_norms(model, x, loss_of_output, t, lstm=name == "lstm")
        for key, value in zip(("h", "c"), expected):
            assert norms[key][t] == pytest.approx(value, rel=1e-6)


def test_state_gradient_norms_pick_a_layer_and_a_direction(rng):
    model = layer("lstm", num_layers=2, bidirectional=True)
    x = rng.standard_normal((4, 1, 2))

    def loss(result):
        return result[0][-1].sum()
    top = D.state_gradient_norms(model, x, loss)
    np.testing.assert_array_equal(top["h"], D.state_gradient_norms(model, x, loss, layer=1)["h"])
    reverse = D.state_gradient_norms(model, x, loss, layer=0, direction="reverse")
    assert reverse["h"].shape == (4,) and np.all(reverse["c"] > 0)
    with pytest.raises(ValueError, match="layer 2"):
        D.state_gradient_norms(model, x, loss, layer=2)


def test_fused_layers_are_diagnosed_through_their_composed_path(rng):
    x = rng.standard_normal((4, 2, 2))

    def loss(result):
        return (result[0] ** 2).sum()
    fast = layer("lstm", fused=True)
    norms = D.state_gradient_norms(fast, x, loss)
    expected = D.state_gradient_norms(layer("lstm"), x, loss)
    for key in ("h", "c"):
        np.testing.assert_allclose(norms[key], expected[key], rtol=1e-10)
    np.testing.assert_allclose(D.sensitivity(fast, x), D.sensitivity(layer("lstm"), x), rtol=1e-10)
    assert fast.fused is True


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_tanh_rnn_sensitivity_decays_at_the_rate_of_its_spectrum(rng, rho):
    # near h = 0 a step multiplies by W_hh (tanh' ~ 1), so d output(t) / d x(1) shrinks like rho^t
    model = layer("rnn", input_size=3, hidden_size=8)
    w = rng.standard_normal((8, 8))
    with tr.no_grad():
        model.weight_hh_l0.array[...] = rho / D.spectral_radius(w) * w
        model.bias_ih_l0.array[...] = model.bias_hh_l0.array[...] = 0
    s = D.sensitivity(model, 1e-3 * rng.standard_normal((40, 2, 3)))
    assert D.spectral_radius(D.recurrent_weights(model)["h"]) == pytest.approx(rho)
    assert D.decay_rate(s, start=10) == pytest.approx(rho, rel=0.02)


def test_linearised_recurrence_matches_a_tanh_rnn_near_zero(rng):
    model = layer("rnn", hidden_size=6)
    with tr.no_grad():
        for name in ("weight_ih_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(model, name).array[...] = 0
    h0 = 1e-4 * rng.standard_normal((1, 1, 6))
    output, _ = model(tr.Tensor(np.zeros((30, 1, 2)), dtype="float64"), tr.Tensor(h0, dtype="float64"))
    norms = D.linear_recurrence_norms(model.weight_hh_l0, h0[0], 30)
    np.testing.assert_allclose(np.linalg.norm(output.numpy(), axis=(1, 2)), norms[1:], rtol=1e-6)


def test_lstm_with_a_high_forget_bias_keeps_the_sensitivity_within_a_factor_of_100():
    # f = sigmoid(5) ~ 0.993 keeps c(t) = f c(t-1) + ...: the first input is still felt 100 steps on.
    # The same LSTM with PyTorch's default biases (f ~ 0.5) forgets it like a plain RNN.
    x = adding_problem(2, 100, rng=1, dtype=np.float64)[0]
    steps = range(0, 100, 9)  # every 9th step through t = 99: keeps the test fast
    remembering = D.sensitivity(layer("lstm", hidden_size=16, forget_bias=5.0), x, targets=steps)
    forgetting = D.sensitivity(layer("lstm", hidden_size=16), x, targets=steps)
    ratio = remembering / remembering[0]
    assert 1e-2 <= ratio.min() and ratio.max() <= 1e2
    assert forgetting[-1] / forgetting[0] < 1e-10


def test_recurrent_weights_of_the_layers():
    for name, gates in (("rnn", ("h",)), ("lstm", ("i", "f", "g", "o")), ("gru", ("r", "z", "n"))):
        model = layer(name, hidden_size=4)
        blocks = D.recurrent_weights(model)
        assert tuple(blocks) == gates and all(b.shape == (4, 4) for b in blocks.values())
    reverse = D.recurrent_weights(layer("gru", bidirectional=True, num_layers=2), layer=1, direction="reverse")
    assert reverse["n"].shape == (3, 3)


def test_diagnostics_run_where_the_layer_lives(device, rng):
    x = rng.standard_normal((4, 2, 2))
    here, there = layer("lstm"), layer("lstm").to(device)

    def loss(result):
        return (result[0] ** 2).sum()
    np.testing.assert_allclose(D.sensitivity(there, x), D.sensitivity(here, x), rtol=1e-10)
    for key in ("h", "c"):
        np.testing.assert_allclose(D.state_gradient_norms(there, x, loss)[key],
                                   D.state_gradient_norms(here, x, loss)[key], rtol=1e-10)
    np.testing.assert_allclose(D.eigenvalues(D.recurrent_weights(there)["g"]),
                               D.eigenvalues(D.recurrent_weights(here)["g"]), rtol=1e-10)
