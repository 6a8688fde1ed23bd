"""Padding, shrink, RReLU, Softmax2d, channel and alpha dropout, BatchNorm2d, InstanceNorm, LazyLinear,
EmbeddingBag and PixelShuffle against torch: values and gradients in float64, reprs, state_dicts both ways,
initial weights after the same seed, train and eval behaviour, errors naming the argument."""
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np
from tests.nn.parity import (
    GRADIENTS,
    assert_values,
    backward_both,
    copy_torch_weights,
    export_weights,
    pair,
)

F = tr.nn.functional


def compare(torch, rng, ours_fn, theirs_fn, arrays, what):
    """ours_fn(*ours) against theirs_fn(*theirs) over the same float64 leaves: the value and every gradient."""
    pairs = [pair(torch, a, "cpu") for a in arrays]
    ours, theirs = ours_fn(*[p[0] for p in pairs]), theirs_fn(*[p[1] for p in pairs])
    assert_values(ours, theirs, what)
    backward_both(torch, ours, theirs, rng)
    for k, (mine, their) in enumerate(pairs):
        assert_values(mine.grad, their.grad, f"{what}: gradient of input {k}", GRADIENTS)


def with_kinks(rng, shape, at=(0.5, -0.5, 0.0)):
    x = rng.standard_normal(shape)
    x.reshape(-1)[:len(at)] = at
    return x


# ----------------------------------------------------------------------------- functions

FUNCTIONS = [
    ("hardshrink", (), {}, (3, 5)),
    ("hardshrink", (0.3,), {}, (3, 5)),
    ("softshrink", (), {}, (3, 5)),
    ("softshrink", (), {"lambd": 0.0}, (3, 5)),
    ("rrelu", (), {}, (3, 5)),
    ("rrelu", (0.1, 0.4), {"training": False}, (2, 3, 4)),
    ("pixel_shuffle", (2,), {}, (2, 8, 3, 2)),
    ("pixel_shuffle", (3,), {}, (9, 2, 3)),
    ("pixel_unshuffle", (2,), {}, (2, 2, 4, 6)),
    ("pixel_unshuffle", (2,), {}, (5, 1, 3, 2, 4)),
    ("instance_norm", (), {}, (2, 3, 5)),
    ("instance_norm", (), {"eps": 1e-3}, (2, 3, 4, 3)),
    ("dropout1d", (0.5,), {"training": False}, (2, 3, 4)),
    ("dropout2d", (0.5,), {"training": False}, (2, 3, 4, 2)),
    ("alpha_dropout", (0.5,), {}, (2, 3)),
    ("feature_alpha_dropout", (0.5,), {}, (2, 3, 4)),
]


@pytest.mark.parametrize("name, args, kwargs, shape", FUNCTIONS, ids=lambda v: v if isinstance(v, str) else None)
def test_functions_match_torch(torch, rng, name, args, kwargs, shape):
    x = with_kinks(rng, shape, (0.5, -0.5, 0.3, -0.3, 0.0))
    compare(torch, rng, lambda a: getattr(F, name)(a, *args, **kwargs),
            lambda a: getattr(torch.nn.functional, name)(a, *args, **kwargs), [x], name)


def test_instance_norm_with_running_statistics_and_affine(torch, rng):
    x, w, b = rng.standard_normal((3, 4, 5)), rng.standard_normal(4), rng.standard_normal(4)
    means, variances = rng.standard_normal(4), rng.random(4) + 0.5
    for use_input_stats in (True, False):
        ours_stats = [tr.tensor(means.copy()), tr.tensor(variances.copy())]
        theirs_stats = [torch.tensor(means.copy()), torch.tensor(variances.copy())]
        compare(torch, rng,
                lambda a, c, d, stats=ours_stats, used=use_input_stats: F.instance_norm(a, *stats, c, d, used, 0.3),
                lambda a, c, d, stats=theirs_stats, used=use_input_stats: torch.nn.functional.instance_norm(
                    a, *stats, c, d, used, 0.3),
                [x, w, b], f"instance_norm use_input_stats={use_input_stats}")
        for mine, theirs in zip(ours_stats, theirs_stats):
            assert_values(mine, theirs, "running statistics")


