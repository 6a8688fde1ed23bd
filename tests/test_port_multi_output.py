"""PyTorch code ported to tinygrad_rnn around the sequence layers, whose fused passes give output, h_n and
c_n from one graph node: every idiom runs with torch and with tinygrad_rnn on the same float64 weights
and data, and every number is compared to 1e-10.

Each check is `fn(lib, make, model)`: `lib` is torch or tinygrad_rnn, `make(array, grad=False)` a float64
tensor of that library, `model` that library's copy of the module. It returns what is compared: tensors,
numbers, strings, None, or (nested) tuples, lists and dicts of them.
"""
import threading

import numpy as np
import pytest

import tinygrad_rnn as tr

ATOL = 1e-10
RNG = np.random.default_rng(0)
X = RNG.standard_normal((5, 3, 4))          # (T, B, I)
H0 = RNG.standard_normal((1, 3, 6))
C0 = RNG.standard_normal((1, 3, 6))
G_H, G_C = RNG.standard_normal((1, 3, 6)), RNG.standard_normal((1, 3, 6))


def layers(torch, kind="LSTM", *args, **kwargs):
    """(torch's layer, ours) with the same float64 weights, copied through the state_dict."""
    theirs = getattr(torch.nn, kind)(*args, **kwargs).double()
    ours = getattr(tr.nn, kind)(*args, dtype=tr.float64, **kwargs)
    ours.load_state_dict({name: value.detach().numpy() for name, value in theirs.state_dict().items()})
    return theirs, ours


def makers(torch):
    def torch_tensor(array, grad=False):
        return torch.tensor(np.asarray(array), dtype=torch.float64, requires_grad=grad)

    def our_tensor(array, grad=False):
        return tr.tensor(np.asarray(array), dtype=tr.float64, requires_grad=grad)
    return torch_tensor, our_tensor


def assert_same(theirs, ours, what="result"):
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(theirs) == list(ours), f"{what}: keys {list(ours)}"
        for key in theirs:
            assert_same(theirs[key], ours[key], f"{what}[{key!r}]")
    elif isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(theirs) == len(ours), f"{what}: {ours!r:.200}"
        for k, (a, b) in enumerate(zip(theirs, ours)):
            assert_same(a, b, f"{what}[{k}]")
    elif theirs is None or isinstance(theirs, (str, bool)):
        assert theirs == ours, f"{what}: torch {theirs!r}, ours {ours!r}"
    else:
        expected = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
        assert ours is not None, f"{what}: torch gives {expected}, ours None"
        got = ours.numpy() if isinstance(ours, tr.Tensor) else np.asarray(ours)
        assert got.shape == expected.shape, f"{what}: shape {got.shape}, torch {expected.shape}"
        np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL, err_msg=what)


def compare(torch, fn, theirs, ours):
    torch_tensor, our_tensor = makers(torch)
    assert_same(fn(torch, torch_tensor, theirs), fn(tr, our_tensor, ours))


def grads(model):
    return [p.grad for p in model.parameters()]


def split_state(state):
    return state if isinstance(state, tuple) else (state, None)


# ----------------------------------------------------------------------------- which outputs a loss reads

LOSSES = {
    "h_n": lambda o, h, c: (h * h).sum(),
    "c_n": lambda o, h, c: (c * c * c).sum(),
    "output[-1]": lambda o, h, c: (o[-1] ** 2).sum(),
    "h_n * c_n": lambda o, h, c: (h * c).sum(),
    "output, h_n and c_n": lambda o, h, c: (o * o).sum() + h.sum() + (0.0 if c is None else (c * 2.0).sum()),
}


@pytest.mark.parametrize("kind, loss", [(kind, loss) for kind in ("LSTM", "GRU", "RNN") for loss in LOSSES
                                        if kind == "LSTM" or loss in ("output[-1]", "h_n", "output, h_n and c_n")])
def test_a_loss_on_any_outputs(torch, kind, loss):

    def run(lib, make, model):
        x, h0 = make(X, True), make(H0, True)
        o, state = model(x, (h0, make(C0, True)) if kind == "LSTM" else h0)
        h, c = split_state(state)
        LOSSES[loss](o, h, c).backward()
        return [x.grad, h0.grad] + grads(model)
    compare(torch, run, *layers(torch, kind, 4, 6))


