"""Every compiled pass equals the op-by-op graph (fused=False) in float64: outputs, final states and
every gradient, for the built-in cells, LayerNormLSTMCell, cells written only in tests, and every
layer option (layers, directions, lengths, batch_first, dropout, checkpoint_every, initial states)."""
import shutil

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.compile.cells import TRACEABLE
from tests.compile.cpp import cpp_launcher
from tinygrad_rnn.compile import drive
from tinygrad_rnn.compile.numpy_program import NumpyProgram
from tinygrad_rnn.graph import walk
from tinygrad_rnn.nn import recurrent

pytestmark = pytest.mark.filterwarnings("error")  # a compiled cell that fell back op by op would warn

TOLERANCE = 1e-12
BUILT_IN = {
    "rnn_tanh": (tr.nn.RNNCell, {}),
    "rnn_relu": (tr.nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (tr.nn.LSTMCell, {}),
    "lstm_proj": (tr.nn.LSTMCell, {"proj_size": 2}),
    "gru": (tr.nn.GRUCell, {}),
    "gru_reset_before": (tr.nn.GRUCell, {"reset_after": False}),
    "layer_norm_lstm": (tr.nn.LayerNormLSTMCell, {}),
}
CELLS = {**BUILT_IN, **{name: (cell, {}) for name, cell in TRACEABLE.items()}}

OPTIONS = {
    "one_layer": {"layer": {}, "call": {}},
    "stacked_bidirectional_lengths_hx": {"layer": {"num_layers": 2, "bidirectional": True},
                                         "call": {"lengths": [5, 2, 4]}, "hx": True},
    "batch_first_dropout_lengths": {"layer": {"num_layers": 2, "batch_first": True, "dropout": 0.4},
                                    "call": {"lengths": [3, 5, 1]}},
    "checkpoint_reverse_lengths": {"layer": {"bidirectional": True, "checkpoint_every": 2},
                                   "call": {"lengths": [4, 5, 2]}},
    # x and the first parameter want no gradient: the first layer's pass computes neither
    "stacked_x_and_a_parameter_frozen": {"layer": {"num_layers": 2}, "call": {}, "frozen": True},
}


@pytest.fixture
def compiled_built_ins(monkeypatch):
    """The built-in cells take the compiled pass instead of their hand-written ones."""
    for cell_type in (tr.nn.RNNCell, tr.nn.LSTMCell, tr.nn.GRUCell):
        monkeypatch.setitem(recurrent._FUSED, cell_type, (drive.compiled_run, drive.accepts))


def run_layer(name, options, fused, seed=0, batch=3, hidden=4):
    """Outputs, final states and every gradient of a loss on all of them (5 steps, 3 inputs)."""
    cell_type, cell_options = CELLS[name]
    tr.manual_seed(seed)
    layer_options = dict(options["layer"])
    if not fused:
        layer_options.pop("checkpoint_every", None)  # the op-by-op graph keeps every step anyway
    layer = tr.nn.Recurrent(cell_type, 3, hidden, fused=fused, dtype="float64", **layer_options, **cell_options)
    rng = np.random.default_rng(seed)
    batch_first = options["layer"].get("batch_first", False)
    frozen = options.get("frozen", False)
    x = tr.Tensor(rng.standard_normal((batch, 5, 3) if batch_first else (5, batch, 3)), dtype="float64",
                  requires_grad=not frozen)
    parameters = [p for _, p in layer.named_parameters()]
    if frozen:
        parameters[0].requires_grad = False
    tensors = [x]
    hx = None
    if options.get("hx"):
        stacked = options["layer"].get("num_layers", 1) * (2 if options["layer"].get("bidirectional") else 1)
        hx = [tr.Tensor(rng.standard_normal((stacked, batch, size)), dtype="float64", requires_grad=True)
              for size in layer.state_sizes]
        tensors += hx
        hx = hx[0] if len(hx) == 1 else tuple(hx)
    tr.manual_seed(seed + 1)  # the dropout masks
    out, finals = layer(x, hx, **options["call"])
    finals = finals if isinstance(finals, tuple) else (finals,)
    loss = (out * tr.Tensor(rng.standard_normal(out.shape), dtype="float64")).sum()
    for k, f in enumerate(finals):
        loss = loss + (f * tr.Tensor(rng.standard_normal(f.shape), dtype="float64")).sum() * (k + 2)
    loss.backward()
    tensors += parameters
    assert all((t.grad is None) == (not t.requires_grad) for t in tensors)
    return ([out.numpy()] + [f.numpy() for f in finals] + [t.grad.numpy() for t in tensors if t.requires_grad],
            compiled_nodes(out))


def compiled_nodes(out):
    return sum(1 for node in walk(out) if isinstance(node, tr.Function) and node.op.endswith("_compiled"))


@pytest.mark.parametrize("work_on_forward_values", ["all steps at once", "step by step"])
@pytest.mark.parametrize("options", list(OPTIONS))
@pytest.mark.parametrize("name", list(CELLS))
def test_compiled_pass_equals_op_by_op(compiled_built_ins, monkeypatch, name, options, work_on_forward_values):
    if work_on_forward_values == "step by step":  # the backward large segments take
        monkeypatch.setattr(drive, "BULK_BYTES", 0)
    expected, none = run_layer(name, OPTIONS[options], fused=False)
    got, passes = run_layer(name, OPTIONS[options], fused=True)
    layer = OPTIONS[options]["layer"]
    assert none == 0 and passes == layer.get("num_layers", 1) * (2 if layer.get("bidirectional") else 1)
    assert len(got) == len(expected)
    for k, (a, b) in enumerate(zip(got, expected)):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, atol=TOLERANCE, rtol=0, err_msg=f"result {k}")


