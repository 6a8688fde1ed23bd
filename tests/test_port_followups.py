"""Behaviours a port from PyTorch relies on, each as torch has it: retain_grad on one output of a node with
several, the error type of an in-place op with an operand that does not broadcast, a view made under
no_grad sharing its base's version counter, a cell step returning the wrong number of states, and the
optimizers' param_groups keys with state_dicts that move both ways."""
import numpy as np
import pytest
import torch

import tinygrad_rnn as tr

# ----------------------------------------------------------------------------- retain_grad per output

@pytest.mark.parametrize("fused", [True, False])
def test_retain_grad_on_one_output_of_an_lstm_leaves_the_others_none(fused):
    tr.manual_seed(0)
    lstm = tr.nn.LSTM(3, 4, fused=fused)
    out, (h_n, c_n) = lstm(tr.randn(5, 2, 3))
    out.retain_grad()
    assert out.retains_grad and not h_n.retains_grad and not c_n.retains_grad
    (out.sum() + h_n.sum() * 2 + c_n.sum() * 3).backward()
    assert out.grad is not None and out.grad.shape == out.shape
    assert h_n.grad is None and c_n.grad is None

    torch.manual_seed(0)
    t_out, (t_h, t_c) = torch.nn.LSTM(3, 4)(torch.randn(5, 2, 3))
    t_out.retain_grad()
    (t_out.sum() + t_h.sum() * 2 + t_c.sum() * 3).backward()
    with pytest.warns(UserWarning, match="not a leaf"):
        assert t_h.grad is None and t_c.grad is None  # torch's behaviour, checked here too


def test_retain_grad_on_two_outputs_and_under_retain_grads():
    tr.manual_seed(0)
    lstm = tr.nn.LSTM(3, 4)
    out, (h_n, c_n) = lstm(tr.randn(5, 2, 3))
    c_n.retain_grad()
    h_n.retain_grad()
    (out.sum() + h_n.sum() * 2 + c_n.sum() * 3).backward()
    assert out.grad is None
    np.testing.assert_array_equal(c_n.grad.numpy(), np.full(c_n.shape, 3.0))
    assert h_n.grad is not None
    with tr.retain_grads():  # every output of every node, as before
        out, (h_n, c_n) = lstm(tr.randn(5, 2, 3))
    (out.sum() + h_n.sum()).backward()
    assert out.grad is not None and h_n.grad is not None and c_n.retains_grad


# ----------------------------------------------------------------------------- in-place broadcasting

@pytest.mark.parametrize("op", ["add_", "sub_", "mul_", "div_"])
def test_in_place_op_with_a_shape_that_does_not_broadcast_raises_runtime_error_as_torch(op):
    with pytest.raises(RuntimeError):
        getattr(torch.zeros(2, 3), op)(torch.ones(4))
    t = tr.zeros(2, 3)
    with pytest.raises(RuntimeError, match=rf"{op}: .*\(2, ?3\).*\(4,\)"):
        getattr(t, op)(tr.ones(4))
    assert t._version == 0
    with pytest.raises(RuntimeError, match=r"doesn't match the broadcast shape"):  # broadcasts, to another shape
        getattr(t, op)(tr.ones(4, 2, 3))


# ----------------------------------------------------------------------------- views under no_grad

@pytest.mark.parametrize("lib", [tr, torch])
def test_a_view_changed_under_no_grad_is_seen_by_backward(lib):
    w = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = w.sigmoid()
    with lib.no_grad():
        y.T[0].zero_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_a_view_made_under_no_grad_shares_the_version_counter_and_a_copy_does_not():
    y = tr.randn(3, 4)
    with tr.no_grad():
        view, copy = y.reshape(4, 3)[1:], y * 1
    view.zero_()
    assert y._version == view._version == 1
    copy.zero_()
    assert y._version == 1


# ----------------------------------------------------------------------------- a step's states

class ThreeStatesForTwoCell(tr.nn.RecurrentCell):
    state_names = ("h", "c")

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = tr.nn.Parameter(tr.randn(input_size, hidden_size, dtype=dtype))

    @property
    def state_sizes(self):
        return (self.hidden_size, self.hidden_size)

    def step(self, x, state):
        h, c = state
        return (x @ self.w + h).tanh(), c, c


