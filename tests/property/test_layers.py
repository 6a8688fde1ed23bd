"""Layers against torch.nn with the same weights: constructor arguments (good, wrong, NumPy ints,
bools), inputs of every rank, size, dtype and kind (NumPy arrays, lists), empty batches, hx, lengths
(with NaN in padded steps) and gradients of inputs and parameters."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tr

from .contract import Arg, Each, assert_same, attempt, cases, same
from .strategies import arrays, tensors

INTS = st.one_of(st.integers(1, 3), st.integers(1, 3), st.integers(-1, 3), st.sampled_from([np.int64(2), 2.0, True, None]))
FLOATS64 = ("float64", "float64", "float64", "float32")  # mostly the layers' dtype, sometimes not


def build(name, args, kwargs):
    """The layer on both sides (ours takes torch's weights), or the error each raised."""
    ours, error = attempt(lambda: getattr(tr.nn, name)(*args, **{**kwargs, "dtype": tr.float64}))
    theirs, their_error = attempt(lambda: getattr(torch.nn, name)(*args, **{**kwargs, "dtype": torch.float64}))
    if ours is not None and theirs is not None:
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs, error, their_error


def stricter(args, kwargs):
    """Arguments ours refuses on purpose where torch builds: sizes of 0, floats or bools for sizes, ints for
    flags (bias=1)."""
    values = list(args) + [v for k, v in kwargs.items() if k != "padding_idx"]
    flags = [v for k, v in kwargs.items() if k in ("bias", "batch_first", "bidirectional", "elementwise_affine")]
    return (any(v is True or v == 0 or isinstance(v, float) for v in values if not isinstance(v, (tuple, list)))
            or any(0 in v for v in values if isinstance(v, (tuple, list)))
            or any(type(v) is not bool for v in flags))


def compare_layers(name, args, kwargs, inputs, forward=lambda layer, *x: layer(*x), names=(), may_refuse=False):
    """Construct on both sides; where both exist, run `forward` and compare outputs and every gradient."""
    from .contract import assert_clean_error
    ours, theirs, error, their_error = build(name, args, kwargs)
    names = (name,) + tuple(names) + ("input_size", "hidden_size", "size", "should be", "must be")
    if error is not None:
        assert_clean_error(error, names, f"{name}{args}{kwargs}")
        assert their_error is not None or may_refuse or stricter(args, kwargs), \
            f"{name}{args}{kwargs}: ours refuses ({error}) where torch builds"
        return
    if their_error is not None:
        raise AssertionError(f"{name}{args}{kwargs}: torch refuses ({their_error}) but ours builds")
    result = same(lambda m, *x: forward(ours if m is tr else theirs, *x), *inputs,
                  names=names + ("input", "hx", "lengths", "Expected", "dtype"), may_refuse=may_refuse)
    if result is not None:
        for (n, p), (_, q) in zip(sorted(ours.named_parameters()), sorted(theirs.named_parameters())):
            expected = np.zeros(tuple(q.shape)) if q.grad is None else q.grad.numpy()
            got = np.zeros(p.shape) if p.grad is None else p.grad.numpy()
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9, err_msg=f"gradient of {n}")


@cases(30)
@given(in_features=INTS, out_features=INTS, bias=st.sampled_from([True, False, 1]), data=st.data())
def test_linear(in_features, out_features, bias, data):
    n = in_features if isinstance(in_features, int) and not isinstance(in_features, bool) and in_features >= 0 else 2
    x = data.draw(tensors(FLOATS64 + ("int64",), shape=st.sampled_from([(n,), (2, n), (2, 1, n), (0, n), (3,), ()]),
                          special=False))
    compare_layers("Linear", (in_features, out_features), {"bias": bias}, [x],
                   names=("in_features", "out_features", "bias", "mat1", "shape"))


@cases(30)
@given(num=INTS, dim=INTS, padding_idx=st.sampled_from([None, 0, -1, 5]), data=st.data())
def test_embedding(num, dim, padding_idx, data):
    indices = data.draw(st.one_of(
        st.builds(Arg, arrays(("int64",), shape=st.sampled_from([(), (3,), (2, 2), (0,)]), special=False, low=-1, high=4)),
        st.builds(Arg, arrays(("float32", "bool"), shape=st.just((2,)), special=False))))
    compare_layers("Embedding", (num, dim), {"padding_idx": padding_idx}, [indices],
                   names=("num_embeddings", "embedding_dim", "padding_idx", "indices", "index", "Padding_idx"))