def test_retained_gradients_of_output_h_n_and_c_n(torch):
    def run(lib, make, model):
        x = make(X, True)
        o, (h, c) = model(x, (make(H0, True), make(C0, True)))
        for t in (o, h, c):
            t.retain_grad()
        ((o ** 2).sum() + (h ** 3).sum() + (c * h).sum()).backward()
        return o.grad, h.grad, c.grad, x.grad, str(o.retains_grad)
    compare(torch, run, *layers(torch, "LSTM", 4, 6))


def test_hooks_that_change_each_outputs_gradient(torch):
    def run(lib, make, model):
        x = make(X, True)
        o, (h, c) = model(x)
        seen = []
        o.register_hook(lambda g: g * 2.0)
        h.register_hook(lambda g: seen.append(g.sum().item()) or g * 0.0)
        c.register_hook(lambda g: g + 1.0)
        ((o ** 2).sum() + (h ** 3).sum() + (c * h).sum()).backward()
        return [x.grad, seen] + grads(model)
    compare(torch, run, *layers(torch, "LSTM", 4, 6))


def test_autograd_grad_of_h_n_and_c_n_with_grad_outputs_and_unused_inputs(torch):
    def run(lib, make, model):
        x, h0, unused = make(X, True), make(H0, True), make(H0, True)
        _, (h, c) = model(x, (h0, make(C0)))
        found = lib.autograd.grad(outputs=[h, c], inputs=[x, h0, model.weight_ih_l0, unused],
                                  grad_outputs=[make(G_H), make(G_C)], allow_unused=True, retain_graph=True)
        with pytest.raises(RuntimeError):
            lib.autograd.grad(c.sum(), [x, unused])
        return found
    compare(torch, run, *layers(torch, "LSTM", 4, 6))


def test_second_derivatives_through_the_layer(torch):
    """create_graph=True, then a backward of the gradient; and a Hessian-vector product."""
    def run(lib, make, model):
        x = make(X, True)
        o, (h, c) = model(x)
        (gx,) = lib.autograd.grad((h ** 2).sum() + (c * o[-1]).sum(), x, create_graph=True)
        (gx ** 2).sum().backward()
        first = [gx, x.grad] + grads(model)
        model.zero_grad()
        o, (h, c) = model(make(X))
        (c ** 2).sum().backward(create_graph=True)
        g_w = model.weight_hh_l0.grad
        (hvp,) = lib.autograd.grad((g_w * make(np.ones(g_w.shape))).sum(), model.weight_ih_l0)
        model.zero_grad()
        return first + [g_w, hvp]
    compare(torch, run, *layers(torch, "LSTM", 4, 6))


def test_retain_graph_twice_and_the_inputs_argument(torch):
    def run(lib, make, model):
        x = make(X, True)
        o, (h, c) = model(x)
        loss = (c ** 2).sum() + h.sum()
        loss.backward(retain_graph=True)
        loss.backward(retain_graph=True)
        loss.backward()
        three = [x.grad] + grads(model)
        model.zero_grad()
        x = make(X, True)
        o, (h, c) = model(x)
        (c.sum() + o.sum()).backward(inputs=[x, model.weight_hh_l0])
        return three + [x.grad, model.weight_hh_l0.grad, model.weight_ih_l0.grad]
    compare(torch, run, *layers(torch, "LSTM", 4, 6))


@pytest.mark.parametrize("which", ["output", "h_n", "c_n"])
def test_backward_inputs_that_are_not_leaves_get_their_gradient(torch, which):
    """backward(inputs=[t]) with t made by the layer fills t.grad (it stayed None)."""
    def run(lib, make, model):
        x = make(X, True)
        o, (h, c) = model(x)
        target = {"output": o, "h_n": h, "c_n": c}[which]
        loss = (o ** 2).sum() + (c * h).sum()
        loss.backward(inputs=[target], retain_graph=True)
        loss.backward(inputs=[target, x])
        return target.grad, x.grad, str(target.retains_grad), grads(model)
    compare(torch, run, *layers(torch, "LSTM", 4, 6))


