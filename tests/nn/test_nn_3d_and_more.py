"""3-D layers, the Lazy layers, MaxUnpool, LPPool, LocalResponseNorm, ChannelShuffle, pdist,
gumbel_softmax and the conv / linear + batch-norm fusions against torch: values and gradients in float64,
torch's weights after the same seed, state_dicts, reprs, torch's error types, and a gradgradcheck of a
3-D convolution."""
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
    pair,
)

F = tr.nn.functional
pytestmark = [pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel"),   # torch's, about its speed
              pytest.mark.filterwarnings("ignore:input's size at dim=1 does not match num_features")]


def check_function(torch, device, rng, name, shapes, args=(), kwargs=None, values=None):
    """F.<name>(*tensors, *args, **kwargs) on both sides: output (and indices) and every input's gradient."""
    kwargs = kwargs or {}
    pairs = [pair(torch, rng.standard_normal(shape) if values is None else values, device) for shape in shapes]
    ours = getattr(F, name)(*[p[0] for p in pairs], *args, **kwargs)
    theirs = getattr(torch.nn.functional, name)(*[p[1] for p in pairs], *args, **kwargs)
    if isinstance(theirs, tuple):
        (ours, our_indices), (theirs, their_indices) = ours, theirs
        np.testing.assert_array_equal(to_np(our_indices), their_indices.numpy())
    assert_values(ours, theirs, name)
    backward_both(torch, ours, theirs, rng)
    for k, (mine, their) in enumerate(pairs):
        assert_values(mine.grad, their.grad, f"{name}: gradient of argument {k}", GRADIENTS)


# ----------------------------------------------------------------------------- 3-D functions

FUNCTIONS_3D = [
    ("conv3d", [(2, 4, 4, 5, 3), (6, 2, 2, 3, 2), (6,)], {"stride": (1, 2, 1), "padding": 1, "groups": 2}),
    ("conv3d", [(3, 4, 5, 4), (2, 3, 2, 2, 3)], {"padding": "same", "dilation": (2, 1, 1)}),
    ("conv_transpose3d", [(2, 4, 3, 2, 3), (4, 3, 2, 2, 3), (6,)],
     {"stride": 2, "padding": (1, 0, 1), "output_padding": (1, 0, 0), "groups": 2}),
    ("conv_transpose3d", [(2, 3, 2, 3), (2, 2, 2, 1, 2)], {"dilation": (1, 2, 1)}),
    ("max_pool3d", [(2, 3, 5, 4, 6)], {"kernel_size": 2, "stride": (1, 2, 1), "padding": 1, "return_indices": True}),
    ("max_pool3d", [(3, 5, 4, 5)], {"kernel_size": (3, 2, 2), "dilation": (1, 2, 1), "ceil_mode": True}),
    ("avg_pool3d", [(2, 3, 5, 4, 6)], {"kernel_size": (2, 3, 2), "stride": 2, "padding": 1, "ceil_mode": True,
                                       "count_include_pad": False}),
    ("avg_pool3d", [(2, 2, 4, 4, 5)], {"kernel_size": 2, "padding": 1, "divisor_override": 3}),
    ("adaptive_avg_pool3d", [(2, 3, 5, 4, 6)], {"output_size": (3, None, 4)}),
    ("adaptive_max_pool3d", [(2, 3, 5, 4, 6)], {"output_size": (2, 3, 4), "return_indices": True}),
    ("max_pool1d_with_indices", [(2, 3, 7)], {"kernel_size": 3, "stride": 2}),
    ("max_pool2d_with_indices", [(2, 3, 5, 6)], {"kernel_size": 2, "padding": 1}),
    ("max_pool3d_with_indices", [(2, 2, 4, 5, 4)], {"kernel_size": (2, 3, 2)}),
    ("adaptive_max_pool1d_with_indices", [(2, 3, 7)], {"output_size": 3}),
    ("adaptive_max_pool2d_with_indices", [(2, 3, 5, 7)], {"output_size": (2, 3)}),
    ("adaptive_max_pool3d_with_indices", [(3, 5, 4, 7)], {"output_size": 2}),
] + [("pad", [(2, 3, 4, 3, 5)], {"pad": (1, 2, 0, 1, 2, 1), "mode": mode})
     for mode in ("constant", "reflect", "replicate", "circular")]


