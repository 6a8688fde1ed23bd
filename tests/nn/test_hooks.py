"""Module hooks against torch: which hooks run, in what order, with what arguments (shapes and
values), and what a hook's return value changes."""
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np
from tests.nn.parity import ATOL, backpropagate_both, copy_torch_weights, pair

nn = tr.nn


def values(items):
    """A hook's tuple of tensors (or other values) as host arrays, None kept."""
    out = []
    for item in items:
        if item is None or not hasattr(item, "shape"):
            out.append(item)
        else:
            out.append(item.detach().cpu().numpy() if hasattr(item, "detach") and not isinstance(item, tr.Tensor)
                       else to_np(item))
    return out


def record_hooks(model, log):
    """Every hook kind on every module of `model`, each appending (kind, module name, values) to log."""
    for name, module in model.named_modules():
        module.register_forward_pre_hook(lambda m, args, name=name: log.append(("pre", name, values(args))))
        module.register_forward_hook(lambda m, args, out, name=name: log.append(
            ("forward", name, values(args) + values(out if isinstance(out, tuple) else (out,)))))
        module.register_full_backward_hook(lambda m, gi, go, name=name: log.append(
            ("backward", name, values(gi) + ["|"] + values(go))))


def assert_same_log(ours, theirs):
    assert [(kind, name) for kind, name, _ in ours] == [(kind, name) for kind, name, _ in theirs]
    for (kind, name, mine), (_, _, other) in zip(ours, theirs):
        assert len(mine) == len(other), (kind, name)
        for a, b in zip(mine, other):
            if isinstance(b, np.ndarray):
                assert isinstance(a, np.ndarray), (kind, name, a)
                np.testing.assert_allclose(a, b, rtol=0, atol=ATOL, err_msg=f"{kind} {name}")
            elif not isinstance(b, tuple):  # an LSTM's (h, c) pair, compared through its layer
                assert a == b, (kind, name)


def run_both(torch, ours, theirs, x_shape, seed):
    copy_torch_weights(ours, theirs)
    ours_log, theirs_log = [], []
    record_hooks(ours, ours_log)
    record_hooks(theirs, theirs_log)
    rng = np.random.default_rng(seed)
    x, tx = pair(torch, rng.standard_normal(x_shape), "cpu")
    y, ty = ours(x), theirs(tx)
    if isinstance(y, tuple):
        y, ty = y[0], ty[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about hooks on modules whose inputs need no gradient
        backpropagate_both(torch, [(y, ty)], rng)
    assert_same_log(ours_log, theirs_log)
    return ours_log


def test_linear_hooks_match_torch(torch):
    torch.manual_seed(0)
    log = run_both(torch, nn.Linear(3, 2, dtype="float64"), torch.nn.Linear(3, 2), (4, 3), 0)
    assert [kind for kind, _, _ in log] == ["pre", "forward", "backward"]


def test_sequential_hooks_match_torch(torch):
    torch.manual_seed(1)
    ours = nn.Sequential(nn.Linear(3, 4, dtype="float64"), nn.Dropout(0.0), nn.Linear(4, 2, dtype="float64"))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.0), torch.nn.Linear(4, 2))
    log = run_both(torch, ours, theirs, (5, 3), 1)
    assert [(kind, name) for kind, name, _ in log][-4:] == [("backward", "2"), ("backward", "1"),
                                                             ("backward", "0"), ("backward", "")]


@pytest.mark.parametrize("fused", [True, False])
def test_lstm_hooks_match_torch(torch, fused):
    torch.manual_seed(2)
    ours = nn.LSTM(3, 4, num_layers=2, fused=fused, dtype="float64")
    theirs = torch.nn.LSTM(3, 4, num_layers=2)
    log = run_both(torch, ours, theirs, (5, 2, 3), 2)
    backward = [v for kind, _, v in log if kind == "backward"]
    assert len(backward) == 1 and backward[0][1] == "|" and backward[0][-1] is None  # (h, c) is no Tensor


