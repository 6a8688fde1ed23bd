"""Fused recurrent passes: PyTorch parity, gradchecks, composed layers, checkpointing, memory, graph."""
import ctypes
import shutil
import subprocess
import tracemalloc

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np
from tinygrad_rnn.graph import walk
from tinygrad_rnn.nn import fused
from tinygrad_rnn.nn import fused_kernels as K
from tinygrad_rnn.nn import persistent_kernels as PK
from tinygrad_rnn.tensor import Function

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
MODES = list(GATES)


def make_case(mode, T=5, B=3, I=4, H=3, seed=0, bias=True):
    """Random float64 arrays for one pass and for the gradients fed into its outputs."""
    rng = np.random.default_rng(seed)
    G = GATES[mode]
    case = {"x": rng.standard_normal((T, B, I)), "h0": rng.standard_normal((B, H)),
            "c0": rng.standard_normal((B, H)) if mode == "lstm" else None,
            "w_ih": rng.standard_normal((G * H, I)) * 0.6, "w_hh": rng.standard_normal((G * H, H)) * 0.6,
            "b_ih": rng.standard_normal(G * H) * 0.5 if bias else None,
            "b_hh": rng.standard_normal(G * H) * 0.5 if bias else None,
            "dy": rng.standard_normal((T, B, H)), "dh_n": rng.standard_normal((B, H)),
            "dc_n": rng.standard_normal((B, H))}
    return case


INPUTS = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")


def run_ours(case, mode, device="cpu", **options):
    """Forward and backward of a fused pass; returns (outputs, gradients) as host arrays."""
    tensors = {k: None if case[k] is None else tr.Tensor(case[k], dtype="float64", device=device,
                                                          requires_grad=True) for k in INPUTS}
    out, h_n, c_n = fused.fused_pass(mode, *(tensors[k] for k in INPUTS), **options)
    loss = weighted(out, case["dy"], device) + weighted(h_n, case["dh_n"], device)
    if c_n is not None:
        loss = loss + weighted(c_n, case["dc_n"], device)
    loss.backward()
    outputs = [to_np(out), to_np(h_n)] + ([to_np(c_n)] if c_n is not None else [])
    grads = {k: to_np(t.grad) for k, t in tensors.items() if t is not None}
    return outputs, grads


def weighted(tensor, weights, device):
    return (tensor * tr.Tensor(weights, dtype="float64", device=device)).sum()


def run_torch(torch, case, mode, reverse=False, lengths=None):
    """The same pass with torch.nn.LSTM/GRU/RNN (the reverse half of a bidirectional layer)."""
    T, _, I = case["x"].shape
    H = case["h0"].shape[1]
    bias = case["b_ih"] is not None
    layer = {"lstm": lambda: torch.nn.LSTM(I, H, bias=bias, bidirectional=reverse),
             "gru": lambda: torch.nn.GRU(I, H, bias=bias, bidirectional=reverse),
             "rnn_tanh": lambda: torch.nn.RNN(I, H, bias=bias, bidirectional=reverse),
             "rnn_relu": lambda: torch.nn.RNN(I, H, bias=bias, nonlinearity="relu", bidirectional=reverse)}[mode]()
    suffix = "_reverse" if reverse else ""
    params = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}
    with torch.no_grad():
        for ours, theirs in params.items():
            if case[ours] is not None:
                for name in {theirs, theirs + suffix}:
                    getattr(layer, name).copy_(torch.tensor(case[ours]))
    directions = 2 if reverse else 1
    x = torch.tensor(case["x"], requires_grad=True)
    h0 = torch.tensor(np.stack([case["h0"]] * directions), requires_grad=True)
    c0 = torch.tensor(np.stack([case["c0"]] * directions), requires_grad=True) if mode == "lstm" else None
    packed = x if lengths is None else torch.nn.utils.rnn.pack_padded_sequence(
        x, torch.tensor(lengths), enforce_sorted=False)
    out, state = layer(packed, (h0, c0) if mode == "lstm" else h0)
    if lengths is not None:
        out = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)[0]
    d = 1 if reverse else 0
    out = out[..., d * H:(d + 1) * H]
    finals = [s[d] for s in (state if mode == "lstm" else (state,))]
    loss = (out * torch.tensor(case["dy"])).sum() + (finals[0] * torch.tensor(case["dh_n"])).sum()
    if mode == "lstm":
        loss = loss + (finals[1] * torch.tensor(case["dc_n"])).sum()
    loss.backward()
    grads = {"x": x.grad.numpy(), "h0": h0.grad.numpy()[d]}
    if c0 is not None:
        grads["c0"] = c0.grad.numpy()[d]
    for ours, theirs in params.items():
        if case[ours] is not None:
            grads[ours] = getattr(layer, theirs + suffix).grad.numpy()
    return [out.detach().numpy()] + [f.detach().numpy() for f in finals], grads


