"""Weight normalisation against torch in float64: the old hook API (nn.utils.weight_norm, weight_g / weight_v)
and the parametrization one (nn.utils.parametrizations.weight_norm, parametrizations.weight.original0 / 1),
on Linear, Conv1d, Embedding and an LSTM's recurrent weight (fused and op by op): values, gradients,
state_dicts both ways, removal, SGD steps, errors; and parametrize with a parametrization of one's own."""
import copy
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np
from tests.nn.parity import GRADIENTS, VALUES, assert_values, copy_torch_weights
from tinygrad_rnn.nn.utils import parametrizations, parametrize, remove_weight_norm, weight_norm

# layer -> (the module from an nn namespace, the parameter normalised, an input from a NumPy generator)
LAYERS = {
    "linear": (lambda nn, **kw: nn.Linear(4, 3), "weight", lambda rng: rng.standard_normal((5, 4))),
    "conv1d": (lambda nn, **kw: nn.Conv1d(2, 3, 3), "weight", lambda rng: rng.standard_normal((2, 2, 6))),
    "embedding": (lambda nn, **kw: nn.Embedding(6, 3), "weight", lambda rng: rng.integers(0, 6, (2, 4))),
    "lstm-fused": (lambda nn, **kw: nn.LSTM(3, 4, **kw), "weight_hh_l0", lambda rng: rng.standard_normal((5, 2, 3))),
    "lstm-op-by-op": (lambda nn, **kw: nn.LSTM(3, 4, **kw), "weight_hh_l0",
                      lambda rng: rng.standard_normal((5, 2, 3))),
}