# celu_ with alpha 2: torch rounds 1 / alpha to float32 in the in-place gradient, exact only for powers of 2
IN_PLACE = [("relu_", ()), ("elu_", (0.7,)), ("leaky_relu_", (0.2,)), ("hardtanh_", (-0.5, 0.5)), ("selu_", ()),
            ("celu_", (2.0,)), ("threshold_", (0.1, -2.0)), ("rrelu_", (0.1, 0.3))]


@pytest.mark.parametrize("name, args", IN_PLACE, ids=[n for n, _ in IN_PLACE])
def test_in_place_functions_write_the_input_and_match_torch(torch, rng, name, args):
    def in_place(lib, fn):
        def run(a):
            y = a * 1.0   # a non-leaf, as in-place changes of a leaf that requires grad are refused
            out = fn(y, *args)
            assert out is y
            return y
        return run
    compare(torch, rng, in_place(tr, getattr(F, name)), in_place(torch, getattr(torch.nn.functional, name)),
            [with_kinks(rng, (3, 4), (0.5, -0.5, 0.0, 0.1))], name)


def test_in_place_function_of_a_leaf_is_refused():
    with pytest.raises(RuntimeError, match="leaf Variable"):
        F.relu_(tr.ones(3, requires_grad=True))


# ----------------------------------------------------------------------------- modules

def _norm_modules(lib):
    return {
        "BatchNorm2d": lib.nn.BatchNorm2d(3, dtype=lib.float64),
        "BatchNorm2d momentum None": lib.nn.BatchNorm2d(3, momentum=None, dtype=lib.float64),
        "BatchNorm2d no stats": lib.nn.BatchNorm2d(3, track_running_stats=False, affine=False, dtype=lib.float64),
        "InstanceNorm2d": lib.nn.InstanceNorm2d(3, dtype=lib.float64),
        "InstanceNorm2d affine tracked": lib.nn.InstanceNorm2d(3, affine=True, track_running_stats=True,
                                                               dtype=lib.float64),
        "InstanceNorm1d affine tracked": lib.nn.InstanceNorm1d(3, 0.01, 0.2, True, True, dtype=lib.float64),
    }


@pytest.mark.parametrize("name", list(_norm_modules(tr)))
def test_normalisation_layers_train_then_eval_as_torch(torch, rng, name):
    ours, theirs = _norm_modules(tr)[name], _norm_modules(torch)[name]
    shape = (2, 3, 5) if name.endswith("1d affine tracked") else (2, 3, 4, 3)
    for p in theirs.parameters():   # not ones and zeros, so the affine gradients tell something
        p.data.copy_(torch.tensor(rng.standard_normal(p.shape)))
    copy_torch_weights(ours, theirs)
    for training in (True, True, False):
        ours.train(training), theirs.train(training)
        compare(torch, rng, ours, theirs, [rng.standard_normal(shape)], f"{name} training={training}")
        for key, value in theirs.state_dict().items():
            assert_values(ours.state_dict()[key], value, f"{name}: {key}")


def test_instance_norm_takes_unbatched_input_and_warns_on_other_channels(torch, rng):
    x = rng.standard_normal((3, 4, 5))
    compare(torch, rng, tr.nn.InstanceNorm2d(3), torch.nn.InstanceNorm2d(3), [x], "unbatched InstanceNorm2d")
    with pytest.warns(UserWarning, match="does not match num_features"):
        tr.nn.InstanceNorm1d(7)(tr.tensor(x))
    with pytest.raises(ValueError, match="to match num_features"):
        tr.nn.InstanceNorm1d(7, affine=True)(tr.tensor(x))


PADS = [("ZeroPad1d", (2,), (2, 3, 5)), ("ZeroPad2d", ((1, 0, 2, 1),), (2, 3, 4, 5)),
        ("ConstantPad1d", ((1, 3), 1.5), (3, 5)), ("ConstantPad2d", (1, -2.0), (2, 2, 3, 4)),
        ("ReflectionPad1d", ((2, 1),), (2, 3, 5)), ("ReflectionPad2d", (2,), (2, 4, 3)),
        ("ReplicationPad1d", (3,), (3, 4)), ("ReplicationPad2d", ((0, 2, 3, 1),), (1, 2, 3, 4)),
        ("CircularPad1d", ((1, 2),), (2, 3, 4)), ("CircularPad2d", ((1, 1, 2, 0),), (2, 2, 3, 3)),
        ("ConstantPad1d", ((-1, 2), 0.5), (2, 3, 4, 5))]   # a crop, and any rank for a constant


