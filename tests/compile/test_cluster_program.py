"""Compiled cells' cluster programs (compile/cluster_program.py) built as C++ with clusters, blocks
and threads as loops and run on float64: every result equals the op-by-op graph to 1e-12 for the
lecture's cells, LayerNormLSTMCell, cells written only in tests and built-in cells compiled from
their composed steps, with lengths, reverse, two layers and checkpoint_every, on clusters of 1, 2, 4
and 8 blocks over groups of rows that do not divide the batch; the CUDA source builds for sm_90; a
step the cluster kernels cannot take runs the persistent or per-step program and says why; the
GPU's choice between them and the clusters' plans."""
import shutil
import subprocess

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.compile.cpp import cpp_launcher
from tests.compile.persistent_cpp import EDGE_SHAPES, cpp_build, products, small_plan
from tests.compile.test_exact import CELLS, OPTIONS, TOLERANCE, compiled_built_ins, run_layer  # noqa: F401
from tests.compile.test_persistent_program import RowNormCell
from tests.compile.user_cells import BatchNormRNNCell
from tinygrad_rnn.compile import cluster_program as CP
from tinygrad_rnn.compile import drive
from tinygrad_rnn.compile import persistent_program as P
from tinygrad_rnn.compile.numpy_program import NumpyProgram
from tinygrad_rnn.nn import cluster_kernels as CK
from tinygrad_rnn.nn import fused
from tinygrad_rnn.nn import latency_model as LM
from tinygrad_rnn.nn import launch_plan as LP
from tinygrad_rnn.nn import persistent_kernels as PK

pytestmark = pytest.mark.filterwarnings("error")

NAMES = ["layer_norm_lstm", "lecture_lstm", "lecture_gru", "peephole_lstm", "indrnn", "mgu", "module_cell",
         "normalized", "negated_gates", "squared_gate", "row_norm", "lstm_proj", "gru_reset_before"]
# (blocks per cluster, batch rows per group) over a batch of 3: groups of 2 and 1, of 1, of all 3
SPLITS = [(1, 2), (2, 2), (4, 2), (8, 2), (2, 1), (8, 3)]
H200 = {"multiprocessors": 132, "shared_limit": 227 * 1024}


def ragged(cluster, rows, resident=True, exchange=True, threads=5, TK=3, min_chunk=1):
    """Clusters of `cluster` blocks on groups of `rows` rows, 5 threads, tiles of 3 columns: blocks
    without columns or rows, threads with several elements or none, sums over several tiles, slices
    of k of one or two; the products' operands through the blocks' shared memory if `exchange`."""
    return lambda products, batch, itemsize, **needs: CP.cluster_plan(
        products, batch, itemsize, cluster, rows, threads=threads, TK=TK, resident=resident, exchange=exchange,
        min_chunk=min_chunk, **needs)


def no_room_for_the_exchange(products, batch, itemsize, exchanges=()):
    """A GPU whose blocks' shared memory holds the weights and a whole tile, not the exchange buffers."""
    tile = min(P.MAX_TILE, max([K for K, _ in products], default=1))
    limit = itemsize * P.shared_elements(products, batch, 1, tile, True)
    made = CP.make_cluster_plan(products, batch, itemsize, 1, limit, sizes=(1,), exchanges=exchanges)
    assert made.resident and not made.exchange, made
    return made


class ChainedCell(tr.nn.RecurrentCell):
    """Written only here: a product of a product, h' = tanh(x W + (h U) V) (the second product's
    operand is written by the first, column by column: it crosses the cluster through global memory)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        rng = np.random.default_rng(12)
        self.w, self.u, self.v = (tr.nn.Parameter(tr.Tensor(rng.standard_normal(shape) * 0.5, dtype=dtype)) for shape in
                                  ((input_size, hidden_size), (hidden_size, hidden_size), (hidden_size, hidden_size)))

    def step(self, x, state):
        h, = state
        return ((x @ self.w + (h @ self.u) @ self.v).tanh(),)


class Programs(list):
    """The programs made, and the plans and table the next ones are made with."""
    plan_for = staticmethod(small_plan())
    cluster_plan_for = staticmethod(ragged(2, 2))


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """C++ builds shared by the module's tests (cached by source: one per kernel text)."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed to run the generated kernels on the CPU")
    directory = tmp_path_factory.mktemp("cluster")
    return cpp_build(directory), cpp_build(directory, barrier=False), cpp_launcher(directory)