@cases(30)
@given(shape=st.sampled_from([3, (2, 3), (3,), 0, (0,), 2.5, (-1,)]), affine=st.booleans(), data=st.data())
def test_layer_norm(shape, affine, data):
    x = data.draw(tensors(FLOATS64, shape=st.sampled_from([(3,), (2, 3), (2, 2, 3), (0, 3), (3, 2), ()]),
                          special=data.draw(st.booleans())))
    compare_layers("LayerNorm", (shape,), {"elementwise_affine": affine}, [x],
                   names=("normalized_shape", "LayerNorm"))


CELLS = ["RNNCell", "LSTMCell", "GRUCell"]


@pytest.mark.parametrize("name", CELLS)
@cases(20)
@given(input_size=INTS, hidden_size=INTS, data=st.data())
def test_cell(name, input_size, hidden_size, data):
    i = input_size if type(input_size) is int and input_size > 0 else 2
    h = hidden_size if type(hidden_size) is int and hidden_size > 0 else 2
    batch = data.draw(st.sampled_from([(), (2,), (0,)]))
    x = data.draw(tensors(FLOATS64, shape=st.sampled_from([batch + (i,), batch + (i,), batch + (i + 1,), (1, 1, i)]),
                          special=False))
    hx_shape = batch + (data.draw(st.sampled_from([h, h, h + 1])),)
    states = data.draw(st.sampled_from(["none", "tensor", "tensor", "numpy"]))
    hx = None
    if states != "none":
        one = data.draw(arrays(("float64",), shape=hx_shape, special=False))
        parts = [one, one * 0.5] if name == "LSTMCell" else [one]
        if states == "numpy":
            hx = Each(parts[0] if len(parts) == 1 else tuple(parts),
                      torch.tensor(parts[0]) if len(parts) == 1 else tuple(torch.tensor(p) for p in parts))
        else:
            hx = Arg(parts[0]) if len(parts) == 1 else tuple(Arg(p) for p in parts)
    compare_layers(name, (input_size, hidden_size), {}, [x, hx], names=("hx", "input", "hidden"),
                   may_refuse=states == "numpy")


SEQUENCE = ["RNN", "LSTM", "GRU"]


@st.composite
def sequence_case(draw, name):
    layers = draw(st.sampled_from([1, 2, 1, 2, 0, np.int64(2)]))
    kwargs = {"num_layers": layers, "batch_first": draw(st.booleans()), "bidirectional": draw(st.booleans())}
    if name == "LSTM" and draw(st.booleans()):
        kwargs["proj_size"] = draw(st.sampled_from([1, 3, -1]))
    if draw(st.integers(0, 4)) == 0:
        kwargs["dropout"] = draw(st.sampled_from([0.0, 1.5, -0.1]))
    steps, batch = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    features = draw(st.sampled_from([2, 2, 3]))
    shape = (batch, steps, features) if kwargs["batch_first"] else (steps, batch, features)
    shape = draw(st.sampled_from([shape, shape, shape[-2:] if kwargs["batch_first"] else shape[::2], (2,)]))
    x = draw(tensors(FLOATS64, shape=st.just(shape), special=False))
    return kwargs, x


@pytest.mark.parametrize("name", SEQUENCE)
@cases(15)
@given(data=st.data())
def test_sequence_layer(name, data):
    kwargs, x = data.draw(sequence_case(name))
    compare_layers(name, (2, 3), kwargs, [x], names=("num_layers", "proj_size", "dropout", "input", "Expected"))