def test_backward_inputs_on_a_pass_node_itself():
    x = tr.tensor(X, dtype=tr.float64, requires_grad=True)
    cell = tr.nn.LSTM(4, 6, dtype=tr.float64)
    _, h_n, c_n = tr.nn.fused.fused_pass("lstm", x, None, None, cell.weight_ih_l0, cell.weight_hh_l0)
    (h_n.sum() * 2.0 + c_n.sum()).backward(inputs=[h_n, c_n])
    np.testing.assert_array_equal(h_n.grad.numpy(), np.full((3, 6), 2.0))
    np.testing.assert_array_equal(c_n.grad.numpy(), np.ones((3, 6)))
    assert x.grad is None and h_n.retains_grad  # as torch, which calls retain_grad on such inputs


def test_a_second_backward_through_a_freed_pass_says_so():
    """It raised an AttributeError ('output_shapes') from the engine instead."""
    lstm = tr.nn.LSTM(4, 6, dtype=tr.float64)
    x = tr.tensor(X, dtype=tr.float64, requires_grad=True)
    _output, h_n, c_n = tr.nn.fused.fused_pass("lstm", x, None, None, lstm.weight_ih_l0, lstm.weight_hh_l0)
    h_n.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        c_n.sum().backward()
    assert c_n.named("cell").name == "cell"  # naming an output of a freed node works
    o, (h, c) = lstm(x)
    h.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        (c * o[-1]).sum().backward()


# ----------------------------------------------------------------------------- torch.func


def test_func_transforms_of_an_lstm(torch):
    small = X[:2, :1]

    def run(lib, make, model):
        func = lib.func

        def states(x):
            _, (h, c) = model(x)
            return h, c

        (h, c), vjp_fn = func.vjp(states, make(X))
        results = [h, c, vjp_fn((make(G_H), make(G_C)))]
        results.append(func.jvp(lambda x: (states(x)[1] * states(x)[0]).sum(0), (make(X),),
                                (make(np.ones(X.shape)),)))
        results.append(func.grad(lambda x: (states(x)[1] ** 2).sum() + model(x)[0][-1].sum())(make(X)))
        results.append(func.jacrev(lambda x: states(x)[1][0, 0])(make(X[:, :2])))
        results.append(func.hessian(lambda x: (states(x)[1] ** 2).sum())(make(small)))
        results.append(func.grad(lambda x: model(x)[0].sum(), has_aux=False)(make(X)))
        return results
    compare(torch, run, *layers(torch, "LSTM", 4, 6))


def test_func_transforms_over_a_dict_of_parameters(torch):
    """grad(loss)(params, x) with params a dict, torch.func's pytrees: it was refused ('args[0] must be a
    Tensor; got dict')."""
    def run(lib, make, model):
        func = lib.func
        params = {name: make(p.detach().numpy() * 1.1) for name, p in model.named_parameters()}

        def loss(params, x):
            o, h = func.functional_call(model, params, (x,))
            return (o ** 2).sum() + (h ** 3).sum()

        def last(params):
            return func.functional_call(model, params, (make(X[:3, :2]),))

        out, vjp_fn = func.vjp(last, params)
        ones = {name: make(np.ones(p.shape)) for name, p in params.items()}
        return [func.grad(loss)(params, make(X)),
                func.grad_and_value(loss, argnums=(0, 1))(params, make(X)),
                out, vjp_fn((make(np.ones((3, 2, 5))), make(np.ones((1, 2, 5))))),
                func.jacrev(lambda p: last(p)[1].sum())(params),
                func.jvp(lambda p: last(p)[1], (params,), (ones,))]
    compare(torch, run, *layers(torch, "GRU", 4, 5))


# ----------------------------------------------------------------------------- module hooks


