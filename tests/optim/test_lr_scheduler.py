"""Learning-rate schedules against torch.optim.lr_scheduler, group by group and step by step."""
import json
import math

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.nn import Parameter
from tinygrad_rnn.optim import SGD, Adagrad, Adam, lr_scheduler


def two_groups(torch=None):
    make = (lambda: torch.zeros(2, requires_grad=True)) if torch else (lambda: Parameter(np.zeros(2)))
    return [{"params": [make()]}, {"params": [make()], "lr": 0.3}]


SCHEDULES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("StepLR", {"step_size": 1}),
    ("CosineAnnealingLR", {"T_max": 10}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}),
    ("MultiStepLR", {"milestones": [2, 5, 5, 30], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("LinearLR", {}),
    ("LinearLR", {"start_factor": 0.25, "end_factor": 0.5, "total_iters": 8}),
    ("ConstantLR", {}),
    ("ConstantLR", {"factor": 0.5, "total_iters": 12}),
    ("PolynomialLR", {}),
    ("PolynomialLR", {"total_iters": 9, "power": 2.0}),
    ("PolynomialLR", {"total_iters": 4, "power": 0.5}),
]


@pytest.mark.parametrize("name,kwargs", SCHEDULES)
def test_epoch_schedules_match_torch(torch, name, kwargs):
    ours_opt, their_opt = SGD(two_groups(), lr=0.1), torch.optim.SGD(two_groups(torch), lr=0.1)
    ours = getattr(lr_scheduler, name)(ours_opt, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(their_opt, **kwargs)
    for _ in range(40):  # past T_max, where the cosine turns back up
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12, abs=1e-15)
        their_opt.step()
        ours.step()
        theirs.step()
    assert [g["lr"] for g in ours_opt.param_groups] == pytest.approx(
        [g["lr"] for g in their_opt.param_groups], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("kwargs", [
    {"patience": 2},
    {"mode": "max", "factor": 0.5, "patience": 1, "threshold": 0.1, "threshold_mode": "abs", "cooldown": 2},
    {"patience": 0, "min_lr": [0.02, 0.001], "factor": 0.3},
])
def test_reduce_on_plateau_matches_torch(torch, kwargs):
    ours_opt, their_opt = Adam(two_groups(), lr=0.1), torch.optim.Adam(two_groups(torch), lr=0.1)
    ours = lr_scheduler.ReduceLROnPlateau(ours_opt, **kwargs)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(their_opt, **kwargs)
    metrics = [1.0, 0.9, 0.95, 0.91, 0.92, 0.93, 0.5, 0.5, 0.5, 0.5, 0.6, 0.7, 0.4, 0.4, 0.4, 0.4]
    for metric in metrics:
        ours.step(metric)
        theirs.step(metric)
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)
    assert ours.best == theirs.best and ours.num_bad_epochs == theirs.num_bad_epochs


def test_scheduler_state_dict_resumes_the_schedule():
    opt = SGD(two_groups(), lr=0.1)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=20)
    for _ in range(5):
        sched.step()
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    for _ in range(5):
        sched.step()
    resumed_opt = SGD(two_groups(), lr=0.1)
    resumed_opt.load_state_dict(saved_opt)
    resumed = lr_scheduler.CosineAnnealingLR(resumed_opt, T_max=20)
    resumed.load_state_dict(saved_sched)
    for _ in range(5):
        resumed.step()
    assert resumed.get_last_lr() == sched.get_last_lr()
    assert sched.get_last_lr()[0] == pytest.approx(0.05 * (1 + math.cos(math.pi * 10 / 20)))


def test_bad_schedule_arguments():
    opt = SGD(two_groups(), lr=0.1)
    with pytest.raises(ValueError, match="step_size must be a positive integer"):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="factor should be < 1.0"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=2)


# ----------------------------------------------------------------------------- LambdaLR and OneCycleLR