@pytest.fixture
def programs(builds, monkeypatch):
    """The GPU's choice of program made on the CPU (TINYGRAD_RNN_CUDA_STEPS=cluster): C++ kernels,
    NumPy arrays, the plans of `programs`; returns the programs made."""
    made = Programs()
    build, cluster_build, launcher = builds

    def make_program(fplan, bplans, device):
        made.append(CP.choose_program(fplan, bplans, np, launcher, build, cluster_build, made.plan_for,
                                      made.cluster_plan_for))
        return made[-1]
    monkeypatch.setattr(drive, "make_program", make_program)
    monkeypatch.setattr(drive, "_CACHE", {})
    monkeypatch.setattr(drive, "_BOUND", drive.weakref.WeakKeyDictionary())
    monkeypatch.setattr(fused, "CUDA_STEPS", "cluster")
    monkeypatch.setitem(CELLS, "row_norm", (RowNormCell, {}))
    monkeypatch.setitem(CELLS, "batch_norm", (BatchNormRNNCell, {}))
    monkeypatch.setitem(CELLS, "chained", (ChainedCell, {}))
    return made


# cells with a product whose operand is another product's output (the projection, the chain), each
# column block written by another block than the one that owns the row: read from global memory
OPERAND_FROM_A_PRODUCT = {"lstm_proj": "the rows before matmul do not write all of its operand",
                          "chained": "matmul reads the output of matmul"}


def assert_exchanged_on_chip(name, programs):
    """Every product's operand crosses the cluster through shared memory where the plan has room,
    except where the cell says otherwise."""
    for program in programs:
        if not any(kernel.products for kernel, _ in program.kernels):
            assert program.exchange_reason is None
        elif name in OPERAND_FROM_A_PRODUCT:
            assert OPERAND_FROM_A_PRODUCT[name] in program.exchange_reason, program.exchange_reason
        elif all(kernel.plan.exchange for kernel, _ in program.kernels if kernel.products):
            assert program.exchange_reason is None, program.exchange_reason
        else:
            assert "do not fit in a block's shared memory" in program.exchange_reason, program.exchange_reason


def assert_clusters_equal_op_by_op(programs, name, options, splits, **shape):
    """Each split's compiled pass (a fresh program each) equals the op-by-op graph; returns the
    products of every split's kernels (persistent_cpp.Product). shape: run_layer's batch, hidden."""
    expected, _ = run_layer(name, OPTIONS[options], fused=False, **shape)
    made = []
    for cluster, rows in splits:
        programs.clear()
        programs.cluster_plan_for = ragged(cluster, rows) if isinstance(cluster, int) else cluster
        drive._CACHE.clear()
        got, passes = run_layer(name, OPTIONS[options], fused=True, **shape)
        assert passes > 0 and programs
        assert all(isinstance(p, CP.ClusterProgram) for p in programs), [getattr(p, "cluster_reason", None)
                                                                         for p in programs]
        assert_exchanged_on_chip(name, programs)
        for k, (a, b) in enumerate(zip(got, expected)):
            np.testing.assert_allclose(a, b, atol=TOLERANCE, rtol=0, err_msg=f"result {k}, split {cluster, rows}")
        made += products(programs)
    return made


@pytest.mark.parametrize("options,work_on_forward_values", [("one_layer", "all steps at once"),
                                                             ("checkpoint_reverse_lengths", "step by step"),
                                                             ("stacked_bidirectional_lengths_hx", "all steps at once")])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.usefixtures("compiled_built_ins")
def test_cluster_kernels_equal_op_by_op(programs, monkeypatch, name, options, work_on_forward_values):
    if work_on_forward_values == "step by step":
        monkeypatch.setattr(drive, "BULK_BYTES", 0)
    assert_clusters_equal_op_by_op(programs, name, options, SPLITS)


@pytest.mark.parametrize("plan", ["weights from global memory", "an H200's plan", "operands through global memory",
                                  "no room for the exchange"])
@pytest.mark.parametrize("name", ["lecture_lstm", "lecture_gru", "layer_norm_lstm", "row_norm"])
def test_other_plans_give_the_same_results(programs, name, plan):
    if plan.startswith("weights"):
        plan_for = ragged(4, 2, resident=False)
    elif plan.startswith("operands"):
        plan_for = ragged(4, 2, exchange=False)
    elif plan.startswith("no room"):
        plan_for = no_room_for_the_exchange
    else:
        def plan_for(products, batch, itemsize, **needs):
            made = CP.make_cluster_plan(products, batch, itemsize, **H200, **needs)
            assert made.resident and made.groups > 1, made
            return made
    assert_clusters_equal_op_by_op(programs, name, "checkpoint_reverse_lengths", [(plan_for, plan)])


