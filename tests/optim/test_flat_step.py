"""The multi-tensor step: one update over a flat buffer, equal to the per-parameter one and to torch's."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import backend
from tinygrad_rnn.nn import Parameter

from ..conftest import to_np
from .test_optimizers import CONFIGS, OURS, gradient_field, initial_values, make_params

SHAPES = [(3, 4), (5,), (2, 3)]


def values():
    rng = np.random.default_rng(5)
    return [rng.standard_normal(shape) for shape in SHAPES]


def run(opt, params, steps, first_step=0):
    """Every parameter has a gradient at every step: the flat path runs."""
    for step in range(first_step, first_step + steps):
        for p in params:
            p.grad = backend.to_device(gradient_field(to_np(p.array), step), p.device)
        opt.step()


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_flat_step_equals_the_per_parameter_step_and_torch(torch, device, name, kwargs):
    flat = make_params(device, values())
    alone = make_params(device, values())
    flat_opt = OURS[name](flat, **kwargs)
    alone_opt = OURS[name]([{"params": [p]} for p in alone], **kwargs)  # one parameter per group: no flat buffer
    theirs = [torch.tensor(v, requires_grad=True) for v in values()]
    their_opt = getattr(torch.optim, name)(theirs, **kwargs)
    run(flat_opt, flat, 40)
    run(alone_opt, alone, 40)
    for step in range(40):
        for p in theirs:
            p.grad = torch.from_numpy(gradient_field(p.detach().numpy(), step))
        their_opt.step()
    assert flat_opt._flat and not alone_opt._flat
    for a, b, c in zip(flat, alone, theirs):
        np.testing.assert_array_equal(to_np(a.array), to_np(b.array))  # the same operations, element by element
        np.testing.assert_allclose(to_np(a.array), c.detach().numpy(), rtol=1e-10, atol=1e-12)
    flat_state, alone_state = flat_opt.state_dict()["state"], alone_opt.state_dict()["state"]
    assert flat_state.keys() == alone_state.keys()
    for i, entries in alone_state.items():
        assert flat_state[i].keys() == entries.keys()
        for key, value in entries.items():
            np.testing.assert_array_equal(flat_state[i][key], value)


def test_parameters_and_state_are_views_of_one_buffer():
    params = make_params("cpu", values())
    opt = tr.optim.Adam(params, lr=0.01)
    run(opt, params, 2)
    (flat,) = opt._flat.values()
    for p in params:
        assert p.array.base is flat.array
        for name in ("exp_avg", "exp_avg_sq"):
            assert opt.state[p][name].base is flat.state[name]
        assert opt.state[p]["step"] == 2
    assert all(p._version == 2 for p in params)


def test_rebound_parameters_and_a_loaded_state_are_gathered_again():
    params = make_params("cpu", values())
    reference = make_params("cpu", values())
    opt, ref_opt = tr.optim.Adam(params, lr=0.01), tr.optim.Adam([{"params": [p]} for p in reference], lr=0.01)
    run(opt, params, 3)
    run(ref_opt, reference, 3)
    for p, q in zip(params, reference):  # as Module.load_state_dict does: new arrays
        p.array = p.array * 0.5
        q.array = q.array * 0.5
    run(opt, params, 3, first_step=3)
    run(ref_opt, reference, 3, first_step=3)
    saved = opt.state_dict()
    run(opt, params, 2, first_step=6)
    opt.load_state_dict(saved)  # back to the state of step 6, as fresh arrays
    for p, q in zip(params, reference):
        p.array = q.array.copy()
    run(opt, params, 4, first_step=6)
    run(ref_opt, reference, 4, first_step=6)
    for p, q in zip(params, reference):
        np.testing.assert_array_equal(p.array, q.array)
        assert p.array.base is next(iter(opt._flat.values())).array


def test_a_missing_gradient_falls_back_to_per_parameter_steps(torch):
    params = make_params("cpu", values())
    theirs = [torch.tensor(v, requires_grad=True) for v in values()]
    opt, their_opt = tr.optim.Adam(params, lr=0.02), torch.optim.Adam(theirs, lr=0.02)
    for step in range(12):
        for k, (p, q) in enumerate(zip(params, theirs)):
            skip = k == 2 and step in (4, 5)
            p.grad = None if skip else gradient_field(p.numpy(), step)
            q.grad = None if skip else torch.from_numpy(gradient_field(q.detach().numpy(), step))
        opt.step()
        their_opt.step()
    for p, q in zip(params, theirs):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert [opt.state[p]["step"] for p in params] == [12, 12, 10]


def test_parameters_of_two_dtypes_get_a_buffer_each():
    params = [Parameter(v.copy(), dtype=dtype) for v, dtype in zip(initial_values() * 2, ["float64", "float64",
                                                                                          "float32", "float32"])]
    opt = tr.optim.SGD(params, lr=0.1, momentum=0.9)
    run(opt, params, 3)
    assert sorted(str(f.array.dtype) for f in opt._flat.values()) == ["float32", "float64"]
    assert [p.dtype for p in params] == [np.float64, np.float64, np.float32, np.float32]


def test_states_that_differ_keep_per_parameter_steps():
    params = make_params("cpu", values())
    opt = tr.optim.Adam(params, lr=0.01)
    run(opt, params, 2)
    saved = opt.state_dict()
    saved["state"][1]["step"] = 7  # one parameter further on than the others
    opt.load_state_dict(saved)
    run(opt, params, 1, first_step=2)
    assert [opt.state[p]["step"] for p in params] == [3, 8, 3]
    assert all(opt.state[p]["exp_avg"].base is None for p in params)  # loaded arrays, stepped alone


def test_foreach_false_and_optimizers_without_it_step_each_parameter():
    class Halve(tr.optim.Optimizer):  # a rule written for one parameter at a time, no "foreach" default
        def __init__(self, params):
            super().__init__(params, {"lr": 0.5})

        def update(self, p, g, state, group):
            assert p.shape == g.shape  # a real parameter, not a flat buffer
            p.array -= group["lr"] * g

    for make in (lambda ps: Halve(ps), lambda ps: tr.optim.Adam(ps, lr=0.1, foreach=False)):
        params = make_params("cpu", values())
        opt = make(params)
        run(opt, params, 2)
        assert not opt._flat and all(p.array.base is None for p in params)
    assert tr.optim.SGD(make_params("cpu"), lr=0.1).param_groups[0]["foreach"] is None  # as torch
