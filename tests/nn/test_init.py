"""nn.init against torch.nn.init: gains and fans exactly, the draws' bounds and spread statistically."""
import math
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.nn import init

SHAPES = [(300, 200), (64, 16, 3, 5)]


@pytest.mark.parametrize("nonlinearity, param", [
    ("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("selu", None),
    ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 0)])
def test_calculate_gain_matches_torch(torch, nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(nonlinearity, param)


@pytest.mark.parametrize("shape", SHAPES + [(3, 4, 0)])
def test_fans_match_torch(torch, shape):
    assert init._calculate_fan_in_and_fan_out(tr.empty(*shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))


def _draw(torch, name, shape, **options):
    """Ours in float64 after a seed, and torch's std/bound for the same call, from torch's own draw."""
    tr.manual_seed(0)
    torch.manual_seed(0)
    x = tr.zeros(*shape, dtype=tr.float64)
    assert getattr(init, name)(x, **options) is x
    theirs = getattr(torch.nn.init, name)(torch.zeros(*shape), **options)
    return x.numpy().ravel(), theirs.numpy().ravel()


KAIMING = [{}, {"a": 0.3}, {"mode": "fan_out", "nonlinearity": "relu"}, {"nonlinearity": "tanh"}]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name, options", [("xavier_uniform_", {}), ("xavier_uniform_", {"gain": 2.5})] +
                         [("kaiming_uniform_", o) for o in KAIMING])
def test_uniform_initialisers_bound_and_spread(torch, name, shape, options):
    ours, theirs = _draw(torch, name, shape, **options)
    bound = math.sqrt(3) * theirs.std()  # U(-b, b) has std b / sqrt(3): torch's bound, read from its draw
    exact = np.abs(theirs).max()
    assert np.abs(ours).max() <= exact * (1 + 1e-3) + 1e-12
    assert np.abs(ours).max() > 0.99 * exact  # the draws reach the bound
    assert abs(ours.std() - theirs.std()) < 0.03 * bound
    assert abs(ours.mean()) < 0.03 * bound


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name, options", [("xavier_normal_", {}), ("xavier_normal_", {"gain": 0.5})] +
                         [("kaiming_normal_", o) for o in KAIMING])
def test_normal_initialisers_spread(torch, name, shape, options):
    ours, theirs = _draw(torch, name, shape, **options)
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(tr.empty(*shape))
    if name == "xavier_normal_":
        std = options.get("gain", 1.0) * math.sqrt(2 / (fan_in + fan_out))
    else:
        gain = init.calculate_gain(options.get("nonlinearity", "leaky_relu"), options.get("a", 0))
        std = gain / math.sqrt(fan_in if options.get("mode", "fan_in") == "fan_in" else fan_out)
    n = ours.size  # the sample std's own spread is std / sqrt(2n): 6 of those
    assert abs(ours.std() - std) < 6 * std / math.sqrt(2 * n)
    assert abs(theirs.std() - std) < 6 * std / math.sqrt(2 * n)
    assert abs(ours.mean()) < 6 * std / math.sqrt(n)


def test_fillers_match_torch(torch):
    for name, args in (("zeros_", ()), ("ones_", ()), ("constant_", (2.5,)), ("eye_", ())):
        x = tr.empty(3, 4, dtype=tr.float64)
        assert getattr(init, name)(x, *args) is x
        np.testing.assert_array_equal(x.numpy(), getattr(torch.nn.init, name)(torch.empty(3, 4), *args).numpy())


def test_seed_gives_the_same_draws_and_a_generator_is_used():
    x, y = tr.empty(5, 6), tr.empty(5, 6)
    tr.manual_seed(3)
    init.kaiming_uniform_(x)
    generator = tr.manual_seed(3)
    init.kaiming_uniform_(y, generator=generator)
    np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_parameters_change_in_place_under_no_grad():
    layer = tr.nn.Linear(4, 3)
    weight, version = layer.weight, layer.weight._version
    init.xavier_normal_(layer.weight)  # a leaf that requires grad: allowed, as torch's initialisers
    assert layer.weight is weight and weight.requires_grad and weight._version > version
    assert weight.grad is None


def test_orthogonal_rows_are_orthonormal():
    x = init.orthogonal_(tr.empty(3, 7, dtype=tr.float64), gain=2.0)
    np.testing.assert_allclose(x.numpy() @ x.numpy().T, 4 * np.eye(3), atol=1e-12)


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="Fan in and fan out can not be computed for tensor with fewer than 2"):
        init.xavier_uniform_(tr.empty(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_normal_(tr.empty(2, 2), mode="fan_avg")
    with pytest.raises(ValueError, match="Unsupported nonlinearity gelu"):
        init.kaiming_uniform_(tr.empty(2, 2), nonlinearity="gelu")
    with pytest.raises(ValueError, match="negative_slope slope not a valid number"):
        init.calculate_gain("leaky_relu", "slope")
    with pytest.raises(TypeError, match="normal_: generator must be a tr.Generator; got int"):
        init.normal_(tr.empty(2), generator=3)
    with pytest.raises(ValueError, match="normal_: expects std >= 0.0"):
        init.normal_(tr.empty(2), std=-1.0)
    with pytest.raises(TypeError, match="argument 'tensor' must be a Tensor, not ndarray"):
        init.zeros_(np.zeros(3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        init.kaiming_uniform_(tr.empty(0, 3))
    assert "zero-element tensors is a no-op" in str(caught[0].message)