def assert_all_close(ours, theirs, atol=1e-10):
    outputs, grads = ours
    ref_outputs, ref_grads = theirs
    for k, (a, b) in enumerate(zip(outputs, ref_outputs)):
        np.testing.assert_allclose(a, b, atol=atol, rtol=0, err_msg=f"output {k}")
    assert set(grads) == set(ref_grads)
    for name in grads:
        np.testing.assert_allclose(grads[name], ref_grads[name], atol=atol, rtol=0, err_msg=f"d {name}")


# ----------------------------------------------------------------------------- parity


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lengths", [None, [5, 2, 1]], ids=["full", "lengths"])
def test_matches_torch(torch, device, mode, reverse, lengths):
    case = make_case(mode)
    ours = run_ours(case, mode, device, reverse=reverse, lengths=lengths)
    assert_all_close(ours, run_torch(torch, case, mode, reverse, lengths))


@pytest.mark.parametrize("mode", MODES)
def test_matches_torch_without_bias(torch, device, mode):
    case = make_case(mode, bias=False)
    assert_all_close(run_ours(case, mode, device), run_torch(torch, case, mode))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("every", [1, 2, 3, 7])
@pytest.mark.parametrize("lengths", [None, [7, 4, 1]], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_checkpointing_gives_the_same_gradients(device, mode, every, lengths, reverse):
    case = make_case(mode, T=7)
    plain = run_ours(case, mode, device, reverse=reverse, lengths=lengths)
    checkpointed = run_ours(case, mode, device, reverse=reverse, lengths=lengths, checkpoint_every=every)
    assert_all_close(checkpointed, plain, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", [{}, {"reverse": True, "lengths": [3, 1]}, {"checkpoint_every": 2}],
                         ids=["plain", "reverse_lengths", "checkpointed"])
def test_gradcheck(device, mode, options):
    case = make_case(mode, T=3, B=2, I=2, H=2, seed=1)
    tensors = [None if case[k] is None else tr.Tensor(case[k], dtype="float64", device=device,
                                                      requires_grad=True) for k in INPUTS]

    def fn(*inputs):
        out, h_n, c_n = fused.fused_pass(mode, *inputs, **options)
        parts = [out.reshape(-1), h_n.reshape(-1)] + ([c_n.reshape(-1)] if c_n is not None else [])
        return tr.cat(parts)

    assert tr.gradcheck(fn, *tensors)


def test_float32_is_close_to_float64():
    case = make_case("lstm", T=20, B=4, I=6, H=8)
    tensors = [None if case[k] is None else tr.Tensor(case[k], requires_grad=True) for k in INPUTS]
    out, h_n, c_n = fused.fused_pass("lstm", *tensors)
    assert out.dtype == np.float32 and h_n.dtype == np.float32 and c_n.dtype == np.float32
    (out * tr.Tensor(case["dy"])).sum().backward()
    outputs64, grads64 = run_ours(dict(case, dh_n=np.zeros_like(case["dh_n"]), dc_n=np.zeros_like(case["dc_n"])),
                                  "lstm")
    np.testing.assert_allclose(out.numpy(), outputs64[0], atol=2e-5)
    for name, t in zip(INPUTS, tensors):
        np.testing.assert_allclose(t.grad, grads64[name], atol=2e-4, rtol=1e-4, err_msg=name)


# ----------------------------------------------------------------------------- beside the composed layers


LAYERS = {
    "rnn_tanh": lambda **kw: tr.nn.RNN(3, 4, **kw),
    "rnn_relu": lambda **kw: tr.nn.RNN(3, 4, nonlinearity="relu", **kw),
    "lstm": lambda **kw: tr.nn.LSTM(3, 4, **kw),
    "gru": lambda **kw: tr.nn.GRU(3, 4, **kw),
}


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("lengths", [None, [6, 2, 5]], ids=["full", "lengths"])
def test_fused_layers_match_composed_layers(device, name, lengths):
    """Two bidirectional batch_first layers: the same outputs, states and gradients either way."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 6, 3))
    dy = rng.standard_normal((3, 6, 8))
    results = []
    for is_fused in (False, True):
        tr.manual_seed(0)
        layer = LAYERS[name](num_layers=2, bidirectional=True, batch_first=True, fused=is_fused,
                             dtype="float64", device=device)
        xt = tr.Tensor(x, dtype="float64", device=device, requires_grad=True)
        out, state = layer(xt, lengths=lengths)
        states = state if isinstance(state, tuple) else (state,)
        loss = (out * tr.Tensor(dy, dtype="float64", device=device)).sum()
        for k, s in enumerate(states):
            loss = loss + s.sum() * (k + 2)
        loss.backward()
        results.append([to_np(out)] + [to_np(s) for s in states] + [to_np(xt.grad)] +
                       [to_np(p.grad) for _, p in layer.named_parameters()])
    for composed, fast in zip(*results):
        np.testing.assert_allclose(fast, composed, atol=1e-10, rtol=0)


@pytest.mark.parametrize("make", [lambda: tr.nn.LSTM(3, 4, proj_size=2, fused=True),
                                  lambda: tr.nn.GRU(3, 4, reset_after=False, fused=True)],
                         ids=["lstm_proj", "gru_reset_before"])
def test_declined_layers_refuse_fused(make):
    with pytest.raises(ValueError, match="fused=False"):
        make()


def test_declined_cells_are_named():
    assert fused.pass_mode(tr.nn.LSTMCell(2, 3)) == "lstm"
    assert fused.pass_mode(tr.nn.LSTMCell(2, 3, proj_size=1)) is None
    assert fused.pass_mode(tr.nn.GRUCell(2, 3, reset_after=False)) is None
    assert fused.pass_mode(tr.nn.GRUCell(2, 3)) == "gru"
    assert fused.pass_mode(tr.nn.RNNCell(2, 3, nonlinearity="relu")) == "rnn_relu"
    assert fused.pass_mode(tr.nn.LayerNormLSTMCell(2, 3)) is None


# ----------------------------------------------------------------------------- graph and outputs


def test_one_node_per_pass_with_names_and_scope():
    case = make_case("lstm")
    tensors = [tr.Tensor(case[k], requires_grad=True) for k in INPUTS]
    with tr.scope("layer", 1), tr.scope("direction", "reverse"):
        out, h_n, c_n = fused.fused_pass("lstm", *tensors, reverse=True)
    nodes = [n for n in walk([out, h_n, c_n]) if isinstance(n, Function)]
    assert [n.op for n in nodes] == ["lstm_fused"]   # one node gives the output and both final states
    assert h_n.grad_fn is out.grad_fn and c_n.grad_fn is out.grad_fn
    assert (out.name, h_n.name, c_n.name) == ("output", "h_n", "c_n")
    assert out.grad_fn.names == ["output", "h_n", "c_n"]
    assert all(n.scope == (("layer", 1), ("direction", "reverse")) for n in nodes)
    assert out.grad_fn.shape == out.shape and out.grad_fn.shapes[0] == case["x"].shape


@pytest.mark.parametrize("mode", ["gru", "rnn_relu"])
def test_op_names(mode):
    case = make_case(mode)
    out, _, c_n = fused.fused_pass(mode, *[None if case[k] is None else tr.Tensor(case[k], requires_grad=True)
                                         for k in INPUTS])
    assert out.grad_fn.op == f"{mode}_fused" and c_n is None


@pytest.mark.parametrize("which", ["h_n", "c_n", "both"])
def test_loss_on_final_states_alone(torch, which):
    """A loss that never touches the output still reaches every input through the final states."""
    case = make_case("lstm")
    case["dy"] = np.zeros_like(case["dy"])
    if which == "h_n":
        case["dc_n"] = np.zeros_like(case["dc_n"])
    if which == "c_n":
        case["dh_n"] = np.zeros_like(case["dh_n"])
    tensors = {k: tr.Tensor(case[k], dtype="float64", requires_grad=True) for k in INPUTS}
    _, h_n, c_n = fused.fused_pass("lstm", *tensors.values())
    terms = {"h_n": [weighted(h_n, case["dh_n"], "cpu")], "c_n": [weighted(c_n, case["dc_n"], "cpu")]}
    terms["both"] = terms["h_n"] + terms["c_n"]
    loss = terms[which][0] if len(terms[which]) == 1 else terms[which][0] + terms[which][1]
    loss.backward()
    _, ref = run_torch(torch, case, "lstm")
    for name, t in tensors.items():
        np.testing.assert_allclose(t.grad, ref[name], atol=1e-10, err_msg=name)


def test_final_states_feed_the_next_pass_to_second_order():
    """An encoder's h_n and c_n (outputs 1 and 2 of its node) as a decoder's initial states: first and
    second derivatives equal the composed cells'."""
    enc, dec = make_case("lstm", seed=1), make_case("lstm", seed=2)

    def run(fused_path):
        leaves = {k: tr.Tensor(enc[k], dtype="float64", requires_grad=True) for k in INPUTS}
        x2 = tr.Tensor(dec["x"], dtype="float64")
        weights = [tr.Tensor(dec[k], dtype="float64") for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
        if fused_path:
            _, h_n, c_n = fused.fused_pass("lstm", *leaves.values())
            out, h2, _ = fused.fused_pass("lstm", x2, h_n, c_n, *weights)
        else:
            def step(x, h, c, w_ih, w_hh, b_ih, b_hh):
                i, f, g, o = (x @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, 1)
                c = f.sigmoid() * c + i.sigmoid() * g.tanh()
                return o.sigmoid() * c.tanh(), c

            h, c = leaves["h0"], leaves["c0"]
            for t in range(enc["x"].shape[0]):
                h, c = step(leaves["x"][t], h, c, *(leaves[k] for k in INPUTS[3:]))
            steps = []
            for t in range(dec["x"].shape[0]):
                h, c = step(x2[t], h, c, *weights)
                steps.append(h)
            out, h2 = tr.stack(steps), h
        loss = (out * out).sum() + h2.sum()
        grads = tr.autograd.grad(loss, list(leaves.values()), create_graph=True)
        second = tr.autograd.grad(sum((g * g).sum() for g in grads), [leaves["w_hh"], leaves["h0"]])
        return [g.numpy() for g in grads + second]

    for ours, composed in zip(run(True), run(False)):
        np.testing.assert_allclose(ours, composed, atol=1e-10)


def test_retain_graph_backward_twice_accumulates():
    case = make_case("gru")
    tensors = {k: tr.Tensor(case[k], dtype="float64", requires_grad=True) for k in INPUTS if case[k] is not None}
    out, h_n, _ = fused.fused_pass("gru", *(tensors.get(k) for k in INPUTS))
    loss = weighted(out, case["dy"], "cpu") + h_n.sum()
    loss.backward(retain_graph=True)
    once = {k: t.grad.numpy() for k, t in tensors.items()}
    loss.backward()  # the gates were turned into gradients in place: this pass recomputes them
    for k, t in tensors.items():
        np.testing.assert_allclose(t.grad, 2 * once[k], atol=1e-12, err_msg=k)


def test_retain_grads_keeps_the_output_gradient():
    case = make_case("rnn_tanh")
    with tr.retain_grads():
        out, _, _ = fused.fused_pass("rnn_tanh", *[None if case[k] is None else tr.Tensor(case[k], requires_grad=True)
                                                 for k in INPUTS])
    (out * 2).sum().backward()
    np.testing.assert_allclose(out.grad, np.full(out.shape, 2.0))


def test_no_grad_records_nothing_and_gives_the_same_output():
    case = make_case("lstm")
    tensors = [tr.Tensor(case[k], dtype="float64", requires_grad=True) for k in INPUTS]
    with tr.no_grad():
        out, h_n, c_n = fused.fused_pass("lstm", *tensors)
    assert out.grad_fn is None and h_n.grad_fn is None and not out.requires_grad
    recorded = fused.fused_pass("lstm", *tensors)
    for a, b in zip((out, h_n, c_n), recorded):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_missing_initial_states_are_zeros():
    case = make_case("lstm")
    w = [tr.Tensor(case[k], dtype="float64") for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
    x = tr.Tensor(case["x"], dtype="float64")
    zeros = tr.Tensor(np.zeros((3, 3)), dtype="float64")
    a = fused.fused_pass("lstm", x, None, None, *w)
    b = fused.fused_pass("lstm", x, zeros, zeros, *w)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u.numpy(), v.numpy())


def test_padded_outputs_are_zero_and_states_stop_at_each_end():
    case = make_case("gru", T=6)
    lengths = [6, 3, 1]
    tensors = [None if case[k] is None else tr.Tensor(case[k], dtype="float64") for k in INPUTS]
    out, h_n, _ = fused.fused_pass("gru", *tensors, lengths=lengths)
    for b, n in enumerate(lengths):
        assert not out.numpy()[n:, b].any()
        np.testing.assert_array_equal(h_n.numpy()[b], out.numpy()[n - 1, b])
    out_r, h_r, _ = fused.fused_pass("gru", *tensors, lengths=lengths, reverse=True)
    np.testing.assert_array_equal(h_r.numpy(), out_r.numpy()[0])
    short = [None if t is None else t for t in tensors]
    short[0] = tr.Tensor(case["x"][:1, 2:], dtype="float64")
    short[1] = tr.Tensor(case["h0"][2:], dtype="float64")
    alone, _, _ = fused.fused_pass("gru", *short)
    np.testing.assert_allclose(out_r.numpy()[0, 2:], alone.numpy()[0], atol=1e-14)


# ----------------------------------------------------------------------------- memory


def saved_bytes(node):
    return sum(a.nbytes for a in node.saved_arrays())


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_checkpointing_keeps_fewer_saved_arrays(mode):
    T, k = 64, 8
    case = make_case(mode, T=T, B=4, I=3, H=8)
    tensors = [None if case[n] is None else tr.Tensor(case[n], requires_grad=True) for n in INPUTS]
    plain, _, _ = fused.fused_pass(mode, *tensors)
    checkpointed, _, _ = fused.fused_pass(mode, *tensors, checkpoint_every=k)
    full, few = saved_bytes(plain.grad_fn), saved_bytes(checkpointed.grad_fn)
    per_step = 4 * 8 * 4  # bytes of one (B, H) float32 state
    width = 4 + (2 if mode == "lstm" else 0)  # gate columns + the cell state and its tanh, in units of H
    assert full == T * width * per_step
    # one (h[, c]) per segment start but the first, which is (h0[, c0]) itself
    assert few == (T // k - 1) * (2 if mode == "lstm" else 1) * per_step
    assert few * 8 < full


def peak_training_bytes(checkpoint_every, T=200):
    case = make_case("lstm", T=T, B=8, I=4, H=16)
    tensors = [tr.Tensor(case[n], requires_grad=True) for n in INPUTS]
    dy = tr.Tensor(case["dy"])
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    out, _, _ = fused.fused_pass("lstm", *tensors, checkpoint_every=checkpoint_every)
    (out * dy).sum().backward()
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return peak


def test_checkpointing_lowers_the_peak_of_a_training_step():
    plain = peak_training_bytes(None)
    assert peak_training_bytes(14) < 0.75 * plain
    # O(T/k + k): a middle k beats both extremes
    assert peak_training_bytes(14) < peak_training_bytes(100)
    assert peak_training_bytes(14) < peak_training_bytes(2)


# ----------------------------------------------------------------------------- bad input


def small(mode="lstm", **changes):
    case = make_case(mode)
    tensors = {k: None if case[k] is None else tr.Tensor(case[k]) for k in INPUTS}
    tensors.update(changes)
    return [tensors[k] for k in INPUTS]


@pytest.mark.parametrize("changes, error, words", [
    ({"x": tr.zeros(5, 4)}, ValueError, "(T, B, input_size)"),
    ({"w_ih": tr.zeros(12, 5)}, ValueError, "weight_ih has shape (12, 5), expected (12, 4)"),
    ({"w_hh": tr.zeros(11, 3)}, ValueError, "weight_hh must have shape"),
    ({"b_hh": tr.zeros(11)}, ValueError, "bias_hh has shape (11,)"),
    ({"h0": tr.zeros(2, 3)}, ValueError, "Expected h0 of size (3, 3), got (2, 3)"),
    ({"w_hh": tr.Tensor(np.zeros((12, 3)), dtype="float64")}, TypeError, "weight_hh float64"),
])
def test_bad_input_names_what_is_wrong(changes, error, words):
    with pytest.raises(error) as info:
        fused.fused_pass("lstm", *small(**changes))
    assert words in str(info.value)


@pytest.mark.parametrize("lengths, words", [([5, 0, 1], "[1, 5]"), ([6, 1, 1], "[1, 5]"),
                                            ([1, 2], "shape (3,)"), ([1.0, 2.0, 3.0], "integers")])
def test_bad_lengths(lengths, words):
    with pytest.raises((ValueError, TypeError)) as info:
        fused.fused_pass("lstm", *small(), lengths=lengths)
    assert words in str(info.value)


def test_bad_options():
    with pytest.raises(ValueError, match="unknown mode"):
        fused.fused_pass("elman", *small())
    with pytest.raises(ValueError, match="nonlinearity"):
        fused.fused_pass("rnn", *small("rnn_tanh"), nonlinearity="gelu")
    with pytest.raises(ValueError, match="checkpoint_every"):
        fused.fused_pass("lstm", *small(), checkpoint_every=0)
    with pytest.raises(ValueError, match="c0 is only for the LSTM"):
        fused.fused_pass("gru", *small("gru", c0=tr.zeros(3, 3)))


def test_mixed_devices_are_refused(device):
    if device == "cpu":
        pytest.skip("needs a second device")
    args = small()
    args[3] = args[3].to(device)
    with pytest.raises(tr.DeviceError, match="different devices"):
        fused.fused_pass("lstm", *args)


# ----------------------------------------------------------------------------- the CUDA kernels, run as C++

def build_cpp_kernels(directory, ctype, inline):
    """Compile every CUDA step kernel body as a C++ loop over i (one 'thread' at a time) and load them."""
    lines = ["#include <cmath>", "#include <cstddef>", "using std::tanh;", "#define __device__",
             "#define __forceinline__ inline", f"typedef {ctype} T;", K.CUDA_PREAMBLE]
    kinds = {}
    for name in K.KERNEL_NAMES:
        inputs, outputs = K.kernel_params(name)
        params, kinds[name] = [], []
        for decl, const in [(p, "const ") for p in inputs.split(",")] + [(p, "") for p in outputs.split(",")]:
            words = decl.split()
            if words[0] == "raw":
                params.append(f"{const}T* {words[2]}")
                kinds[name].append("array")
            else:
                assert words[0] == "int32", decl
                params.append(f"int {words[1]}")
                kinds[name].append("int")
        lines.append(f'extern "C" void {name}(ptrdiff_t n, {", ".join(params)}) {{\n'
                     f'  for (ptrdiff_t i = 0; i < n; ++i) {{\n{K.kernel_body(name, inline)}\n  }}\n}}')
    stem = f"kernels_{ctype}_{'inline' if inline else 'loaded'}"
    source = directory / f"{stem}.cpp"
    source.write_text("\n".join(lines))
    library = directory / f"{stem}.so"
    subprocess.run(["g++", "-O1", "-std=c++14", "-Wall", "-Werror", "-Wno-unused-variable", "-shared", "-fPIC",
                    str(source), "-o", str(library)], check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(library)), kinds


class CppKernel:
    """A compiled kernel called the way CuPy calls an ElementwiseKernel with raw arguments."""

    def __init__(self, function, kinds, dtype):
        self.function, self.kinds, self.dtype = function, kinds, dtype

    def __call__(self, *args, size):
        assert len(args) == len(self.kinds)
        c_args = [ctypes.c_ssize_t(size)]
        for arg, kind in zip(args, self.kinds):
            if kind == "array":
                assert arg.dtype == self.dtype and arg.flags.c_contiguous, (arg.dtype, arg.flags)
                c_args.append(ctypes.c_void_p(arg.ctypes.data))
            else:
                c_args.append(ctypes.c_int(int(arg)))
        self.function(*c_args)


class CppLibrary:
    """kernel(name) for a built library, as fused._KernelSteps asks for its kernels."""

    def __init__(self, library, kinds):
        self.library, self.kinds = library, kinds

    def __call__(self, name):
        return CppKernel(getattr(self.library, name), self.kinds[name], np.dtype(np.float64))


@pytest.fixture(scope="module")
def cpp_kernels(tmp_path_factory):
    """{inline: kernel(name)} with the CUDA step kernels built as C++ for float64."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed to run the CUDA kernel sources on the CPU")
    directory = tmp_path_factory.mktemp("kernels")
    return {inline: CppLibrary(*build_cpp_kernels(directory, "double", inline)) for inline in (False, True)}


def build_cpp_emulated(directory, name, kernel_source):
    """Kernel source written with the CUDA emulation (blocks and threads run as loops) built as C++
    and loaded."""
    lines = ["#include <cmath>", "using std::tanh;", "#define __device__", "#define __forceinline__ inline",
             kernel_source]
    source = directory / f"{name}.cpp"
    source.write_text("\n".join(lines))
    library = directory / f"{name}.so"
    subprocess.run(["g++", "-O1", "-std=c++14", "-Wall", "-Werror", "-Wno-unused-variable", "-Wno-unknown-pragmas",
                    "-shared", "-fPIC", str(source), "-o", str(library)], check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(library))


def build_cpp_persistent(directory):
    """The persistent kernels as C++, float64, loaded."""
    return build_cpp_emulated(directory, "persistent", PK.persistent_source(emulate=True, ctypes=("double",)))


class CppPersistentKernel:
    """An emulated persistent kernel called as fused._PersistentSteps calls the CUDA one."""

    def __init__(self, function, name):
        self.function, self.name = function, name

    def __call__(self, *args, plan, failed):
        names = PK.persistent_params(self.name)
        values = list(args) + list(plan.ints())
        assert len(values) == len(names) - 2, (self.name, len(values), names)
        c_args = []
        for value in values:
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float64 and value.flags.c_contiguous, (value.dtype, value.flags)
                c_args.append(ctypes.c_void_p(value.ctypes.data))
            else:
                c_args.append(ctypes.c_int(int(value)))
        counter = np.zeros(1, np.uint32)
        self.function(*c_args, ctypes.c_void_p(counter.ctypes.data), ctypes.c_void_p(failed.ctypes.data))


def ragged_plans(cell, batch, hidden):
    """Plans that leave the last unit, row and column groups part-empty, split each sum into uneven
    slices over several tiles (the last one short), give threads several pairs or none, and (for
    H = 37) more tile loads per thread than one load batch holds."""
    def plan(G, K_sum, KS):
        NU, NB = min(3, hidden), min(2, batch)
        U, Bb = -(-hidden // NU), -(-batch // NB)
        groups = -(-Bb // PK.PERSISTENT_ROWS) * -(-G * U // PK.PERSISTENT_COLS)
        return PK.PersistentPlan(NU, U, NB, Bb, G, KS=KS, TK=min(K_sum, 29), threads=KS * groups + 1, shared=0)
    return plan(cell.gates, hidden, 2), plan(1, cell.gates * hidden, 3)


@pytest.fixture(scope="module")
def cpp_persistent(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed to run the CUDA kernel sources on the CPU")
    library = build_cpp_persistent(tmp_path_factory.mktemp("persistent"))
    return lambda name: CppPersistentKernel(getattr(library, f"tinygrad_rnn_persistent_{name}_double"), name)


@pytest.fixture(params=["loaded", "inline", "persistent"])
def kernel_steps(request, cpp_kernels, cpp_persistent, monkeypatch):
    """Run the CuPy path's drivers on NumPy arrays, with the CUDA sources built as C++."""
    def matmul(a, b, out):
        return np.matmul(a, b, out=out)

    def make_steps(xp, cell, weights, batch, hidden, dtype, lengths, steps):
        mask = fused.step_mask(lengths, steps, batch, dtype)
        if request.param == "persistent":
            return fused._PersistentSteps(np, cpp_persistent, matmul, ragged_plans(cell, batch, hidden),
                                          cell, weights, batch, hidden, dtype, mask)
        inline = request.param == "inline"
        return fused._KernelSteps(np, cpp_kernels[inline], matmul, inline, cell, weights, batch, hidden, dtype, mask)
    monkeypatch.setattr(fused, "make_steps", make_steps)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lengths", [None, [5, 2, 1]], ids=["full", "lengths"])
@pytest.mark.parametrize("every", [None, 2], ids=["saved", "checkpointed"])
def test_cuda_kernel_sources_match_torch(torch, kernel_steps, mode, reverse, lengths, every):
    case = make_case(mode)
    ours = run_ours(case, mode, reverse=reverse, lengths=lengths, checkpoint_every=every)
    assert_all_close(ours, run_torch(torch, case, mode, reverse, lengths))


ORIGINAL_MAKE_STEPS = fused.make_steps


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", [{}, {"reverse": True, "lengths": [9, 4, 1, 7, 2], "checkpoint_every": 4}],
                         ids=["plain", "reverse-lengths-checkpointed"])
def test_persistent_kernels_tile_long_sums(kernel_steps, mode, options):
    """H = 37 and 4H = 148: several shared-memory tiles per sum, the last one ragged; against NumPy."""
    case = make_case(mode, T=9, B=5, I=6, H=37, seed=3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fused, "make_steps", ORIGINAL_MAKE_STEPS)
        expected = run_ours(case, mode, **options)
    assert_all_close(run_ours(case, mode, **options), expected)


@pytest.mark.parametrize("batch,hidden,K_sum,G", [(1, 1, 1, 4), (3, 37, 37, 4), (32, 128, 512, 1), (64, 512, 512, 4),
                                                  (64, 512, 2048, 1), (256, 1024, 4096, 1), (4096, 4096, 4096, 4)])
@pytest.mark.parametrize("multiprocessors,shared_limit", [(1, 48 * 1024), (7, 48 * 1024), (132, 48 * 1024),
                                                          (132, 227 * 1024)])
def test_persistent_plans_cover_every_pair_and_fit(batch, hidden, K_sum, G, multiprocessors, shared_limit):
    plan = PK.persistent_plan(batch, hidden, K_sum, G, 4, multiprocessors, shared_limit)
    if plan is None:  # declined only when the weights or the register tiles cannot be spread over the blocks
        weights = K_sum * G * -(-hidden // multiprocessors) * 4
        tiles = batch * G * hidden / (PK.PERSISTENT_ROWS * PK.PERSISTENT_COLS)
        assert weights > shared_limit / 2 or tiles > multiprocessors * PK.PERSISTENT_THREADS
        return
    assert plan.blocks == plan.NU * plan.NB <= multiprocessors
    assert plan.NU * plan.U >= hidden and (plan.NU - 1) * plan.U < hidden
    assert plan.NB * plan.Bb >= batch and (plan.NB - 1) * plan.Bb < batch
    assert plan.workers <= plan.threads <= PK.PERSISTENT_THREADS and plan.threads % 32 == 0
    assert 1 <= plan.TK <= K_sum and 1 <= plan.KS <= PK.PERSISTENT_MAX_SLICES
    assert plan.shared == PK.shared_bytes(plan.Bb, plan.U, K_sum, G, plan.KS, plan.TK, 4) <= shared_limit


def test_persistent_plans_fit_the_benchmark_sizes_on_an_h200():
    """The benchmark's sizes up to H = 512 get persistent plans with the opt-in shared memory (float32)."""
    for name in ("lstm", "gru", "rnn_tanh"):
        for batch, hidden in [(32, 128), (64, 256), (64, 512)]:
            plans = fused.persistent_plans(fused.CELLS[name], batch, hidden, 4, 132, 227 * 1024)
            assert plans is not None, (name, batch, hidden)
            assert all(plan.blocks > 64 for plan in plans), plans


@pytest.mark.parametrize("steps", ["auto", "persistent", "elementwise", "raw", "inline"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lengths", [None, [5, 2, 1]], ids=["full", "lengths"])
@pytest.mark.parametrize("every", [None, 2], ids=["saved", "checkpointed"])
def test_each_cuda_step_launcher_matches_torch(torch, device, monkeypatch, steps, mode, lengths, every):
    if device == "cpu":
        pytest.skip("the launchers are CuPy's; NumPy has one path")
    monkeypatch.setattr(fused, "CUDA_STEPS", steps)
    case = make_case(mode)
    for reverse in (False, True):
        ours = run_ours(case, mode, device, reverse=reverse, lengths=lengths, checkpoint_every=every)
        assert_all_close(ours, run_torch(torch, case, mode, reverse, lengths))


@pytest.mark.parametrize("steps", ["persistent", "elementwise", "raw", "inline"])
def test_cuda_float32_matches_numpy(device, monkeypatch, steps):
    if device == "cpu":
        pytest.skip("compares CuPy with NumPy")
    monkeypatch.setattr(fused, "CUDA_STEPS", steps)
    for mode in MODES:
        case = make_case(mode, T=9, B=5, I=7, H=33)
        host = [None if case[k] is None else tr.Tensor(case[k]) for k in INPUTS]
        gpu = [None if t is None else t.to(device) for t in host]
        for options in ({}, {"reverse": True, "lengths": [9, 4, 1, 7, 2]}):
            a = fused.fused_pass(mode, *host, **options)
            b = fused.fused_pass(mode, *gpu, **options)
            for u, v in zip(a, b):
                if u is not None:
                    # float32 rounding relative to each array's scale (ReLU states grow large)
                    scale = max(1.0, float(np.abs(u.numpy()).max()))
                    np.testing.assert_allclose(to_np(v), u.numpy(), atol=2e-5 * scale, err_msg=mode)


def test_cuda_persistent_kernels_with_large_blocks_match_numpy(device, monkeypatch):
    """B = 64, H = 256 in float64: plans past 48 KB of shared memory per block (the opt-in), many
    slices and tiles per sum; gradients too."""
    if device == "cpu":
        pytest.skip("compares CuPy with NumPy")
    monkeypatch.setattr(fused, "CUDA_STEPS", "persistent")
    B, H = 64, 256
    for mode in MODES:
        plans = fused.persistent_plans(fused.CELLS[mode], B, H, 8, PK.multiprocessor_count(), PK.shared_memory_limit())
        assert plans is not None and max(plan.shared for plan in plans) > 48 * 1024, plans
        case = make_case(mode, T=4, B=B, I=8, H=H, seed=5)
        case["w_hh"] /= np.sqrt(H)
        options = {"reverse": True, "lengths": [4, 1, 3] * 21 + [2]}
        assert_all_close(run_ours(case, mode, device, **options), run_ours(case, mode, **options))


@pytest.mark.parametrize("mode", MODES)
def test_persistent_kernels_with_an_h200s_plans_match_numpy(cpp_persistent, monkeypatch, mode):
    """The plans persistent_plan makes for 132 multiprocessors and 227 KB per block, run as C++."""
    B, H = 64, 256
    case = make_case(mode, T=3, B=B, I=8, H=H, seed=6)
    case["w_hh"] /= np.sqrt(H)
    options = {"lengths": [3, 1, 2] * 21 + [3]}
    expected = run_ours(case, mode, **options)

    def make_steps(xp, cell, weights, batch, hidden, dtype, lengths, steps):
        plans = fused.persistent_plans(cell, batch, hidden, 8, 132, 227 * 1024)
        return fused._PersistentSteps(np, cpp_persistent, lambda a, b, out: np.matmul(a, b, out=out), plans,
                                      cell, weights, batch, hidden, dtype, fused.step_mask(lengths, steps, batch, dtype))
    monkeypatch.setattr(fused, "make_steps", make_steps)
    assert_all_close(run_ours(case, mode, **options), expected)