@pytest.mark.parametrize("name, args, shape", PADS, ids=[p[0] for p in PADS])
def test_padding_layers_match_torch(torch, rng, name, args, shape):
    ours, theirs = getattr(tr.nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    compare(torch, rng, ours, theirs, [rng.standard_normal(shape)], name)


ACTIVATIONS = [("Hardshrink", ()), ("Hardshrink", (0.2,)), ("Softshrink", (1.0,)), ("RReLU", ()),
               ("RReLU", (0.05, 0.5)), ("Softmax2d", ())]


@pytest.mark.parametrize("name, args", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_layers_match_torch_in_eval(torch, rng, name, args):
    ours, theirs = getattr(tr.nn, name)(*args).eval(), getattr(torch.nn, name)(*args).eval()
    assert repr(ours) == repr(theirs)
    compare(torch, rng, ours, theirs, [with_kinks(rng, (2, 3, 4, 2))], name)


def test_rrelu_in_training_draws_slopes_between_lower_and_upper(rng):
    x = tr.tensor(-np.abs(rng.standard_normal((200, 50))) - 0.1)
    slopes = to_np(tr.nn.RReLU(0.1, 0.3)(x)) / to_np(x)
    assert 0.1 <= slopes.min() < 0.12 and 0.28 < slopes.max() <= 0.3
    assert len(np.unique(slopes)) > 1000
    positive = tr.tensor(np.abs(rng.standard_normal(10)))
    np.testing.assert_array_equal(to_np(F.rrelu(positive, training=True)), to_np(positive))


def test_softmax2d_wants_3d_or_4d_input():
    with pytest.raises(ValueError, match="expected input to be 3D or 4D, got 2D"):
        tr.nn.Softmax2d()(tr.ones(2, 3))


# ----------------------------------------------------------------------------- dropout

DROPOUTS = [("Dropout1d", "dropout1d", (4, 6, 5)), ("Dropout2d", "dropout2d", (4, 6, 3, 2)),
            ("AlphaDropout", "alpha_dropout", (4, 6)), ("FeatureAlphaDropout", "feature_alpha_dropout", (4, 6, 3))]


@pytest.mark.parametrize("name, function, shape", DROPOUTS, ids=[d[0] for d in DROPOUTS])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dropout_layers_draw_torchs_masks_after_the_same_seed(torch, rng, name, function, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    ours, theirs = getattr(tr.nn, name)(0.3), getattr(torch.nn, name)(0.3)
    assert repr(ours) == repr(theirs)
    tr.manual_seed(5), torch.manual_seed(5)
    mine, their = tr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(mine), theirs(their)
    np.testing.assert_allclose(to_np(out), expected.detach().numpy(), rtol=1e-6 if dtype == "float32" else 1e-13)
    out.sum().backward(), expected.sum().backward()
    np.testing.assert_allclose(to_np(mine.grad), their.grad.numpy(), rtol=1e-6 if dtype == "float32" else 1e-13)
    ours.eval()
    assert ours(mine) is mine


def test_channel_dropout_drops_whole_channels_and_keeps_the_mean():
    out = to_np(F.dropout2d(tr.ones(400, 50, 2, 3), 0.4))
    per_channel = out.reshape(400, 50, -1)
    assert (per_channel.min(axis=-1) == per_channel.max(axis=-1)).all()
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.6)}
    assert abs(out.mean() - 1) < 0.02
    alpha = to_np(F.alpha_dropout(tr.tensor(np.random.default_rng(0).standard_normal(200_000)), 0.2, True))
    assert abs(alpha.mean()) < 0.01 and abs(alpha.std() - 1) < 0.01   # mean and variance kept


def test_dropout_on_an_unbatched_input_and_torchs_warnings():
    x = tr.ones(3, 4)
    assert to_np(F.dropout1d(x, 0.5)).shape == (3, 4)
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        F.dropout2d(tr.ones(2, 3, 4), 0.5)
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout2d"):
        F.dropout2d(x, 0.5)
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input"):
        F.dropout1d(tr.ones(2, 3, 4, 5))
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        tr.nn.AlphaDropout(1.5)
    np.testing.assert_array_equal(to_np(F.feature_alpha_dropout(x, 1.0, True)), 0)


# ----------------------------------------------------------------------------- structure

def test_embedding_bag_matches_torch(torch, rng):
    index = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0, 0])
    offsets = np.array([0, 3, 3, 7])   # an empty bag
    cases = [({"mode": "sum"}, True), ({"mode": "mean"}, False), ({"mode": "max"}, False),
             ({"mode": "mean", "padding_idx": 4}, False), ({"mode": "sum", "padding_idx": 2}, True),
             ({"mode": "max", "padding_idx": 0}, False)]
    for options, weighted in cases:
        for two_d in (False, True):
            weight, weights = rng.standard_normal((10, 3)), rng.standard_normal(index.size)
            take = (lambda a: a.reshape(2, 5)) if two_d else (lambda a: a)
            given = {"offsets": None if two_d else offsets}

            def run(lib, w, psw=None, options=options, given=given, take=take):
                off = None if given["offsets"] is None else lib.tensor(given["offsets"])
                return lib.nn.functional.embedding_bag(lib.tensor(take(index)), w, off, per_sample_weights=(
                    None if psw is None else take(psw)), **options)
            arrays = [weight, weights] if weighted else [weight]
            compare(torch, rng, lambda *a: run(tr, *a), lambda *a: run(torch, *a), arrays, f"{options} {two_d}")