@pytest.mark.parametrize("edge", list(EDGE_SHAPES))
@pytest.mark.parametrize("name", ["lecture_lstm", "row_norm"])
def test_the_tiled_product_at_its_edges(programs, name, edge):
    """Register tiles, slices of k and rounds at shapes that do not divide them, on clusters of 1, 2,
    4 and 8 blocks over groups of rows that do not divide the batch, the operands exchanged on chip."""
    batch, hidden, plan, made = EDGE_SHAPES[edge]
    splits = [(ragged(cluster, rows, threads=plan["threads"], TK=plan["tile"],
                      min_chunk=plan.get("min_chunk", 1)), (cluster, rows))
              for cluster, rows in [(1, 6), (2, 4), (4, 5), (8, 1)]]
    tiled = assert_clusters_equal_op_by_op(programs, name, "one_layer", splits, batch=batch, hidden=hidden)
    assert made(tiled), edge


@pytest.mark.parametrize("split", [(2, 2), (8, 3)])
def test_a_product_of_a_product_reads_its_operand_from_global_memory_and_says_why(programs, split):
    """The first product's operand (the state) crosses on chip, the second's (the first's output,
    each column block written by another block) through global memory; the results are the same."""
    assert_clusters_equal_op_by_op(programs, "chained", "checkpoint_reverse_lengths", [split])
    for program in programs:
        forward = program.launches["tinygrad_rnn_forward"]
        kernel = next(kernel for kernel, _ in program.kernels if kernel.name == forward.name)
        exchanged, refused = kernel.exchanges()
        assert list(exchanged) == [0] and list(refused) == [1] and forward.plan.exchange
        assert "tinygrad_rnn_forward: matmul reads the output of matmul" in program.exchange_reason


def test_the_source_shows_the_cluster_kernels(programs):
    layer = tr.nn.Recurrent(tr.nn.LayerNormLSTMCell, 3, 4, dtype="float64")
    out, _ = layer(tr.randn(5, 2, 3, dtype="float64"))
    source = out.grad_fn.compiled.source
    assert "/* cluster kernels */" in source and "CLUSTER_BARRIER();" in source and "mean over axes (1,)" in source
    # the state's rows published as the last rows phase writes them, the product's tiles staged from the peers
    assert "X0[(long long)((b - row0) / csize) * 4 + x] = v;" in source
    assert "(exchange && s > 0 ? PEER(X0, r % csize)[(long long)(r / csize) * 4 + k0 + kk]" in source
    assert "grid_barrier" not in source and "failed" not in source and "for j in range(L)" not in source


def cuda_source(programs, monkeypatch, cell_type, dtype, split):
    """The CUDA module of the program a layer of cell_type compiles to (the C++ one runs meanwhile)."""
    sources, module_source = [], CP.cluster_module_source

    def recorded(kernels, ctype, emulate):
        sources.append(module_source(kernels, ctype, False))
        return module_source(kernels, ctype, emulate)
    monkeypatch.setattr(CP, "cluster_module_source", recorded)
    programs.cluster_plan_for = ragged(*split)
    layer = tr.nn.Recurrent(cell_type, 3, 4, dtype=dtype)
    layer(tr.randn(5, 3, 3, dtype=dtype))
    assert isinstance(programs[-1], CP.ClusterProgram)
    return sources[-1]


@pytest.mark.parametrize("name,dtype,split", [("layer_norm_lstm", "float64", (8, 2)), ("row_norm", "float32", (4, 1))])
def test_cuda_source_compiles_for_sm_90(programs, monkeypatch, tmp_path, name, dtype, split):
    """nvcc, where installed, builds the GPU source for Hopper (PTX, and ptxas's machine code): each
    kernel's cluster size is its plan's, the cluster barrier is there and the grid barrier is not, the
    operands are read from the other blocks' shared memory (mapa)."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is needed to compile the CUDA sources")
    source = cuda_source(programs, monkeypatch, CELLS[name][0], dtype, split)
    path = tmp_path / "cluster_program.cu"
    path.write_text(source)
    done = subprocess.run(["nvcc", "-arch=sm_90", "-ptx", "-o", str(tmp_path / "cluster_program.ptx"), str(path)],
                          check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    ptx = (tmp_path / "cluster_program.ptx").read_text()
    assert ptx.count(f".reqnctapercluster {split[0]}, 1, 1") == 4   # forward, forward_only, two backwards
    assert "barrier.cluster.arrive" in ptx and "barrier.cluster.wait" in ptx and "atom.global.add" not in ptx
    assert "mapa.u64" in ptx and "ld.volatile.global" in ptx   # operands from peers; other values past L1
    done = subprocess.run(["nvcc", "-arch=sm_90", "-cubin", "-o", str(tmp_path / "cluster_program.cubin"), str(path)],
                          check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


# ----------------------------------------------------------------------------- what is refused


@pytest.mark.parametrize("name,reason", [("many_ops", "op einsum has no lowering in a persistent kernel"),
                                         ("batch_norm", "a value of shape (3, 4) is read across the batch rows")])
def test_a_step_the_clusters_cannot_take_runs_per_step_and_says_why(programs, name, reason):
    """Rows of a step that read other rows (recurrent batch normalisation) would read another
    cluster's rows: refused, as an op with no lowering is."""
    expected, _ = run_layer(name, OPTIONS["checkpoint_reverse_lengths"], fused=False)
    got, passes = run_layer(name, OPTIONS["checkpoint_reverse_lengths"], fused=True)
    assert passes > 0 and programs and all(type(p) is NumpyProgram for p in programs)
    assert programs[0].cluster_reason == reason and programs[0].per_step_reason == reason
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=TOLERANCE, rtol=0)