def stacked(lib, lstm):
    """Sequential(LSTM, last output, Linear) around the given LSTM (Linear's weights fixed)."""
    class LastStep(lib.nn.Module):
        def forward(self, result):
            return result[0][-1]

    dtype = tr.float64 if lib is tr else lib.float64
    linear = lib.nn.Linear(6, 2, dtype=dtype)
    with lib.no_grad():
        linear.weight.copy_(lib.tensor(np.arange(12.0).reshape(2, 6) / 10 - 0.5, dtype=dtype))
        linear.bias.copy_(lib.tensor(np.array([0.3, -0.2]), dtype=dtype))
    return lib.nn.Sequential(lstm, LastStep(), linear)


def shapes(value):
    if value is None:
        return "None"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(shapes(v) for v in value) + ")"
    return str(tuple(value.shape))


def test_module_hooks_on_an_lstm_and_a_sequential_holding_it(torch):
    def run(lib, make, lstm):
        model = stacked(lib, lstm)
        log = []

        def backward_hook(module, grad_input, grad_output):
            log.extend([f"backward {shapes(grad_input)} {shapes(grad_output)}", grad_output[0], grad_input[0]])
            return (grad_input[0] * 3.0,) + tuple(grad_input[1:])

        def backward_pre_hook(module, grad_output):
            log.extend([f"backward pre {shapes(grad_output)}", grad_output[0]])
            return (grad_output[0] * 2.0,) + tuple(grad_output[1:])

        handles = [
            lstm.register_forward_pre_hook(lambda m, args: log.append(f"pre {shapes(args)}")),
            lstm.register_forward_hook(lambda m, args, out: log.append(f"forward {shapes(args)} {shapes(out)}")),
            lstm.register_full_backward_hook(backward_hook),
            lstm.register_full_backward_pre_hook(backward_pre_hook),
            model.register_full_backward_hook(lambda m, gi, go: log.append(f"outer {shapes(gi)} {shapes(go)}")),
            model[2].register_full_backward_pre_hook(lambda m, go: log.append(go[0])),
        ]
        x = make(X, True)
        (model(x) ** 2).sum().backward()
        for handle in handles:
            handle.remove()
        log.append(x.grad)
        model.zero_grad()
        x = make(X, True)
        (model(x) ** 2).sum().backward()
        return log + [x.grad]
    compare(torch, run, *layers(torch, "LSTM", 4, 6))


def test_a_backward_hook_when_the_loss_reads_c_n_only(torch):
    def run(lib, make, lstm):
        log = []
        handle = lstm.register_full_backward_hook(
            lambda m, gi, go: log.extend([shapes(gi), shapes(go)] + [g for g in gi if g is not None]))
        x = make(X, True)
        _, (_, c) = lstm(x, (make(H0, True), make(C0, True)))
        (c ** 2).sum().backward()
        handle.remove()
        return log + [x.grad]
    compare(torch, run, *layers(torch, "LSTM", 4, 6))


def test_a_forward_hook_that_replaces_the_output(torch):
    def run(lib, make, lstm):
        handle = lstm.register_forward_hook(lambda m, args, out: (out[0] * 2.0, out[1]))
        x = make(X, True)
        o, (_, c) = lstm(x)
        ((o ** 2).sum() + c.sum()).backward()
        handle.remove()
        return o, x.grad
    compare(torch, run, *layers(torch, "LSTM", 4, 6))


# ----------------------------------------------------------------------------- layer configurations

LENGTHS = [5, 3, 2]


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_two_bidirectional_layers_with_lengths_against_packed_sequences(torch, kind, batch_first):
    def run(lib, make, model):
        rng = np.random.default_rng(5)
        x = make(X.transpose(1, 0, 2) if batch_first else X, True)
        h0 = make(rng.standard_normal((4, 3, 6)), True)
        hx = (h0, make(rng.standard_normal((4, 3, 6)), True)) if kind == "LSTM" else h0
        if lib is tr:
            o, state = model(x, hx, lengths=LENGTHS)
        else:
            packed = lib.nn.utils.rnn.pack_padded_sequence(x, LENGTHS, batch_first=batch_first)
            o, state = model(packed, hx)
            o, _ = lib.nn.utils.rnn.pad_packed_sequence(o, batch_first=batch_first, total_length=5)
        h, c = split_state(state)
        ((o ** 2).sum() + (h ** 3).sum() + (0.0 if c is None else (c * h).sum())).backward()
        return [o, h, c, x.grad, h0.grad] + grads(model)
    compare(torch, run, *layers(torch, kind, 4, 6, num_layers=2, bidirectional=True, batch_first=batch_first))


