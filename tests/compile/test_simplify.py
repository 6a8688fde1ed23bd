"""The VJP's algebraic simplification (compile/simplify.py) and the cheaper lowerings: fewer calls in
the loop walking back, the same results (test_exact.py checks every cell to 1e-12 in float64)."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.compile.cells import NormalizedCell
from tinygrad_rnn.compile import drive, rewrite, simplify
from tinygrad_rnn.ops import Add, Div, Exp, Mean, Mul, Neg, Sigmoid, Sub, Tanh

CELLS = {"layer_norm_lstm": tr.nn.LayerNormLSTMCell, "normalized": NormalizedCell}


def compiled(cell_type):
    layer = tr.nn.Recurrent(cell_type, 6, 8, dtype="float64")
    out, _ = layer(tr.randn(5, 4, 6, dtype="float64"))
    return out.grad_fn.compiled


@pytest.mark.parametrize("name", list(CELLS))
def test_the_loop_walking_back_runs_fewer_ops_and_no_negation(monkeypatch, name):
    monkeypatch.setattr(drive, "_CACHE", {})
    loop_ops = compiled(CELLS[name]).program.bplans["bulk"].loop_ops
    assert not [op for op in loop_ops if op.cls is Neg]
    with monkeypatch.context() as plain:
        plain.setattr(drive, "_CACHE", {})
        plain.setattr(rewrite, "simplify", lambda graph, bgraph, per_time_ids: None)
        before = compiled(CELLS[name]).program.bplans["bulk"].loop_ops
    assert len(loop_ops) <= len(before) - 4, (len(loop_ops), len(before))


def test_the_generated_loops_read_spread_statics_and_sum_rows_by_products(monkeypatch):
    monkeypatch.setattr(drive, "_CACHE", {})
    program = compiled(tr.nn.LayerNormLSTMCell).program
    loop = program.forward_source.split("for j in range(L):")[1]
    assert "sum_into" not in loop and "matmul(T" in loop     # the means: one product each
    assert "full0" in loop                                     # the gain, spread to (B, 4H) before the loop
    assert "einsum('ij,ij->j'" in program.backward_source      # the gain's gradient: no product array


def test_float32_stays_close_to_op_by_op():
    results = []
    for fused in (False, True):
        tr.manual_seed(0)
        layer = tr.nn.Recurrent(tr.nn.LayerNormLSTMCell, 6, 8, fused=fused)
        x = tr.Tensor(np.random.default_rng(0).standard_normal((7, 4, 6)).astype(np.float32), requires_grad=True)
        out, _ = layer(x)
        (out * out).sum().backward()
        results.append([out.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=1e-4)


def test_sibling_ops_on_adjacent_chunks_run_once(monkeypatch):
    """GRU's r and z: their two sums and two sigmoids (each an exp, a sum and a quotient) on neighbouring
    chunks become one of each."""
    monkeypatch.setattr(drive, "_CACHE", {})
    cell = tr.nn.GRUCell(6, 8)
    out = drive.compiled_run(cell, tr.randn(5, 4, 6), (tr.zeros(4, 8),))
    out = out[0] if isinstance(out, tuple) else out
    loop_ops = out.grad_fn.compiled.fplan.loop_ops
    assert Sigmoid not in [op.cls for op in loop_ops]
    for cls in (Exp, Div):
        assert [op.out.shape for op in loop_ops if op.cls is cls] == [(4, 16)]   # (B, 2H)
    assert [op.out.shape for op in loop_ops if op.cls is Tanh] == [(4, 8)]      # n's
    assert [op.out.shape for op in loop_ops if op.cls is Add].count((4, 16)) == 2   # the gates' sum, the 1 + exp


def _reads_itself(op):
    return op.cls is Add and op.inputs[0] is op.inputs[1]


@pytest.mark.parametrize("plan", ["bulk", "loop"])
def test_doublings_counts_and_negations_leave_the_loop(monkeypatch, plan):
    """LayerNorm's VJP: x + x (the square's 2) goes onto a forward factor, the division of a row sum by
    minus the count into the mean's row weights (the sum's negation into a difference), and the
    negation of a forward value read in a sum of products out of the product."""
    monkeypatch.setattr(drive, "_CACHE", {})
    loop_ops = compiled(tr.nn.LayerNormLSTMCell).program.bplans[plan].loop_ops
    assert not [op for op in loop_ops if op.cls is Neg or _reads_itself(op)]
    assert not [op for op in loop_ops if op.cls is Div and op.inputs[1].shape == ()]
    assert [op for op in loop_ops if op.cls is Mean]


def test_a_gradient_shared_by_two_products_multiplies_their_forward_sum(monkeypatch):
    """GRU's z: dh * h_prev + dh * -n -> dh * (h_prev - n), the difference made before the loop."""
    monkeypatch.setattr(drive, "_CACHE", {})
    cell = tr.nn.GRUCell(6, 8)
    out = drive.compiled_run(cell, tr.randn(5, 4, 6), (tr.zeros(4, 8),))
    seeds = {v.id for v in out[0].grad_fn.compiled.program.bplans["loop"].seeds}
    for plan in ("bulk", "loop"):
        loop_ops = out[0].grad_fn.compiled.program.bplans[plan].loop_ops
        assert not [op for op in loop_ops if op.cls is Neg]
        assert len([op for op in loop_ops if op.cls is Mul and seeds & {v.id for v in op.inputs}]) == 3


def test_a_layer_norm_keeps_its_normalised_input_for_backward_and_not_the_centred_one(monkeypatch):
    """The VJP reads x - mean beside (x - mean) / std: it reads the quotient times the std instead, so
    the forward keeps one wide value fewer per norm and step (two in LayerNormLSTMCell)."""
    def saved_widths(program):
        values = {v.id: v for v in program.fplan.graph.values}
        return sorted(values[i].shape[-1] for i in program.fplan.saved if values[i].shape[-1] > 1)

    monkeypatch.setattr(drive, "_CACHE", {})
    program = compiled(tr.nn.LayerNormLSTMCell).program
    with monkeypatch.context() as plain:
        plain.setattr(drive, "_CACHE", {})
        plain.setattr(simplify, "_from_quotient", lambda g, op: None)
        before = compiled(tr.nn.LayerNormLSTMCell).program
    assert saved_widths(before) == sorted(saved_widths(program) + [8, 32])  # the cell's and the gates' centred
    centred = {op.out.id for op in program.fplan.graph.ops if op.cls is Sub}
    assert not centred & program.fplan.saved