@pytest.mark.parametrize("name, shapes, kwargs", FUNCTIONS_3D, ids=[case[0] for case in FUNCTIONS_3D])
def test_3d_functions_match_torch(torch, device, rng, name, shapes, kwargs):
    check_function(torch, device, rng, name, shapes, kwargs=kwargs)


def check_module(torch, device, rng, layer, args, kwargs, input_shape, train=True):
    """The module on both sides from torch's weights: repr, output, input and parameter gradients, buffers."""
    theirs = getattr(torch.nn, layer)(*args, **kwargs, dtype=torch.float64)
    ours = getattr(tr.nn, layer)(*args, **kwargs, dtype=tr.float64, device=device)
    assert repr(ours) == repr(theirs)
    copy_torch_weights(ours, theirs)
    ours.train(train), theirs.train(train)
    x, their_x = pair(torch, rng.standard_normal(input_shape), device)
    y, their_y = ours(x), theirs(their_x)
    assert_values(y, their_y, layer)
    backward_both(torch, y, their_y, rng)
    assert_values(x.grad, their_x.grad, "gradient of input", GRADIENTS)
    assert_same_gradients(ours, theirs)
    for name, buffer in theirs.named_buffers():
        np.testing.assert_allclose(to_np(dict(ours.named_buffers())[name]), buffer.numpy(), rtol=1e-13)


MODULES_3D = [
    ("Conv3d", (4, 6, (2, 3, 2)), {"padding": (1, 2, 0), "padding_mode": "reflect", "groups": 2}, (2, 4, 4, 5, 3)),
    ("Conv3d", (3, 2, 2), {"padding": "same", "padding_mode": "circular", "bias": False}, (3, 4, 3, 4)),
    ("ConvTranspose3d", (4, 6, 2), {"stride": (2, 1, 2), "output_padding": (1, 0, 0), "groups": 2}, (2, 4, 2, 3, 2)),
    ("BatchNorm3d", (3,), {}, (2, 3, 3, 2, 4)),
    ("BatchNorm3d", (3,), {"momentum": None, "affine": False}, (2, 3, 3, 2, 4)),
    ("InstanceNorm3d", (3,), {"affine": True, "track_running_stats": True}, (2, 3, 3, 2, 4)),
    ("InstanceNorm3d", (3,), {}, (3, 3, 2, 4)),
    ("MaxPool3d", (2,), {"stride": 1, "padding": 1}, (2, 3, 3, 4, 3)),
    ("AvgPool3d", ((2, 1, 2),), {"divisor_override": 3}, (3, 4, 3, 4)),
    ("AdaptiveAvgPool3d", ((2, None, 3),), {}, (2, 3, 3, 4, 5)),
    ("AdaptiveMaxPool3d", (2,), {}, (2, 3, 3, 4, 5)),
    ("ReflectionPad3d", ((1, 2, 0, 1, 2, 1),), {}, (2, 3, 3, 4, 5)),
    ("ReplicationPad3d", (2,), {}, (3, 3, 4, 5)),
    ("CircularPad3d", ((1, 2, 0, 1, 2, 1),), {}, (2, 3, 3, 4, 5)),
    ("ZeroPad3d", (1,), {}, (2, 3, 3, 4, 5)),
    ("ConstantPad3d", ((1, 0, 2, 1, 0, 1), 2.5), {}, (3, 3, 4, 5)),
]


