"""Padded steps (past lengths[b]) have no effect at all: NaN or Inf there changes no output, final
state or gradient, on the fused and the op-by-op paths, in both directions, over stacked layers."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np
from tinygrad_rnn.nn.fused import fused_pass

LAYERS = {
    "rnn_tanh": lambda **kw: tr.nn.RNN(2, 3, **kw),
    "rnn_relu": lambda **kw: tr.nn.RNN(2, 3, nonlinearity="relu", **kw),
    "lstm": lambda **kw: tr.nn.LSTM(2, 3, **kw),
    "gru": lambda **kw: tr.nn.GRU(2, 3, **kw),
}
LENGTHS = [5, 2, 3]


def results(layer, x_values, device, lengths=LENGTHS):
    """Output, final states, the input's and every parameter's gradient of a fixed weighted loss."""
    layer.zero_grad()
    x = tr.Tensor(x_values, dtype="float64", device=device, requires_grad=True)
    output, finals = layer(x, lengths=lengths)
    finals = finals if isinstance(finals, tuple) else (finals,)
    rng = np.random.default_rng(1)
    loss = None
    for t in (output, *finals):
        term = (t * tr.Tensor(rng.standard_normal(t.shape), dtype="float64", device=device)).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    named = {"output": output, **{f"final{k}": f for k, f in enumerate(finals)}, "x.grad": x.grad}
    named.update({f"{name}.grad": p.grad for name, p in layer.named_parameters()})
    return {name: to_np(value) for name, value in named.items()}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", list(LAYERS))
def test_nonfinite_padding_changes_nothing(device, name, fused, bad):
    tr.manual_seed(0)
    layer = LAYERS[name](num_layers=2, bidirectional=True, fused=fused, dtype="float64", device=device)
    x = np.random.default_rng(0).standard_normal((5, 3, 2))
    padded = (np.arange(5)[:, None] >= np.array(LENGTHS)[None, :])[:, :, None]
    clean = results(layer, np.where(padded, 0.0, x), device)
    dirty = results(layer, np.where(padded, bad, x), device)
    for key, value in clean.items():
        assert np.isfinite(value).all(), key
        np.testing.assert_array_equal(dirty[key], value, err_msg=key)


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("reverse", [False, True])
def test_fused_pass_ignores_nonfinite_padding_and_output_gradients(device, mode, reverse):
    """The fused pass on its own: NaN input and NaN output gradient at padded steps change nothing."""
    rng = np.random.default_rng(2)
    gates = {"lstm": 4, "gru": 3, "rnn_tanh": 1}[mode]
    weights = [tr.Tensor(rng.standard_normal(shape), dtype="float64", device=device, requires_grad=True)
               for shape in ((gates * 3, 2), (gates * 3, 3), (gates * 3,), (gates * 3,))]
    x = rng.standard_normal((4, 2, 2))
    padded = np.arange(4)[:, None, None] >= np.array([4, 2])[None, :, None]
    g = rng.standard_normal((4, 2, 3))

    def run(fill):
        for w in weights:
            w.grad = None
        x_in = tr.Tensor(np.where(padded, fill, x), dtype="float64", device=device, requires_grad=True)
        output, h_n, _ = fused_pass(mode, x_in, None, None, *weights, reverse=reverse, lengths=[4, 2])
        output.backward(tr.Tensor(np.where(padded, fill, g), dtype="float64", device=device))
        return [to_np(output), to_np(h_n), to_np(x_in.grad)] + [to_np(w.grad) for w in weights]

    for clean, dirty in zip(run(0.0), run(np.nan)):
        np.testing.assert_array_equal(dirty, clean)
