"""Adadelta, Adamax, NAdam, RAdam, ASGD and Rprop against torch.optim in float64: values over many steps,
state_dicts (entries, values, dtypes) moving both ways, signatures, bad arguments, schedules, kernels."""
import copy
import inspect

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import backend
from tinygrad_rnn.nn import Parameter
from tinygrad_rnn.optim import ASGD, Adadelta, Adamax, NAdam, RAdam, Rprop, lr_scheduler

from ..conftest import to_np
from .test_fused_update_kernels import (  # noqa: F401  (cpp_kernels and launches are fixtures)
    assert_same,
    combinations,
    cpp_kernels,
    gradients,
    launches,
    numpy_rule,
    train,
)
from .test_fused_update_kernels import make_params as kernel_params
from .test_optimizers import gradient_field

SHAPES = [(3, 4), (5,), (2, 3)]
OURS = {cls.__name__: cls for cls in (Adadelta, Adamax, NAdam, RAdam, ASGD, Rprop)}
CONFIGS = [
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.1, "maximize": True}),
    ("Adamax", {}),
    ("Adamax", {"lr": 0.01, "betas": (0.3, 0.9), "eps": 1e-6, "weight_decay": 0.1, "maximize": True}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1}),
    ("NAdam", {"lr": 0.01, "betas": (0.8, 0.99), "momentum_decay": 0.01, "weight_decay": 0.1,
               "decoupled_weight_decay": True, "maximize": True}),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1}),
    # beta2 0.9: rho_t passes 5 at step 6, so the run has both sides of the rectification threshold
    ("RAdam", {"lr": 0.01, "betas": (0.3, 0.9), "weight_decay": 0.1, "decoupled_weight_decay": True,
               "maximize": True}),
    ("ASGD", {"lr": 0.05}),
    ("ASGD", {"lr": 0.05, "lambd": 0.01, "alpha": 0.6, "t0": 10, "weight_decay": 0.1, "maximize": True}),
    ("Rprop", {}),
    ("Rprop", {"lr": 0.02, "etas": (0.4, 1.3), "step_sizes": (1e-3, 0.05), "maximize": True}),
]
IDS = [f"{name}-{k}" for k, (name, _) in enumerate(CONFIGS)]


@pytest.fixture
def torch_at(torch):
    """torch and tinygrad_rnn at one default dtype (it fixes the dtype of torch's scalar state), restored after."""
    before = torch.get_default_dtype(), tr.get_default_dtype()

    def set_default(name):
        torch.set_default_dtype(getattr(torch, name))
        tr.set_default_dtype(name)
        return torch

    yield set_default
    torch.set_default_dtype(before[0])
    tr.set_default_dtype(before[1])


def initial_values():
    rng = np.random.default_rng(3)
    return [rng.standard_normal(shape) for shape in SHAPES]


def groups(params):
    return [{"params": params[:2]}, {"params": params[2:], "lr": 0.03}]


