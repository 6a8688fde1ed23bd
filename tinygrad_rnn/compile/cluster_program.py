"""Cluster programs: a compiled cell's persistent program on thread-block clusters (sm_90).

The persistent program (persistent_program) runs a segment in one launch whose blocks all wait at a
software grid barrier after every phase: every block must be resident at once, and a barrier that
waits too long sets a `failed` flag. Batch rows never exchange anything in a step the persistent
program accepts (its row phases refuse a value read by another row's work), so the launch splits
into independent groups of rows, as the built-in cells' cluster kernels (nn/cluster_kernels.py) do:

  group g  the batch rows [g * Bg, g * Bg + Bg), the last group maybe shorter, run by one cluster
           of `csize` blocks (csize in 1, 2, 4, 8: the portable cluster sizes);
  product  block `rank` of the cluster owns the columns [rank * Nb, (rank + 1) * Nb) of every
           product (Nb = N / csize, rounded up) and keeps that slice of every W in its shared
           memory for the whole launch, as a persistent block does, but sums only its group's rows;
  rows     the group's rows g * Bg + rank, + csize, ... (the same row items as the persistent kernel);
  barrier  the cluster's hardware barrier (barrier.cluster arrive.release / wait.acquire) after each
           phase, in place of the grid barrier: clusters never wait for each other, so they need
           not be resident together, and no barrier can time out.

Values stay where the persistent program keeps them (global memory, read past L1 where another
block of the cluster wrote them), so the kernels are the persistent program's Kernel with another
split of the work (ClusterKernel below); nothing is copied from it. The cluster size is a
compile-time attribute on the GPU (__cluster_dims__, so a plain launch works) and a plan int as
well; the same source compiles as C++ (emulate=True) where clusters run one after another, each
through all of its steps, its blocks as a loop, the barrier the end of that loop.

choose_program takes this program where TINYGRAD_RNN_CUDA_STEPS=cluster (or "auto" where
nn/launch_plan's measured table names the cluster design for compiled cells) and the step fits;
otherwise persistent_program.choose_program runs, and the program made says why in `cluster_reason`.
"""
import numpy as np

from ..nn import cluster_kernels as CK
from ..nn import persistent_kernels as PK
from . import persistent_program as P
from .persistent_program import NotPersistent

CLUSTER_SIZES = CK.CLUSTER_SIZES
TABLE_KIND = "compiled"   # the cell name of compiled cells' entries in launch_plan's measured table

_CUDA = r"""
#define KERNEL_CLUSTER(C) extern "C" __global__ void __cluster_dims__(C, 1, 1) __launch_bounds__(MAX_THREADS)
#define FOR_CLUSTERS(g) for (int g = blockIdx.x / csize, g##_once = 1; g##_once; g##_once = 0)
#define FOR_RANKS(rank) for (int rank = blockIdx.x % csize, rank##_once = 1; rank##_once; rank##_once = 0)
#define CLUSTER_BARRIER() asm volatile("barrier.cluster.arrive.release.aligned;\n\t" \
                                       "barrier.cluster.wait.acquire.aligned;" ::: "memory")
"""

_EMULATED = r"""
#define KERNEL_CLUSTER(C) extern "C" void
// a cluster runs all of its steps before the next one starts: a cluster that read another's rows
// would find them not yet written (or written for a later step)
#define FOR_CLUSTERS(g) for (int g = 0; g < nblocks / csize; ++g)
#define FOR_RANKS(rank) for (int rank = 0; rank < csize; ++rank)
#define CLUSTER_BARRIER()
"""


