"""tr.nn.utils.rnn against torch.nn.utils.rnn in float64: padding, packing, and packed batches through layers."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np
from tests.nn.parity import assert_close, assert_same_gradients, backpropagate_both, copy_torch_weights, pair
from tinygrad_rnn.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)

LENGTHS = {"sorted": [5, 3, 3, 1], "unsorted": [2, 5, 1, 4], "one": [3], "all full": [4, 4]}


def sequences(torch, rng, lengths, features=(3,), device="cpu"):
    """Pairs of (ours, theirs) float64 leaf sequences of the given lengths."""
    return [pair(torch, rng.standard_normal((n,) + features), device) for n in lengths]


def assert_same_indices(ours, theirs, what):
    if theirs is None:
        assert ours is None, what
    else:
        np.testing.assert_array_equal(to_np(ours), theirs.numpy(), err_msg=what)


# ----------------------------------------------------------------------------- pad_sequence

@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("options", [{}, {"padding_value": -1.5}, {"padding_side": "left"},
                                     {"padding_value": 2.0, "padding_side": "right"}], ids=str)
@pytest.mark.parametrize("features", [(), (3,), (2, 2)], ids=str)
def test_pad_sequence_matches_torch(torch, device, rng, batch_first, options, features):
    pairs = sequences(torch, rng, [2, 4, 1], features, device)
    ours = pad_sequence([a for a, _ in pairs], batch_first=batch_first, **options)
    theirs = torch.nn.utils.rnn.pad_sequence([b for _, b in pairs], batch_first=batch_first, **options)
    assert_close(ours, theirs, "padded")
    backpropagate_both(torch, [(ours, theirs)], rng)
    for k, (a, b) in enumerate(pairs):
        assert_close(a.grad, b.grad, f"gradient of sequence {k}")


def test_pad_sequence_takes_a_tensor_as_torch(torch, rng):
    x, tx = pair(torch, rng.standard_normal((3, 4, 2)), "cpu")
    assert_close(pad_sequence(x, batch_first=True), torch.nn.utils.rnn.pad_sequence(tx, batch_first=True), "padded")


# ----------------------------------------------------------------------------- packing

@pytest.mark.parametrize("lengths", list(LENGTHS))
@pytest.mark.parametrize("batch_first", [False, True])
def test_packed_fields_and_round_trip_match_torch(torch, device, rng, lengths, batch_first):
    lengths = LENGTHS[lengths]
    enforce_sorted = list(lengths) == sorted(lengths, reverse=True)
    steps, batch = max(lengths) + 1, len(lengths)  # one step more than needed: packing drops it
    shape = (batch, steps, 3) if batch_first else (steps, batch, 3)
    x, tx = pair(torch, rng.standard_normal(shape), device)
    ours = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    theirs = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.tensor(lengths), batch_first=batch_first,
                                                     enforce_sorted=enforce_sorted)
    assert_close(ours.data, theirs.data, "data")
    assert_same_indices(ours.batch_sizes, theirs.batch_sizes, "batch_sizes")
    assert_same_indices(ours.sorted_indices, theirs.sorted_indices, "sorted_indices")
    assert_same_indices(ours.unsorted_indices, theirs.unsorted_indices, "unsorted_indices")
    data, batch_sizes, _, _ = ours  # a namedtuple in torch
    assert data is ours.data and batch_sizes.dtype == tr.int64

    for options in ({}, {"padding_value": -7.0}, {"total_length": steps + 2}):
        padded, out_lengths = pad_packed_sequence(ours, batch_first=batch_first, **options)
        tpadded, tout_lengths = torch.nn.utils.rnn.pad_packed_sequence(theirs, batch_first=batch_first, **options)
        assert_close(padded, tpadded, f"padded {options}")
        assert_same_indices(out_lengths, tout_lengths, "lengths")
    backpropagate_both(torch, [(padded, tpadded), (ours.data, theirs.data)], rng)
    assert_close(x.grad, tx.grad, "input gradient")  # zero at the padded steps, as torch's


@pytest.mark.parametrize("lengths", ["sorted", "unsorted"])
def test_packed_sequence_from_torchs_fields(torch, rng, lengths):
    lengths = LENGTHS[lengths]
    tx = torch.tensor(rng.standard_normal((max(lengths), len(lengths), 2)))
    theirs = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.tensor(lengths), enforce_sorted=False)
    ours = PackedSequence(tr.tensor(theirs.data.numpy()), theirs.batch_sizes.numpy(),
                          theirs.sorted_indices.numpy(), theirs.unsorted_indices)
    assert_close(ours.data, theirs.data, "data")
    padded, _ = pad_packed_sequence(ours, padding_value=0.5)
    assert_close(padded, torch.nn.utils.rnn.pad_packed_sequence(theirs, padding_value=0.5)[0], "padded")
    plain = torch.nn.utils.rnn.pack_padded_sequence(tx[:, :1], torch.tensor(lengths[:1]))
    assert_close(pad_packed_sequence(PackedSequence(tr.tensor(plain.data.numpy()), plain.batch_sizes))[0],
                 torch.nn.utils.rnn.pad_packed_sequence(plain)[0], "no sorting")


@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pack_sequence_unpack_and_unpad_match_torch(torch, rng, enforce_sorted):
    lengths = [4, 2, 1] if enforce_sorted else [1, 4, 2]
    pairs = sequences(torch, rng, lengths)
    ours = pack_sequence([a for a, _ in pairs], enforce_sorted=enforce_sorted)
    theirs = torch.nn.utils.rnn.pack_sequence([b for _, b in pairs], enforce_sorted=enforce_sorted)
    assert_close(ours.data, theirs.data, "data")
    for mine, their in zip(unpack_sequence(ours), torch.nn.utils.rnn.unpack_sequence(theirs)):
        assert_close(mine, their, "unpacked")
    padded = pad_sequence([a for a, _ in pairs], batch_first=True)
    tpadded = torch.nn.utils.rnn.pad_sequence([b for _, b in pairs], batch_first=True)
    for mine, their in zip(unpad_sequence(padded, tr.tensor(lengths), batch_first=True),
                           torch.nn.utils.rnn.unpad_sequence(tpadded, torch.tensor(lengths), batch_first=True)):
        assert_close(mine, their, "unpadded")


# ----------------------------------------------------------------------------- through the layers

LAYERS = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("LSTM", {"proj_size": 2}), ("GRU", {})]
# num_layers, bidirectional, batch_first, initial state given, fused (None: wherever a fused pass applies)
LAYOUTS = [(1, False, False, False, None), (2, True, True, True, False), (1, True, False, True, None),
           (2, False, True, False, False)]


def as_tuple(states):
    return states if isinstance(states, tuple) else (states,)


@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
@pytest.mark.parametrize("layer", LAYERS, ids=str)
def test_packed_batches_through_layers_match_torchs_packed_path(torch, device, layer, layout, enforce_sorted):
    (name, options), (num_layers, bidirectional, batch_first, given_state, fused) = layer, layout
    rng = np.random.default_rng(LAYERS.index(layer) * 10 + LAYOUTS.index(layout))
    common = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, **options)
    theirs = getattr(torch.nn, name)(3, 4, dtype=torch.float64, **common)
    ours = getattr(tr.nn, name)(3, 4, dtype=tr.float64, device=device, fused=fused, **common)
    copy_torch_weights(ours, theirs)
    lengths = [5, 4, 2, 1] if enforce_sorted else [2, 5, 1, 4]
    shape = (4, 6, 3) if batch_first else (6, 4, 3)
    x, tx = pair(torch, rng.standard_normal(shape), device)
    states = [pair(torch, rng.standard_normal((num_layers * (1 + bidirectional), 4, size)), device)
              for size in ours.state_sizes]
    hx = (states[0][0] if len(states) == 1 else tuple(s for s, _ in states)) if given_state else None
    thx = (states[0][1] if len(states) == 1 else tuple(s for _, s in states)) if given_state else None

    packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    tpacked = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.tensor(lengths), batch_first=batch_first,
                                                      enforce_sorted=enforce_sorted)
    out, h_n = ours(packed, hx)
    tout, th_n = theirs(tpacked, thx)
    assert isinstance(out, PackedSequence)
    assert_close(out.data, tout.data, "packed output data")
    assert_same_indices(out.batch_sizes, tout.batch_sizes, "output batch_sizes")
    padded, out_lengths = pad_packed_sequence(out, batch_first=batch_first, total_length=6)
    tpadded, _ = torch.nn.utils.rnn.pad_packed_sequence(tout, batch_first=batch_first, total_length=6)
    assert_close(padded, tpadded, "padded output")
    assert out_lengths.tolist() == lengths
    for k, (mine, their) in enumerate(zip(as_tuple(h_n), as_tuple(th_n))):
        assert_close(mine, their, f"final state {k}")

    backpropagate_both(torch, [(padded, tpadded)] + list(zip(as_tuple(h_n), as_tuple(th_n))), rng)
    assert_close(x.grad, tx.grad, "input gradient")
    if given_state:
        for k, (mine, their) in enumerate(states):
            assert_close(mine.grad, their.grad, f"initial state {k} gradient")
    assert_same_gradients(ours, theirs)


def test_packed_sequence_moves_and_casts(device):
    packed = pack_sequence([tr.ones(3, 2), tr.ones(1, 2)])
    moved = packed.to(device).double()
    assert moved.data.dtype == tr.float64 and moved.data.device == device and moved.is_cuda == (device == "cuda")
    assert moved.batch_sizes.tolist() == [2, 1, 1]


@pytest.mark.parametrize("convert", [lambda p: p.to(tr.float64), lambda p: p.to("cpu", tr.float64),
                                     lambda p: p.to(tr.zeros(1, dtype=tr.float64)), lambda p: p.double()])
def test_packed_sequence_to_takes_what_tensor_to_takes(convert):
    moved = convert(pack_sequence([tr.ones(3, 2), tr.ones(1, 2)]))
    assert moved.data.dtype == tr.float64 and moved.batch_sizes.tolist() == [2, 1, 1]


def test_packing_errors_name_the_problem():
    x = tr.zeros(4, 3, 2)
    with pytest.raises(ValueError, match="must be sorted in decreasing order when `enforce_sorted` is True"):
        pack_padded_sequence(x, [1, 2, 3])
    with pytest.raises(ValueError, match=r"`len\(lengths\)` to be equal to batch_size, but got 2"):
        pack_padded_sequence(x, [3, 2])
    with pytest.raises(ValueError, match="has to be greater than 0"):
        pack_padded_sequence(x, [3, 0, 0])
    with pytest.raises(ValueError, match="the input has only 4 time steps"):
        pack_padded_sequence(x, [5, 2, 1])
    with pytest.raises(ValueError, match="1-D sequence of integers"):
        pack_padded_sequence(x, [3.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="total_length to be at least the length of the longest sequence"):
        pad_packed_sequence(pack_padded_sequence(x, [3, 2, 1]), total_length=2)
    with pytest.raises(ValueError, match="empty list of sequences"):
        pad_sequence([])
    with pytest.raises(ValueError, match=r"trailing shape and dtype of the first \(\(2,\) float32\)"):
        pad_sequence([tr.zeros(2, 2), tr.zeros(2, 3)])
    with pytest.raises(ValueError, match="non-increasing and add up to data.size"):
        PackedSequence(tr.zeros(4, 2), [1, 3])
    lstm = tr.nn.LSTM(2, 3)
    with pytest.raises(ValueError, match="carries its own lengths"):
        lstm(pack_padded_sequence(x, [3, 2, 1]), lengths=[3, 2, 1])