def old_api(nn_utils, module, name, dim=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return nn_utils.weight_norm(module, name, dim)


def new_api(nn_utils, module, name, dim=0):
    return nn_utils.parametrizations.weight_norm(module, name, dim)


APIS = {"old": old_api, "new": new_api}


def build(torch, layer, device="cpu", seed=0):
    """(ours, theirs): the same plain layer in float64 on both sides."""
    make, _, _ = LAYERS[layer]
    torch.manual_seed(seed)
    theirs = make(torch.nn)
    options = {"fused": layer == "lstm-fused"} if layer.startswith("lstm") else {}
    ours = make(tr.nn, **options).double().to(device)
    copy_torch_weights(ours, theirs)
    return ours, theirs


def run(module, x):
    output = module(x)
    return output[0] if isinstance(output, tuple) else output


def inputs(torch, layer, device, seed=1):
    array = LAYERS[layer][2](np.random.default_rng(seed))
    return tr.tensor(array, device=device), torch.tensor(array)


def assert_same_state(ours, theirs, tolerance=VALUES):
    mine = ours.state_dict()
    assert list(mine) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert_values(mine[key], value, key, tolerance)


def assert_same_gradients(ours, theirs):
    mine = dict(ours.named_parameters())
    assert list(mine) == [name for name, _ in theirs.named_parameters()]
    for name, p in theirs.named_parameters():
        assert_values(mine[name].grad, p.grad, f"gradient of {name}", GRADIENTS)


@pytest.mark.parametrize("dim", [0, 1, None])
@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("api", list(APIS))
def test_values_and_gradients_match_torch(torch, device, api, layer, dim):
    ours, theirs = build(torch, layer, device)
    name = LAYERS[layer][1]
    APIS[api](tr.nn.utils, ours, name, dim)
    APIS[api](torch.nn.utils, theirs, name, dim)
    assert_same_state(ours, theirs)   # g and v as torch computes them, under torch's keys
    assert_values(getattr(ours, name), getattr(theirs, name), name)
    x, tx = inputs(torch, layer, device)
    output, expected = run(ours, x), run(theirs, tx)
    assert_values(output, expected, "output")
    weights = np.random.default_rng(2).standard_normal(tuple(expected.shape))
    (output * tr.tensor(weights, device=device)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    assert_same_gradients(ours, theirs)


@pytest.mark.parametrize("api", list(APIS))
def test_state_dicts_load_both_ways(torch, api):
    ours, theirs = build(torch, "conv1d", seed=0)
    APIS[api](tr.nn.utils, ours, "weight", 1)
    APIS[api](torch.nn.utils, theirs, "weight", 1)
    _, source = build(torch, "conv1d", seed=3)
    APIS[api](torch.nn.utils, source, "weight", 1)
    ours.load_state_dict({k: v.numpy() for k, v in source.state_dict().items()})
    assert_same_state(ours, source)
    x, tx = inputs(torch, "conv1d", "cpu")
    assert_values(ours(x), source(tx), "output after loading torch's state_dict")
    with tr.no_grad():
        for p in ours.parameters():
            p.mul_(2.0)
    theirs.load_state_dict({k: torch.tensor(to_np(v)) for k, v in ours.state_dict().items()})
    assert_same_state(ours, theirs)
    assert_values(ours(x), theirs(tx), "output after torch loads ours")


@pytest.mark.parametrize("layer", ["linear", "lstm-fused", "lstm-op-by-op"])
@pytest.mark.parametrize("api", list(APIS))
def test_removal_leaves_a_plain_parameter_with_the_current_weight(torch, api, layer):
    ours, theirs = build(torch, layer)
    name = LAYERS[layer][1]
    plain_keys = list(ours.state_dict())
    APIS[api](tr.nn.utils, ours, name)
    APIS[api](torch.nn.utils, theirs, name)
    with torch.no_grad(), tr.no_grad():   # g changes after registration: the weight left is g * v / ||v|| now
        for module in (ours, theirs):
            g = module.parametrizations[name].original0 if api == "new" else getattr(module, name + "_g")
            g.mul_(1.5)
    if api == "old":
        remove_weight_norm(ours, name)
        torch.nn.utils.remove_weight_norm(theirs, name)
    else:
        parametrize.remove_parametrizations(ours, name)
        torch.nn.utils.parametrize.remove_parametrizations(theirs, name)
    weight = getattr(ours, name)
    assert isinstance(weight, tr.nn.Parameter) and weight.requires_grad
    assert type(ours).__name__ == type(theirs).__name__ and not type(ours).__name__.startswith("Parametrized")
    assert not ours._forward_pre_hooks and not parametrize.is_parametrized(ours)
    assert sorted(ours.state_dict()) == sorted(plain_keys)
    assert_same_state(ours, theirs)
    x, tx = inputs(torch, layer, "cpu")
    assert_values(run(ours, x), run(theirs, tx), "output after removal")


def test_two_sgd_steps_train_as_torch_does(torch):
    def model(nn, **options):
        torch.manual_seed(0)
        conv = nn.Conv1d(2, 3, 3)
        lstm = nn.LSTM(3, 4, **options)
        head = nn.Linear(4, 2)
        nn.utils.weight_norm(conv)
        nn.utils.weight_norm(lstm, "weight_ih_l0", dim=None)
        nn.utils.parametrizations.weight_norm(head, dim=1)
        return nn.ModuleList([conv, lstm, head])

    def loss(modules, x, target):
        conv, lstm, head = modules
        features = conv(x).permute(2, 0, 1)   # (B, C, L) -> (L, B, C)
        output, _ = lstm(features)
        return ((head(output[-1]) - target) ** 2).mean()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        theirs, ours = model(torch.nn), model(tr.nn).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(4)
    x, target = rng.standard_normal((2, 2, 6)), rng.standard_normal((2, 2))
    optimizers = (tr.optim.SGD(ours.parameters(), lr=0.5, momentum=0.9),
                  torch.optim.SGD(theirs.parameters(), lr=0.5, momentum=0.9))
    for _ in range(2):
        for optimizer in optimizers:
            optimizer.zero_grad()
        loss(ours, tr.tensor(x), tr.tensor(target)).backward()
        loss(theirs, torch.tensor(x), torch.tensor(target)).backward()
        for optimizer in optimizers:
            optimizer.step()
    assert_same_state(ours, theirs, GRADIENTS)


def test_the_old_api_warns_and_refuses_what_torch_refuses(torch):
    linear = tr.nn.Linear(3, 2)
    with pytest.warns(FutureWarning, match="parametrizations.weight_norm"):
        weight_norm(linear)
    with pytest.warns(FutureWarning), pytest.raises(RuntimeError, match="two weight_norm hooks on the same "
                                                                         "parameter weight"):
        weight_norm(linear)
    fresh = tr.nn.Linear(3, 2)
    keys = list(fresh.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with pytest.raises(AttributeError, match="wieght"):
            weight_norm(fresh, "wieght")
        with pytest.raises(KeyError, match="in_features"):
            weight_norm(fresh, "in_features")
        with pytest.raises(IndexError, match=r"\[-2, 1\], but got 2"):
            weight_norm(fresh, dim=2)
    assert list(fresh.state_dict()) == keys and not fresh._forward_pre_hooks   # nothing changed
    with pytest.raises(ValueError, match="weight_norm of 'bias' not found"):
        remove_weight_norm(linear, "bias")


def test_parametrize_refuses_unknown_names_and_unparametrized_removal():
    linear = tr.nn.Linear(3, 2)
    with pytest.raises(ValueError, match="with name 'wieght'"):
        parametrizations.weight_norm(linear, "wieght")
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        parametrize.remove_parametrizations(linear, "weight")
    parametrizations.weight_norm(linear)
    with pytest.raises(ValueError, match="leave unparametrized"):
        parametrize.remove_parametrizations(linear, "weight", leave_parametrized=False)
    with pytest.raises(KeyError, match="already exists"):
        linear.weight = tr.nn.Parameter(tr.zeros(2, 3))


class Symmetric:
    """The same parametrization for either library's Module: X -> triu(X) + triu(X, 1).T."""

    @staticmethod
    def make(nn):
        class Symmetric(nn.Module):
            def forward(self, X):
                return X.triu() + X.triu(1).T

            def right_inverse(self, A):
                return A.triu()
        return Symmetric()


def test_a_parametrization_of_ones_own_matches_torch(torch):
    ours, theirs = tr.nn.Linear(3, 3).double(), torch.nn.Linear(3, 3)
    copy_torch_weights(ours, theirs)
    parametrize.register_parametrization(ours, "weight", Symmetric.make(tr.nn))
    torch.nn.utils.parametrize.register_parametrization(theirs, "weight", Symmetric.make(torch.nn))
    assert type(ours).__name__ == "ParametrizedLinear" and parametrize.is_parametrized(ours, "weight")
    assert parametrize.type_before_parametrizations(ours) is tr.nn.Linear
    assert_same_state(ours, theirs)
    assert list(ours.state_dict()) == ["bias", "parametrizations.weight.original"]
    value = np.random.default_rng(5).standard_normal((3, 3))
    ours.weight, theirs.weight = tr.tensor(value + value.T), torch.tensor(value + value.T)   # right_inverse
    assert_same_state(ours, theirs)
    assert_values(ours.weight, theirs.weight, "weight assigned through right_inverse")
    with parametrize.cached():
        assert ours.weight is ours.weight
    assert ours.weight is not ours.weight
    original = ours.parametrizations.weight.original
    replica = copy.deepcopy(ours)   # its own class, parametrization and originals
    assert type(replica).__name__ == "ParametrizedLinear" and replica.parametrizations.weight.original is not original
    assert_values(replica.weight, theirs.weight, "weight of a deep copy")
    parametrize.remove_parametrizations(ours, "weight", leave_parametrized=False)
    torch.nn.utils.parametrize.remove_parametrizations(theirs, "weight", leave_parametrized=False)
    assert ours.weight is original and type(ours) is tr.nn.Linear
    assert_same_state(ours, theirs)
