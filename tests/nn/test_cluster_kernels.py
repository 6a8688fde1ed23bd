"""The thread-block-cluster kernels (nn/cluster_kernels.py) run as C++ on the CPU, against torch and
the NumPy path in float64: every cell, reverse, lengths, checkpointing, ragged splits; their plans."""
import shutil
import subprocess

import numpy as np
import pytest

from tests.nn.test_fused import (
    MODES,
    CppPersistentKernel,
    assert_all_close,
    build_cpp_emulated,
    make_case,
    run_ours,
    run_torch,
)
from tinygrad_rnn.nn import cluster_kernels as CK
from tinygrad_rnn.nn import fused
from tinygrad_rnn.nn import persistent_kernels as PK

H200 = {"multiprocessors": 132, "shared_limit": 227 * 1024}


def build_cpp_clusters(directory):
    """The cluster kernels as C++ (the cluster emulated), float64, loaded."""
    return build_cpp_emulated(directory, "cluster", CK.cluster_source(emulate=True, ctypes=("double",)))


@pytest.fixture(scope="module")
def cpp_cluster(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed to run the CUDA kernel sources on the CPU")
    library = build_cpp_clusters(tmp_path_factory.mktemp("cluster"))
    return lambda name: CppPersistentKernel(getattr(library, f"tinygrad_rnn_cluster_{name}_double"), name)


def ragged_plans(cell, batch, hidden, size):
    """Clusters of `size` blocks with part-empty unit and row groups (H = 3 in 4 blocks leaves a block
    with no units), uneven slices of each sum over several tiles, threads with several pairs or none."""
    def plan(G, K_sum, KS):
        NB = min(2, batch)
        U, Bb = -(-hidden // size), -(-batch // NB)
        groups = -(-Bb // PK.PERSISTENT_ROWS) * -(-G * U // PK.PERSISTENT_COLS)
        return PK.PersistentPlan(size, U, NB, Bb, G, KS=KS, TK=min(K_sum, 29), threads=KS * groups + 1, shared=0)
    return plan(cell.gates, hidden, 2), plan(1, cell.gates * hidden, 3)


def use_clusters(monkeypatch, kernel, plans_for):
    """fused.make_steps runs the emulated cluster kernels with the plans plans_for(cell, batch, hidden) gives."""
    def make_steps(xp, cell, weights, batch, hidden, dtype, lengths, steps):
        mask = fused.step_mask(lengths, steps, batch, dtype)
        return fused._ClusterSteps(np, kernel, lambda a, b, out: np.matmul(a, b, out=out),
                                   plans_for(cell, batch, hidden), cell, weights, batch, hidden, dtype, mask)
    monkeypatch.setattr(fused, "make_steps", make_steps)


@pytest.mark.parametrize("size", [1, 2, 4])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lengths", [None, [5, 2, 1]], ids=["full", "lengths"])
@pytest.mark.parametrize("every", [None, 2], ids=["saved", "checkpointed"])
def test_cluster_kernels_match_torch(torch, cpp_cluster, monkeypatch, size, mode, reverse, lengths, every):
    case = make_case(mode)
    use_clusters(monkeypatch, cpp_cluster, lambda cell, B, H: ragged_plans(cell, B, H, size))
    ours = run_ours(case, mode, reverse=reverse, lengths=lengths, checkpoint_every=every)
    assert_all_close(ours, run_torch(torch, case, mode, reverse, lengths))


@pytest.mark.parametrize("size", [2, 8])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", [{}, {"reverse": True, "lengths": [9, 4, 1, 7, 2], "checkpoint_every": 4}],
                         ids=["plain", "reverse-lengths-checkpointed"])
def test_cluster_kernels_tile_long_sums(cpp_cluster, monkeypatch, size, mode, options):
    """H = 37 and 4H = 148: several tiles per sum, each gathered from every block of the cluster; against NumPy."""
    case = make_case(mode, T=9, B=5, I=6, H=37, seed=3)
    expected = run_ours(case, mode, **options)
    use_clusters(monkeypatch, cpp_cluster, lambda cell, B, H: ragged_plans(cell, B, H, size))
    assert_all_close(run_ours(case, mode, **options), expected)


@pytest.mark.parametrize("mode", MODES)
def test_cluster_kernels_with_an_h200s_plans_match_numpy(cpp_cluster, monkeypatch, mode):
    """The plans cluster_plan makes for 132 multiprocessors and 227 KB per block (float64), run as C++."""
    B, H = 32, 128
    case = make_case(mode, T=3, B=B, I=8, H=H, seed=6)
    case["w_hh"] /= np.sqrt(H)
    options = {"lengths": [3, 1, 2] * 10 + [3, 3]}
    expected = run_ours(case, mode, **options)

    def plans_for(cell, batch, hidden):
        plans = CK.cluster_plans(cell, batch, hidden, 8, H200["multiprocessors"], H200["shared_limit"])
        assert plans is not None and all(plan.NU > 1 for plan in plans), plans
        return plans
    use_clusters(monkeypatch, cpp_cluster, plans_for)
    assert_all_close(run_ours(case, mode, **options), expected)


@pytest.mark.parametrize("batch,hidden,K_sum,G", [(1, 1, 1, 4), (3, 37, 37, 4), (32, 128, 512, 1), (32, 128, 128, 4),
                                                  (64, 256, 256, 4), (64, 256, 1024, 1), (64, 512, 512, 1),
                                                  (1, 256, 256, 4), (256, 1024, 1024, 4)])
@pytest.mark.parametrize("itemsize", [4, 8])
def test_cluster_plans_fit_a_cluster_and_one_wave(batch, hidden, K_sum, G, itemsize):
    plan = CK.cluster_plan(batch, hidden, K_sum, G, itemsize, H200["multiprocessors"], H200["shared_limit"])
    weights = K_sum * G * hidden * itemsize
    if plan is None:  # declined only when W_hh cannot be spread over the largest cluster
        assert weights > max(CK.CLUSTER_SIZES) * H200["shared_limit"] / 2
        return
    assert plan.NU in CK.CLUSTER_SIZES and plan.blocks <= H200["multiprocessors"]
    assert plan.NU * plan.U >= hidden and (plan.NU - 1) * plan.U < hidden + plan.U
    assert plan.NB * plan.Bb >= batch and (plan.NB - 1) * plan.Bb < batch
    assert plan.workers <= plan.threads <= PK.PERSISTENT_THREADS
    exchange = CK.exchange_bytes(plan.Bb, plan.U, K_sum // hidden, itemsize)
    assert plan.shared == PK.shared_bytes(plan.Bb, plan.U, K_sum, G, plan.KS, plan.TK, itemsize) + exchange
    assert plan.shared <= H200["shared_limit"]


def test_cluster_plans_cover_the_small_step_configs_in_float32():
    """The issue's small-step configs (H <= 256) keep W_hh and the state on chip in one cluster."""
    for name in ("lstm", "gru", "rnn_tanh"):
        for batch, hidden in [(32, 128), (64, 256), (1, 256)]:
            plans = CK.cluster_plans(fused.CELLS[name], batch, hidden, 4, **H200)
            assert plans is not None, (name, batch, hidden)


def test_cluster_sources_name_the_cuda_cluster_api():
    """The GPU source declares its cluster size and uses DSMEM and the cluster barrier (compiled on a GPU)."""
    source = CK.cluster_source(ctypes=("float",), cluster=4)
    assert "#define CLUSTER 4" in source and "__cluster_dims__(CLUSTER, 1, 1)" in source
    assert "mapa.u64" in source and "barrier.cluster.arrive" in source and "grid_barrier(counter" not in \
        source.split("KERNEL_CLUSTER tinygrad_rnn_cluster")[1]
    for name in fused.K.KERNEL_NAMES:
        assert f"tinygrad_rnn_cluster_{name}_float(" in source


@pytest.mark.parametrize("kind", ["cluster", "persistent"])
def test_cuda_sources_compile_for_sm_90(tmp_path, kind):
    """nvcc, where installed, builds the GPU sources for Hopper (the cluster API needs sm_90)."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is needed to compile the CUDA sources")
    source = CK.cluster_source(cluster=8) if kind == "cluster" else PK.persistent_source()
    path = tmp_path / f"{kind}.cu"
    path.write_text(source)
    done = subprocess.run(["nvcc", "-arch=sm_90", "-ptx", "-o", str(tmp_path / f"{kind}.ptx"), str(path)],
                          check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    if kind == "cluster":
        ptx = (tmp_path / "cluster.ptx").read_text()
        assert ".reqnctapercluster 8, 1, 1" in ptx and "mapa.u64" in ptx and "barrier.cluster.wait" in ptx


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lengths", [None, [5, 2, 1]], ids=["full", "lengths"])
@pytest.mark.parametrize("every", [None, 2], ids=["saved", "checkpointed"])
def test_cuda_cluster_steps_match_torch(torch, device, monkeypatch, mode, lengths, every):
    if device == "cpu":
        pytest.skip("the launchers are CuPy's; NumPy has one path")
    monkeypatch.setattr(fused, "CUDA_STEPS", "cluster")
    case = make_case(mode)
    for reverse in (False, True):
        ours = run_ours(case, mode, device, reverse=reverse, lengths=lengths, checkpoint_every=every)
        assert_all_close(ours, run_torch(torch, case, mode, reverse, lengths))


def test_cuda_cluster_kernels_with_large_clusters_match_numpy(device, monkeypatch):
    """B = 32, H = 128 in float64 on the GPU: the device's own cluster plans (several blocks per
    cluster, opt-in shared memory), every cell, reverse with lengths; gradients too."""
    if device == "cpu":
        pytest.skip("compares CuPy with NumPy")
    from tinygrad_rnn.nn import launch_plan as LP
    monkeypatch.setattr(fused, "CUDA_STEPS", "cluster")
    B, H = 32, 128
    for mode in MODES:
        plans = LP.device_cluster_plans(fused.CELLS[mode], B, H, np.float64)
        assert plans is not None and max(plan.NU for plan in plans) > 1, plans
        case = make_case(mode, T=4, B=B, I=8, H=H, seed=5)
        case["w_hh"] /= np.sqrt(H)
        options = {"reverse": True, "lengths": [4, 1, 3] * 10 + [2, 4]}
        assert_all_close(run_ours(case, mode, device, **options), run_ours(case, mode, **options))


def test_a_plan_launch_passes_ints_as_int32_and_opts_in_to_shared_memory_once():
    """The launch the persistent, cluster and compiled-cell kernels share (no GPU needed: a stand-in kernel)."""
    class Kernel:
        max_dynamic_shared_size_bytes = None

        def __init__(self):
            self.calls, self.opt_ins = [], []

        def __setattr__(self, name, value):
            if name == "max_dynamic_shared_size_bytes":
                self.opt_ins.append(value)
            object.__setattr__(self, name, value)

        def __call__(self, grid, block, args, shared_mem):
            self.calls.append((grid, block, args, shared_mem))

    plan = PK.PersistentPlan(2, 8, 3, 4, 4, 1, 8, 128, 64 * 1024)
    kernel, data = Kernel(), np.zeros(3)
    launch = PK.PlanLaunch(kernel)
    for _ in range(2):
        launch(data, 5, plan=plan, extra=("flag",))
    assert kernel.opt_ins == [plan.shared]                       # asked for once, past 48 KB
    grid, block, args, shared = kernel.calls[-1]
    assert (grid, block, shared) == ((plan.blocks,), (plan.threads,), plan.shared)
    assert args[0] is data and args[1] == 5 and type(args[1]) is np.int32 and args[-1] == "flag"
    assert [int(a) for a in args[2:-1]] == list(plan.ints()) and all(type(a) is np.int32 for a in args[2:-1])
