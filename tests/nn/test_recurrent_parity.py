"""RNN, LSTM and GRU against PyTorch in float64: outputs, final states and every gradient to 1e-9."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.nn.parity import (
    assert_close,
    assert_same_gradients,
    backpropagate_both,
    copy_torch_weights,
    export_weights,
    pair,
)

# kind -> (layer class name, constructor options); proj_size is drawn per case below H
KINDS = {
    "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "lstm_proj": ("LSTM", {"proj_size": None}),
    "gru": ("GRU", {}),
}
# num_layers, bidirectional, batch_first, initial states given, variable lengths, bias
LAYOUTS = [
    (1, False, False, False, False, True),
    (2, True, True, True, False, True),
    (3, True, False, False, True, True),
    (2, False, True, True, True, False),
    (1, True, False, True, True, True),
]


def build_pair(torch, kind, num_layers, bidirectional, batch_first, bias, sizes, device, seed):
    name, options = KINDS[kind]
    input_size, hidden_size = sizes
    options = dict(options)
    if "proj_size" in options:
        options["proj_size"] = int(np.random.default_rng(seed).integers(1, hidden_size))
    common = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias,
                  **options)
    torch.manual_seed(seed)
    theirs = getattr(torch.nn, name)(input_size, hidden_size, dtype=torch.float64, **common)
    ours = getattr(tr.nn, name)(input_size, hidden_size, dtype="float64", device=device, **common)
    copy_torch_weights(ours, theirs)
    return ours, theirs


def run_torch(torch, theirs, x, hx, lengths, batch_first, total_length):
    if lengths is None:
        return theirs(x, hx)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first,
                                                     enforce_sorted=False)
    out, states = theirs(packed, hx)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first, total_length=total_length)
    return out, states


def as_tuple(states):
    return states if isinstance(states, tuple) else (states,)


def from_tuple(states):
    return states if len(states) > 1 else states[0]


@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
@pytest.mark.parametrize("kind", list(KINDS))
def test_layer_matches_torch(torch, device, kind, layout):
    num_layers, bidirectional, batch_first, given_state, variable, bias = LAYOUTS[layout]
    seed = 1000 * list(KINDS).index(kind) + layout
    rng = np.random.default_rng(seed)
    input_size, hidden_size = int(rng.integers(1, 6)), int(rng.integers(2, 7))
    batch, steps = int(rng.integers(1, 5)), int(rng.integers(2, 8))
    ours, theirs = build_pair(torch, kind, num_layers, bidirectional, batch_first, bias,
                              (input_size, hidden_size), device, seed)

    x_shape = (batch, steps, input_size) if batch_first else (steps, batch, input_size)
    x, tx = pair(torch, rng.standard_normal(x_shape), device)
    stacked = num_layers * (2 if bidirectional else 1)
    states = [pair(torch, rng.standard_normal((stacked, batch, size)), device) for size in ours.state_sizes]
    hx = from_tuple(tuple(s for s, _ in states)) if given_state else None
    thx = from_tuple(tuple(s for _, s in states)) if given_state else None
    lengths = rng.integers(1, steps + 1, size=batch) if variable else None

    out, h_n = ours(x, hx, lengths=lengths)
    tout, th_n = run_torch(torch, theirs, tx, thx, lengths, batch_first, steps)
    assert_close(out, tout, "output")
    for k, (mine, their) in enumerate(zip(as_tuple(h_n), as_tuple(th_n))):
        assert_close(mine, their, f"final state {k}")

    backpropagate_both(torch, [(out, tout)] + list(zip(as_tuple(h_n), as_tuple(th_n))), rng)
    assert_close(x.grad, tx.grad, "input gradient")
    if given_state:
        for k, (mine, their) in enumerate(states):
            assert_close(mine.grad, their.grad, f"initial state {k} gradient")
    assert_same_gradients(ours, theirs)


@pytest.mark.parametrize("kind", list(KINDS))
def test_unbatched_input_matches_torch(torch, device, kind):
    rng = np.random.default_rng(7)
    ours, theirs = build_pair(torch, kind, 2, True, False, True, (3, 4), device, seed=7)
    x, tx = pair(torch, rng.standard_normal((5, 3)), device)
    states = [pair(torch, rng.standard_normal((4, size)), device) for size in ours.state_sizes]
    out, h_n = ours(x, from_tuple(tuple(s for s, _ in states)))
    tout, th_n = theirs(tx, from_tuple(tuple(s for _, s in states)))
    assert_close(out, tout, "output")
    for mine, their in zip(as_tuple(h_n), as_tuple(th_n)):
        assert_close(mine, their, "final state")
    backpropagate_both(torch, [(out, tout)], rng)
    assert_close(x.grad, tx.grad, "input gradient")
    assert_same_gradients(ours, theirs)


@pytest.mark.parametrize("kind", list(KINDS))
def test_exported_weights_load_into_torch(torch, kind):
    name, options = KINDS[kind]
    options = {k: (2 if k == "proj_size" else v) for k, v in options.items()}
    tr.manual_seed(3)
    ours = getattr(tr.nn, name)(3, 4, num_layers=2, bidirectional=True, dtype="float64", **options)
    theirs = getattr(torch.nn, name)(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64, **options)
    export_weights(torch, ours, theirs)
    x, tx = pair(torch, np.random.default_rng(3).standard_normal((6, 2, 3)), "cpu", requires_grad=False)
    out, _ = ours(x)
    tout, _ = theirs(tx)
    assert_close(out, tout, "output after export")
