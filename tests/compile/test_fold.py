"""The forward algebra of compile/fold.py: sigmoids as 1 / (1 + exp(-z)) with their negation folded back into
statics or input-only work, and static terms of per-step sums added before the loop. test_exact.py
checks every cell, these included, against the op-by-op graph to 1e-12 in float64."""
import numpy as np

import tinygrad_rnn as tr
from tests.compile.cells import NegatedGatesCell, SquaredGateCell
from tinygrad_rnn import ops
from tinygrad_rnn.compile import drive, fold
from tinygrad_rnn.nn.recurrent import _step_function


def compiled(cell):
    x = np.zeros((2, cell.input_size), np.float32)
    states = [np.zeros((2, size), np.float32) for size in cell.state_sizes]
    return drive.compile_step(cell, _step_function(cell), x, states)


def names(ops_list):
    return [op.cls for op in ops_list]


def test_every_foldable_sigmoid_becomes_an_exp_and_the_negation_lands_once_per_pass():
    plan = compiled(NegatedGatesCell(3, 4)).fplan
    assert ops.Sigmoid not in names(plan.loop_ops)
    # u and w's columns, the gain and the constant 1 of 1 - q: products of the statics, once per pass
    assert sorted(op.out.shape for op in plan.fold_ops) == [(), (3, 8), (4,), (4, 8)]
    assert len(plan.statics) == len({v.id for v in plan.statics})
    # the input-only tanh is negated for all steps at once
    assert names(plan.pre_ops)[-2:] == [ops.Tanh, ops.Mul]
    # h * c, read by two sigmoids: one per-step copy of h negated serves both
    states = {v.id for v in plan.graph.states}
    copies = [op for op in plan.loop_ops if op.cls is ops.Mul and states & {v.id for v in op.inputs}
              and plan.graph.values[op.inputs[1].id].kind == "const"]
    assert len(copies) == 1


def test_a_value_the_vjp_reads_keeps_its_numbers():
    """A quotient's VJP reads the quotient: negating it would cost a per-step copy, so its sigmoid stays."""
    cell = NegatedGatesCell(3, 4)
    cell.step = lambda x, state: ((((x @ cell.u)[:, :4] + state[0]) / cell.gain).sigmoid(), state[1])
    plan = compiled(cell).fplan
    assert names(plan.loop_ops).count(ops.Sigmoid) == 1 and not plan.fold_ops


def test_a_sigmoid_whose_negation_lands_on_a_per_step_product_stays():
    plan = compiled(SquaredGateCell(3, 4)).fplan
    sigmoids = [op for op in plan.loop_ops if op.cls is ops.Sigmoid]
    assert len(sigmoids) == 1
    square = sigmoids[0].inputs[0].op
    assert square.cls is ops.Mul and square.inputs[0] is square.inputs[1] is plan.graph.states[0]
    assert names(plan.loop_ops).count(ops.Exp) == 1   # the other gate's


def test_the_exp_form_takes_fewer_calls_per_step(monkeypatch):
    for cell_type in (tr.nn.LSTMCell, tr.nn.GRUCell, tr.nn.LayerNormLSTMCell, NegatedGatesCell):
        folded = compiled(cell_type(3, 4)).fplan.loop_ops
        with monkeypatch.context() as plain:
            plain.setattr(fold, "_exp_form", lambda graph, plan, read_by_vjp: None)
            before = compiled(cell_type(3, 4)).fplan.loop_ops
        calls = [sum(4 if op.cls is ops.Sigmoid else 1 for op in loop if op.cls is not ops.Getitem)
                 for loop in (folded, before)]
        assert calls[0] < calls[1], (cell_type.__name__, calls)


def test_a_static_term_of_a_per_step_sum_is_added_before_the_loop():
    """The RNN's b_hh joins the input projection: the loop keeps the product and one sum, and the two
    biases are summed once per pass."""
    plan = compiled(tr.nn.RNNCell(3, 4)).fplan
    assert names(plan.loop_ops) == [ops.Matmul, ops.Add, ops.Tanh]
    assert names(plan.pre_ops) == [ops.Matmul, ops.Add]
    assert names(plan.fold_ops) == [ops.Add] and sorted(v.shape for v in plan.statics) == [(3, 4), (4,), (4,), (4, 4)]