class ClusterKernel(P.Kernel):
    """A persistent Kernel whose work is split per cluster (see the module's docstring)."""

    SYNC_PARAMS = ()            # no grid barrier: no counter, no `failed` flag
    COLUMN_BLOCKS = "csize"

    @property
    def QUALIFIER(self):
        # the cluster size: a macro the CUDA module defines (cluster_module_source), unread in C++
        return f"KERNEL_CLUSTER({cluster_macro(self.name)})"

    @property
    def plan_ints(self):
        return P.PLAN_INTS + ("csize", "Bg")

    def launch(self, lines):
        B = self.B
        return ["FOR_CLUSTERS(g) {", f"  const int row0 = g * Bg, rows = {B} - row0 < Bg ? {B} - row0 : Bg;"] + \
            ["  " + line for line in lines] + ["}"]

    def blocks(self, lines):
        return ["FOR_RANKS(rank) {", "  const int blk = g * csize + rank, cb = rank;",
                "  T* const shared = BLOCK_SHARED(T, blk, per_block);"] + ["  " + line for line in lines] + ["}"]

    def barrier(self):
        return "CLUSTER_BARRIER();"


def cluster_macro(name):
    return f"CLUSTER_SIZE_{name}"


class ClusterPlan(P.Plan):
    """A Plan for clusters of `cluster` blocks, each cluster on `rows` batch rows (Bg), `groups`
    clusters in all (blocks = groups * cluster)."""

    def __init__(self, cluster, rows, groups, threads, TK, resident, elements, itemsize):
        super().__init__(groups * cluster, threads, TK, resident, elements, itemsize)
        self.cluster, self.rows, self.groups = cluster, rows, groups

    def ints(self):
        return super().ints() + (self.cluster, self.rows)

    def __repr__(self):
        return (f"ClusterPlan(cluster={self.cluster}, rows={self.rows}, groups={self.groups}, "
                f"threads={self.threads}, tile={self.TK}, resident={self.resident}, shared={self.shared})")


