"""F.interpolate, the Upsample modules and spectral normalisation against PyTorch in float64: values,
gradients, errors; spectral_norm's seeded u and v, state_dict keys and training steps."""
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.nn.parity import GRADIENTS, assert_values, backward_both

F = tr.nn.functional

# (mode, input rank): each mode on the ranks torch gives it
MODES = [("nearest", 3), ("nearest", 4), ("nearest", 5), ("nearest-exact", 3), ("nearest-exact", 4),
         ("area", 3), ("area", 4), ("area", 5), ("linear", 3), ("bilinear", 4), ("bicubic", 4), ("trilinear", 5)]
SPATIAL = {3: (7,), 4: (5, 6), 5: (4, 5, 6)}
# sizes and scale factors: up and down, integer and fractional. A scale factor that gives n or 2n places
# from n (1.1, or 2.3 from fewer than 4) is left out: there torch's nearest and bicubic backward kernels
# copy while their forward kernels do not, so torch's gradient is not that of its own forward
RESIZES = [{"size": 3}, {"size": 11}, {"scale_factor": 2}, {"scale_factor": 0.5}, {"scale_factor": 2.3},
           {"scale_factor": 0.7}, {"scale_factor": 1.7, "recompute_scale_factor": True}]


def both(torch, mode, rank, resize, align_corners, rng, dtype="float64"):
    x = rng.standard_normal((2, 3) + SPATIAL[rank])
    ours = tr.tensor(x, dtype=dtype, requires_grad=True)
    theirs = torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=True)
    options = dict(resize, mode=mode, align_corners=align_corners)
    return ours, theirs, F.interpolate(ours, **options), torch.nn.functional.interpolate(theirs, **options)


@pytest.mark.parametrize(("mode", "rank"), MODES)
def test_interpolate_values_and_gradients_match_torch(torch, mode, rank):
    rng = np.random.default_rng(rank)
    aligns = (None,) if mode in ("nearest", "nearest-exact", "area") else (False, True)
    for resize in RESIZES:
        for align_corners in aligns:
            ours, theirs, y, ty = both(torch, mode, rank, resize, align_corners, rng)
            what = f"{mode} {resize} align_corners={align_corners}"
            assert_values(y, ty, what)
            backward_both(torch, y, ty, rng)
            assert_values(ours.grad, theirs.grad, f"gradient of {what}", GRADIENTS)


@pytest.mark.parametrize("sizes", [(9, 64), (70, 70)])
def test_nearest_2d_indices_as_torch_picks_them_for_small_and_large_outputs(torch, sizes):
    """torch's 2-D nearest kernels differ for outputs up to 128 places along H and W together (a
    float32 scale, n and 2n copied exactly) and beyond; 1.1 and 7/3 tell them apart."""
    rng = np.random.default_rng(0)
    for mode in ("nearest", "nearest-exact"):
        for factor in (1.1, 7 / 3, 0.3):
            x = rng.standard_normal((1, 2) + sizes)
            assert_values(F.interpolate(tr.tensor(x, dtype="float64"), scale_factor=factor, mode=mode),
                          torch.nn.functional.interpolate(torch.tensor(x), scale_factor=factor, mode=mode),
                          f"{mode} {sizes} x {factor}")


def test_float32_source_positions_are_torchs(torch):
    """In float32 the scale and positions are float32 (torch's opmath): the same picks and weights."""
    rng = np.random.default_rng(1)
    for mode, rank in MODES:
        for resize in ({"size": 13}, {"scale_factor": 7 / 3}, {"scale_factor": 0.3}):
            _, _, y, ty = both(torch, mode, rank, resize, None if mode in ("nearest", "nearest-exact", "area")
                               else False, rng, dtype="float32")
            np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5, err_msg=mode)


def test_gradients_of_gradients(torch):
    x = tr.tensor(np.random.default_rng(2).standard_normal((1, 1, 3, 4)), dtype="float64", requires_grad=True)
    for mode in ("bicubic", "bilinear", "area"):
        assert tr.gradgradcheck(lambda v, mode=mode: F.interpolate(v, size=(5, 3), mode=mode) ** 2, x)


