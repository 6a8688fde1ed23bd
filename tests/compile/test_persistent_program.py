"""The persistent kernels of compiled cells (persistent_program), built as C++ with blocks and
threads as loops and run on float64: every result equals the op-by-op graph (and so the NumPy
program) to 1e-12, for the lecture's cells, LayerNormLSTMCell, the built-in cells compiled from
their composed steps, cells written only in tests, with lengths, reverse and checkpoint_every; a
step they cannot take runs per step and says why; the GPU's choice between the two."""
import shutil

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.compile.cpp import cpp_launcher
from tests.compile.persistent_cpp import EDGE_SHAPES, cpp_build, products, small_plan
from tests.compile.test_exact import CELLS, OPTIONS, TOLERANCE, compiled_built_ins, run_layer  # noqa: F401
from tinygrad_rnn.compile import drive
from tinygrad_rnn.compile import persistent_program as P
from tinygrad_rnn.compile.numpy_program import NumpyProgram
from tinygrad_rnn.nn import fused
from tinygrad_rnn.nn import latency_model as LM
from tinygrad_rnn.nn import persistent_kernels as PK
from tinygrad_rnn.tensor import Tensor

pytestmark = pytest.mark.filterwarnings("error")


class RowNormCell(tr.nn.RecurrentCell):
    """Written only here: the state scaled by its row's root mean square before the product, a
    residual and a rectified row sum (h' = h / 2 + tanh(x W + (h / rms(h)) U) - relu(sum_row(h)) / 4)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        rng = np.random.default_rng(11)
        self.w = tr.nn.Parameter(Tensor(rng.standard_normal((input_size, hidden_size)) * 0.5, dtype=dtype))
        self.u = tr.nn.Parameter(Tensor(rng.standard_normal((hidden_size, hidden_size)) * 0.5, dtype=dtype))

    def step(self, x, state):
        h, = state
        scaled = h / ((h * h).mean(dim=1, keepdim=True) + 1.0) ** 0.5
        return (h * 0.5 + (x @ self.w + scaled @ self.u).tanh() - h.sum(dim=1, keepdim=True).relu() * 0.25,)


PERSISTENT = {**{name: CELLS[name] for name in CELLS if name != "many_ops"}, "row_norm": (RowNormCell, {})}
ALL = {**CELLS, "row_norm": (RowNormCell, {})}


class Programs(list):
    plan_for = staticmethod(small_plan())


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed to run the generated kernels on the CPU")
    return tmp_path_factory.mktemp("persistent")


@pytest.fixture
def programs(directory, monkeypatch):
    """The GPU's choice of program made on the CPU: C++ kernels, NumPy arrays, the plans of
    `programs.plan_for`; returns the programs made."""
    made = Programs()
    build, launcher = cpp_build(directory), cpp_launcher(directory)

    def make_program(fplan, bplans, device):
        made.append(P.choose_program(fplan, bplans, np, launcher, build, made.plan_for))
        return made[-1]
    monkeypatch.setattr(drive, "make_program", make_program)
    monkeypatch.setattr(drive, "_CACHE", {})
    monkeypatch.setattr(drive, "_BOUND", drive.weakref.WeakKeyDictionary())
    monkeypatch.setattr(fused, "CUDA_STEPS", "auto")
    monkeypatch.setitem(CELLS, "row_norm", (RowNormCell, {}))
    return made


def assert_equal_op_by_op(name, options):
    expected, _ = run_layer(name, OPTIONS[options], fused=False)
    got, passes = run_layer(name, OPTIONS[options], fused=True)
    assert passes > 0
    for k, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, atol=TOLERANCE, rtol=0, err_msg=f"result {k}")


@pytest.mark.parametrize("options,work_on_forward_values", [("one_layer", "all steps at once"),
                                                             ("checkpoint_reverse_lengths", "step by step"),
                                                             ("stacked_bidirectional_lengths_hx", "all steps at once")])
@pytest.mark.parametrize("name", list(PERSISTENT))
@pytest.mark.usefixtures("compiled_built_ins")
def test_persistent_kernels_equal_op_by_op(programs, monkeypatch, name, options,
                                           work_on_forward_values):
    if work_on_forward_values == "step by step":
        monkeypatch.setattr(drive, "BULK_BYTES", 0)
    assert_equal_op_by_op(name, options)
    assert programs and all(isinstance(p, P.PersistentProgram) for p in programs), [getattr(p, "per_step_reason", None) for p in programs]


@pytest.mark.parametrize("plan", ["weights from global memory", "an H200's plan"])
@pytest.mark.parametrize("name", ["lecture_lstm", "lecture_gru", "layer_norm_lstm", "row_norm"])
@pytest.mark.usefixtures("compiled_built_ins")
def test_other_plans_give_the_same_results(programs, monkeypatch, name, plan):
    plan_for = small_plan(blocks=2, threads=7, tile=2, resident=False) if plan.startswith("weights") else \
        lambda products, batch, itemsize: P.make_plan(products, batch, itemsize, 132, 227 * 1024)
    programs.plan_for = plan_for
    assert_equal_op_by_op(name, "checkpoint_reverse_lengths")
    assert all(isinstance(p, P.PersistentProgram) for p in programs)


@pytest.mark.parametrize("edge", list(EDGE_SHAPES))
@pytest.mark.parametrize("name", ["lecture_lstm", "row_norm"])
def test_the_tiled_product_at_its_edges(programs, name, edge):
    """Register tiles, slices of k and rounds at shapes that do not divide them, equal op by op."""
    batch, hidden, plan, made = EDGE_SHAPES[edge]
    programs.plan_for = small_plan(**plan)
    expected, _ = run_layer(name, OPTIONS["one_layer"], fused=False, batch=batch, hidden=hidden)
    got, passes = run_layer(name, OPTIONS["one_layer"], fused=True, batch=batch, hidden=hidden)
    assert passes > 0 and programs and all(isinstance(p, P.PersistentProgram) for p in programs)
    assert made(products(programs)), edge
    for k, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, atol=TOLERANCE, rtol=0, err_msg=f"result {k}")


@pytest.mark.usefixtures("compiled_built_ins")
def test_a_step_without_a_lowering_runs_per_step_and_says_why(programs):
    assert_equal_op_by_op("many_ops", "checkpoint_reverse_lengths")
    assert programs and all(type(p) is NumpyProgram for p in programs)
    assert "einsum has no lowering in a persistent kernel" in programs[0].per_step_reason


def test_the_source_shows_the_kernels(programs):
    layer = tr.nn.Recurrent(tr.nn.LayerNormLSTMCell, 3, 4, dtype="float64")
    out, _ = layer(tr.randn(5, 2, 3, dtype="float64"))
    source = out.grad_fn.compiled.source
    assert "/* persistent kernels */" in source and "grid_barrier" in source and "mean over axes (1,)" in source
    assert "for j in range(L)" not in source   # every loop is a launch


def _program_for(programs, monkeypatch, steps="auto", multiprocessors=132, shared=227 * 1024):
    """The program the GPU's choice makes for the lecture LSTM (B=2, H=4) with these device facts."""
    monkeypatch.setattr(PK, "multiprocessor_count", lambda: multiprocessors)
    monkeypatch.setattr(PK, "shared_memory_limit", lambda: shared)
    monkeypatch.setattr(fused, "CUDA_STEPS", steps)
    programs.plan_for = P.device_plan
    monkeypatch.setattr(drive, "_CACHE", {})
    programs.clear()
    layer = tr.nn.Recurrent(CELLS["lecture_lstm"][0], 3, 4, dtype="float64")
    out, _ = layer(tr.randn(5, 2, 3, dtype="float64", requires_grad=True))
    out.sum().backward()
    return programs[0]


