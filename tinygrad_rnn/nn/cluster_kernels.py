"""Thread-block-cluster kernels (sm_90): the persistent kernels' steps with no grid barrier.

Batch rows never exchange anything, so a pass splits into independent groups of rows. Each group
runs on one cluster of C blocks (C <= 8, the portable size): block rank r owns the units
[r * U, (r + 1) * U) of the group's rows and keeps their columns of W_hh in its shared memory for
the whole launch, so the cluster holds all of W_hh and the group's state on chip. Per step each
block

  1. gathers the operand of the product (forward h_prev, backward the next step's dA rows) from
     the shared memory of the cluster's blocks (distributed shared memory): every block published
     its own units' columns there in the step before;
  2. runs the persistent kernel's tiles, slice sums and step body (persistent_kernel, the same
     source), then publishes its new columns into one of two buffers (by step parity);
  3. waits at the cluster's hardware barrier, which also orders the shared-memory writes: the two
     buffers make one barrier per step enough (a buffer is written again only two steps later,
     after every reader passed the barrier between).

The first forward step reads h_start from global memory. Clusters never wait for each other, so
they need not be resident together: no barrier can time out and nothing to check afterwards.

The cluster size is a compile-time attribute (__cluster_dims__), so a plain launch works and one
module is built per cluster size. The same source compiles as C++ (emulate=True): blocks run one
after another within a step (reversed on odd steps), a peer's shared memory is that block's slice
of one host buffer, and the barrier is the end of the step's loop over blocks.
"""
import functools
import warnings

import numpy as np

from .. import backend
from . import latency_model as LM
from . import persistent_kernels as PK
from .fused_kernels import CUDA_PREAMBLE, KERNEL_NAMES

CLUSTER_SIZES = (1, 2, 4, 8)   # portable sizes; 16 needs a non-portable opt-in CuPy does not expose

# distributed shared memory and the cluster barrier on the GPU (compile/cluster_program uses them too)
DSMEM_CUDA = r"""
// the address of the same shared variable in block `rank` of this cluster (generic addressing)
template <typename P> __device__ __forceinline__ P* cluster_peer(P* p, int rank) {
    unsigned long long out;
    asm volatile("mapa.u64 %0, %1, %2;" : "=l"(out) : "l"(p), "r"(rank));
    return reinterpret_cast<P*>(out);
}
#define PEER(p, rank) cluster_peer(p, rank)
#define CLUSTER_BARRIER() asm volatile("barrier.cluster.arrive.release.aligned;\n\t" \
                                       "barrier.cluster.wait.acquire.aligned;" ::: "memory")
"""

_CUDA = r"""
#define KERNEL_CLUSTER extern "C" __global__ void __cluster_dims__(CLUSTER, 1, 1) __launch_bounds__(MAX_THREADS)
""" + DSMEM_CUDA

_EMULATED = r"""
#define KERNEL_CLUSTER extern "C" void
#define PEER(p, rank) ((p) + ((ptrdiff_t)(rank) - blk % NU) * (ptrdiff_t)per_block)
#define CLUSTER_BARRIER()
"""


def cluster_source(emulate=False, ctypes=("float", "double"), cluster=8):
    """Every cluster kernel for the given C types in one module, for clusters of `cluster` blocks."""
    lines = ["#define ptrdiff_t long long" if not emulate else "#include <cstddef>", CUDA_PREAMBLE,
             PK.persistent_preamble(emulate), f"#define CLUSTER {cluster}", _EMULATED if emulate else _CUDA]
    for ctype in ctypes:
        for name in KERNEL_NAMES:
            lines.append(PK.persistent_kernel(name, ctype, cluster=True))
    return "\n".join(lines)