def test_packed_input_without_initial_states(torch):
    def run(lib, make, model):
        x = make(X, True)
        o, (h, c) = model(lib.nn.utils.rnn.pack_padded_sequence(x, LENGTHS))
        o, lengths = lib.nn.utils.rnn.pad_packed_sequence(o)
        ((o ** 2).sum() + (c ** 3).sum()).backward()
        return [o, h, c, x.grad, [int(n) for n in lengths]] + grads(model)
    compare(torch, run, *layers(torch, "LSTM", 4, 6, bidirectional=True))


def test_proj_size_and_unbatched_input(torch):
    def run(lib, make, model):
        x = make(X, True)
        o, (h, c) = model(x)
        ((o ** 2).sum() + (h ** 3).sum() + (c * c).sum()).backward()
        first = [o, h, c, x.grad] + grads(model)
        model.zero_grad()
        x = make(X[:, 0], True)
        o, (h, c) = model(x, (make(np.ones((4, 3))), make(np.ones((4, 6)))))
        ((o ** 2).sum() + (c * c).sum()).backward()
        return first + [o, h, c, x.grad] + grads(model)
    compare(torch, run, *layers(torch, "LSTM", 4, 6, proj_size=3, num_layers=2, bidirectional=True))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_parameter_names_and_order(torch, kind):
    theirs, ours = layers(torch, kind, 4, 6, num_layers=2, bidirectional=True)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())


# ----------------------------------------------------------------------------- threads and in-place changes


def test_no_grad_in_one_thread_while_another_records(torch):
    theirs, ours = layers(torch, "LSTM", 4, 6)
    x = torch.tensor(X, requires_grad=True)
    _, (h, c) = theirs(x)
    (h.sum() + c.sum()).backward()
    expected = x.grad.numpy()
    barrier, errors = threading.Barrier(2), []

    def recorder():
        for _ in range(10):
            x = tr.tensor(X, dtype=tr.float64, requires_grad=True)
            barrier.wait(timeout=30)
            _, (h, c) = ours(x)
            (h.sum() + c.sum()).backward()
            np.testing.assert_allclose(x.grad.numpy(), expected, rtol=0, atol=ATOL)

    def evaluator():
        for _ in range(10):
            barrier.wait(timeout=30)
            with tr.inference_mode():
                _, (h, _) = ours(tr.tensor(X, dtype=tr.float64))
                assert h.grad_fn is None and not h.requires_grad
            with tr.no_grad():
                o, _ = ours(tr.tensor(X, dtype=tr.float64))
                assert o.grad_fn is None

    def guarded(fn):
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported below, in the test's own thread
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=guarded, args=(fn,)) for fn in (recorder, evaluator)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


IN_PLACE = {
    "a weight": lambda lib, x, h0, lstm: lstm.weight_hh_l0.mul_(1.0),
    "the input": lambda lib, x, h0, lstm: x.add_(1.0),
    "h0, read through a slice": lambda lib, x, h0, lstm: h0.add_(1.0),
    "a detached copy of the input": lambda lib, x, h0, lstm: x.detach().add_(1.0),
}


@pytest.mark.parametrize("change", list(IN_PLACE))
def test_an_in_place_change_of_a_saved_tensor_is_refused_in_backward(torch, change):
    def run(lib, make, lstm):
        x, h0 = make(X, True), make(H0, True)
        _, (h, c) = lstm(x, (h0, make(C0)))
        with lib.no_grad():
            IN_PLACE[change](lib, x, h0, lstm)
        with pytest.raises(RuntimeError, match="modified (by an inplace operation|inplace)"):  # torch words a view so
            (h.sum() + c.sum()).backward()
        return "refused"
    theirs, ours = layers(torch, "LSTM", 4, 6)
    compare(torch, run, theirs, ours)