def test_embedding_bag_module_seeds_reprs_and_state_dicts(torch):
    for lib in (tr, torch):
        lib.manual_seed(3)
    ours, theirs = (lib.nn.EmbeddingBag(6, 4, mode="sum", padding_idx=-2, dtype=lib.float32) for lib in (tr, torch))
    assert repr(ours) == repr(theirs) == "EmbeddingBag(6, 4, mode='sum', padding_idx=4)"
    np.testing.assert_array_equal(to_np(ours.weight), theirs.weight.detach().numpy())
    theirs.weight.data.mul_(2)
    copy_torch_weights(ours, theirs)
    export_weights(torch, ours, theirs)
    index, offsets = [0, 4, 5, 1], [0, 2]
    assert_values(ours(tr.tensor(index), tr.tensor(offsets)), theirs(torch.tensor(index), torch.tensor(offsets)),
                  "EmbeddingBag")
    include_last = [lib.nn.EmbeddingBag(6, 4, include_last_offset=True, dtype=lib.float64) for lib in (tr, torch)]
    copy_torch_weights(include_last[0], include_last[1])
    assert_values(include_last[0](tr.tensor(index), tr.tensor(offsets + [4])),
                  include_last[1](torch.tensor(index), torch.tensor(offsets + [4])), "include_last_offset")


def test_lazy_linear_draws_torchs_weights_on_its_first_call(torch, rng):
    x = rng.standard_normal((2, 5)).astype(np.float32)
    tr.manual_seed(7), torch.manual_seed(7)
    ours, theirs = tr.nn.LazyLinear(3, dtype=tr.float32), torch.nn.LazyLinear(3, dtype=torch.float32)
    assert repr(ours) == repr(theirs) and list(ours.parameters()) == []
    tr.rand(2, dtype=tr.float32), torch.rand(2, dtype=torch.float32)   # drawn between construction and the first call, as the weights are
    out, expected = ours(tr.tensor(x)), theirs(torch.tensor(x))
    assert type(ours) is tr.nn.Linear and repr(ours) == repr(theirs)
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(to_np(ours.state_dict()[key]), value.numpy())
    np.testing.assert_allclose(to_np(out), expected.detach().numpy(), rtol=1e-6)
    no_bias = tr.nn.LazyLinear(2, bias=False)
    no_bias(tr.ones(1, 4))
    assert no_bias.bias is None and no_bias.weight.shape == (2, 4) and list(no_bias.state_dict()) == ["weight"]