@pytest.mark.parametrize("layer, args, kwargs, input_shape", MODULES_3D, ids=[case[0] for case in MODULES_3D])
def test_3d_modules_match_torch(torch, device, rng, layer, args, kwargs, input_shape):
    if layer.endswith(("Pool3d", "Pad3d")):   # no parameters, no dtype
        theirs, ours = getattr(torch.nn, layer)(*args, **kwargs), getattr(tr.nn, layer)(*args, **kwargs)
        assert repr(ours) == repr(theirs)
        x, their_x = pair(torch, rng.standard_normal(input_shape), device)
        y, their_y = ours(x), theirs(their_x)
        assert_values(y, their_y, layer)
        backward_both(torch, y, their_y, rng)
        assert_values(x.grad, their_x.grad, "gradient of input", GRADIENTS)
        return
    for train in (True, False):
        check_module(torch, device, rng, layer, args, kwargs, input_shape, train)


@pytest.mark.parametrize("layer, args, kwargs", [
    ("Conv3d", (4, 6, (3, 2, 2)), {"groups": 2}), ("ConvTranspose3d", (4, 6, 2), {"bias": True}),
    ("BatchNorm3d", (5,), {}), ("InstanceNorm3d", (5,), {"affine": True})])
def test_a_seeded_3d_layer_starts_from_torchs_weights(torch, layer, args, kwargs):
    tr.manual_seed(3), torch.manual_seed(3)
    ours, theirs = getattr(tr.nn, layer)(*args, **kwargs), getattr(torch.nn, layer)(*args, **kwargs,
                                                                                    dtype=torch.float32)
    want, got = theirs.state_dict(), ours.state_dict()
    assert list(got) == list(want)
    for key in want:
        np.testing.assert_array_equal(to_np(got[key]), want[key].numpy(), err_msg=key)
    np.testing.assert_array_equal(tr.rand(3).numpy(), torch.rand(3, dtype=torch.float32).numpy())


def test_dropout3d_draws_torchs_channel_mask(torch, rng):
    x = rng.standard_normal((3, 5, 2, 2, 3))
    for data in (x, x[0]):   # batched and unbatched
        ours, theirs = tr.nn.Dropout3d(0.4), torch.nn.Dropout3d(0.4)
        assert repr(ours) == repr(theirs)
        tr.manual_seed(9), torch.manual_seed(9)
        assert_values(ours(tr.tensor(data)), theirs(torch.tensor(data)), "Dropout3d")
    with pytest.warns(UserWarning, match="Received a 3-D input to dropout3d"):
        F.dropout3d(tr.ones(2, 3, 4), 0.5)


def test_gradgradcheck_of_a_3d_convolution(rng):
    inputs = [tr.tensor(rng.standard_normal(shape), dtype=tr.float64, requires_grad=True)
              for shape in ((1, 2, 3, 2, 3), (2, 1, 2, 1, 2), (2,))]

    def conv(x, w, b):
        return F.conv3d(x, w, b, stride=(1, 1, 2), padding=(1, 0, 1), groups=2)
    assert tr.gradcheck(conv, *inputs)
    assert tr.gradgradcheck(conv, *inputs)


# ----------------------------------------------------------------------------- lazy layers

LAZY = [
    ("LazyConv1d", (4, 3), {"stride": 2}, (2, 3, 7)),
    ("LazyConv2d", (4, 3), {"groups": 2, "bias": False}, (2, 6, 5, 5)),
    ("LazyConv3d", (2, 2), {"padding": 1}, (3, 3, 3, 4)),
    ("LazyConvTranspose1d", (4, 3), {"stride": 2}, (2, 3, 5)),
    ("LazyConvTranspose2d", (4, 2), {"groups": 2}, (6, 3, 3)),
    ("LazyConvTranspose3d", (2, 2), {"output_padding": 1, "stride": 2}, (2, 3, 2, 2, 3)),
    ("LazyBatchNorm1d", (), {}, (4, 3, 5)),
    ("LazyBatchNorm2d", (), {"affine": False}, (2, 3, 4, 5)),
    ("LazyBatchNorm3d", (), {"momentum": None}, (2, 3, 2, 2, 3)),
    ("LazyInstanceNorm1d", (), {}, (2, 3, 5)),
    ("LazyInstanceNorm2d", (), {"affine": False, "track_running_stats": False}, (2, 3, 4, 5)),
    ("LazyInstanceNorm3d", (), {"bias": False}, (2, 3, 2, 2, 3)),
]