def test_the_error_names_the_tensor_and_the_view_it_was_read_through():
    lstm = tr.nn.LSTM(4, 6, dtype=tr.float64)
    h0 = tr.tensor(H0, dtype=tr.float64, requires_grad=True).named("h0")
    _, (h, _) = lstm(tr.tensor(X, dtype=tr.float64), (h0, tr.tensor(C0, dtype=tr.float64)))
    with tr.no_grad():
        h0.add_(1.0)
    with pytest.raises(RuntimeError, match=r"a tensor of shape \(3, 6\) \(which shares memory with tensor 'h0' "
                                           r"of shape \(1, 3, 6\)\), input 1 of lstm_fused, is at version 1"):
        h.sum().backward()
    _, (h, _) = lstm(tr.tensor(X, dtype=tr.float64))
    lstm.weight_hh_l0.data.add_(1.0)  # .data is cut from the version counter, as in torch
    h.sum().backward()


@pytest.mark.parametrize("change", ["transpose", "slice", "reshape", "detach"])
def test_views_share_the_version_counter_of_their_base(torch, change):
    """w.T @ a saved the view w.T; changing w in place gave a wrong gradient silently."""
    def run(lib, make, _):
        w, a = make(np.ones((3, 3)), True), make(np.ones((3, 2)), True)
        view = {"transpose": lambda: w.T, "slice": lambda: w[1:], "reshape": lambda: w.reshape(9, 1)[:3].T.T,
                "detach": lambda: w}[change]()
        y = (view @ a[:view.shape[1]]).sum() if change != "reshape" else (view * a[:3, :1]).sum()
        with lib.no_grad():
            (w.detach() if change == "detach" else w).mul_(2.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.backward()
        return str(w._version)
    compare(torch, run, None, None)


@pytest.mark.parametrize("op", ["sigmoid", "tanh", "exp"])
def test_an_in_place_change_of_an_output_its_op_reads_back_is_refused(torch, op):
    """sigmoid(w) changed under no_grad: the backward read the changed output and gave a wrong gradient."""
    def run(lib, make, _):
        w = make(np.linspace(-1.0, 1.0, 6).reshape(2, 3), True)
        y = getattr(w, op)()
        with lib.no_grad():
            y.mul_(2.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
        y = getattr(w, op)()
        # a change that is refused changes nothing, the version included (torch says RuntimeError, we ValueError)
        with lib.no_grad(), pytest.raises((RuntimeError, ValueError)):
            y.add_(make(np.ones(4)))
        y.sum().backward()
        return w.grad
    compare(torch, run, None, None)


def test_a_detached_state_does_not_keep_the_graph_it_was_cut_from_alive():
    """repackage_hidden detaches h_n each batch: sharing the version counter must not chain the graphs."""
    import gc
    import weakref
    lstm = tr.nn.LSTM(4, 6, dtype=tr.float64)
    _, (h, c) = lstm(tr.tensor(X, dtype=tr.float64, requires_grad=True))
    node = weakref.ref(h.grad_fn)
    h, c = h.detach(), c.detach()
    gc.collect()
    assert node() is None
    with tr.no_grad():
        h.zero_()  # still counted: the version is shared without the graph
    assert h._version == 1


def test_an_optimizer_step_between_forward_and_backward_is_refused(torch):
    def run(lib, make, model):
        optimizer = lib.optim.SGD(model.parameters(), lr=0.1)
        o, (_, c) = model(make(X))
        (o.sum() + c.sum()).backward(retain_graph=True)
        optimizer.step()
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            (o.sum() + c.sum()).backward()
        return "refused"
    compare(torch, run, *layers(torch, "LSTM", 4, 6))


# ----------------------------------------------------------------------------- a training script's idioms

VOCAB, EMBED, HIDDEN = 11, 5, 6
TOKENS = RNG.integers(0, VOCAB, (9, 3))
TARGETS = RNG.integers(0, VOCAB, (9, 3))


def language_model(lib, kind="LSTM", dropout=0.0):
    """word_language_model's RNNModel, the parts these idioms touch."""
    dtype = tr.float64 if lib is tr else lib.float64

    class Model(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = lib.nn.Dropout(dropout)
            self.encoder = lib.nn.Embedding(VOCAB, EMBED, dtype=dtype)
            self.rnn = getattr(lib.nn, kind)(EMBED, HIDDEN, 2, dropout=dropout, dtype=dtype)
            self.decoder = lib.nn.Linear(HIDDEN, VOCAB, dtype=dtype)

        def forward(self, x, hidden):
            output, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
            return self.decoder(self.drop(output)).view(-1, VOCAB), hidden

        def init_hidden(self, batch):
            weight = next(self.parameters())
            if kind == "LSTM":
                return weight.new_zeros(2, batch, HIDDEN), weight.new_zeros(2, batch, HIDDEN)
            return weight.new_zeros(2, batch, HIDDEN)
    return Model()


def repackage_hidden(lib, h):
    return h.detach() if isinstance(h, lib.Tensor) else tuple(repackage_hidden(lib, v) for v in h)


def models(torch, kind, dropout):
    theirs, ours = language_model(torch, kind, dropout), language_model(tr, kind, dropout)
    ours.load_state_dict({name: value.numpy() for name, value in theirs.state_dict().items()})
    return theirs, ours


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_hand_written_sgd_with_clipping_and_repackaged_hidden_states(torch, kind):
    def run(lib, make, model):
        criterion, lr, norms, losses = lib.nn.CrossEntropyLoss(), 1.0, [], []
        model.train()
        hidden = model.init_hidden(3)
        for _ in range(2):
            for i in range(0, len(TOKENS), 3):
                data, targets = lib.tensor(TOKENS[i:i + 3]), lib.tensor(TARGETS[i:i + 3]).reshape(-1)
                hidden = repackage_hidden(lib, hidden)
                model.zero_grad()
                output, hidden = model(data, hidden)
                loss = criterion(output, targets)
                loss.backward()
                norms.append(lib.nn.utils.clip_grad_norm_(model.parameters(), 0.25))
                losses.append(loss.item())
                for p in model.parameters():
                    p.data.add_(p.grad, alpha=-lr)
        return [norms, losses, str(norms[0].dtype).replace("torch.", "")] + list(model.parameters())
    compare(torch, run, *models(torch, kind, 0.0))


def test_evaluation_under_no_grad_with_dropout_switched_off(torch):
    def run(lib, make, model):
        model.eval()
        criterion, total = lib.nn.CrossEntropyLoss(), 0.0
        hidden = model.init_hidden(3)
        with lib.no_grad():
            for i in range(0, len(TOKENS), 3):
                output, hidden = model(lib.tensor(TOKENS[i:i + 3]), hidden)
                hidden = repackage_hidden(lib, hidden)
                total += 3 * criterion(output, lib.tensor(TARGETS[i:i + 3]).reshape(-1)).item()
        return total, str(model.training), str(model.rnn.training), str(output.requires_grad)
    compare(torch, run, *models(torch, "LSTM", 0.4))


def test_zero_grad_set_to_none_and_state_dict_strict_false(torch):
    def run(lib, make, model):
        optimizer = lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        out, hidden = model(lib.tensor(TOKENS[:2]), model.init_hidden(3))
        out.sum().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        cleared = str(all(p.grad is None for p in model.parameters()))
        out, _ = model(lib.tensor(TOKENS[:2]), repackage_hidden(lib, hidden))
        out.sum().backward()
        optimizer.zero_grad(set_to_none=False)
        zeroed = [p.grad for p in model.parameters()]
        optimizer.zero_grad()
        default = str(all(p.grad is None for p in model.parameters()))
        partial = {"decoder.weight": model.decoder.weight.detach() * 2, "extra.weight": model.decoder.bias.detach()}
        result = model.load_state_dict(partial, strict=False)
        return [cleared, zeroed, default, list(result.missing_keys), list(result.unexpected_keys),
                model.decoder.weight, list(model.state_dict())]
    compare(torch, run, *models(torch, "LSTM", 0.0))