def test_custom_cells_take_the_compiled_pass_by_default():
    for cell_type in list(TRACEABLE.values()) + [tr.nn.LayerNormLSTMCell]:
        layer = tr.nn.Recurrent(cell_type, 3, 4)
        assert layer.fused
        out, _ = layer(tr.randn(4, 2, 3))
        assert out.grad_fn.op.endswith("_compiled")


def test_built_in_layers_keep_their_hand_written_passes():
    out, _ = tr.nn.LSTM(3, 4)(tr.randn(4, 2, 3))
    assert out.grad_fn.op == "lstm_fused"
    out, _ = tr.nn.LSTM(3, 4, proj_size=2)(tr.randn(4, 2, 3))
    assert out.grad_fn.op != "lstmcell_compiled"  # declined by the hand-written pass: op by op


@pytest.mark.parametrize("name", ["lstm", "layer_norm_lstm", "lecture_lstm", "many_ops"])
def test_nan_in_padding_has_no_effect(compiled_built_ins, name):
    """Padded steps are selected away, never multiplied by a mask: NaN there reaches nothing."""
    cell_type, cell_options = CELLS[name]
    rng = np.random.default_rng(3)
    data = rng.standard_normal((5, 3, 3))
    lengths = [5, 2, 3]
    padded = np.arange(5)[:, None] >= np.asarray(lengths)[None, :]
    results = []
    for fused, fill in ((False, 0.0), (True, np.nan)):
        tr.manual_seed(0)
        layer = tr.nn.Recurrent(cell_type, 3, 4, bidirectional=True, fused=fused, dtype="float64", **cell_options)
        x = tr.Tensor(np.where(padded[:, :, None], fill, data), dtype="float64", requires_grad=True)
        out, finals = layer(x, lengths=lengths)
        finals = finals if isinstance(finals, tuple) else (finals,)
        loss = (out * out).sum() + sum((f * f).sum() for f in finals)
        loss.backward()
        results.append([out.numpy()] + [f.numpy() for f in finals] + [x.grad.numpy()] +
                        [p.grad.numpy() for p in layer.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, atol=TOLERANCE, rtol=0)
    assert (results[1][len(results[1]) - len(list(layer.parameters())) - 1][padded] == 0).all()


@pytest.mark.parametrize("name", ["layer_norm_lstm", "mgu", "many_ops"])
def test_gradients_of_gradients_equal_op_by_op(compiled_built_ins, name):
    """Double backward runs through the op-by-op graph of the pass (differentiable_backward)."""
    cell_type, cell_options = CELLS[name]
    results = []
    for fused in (False, True):
        tr.manual_seed(0)
        layer = tr.nn.Recurrent(cell_type, 3, 4, fused=fused, dtype="float64", **cell_options)
        x = tr.Tensor(np.random.default_rng(4).standard_normal((4, 2, 3)), dtype="float64", requires_grad=True)
        out, _ = layer(x, lengths=[4, 3])
        params = list(layer.parameters())
        grads = tr.autograd.grad((out * out).sum(), [x] + params, create_graph=True)
        penalty = sum((g * g).sum() for g in grads)
        results.append([g.numpy() for g in tr.autograd.grad(penalty, [x] + params)])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, atol=1e-10, rtol=0)


def test_backward_twice_with_retain_graph_accumulates():
    layer = tr.nn.Recurrent(tr.nn.LayerNormLSTMCell, 3, 4, dtype="float64", checkpoint_every=2)
    x = tr.Tensor(np.random.default_rng(5).standard_normal((5, 2, 3)), dtype="float64", requires_grad=True)
    out, (_, c) = layer(x)
    loss = (out * out).sum() + c.sum()
    loss.backward(retain_graph=True)
    once = [x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()]
    loss.backward()
    for a, t in zip(once, [x] + list(layer.parameters())):
        np.testing.assert_allclose(t.grad.numpy(), 2 * a, atol=1e-12)


