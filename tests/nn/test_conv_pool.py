"""Convolution and pooling layers against torch: values and gradients (input, weight, bias) in float64
over many argument combinations, torch's weights after the same seed, state_dicts both ways, reprs,
errors that name the argument, and gradcheck / gradgradcheck."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np
from tests.nn.parity import (
    GRADIENTS,
    assert_same_gradients,
    assert_values,
    backward_both,
    copy_torch_weights,
    export_weights,
    pair,
)

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")   # torch's, about its speed


def check_function(torch, device, rng, name, input_shape, kwargs, weight_shape=None, bias=True, values=None):
    """F.<name> on both sides: the output and the gradients of the input (and weight, bias)."""
    data = [values if values is not None else rng.standard_normal(input_shape)]
    if weight_shape is not None:
        data.append(rng.standard_normal(weight_shape))
        if bias:
            data.append(rng.standard_normal(weight_shape[0]))
    pairs = [pair(torch, d, device) for d in data]
    ours = getattr(tr.nn.functional, name)(*[p[0] for p in pairs], **kwargs)
    theirs = getattr(torch.nn.functional, name)(*[p[1] for p in pairs], **kwargs)
    if kwargs.get("return_indices"):
        (ours, our_indices), (theirs, their_indices) = ours, theirs
        np.testing.assert_array_equal(to_np(our_indices), their_indices.numpy())
        assert our_indices.dtype == np.int64
    assert_values(ours, theirs, name)
    backward_both(torch, ours, theirs, rng)
    for role, (mine, their) in zip(("input", "weight", "bias"), pairs):
        assert_values(mine.grad, their.grad, f"{name}: gradient of {role}", GRADIENTS)


# ----------------------------------------------------------------------------- convolutions

CONV1D = [
    ((2, 4, 9), (6, 4, 3), {}),
    ((2, 4, 9), (6, 4, 3), {"stride": 2, "padding": 1}),
    ((2, 4, 10), (6, 4, 4), {"padding": "same"}),              # an even kernel: one more on the right
    ((2, 4, 10), (6, 4, 4), {"padding": "same", "dilation": 3}),
    ((2, 4, 10), (6, 4, 3), {"padding": "same", "dilation": 2}),
    ((2, 4, 9), (6, 4, 3), {"padding": "valid", "dilation": 2}),
    ((2, 4, 11), (6, 2, 3), {"groups": 2, "stride": 3, "padding": (2,)}),
    ((3, 4, 8), (8, 1, 5), {"groups": 4, "padding": 2}),      # depthwise
    ((2, 4, 7), (6, 4, 7), {}),                                # one window
    ((4, 9), (6, 4, 3), {"stride": 2, "dilation": 2, "padding": 3}),   # unbatched
    ((0, 4, 9), (6, 4, 3), {"padding": 1}),                    # an empty batch
]

CONV2D = [
    ((2, 4, 7, 6), (6, 4, 3, 3), {}),
    ((2, 4, 7, 6), (6, 2, 3, 2), {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}),
    ((2, 3, 6, 7), (5, 3, 4, 2), {"padding": "same", "dilation": (1, 3)}),
    ((2, 3, 6, 7), (5, 3, 1, 1), {"stride": 2}),
    ((3, 5, 6), (4, 3, 2, 3), {"padding": 1, "stride": (1, 2)}),   # unbatched
    ((1, 3, 5, 6), (4, 3, 2, 3), {"padding": (1,), "dilation": [2]}),   # one value for both dims
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name, input_shape, weight_shape, kwargs",
                         [("conv1d", *case) for case in CONV1D] + [("conv2d", *case) for case in CONV2D])
def test_conv_functions_match_torch(torch, device, rng, name, input_shape, weight_shape, kwargs, bias):
    check_function(torch, device, rng, name, input_shape, kwargs, weight_shape, bias)


CONV_MODULES = [
    ("Conv1d", (4, 6, 3), {}, (2, 4, 9)),
    ("Conv1d", (4, 6, 4), {"padding": "same", "padding_mode": "reflect"}, (2, 4, 9)),
    ("Conv1d", (4, 6, 3), {"padding": 2, "padding_mode": "replicate", "stride": 2}, (4, 9)),
    ("Conv1d", (4, 8, 3), {"padding": 3, "padding_mode": "circular", "dilation": 2, "groups": 2}, (2, 4, 9)),
    ("Conv1d", (4, 6, 5), {"bias": False, "padding": "valid"}, (2, 4, 9)),
    ("Conv2d", (4, 6, (3, 2)), {"padding": (1, 2), "padding_mode": "reflect"}, (2, 4, 6, 5)),
    ("Conv2d", (4, 6, 3), {"padding": "same", "padding_mode": "circular", "dilation": (2, 1)}, (4, 6, 5)),
    ("Conv2d", (4, 4, 2), {"padding": 1, "padding_mode": "replicate", "groups": 4, "stride": 2}, (2, 4, 5, 5)),
    ("Conv2d", (4, 6, 3), {"padding": "same", "bias": False}, (2, 4, 5, 6)),
]


@pytest.mark.parametrize("layer, args, kwargs, input_shape", CONV_MODULES)
def test_conv_modules_match_torch(torch, device, rng, layer, args, kwargs, input_shape):
    theirs = getattr(torch.nn, layer)(*args, **kwargs, dtype=torch.float64)
    ours = getattr(tr.nn, layer)(*args, **kwargs, dtype=tr.float64, device=device)
    assert repr(ours) == repr(theirs)
    copy_torch_weights(ours, theirs)
    x, their_x = pair(torch, rng.standard_normal(input_shape), device)
    y, their_y = ours(x), theirs(their_x)
    assert_values(y, their_y, layer)
    backward_both(torch, y, their_y, rng)
    assert_values(x.grad, their_x.grad, "gradient of input", GRADIENTS)
    assert_same_gradients(ours, theirs)
    for name in ("kernel_size", "stride", "padding", "dilation", "groups", "padding_mode", "output_padding",
                 "transposed", "in_channels", "out_channels"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert list(ours._reversed_padding_repeated_twice) == list(theirs._reversed_padding_repeated_twice)


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("layer, args, kwargs", [
    ("Conv1d", (3, 5, 4), {}), ("Conv1d", (4, 6, 3), {"groups": 2, "bias": False}),
    ("Conv2d", (4, 6, (3, 2)), {"groups": 2}), ("Conv2d", (16, 32, 3), {})])
def test_a_seeded_conv_starts_from_torchs_weights(torch, seed, layer, args, kwargs):
    tr.manual_seed(seed), torch.manual_seed(seed)
    ours = getattr(tr.nn, layer)(*args, **kwargs)
    theirs = getattr(torch.nn, layer)(*args, **kwargs, dtype=torch.float32)
    want, got = theirs.state_dict(), ours.state_dict()
    assert list(got) == list(want)
    for key in want:
        assert got[key].dtype == np.float32 and got[key].shape == tuple(want[key].shape)
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy(), err_msg=key)
    np.testing.assert_array_equal(tr.rand(3).numpy(), torch.rand(3, dtype=torch.float32).numpy())


def test_conv_state_dicts_move_both_ways(torch, rng):
    x = rng.standard_normal((2, 4, 6, 5))
    ours = tr.nn.Conv2d(4, 6, 3, padding=1, groups=2, dtype=tr.float64)
    theirs = torch.nn.Conv2d(4, 6, 3, padding=1, groups=2)
    export_weights(torch, ours, theirs)
    assert_values(ours(tr.tensor(x)), theirs(torch.tensor(x)), "ours into torch")
    theirs = torch.nn.Conv2d(4, 6, 3, padding=1, groups=2)
    copy_torch_weights(ours, theirs)
    assert_values(ours(tr.tensor(x)), theirs(torch.tensor(x)), "torch's into ours")


def test_a_conv_front_end_before_an_lstm_ports_unchanged(torch, rng):
    """Conv1d, ReLU, MaxPool1d, then an LSTM over the pooled steps: the same model on both sides."""
    def build(lib, **options):
        return lib.nn.ModuleDict({"conv": lib.nn.Conv1d(3, 8, 5, padding="same", **options),
                                  "pool": lib.nn.MaxPool1d(2),
                                  "lstm": lib.nn.LSTM(8, 6, batch_first=True, **options)})

    def run(model, x):
        features = model["pool"](model["conv"](x).relu())
        return model["lstm"](features.transpose(1, 2))[0]

    ours, theirs = build(tr, dtype=tr.float64), build(torch, dtype=torch.float64)
    copy_torch_weights(ours, theirs)
    x, their_x = pair(torch, rng.standard_normal((2, 3, 12)), "cpu")
    y, their_y = run(ours, x), run(theirs, their_x)
    assert_values(y, their_y, "conv + lstm")
    backward_both(torch, y, their_y, rng)
    assert_values(x.grad, their_x.grad, "gradient of input", GRADIENTS)
    assert_same_gradients(ours, theirs)


# ----------------------------------------------------------------------------- pooling

POOLS = [
    ("max_pool1d", (2, 3, 9), {"kernel_size": 3}),
    ("max_pool1d", (2, 3, 9), {"kernel_size": 3, "stride": 1, "padding": 1, "return_indices": True}),
    ("max_pool1d", (2, 3, 10), {"kernel_size": 4, "stride": 3, "padding": 2, "dilation": 2, "ceil_mode": True,
                                "return_indices": True}),
    ("max_pool1d", (3, 8), {"kernel_size": 2, "stride": 3, "ceil_mode": True, "return_indices": True}),
    # a window whose padded place is next to an input element that lies outside the dilated window
    ("max_pool1d", (4, 3, 9), {"kernel_size": 2, "padding": 1, "dilation": 3, "return_indices": True}),
    ("max_pool2d", (2, 3, 7, 6), {"kernel_size": 2}),
    ("max_pool2d", (2, 3, 7, 6), {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 0), "dilation": (1, 2),
                                  "ceil_mode": True, "return_indices": True}),
    ("max_pool2d", (3, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1, "return_indices": True}),
    ("max_pool2d", (2, 3, 6, 7), {"kernel_size": 2, "padding": (0, 1), "dilation": (1, 3), "return_indices": True}),
    ("avg_pool1d", (2, 3, 9), {"kernel_size": 3}),
    ("avg_pool1d", (2, 3, 10), {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True}),
    ("avg_pool1d", (2, 3, 10), {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True,
                                "count_include_pad": False}),
    ("avg_pool1d", (3, 7), {"kernel_size": 2, "padding": 1, "count_include_pad": False}),
    ("avg_pool2d", (2, 3, 7, 6), {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1), "ceil_mode": True}),
    ("avg_pool2d", (2, 3, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                                  "count_include_pad": False}),
    ("avg_pool2d", (2, 3, 7, 6), {"kernel_size": 2, "padding": 1, "divisor_override": 3}),
    ("avg_pool2d", (3, 5, 5), {"kernel_size": 2, "stride": 1}),
    ("adaptive_max_pool1d", (2, 3, 7), {"output_size": 3, "return_indices": True}),
    ("adaptive_max_pool1d", (2, 3, 7), {"output_size": 10, "return_indices": True}),
    ("adaptive_max_pool2d", (2, 3, 7, 5), {"output_size": (4, 2), "return_indices": True}),
    ("adaptive_max_pool2d", (3, 7, 5), {"output_size": (None, 3)}),
    ("adaptive_avg_pool1d", (2, 3, 7), {"output_size": 3}),
    ("adaptive_avg_pool1d", (3, 7), {"output_size": 1}),
    ("adaptive_avg_pool2d", (2, 3, 7, 5), {"output_size": (3, 4)}),
    ("adaptive_avg_pool2d", (2, 3, 5, 6), {"output_size": (None, 4)}),
    ("adaptive_avg_pool2d", (2, 3, 5, 6), {"output_size": 8}),
]


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("name, input_shape, kwargs", POOLS)
def test_pool_functions_match_torch(torch, device, rng, name, input_shape, kwargs, ties):
    """With ties (small integers), a maximum's gradient must go to the first maximal element, as torch's."""
    values = rng.integers(-2, 3, input_shape).astype(np.float64) if ties else None
    check_function(torch, device, rng, name, input_shape, kwargs, values=values)


def test_max_pool_picks_the_first_maximum_and_never_the_padding(torch):
    for values, kwargs in (([1.0, 3.0, 3.0, 2.0, 3.0], {"kernel_size": 3, "stride": 1}),
                           ([-np.inf] * 5, {"kernel_size": 2, "padding": 1})):
        x, their_x = pair(torch, np.array([[values]]), "cpu")
        (y, indices), (their_y, their_indices) = (lib.nn.functional.max_pool1d(v, return_indices=True, **kwargs)
                                                  for lib, v in ((tr, x), (torch, their_x)))
        np.testing.assert_array_equal(indices.numpy(), their_indices.numpy())
        y.sum().backward()
        their_y.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), their_x.grad.numpy())


@pytest.mark.parametrize("name, input_shape, size", [
    ("max_pool1d", (0, 3, 5), 2), ("avg_pool2d", (0, 2, 4, 4), 2), ("adaptive_max_pool1d", (2, 3, 5), 0),
    ("adaptive_avg_pool2d", (2, 3, 5, 4), (0, 2))])
def test_empty_pools_have_torchs_shapes(torch, name, input_shape, size):
    x = np.zeros(input_shape)
    ours, theirs = getattr(tr.nn.functional, name)(tr.tensor(x), size), getattr(torch.nn.functional, name)(
        torch.tensor(x), size)
    assert ours.shape == tuple(theirs.shape)


POOL_MODULES = [
    ("MaxPool1d", (3,), {}, (2, 3, 9)),
    ("MaxPool1d", (4,), {"stride": 2, "padding": 2, "dilation": 2, "ceil_mode": True}, (3, 10)),
    ("MaxPool2d", ((2, 3),), {"stride": 1, "padding": 1, "dilation": 2, "return_indices": True, "ceil_mode": True},
     (2, 3, 7, 8)),
    ("AvgPool1d", (3,), {}, (2, 3, 9)),
    ("AvgPool1d", (4, 3, 2), {"ceil_mode": True, "count_include_pad": False}, (2, 3, 10)),
    ("AvgPool2d", (3,), {"ceil_mode": True, "count_include_pad": False, "divisor_override": 2}, (2, 3, 7, 8)),
    ("AvgPool2d", ((3, 2), (2, 1), (1, 0)), {}, (3, 7, 8)),
    ("AdaptiveAvgPool1d", (3,), {}, (2, 3, 7)),
    ("AdaptiveAvgPool2d", ((None, 3),), {}, (2, 3, 7, 8)),
    ("AdaptiveMaxPool1d", (2,), {}, (2, 3, 7)),
    ("AdaptiveMaxPool2d", (2,), {"return_indices": True}, (3, 7, 8)),
]


@pytest.mark.parametrize("layer, args, kwargs, input_shape", POOL_MODULES)
def test_pool_modules_match_torch(torch, rng, layer, args, kwargs, input_shape):
    ours, theirs = getattr(tr.nn, layer)(*args, **kwargs), getattr(torch.nn, layer)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert not list(ours.parameters()) and ours.state_dict() == {}
    x, their_x = pair(torch, rng.standard_normal(input_shape), "cpu")
    y, their_y = ours(x), theirs(their_x)
    if kwargs.get("return_indices"):
        np.testing.assert_array_equal(y[1].numpy(), their_y[1].numpy())
        y, their_y = y[0], their_y[0]
    assert_values(y, their_y, layer)
    backward_both(torch, y, their_y, rng)
    assert_values(x.grad, their_x.grad, "gradient of input", GRADIENTS)


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("make, error, match", [
    (lambda: tr.nn.Conv1d(3, 4, 3, groups=2), ValueError, "in_channels must be divisible by groups"),
    (lambda: tr.nn.Conv1d(4, 3, 3, groups=2), ValueError, "out_channels must be divisible by groups"),
    (lambda: tr.nn.Conv1d(4, 4, 3, groups=0), ValueError, "groups must be a positive integer"),
    (lambda: tr.nn.Conv1d(4, 4, 3, padding="full"), ValueError, "Invalid padding string 'full'"),
    (lambda: tr.nn.Conv1d(4, 4, 3, padding_mode="mirror"), ValueError, "padding_mode must be one of"),
    (lambda: tr.nn.Conv2d(4, 4, 3, stride=2, padding="same"), ValueError, "not supported for strided"),
    (lambda: tr.nn.Conv2d(4, 4, (3, 3, 3)), ValueError, "kernel_size must be an int or a tuple of 2 ints"),
    (lambda: tr.nn.Conv1d(4, 4, 0), ValueError, "kernel_size must be greater than zero"),
    (lambda: tr.nn.Conv1d(4, 4, 3, padding=-1), ValueError, "padding must be non-negative"),
    (lambda: tr.nn.Conv1d(4, 4, 2.5), TypeError, "kernel_size must be an int"),
    (lambda: tr.nn.Conv1d(4, 6, 3)(tr.zeros(2, 3, 9)), RuntimeError, "to have 4 channels, but got 3"),
    (lambda: tr.nn.Conv1d(4, 6, 3)(tr.zeros(9)), RuntimeError, r"2-D \(C, L\) or 3-D \(N, C, L\) input"),
    (lambda: tr.nn.Conv1d(4, 6, 5)(tr.zeros(4, 3)), RuntimeError, "Kernel size can't be greater"),
    (lambda: tr.nn.Conv1d(4, 6, 3)(tr.zeros(4, 9, dtype=tr.float64)), RuntimeError, "does not match weight dtype"),
    (lambda: tr.nn.functional.conv1d(tr.zeros(1, 4, 9), tr.zeros(6, 4, 3), tr.zeros(5)), RuntimeError,
     "expected bias to be 1-dimensional with 6 elements"),
    (lambda: tr.nn.functional.conv1d(tr.zeros(1, 4, 9), tr.zeros(6, 4, 3), stride=0), RuntimeError,
     "stride must be greater than zero"),
    (lambda: tr.nn.functional.conv2d(tr.zeros(1, 4, 9, 9), tr.zeros(6, 4, 3, 3), dilation=(1, 1, 1)), RuntimeError,
     "dilation must be an int or a tuple of 2 ints"),
    (lambda: tr.nn.functional.max_pool1d(tr.zeros(1, 2, 9), 3, padding=2), RuntimeError,
     "pad should be at most half of kernel size"),
    (lambda: tr.nn.functional.max_pool2d(tr.zeros(1, 2, 4, 4), 5), RuntimeError, "Output size is too small"),
    (lambda: tr.nn.functional.avg_pool2d(tr.zeros(1, 2, 4, 4), 2, divisor_override=0), RuntimeError,
     "divisor must be not zero"),
    (lambda: tr.nn.functional.avg_pool1d(tr.zeros(1, 2, 4), 0), RuntimeError, "kernel_size must be greater than zero"),
    (lambda: tr.nn.functional.adaptive_avg_pool2d(tr.zeros(1, 2, 4, 4), (2, -1)), RuntimeError,
     "output_size must be non-negative"),
    (lambda: tr.nn.functional.adaptive_max_pool1d(tr.zeros(4), 2), RuntimeError, "2-D"),
    (lambda: tr.nn.MaxPool2d(3, ceil_mode=1), TypeError, "ceil_mode should be of type bool"),
    (lambda: tr.nn.functional.max_pool1d(tr.zeros(1, 2, 9, dtype=tr.int64), 3), TypeError, "floating point"),
    (lambda: tr.nn.functional.conv1d([[0.0]], tr.zeros(6, 4, 3)), TypeError, "argument 'input' must be a Tensor"),
])
def test_bad_arguments_are_named(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ----------------------------------------------------------------------------- gradcheck

def _leaf(rng, shape, device="cpu"):
    return tr.tensor(rng.standard_normal(shape), dtype=tr.float64, device=device, requires_grad=True)


GRADCHECKED = [
    ("conv1d", lambda x, w, b: tr.nn.functional.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2),
     [(2, 4, 9), (4, 2, 3), (4,)]),
    ("conv2d", lambda x, w, b: tr.nn.functional.conv2d(x, w, b, padding="same", groups=2),
     [(1, 4, 5, 4), (2, 2, 2, 3), (2,)]),
    ("max_pool2d", lambda x: tr.nn.functional.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True), [(2, 2, 5, 6)]),
    ("max_pool1d", lambda x: tr.nn.functional.max_pool1d(x, 2, dilation=2), [(2, 7)]),
    ("avg_pool2d", lambda x: tr.nn.functional.avg_pool2d(x, 2, padding=1, ceil_mode=True, count_include_pad=False),
     [(1, 2, 5, 4)]),
    ("adaptive_avg_pool2d", lambda x: tr.nn.functional.adaptive_avg_pool2d(x, (3, 2)), [(1, 2, 5, 5)]),
    ("adaptive_max_pool1d", lambda x: tr.nn.functional.adaptive_max_pool1d(x, 4), [(2, 3, 7)]),
]


@pytest.mark.parametrize("name, fn, shapes", GRADCHECKED, ids=[case[0] for case in GRADCHECKED])
def test_gradcheck_and_gradgradcheck(device, rng, name, fn, shapes):
    inputs = [_leaf(rng, shape, device) for shape in shapes]
    assert tr.gradcheck(fn, *inputs)
    assert tr.gradgradcheck(fn, *inputs)


def test_forward_mode_matches_torch_func_jvp(torch, rng):
    x, tangent, weight = (rng.standard_normal(shape) for shape in ((2, 3, 6, 5), (2, 3, 6, 5), (4, 3, 3, 2)))

    def model(lib, weight):
        functional = lib.nn.functional
        return lambda x: functional.max_pool2d(functional.conv2d(x, weight, padding=1, stride=(1, 2)), 2,
                                               ceil_mode=True)

    _, ours = tr.func.jvp(model(tr, tr.tensor(weight)), (tr.tensor(x),), (tr.tensor(tangent),))
    _, theirs = torch.func.jvp(model(torch, torch.tensor(weight)), (torch.tensor(x),), (torch.tensor(tangent),))
    assert np.abs(theirs.numpy()).max() > 0.1
    assert_values(ours, theirs, "tangent")