def test_the_gpu_takes_the_persistent_kernel_where_the_step_fits(programs, monkeypatch):
    program = _program_for(programs, monkeypatch)
    assert isinstance(program, P.PersistentProgram)
    plan = program.launches["tinygrad_rnn_forward"].plan
    assert plan.resident and plan.blocks == 16 and plan.shared <= 227 * 1024   # N = 4H = 16 columns
    assert isinstance(_program_for(programs, monkeypatch, steps="persistent"), P.PersistentProgram)


@pytest.mark.parametrize("facts,reason", [
    ({"steps": "elementwise"}, "TINYGRAD_RNN_CUDA_STEPS=elementwise"),
    ({"shared": 16}, "does not fit in shared memory"),
])
def test_the_gpu_runs_per_step_otherwise(programs, monkeypatch, facts, reason):
    program = _program_for(programs, monkeypatch, **facts)
    assert type(program) is NumpyProgram and reason in program.per_step_reason


def test_the_latency_model_reads_the_persistent_program(programs):
    """The model's step of a persistent program follows its kernels: a grid barrier after each phase,
    the products' operands from L2, each product in the register tiles and slices its kernel runs."""
    from bench.bench_compiled import program_model
    programs.plan_for = small_plan(threads=64, tile=8)
    run_layer("lecture_lstm", OPTIONS["one_layer"], fused=True)
    program = programs[-1]
    kind = drive.backward_kind(3 * 4 * 8, 5)
    for direction, name in (("forward", "tinygrad_rnn_forward"), ("backward", f"tinygrad_rnn_backward_{kind}")):
        kernel = next(kernel for kernel, _ in program.kernels if kernel.name == name)
        phases = kernel.step_phases()
        assert [phase[4] for phase in phases if phase[0] == "product"] == kernel.tilings()
        assert not any(phase[3] for phase in phases if phase[0] == "product")   # A from L2
        terms = program.step_terms(kind)[direction]
        assert terms["barrier"] == LM.cycles_to_us(len(phases) * LM.figure("grid_barrier"))
    step = program.step_us(kind)
    assert program_model(program, 3, 3, 4, 5) == (step, LM.layer_ms(step, 4, 3, 3, 4, 5))