def cluster_plan(products, batch, itemsize, cluster, rows, threads=P.THREADS, TK=P.MAX_TILE, resident=True):
    """The plan for clusters of `cluster` blocks on groups of `rows` batch rows (the last group gets
    what is left), tiles of TK columns of A at most."""
    rows = max(1, min(rows, batch))
    TK = max(1, min(TK, max([K for K, _ in products], default=1)))
    elements = P.shared_elements(products, rows, cluster, TK, resident)
    return ClusterPlan(cluster, rows, -(-batch // rows), threads, TK, resident, elements, itemsize)


def make_cluster_plan(products, batch, itemsize, multiprocessors, shared_limit, threads=P.THREADS,
                      sizes=CLUSTER_SIZES):
    """The plan for products [(K, N)] over `batch` rows on a GPU with this many multiprocessors and
    bytes of shared memory per block; None where no cluster's share fits.

    Among the splits whose blocks all run at once (groups x cluster <= multiprocessors: a second wave
    would double the pass), the weights resident in shared memory if any split keeps them there, the
    least multiply-adds per block and step (rows of the group x the block's columns x K), the fewest
    rows per block in the row phases, then the fewest blocks and the smallest clusters (a cheaper
    barrier). An estimate: the measured table (nn/launch_plan) decides whether the cluster design
    runs at all.
    """
    best = None
    for cluster in sizes:
        groups = 1
        while groups <= batch and groups * cluster <= multiprocessors:
            rows = -(-batch // groups)
            tile = min(P.MAX_TILE, max([K for K, _ in products], default=1))
            for resident in (True, False):
                TK = tile
                while TK >= 1 and P.shared_elements(products, rows, cluster, TK, resident) * itemsize > shared_limit:
                    TK //= 2
                if TK >= 1:
                    plan = cluster_plan(products, batch, itemsize, cluster, rows, threads, TK, resident)
                    work = rows * sum(K * -(-N // cluster) for K, N in products)
                    key = (not resident, work, -(-plan.rows // cluster), plan.blocks, cluster)
                    if best is None or key < best[0]:
                        best = (key, plan)
                    break
            groups *= 2
    return None if best is None else best[1]


def device_cluster_plan(products, batch, itemsize):
    """The cluster plan for the current GPU; refused where it has no thread-block clusters."""
    if not CK.clusters_supported():
        raise NotPersistent("this GPU has no thread-block clusters (compute capability 9.0 or later)")
    return make_cluster_plan(products, batch, itemsize, PK.multiprocessor_count(), PK.shared_memory_limit())


class ClusterProgram(P.PersistentProgram):
    """A NumpyProgram's forward and backwards with each loop one launch of cluster kernels: the
    persistent program's arguments, plan_for(products, batch, itemsize) -> ClusterPlan or None, and
    kernels built from cluster_module_source (called kernel(*args, plan=), no barrier arrays)."""

    kernel_type = ClusterKernel

    def module_source(self, ctype, emulate):
        return cluster_module_source(self.kernels, ctype, emulate)

    @property
    def source(self):
        return f"{self.forward_source}\n{self.backward_source}\n/* cluster kernels */\n{self.kernel_source}"


def cluster_module_source(kernels, ctype, emulate):
    """The cluster kernels in one source: CUDA (each kernel's cluster size its plan's), or C++ with
    clusters, blocks and threads as loops (emulate=True; the same text for every plan)."""
    head = "#include <cmath>\nusing namespace std;" if emulate else \
        "\n".join(f"#define {cluster_macro(k.name)} {k.plan.cluster}" for k, _ in kernels)
    return "\n".join([head, PK.persistent_preamble(emulate), _EMULATED if emulate else _CUDA,
                      f"typedef {ctype} T;"] + [k.source(d) for k, d in kernels])


def cupy_build(source, names):
    """{name: kernel(*args, plan=)} for CuPy: one RawModule of the CUDA source(emulate=False); a
    module that does not build on this GPU is refused (the persistent program runs instead)."""
    from .. import backend
    cupy = backend.xp_for("cuda")
    try:
        module = cupy.RawModule(code=source(False))
        functions = {name: module.get_function(name) for name in names}
    except (cupy.cuda.compiler.CompileException, cupy.cuda.driver.CUDADriverError) as error:
        raise NotPersistent(f"its cluster kernels did not build on this GPU ({type(error).__name__}: "
                            f"{str(error)[:300]})") from error

    return {name: PK.PlanLaunch(function) for name, function in functions.items()}


def cluster_wanted(graph, entries=None):
    """None where the cluster program is to be tried for this step, else why not: asked for with
    TINYGRAD_RNN_CUDA_STEPS=cluster, or "auto" where the measured table's nearest entry for compiled
    cells (cell "compiled", matched on batch and the first state's width; a program serves every
    sequence length) names the cluster design."""
    from ..nn import fused
    from ..nn import launch_plan as LP
    mode = fused.CUDA_STEPS
    if mode == "cluster":
        return None
    if mode != "auto":
        return f"TINYGRAD_RNN_CUDA_STEPS={mode}"
    state = graph.states[0]
    batch, width = state.shape[0], int(np.prod(state.shape[1:], dtype=np.int64))
    if LP.measured_choice(LP.TABLE if entries is None else entries, TABLE_KIND, batch, width, None,
                          state.dtype) == "cluster":
        return None
    return (f"TINYGRAD_RNN_CUDA_STEPS=auto and no measured entry for compiled cells near batch {batch}, "
            f"width {width} names the cluster design")


def choose_program(fplan, bplans, xp, launcher, build, cluster_build, plan_for=P.device_plan,
                   cluster_plan_for=device_cluster_plan, entries=None):
    """On a GPU: the cluster program where it is wanted (cluster_wanted) and the step fits one,
    else persistent_program.choose_program (the persistent program, or the per-step one). The
    program made when it is not the cluster program says why in `cluster_reason`."""
    reason = cluster_wanted(fplan.graph, entries)
    if reason is None:
        try:
            return ClusterProgram(fplan, bplans, xp, cluster_build, cluster_plan_for)
        except NotPersistent as refused:
            reason = refused.reason
    program = P.choose_program(fplan, bplans, xp, launcher, build, plan_for)
    program.cluster_reason = reason
    return program