@pytest.mark.parametrize("layer, args, kwargs, input_shape", LAZY, ids=[case[0] for case in LAZY])
def test_lazy_layers_become_torchs_layers_with_torchs_weights(torch, rng, layer, args, kwargs, input_shape):
    tr.manual_seed(4), torch.manual_seed(4)
    ours = getattr(tr.nn, layer)(*args, **kwargs, dtype=tr.float64)
    theirs = getattr(torch.nn, layer)(*args, **kwargs, dtype=torch.float64)
    assert repr(ours) == repr(theirs) and ours.has_uninitialized_params()
    x = rng.standard_normal(input_shape)
    their_x = torch.tensor(x, requires_grad=True)
    mine = tr.tensor(x, requires_grad=True)
    y, their_y = ours(mine), theirs(their_x)
    assert type(ours).__name__ == type(theirs).__name__ == layer[4:]
    assert repr(ours) == repr(theirs)
    want, got = theirs.state_dict(), ours.state_dict()
    assert list(got) == list(want)
    for key in want:
        np.testing.assert_allclose(to_np(got[key]), want[key].numpy(), rtol=1e-13, err_msg=key)
    assert_values(y, their_y, layer)
    backward_both(torch, y, their_y, rng)
    assert_values(mine.grad, their_x.grad, "gradient of input", GRADIENTS)
    assert_same_gradients(ours, theirs)
    np.testing.assert_array_equal(tr.rand(3).numpy(), torch.rand(3, dtype=torch.float32).numpy())


def test_lazy_conv_checks_its_first_input():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        tr.nn.LazyConv2d(4, 3, groups=2)(tr.ones(1, 3, 5, 5))
    with pytest.raises(RuntimeError, match="Expected 3D .unbatched. or 4D .batched. input"):
        tr.nn.LazyConv2d(4, 3)(tr.ones(3, 5))
    with pytest.raises(ValueError, match="Only \"zeros\" padding mode"):
        tr.nn.LazyConvTranspose1d(4, 3, padding_mode="reflect")


# ----------------------------------------------------------------------------- unpooling, LP pooling

@pytest.mark.parametrize("dims, input_shape, kwargs, output_size", [
    (1, (2, 3, 7), {"kernel_size": 2}, (2, 3, 7)),
    (2, (2, 3, 5, 6), {"kernel_size": 2, "stride": 1, "padding": 1}, None),
    (2, (3, 5, 7), {"kernel_size": (2, 3), "stride": 2}, (5, 7)),
    (3, (2, 2, 4, 5, 4), {"kernel_size": 2}, (2, 2, 4, 5, 4)),
])
def test_max_unpool_inverts_max_pool_as_torchs(torch, device, rng, dims, input_shape, kwargs, output_size):
    x = rng.standard_normal(input_shape)
    pooled, indices = getattr(torch.nn.functional, f"max_pool{dims}d")(torch.tensor(x), **kwargs, return_indices=True)
    mine, theirs = pair(torch, pooled.numpy(), device)
    our_indices = tr.tensor(indices.numpy(), device=device)
    y = getattr(tr.nn, f"MaxUnpool{dims}d")(**kwargs)(mine, our_indices, output_size)
    module = getattr(torch.nn, f"MaxUnpool{dims}d")(**kwargs)
    their_y = module(theirs, indices, output_size)
    assert repr(getattr(tr.nn, f"MaxUnpool{dims}d")(**kwargs)) == repr(module)
    assert_values(y, their_y, "max_unpool")
    backward_both(torch, y, their_y, rng)
    assert_values(mine.grad, theirs.grad, "gradient of max_unpool", GRADIENTS)