def test_loss_on_a_final_state_alone_reaches_every_input():
    results = []
    for fused in (False, True):
        tr.manual_seed(0)
        layer = tr.nn.Recurrent(TRACEABLE["peephole_lstm"], 3, 4, fused=fused, dtype="float64")
        x = tr.Tensor(np.random.default_rng(6).standard_normal((5, 2, 3)), dtype="float64", requires_grad=True)
        _, (_, c) = layer(x)
        c.sum().backward()
        results.append([x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, atol=TOLERANCE)


def test_no_grad_gives_the_same_output_and_records_nothing():
    layer = tr.nn.Recurrent(tr.nn.LayerNormLSTMCell, 3, 4, dtype="float64")
    x = tr.Tensor(np.random.default_rng(7).standard_normal((5, 2, 3)), dtype="float64")
    with tr.no_grad():
        out, _ = layer(x)
    assert out.grad_fn is None and not out.requires_grad
    recorded, _ = layer(x)
    np.testing.assert_array_equal(out.numpy(), recorded.numpy())


def test_float32_is_close_to_float64():
    results = []
    tr.manual_seed(0)
    start = tr.nn.Recurrent(tr.nn.LayerNormLSTMCell, 3, 8, num_layers=2, dtype="float64").state_dict()
    for dtype in ("float64", "float32"):  # the same weights in each (a seed draws per dtype, as torch's)
        layer = tr.nn.Recurrent(tr.nn.LayerNormLSTMCell, 3, 8, num_layers=2, dtype=dtype)
        layer.load_state_dict({name: value.to(dtype) for name, value in start.items()})
        x = tr.Tensor(np.random.default_rng(8).standard_normal((6, 4, 3)), dtype=dtype, requires_grad=True)
        out, _ = layer(x)
        (out * out).sum().backward()
        results.append([out.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def kernels_as_cpp(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed to run the generated CUDA kernels on the CPU")
    return cpp_launcher(tmp_path_factory.mktemp("compiled_kernels"))


@pytest.fixture
def cuda_program_on_the_cpu(kernels_as_cpp, monkeypatch):
    """The GPU's program (each loop's elementwise runs as generated kernels) run on NumPy arrays."""
    monkeypatch.setattr(drive, "make_program",
                        lambda fplan, bplans, device: NumpyProgram(fplan, bplans, launcher=kernels_as_cpp))
    monkeypatch.setattr(drive, "_CACHE", {})
    monkeypatch.setattr(drive, "_BOUND", drive.weakref.WeakKeyDictionary())


@pytest.mark.parametrize("work_on_forward_values", ["all steps at once", "step by step"])
@pytest.mark.parametrize("name", list(CELLS))
def test_generated_cuda_kernels_equal_op_by_op(compiled_built_ins, cuda_program_on_the_cpu, monkeypatch, name,
                                               work_on_forward_values):
    if work_on_forward_values == "step by step":
        monkeypatch.setattr(drive, "BULK_BYTES", 0)
    options = OPTIONS["checkpoint_reverse_lengths"]
    expected, _ = run_layer(name, options, fused=False)
    got, passes = run_layer(name, options, fused=True)
    assert passes == 2
    for k, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, atol=TOLERANCE, rtol=0, err_msg=f"result {k}")


@pytest.mark.parametrize("name", ["lstm", "gru", "layer_norm_lstm", "lecture_lstm", "many_ops"])
def test_compiled_pass_on_a_gpu_equals_op_by_op(device, compiled_built_ins, monkeypatch, name):
    """On CuPy the program launches the generated kernels (TINYGRAD_RNN_COMPILED_CUDA=1)."""
    if device != "cuda":
        pytest.skip("the GPU program itself; its kernels run as C++ on the CPU above")
    monkeypatch.setattr(drive, "COMPILED_CUDA", True)
    cell_type, cell_options = CELLS[name]
    results = []
    for fused in (False, True):
        tr.manual_seed(0)
        layer = tr.nn.Recurrent(cell_type, 3, 4, bidirectional=True, fused=fused, dtype="float64", device=device,
                                **cell_options)
        x = tr.Tensor(np.random.default_rng(1).standard_normal((5, 3, 3)), dtype="float64", device=device,
                      requires_grad=True)
        out, finals = layer(x, lengths=[5, 2, 4])
        finals = finals if isinstance(finals, tuple) else (finals,)
        ((out * out).sum() + sum((f * f).sum() for f in finals)).backward()
        results.append([out.numpy()] + [f.numpy() for f in finals] + [x.grad.numpy()] +
                       [p.grad.numpy() for p in layer.parameters()])
        if fused:
            assert compiled_nodes(out) == 2
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, atol=1e-10, rtol=0)