def test_pixel_shuffle_layers_and_their_inverse(torch, rng):
    for name, r in (("PixelShuffle", 3), ("PixelUnshuffle", 2)):
        assert repr(getattr(tr.nn, name)(r)) == repr(getattr(torch.nn, name)(r))
    x = tr.tensor(rng.standard_normal((2, 8, 3, 5)))
    np.testing.assert_array_equal(to_np(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2)), to_np(x))


def test_recurrent_layers_and_cells_are_torchs_base_classes():
    for layer in (tr.nn.RNN(2, 3), tr.nn.LSTM(2, 3), tr.nn.GRU(2, 3)):
        assert isinstance(layer, tr.nn.RNNBase) and isinstance(layer, tr.nn.Recurrent)
    for cell in (tr.nn.RNNCell(2, 3), tr.nn.LSTMCell(2, 3), tr.nn.GRUCell(2, 3)):
        assert isinstance(cell, tr.nn.RNNCellBase) and not isinstance(cell, tr.nn.RNNBase)


def test_clip_grad_norm_is_the_deprecated_alias(torch):
    p = tr.nn.Parameter(tr.ones(4))
    p.grad = tr.full((4,), 3.0)
    with pytest.warns(FutureWarning, match="clip_grad_norm_"):
        norm = tr.nn.utils.clip_grad_norm([p], 1.0)
    assert float(norm) == 6.0 and abs(float(p.grad.norm()) - 1.0) < 1e-5
    from tinygrad_rnn.nn.utils.clip_grad import clip_grad_value_
    assert clip_grad_value_ is tr.nn.utils.clip_grad.clip_grad_value_


ERRORS = [
    (lambda: tr.nn.ZeroPad2d((1, 2, 3)), TypeError, "padding must be an int or a tuple of 4 ints"),
    (lambda: tr.nn.ReflectionPad1d(1)(tr.ones(2, 3, 4, 5)), ValueError, r"expected 2D or 3D input \(got 4D input\)"),
    (lambda: F.softshrink(tr.ones(2), -1.0), RuntimeError, "lambda must be greater or equal to 0"),
    (lambda: F.hardshrink(tr.ones(2), "a"), TypeError, "argument 'lambd' must be a number"),
    (lambda: F.rrelu(tr.ones(2), 0.5, 0.1), ValueError, "lower bound"),
    (lambda: tr.nn.BatchNorm2d(3)(tr.ones(2, 3, 4)), ValueError, r"expected 4D input \(got 3D input\)"),
    (lambda: tr.nn.InstanceNorm2d(3)(tr.ones(2, 3, 1, 1)), ValueError, "more than 1 spatial element"),
    (lambda: F.pixel_shuffle(tr.ones(2, 5, 3, 3), 2), RuntimeError, r"input.size\(-3\)=5 is not divisible by 4"),
    (lambda: F.pixel_unshuffle(tr.ones(3, 4), 2), RuntimeError, "at least 3 dimensions"),
    (lambda: tr.nn.PixelShuffle(2.0)(tr.ones(1, 4, 2, 2)), TypeError, "upscale_factor should be of type int"),
    (lambda: F.embedding_bag(tr.tensor([1, 2]), tr.ones(3, 2)), ValueError, "offsets has to be a 1D Tensor"),
    (lambda: F.embedding_bag(tr.tensor([1, 2]), tr.ones(3, 2), tr.tensor([1])), RuntimeError, "offsets\\[0\\]"),
    (lambda: F.embedding_bag(tr.tensor([1, 2]), tr.ones(3, 2), tr.tensor([0]), mode="mean",
                             per_sample_weights=tr.ones(2)), NotImplementedError, "only supported for mode='sum'"),
    (lambda: tr.nn.EmbeddingBag(3, 2, mode="min"), ValueError, "mode has to be one of sum, mean or max"),
    (lambda: tr.nn.LazyLinear(-1), ValueError, "out_features"),
]


@pytest.mark.parametrize("make, kind, message", ERRORS)
def test_bad_input_is_refused_naming_the_argument(make, kind, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(kind, match=message):
            make()