def test_max_unpool_refuses_what_torch_refuses():
    x, indices = tr.ones(1, 1, 2), tr.tensor([[[0, 5]]])
    with pytest.raises(ValueError, match="invalid output_size"):
        F.max_unpool1d(x, tr.tensor([[[0, 1]]]), 2, output_size=(9,))
    with pytest.raises(RuntimeError, match="invalid max index"):
        F.max_unpool1d(x, indices, 2)


@pytest.mark.parametrize("dims, norm_type, input_shape, kwargs", [
    (1, 2, (2, 3, 7), {"kernel_size": 3, "stride": 2}),
    (1, 3, (3, 7), {"kernel_size": 2, "ceil_mode": True}),   # an odd p: negative sums kept
    (2, 1.5, (2, 3, 5, 6), {"kernel_size": (2, 3)}),
    (2, float("inf"), (2, 3, 5, 6), {"kernel_size": 2, "stride": 1}),
    (3, 2, (2, 2, 4, 5, 4), {"kernel_size": 2, "stride": (1, 2, 1)}),
])
def test_lp_pool_matches_torch(torch, device, rng, dims, norm_type, input_shape, kwargs):
    values = rng.standard_normal(input_shape)
    if norm_type == 1.5:
        values = np.abs(values) + 0.1   # a fractional power of a negative number is NaN on both sides
    check_function(torch, device, rng, f"lp_pool{dims}d", [input_shape], (norm_type,), kwargs, values=values)
    ours, theirs = getattr(tr.nn, f"LPPool{dims}d")(norm_type, **kwargs), getattr(torch.nn, f"LPPool{dims}d")(
        norm_type, **kwargs)
    assert repr(ours) == repr(theirs)
    assert_values(ours(tr.tensor(values)), theirs(torch.tensor(values)), "LPPool")


# ----------------------------------------------------------------------------- across channels, distances

@pytest.mark.parametrize("input_shape, args", [((2, 5, 4), (3,)), ((2, 6, 3, 4), (2, 1e-2, 0.5, 2.0)),
                                               ((2, 4, 2, 3, 2), (4, 0.1))])
def test_local_response_norm_matches_torch(torch, device, rng, input_shape, args):
    check_function(torch, device, rng, "local_response_norm", [input_shape], args)
    ours, theirs = tr.nn.LocalResponseNorm(*args), torch.nn.LocalResponseNorm(*args)
    assert repr(ours) == repr(theirs)
    x = rng.standard_normal(input_shape)
    assert_values(ours(tr.tensor(x)), theirs(torch.tensor(x)), "LocalResponseNorm")


def test_channel_shuffle_matches_torch(torch, device, rng):
    check_function(torch, device, rng, "channel_shuffle", [(2, 6, 3, 2)], (3,))
    x = rng.standard_normal((2, 4, 3))
    ours, theirs = tr.nn.ChannelShuffle(2), torch.nn.ChannelShuffle(2)
    assert repr(ours) == repr(theirs)
    assert_values(ours(tr.tensor(x)), theirs(torch.tensor(x)), "ChannelShuffle")
    with pytest.raises(RuntimeError, match="divisible by groups"):
        F.channel_shuffle(tr.ones(1, 3, 2), 2)


@pytest.mark.parametrize("p", [2, 1, 0.5, 3.0, float("inf")])
def test_pdist_matches_torch(torch, device, rng, p):
    check_function(torch, device, rng, "pdist", [(5, 3)], (p,))


def test_pdist_refuses_what_torch_refuses():
    with pytest.raises(RuntimeError, match="2D"):
        F.pdist(tr.ones(2, 3, 4))
    with pytest.raises(RuntimeError, match="non-negative"):
        F.pdist(tr.ones(3, 4), -1)