@pytest.mark.parametrize("name", SEQUENCE)
@cases(12)
@given(data=st.data(), nan_in_padding=st.booleans(), lengths_kind=st.sampled_from(["list", "numpy", "tensor"]))
def test_lengths_match_packed_sequences(name, data, nan_in_padding, lengths_kind):
    """lengths= gives what torch gives for the packed batch; whatever the padding holds (NaN, Inf)."""
    steps, batch = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
    lengths = data.draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch))
    x = data.draw(arrays(("float64",), shape=(steps, batch, 2), special=False))
    if nan_in_padding:
        for b, n in enumerate(lengths):
            x[n:, b] = np.nan
    bidirectional = data.draw(st.booleans())
    given = {"list": lengths, "numpy": np.array(lengths), "tensor": tr.tensor(lengths)}[lengths_kind]

    def forward(layer, x):
        if isinstance(layer, torch.nn.Module):
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
            out, state = layer(packed)
            return torch.nn.utils.rnn.pad_packed_sequence(out, total_length=steps)[0], state
        return layer(x, lengths=given)
    compare_layers(name, (2, 3), {"bidirectional": bidirectional}, [Arg(x)], forward=forward)


@cases(12)
@given(data=st.data())
def test_wrong_lengths_are_refused(data):
    steps, batch = 3, 2
    lengths = data.draw(st.one_of(st.lists(st.integers(-1, 5), max_size=3), st.sampled_from([[1.5, 2], None, "ab", [[1, 2]]])))
    layer = tr.nn.GRU(2, 3)
    _, error = attempt(lambda: layer(tr.zeros(steps, batch, 2), lengths=lengths))
    valid = isinstance(lengths, list) and len(lengths) == batch and all(
        isinstance(n, int) and 1 <= n <= steps for n in lengths)
    if valid or lengths is None:
        assert error is None, error
    else:
        from .contract import assert_clean_error
        assert_clean_error(error, ("lengths",))


@pytest.mark.parametrize("name", SEQUENCE)
@cases(12)
@given(data=st.data())
def test_sequence_hx(name, data):
    """hx of the right shape, a wrong one, of NumPy arrays, of the wrong count."""
    batch = 2
    size = data.draw(st.sampled_from([3, 3, 4]))
    count = data.draw(st.sampled_from([2, 2, 1])) if name == "LSTM" else 1
    leading = data.draw(st.sampled_from([1, 1, 2]))
    states = [data.draw(arrays(("float64",), shape=(leading, batch, size), special=False)) for _ in range(count)]
    numpy = data.draw(st.booleans())
    wrap = (lambda a: Each(a, torch.tensor(a))) if numpy else Arg
    hx = wrap(states[0]) if count == 1 and name != "LSTM" else tuple(wrap(s) for s in states)
    x = Arg(data.draw(arrays(("float64",), shape=(2, batch, 2), special=False)))
    compare_layers(name, (2, 3), {}, [x, hx], names=("hx", "hidden", "Expected"), may_refuse=numpy)


@cases(12)
@given(data=st.data())
def test_recurrent_with_any_cell(data):
    """Recurrent(cell_type, ...) with PyTorch's cells equals the named layers."""
    cell = data.draw(st.sampled_from([tr.nn.RNNCell, tr.nn.GRUCell, tr.nn.LSTMCell]))
    name = {tr.nn.RNNCell: "RNN", tr.nn.GRUCell: "GRU", tr.nn.LSTMCell: "LSTM"}[cell]
    layers, bidirectional = data.draw(st.sampled_from([1, 2])), data.draw(st.booleans())
    x = data.draw(arrays(("float64",), shape=(2, 2, 2), special=False))
    ours = tr.nn.Recurrent(cell, 2, 3, num_layers=layers, bidirectional=bidirectional, dtype="float64")
    theirs = getattr(torch.nn, name)(2, 3, num_layers=layers, bidirectional=bidirectional, dtype=torch.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    out, state = ours(tr.tensor(x))
    expected, expected_state = theirs(torch.tensor(x))
    assert_same(out, expected, "output")
    assert_same(state, expected_state, "state")


@cases(10)
@given(p=st.sampled_from([0.0, 0.5, 1.0, -1, 2, "a", None]), x=tensors(("float64",), special=False))
def test_dropout_module(p, x):
    """Dropout in eval mode is the identity, p = 1 zeroes, and a bad p is refused (the masks: test_torch_draws.py)."""
    def call(m, x):
        layer = m.nn.Dropout(p)
        layer.eval() if p not in (0.0, 1.0) else layer.train()
        return layer(x)
    same(call, x, names=("Dropout", "dropout", "probability", "p"))
