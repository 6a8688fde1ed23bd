"""Trace, rewrite and plan of a step: what runs once, over all steps at once, and step by step."""
import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import ops
from tinygrad_rnn.compile import drive, trace
from tinygrad_rnn.compile.plan import FPRE, LOOP, POST
from tinygrad_rnn.compile.rewrite import Assemble
from tinygrad_rnn.nn.recurrent import _step_function


def compiled(cell, batch=2):
    x = np.zeros((batch, cell.input_size), cell.weight_ih.dtype if hasattr(cell, "weight_ih") else np.float32)
    states = [np.zeros((batch, size), x.dtype) for size in cell.state_sizes]
    return drive.compile_step(cell, _step_function(cell), x, states)


def names(ops_list):
    return [op.cls for op in ops_list]


def test_a_trace_records_the_step_s_primitives_and_its_leaves():
    cell = tr.nn.RNNCell(3, 4)
    step = _step_function(cell)
    graph = trace.trace_step(cell, step, np.ones((2, 3), np.float32), [np.ones((2, 4), np.float32)], False)
    assert {op.cls for op in graph.ops} == {ops.Permute, ops.Matmul, ops.Add, ops.Tanh}
    leaves = {id(graph.tensors[v.id]) for v in graph.leaves if v.kind == "param"}
    assert leaves == {id(p) for p in cell.parameters()}
    again = trace.trace_step(cell, step, np.zeros((2, 3), np.float32), [np.ones((2, 4), np.float32)], False)
    assert trace.signature(graph) == trace.signature(again)


def test_the_lstm_plan_hoists_the_input_product_and_keeps_one_recurrent_product_per_step():
    plan = compiled(tr.nn.LSTMCell(3, 4)).fplan
    pre, loop = names(plan.pre_ops), names(plan.loop_ops)
    assert pre.count(ops.Matmul) == 1 and loop.count(ops.Matmul) == 1
    assert ops.Sigmoid not in pre + loop   # sigmoid(z) = 1 / (1 + exp(-z)), the negation folded back
    exp = [op.out.shape for op in plan.loop_ops if op.cls is ops.Exp]
    assert exp == [(2, 8), (2, 4)]          # i and f as one, o on its own: no exp of g's columns between
    tanh = [op.out.shape for op in plan.loop_ops if op.cls is ops.Tanh]
    assert tanh == [(2, 4), (2, 4)]         # g, and the cell state
    assert loop.count(ops.Add) == 4         # the state product's sum, the two 1 + exp, the cell state
    assert not [op for op in plan.loop_ops if op.cls in (ops.Mul, ops.Neg) and op.inputs[1:] and
                op.inputs[1].shape == ()]   # no negation left in the loop
    # the statics are the two transposed weights and the two biases, recorded outside the pass; the
    # pass negates their sigmoid gates' columns once
    assert sorted(v.shape for v in plan.statics) == [(3, 16), (4, 16), (16,), (16,)]
    assert sorted(op.out.shape for op in plan.fold_ops) == [(3, 16), (4, 16), (16,), (16,)]


def test_the_lstm_backward_walks_back_with_one_product_and_sums_weight_gradients_after():
    program = compiled(tr.nn.LSTMCell(3, 4)).program
    bplan = program.bplans["bulk"]
    assert names(bplan.loop_ops).count(ops.Matmul) == 1            # dA_t @ W_hh to the previous state
    assert names(bplan.post_ops).count(ops.Matmul) >= 2            # dx, and the weight products
    assert Assemble in names(bplan.loop_ops) and ops.IndexAdd not in names(bplan.loop_ops)
    assert all(bplan.klass[op.out.id] == FPRE for op in bplan.fpre_ops)
    assert all(bplan.klass[op.out.id] == POST for op in bplan.post_ops)
    source = program.backward_source
    assert "matmul(S0[:L].reshape(L * 2, 4).T, " in source   # sum_t h_t^T dA_t as one product, over views


def test_step_by_step_backward_moves_the_work_on_forward_values_into_the_loop():
    program = compiled(tr.nn.LayerNormLSTMCell(3, 4)).program
    bulk, loop = program.bplans["bulk"], program.bplans["loop"]
    assert bulk.fpre_ops and len(loop.fpre_ops) < len(bulk.fpre_ops)
    assert len(loop.loop_ops) > len(bulk.loop_ops)
    assert all(loop.klass[op.out.id] == LOOP for op in loop.loop_ops)


def test_step_by_step_backward_leaves_row_statistics_for_all_steps_at_once():
    """LayerNorm's VJP works on its row's 1/std (a (B, 1) column of forward values): a few elements a
    step, computed for all steps before the loop rather than as calls in it."""
    program = compiled(tr.nn.LayerNormLSTMCell(3, 4), batch=5).program
    loop = program.bplans["loop"]
    columns = [op for op in loop.fpre_ops if op.out.shape == (5, 1)]
    assert columns
    loop_ids = {op.out.id for op in loop.loop_ops}
    for op in loop.loop_ops:   # a column in the loop reads what the loop makes
        if op.out.shape == (5, 1):
            assert any(v.id in loop_ids or loop.klass.get(v.id) == LOOP for v in op.inputs)
    assert all(loop.klass[v.id] != LOOP for op in loop.fpre_ops for v in op.inputs)


def test_repeated_ops_are_computed_once():
    """LayerNorm's (x - mean)^2 has a VJP that makes g * (x - mean) twice."""
    program = compiled(tr.nn.LayerNormLSTMCell(3, 4)).program
    keys = [(op.cls, tuple(v.id for v in op.inputs), trace.freeze(op.options))
            for op in program.bplans["bulk"].loop_ops]
    assert len(keys) == len(set(keys))


def test_compile_refuses_what_it_cannot_follow():
    from tests.compile.cells import BranchOnDataCell
    cell = BranchOnDataCell(3, 4)
    try:
        compiled(cell)
    except trace.NotTraceable as refused:
        assert "reads a tensor's value into Python (bool())" in refused.reason
    else:
        raise AssertionError("a branch on data was compiled")


def test_tracing_leaves_the_random_stream_where_it_was():
    tr.manual_seed(11)
    expected = tr.randn(3).numpy()
    tr.manual_seed(11)
    cell = tr.nn.LayerNormLSTMCell(3, 4)
    tr.manual_seed(11)
    compiled(cell)
    np.testing.assert_array_equal(tr.randn(3).numpy(), expected)
