"""Transposed convolutions, Unfold and Fold against torch: values and gradients in float64 across strides,
paddings, output_padding, dilation, groups, bias and unbatched inputs; the modules' parameters, initial
weights, reprs and output_size; bad arguments raising torch's error types; gradcheck / gradgradcheck and
forward mode."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.nn.parity import (
    GRADIENTS,
    assert_same_gradients,
    assert_values,
    backward_both,
    copy_torch_weights,
    pair,
)


def check_function(torch, device, rng, name, shapes, kwargs):
    """F.<name> of leaves of these shapes on both sides: the output and every leaf's gradient."""
    pairs = [pair(torch, rng.standard_normal(shape), device) for shape in shapes]
    ours = getattr(tr.nn.functional, name)(*[p[0] for p in pairs], **kwargs)
    theirs = getattr(torch.nn.functional, name)(*[p[1] for p in pairs], **kwargs)
    assert_values(ours, theirs, name)
    backward_both(torch, ours, theirs, rng)
    for k, (mine, their) in enumerate(pairs):
        assert_values(mine.grad, their.grad, f"{name}: gradient of argument {k}", GRADIENTS)


# ----------------------------------------------------------------------------- transposed convolutions

CONV_TRANSPOSE = [   # (input, weight (C_in, C_out / groups, *kernel), keyword arguments)
    ("conv_transpose1d", (2, 4, 7), (4, 3, 3), {}),
    ("conv_transpose1d", (2, 4, 7), (4, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
    ("conv_transpose1d", (2, 4, 6), (4, 2, 4), {"stride": 3, "dilation": 2, "groups": 2, "padding": 2}),
    ("conv_transpose1d", (2, 4, 5), (4, 3, 3), {"dilation": 3, "output_padding": 2}),   # output_padding >= stride
    ("conv_transpose1d", (4, 5), (4, 1, 2), {"stride": 2, "groups": 4}),                # unbatched, depthwise
    ("conv_transpose1d", (0, 4, 5), (4, 3, 3), {"stride": 2}),                           # an empty batch
    ("conv_transpose2d", (2, 4, 5, 4), (4, 3, 3, 3), {}),
    ("conv_transpose2d", (2, 4, 5, 4), (4, 3, 3, 2), {"stride": (2, 3), "padding": (1, 0), "output_padding": (1, 2)}),
    ("conv_transpose2d", (2, 6, 4, 5), (6, 2, 2, 3), {"stride": 2, "dilation": (2, 1), "groups": 3, "padding": 1}),
    ("conv_transpose2d", (4, 3, 4), (4, 2, 3, 3), {"stride": 2, "padding": 2, "output_padding": 1}),   # unbatched
    ("conv_transpose2d", (1, 2, 3, 3), (2, 2, 1, 1), {"stride": 3}),                       # kernel smaller than stride
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name, input_shape, weight_shape, kwargs", CONV_TRANSPOSE)
def test_conv_transpose_functions_match_torch(torch, device, rng, name, input_shape, weight_shape, kwargs, bias):
    groups = kwargs.get("groups", 1)
    shapes = [input_shape, weight_shape] + ([(weight_shape[1] * groups,)] if bias else [])
    check_function(torch, device, rng, name, shapes, kwargs)


CONV_TRANSPOSE_MODULES = [   # (layer, arguments, keyword arguments, input, forward's output_size)
    ("ConvTranspose1d", (4, 6, 3), {}, (2, 4, 7), None),
    ("ConvTranspose1d", (4, 6, 3), {"stride": 3, "padding": 1, "groups": 2, "bias": False}, (4, 7), [20]),
    ("ConvTranspose1d", (4, 2, 3), {"stride": 2, "output_padding": 1, "dilation": 2}, (2, 4, 5), (2, 2, 14)),
    ("ConvTranspose2d", (4, 6, (3, 2)), {"stride": 2, "padding": (1, 0), "output_padding": (1, 0)}, (2, 4, 4, 3), None),
    ("ConvTranspose2d", (4, 4, 3), {"stride": (2, 3), "groups": 4, "dilation": 2}, (4, 3, 3), (4, 9, 13)),
]


@pytest.mark.parametrize("layer, args, kwargs, input_shape, output_size", CONV_TRANSPOSE_MODULES)
def test_conv_transpose_modules_match_torch(torch, device, rng, layer, args, kwargs, input_shape, output_size):
    theirs = getattr(torch.nn, layer)(*args, **kwargs, dtype=torch.float64)
    ours = getattr(tr.nn, layer)(*args, **kwargs, dtype=tr.float64, device=device)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_torch_weights(ours, theirs)
    x, their_x = pair(torch, rng.standard_normal(input_shape), device)
    y, their_y = ours(x, output_size=output_size), theirs(their_x, output_size=output_size)
    assert_values(y, their_y, layer)
    backward_both(torch, y, their_y, rng)
    assert_values(x.grad, their_x.grad, "gradient of input", GRADIENTS)
    assert_same_gradients(ours, theirs)
    for name in ("kernel_size", "stride", "padding", "dilation", "groups", "padding_mode", "output_padding",
                 "transposed", "in_channels", "out_channels"):
        assert getattr(ours, name) == getattr(theirs, name), name


@pytest.mark.parametrize("layer, args, kwargs", [
    ("ConvTranspose1d", (3, 5, 4), {}), ("ConvTranspose1d", (4, 6, 3), {"groups": 2, "bias": False}),
    ("ConvTranspose2d", (4, 6, (3, 2)), {"groups": 2}), ("ConvTranspose2d", (8, 3, 3), {"stride": 2})])
def test_a_seeded_conv_transpose_starts_from_torchs_weights(torch, layer, args, kwargs):
    """kaiming_uniform(a=sqrt(5)) and the bias bound from fan_in = weight dim 1 * kernel, as torch's."""
    tr.manual_seed(3), torch.manual_seed(3)
    ours = getattr(tr.nn, layer)(*args, **kwargs)
    theirs = getattr(torch.nn, layer)(*args, **kwargs, dtype=torch.float32)
    want, got = theirs.state_dict(), ours.state_dict()
    assert list(got) == list(want)
    for key in want:
        assert got[key].shape == tuple(want[key].shape)
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy(), err_msg=key)


def test_conv_transpose_is_the_gradient_of_conv(rng):
    """<conv(x, w), y> == <x, conv_transpose(y, w)>: the adjoint, with padding, stride and groups."""
    F = tr.nn.functional
    x, w, y = (tr.tensor(rng.standard_normal(s)) for s in ((2, 4, 7, 6), (6, 2, 3, 2), (2, 6, 4, 4)))
    options = {"stride": 2, "padding": 1, "groups": 2}
    left = (F.conv2d(x, w, **options) * y).sum()
    right = (x * F.conv_transpose2d(y, w, **options)).sum()
    np.testing.assert_allclose(left.item(), right.item(), rtol=1e-12)


# ----------------------------------------------------------------------------- unfold and fold

UNFOLD = [
    ((2, 3, 5, 6), {"kernel_size": 2}),
    ((2, 3, 5, 6), {"kernel_size": (2, 3), "stride": (2, 1), "padding": 1, "dilation": (1, 2)}),
    ((3, 6, 5), {"kernel_size": 3, "stride": 2, "padding": (0, 1)}),   # unbatched
    ((1, 2, 4, 4), {"kernel_size": 1}),
]

FOLD = [   # overlapping blocks add up
    ((2, 12, 20), {"output_size": (5, 6), "kernel_size": 2}),
    ((2, 18, 12), {"output_size": (5, 6), "kernel_size": (2, 3), "stride": (2, 1), "padding": 1, "dilation": (1, 2)}),
    ((18, 6), {"output_size": 5, "kernel_size": 3, "stride": 2, "padding": (0, 1)}),   # unbatched
    ((1, 4, 9), {"output_size": (6, 6), "kernel_size": 2, "stride": 2}),                 # blocks that do not meet
    ((0, 4, 9), {"output_size": 6, "kernel_size": 2, "stride": 2}),                      # an empty batch
]


@pytest.mark.parametrize("name, input_shape, kwargs",
                         [("unfold", *case) for case in UNFOLD] + [("fold", *case) for case in FOLD])
def test_fold_and_unfold_functions_match_torch(torch, device, rng, name, input_shape, kwargs):
    check_function(torch, device, rng, name, [input_shape], kwargs)


@pytest.mark.parametrize("layer, kwargs, input_shape", [
    ("Unfold", {"kernel_size": (2, 3), "padding": 1, "stride": 2}, (2, 3, 5, 6)),
    ("Fold", {"output_size": (4, 5), "kernel_size": 2, "dilation": (1, 2)}, (2, 8, 9)),
])
def test_fold_and_unfold_modules_match_torch(torch, rng, layer, kwargs, input_shape):
    ours, theirs = getattr(tr.nn, layer)(**kwargs), getattr(torch.nn, layer)(**kwargs)
    assert repr(ours) == repr(theirs)
    x, their_x = pair(torch, rng.standard_normal(input_shape), "cpu")
    assert_values(ours(x), theirs(their_x), layer)


def test_fold_undoes_unfold_up_to_how_often_each_element_is_covered(rng):
    F = tr.nn.functional
    x = tr.tensor(rng.standard_normal((1, 2, 5, 5)))
    options = {"kernel_size": 3, "padding": 1, "stride": 1}
    counts = F.fold(F.unfold(tr.ones(1, 2, 5, 5, dtype=tr.float64), **options), (5, 5), **options)
    np.testing.assert_allclose((F.fold(F.unfold(x, **options), (5, 5), **options) / counts).numpy(), x.numpy(),
                               rtol=1e-14)


# ----------------------------------------------------------------------------- bad arguments

F = tr.nn.functional


@pytest.mark.parametrize("make, error, match", [
    (lambda: F.conv_transpose1d(tr.zeros(1, 4, 5), tr.zeros(4, 3, 3), stride=2, output_padding=2), RuntimeError,
     "output padding must be smaller than either stride or dilation"),
    (lambda: F.conv_transpose2d(tr.zeros(1, 4, 5, 5), tr.zeros(4, 3, 3, 3), stride=(2, 3), output_padding=(1, 3)),
     RuntimeError, "output padding must be smaller"),
    (lambda: F.conv_transpose1d(tr.zeros(1, 4, 5), tr.zeros(4, 3, 3), output_padding=-1), RuntimeError,
     "output_padding must be non-negative"),
    (lambda: F.conv_transpose1d(tr.zeros(1, 4, 5), tr.zeros(4, 3, 3), padding="same"), TypeError, "padding"),
    (lambda: F.conv_transpose1d(tr.zeros(1, 4, 5), tr.zeros(4, 3, 3), output_padding=1.0), TypeError,
     "output_padding"),
    (lambda: F.conv_transpose1d(tr.zeros(1, 4, 5), tr.zeros(4, 3, 3), stride=0), RuntimeError, "stride"),
    (lambda: F.conv_transpose1d(tr.zeros(1, 4, 5), tr.zeros(4, 3, 3), groups=0), RuntimeError, "non-positive groups"),
    (lambda: F.conv_transpose1d(tr.zeros(1, 4, 5), tr.zeros(4, 3, 3), groups=3), RuntimeError,
     "expected weight to be divisible by 3"),
    (lambda: F.conv_transpose1d(tr.zeros(1, 5, 5), tr.zeros(4, 3, 3)), RuntimeError, "to have 4 channels, but got 5"),
    (lambda: F.conv_transpose1d(tr.zeros(1, 4, 5), tr.zeros(4, 3, 3), tr.zeros(4)), RuntimeError,
     "expected bias to be 1-dimensional with 3 elements"),
    (lambda: F.conv_transpose1d(tr.zeros(1, 4, 2), tr.zeros(4, 3, 3), padding=2), RuntimeError,
     "Output size is too small"),
    (lambda: F.conv_transpose1d(tr.zeros(7), tr.zeros(4, 3, 3)), RuntimeError, "input"),
    (lambda: tr.nn.ConvTranspose1d(4, 3, 3, padding_mode="reflect"), ValueError, 'Only "zeros" padding mode'),
    (lambda: tr.nn.ConvTranspose1d(4, 3, 3, groups=2), ValueError, "out_channels must be divisible by groups"),
    (lambda: tr.nn.ConvTranspose1d(4, 3, 3, stride=3)(tr.zeros(2, 4, 7), output_size=[24]), ValueError,
     r"valid sizes range from \[21\] to \[23\]"),
    (lambda: tr.nn.ConvTranspose1d(4, 3, 3)(tr.zeros(2, 4, 7), output_size=[2, 9]), ValueError,
     "output_size must have 1 or 3 elements"),
    (lambda: F.unfold(tr.zeros(1, 2, 3, 4, 5), 2), RuntimeError, "4-D"),
    (lambda: F.unfold(tr.zeros(1, 2, 4, 4), 5), RuntimeError, "components must be at least one"),
    (lambda: F.unfold(tr.zeros(1, 2, 4, 4), 2, stride=0), RuntimeError, "stride"),
    (lambda: F.unfold(tr.zeros(1, 2, 4, 4), (2, 2, 2)), RuntimeError, "kernel_size"),
    (lambda: F.unfold(tr.zeros(1, 2, 4, 4), 2.0), TypeError, "kernel_size"),
    (lambda: F.fold(tr.zeros(1, 12, 19), (5, 6), 2), RuntimeError, "number of sliding blocks 4 \\* 5 = 20"),
    (lambda: F.fold(tr.zeros(1, 13, 20), (5, 6), 2), RuntimeError, "divisible by the product of kernel_size"),
    (lambda: F.fold(tr.zeros(1, 1, 12, 20), (5, 6), 2), RuntimeError, "2D or 3D"),
    (lambda: F.fold(tr.zeros(1, 12, 20), (5, 6), 2, padding=-1), RuntimeError, "padding"),
])
def test_bad_arguments_raise_torchs_error_types(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ----------------------------------------------------------------------------- gradcheck

def _leaf(rng, shape):
    return tr.tensor(rng.standard_normal(shape), dtype=tr.float64, requires_grad=True)


GRADCHECKED = [
    ("conv_transpose1d", lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1, groups=2,
                                                            dilation=2), [(1, 2, 3), (2, 1, 2), (2,)]),
    ("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=(2, 1), padding=(0, 1)),
     [(1, 2, 2, 3), (2, 1, 2, 2), (1,)]),
    ("unfold", lambda x: F.unfold(x, 2, padding=1, stride=(1, 2)), [(1, 2, 3, 3)]),
    ("fold", lambda x: F.fold(x, (3, 3), 2, padding=(0, 1)), [(1, 8, 8)]),
]


@pytest.mark.parametrize("name, fn, shapes", GRADCHECKED, ids=[case[0] for case in GRADCHECKED])
def test_gradcheck_and_gradgradcheck(rng, name, fn, shapes):
    inputs = [_leaf(rng, shape) for shape in shapes]
    assert tr.gradcheck(fn, *inputs)
    assert tr.gradgradcheck(fn, *inputs)


def test_forward_mode_matches_torch_func_jvp(torch, rng):
    x, tangent, weight = (rng.standard_normal(shape) for shape in ((2, 4, 3, 3), (2, 4, 3, 3), (4, 2, 2, 2)))

    def model(lib, weight):
        functional = lib.nn.functional
        return lambda x: functional.unfold(functional.conv_transpose2d(x, weight, stride=2, output_padding=1), 2)

    _, ours = tr.func.jvp(model(tr, tr.tensor(weight)), (tr.tensor(x),), (tr.tensor(tangent),))
    _, theirs = torch.func.jvp(model(torch, torch.tensor(weight)), (torch.tensor(x),), (torch.tensor(tangent),))
    assert_values(ours, theirs, "jvp")