class Warmup:
    """A callable object: its attributes travel in LambdaLR's state_dict, as in PyTorch."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.steps)


LAMBDAS = {
    "one function": lambda: (lambda epoch: 0.95 ** epoch),
    "one object": lambda: Warmup(5),
    "one per group": lambda: [lambda epoch: 1.0 / (1 + epoch), Warmup(3)],
}


def group_settings(groups):
    """What a schedule may change in each group, flat: lr, then momentum or both betas."""
    values = []
    for g in groups:
        values += [g["lr"]] + ([g["momentum"]] if "momentum" in g else []) + list(g.get("betas", ()))
    return values


def quadratic_losses(torch, ours_params, their_params, step):
    """The same loss on both sides, so both optimizers see the same gradients."""
    scale = float(step % 5 + 1)
    ours = sum(((p - 0.5) * (p - 0.5) * scale).sum() for p in ours_params)
    theirs = sum(((p - 0.5) ** 2 * scale).sum() for p in their_params)
    return ours, theirs


def run_both(torch, make_optimizers, make_schedules, steps):
    """Step both optimizers and schedules together; compare lrs, momenta and parameters every step."""
    ours_params = [Parameter(np.linspace(-1, 1, 3), dtype="float64"), Parameter(np.linspace(2, 0, 3), dtype="float64")]
    their_params = [torch.tensor(p.numpy(), requires_grad=True) for p in ours_params]
    ours_opt, their_opt = make_optimizers(ours_params, their_params)
    ours, theirs = make_schedules(ours_opt, their_opt)
    for step in range(steps):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-13, abs=1e-16), f"step {step}"
        assert group_settings(ours_opt.param_groups) == pytest.approx(
            group_settings(their_opt.param_groups), rel=1e-13), f"step {step}"
        ours_opt.zero_grad()
        their_opt.zero_grad()
        loss, their_loss = quadratic_losses(torch, ours_params, their_params, step)
        loss.backward()
        their_loss.backward()
        ours_opt.step()
        their_opt.step()
        ours.step()
        theirs.step()
    for mine, their in zip(ours_params, their_params):
        np.testing.assert_allclose(mine.numpy(), their.detach().numpy(), rtol=1e-12, atol=1e-14)
    return ours, theirs


@pytest.mark.parametrize("name", ["LambdaLR", "MultiplicativeLR"])
@pytest.mark.parametrize("which", list(LAMBDAS))
def test_lambda_lr_matches_torch(torch, which, name):
    def optimizers(ours_params, their_params):
        return (SGD([{"params": [ours_params[0]]}, {"params": [ours_params[1]], "lr": 0.3}], lr=0.1),
                torch.optim.SGD([{"params": [their_params[0]]}, {"params": [their_params[1]], "lr": 0.3}], lr=0.1))

    def schedules(ours_opt, their_opt):
        return (getattr(lr_scheduler, name)(ours_opt, LAMBDAS[which]()),
                getattr(torch.optim.lr_scheduler, name)(their_opt, LAMBDAS[which]()))
    ours, theirs = run_both(torch, optimizers, schedules, 12)
    mine, their = ours.state_dict(), theirs.state_dict()
    assert mine["lr_lambdas"] == their["lr_lambdas"]
    assert mine["last_epoch"] == their["last_epoch"]
    for key in ("base_lrs", "_last_lr"):
        assert mine[key] == pytest.approx(their[key], rel=1e-13)


# optimizer: (ours, theirs) constructors over two groups; the second group has its own lr
OPTIMIZERS = {
    "SGD momentum": lambda lib, params: lib.optim.SGD(
        [{"params": [params[0]]}, {"params": [params[1]], "lr": 0.3}], lr=0.1, momentum=0.9),
    "SGD nesterov": lambda lib, params: lib.optim.SGD(
        [{"params": [params[0]]}, {"params": [params[1]]}], lr=0.1, momentum=0.5, nesterov=True),
    "SGD no momentum": lambda lib, params: lib.optim.SGD([{"params": [p]} for p in params], lr=0.1),
    "Adam": lambda lib, params: lib.optim.Adam(
        [{"params": [params[0]]}, {"params": [params[1]], "betas": (0.8, 0.99)}], lr=0.01),
    "AdamW": lambda lib, params: lib.optim.AdamW([{"params": [p]} for p in params], lr=0.01, weight_decay=0.1),
}
ONE_CYCLE = [
    {"max_lr": 0.5, "total_steps": 20},
    {"max_lr": [0.5, 1.0], "total_steps": 20, "anneal_strategy": "linear"},
    {"max_lr": 0.4, "total_steps": 23, "three_phase": True},
    {"max_lr": 0.4, "total_steps": 23, "three_phase": True, "anneal_strategy": "linear", "pct_start": 0.4},
    {"max_lr": 1.0, "epochs": 3, "steps_per_epoch": 7, "pct_start": 0.25, "div_factor": 10.0,
     "final_div_factor": 100.0},
    {"max_lr": 0.5, "total_steps": 15, "base_momentum": [0.7, 0.8], "max_momentum": 0.9},
    {"max_lr": 0.5, "total_steps": 15, "cycle_momentum": False},
    {"max_lr": 0.3, "total_steps": 10, "pct_start": 0.0},
    {"max_lr": 0.3, "total_steps": 10, "pct_start": 0.9, "anneal_strategy": "linear"},
]


@pytest.mark.parametrize("kwargs", ONE_CYCLE, ids=str)
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_one_cycle_matches_torch_step_by_step(torch, optimizer, kwargs):
    def optimizers(ours_params, their_params):
        return OPTIMIZERS[optimizer](tr, ours_params), OPTIMIZERS[optimizer](torch, their_params)

    def schedules(ours_opt, their_opt):
        return (lr_scheduler.OneCycleLR(ours_opt, **kwargs),
                torch.optim.lr_scheduler.OneCycleLR(their_opt, **kwargs))
    total = kwargs.get("total_steps") or kwargs["epochs"] * kwargs["steps_per_epoch"]
    ours, theirs = run_both(torch, optimizers, schedules, total)  # every step the schedule has
    with pytest.raises(ValueError, match=f"Tried to step {total + 1} times"):
        ours.step()
    with pytest.raises(ValueError, match=f"Tried to step {total + 1} times"):
        theirs.step()


class Halving:
    """A scale_fn that is an object: its attributes go into the state_dict."""

    def __init__(self):
        self.base = 2.0

    def __call__(self, x):
        return 1 / self.base ** (x - 1)


CYCLIC = [
    {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3},
    {"base_lr": [0.01, 0.02], "max_lr": [0.1, 0.5], "step_size_up": 2, "step_size_down": 5, "mode": "triangular2"},
    {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4, "mode": "exp_range", "gamma": 0.9},
    {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "scale_fn": lambda x: 0.5 ** x, "scale_mode": "iterations"},
    {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2, "base_momentum": [0.7, 0.75], "max_momentum": 0.95},
    {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2, "cycle_momentum": False},
]


@pytest.mark.parametrize("kwargs", CYCLIC, ids=str)
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_cyclic_lr_matches_torch_step_by_step(torch, optimizer, kwargs):
    def optimizers(ours_params, their_params):
        return OPTIMIZERS[optimizer](tr, ours_params), OPTIMIZERS[optimizer](torch, their_params)

    def schedules(ours_opt, their_opt):
        return lr_scheduler.CyclicLR(ours_opt, **kwargs), torch.optim.lr_scheduler.CyclicLR(their_opt, **kwargs)
    run_both(torch, optimizers, schedules, 25)


def test_cyclic_lr_state_dict_keeps_a_callable_objects_attributes(torch):
    opt = SGD(two_groups(), lr=0.1, momentum=0.9)
    sched = lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=2, scale_fn=Halving())
    sched._scale_fn_custom.base = 3.0
    saved = json.loads(json.dumps(sched.state_dict()))   # plain data only
    theirs = torch.optim.lr_scheduler.CyclicLR(torch.optim.SGD(two_groups(torch), lr=0.1, momentum=0.9), 0.01, 0.1,
                                               step_size_up=2, scale_fn=Halving())
    theirs._scale_fn_custom.base = 3.0
    assert saved["_scale_fn_custom"] == theirs.state_dict()["_scale_fn_custom"] == {"base": 3.0}
    resumed = lr_scheduler.CyclicLR(SGD(two_groups(), lr=0.1, momentum=0.9), 0.01, 0.1, step_size_up=2,
                                    scale_fn=Halving())
    resumed.load_state_dict(saved)
    assert resumed._scale_fn_custom.base == 3.0
    with pytest.raises(ValueError, match="mode is invalid and scale_fn is None"):
        lr_scheduler.CyclicLR(opt, 0.01, 0.1, mode="sawtooth")
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        lr_scheduler.CyclicLR(Adagrad(two_groups()), 0.01, 0.1)


def test_one_cycle_state_dict_saves_and_resumes():
    def fresh():
        opt = SGD(two_groups(), lr=0.1, momentum=0.9)
        return opt, lr_scheduler.OneCycleLR(opt, max_lr=[1.0, 2.0], total_steps=30, three_phase=True)
    opt, sched = fresh()
    for _ in range(11):
        sched.step()
    saved_opt, saved = opt.state_dict(), json.loads(json.dumps(sched.state_dict()))  # plain data only
    for _ in range(9):
        sched.step()
    resumed_opt, resumed = fresh()
    resumed_opt.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)
    for _ in range(9):
        resumed.step()
    assert resumed.get_last_lr() == sched.get_last_lr()
    assert group_settings(resumed_opt.param_groups) == group_settings(opt.param_groups)


def test_one_cycle_and_lambda_arguments_are_checked_as_torchs():
    opt = SGD(two_groups(), lr=0.1)
    with pytest.raises(ValueError, match="either total_steps OR"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="Expected positive integer total_steps"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=0)
    with pytest.raises(ValueError, match="Expected positive integer epochs"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=-1, steps_per_epoch=3)
    with pytest.raises(ValueError, match="Expected float between 0 and 1 pct_start"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=5, pct_start=1)
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear'"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=5, anneal_strategy="exp")
    with pytest.raises(ValueError, match="max_lr must have the same length as optimizer.param_groups"):
        lr_scheduler.OneCycleLR(opt, max_lr=[0.1, 0.2, 0.3], total_steps=5)
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        lr_scheduler.OneCycleLR(Adagrad(two_groups()), max_lr=0.1, total_steps=5)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 3"):
        lr_scheduler.LambdaLR(opt, [abs, abs, abs])
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.OneCycleLR(object(), max_lr=0.1, total_steps=5)


def _step_both(ours_opt, their_opt, ours, theirs, steps):
    for _ in range(steps):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12, abs=1e-15)
        assert [g["lr"] for g in ours_opt.param_groups] == pytest.approx(
            [g["lr"] for g in their_opt.param_groups], rel=1e-12, abs=1e-15)
        their_opt.step()
        ours.step()
        theirs.step()


@pytest.mark.parametrize("kwargs", [{"T_0": 5}, {"T_0": 3, "T_mult": 2, "eta_min": 0.01}])
def test_cosine_warm_restarts_matches_torch(torch, kwargs):
    ours_opt, their_opt = SGD(two_groups(), lr=0.1), torch.optim.SGD(two_groups(torch), lr=0.1)
    ours = lr_scheduler.CosineAnnealingWarmRestarts(ours_opt, **kwargs)
    theirs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(their_opt, **kwargs)
    _step_both(ours_opt, their_opt, ours, theirs, 30)
    for epoch in (0.5, 7.25, 20, 2):  # torch's deprecated step(epoch), fractional epochs included
        ours.step(epoch)
        theirs.step(epoch)
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12, abs=1e-15)


SEQUENCES = {
    "warmup then cosine": lambda lib, opt: ([lib.LinearLR(opt, start_factor=0.1, total_iters=4),
                                             lib.CosineAnnealingLR(opt, T_max=10)], [4]),
    "constant, step, exponential": lambda lib, opt: ([lib.ConstantLR(opt, factor=0.5, total_iters=3),
                                                      lib.StepLR(opt, step_size=2, gamma=0.5),
                                                      lib.ExponentialLR(opt, gamma=0.9)], [3, 9]),
    "multistep then restarts": lambda lib, opt: ([lib.MultiStepLR(opt, milestones=[1, 3], gamma=0.5),
                                                  lib.CosineAnnealingWarmRestarts(opt, T_0=4)], [5]),
    "lambda then linear": lambda lib, opt: ([lib.LambdaLR(opt, lambda epoch: 0.9 ** epoch),
                                             lib.LinearLR(opt, start_factor=1.0, end_factor=0.2, total_iters=6)], [6]),
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_sequential_lr_matches_torch(torch, name):
    ours_opt, their_opt = SGD(two_groups(), lr=0.1), torch.optim.SGD(two_groups(torch), lr=0.1)
    schedules, milestones = SEQUENCES[name](lr_scheduler, ours_opt)
    ours = lr_scheduler.SequentialLR(ours_opt, schedules, milestones)
    their_schedules, _ = SEQUENCES[name](torch.optim.lr_scheduler, their_opt)
    theirs = torch.optim.lr_scheduler.SequentialLR(their_opt, their_schedules, milestones)
    _step_both(ours_opt, their_opt, ours, theirs, 25)


def test_chained_scheduler_matches_torch(torch):
    def make(lib, opt):
        return [lib.ConstantLR(opt, factor=0.1, total_iters=2), lib.ExponentialLR(opt, gamma=0.9),
                lib.StepLR(opt, step_size=3, gamma=0.5)]
    ours_opt, their_opt = SGD(two_groups(), lr=1.0), torch.optim.SGD(two_groups(torch), lr=1.0)
    ours = lr_scheduler.ChainedScheduler(make(lr_scheduler, ours_opt))
    theirs = torch.optim.lr_scheduler.ChainedScheduler(make(torch.optim.lr_scheduler, their_opt), their_opt)
    _step_both(ours_opt, their_opt, ours, theirs, 12)


def test_combined_schedules_save_and_resume():
    def make():
        opt = SGD(two_groups(), lr=0.1)
        return opt, lr_scheduler.SequentialLR(opt, [lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=2),
                                                    lr_scheduler.ExponentialLR(opt, gamma=0.8)], [3])
    _, schedule = make()
    for _ in range(5):
        schedule.step()
    saved = json.loads(json.dumps(schedule.state_dict()))
    resumed_opt, resumed = make()
    resumed.load_state_dict(saved)
    for group, lr in zip(resumed_opt.param_groups, schedule.get_last_lr()):
        group["lr"] = lr
    for _ in range(4):
        schedule.step()
        resumed.step()
        assert resumed.get_last_lr() == schedule.get_last_lr()


@pytest.mark.parametrize("name,kwargs", SCHEDULES)
def test_last_epoch_resumes_as_torch(torch, name, kwargs):
    """A schedule made with last_epoch=k over an optimizer that has run (its groups hold initial_lr)."""
    ours_opt, their_opt = SGD(two_groups(), lr=0.1), torch.optim.SGD(two_groups(torch), lr=0.1)
    getattr(lr_scheduler, name)(ours_opt, **kwargs)
    getattr(torch.optim.lr_scheduler, name)(their_opt, **kwargs)
    ours = getattr(lr_scheduler, name)(ours_opt, **kwargs, last_epoch=4)
    theirs = getattr(torch.optim.lr_scheduler, name)(their_opt, **kwargs, last_epoch=4)
    assert ours.last_epoch == theirs.last_epoch == 5
    _step_both(ours_opt, their_opt, ours, theirs, 15)


def test_combined_and_resumed_schedules_refuse_bad_arguments():
    opt, other = SGD(two_groups(), lr=0.1), SGD(two_groups(), lr=0.1)
    with pytest.raises(KeyError, match=r"param 'initial_lr' is not specified in param_groups\[0\]"):
        lr_scheduler.StepLR(opt, step_size=2, last_epoch=3)
    step = lr_scheduler.StepLR(opt, step_size=2)
    with pytest.raises(ValueError, match="Sequential Schedulers expects number of schedulers provided to be one more"):
        lr_scheduler.SequentialLR(opt, [step], [2])
    with pytest.raises(ValueError, match="SequentialLR expects all schedulers to belong to the same optimizer"):
        lr_scheduler.SequentialLR(opt, [step, lr_scheduler.ExponentialLR(other, 0.9)], [2])
    with pytest.raises(ValueError, match="ChainedScheduler does not support `ReduceLROnPlateau`"):
        lr_scheduler.ChainedScheduler([step, lr_scheduler.ReduceLROnPlateau(opt)])
    with pytest.raises(ValueError, match="ChainedScheduler expects at least one scheduler"):
        lr_scheduler.ChainedScheduler([])
    with pytest.raises(ValueError, match="Expected positive integer T_0, but got 0"):
        lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="Expected integer T_mult >= 1, but got 1.5"):
        lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=1.5)
    with pytest.raises(ValueError, match="Expected non-negative epoch, but got -1"):
        lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2).step(-1)