def test_hook_return_values_replace_args_output_and_grad_input():
    linear = nn.Linear(2, 2, dtype="float64")
    x = tr.Tensor(np.ones((3, 2)), dtype="float64", requires_grad=True)
    plain = linear(x)
    with linear.register_forward_pre_hook(lambda m, args: args[0] * 2):  # a bare value: one new arg
        doubled = linear(x).numpy()
    np.testing.assert_allclose(doubled, linear(x * 2).numpy())
    handle = linear.register_forward_hook(lambda m, args, out: out + 1)
    np.testing.assert_allclose(linear(x).numpy(), plain.numpy() + 1)
    handle.remove()
    np.testing.assert_allclose(linear(x).numpy(), plain.numpy())
    handle = linear.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0,))
    linear(x).sum().backward()
    assert not to_np(x.grad).any() and to_np(linear.weight.grad).any()  # only grad_input is replaced
    handle.remove()
    linear.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="invalid number of grad_input, got 2, but expected 1"):
        linear(x).sum().backward()


def test_hooks_run_in_registration_order_and_prepend_goes_first():
    linear = nn.Linear(2, 2)
    calls = []
    linear.register_forward_hook(lambda *a: calls.append("first"))
    linear.register_forward_hook(lambda *a: calls.append("second"))
    linear.register_forward_hook(lambda *a: calls.append("zeroth"), prepend=True)
    linear.register_forward_pre_hook(lambda m, args, kwargs: calls.append(("pre", kwargs)), with_kwargs=True)
    linear(tr.ones(1, 2))
    assert calls == [("pre", {}), "zeroth", "first", "second"]


def test_backward_hook_with_several_inputs_and_outputs_matches_torch(torch):
    """Unused outputs get None in grad_output; inputs whose gradient never came get zeros, as torch."""
    class Two:
        def forward(self, a, b, scale=1.0):
            return a * 2, b * 3, (a + b) * scale

    ours_module = type("Two", (Two, nn.Module), {})()
    theirs_module = type("Two", (Two, torch.nn.Module), {})()
    ours_log, theirs_log = [], []
    for module, log in ((ours_module, ours_log), (theirs_module, theirs_log)):
        module.register_full_backward_hook(lambda m, gi, go, log=log: log.append(
            ("backward", "", values(gi) + ["|"] + values(go))))
    for uses in ((0,), (2, 2, 1)):
        a, ta = pair(torch, np.arange(2.0), "cpu")
        b, tb = pair(torch, np.arange(2.0) + 5, "cpu")
        outs, touts = ours_module(a, b.detach()), theirs_module(ta, tb.detach())
        sum(outs[k].sum() for k in uses).backward()
        sum(touts[k].sum() for k in uses).backward()
    assert_same_log(ours_log, theirs_log)


def test_no_backward_hook_call_under_no_grad_and_no_graph_without_hooks():
    linear = nn.Linear(2, 2)
    calls = []
    linear.register_full_backward_hook(lambda *a: calls.append(a))
    with tr.no_grad():
        assert linear(tr.ones(1, 2)).grad_fn is None
    y = nn.Linear(2, 2)(tr.ones(1, 2))
    assert y.grad_fn.op != "hook_output"
    assert calls == []


def test_a_hooked_module_differentiates_twice_and_in_forward_mode():
    """The hook's identity nodes pass gradients of gradients and forward-mode tangents unchanged."""
    def second_order(hooked):
        tr.manual_seed(3)
        linear = nn.Linear(3, 2, dtype="float64")
        if hooked:
            linear.register_full_backward_hook(lambda m, gi, go: None)
        x = tr.Tensor(np.arange(6.0).reshape(2, 3) / 7, dtype="float64", requires_grad=True)
        gx, = tr.autograd.grad((linear(x).tanh() ** 2).sum(), x, create_graph=True)
        (gx ** 2).sum().backward()
        return to_np(x.grad), to_np(linear.weight.grad), linear

    for plain, hooked in zip(second_order(False)[:2], second_order(True)[:2]):
        np.testing.assert_allclose(hooked, plain, rtol=0, atol=1e-12)
    linear = second_order(True)[2]
    x = tr.Tensor(np.ones((2, 3)), dtype="float64")
    _, tangent = tr.func.jvp(linear, (x,), (tr.Tensor(np.ones((2, 3)), dtype="float64"),))
    np.testing.assert_allclose(to_np(tangent), np.ones((2, 3)) @ linear.weight.numpy().T, atol=1e-12)