def _program_for(programs, monkeypatch, steps="cluster", table=(), clusters=True, multiprocessors=132,
                 shared=227 * 1024):
    """The program the GPU's choice makes for the lecture LSTM (B=2, H=4) with these device facts."""
    monkeypatch.setattr(PK, "multiprocessor_count", lambda: multiprocessors)
    monkeypatch.setattr(PK, "shared_memory_limit", lambda: shared)
    monkeypatch.setattr(CK, "clusters_supported", lambda: clusters)
    monkeypatch.setattr(LP, "TABLE", list(table))
    monkeypatch.setattr(fused, "CUDA_STEPS", steps)
    programs.plan_for, programs.cluster_plan_for = P.device_plan, CP.device_cluster_plan
    monkeypatch.setattr(drive, "_CACHE", {})
    programs.clear()
    layer = tr.nn.Recurrent(CELLS["lecture_lstm"][0], 3, 4, dtype="float64")
    out, _ = layer(tr.randn(5, 2, 3, dtype="float64", requires_grad=True))
    out.sum().backward()
    return programs[0]


def _entry(fastest, cell=CP.TABLE_KIND, batch=2, hidden=4):
    return {"cell": cell, "dtype": "float64", "batch": batch, "input": 3, "hidden": hidden, "steps": 50,
            "ms": {"cluster": 1.0, "persistent": 2.0, "elementwise": 3.0, fastest: 0.5}}


def test_the_gpu_takes_the_cluster_program_where_asked_and_the_step_fits(programs, monkeypatch):
    program = _program_for(programs, monkeypatch)
    assert isinstance(program, CP.ClusterProgram)
    plan = program.launches["tinygrad_rnn_forward"].plan
    assert plan.resident and plan.cluster in CP.CLUSTER_SIZES and plan.groups == 2 and plan.shared <= 227 * 1024
    measured = _program_for(programs, monkeypatch, steps="auto", table=[_entry("cluster", batch=3, hidden=6)])
    assert isinstance(measured, CP.ClusterProgram)   # auto: the nearest measured entry names cluster


@pytest.mark.parametrize("facts,design,reason", [
    ({"steps": "persistent"}, P.PersistentProgram, "TINYGRAD_RNN_CUDA_STEPS=persistent"),
    ({"steps": "auto"}, P.PersistentProgram, "no measured entry for compiled cells near batch 2, width 4"),
    ({"steps": "auto", "table": [_entry("persistent")]}, P.PersistentProgram, "no measured entry"),
    ({"steps": "auto", "table": [_entry("cluster", cell="lstm"), _entry("cluster", batch=16)]}, P.PersistentProgram,
     "no measured entry"),
    ({"clusters": False}, P.PersistentProgram, "this GPU has no thread-block clusters"),
    ({"shared": 4}, NumpyProgram, "does not fit in shared memory"),   # not one float64 of A
    ({"steps": "elementwise"}, NumpyProgram, "TINYGRAD_RNN_CUDA_STEPS=elementwise"),
])
def test_the_gpu_runs_another_program_otherwise_and_says_why(programs, monkeypatch, facts, design, reason):
    program = _program_for(programs, monkeypatch, **facts)
    assert type(program) is design and reason in program.cluster_reason, program.cluster_reason


# ----------------------------------------------------------------------------- plans


@pytest.mark.parametrize("products,batch", [([(256, 1024)], 64), ([(128, 512)], 32), ([(256, 1024)], 1),
                                            ([(128, 384), (128, 128)], 16), ([(512, 2048)], 64),
                                            ([(1024, 4096)], 8)])