def test_modules_and_deprecated_functions_match_torch(torch):
    x = np.random.default_rng(3).standard_normal((1, 2, 3, 4))
    for name, options in (("Upsample", {"scale_factor": 1.5, "mode": "bilinear"}), ("Upsample", {"size": (5, 2)}),
                          ("UpsamplingNearest2d", {"scale_factor": 2}), ("UpsamplingBilinear2d", {"size": 7})):
        ours, theirs = getattr(tr.nn, name)(**options), getattr(torch.nn, name)(**options)
        assert repr(ours) == repr(theirs)
        assert_values(ours(tr.tensor(x, dtype="float64")), theirs(torch.tensor(x)), name)
    for name in ("upsample", "upsample_nearest", "upsample_bilinear"):
        with pytest.warns(UserWarning, match=f"nn.functional.{name}` is deprecated"):
            y = getattr(F, name)(tr.tensor(x, dtype="float64"), scale_factor=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert_values(y, getattr(torch.nn.functional, name)(torch.tensor(x), scale_factor=2), name)


@pytest.mark.parametrize(("shape", "options", "error"), [
    ((1, 1, 4), {}, ValueError),
    ((1, 1, 4), {"size": 2, "scale_factor": 2}, ValueError),
    ((1, 1, 4), {"size": 2, "align_corners": True}, ValueError),
    ((1, 1, 4), {"size": (2, 3)}, ValueError),
    ((1, 1, 4), {"scale_factor": (2, 3)}, ValueError),
    ((1, 1, 4), {"size": 2, "recompute_scale_factor": True}, ValueError),
    ((1, 1, 4), {"size": 2, "mode": "linear", "antialias": True}, ValueError),
    ((1, 1, 4), {"size": 2, "mode": "bilinear"}, NotImplementedError),
    ((1, 1, 4), {"size": 2, "mode": "bicubic"}, NotImplementedError),
    ((1, 1, 4, 4), {"size": 2, "mode": "linear"}, NotImplementedError),
    ((1, 1, 4), {"size": 2, "mode": "cubic"}, NotImplementedError),
    ((4,), {"size": 2}, NotImplementedError),
    ((1, 1, 4), {"size": 0}, RuntimeError),
    ((1, 1, 4), {"scale_factor": 0.1}, RuntimeError),
    ((1, 1, 0), {"size": 3}, RuntimeError),
    ((1, 0, 4), {"size": 3}, RuntimeError),
    ((1, 1, 4), {"scale_factor": float("inf")}, RuntimeError),
])
def test_bad_arguments_raise_torchs_errors(torch, shape, options, error):
    with pytest.raises(error) as theirs:
        torch.nn.functional.interpolate(torch.zeros(shape), **options)
    with pytest.raises(error) as ours:
        F.interpolate(tr.zeros(shape), **options)
    if error is not RuntimeError or "sizes" in str(theirs.value):
        assert str(ours.value) == str(theirs.value)


# ----------------------------------------------------------------------------- spectral normalisation

HOOK = lambda nn, module, **options: nn.utils.spectral_norm(module, **options)
PARAMETRIZATION = lambda nn, module, **options: nn.utils.parametrizations.spectral_norm(module, **options)
LAYERS = {"linear": (lambda nn, **kw: nn.Linear(5, 3, **kw), (4, 5)),
          "conv1d": (lambda nn, **kw: nn.Conv1d(2, 4, 3, **kw), (3, 2, 7))}


def seeded(torch, layer, api, seed, **options):
    make, _ = LAYERS[layer]
    torch.manual_seed(seed)
    theirs = api(torch.nn, make(torch.nn), **options)
    tr.manual_seed(seed)
    ours = api(tr.nn, make(tr.nn, dtype="float64"), **options)
    return ours, theirs


def assert_same_state(ours, theirs):
    mine, expected = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(expected)
    for key, value in expected.items():
        assert_values(mine[key], value, key, GRADIENTS)


@pytest.mark.parametrize("api", [HOOK, PARAMETRIZATION], ids=["hook", "parametrization"])
@pytest.mark.parametrize("layer", list(LAYERS))
def test_spectral_norm_trains_step_by_step_as_torch(torch, api, layer):
    options = {"n_power_iterations": 2, "dim": 1} if layer == "conv1d" else {}
    ours, theirs = seeded(torch, layer, api, seed=5, **options)
    assert_same_state(ours, theirs)   # u and v drawn as torch draws them
    rng, shape = np.random.default_rng(0), LAYERS[layer][1]
    opt, topt = tr.optim.SGD(ours.parameters(), lr=0.1), torch.optim.SGD(theirs.parameters(), lr=0.1)
    for step in range(4):
        if step == 2:   # eval: no power iteration
            ours.eval(), theirs.eval()
        x = rng.standard_normal(shape)
        y, ty = ours(tr.tensor(x, dtype="float64")), theirs(torch.tensor(x))
        assert_values(y, ty, f"output at step {step}", GRADIENTS)
        backward_both(torch, y, ty, rng)
        for (name, p), (tname, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert name == tname
            assert_values(p.grad, tp.grad, f"gradient of {name} at step {step}", GRADIENTS)
        opt.step(), topt.step()
        opt.zero_grad(), topt.zero_grad()
        assert_same_state(ours, theirs)


def test_spectral_norm_default_dim_and_removal(torch):
    ours, theirs = seeded(torch, "conv1d", HOOK, seed=1)
    assert ours.weight_u.shape == (4,) and ours.weight_v.shape == (6,)   # dim 0 for a convolution
    x = np.random.default_rng(1).standard_normal((1, 2, 5))
    ours(tr.tensor(x, dtype="float64")), theirs(torch.tensor(x))
    tr.nn.utils.remove_spectral_norm(ours), torch.nn.utils.remove_spectral_norm(theirs)
    assert_same_state(ours, theirs)
    assert isinstance(ours.weight, tr.nn.Parameter)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
        tr.nn.utils.remove_spectral_norm(ours)


def test_spectral_norm_bad_arguments(torch):
    with pytest.raises(ValueError, match="n_power_iterations=0"):
        tr.nn.utils.spectral_norm(tr.nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(RuntimeError, match="two spectral_norm hooks"):
        tr.nn.utils.spectral_norm(tr.nn.utils.spectral_norm(tr.nn.Linear(2, 2)))
    with pytest.raises(IndexError, match="Dimension out of range"):
        tr.nn.utils.parametrizations.spectral_norm(tr.nn.Linear(2, 2), dim=2)
    with pytest.raises(ValueError, match="no parameter or buffer with name 'w'"):
        tr.nn.utils.parametrizations.spectral_norm(tr.nn.Linear(2, 2), name="w")