@pytest.mark.parametrize("fused", [True, False])
def test_a_step_returning_the_wrong_number_of_states_is_refused_by_name(fused):
    layer = tr.nn.Recurrent(ThreeStatesForTwoCell, 3, 4, fused=fused)
    with pytest.raises(tr.nn.InputError, match=r"ThreeStatesForTwoCell: its step must return 2 state\(s\) \(h, c\)"
                                               r".*it returned 3: shape \(2, 4\), shape \(2, 4\), shape \(2, 4\)"):
        layer(tr.randn(5, 2, 3))
    with pytest.raises(tr.nn.InputError, match="must return 2 state"):
        ThreeStatesForTwoCell(3, 4)(tr.randn(2, 3))


def test_a_step_returning_something_else_than_tensors_is_refused():
    class NumberCell(tr.nn.RNNCell):
        def step(self, x, state):
            return 1.0

    with pytest.raises(tr.nn.InputError, match=r"NumberCell: its step must return 1 state\(s\) \(h\).*a float"):
        tr.nn.Recurrent(NumberCell, 3, 4, fused=False)(tr.randn(5, 2, 3))


# ----------------------------------------------------------------------------- optimizers

OPTIMIZERS = {"SGD": {"momentum": 0.9}, "Adam": {}, "AdamW": {}, "Adagrad": {}, "RMSprop": {"momentum": 0.5}}


def _torch_state_dict_as_numpy(state_dict):
    return {"state": {i: {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in s.items()}
                      for i, s in state_dict["state"].items()},
            "param_groups": [dict(g) for g in state_dict["param_groups"]]}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_param_groups_have_torchs_keys_and_defaults(name):
    theirs = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], lr=0.1, **OPTIMIZERS[name])
    ours = getattr(tr.optim, name)([tr.zeros(2, requires_grad=True)], lr=0.1, **OPTIMIZERS[name])
    assert set(ours.param_groups[0]) == set(theirs.param_groups[0])
    for key, value in theirs.param_groups[0].items():
        if key != "params":
            assert ours.param_groups[0][key] == value, key
    assert set(ours.state_dict()) == set(theirs.state_dict())


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_dicts_move_both_ways(name):
    values = np.random.default_rng(0).standard_normal((3, 2))
    t_param = torch.tensor(values, requires_grad=True)
    theirs = getattr(torch.optim, name)([t_param], lr=0.1, **OPTIMIZERS[name])
    param = tr.tensor(values, dtype=tr.float64, requires_grad=True)
    ours = getattr(tr.optim, name)([param], lr=0.1, **OPTIMIZERS[name])
    for _ in range(3):
        for opt, p in ((theirs, t_param), (ours, param)):
            opt.zero_grad()
            (p ** 2).sum().backward()
            opt.step()
    # torch's into ours: the next steps agree
    ours.load_state_dict(_torch_state_dict_as_numpy(theirs.state_dict()))
    # ours into a fresh torch optimizer
    t_copy = torch.tensor(param.numpy(), requires_grad=True)
    resumed = getattr(torch.optim, name)([t_copy], lr=0.5)
    saved = ours.state_dict()
    resumed.load_state_dict({"state": {i: {k: torch.tensor(v) for k, v in s.items()} for i, s in saved["state"].items()},
                             "param_groups": saved["param_groups"]})
    assert resumed.param_groups[0]["lr"] == 0.1
    for opt, p in ((theirs, t_param), (resumed, t_copy)):
        opt.zero_grad()
        (p ** 2).sum().backward()
        opt.step()
    ours.zero_grad()
    (param ** 2).sum().backward()
    ours.step()
    np.testing.assert_allclose(param.numpy(), t_param.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(t_copy.detach().numpy(), t_param.detach().numpy(), rtol=1e-12)


def test_adam_with_decoupled_weight_decay_is_adamw_as_in_torch():
    values = np.random.default_rng(1).standard_normal(4)
    params = [tr.tensor(values, dtype=tr.float64, requires_grad=True) for _ in range(2)]
    opts = [tr.optim.Adam([params[0]], lr=0.1, weight_decay=0.1, decoupled_weight_decay=True),
            tr.optim.AdamW([params[1]], lr=0.1, weight_decay=0.1)]
    for _ in range(3):
        for p, opt in zip(params, opts):
            (p ** 3).sum().backward()
            opt.step()
            opt.zero_grad()
    np.testing.assert_array_equal(params[0].numpy(), params[1].numpy())


def test_differentiable_updates_are_refused_by_name():
    with pytest.raises(ValueError, match="SGD: differentiable=True"):
        tr.optim.SGD([tr.zeros(2, requires_grad=True)], lr=0.1, differentiable=True)
    tr.optim.Adam([tr.zeros(2, requires_grad=True)], fused=True, capturable=True)  # implementation flags: accepted