@pytest.mark.parametrize("itemsize", [4, 8])
def test_cluster_plans_fit_one_wave_and_keep_the_weights_on_chip_where_they_can(products, batch, itemsize):
    plan = CP.make_cluster_plan(products, batch, itemsize, **H200)
    assert plan.cluster in CP.CLUSTER_SIZES and plan.blocks == plan.groups * plan.cluster <= H200["multiprocessors"]
    assert plan.groups * plan.rows >= batch and (plan.groups - 1) * plan.rows < batch
    assert plan.shared == itemsize * P.shared_elements(products, plan.rows, plan.cluster, plan.TK, plan.resident)
    assert plan.shared <= H200["shared_limit"]
    # the weights stay on chip unless no cluster could hold its slices of them, even for one row
    assert plan.resident or all(P.shared_elements(products, 1, size, 1, True) * itemsize > H200["shared_limit"]
                                for size in CP.CLUSTER_SIZES)


def test_cluster_plans_take_larger_clusters_when_the_weights_need_them():
    """A lecture LSTM with H = 256 in float32: W_hh (256 x 1024) is 1 MB, 128 KB a block in clusters of 8."""
    plan = CP.make_cluster_plan([(256, 1024)], 64, 4, **H200)
    assert plan.resident and plan.cluster == 8 and plan.blocks <= 132
    assert CP.make_cluster_plan([(4096, 16384)], 64, 4, 1, 65 * 4 - 1) is None   # not one column of A's tile


def test_a_step_without_products_spreads_its_rows():
    """IndRNN's step has no recurrent product: one row per block, in clusters of one block."""
    plan = CP.make_cluster_plan([], 64, 4, **H200)
    assert plan.cluster == 1 and plan.rows == 1 and plan.groups == 64


def test_cluster_plans_keep_the_operands_on_chip_where_their_buffers_fit():
    """W_hh (256 x 1024) in clusters of 8 blocks over 64 rows: a block's exchange buffer holds its 8
    rows of the 256 columns of A; where even the smallest tile leaves no room, A goes through L2."""
    products, exchanges = [(256, 1024)], (256,)
    buffers = 4 * CP.exchange_elements(exchanges, 64, 8)
    assert buffers == 4 * 8 * 256
    full_tile = 4 * P.shared_elements(products, 64, 8, 128, True)
    room = CP.make_cluster_plan(products, 64, 4, 8, full_tile + buffers, sizes=(8,), exchanges=exchanges)
    assert room.resident and room.exchange and room.TK == 128 and room.shared == full_tile + buffers
    smallest_tile = 4 * P.shared_elements(products, 64, 8, 1, True)
    none = CP.make_cluster_plan(products, 64, 4, 8, smallest_tile + buffers - 4, sizes=(8,), exchanges=exchanges)
    assert none.resident and not none.exchange and none.shared <= smallest_tile + buffers - 4
    assert CP.make_cluster_plan(products, 64, 4, 8, full_tile, sizes=(8,)).exchange is False   # nothing to exchange


# ----------------------------------------------------------------------------- the latency model


def test_the_latency_model_reads_the_exchange_from_the_program(programs):
    """The model's step of a cluster program follows its kernels' phases, the operands from the
    cluster's shared memory where they cross on chip (less than from L2, nothing else changed);
    bench_compiled --device cuda shows that estimate beside the measured time."""
    from bench.bench_compiled import program_model
    terms = {}
    for exchange in (True, False):
        programs.clear()
        programs.cluster_plan_for = ragged(2, 2, exchange=exchange)
        drive._CACHE.clear()
        run_layer("lecture_lstm", OPTIONS["one_layer"], fused=True)
        program = programs[-1]
        forward = next(kernel for kernel, _ in program.kernels if kernel.name == "tinygrad_rnn_forward")
        assert [phase[:3] for phase in forward.step_phases()] == [("product", 4, 16), ("rows", len(forward.phases[1][1]))]
        assert forward.step_phases()[0][3] is exchange
        kind = drive.backward_kind(3 * 4 * 8, 5)
        terms[exchange] = program.step_terms(kind)
        step = sum(sum(t.values()) for t in terms[exchange].values()) / 2
        assert program.step_us(kind) == step and program_model(program, 3, 3, 4, 5) == (step, LM.layer_ms(step, 4, 3, 3, 4, 5))
    for direction in ("forward", "backward"):
        on, off = terms[True][direction], terms[False][direction]
        assert on["operand"] < off["operand"] and all(on[k] == off[k] for k in on if k != "operand")
    assert program_model(NumpyProgram.__new__(NumpyProgram), 3, 3, 4, 5) is None
