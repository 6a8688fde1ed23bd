"""Learning-rate schedules against torch.optim.lr_scheduler, group by group."""
import math

import numpy as np
import pytest

from tinygrad_rnn.nn import Parameter
from tinygrad_rnn.optim import SGD, Adam, lr_scheduler


def two_groups(torch=None):
    make = (lambda: torch.zeros(2, requires_grad=True)) if torch else (lambda: Parameter(np.zeros(2)))
    return [{"params": [make()]}, {"params": [make()], "lr": 0.3}]


SCHEDULES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("StepLR", {"step_size": 1}),
    ("CosineAnnealingLR", {"T_max": 10}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}),
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