def make_pair(torch, name, kwargs, device="cpu", values=None):
    values = initial_values() if values is None else values
    ours = [Parameter(v.copy(), dtype="float64", device=device) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    return ours, OURS[name](groups(ours), **kwargs), theirs, getattr(torch.optim, name)(groups(theirs), **kwargs)


def run_both(torch, pair, steps, first_step=0):
    """The same gradients in both libraries; the second parameter has none now and then (skipped)."""
    ours, our_opt, theirs, their_opt = pair
    for step in range(first_step, first_step + steps):
        for k, (p, q) in enumerate(zip(ours, theirs)):
            skip = k == 1 and step % 4 == 3
            p.grad = None if skip else backend.to_device(gradient_field(to_np(p.array), step), p.device)
            q.grad = None if skip else torch.from_numpy(gradient_field(q.detach().numpy(), step))
        our_opt.step()
        their_opt.step()


def assert_same_as_torch(pair):
    ours, our_opt, theirs, their_opt = pair
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(to_np(p.array), q.detach().numpy(), rtol=1e-12, atol=1e-12)
    our_state, their_state = our_opt.state_dict(), their_opt.state_dict()
    assert our_state["state"].keys() == their_state["state"].keys()
    for i, entries in their_state["state"].items():
        assert our_state["state"][i].keys() == entries.keys()
        for key, value in entries.items():
            ours_value = our_state["state"][i][key]
            assert isinstance(ours_value, np.ndarray) and ours_value.dtype == value.numpy().dtype, key
            np.testing.assert_allclose(ours_value, value.numpy(), rtol=1e-12, atol=1e-12, err_msg=key)
    for our_group, their_group in zip(our_state["param_groups"], their_state["param_groups"]):
        assert our_group == their_group


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_matches_torch_over_many_steps(torch_at, device, name, kwargs):
    torch = torch_at("float32")  # torch's own default: float32 step, eta, mu and mu_product
    pair = make_pair(torch, name, kwargs, device)
    run_both(torch, pair, 40)
    assert_same_as_torch(pair)
    assert pair[1]._flat  # the one-pass update over the group's parameters ran


@pytest.mark.parametrize("name,kwargs", [CONFIGS[5], CONFIGS[9]], ids=["NAdam", "ASGD"])
def test_scalar_state_follows_a_float64_default_dtype(torch_at, name, kwargs):
    torch = torch_at("float64")
    pair = make_pair(torch, name, kwargs)
    run_both(torch, pair, 30)
    assert_same_as_torch(pair)
    assert pair[1].state_dict()["state"][0]["step"].dtype == np.float64


def to_numpy_state(state_dict):
    return {"state": {i: {k: v.numpy() for k, v in entries.items()} for i, entries in state_dict["state"].items()},
            "param_groups": copy.deepcopy(state_dict["param_groups"])}


def to_torch_state(torch, state_dict):
    return {"state": {i: {k: torch.from_numpy(np.array(v)) for k, v in entries.items()}
                      for i, entries in state_dict["state"].items()},
            "param_groups": copy.deepcopy(state_dict["param_groups"])}


@pytest.mark.parametrize("name,kwargs", CONFIGS[1::2], ids=IDS[1::2])
@pytest.mark.parametrize("saved_by", ["torch", "ours"])
def test_a_state_dict_moves_both_ways_and_training_continues_identically(torch_at, name, kwargs, saved_by):
    torch = torch_at("float32")
    first = make_pair(torch, name, kwargs)
    run_both(torch, first, 12)
    ours, our_opt, _, their_opt = first
    # fresh optimizers over the saved parameters take the other library's state (their lr is replaced)
    resumed = make_pair(torch, name, {**kwargs, "lr": 0.9}, values=[to_np(p.array) for p in ours])
    if saved_by == "torch":
        resumed[1].load_state_dict(to_numpy_state(their_opt.state_dict()))
        resumed[3].load_state_dict(their_opt.state_dict())
    else:
        resumed[1].load_state_dict(our_opt.state_dict())
        resumed[3].load_state_dict(to_torch_state(torch, our_opt.state_dict()))
    assert resumed[1].param_groups[1]["lr"] == 0.03
    run_both(torch, resumed, 12, first_step=12)
    assert_same_as_torch(resumed)
    run_both(torch, first, 12, first_step=12)
    for p, q in zip(resumed[0], first[0]):
        np.testing.assert_allclose(to_np(p.array), to_np(q.array), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", OURS)
def test_signature_is_torchs(torch, name):
    def described(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    assert described(OURS[name]) == described(getattr(torch.optim, name))


@pytest.mark.parametrize("make,error,message", [
    (lambda ps: Adadelta(ps, lr=-1.0), ValueError, "invalid lr -1.0"),
    (lambda ps: Adadelta(ps, rho=1.5), ValueError, r"invalid rho 1.5; expected a number in \[0.0, 1.0\]"),
    (lambda ps: Adadelta(ps, eps=-1e-6), ValueError, "invalid eps"),
    (lambda ps: Adadelta(ps, weight_decay=-0.1), ValueError, "invalid weight_decay"),
    (lambda ps: Adamax(ps, betas=(0.9, 1.0)), ValueError, "invalid betas"),
    (lambda ps: NAdam(ps, momentum_decay=-1e-3), ValueError, "invalid momentum_decay"),
    (lambda ps: NAdam(ps, betas=(-0.1, 0.9)), ValueError, "invalid betas"),
    (lambda ps: RAdam(ps, weight_decay=-1), ValueError, "invalid weight_decay"),
    (lambda ps: ASGD(ps, lr=-0.1), ValueError, "invalid lr"),
    (lambda ps: Rprop(ps, etas=(1.5, 1.2)), ValueError, "invalid etas"),
    (lambda ps: Rprop(ps, etas=(0.5, 0.9)), ValueError, "invalid etas"),
    (lambda ps: RAdam(ps, differentiable=True), ValueError, "differentiable=True"),
    (lambda ps: Adadelta(ps, 1.0, 0.9, 1e-6, 0, None, False), TypeError, "positional"),  # keyword-only as torch's
    (lambda ps: Rprop(ps, 0.01, (0.5, 1.2), (1e-6, 50), False), TypeError, "positional"),
])
def test_bad_arguments_are_named(make, error, message):
    with pytest.raises(error, match=message):
        make([Parameter(np.zeros(3), dtype="float64")])


def test_torch_flags_are_taken():
    p = Parameter(np.zeros(3), dtype="float64")
    group = NAdam([p], foreach=None, capturable=False, differentiable=False).param_groups[0]
    assert (group["foreach"], group["capturable"], group["differentiable"]) == (None, False, False)


@pytest.mark.parametrize("name,kwargs", [CONFIGS[5], CONFIGS[7], CONFIGS[9], CONFIGS[11]],
                         ids=["NAdam", "RAdam", "ASGD", "Rprop"])
def test_an_lr_scheduler_drives_them_as_torchs(torch_at, name, kwargs):
    torch = torch_at("float32")
    pair = make_pair(torch, name, kwargs)
    ours = lr_scheduler.StepLR(pair[1], step_size=3, gamma=0.5)
    theirs = torch.optim.lr_scheduler.StepLR(pair[3], step_size=3, gamma=0.5)
    for epoch in range(10):
        run_both(torch, pair, 3, first_step=3 * epoch)
        ours.step()
        theirs.step()
        assert [g["lr"] for g in pair[1].param_groups] == [g["lr"] for g in pair[3].param_groups]
    assert_same_as_torch(pair)


KERNEL_RULES = (
    [(Adadelta, {"lr": 0.5, **kw}) for kw in combinations(weight_decay=[0.0, 0.1], maximize=[False, True])]
    + [(Adamax, {"lr": 0.01, **kw}) for kw in combinations(betas=[(0.9, 0.999), (0.3, 0.9)], weight_decay=[0.0, 0.1],
                                                           maximize=[False, True])]
    + [(cls, {"lr": 0.01, **kw}) for cls in (NAdam, RAdam)
       for kw in combinations(betas=[(0.9, 0.999), (0.3, 0.9)], weight_decay=[0.0, 0.1],
                              decoupled_weight_decay=[False, True], maximize=[True])]
    + [(ASGD, {"lr": 0.05, "lambd": 0.01, **kw}) for kw in combinations(t0=[5, 1e6], weight_decay=[0.0, 0.1],
                                                                       maximize=[False, True])]
    + [(Rprop, {"lr": 0.02, **kw}) for kw in combinations(step_sizes=[(1e-6, 50), (1e-3, 0.05)],
                                                          maximize=[False, True])]
)


@pytest.fixture
def kernel_launches(request):
    """The kernel names launched, with the C++ builds in place of the CuPy launch (test_fused_update_kernels)."""
    return request.getfixturevalue("launches")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_each_kernel_equals_its_numpy_rule_bit_for_bit(kernel_launches, dtype):
    """Each rule's CUDA source built as C++, every option combination: parameters and state as the NumPy rule's."""
    for cls, kwargs in KERNEL_RULES:
        kernel_launches.clear()
        reference, fused = kernel_params(dtype), kernel_params(dtype)
        grads = gradients(reference, 12)
        reference_opt, fused_opt = cls(reference, **kwargs), cls(fused, **kwargs)
        numpy_rule(reference_opt, reference, grads)
        train(fused_opt, fused, grads)
        assert kernel_launches == [cls.FUSED.name] * 11, (cls.__name__, kwargs)  # the first step makes the state
        assert_same(fused, reference, fused_opt, reference_opt)
