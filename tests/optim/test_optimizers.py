"""Optimizers against torch.optim, step by step in float64, and their state_dict round trip."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import backend
from tinygrad_rnn.checkpoint import load_checkpoint, save_checkpoint
from tinygrad_rnn.nn import Parameter
from tinygrad_rnn.optim import SGD, Adagrad, Adam, AdamW, RMSprop

from ..conftest import to_np

SHAPES = [(3, 4), (5,)]

# (name of the class in both libraries, keyword arguments)
CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.02, "initial_accumulator_value": 0.3, "eps": 1e-6}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.7, "weight_decay": 0.05}),
    ("RMSprop", {"lr": 0.005, "centered": True, "momentum": 0.3, "eps": 1e-4}),
]
OURS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "Adagrad": Adagrad, "RMSprop": RMSprop}


def gradient_field(values, step):
    """A non-linear, step-dependent gradient, the same for both libraries."""
    return np.sin(3.0 * values) + 0.5 * values + 0.1 * np.cos(step + values.sum())


def initial_values():
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape) for shape in SHAPES]


def make_params(device, values=None):
    return [Parameter(v.copy(), dtype="float64", device=device) for v in (values or initial_values())]


def run_ours(opt, params, steps, first_step=0):
    for step in range(first_step, first_step + steps):
        for k, p in enumerate(params):
            # the second parameter has no gradient now and then: optimizers must skip it
            skip = k == 1 and step % 4 == 3
            p.grad = None if skip else backend.to_device(gradient_field(to_np(p.array), step), p.device)
        opt.step()


def split_groups(params, kwargs, second_lr):
    return [{"params": params[:1]}, {"params": params[1:], "lr": second_lr}]


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
@pytest.mark.parametrize("groups", [False, True], ids=["one-group", "two-groups"])
def test_matches_torch_over_many_steps(torch, device, name, kwargs, groups):
    steps = 60
    params = make_params(device)
    theirs = [torch.tensor(v, requires_grad=True) for v in initial_values()]
    if groups:
        ours_opt = OURS[name](split_groups(params, kwargs, 0.03), **kwargs)
        their_opt = getattr(torch.optim, name)(split_groups(theirs, kwargs, 0.03), **kwargs)
    else:
        ours_opt = OURS[name](params, **kwargs)
        their_opt = getattr(torch.optim, name)(theirs, **kwargs)
    run_ours(ours_opt, params, steps)
    for step in range(steps):
        for k, p in enumerate(theirs):
            skip = k == 1 and step % 4 == 3
            p.grad = None if skip else torch.from_numpy(gradient_field(p.detach().numpy(), step))
        their_opt.step()
    for ours, expected in zip(params, theirs):
        np.testing.assert_allclose(to_np(ours.array), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    # the saved state has the same entries as PyTorch's, with the same values
    ours_state, their_state = ours_opt.state_dict(), their_opt.state_dict()
    assert sorted(ours_state["state"]) == sorted(their_state["state"])
    for i, entries in their_state["state"].items():
        assert set(ours_state["state"][i]) == set(entries)
        for key, value in entries.items():
            np.testing.assert_allclose(np.asarray(ours_state["state"][i][key], dtype=float),
                                       np.asarray(value, dtype=float), rtol=1e-10, atol=1e-12)
    for ours_group, their_group in zip(ours_state["param_groups"], their_state["param_groups"]):
        assert set(ours_group) <= set(their_group)
        assert ours_group["params"] == their_group["params"]


@pytest.mark.parametrize("name,kwargs", CONFIGS[1::2], ids=[n for n, _ in CONFIGS[1::2]])
def test_state_dict_round_trip_through_a_checkpoint_continues_identically(tmp_path, device, name, kwargs):
    params = make_params(device)
    opt = OURS[name](split_groups(params, kwargs, 0.02), **kwargs)
    run_ours(opt, params, 7)
    save_checkpoint(tmp_path / "opt.npz", {f"p{k}": to_np(p.array) for k, p in enumerate(params)},
                    opt.state_dict())
    run_ours(opt, params, 9, first_step=7)

    loaded = load_checkpoint(tmp_path / "opt.npz")
    resumed = make_params(device, [loaded["model"][f"p{k}"] for k in range(len(SHAPES))])
    resumed_opt = OURS[name](split_groups(resumed, kwargs, 0.5), **kwargs)  # lr comes from the state
    resumed_opt.load_state_dict(loaded["optimizer"])
    assert resumed_opt.param_groups[1]["lr"] == 0.02
    run_ours(resumed_opt, resumed, 9, first_step=7)
    for a, b in zip(params, resumed):
        np.testing.assert_array_equal(to_np(a.array), to_np(b.array))


def test_state_dict_is_a_host_copy(device):
    params = make_params(device)
    opt = Adam(params, lr=0.1)
    run_ours(opt, params, 2)
    saved = opt.state_dict()
    before = saved["state"][0]["exp_avg"].copy()
    assert isinstance(before, np.ndarray)
    run_ours(opt, params, 2, first_step=2)
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], before)


def test_load_state_dict_reports_mismatches_and_changes_nothing():
    params = make_params("cpu")
    opt = Adam(params, lr=0.1)
    run_ours(opt, params, 2)
    state = opt.state_dict()
    other = Adam([Parameter(np.zeros((4, 3)), dtype="float64"), Parameter(np.zeros(5), dtype="float64")],
                 lr=0.5)
    with pytest.raises(ValueError, match=r"state\[0\]\['exp_avg'\] has shape \(3, 4\).*\(4, 3\)"):
        other.load_state_dict(state)
    assert other.state == {} and other.param_groups[0]["lr"] == 0.5
    fewer = Adam(make_params("cpu")[:1], lr=0.5)
    with pytest.raises(ValueError, match="group 0 has 2 parameters in the state, 1 here"):
        fewer.load_state_dict(state)
    with pytest.raises(ValueError, match="the state has 1 parameter groups, this optimizer 2"):
        Adam(split_groups(make_params("cpu"), {}, 0.1)).load_state_dict(state)


@pytest.mark.parametrize("make,message", [
    (lambda ps: SGD(ps, lr=-1.0), "invalid lr -1.0"),
    (lambda ps: SGD(ps, lr=0.1, nesterov=True), "Nesterov momentum requires"),
    (lambda ps: Adam(ps, betas=(0.9, 1.0)), "invalid betas"),
    (lambda ps: Adam(ps, eps=-1e-8), "invalid eps"),
    (lambda ps: RMSprop(ps, alpha=-0.5), "invalid alpha"),
    (lambda ps: Adagrad(ps, lr_decay=-1), "invalid lr_decay"),
    (lambda ps: SGD([], lr=0.1), "empty parameter list"),
    (lambda ps: SGD(ps + ps[:1], lr=0.1), "more than one parameter group"),
])
def test_bad_hyperparameters_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make(make_params("cpu"))


def test_refuses_tensors_it_cannot_update():
    x = tr.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="leaf"):
        SGD([x * 2.0], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(x, lr=0.1)


def test_an_lr_given_as_a_tensor_is_taken():
    p = Parameter(np.ones(3), dtype="float64")
    opt = SGD([p], lr=tr.tensor(0.5))
    p.grad = tr.tensor(np.full(3, 2.0))
    opt.step()
    assert opt.param_groups[0]["lr"] == 0.5 and p.numpy().tolist() == [0.0, 0.0, 0.0]


def test_frozen_parameters_are_taken_and_left_alone(torch):
    """As torch: `Adam(model.parameters())` after `p.requires_grad_(False)` on some (fine-tuning) works,
    and a frozen parameter never moves, until it is unfrozen."""
    layers = {lib: lib.nn.Linear(3, 2).double() for lib in (tr, torch)}
    layers[tr].load_state_dict({k: v.detach().numpy() for k, v in layers[torch].state_dict().items()})
    for lib, layer in layers.items():
        layer.weight.requires_grad_(False)
        opt = lib.optim.Adam(layer.parameters(), lr=0.1)
        x = lib.tensor(np.linspace(-1, 1, 6).reshape(2, 3))
        for step in range(3):
            if step == 2:
                layer.weight.requires_grad_(True)
            opt.zero_grad()
            (layer(x) ** 2).sum().backward()
            opt.step()
    for name in ("weight", "bias"):
        np.testing.assert_allclose(getattr(layers[tr], name).numpy(),
                                   getattr(layers[torch], name).detach().numpy(), rtol=1e-12)


def test_zero_grad_and_float32_update(device):
    p = Parameter(np.ones(3), device=device)
    opt = SGD([p], lr=0.5)
    p.grad = backend.to_device(np.full(3, 2.0, dtype=np.float32), device)
    opt.step()
    assert p.dtype == np.float32
    np.testing.assert_array_equal(to_np(p.array), np.zeros(3))
    opt.zero_grad()
    assert p.grad is None