def test_gumbel_softmax_samples_and_its_straight_through_gradient(rng):
    logits = tr.tensor(np.log([[0.7, 0.2, 0.1]] * 4000), dtype=tr.float64, requires_grad=True)
    tr.manual_seed(0)
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(to_np(soft).sum(axis=-1), 1.0, rtol=1e-12)
    hard = F.gumbel_softmax(logits, hard=True)
    values = to_np(hard)
    assert set(np.unique(values)) == {0.0, 1.0} and (values.sum(axis=-1) == 1).all()
    np.testing.assert_allclose(values.mean(axis=0), [0.7, 0.2, 0.1], atol=0.03)   # the argmax is a sample
    weights = tr.tensor(rng.standard_normal((4000, 3)))
    (hard * weights).sum().backward()
    expected = logits.grad.numpy().copy()
    logits.grad = None
    tr.manual_seed(0)
    F.gumbel_softmax(logits, tau=0.5)   # the same draws as the soft sample's
    again = F.gumbel_softmax(logits)
    (again * weights).sum().backward()   # the soft sample's gradient: what the hard one passes back
    np.testing.assert_allclose(logits.grad.numpy(), expected, rtol=1e-12)


# ----------------------------------------------------------------------------- fusion, skip_init

@pytest.mark.parametrize("conv, transpose", [("Conv2d", False), ("ConvTranspose2d", True), ("Conv1d", False)])
@pytest.mark.parametrize("bias", [True, False])
def test_fuse_conv_bn_eval_matches_torch(torch, rng, conv, transpose, bias):
    dims = int(conv[-2])
    theirs = getattr(torch.nn, conv)(4, 6, 3, bias=bias, dtype=torch.float64)
    their_bn = getattr(torch.nn, f"BatchNorm{dims}d")(6, dtype=torch.float64)
    their_bn.running_mean.copy_(torch.tensor(rng.standard_normal(6)))
    their_bn.running_var.copy_(torch.tensor(rng.uniform(0.5, 2, 6)))
    their_bn.weight.data.copy_(torch.tensor(rng.standard_normal(6)))
    ours = getattr(tr.nn, conv)(4, 6, 3, bias=bias, dtype=tr.float64)
    bn = getattr(tr.nn, f"BatchNorm{dims}d")(6, dtype=tr.float64)
    copy_torch_weights(ours, theirs), copy_torch_weights(bn, their_bn)
    for module in (ours, bn, theirs, their_bn):
        module.eval()
    fused = tr.nn.utils.fuse_conv_bn_eval(ours, bn, transpose)
    their_fused = torch.nn.utils.fuse_conv_bn_eval(theirs, their_bn, transpose)
    for name, value in their_fused.state_dict().items():
        assert_values(fused.state_dict()[name], value, name)
    x = rng.standard_normal((2, 4) + (5,) * dims)
    assert_values(fused(tr.tensor(x)), their_bn(theirs(torch.tensor(x))), "fused")
    assert ours.bias is None if not bias else ours.bias is not fused.bias
    with pytest.raises(AssertionError, match="Fusion only for eval"):
        tr.nn.utils.fuse_conv_bn_eval(ours, bn.train())


