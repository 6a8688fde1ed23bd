"""The compiled pass in the graph and in the layers: one node, its cache, reuse while nothing about a
cell changes, and cells it refuses running op by op with one warning that names why."""
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.compile.cells import TRACEABLE, BranchOnDataCell, LeakyCell, NoisyCell, OpaqueCell
from tinygrad_rnn.compile import drive
from tinygrad_rnn.graph import walk


def layer_and_input(cell_type, **options):
    tr.manual_seed(0)
    layer = tr.nn.Recurrent(cell_type, 3, 4, dtype="float64", **options)
    x = tr.Tensor(np.random.default_rng(0).standard_normal((5, 2, 3)), dtype="float64", requires_grad=True)
    return layer, x


def test_a_pass_is_one_node_with_its_final_states_and_statics():
    layer, x = layer_and_input(tr.nn.LayerNormLSTMCell)
    with tr.scope("model", 0):
        out, (h, c) = layer(x)
    nodes = [n for n in walk([out, h, c]) if isinstance(n, tr.Function)]
    compiled = [n for n in nodes if n.op == "layernormlstm_compiled"]
    assert len(compiled) == 1
    assert compiled[0].names == ["output", "h_n", "c_n"]   # the final states come from the pass node itself
    assert not any(dict(n.scope).get("t") is not None for n in nodes), "no per-step nodes"
    assert (out.name, h.name, c.name) == ("output", "h_n", "c_n")
    assert compiled[0].scope == (("model", 0), ("layer", 0), ("direction", "forward"))
    assert compiled[0].parents[0] is x


def test_a_structure_compiles_once():
    layer, x = layer_and_input(TRACEABLE["mgu"], num_layers=2, bidirectional=True)
    layer(x)
    before = len(drive.cache_info()["MinimalGatedUnit"])
    layer(x)
    tr.nn.Recurrent(TRACEABLE["mgu"], 3, 4, dtype="float64")(x)  # another instance, the same shapes
    assert len(drive.cache_info()["MinimalGatedUnit"]) == before
    layer(tr.Tensor(np.zeros((5, 7, 3)), dtype="float64"))  # another batch size: another program
    assert len(drive.cache_info()["MinimalGatedUnit"]) == before + 2  # layer 0 and layer 1 (its input is 8 wide)
    assert all(seconds > 0 for seconds in drive.cache_info()["MinimalGatedUnit"])


def test_a_changed_cell_is_traced_again():
    """Reuse holds while the cell's parameters, attributes and shapes stay; otherwise it retraces."""
    tr.manual_seed(1)
    cell = tr.nn.RNNCell(3, 4, dtype="float64")
    x = tr.Tensor(np.random.default_rng(1).standard_normal((5, 2, 3)), dtype="float64")
    h0 = (tr.Tensor(np.zeros((2, 4)), dtype="float64"),)

    def compare():
        out, _ = drive.compiled_run(cell, x, h0)
        with tr.no_grad():
            from tinygrad_rnn.nn.recurrent import run_cell
            steps, _ = run_cell(cell, x, h0)
        np.testing.assert_allclose(out.numpy(), tr.stack(steps).numpy(), atol=1e-12)

    compare()
    cell.nonlinearity = "relu"
    compare()
    cell.weight_hh = tr.nn.Parameter(tr.randn(4, 4, dtype="float64"))
    compare()
    with tr.no_grad():
        cell.bias_ih.mul_(3.0)
    compare()


def test_parameters_changed_in_place_are_read_afresh():
    layer, x = layer_and_input(tr.nn.LayerNormLSTMCell)
    first, _ = layer(x)
    with tr.no_grad():
        for p in layer.parameters():
            p.add_(0.1)
    second, _ = layer(x)
    layer.fused = False
    expected, _ = layer(x)
    assert not np.allclose(first.numpy(), second.numpy())
    np.testing.assert_allclose(second.numpy(), expected.numpy(), atol=1e-12)


REFUSED = [(BranchOnDataCell, "reads a tensor's value into Python"),
           (LeakyCell, "the condition of where changes with the input values"),
           (NoisyCell, "changes with the input values"),
           (OpaqueCell, "op 'opaque'")]


@pytest.mark.parametrize("cell_type, words", REFUSED, ids=[c.__name__ for c, _ in REFUSED])
def test_refused_cells_run_op_by_op_with_one_warning(cell_type, words):
    layer, x = layer_and_input(cell_type, num_layers=2)
    for key in [k for k in drive._WARNED if k[0] is cell_type]:  # once per cell type and reason
        drive._WARNED.discard(key)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, _ = layer(x)
        layer(x)
    messages = [str(w.message) for w in caught if cell_type.__name__ in str(w.message)]
    assert len(messages) == 1 and words in messages[0] and "op by op" in messages[0]
    assert not any(n.op.endswith("_compiled") for n in walk(out) if isinstance(n, tr.Function))
    if cell_type is not NoisyCell:
        layer.fused = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected, _ = layer(x)
        np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-12)


