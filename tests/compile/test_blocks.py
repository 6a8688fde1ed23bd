"""Gate-major scratch (compile/blocks.py): which matrices get one, the code that uses it, and that
the pass computes the very same numbers with it as without it (and as op by op, test_exact.py)."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.compile.test_exact import CELLS, OPTIONS, TOLERANCE, compiled_built_ins, run_layer  # noqa: F401
from tinygrad_rnn.compile import drive
from tinygrad_rnn.compile.blocks import Blocks, _width, column_block
from tinygrad_rnn.compile.numpy_program import NumpyProgram
from tinygrad_rnn.compile.trace import Op, Value
from tinygrad_rnn.ops import Getitem, Mul, Sub


def compiled_program(cell, B=3, T=4):
    out, _ = drive.compiled_run(cell, tr.randn(T, B, cell.input_size, dtype="float64"),
                                tuple(tr.zeros(B, s, dtype="float64") for s in cell.state_sizes))
    return out.grad_fn.compiled.program


def loop_body(source):
    return source.split("for j in range(L - 1, -1, -1):")[1]


def test_the_lstm_backward_works_its_gates_in_scratch():
    program = compiled_program(tr.nn.LSTMCell(3, 4, dtype="float64"))
    body = loop_body(program.backward_source.split("# backward (loop)")[1])
    assert ".reshape(3, 4, 4).swapaxes(0, 1), GM" in body      # the gradient row: one copy out
    assert "copyto(GM" in body                                  # a saved activation: one copy in
    assert "subtract(k1, GM" in body                            # 1 - s of two gates as one call


@pytest.mark.parametrize("work_on_forward_values", ["all steps at once", "step by step"])
@pytest.mark.parametrize("name", ["lstm", "gru", "layer_norm_lstm", "lecture_lstm", "lecture_gru", "peephole_lstm"])
@pytest.mark.usefixtures("compiled_built_ins")
def test_scratch_changes_no_number(monkeypatch, name, work_on_forward_values):
    if name not in CELLS:
        pytest.skip(f"{name} is not among the test cells")
    if work_on_forward_values == "step by step":
        monkeypatch.setattr(drive, "STEP_BYTES", 0)
    options = OPTIONS["checkpoint_reverse_lengths"]
    runs = {}
    for blocks in (False, True):
        monkeypatch.setattr(drive, "_CACHE", {})
        monkeypatch.setattr(drive, "_BOUND", drive.weakref.WeakKeyDictionary())
        monkeypatch.setattr(drive, "make_program",
                            lambda fplan, bplans, device, blocks=blocks: NumpyProgram(fplan, bplans, blocks=blocks))
        runs[blocks], _ = run_layer(name, options, fused=True)
    expected, _ = run_layer(name, options, fused=False)
    for k, (a, b, c) in enumerate(zip(runs[True], runs[False], expected)):
        np.testing.assert_array_equal(a, b, err_msg=f"result {k}")
        np.testing.assert_allclose(a, c, atol=TOLERANCE, rtol=0, err_msg=f"result {k}")


# ----------------------------------------------------------------------------- decisions, on small graphs


_ids = iter(range(10 ** 6))


def _value(shape):
    return Value(next(_ids), shape, "float64", "op")


def _op(cls, inputs, ops, shape=None, **options):
    out = _value(shape or inputs[0].shape)
    out.op = Op(cls, inputs, options, out)
    ops.append(out.op)
    return out


def _columns(base, lo, hi, ops):
    return _op(Getitem, [base], ops, (base.shape[0], hi - lo), index=(slice(None), slice(lo, hi)))


def _mul(a, b, ops):
    return _op(Mul, [a, b], ops)


def test_a_matrix_takes_a_scratch_where_its_block_operands_outnumber_the_blocks_copied():
    ops = []
    m = _value((3, 8))
    a, b = _columns(m, 0, 4, ops), _columns(m, 4, 8, ops)
    _mul(a, b, ops)
    blocks = Blocks(ops, {}, lambda v: False)
    assert m.id not in blocks.read   # two operands, two blocks: the copy would cost what it saves
    _mul(a, a, ops)
    blocks = Blocks(ops, {}, lambda v: False)
    assert blocks.read[m.id].shape == (2, 3, 4)
    assert blocks.view(a) == f"{blocks.read[m.id].name}[0]"


def test_only_the_blocks_read_are_copied_and_uneven_columns_take_none():
    ops = []
    m = _value((3, 12))
    g = _columns(m, 8, 12, ops)
    _mul(g, g, ops)
    blocks = Blocks(ops, {}, lambda v: False)
    assert (blocks.read[m.id].first, blocks.read[m.id].end) == (2, 3)
    assert _width(m, [(0, 5), (5, 12)]) is None      # no common block width
    assert _width(m, [(0, 3), (3, 12)]) == 3
    assert _width(m, [(0, 12)]) is None              # the whole matrix is no block
    assert _width(m, [(0, 6), (8, 12)]) == 2
    assert column_block(g)[1:] == (8, 12)


def test_a_whole_op_read_only_by_blocks_runs_on_the_scratch():
    ops = []
    m = _value((3, 8))
    one = _value(())
    rest = _op(Sub, [one, m], ops, m.shape)                  # 1 - m, read only by its two blocks
    a, b = _columns(m, 0, 4, ops), _columns(m, 4, 8, ops)
    _mul(_columns(rest, 0, 4, ops), a, ops)
    _mul(_columns(rest, 4, 8, ops), b, ops)
    blocks = Blocks(ops, {}, lambda v: False)
    assert rest.id in blocks.whole_ops and blocks.whole[rest.id].shape == (2, 3, 4)
    assert blocks.read[m.id].shape == (2, 3, 4) and blocks.needs(rest.op) == [blocks.read[m.id]]
    kept = Blocks(ops, {}, lambda v: v is rest)       # a value kept for every step keeps its own buffer
    assert rest.id not in kept.whole_ops