def test_fuse_linear_bn_eval_matches_torch(torch, rng):
    theirs, their_bn = torch.nn.Linear(3, 5, dtype=torch.float64), torch.nn.BatchNorm1d(5, dtype=torch.float64)
    their_bn.running_mean.copy_(torch.tensor(rng.standard_normal(5)))
    their_bn.running_var.copy_(torch.tensor(rng.uniform(0.5, 2, 5)))
    ours, bn = tr.nn.Linear(3, 5, dtype=tr.float64), tr.nn.BatchNorm1d(5, dtype=tr.float64)
    copy_torch_weights(ours, theirs), copy_torch_weights(bn, their_bn)
    for module in (ours, bn, theirs, their_bn):
        module.eval()
    fused = tr.nn.utils.fuse_linear_bn_eval(ours, bn)
    their_fused = torch.nn.utils.fuse_linear_bn_eval(theirs, their_bn)
    for name, value in their_fused.state_dict().items():
        assert_values(fused.state_dict()[name], value, name)
    weight, bias = tr.nn.utils.fuse_linear_bn_weights(ours.weight, None, bn.running_mean, bn.running_var, bn.eps,
                                                      bn.weight, bn.bias)
    their_weight, their_bias = torch.nn.utils.fuse_linear_bn_weights(theirs.weight, None, their_bn.running_mean,
                                                                      their_bn.running_var, their_bn.eps,
                                                                      their_bn.weight, their_bn.bias)
    assert isinstance(weight, tr.nn.Parameter) and weight.requires_grad and not bias.requires_grad
    assert_values(weight, their_weight, "weight"), assert_values(bias, their_bias, "bias")
    with pytest.raises(AssertionError, match="bn.num_features"):
        tr.nn.utils.fuse_linear_bn_eval(ours, tr.nn.BatchNorm1d(4).eval())


def test_skip_init_leaves_the_random_stream_as_torchs(torch):
    tr.manual_seed(1), torch.manual_seed(1)
    ours = tr.nn.utils.skip_init(tr.nn.Conv2d, 3, 4, 2)
    theirs = torch.nn.utils.skip_init(torch.nn.Conv2d, 3, 4, 2)
    assert repr(ours) == repr(theirs) and ours.weight.shape == tuple(theirs.weight.shape)
    np.testing.assert_array_equal(tr.rand(3).numpy(), torch.rand(3, dtype=torch.float32).numpy())
    with pytest.raises(RuntimeError, match="'device' arg"):
        tr.nn.utils.skip_init(tr.nn.Flatten)


# ----------------------------------------------------------------------------- affine_grid, grid_sample

@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_matches_torch(torch, device, rng, dims, align_corners):
    size = (2, 3, 4, 5) if dims == 2 else (2, 3, 3, 4, 2)
    check_function(torch, device, rng, "affine_grid", [(2, dims, dims + 1)], (size,),
                   {"align_corners": align_corners})


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_grid_sample_matches_torch(torch, device, rng, dims, align_corners, mode, padding_mode):
    x, their_x = pair(torch, rng.standard_normal((2, 3, 4, 5, 3)[:dims + 2]), device)
    grid, their_grid = pair(torch, rng.uniform(-1.6, 1.6, (2, 3, 4, 2)[:dims + 1] + (dims,)), device)   # some outside
    y = F.grid_sample(x, grid, mode, padding_mode, align_corners)
    their_y = torch.nn.functional.grid_sample(their_x, their_grid, mode, padding_mode, align_corners)
    assert_values(y, their_y, "grid_sample")
    backward_both(torch, y, their_y, rng)
    assert_values(x.grad, their_x.grad, "gradient of input", GRADIENTS)
    if mode == "bilinear":
        assert_values(grid.grad, their_grid.grad, "gradient of grid", GRADIENTS)
    else:   # torch's is zeros; here the grid is not on the graph
        assert grid.grad is None and not their_grid.grad.any()


def test_grid_sample_and_affine_grid_refuse_what_torch_refuses():
    with pytest.raises(ValueError, match="padding_mode"):
        F.grid_sample(tr.ones(1, 1, 2, 2), tr.zeros(1, 1, 1, 2), padding_mode="wrap", align_corners=False)
    with pytest.raises(ValueError, match="Nx2x3"):
        F.affine_grid(tr.ones(1, 3, 4), (1, 1, 2, 2), align_corners=False)
    with pytest.raises(ValueError, match="floating point"):
        F.affine_grid(tr.ones(1, 2, 3, dtype=tr.int64), (1, 1, 2, 2), align_corners=False)
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        F.affine_grid(tr.ones(1, 2, 3), (1, 1, 2, 2))