def exchange_bytes(Bb, U, published, itemsize):
    """The two buffers through which a block publishes `published` columns per unit of its rows."""
    return 2 * -(-Bb // PK.PERSISTENT_ROWS) * PK.PERSISTENT_ROWS * published * U * itemsize


@functools.lru_cache(maxsize=256)
def cluster_plan(batch, hidden, K, G, itemsize, multiprocessors, shared_limit=PK.DEFAULT_SHARED,
                 sizes=CLUSTER_SIZES):
    """The split with the least estimated step latency (latency_model); None where none fits.

    A PersistentPlan whose NU is the cluster size (one block per unit group and rank) and NB the
    number of clusters, each holding all of W_hh (K x G columns per unit) and its rows' published
    columns (K / hidden per unit). Only splits whose clusters all run at once (NB x NU blocks, one
    per multiprocessor) are considered: a second wave would double the pass.
    """
    published = K // hidden
    best = None
    for C in sizes:
        U = -(-hidden // C)
        NB = 1
        while NB <= batch and NB * C <= multiprocessors:
            Bb = -(-batch // NB)
            nb = -(-batch // Bb)
            reserved = exchange_bytes(Bb, U, published, itemsize)
            layout = PK._block_layout(Bb, U, K, G, itemsize, shared_limit, reserved)
            if layout is not None:
                KS, TK, threads, shared = layout
                plan = PK.PersistentPlan(C, U, nb, Bb, G, KS, TK, threads, shared)
                key = (sum(LM.step_terms("cluster", plan, K, itemsize).values()), plan.blocks)
                if best is None or key < best[0]:
                    best = (key, plan)
            NB *= 2
    return None if best is None else best[1]


def cluster_plans(cell, batch, hidden, itemsize, multiprocessors, shared_limit):
    """(forward plan, backward plan) for the cluster kernels, or None where W_hh does not fit a cluster."""
    plans = (cluster_plan(batch, hidden, hidden, cell.gates, itemsize, multiprocessors, shared_limit),
             cluster_plan(batch, hidden, cell.gates * hidden, 1, itemsize, multiprocessors, shared_limit))
    return None if None in plans else plans


class _ClusterLaunch:
    """A cluster kernel called as a persistent one (persistent_kernels.PersistentLaunch), built once
    per cluster size; `failed` is passed on unused (no barrier here can time out)."""

    def __init__(self, name, ctype):
        self.name, self.ctype, self.launches = name, ctype, {}

    def launch(self, size):
        """The launch of the kernel for clusters of `size` blocks, compiled on first use."""
        if size not in self.launches:
            cupy = backend.xp_for("cuda")
            source = cluster_source(ctypes=(self.ctype,), cluster=size)
            kernel = cupy.RawKernel(source, f"tinygrad_rnn_cluster_{self.name}_{self.ctype}")
            kernel.compile()
            self.launches[size] = PK.PlanLaunch(kernel)
        return self.launches[size]

    def __call__(self, *args, plan, failed):
        self.launch(plan.NU)(*args, plan=plan, extra=(failed, failed))


_launchers = {}


def cluster_kernel_launcher(name, dtype):
    """The launcher of the cluster kernel for step `name` and dtype, compiled per cluster size on first use."""
    ctype = {"float32": "float", "float64": "double"}[np.dtype(dtype).name]
    key = (name, ctype)
    if key not in _launchers:
        _launchers[key] = _ClusterLaunch(name, ctype)
    return _launchers[key]


def kernels_build(kind, dtype, plans):
    """Whether the cluster kernels of a cell kind build for the plans' cluster sizes; a build error
    is reported once as a warning (the caller then runs the persistent kernels)."""
    cupy = backend.xp_for("cuda")
    try:
        for name, plan in zip((f"{kind}_forward", f"{kind}_backward"), plans):
            cluster_kernel_launcher(name, dtype).launch(plan.NU)
        return True
    except (cupy.cuda.compiler.CompileException, cupy.cuda.driver.CUDADriverError) as error:
        key = ("failed", kind, np.dtype(dtype).name)
        if key not in _launchers:
            _launchers[key] = error
            warnings.warn(f"cluster kernels for {kind} did not build on this GPU ({type(error).__name__}: "
                          f"{str(error)[:300]}); running the persistent kernels")
        return False


def clusters_supported():
    """Whether the current GPU runs thread-block clusters (compute capability 9.0 or later)."""
    return PK._device_attribute("ComputeCapabilityMajor", 0) >= 9