def test_the_model_s_product_follows_the_tiling():
    """A backward product (32 x 512) @ (512 x 128) on clusters of 4 blocks, one row each: slices of k
    that fill the threads take less than one chain over all of k; tiles beyond the threads take rounds,
    each staging A again."""
    from tinygrad_rnn.compile import cluster_program as CP
    plan = CP.cluster_plan([(512, 128)], 32, 4, 4, 1, threads=256, TK=512)

    def terms(tiling, plan=plan):
        return LM.compiled_step_terms([("product", 512, 128, True, tiling)], plan, 4, plan.rows, plan.cluster)
    chain, tiled = terms(PK.Tiling(1, 1, 1)), terms(PK.Tiling(1, 4, 32))
    assert tiled["product"] < chain["product"] / 4 and tiled["operand"] == chain["operand"]
    assert PK.product_tiling(1, 32, 512, 256) == PK.Tiling(1, 4, 32)   # the kernel's: 8 tiles x 32 slices
    # 8 tiles of 1 x 4 on 4 threads: two rounds, each staging the 4 tiles of A; on 8 threads, one
    four, eight = (CP.cluster_plan([(512, 128)], 32, 4, 4, 1, threads=threads, TK=128) for threads in (4, 8))
    assert terms(PK.Tiling(1, 4, 1), four)["operand"] == 2 * terms(PK.Tiling(1, 4, 1), eight)["operand"]


def test_plans_keep_the_weights_resident_where_they_fit():
    products = [(256, 1024)]  # a lecture LSTM with H = 256: W (256, 4 * 256)
    plan = P.make_plan(products, 64, 4, 132, 227 * 1024)
    assert plan.resident and plan.blocks == 132
    assert plan.shared == 4 * P.shared_elements(products, 64, 132, plan.TK, True) <= 227 * 1024
    small = P.make_plan(products, 64, 4, 132, 24 * 1024)   # tiles shrink before the weights leave
    assert small.resident and small.TK < plan.TK
    far = P.make_plan([(4096, 16384)], 64, 4, 132, 48 * 1024)
    assert not far.resident
    # the sums stay in registers: a block needs a tile of one column of A at least (64 rows, an odd stride)
    assert P.make_plan([(4096, 16384)], 64, 4, 1, 65 * 4).TK == 1
    assert P.make_plan([(4096, 16384)], 64, 4, 1, 65 * 4 - 1) is None


# cells whose masks are computed from the data (user_cells.py): comparisons, signs and selects run in
# the row phases, the masks kept as C bools; max(dim)'s first-maximum mask has no lowering here
CHOOSING = {"AbsCell": True, "MaximumCell": True, "SoftplusCell": True, "ClampCell": True, "WhereOnDataCell": True,
            "NormCell": True, "MaxOverFeaturesCell": False}


@pytest.mark.parametrize("options", ["one_layer", "checkpoint_reverse_lengths"])
@pytest.mark.parametrize("name", list(CHOOSING))
def test_cells_choosing_by_value_in_persistent_kernels(programs, monkeypatch, name, options):
    from tests.compile.user_cells import TRACEABLE as USER_CELLS
    monkeypatch.setitem(CELLS, name, (USER_CELLS[name], {}))
    if options == "checkpoint_reverse_lengths":
        monkeypatch.setattr(drive, "BULK_BYTES", 0)
    assert_equal_op_by_op(name, options)
    persistent = [isinstance(p, P.PersistentProgram) for p in programs]
    assert programs and all(persistent) == CHOOSING[name], [getattr(p, "per_step_reason", None) for p in programs]