def test_forward_mode_runs_op_by_op():
    layer, x = layer_and_input(tr.nn.LayerNormLSTMCell)
    tangent = tr.Tensor(np.ones(x.shape), dtype="float64")

    def output(x):
        return layer(x)[0]

    _, jvp = tr.func.jvp(output, (x.detach(),), (tangent,))
    _, vjp_fn = tr.func.vjp(output, x.detach())
    ones = tr.Tensor(np.ones((5, 2, 4)), dtype="float64")
    # <J t, 1> == <t, J^T 1>
    np.testing.assert_allclose(jvp.numpy().sum(), (vjp_fn(ones)[0].numpy() * tangent.numpy()).sum(), rtol=1e-10)


def test_generated_programs_can_be_read():
    layer, x = layer_and_input(TRACEABLE["lecture_lstm"])
    out, _ = layer(x)
    source = out.grad_fn.compiled.source
    assert "def forward(env, L, rows):" in source and "def backward(env, L, rows, first):" in source
    assert "for j in range(L):" in source and "matmul(" in source and "Tensor" not in source


def test_statics_are_recorded_as_the_ops_they_are():
    """W.T of a cell becomes a recorded permute feeding the pass, so its gradient reaches W."""
    layer, x = layer_and_input(TRACEABLE["module_cell"])
    out, _ = layer(x)
    node = out.grad_fn
    assert [p.op for p in node.parents[2:] if isinstance(p, tr.Function)] == ["permute", "permute"]


def test_a_compiler_failure_runs_op_by_op_with_a_warning(monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(drive, "NumpyProgram", broken)
    monkeypatch.setattr(drive, "_CACHE", {})
    monkeypatch.setattr(drive, "_BOUND", drive.weakref.WeakKeyDictionary())
    layer, x = layer_and_input(TRACEABLE["indrnn"])
    with pytest.warns(UserWarning, match="the compiler failed on it .KeyError"):
        out, _ = layer(x)
    layer.fused = False
    expected, _ = layer(x)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-12)


def test_unbatched_input_and_initial_states():
    results = []
    for fused in (False, True):
        layer, _ = layer_and_input(TRACEABLE["lecture_lstm"], fused=fused, num_layers=2)
        x = tr.Tensor(np.random.default_rng(9).standard_normal((5, 3)), dtype="float64", requires_grad=True)
        h0 = tr.Tensor(np.ones((2, 4)), dtype="float64", requires_grad=True)
        out, (h, s) = layer(x, (h0, h0 * 0.5))
        (out.sum() + (h * s).sum()).backward()
        assert out.shape == (5, 4) and h.shape == (2, 4)
        results.append([out.numpy(), h.numpy(), s.numpy(), x.grad.numpy(), h0.grad.numpy()])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, atol=1e-12)


def test_checkpointing_keeps_fewer_arrays_and_gives_the_same_gradients():
    kept, grads = [], []
    for every in (None, 4):
        layer, x = layer_and_input(tr.nn.LayerNormLSTMCell, checkpoint_every=every)
        x = tr.Tensor(np.random.default_rng(10).standard_normal((32, 2, 3)), dtype="float64", requires_grad=True)
        out, _ = layer(x)
        kept.append(sum(a.nbytes for a in out.grad_fn.saved_arrays()))
        (out * out).sum().backward()
        grads.append([x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()])
    assert kept[1] < kept[0] / 4
    for a, b in zip(*grads):
        np.testing.assert_allclose(b, a, atol=1e-12)


def test_a_pass_replays_op_by_op_as_the_op_by_op_layer_records_it():
    """What a drawing or the differentiable backward rebuilds: the steps of fused=False, per t."""
    layer, x = layer_and_input(tr.nn.LayerNormLSTMCell)
    out, _ = layer(x, lengths=[5, 3])
    node = out.grad_fn
    arrays = [tr.Tensor(a, dtype="float64", requires_grad=True) for a in node.arrays]
    with tr.enable_grad():
        steps, (h, c) = drive.replay(node.compiled, arrays[0], arrays[1:3], arrays[3:], node.lengths, False)
    np.testing.assert_allclose(tr.stack(steps).numpy(), out.numpy(), atol=1e-12)
    named = [n for n in walk(steps) if isinstance(n, tr.Function) and n.name in ("h", "c")]
    assert {dict(n.scope)["t"] for n in named} == set(range(5)) and (h.name, c.name) == ("h", "c")


def test_gradients_a_pass_returns_are_its_own_arrays():
    """x's gradient is a new array of the pass, never a buffer a later pass takes again."""
    layer, x = layer_and_input(tr.nn.LayerNormLSTMCell)
    out, _ = layer(x)
    out.sum().backward()
    kept = x.grad.numpy().copy()
    other = tr.Tensor(np.random.default_rng(1).standard_normal((5, 2, 3)), dtype="float64", requires_grad=True)
    out, _ = layer(other)
    (out * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), kept)
    assert not np.shares_memory(x.grad.numpy(), other.grad.numpy())
