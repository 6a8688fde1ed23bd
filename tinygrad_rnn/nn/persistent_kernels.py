"""Persistent CUDA kernels: one launch runs every step of a segment, products and pointwise work.

A plain CuPy pass pays a kernel launch and Python's call overhead for every step (fused_kernels'
per-step launchers). Here the grid's blocks stay resident for the whole segment: each block owns
the units [u0, u0 + U) of the batch rows [b0, b0 + Bb), keeps its slice of the recurrent weights in
shared memory from the first step to the last, and per step

  1. computes its share of the recurrent product out[b, c] = sum_k A[b, k] * Ws[k, c] through
     shared-memory tiles of A, each thread holding a ROWS x COLS register tile of the sums over
     one of KS slices of k, so that every thread of the block multiplies;
  2. adds the slices' partial sums (through shared memory) and runs the step body of
     fused_kernels (the same source as the per-step kernels) for each of its (row, unit) pairs;
  3. waits at a grid-wide barrier for the other blocks before the next step reads their states.

Forward A = h_prev (K = H) and Ws holds W_hh^T's columns of the block's units for every gate
(c = g * U + unit); backward A = the next step's dA rows (K = gates * H) and Ws holds W_hh's
columns of the block's units (G = 1). A is read past L1 (__ldcg): other blocks wrote it during
this launch. The barrier needs every block resident at once, so the grid has at most one block
per multiprocessor; a barrier that waits too long sets `failed` instead of hanging.

The same source compiles as plain C++ with blocks and threads as loops (emulate=True): a step's
phases run block by block and thread by thread in order, which the tests use to check the tiling
and indexing without a GPU.
"""
import functools
from collections import namedtuple

import numpy as np

from .. import backend
from .fused_kernels import CUDA_PREAMBLE, KERNEL_NAMES, STEP_INDEX, c_params, kernel_params, step_parts

PERSISTENT_ROWS = 4            # batch rows of a thread's register tile
PERSISTENT_COLS = 4            # product columns of a thread's register tile
PERSISTENT_THREADS = 512       # threads per block at most
PERSISTENT_MIN_THREADS = 256   # at least, so that a tile's loads are spread wide
PERSISTENT_MAX_SLICES = 32     # slices of k summed apart and added at the end
PERSISTENT_MIN_CHUNK = 16      # k per slice and tile at least
PERSISTENT_LOAD_BATCH = 8      # tile loads a thread issues before it stores any
PERSISTENT_UNROLL = 4          # k a thread's tile loop takes per iteration (compile/persistent_program)
DEFAULT_SHARED = 48 * 1024     # shared memory per block that needs no opt-in

_CUDA = r"""
#define FOR_BLOCKS(blk) for (int blk = blockIdx.x, blk##_once = 1; blk##_once; blk##_once = 0)
#define FOR_STEP_BLOCKS(blk, s) FOR_BLOCKS(blk)
#define FOR_THREADS(tid) for (int tid = threadIdx.x, tid##_once = 1; tid##_once; tid##_once = 0)
#define BLOCK_SYNC() __syncthreads()
#define LOAD_FRESH(p) __ldcg(p)
#define ACC(tid, r, c) acc[r][c]
#define DECLARE_ACC(T) T acc[ROWS][COLS]
#define DECLARE_SHARED(T, n) extern __shared__ __align__(16) unsigned char tinygrad_rnn_shared[]
#define BLOCK_SHARED(T, blk, n) reinterpret_cast<T*>(tinygrad_rnn_shared)
#define KERNEL extern "C" __global__ void __launch_bounds__(MAX_THREADS)
__device__ __forceinline__ void grid_barrier(unsigned int* counter, unsigned int target, unsigned int* failed) {
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(counter, 1u);
        const long long start = clock64();
        while (*((volatile unsigned int*)counter) < target) {
            // seconds: a block never arrived; fail, never hang (and once failed, wait no more)
            if (*((volatile unsigned int*)failed) != 0u || clock64() - start > (1LL << 33)) {
                atomicExch(failed, 1u);
                break;
            }
        }
        __threadfence();
    }
    __syncthreads();
}
"""

_EMULATED = r"""
#include <vector>
#define FOR_BLOCKS(blk) for (int blk = 0; blk < nblocks; ++blk)
// a step's blocks in order on even steps and in reverse on odd ones: no block may rely on another
// having run its step before or after it
#define FOR_STEP_BLOCKS(blk, s) \
    for (int blk##_n = 0, blk = (s) % 2 ? nblocks - 1 : 0; blk##_n < nblocks; ++blk##_n, blk += (s) % 2 ? -1 : 1)
#define FOR_THREADS(tid) for (int tid = 0; tid < nthreads; ++tid)
#define BLOCK_SYNC()
#define LOAD_FRESH(p) (*(p))
#define ACC(tid, r, c) acc[((size_t)(tid) * ROWS + (r)) * COLS + (c)]
#define DECLARE_ACC(T) std::vector<T> acc((size_t)nthreads * ROWS * COLS)
#define DECLARE_SHARED(T, n) std::vector<T> shared_((size_t)nblocks * (n))
#define BLOCK_SHARED(T, blk, n) (shared_.data() + (size_t)(blk) * (n))
#define KERNEL extern "C" void
inline void grid_barrier(unsigned int*, unsigned int, unsigned int*) {}
"""

_LOOP_INTS = ("j", "jp", "jn", "t")
PLAN_INTS = ("NU", "U", "Bb", "KS", "TK", "nblocks", "nthreads")


def persistent_preamble(emulate):
    """Definitions shared by the persistent kernels: on the GPU, or as C++ loops (emulate=True)."""
    constants = (f"#define ROWS {PERSISTENT_ROWS}\n#define COLS {PERSISTENT_COLS}\n"
                 f"#define MAX_THREADS {PERSISTENT_THREADS}\n#define LOAD_BATCH {PERSISTENT_LOAD_BATCH}\n")
    return constants + (_EMULATED if emulate else _CUDA)


def persistent_params(name):
    """Names of the persistent kernel's parameters in order: the step's arrays and ints, then the plan."""
    inputs, outputs = kernel_params(name)
    names = [p.split()[-1] for p in inputs.split(",") + outputs.split(",")]
    return [n for n in names if n not in _LOOP_INTS] + ["L", "t_lo", "reverse", *PLAN_INTS, "counter", "failed"]


def _direction(name):
    """The pieces that differ between a forward and a backward kernel."""
    gates, grads, _ = step_parts(name)
    if grads is None:
        sums = ", ".join(f"r{g} = sums[{g}]" for g in range(gates))
        return {
            "G": gates, "K": "H", "weights": "WT", "w_stride": f"(ptrdiff_t){gates} * H",
            "steps": ("const int j = reverse ? L - 1 - s : s;\n"
                      "    const int jp = s == 0 ? -1 : (reverse ? j + 1 : j - 1);\n"),
            "operand": ("const T* const A = jp < 0 ? h_start : Hc + (ptrdiff_t)jp * B * H;\n"
                        "      const ptrdiff_t a_stride = H;\n"
                        "      const bool product = true;\n"),
            "product": f"const T {sums};\n",
            "published": ["Hc[state]"],
        }
    buffer, width, first = grads
    return {
        "G": 1, "K": f"{gates} * H", "weights": "W", "w_stride": "(ptrdiff_t)H",
        "steps": ("const int j = reverse ? s : L - 1 - s;\n"
                  "    const int jp = reverse ? (j + 1 < L ? j + 1 : -1) : j - 1;\n"
                  "    const int jn = s == 0 ? -1 : (reverse ? j - 1 : j + 1);\n"),
        "operand": (f"const T* const A = {buffer} + ((ptrdiff_t)(jn < 0 ? 0 : jn) * B * {width} + {first}) * H;\n"
                    f"      const ptrdiff_t a_stride = (ptrdiff_t){width} * H;\n"
                    "      const bool product = jn >= 0;\n"),
        "product": "const T dh_rec = jn < 0 ? dHn[i] : sums[0];\n",
        "published": [f"{buffer}[(row * {width} + {first + g}) * H + u]" for g in range(gates)],
    }


def _cluster_parts(d, cluster):
    """What the cluster variant adds: each block publishes its rows of the next step's operand A in
    its own shared memory (two buffers, by step parity), and the blocks of its cluster read them there."""
    if not cluster:
        return {"exchange": "0", "remote": "false", "load": "T(0)", "publish": "", "barrier":
                "if (s + 1 < L) grid_barrier(counter, (unsigned int)(s + 1) * nblocks, failed);"}
    publish = "".join(f"            X[((size_t)(s % 2) * Rp + rb) * XW + {g} * U + uu] = {value};\n"
                      for g, value in enumerate(d["published"]))
    return {
        "exchange": "(size_t)2 * Rp * XW",
        # A[bq, k]: column k = g * H + uq lives with the block of rank uq / U, published one step ago
        "remote": "s > 0",
        "load": ("PEER(X, (k % H) / U)[((size_t)((s + 1) % 2) * Rp + rb) * XW + (k / H) * U + (k % H) % U]"),
        "publish": publish,
        # every step, the last too: no block leaves while the others may still read its buffers
        "barrier": "CLUSTER_BARRIER();",
    }


def persistent_kernel(name, ctype, cluster=False):
    """The source of the persistent kernel for step `name` (needs persistent_preamble before it).

    cluster=True: the variant for a thread-block cluster per batch row group (cluster_kernels.py):
    the same tiles and step bodies, but the operand of the product travels through the blocks'
    shared memory (distributed shared memory) and the blocks wait at a cluster barrier, not a grid one.
    """
    params = c_params(name, ctype, skip=_LOOP_INTS)
    params += [f"const int {n}" for n in ("L", "t_lo", "reverse", *PLAN_INTS)]
    params += ["unsigned int* counter", "unsigned int* failed"]
    d = _direction(name)
    c = _cluster_parts(d, cluster)
    body = step_parts(name)[2]
    kind, qualifier = ("cluster", "KERNEL_CLUSTER") if cluster else ("persistent", "KERNEL")
    return f"""
{qualifier} tinygrad_rnn_{kind}_{name}_{ctype}({", ".join(params)}) {{
  typedef {ctype} T;
  const int G = {d["G"]}, K = {d["K"]}, XW = {len(d["published"])} * U;  // XW: published columns per row
  const int GU = G * U, CQ = (GU + COLS - 1) / COLS, GUp = CQ * COLS;   // product columns, padded
  const int RQ = (Bb + ROWS - 1) / ROWS, Rp = RQ * ROWS, SA = Rp + 1;  // SA odd: column stores spread over banks
  const int groups = RQ * CQ, workers = groups * KS, chunk = (TK + KS - 1) / KS;
  const size_t w_size = (size_t)K * GUp;
  const size_t per_block = w_size + (size_t)TK * SA + (size_t)KS * Rp * GUp + {c["exchange"]};
  DECLARE_ACC(T);
  DECLARE_SHARED(T, per_block);
  FOR_BLOCKS(blk) {{  // the block's slice of the weights, resident for the whole launch
    T* const Ws = BLOCK_SHARED(T, blk, per_block);
    const int u0 = (blk % NU) * U;
    FOR_THREADS(tid) {{
      for (ptrdiff_t e = tid; e < (ptrdiff_t)w_size; e += nthreads) {{
        const int k = (int)(e / GUp), c = (int)(e % GUp), uq = u0 + c % U;
        Ws[e] = (c < GU && uq < H) ? {d["weights"]}[(ptrdiff_t)k * {d["w_stride"]} + (ptrdiff_t)(c / U) * H + uq] : T(0);
      }}
    }}
  }}
  BLOCK_SYNC();
  for (int s = 0; s < L; ++s) {{
    {d["steps"]}    const int t = t_lo + j;
    FOR_STEP_BLOCKS(blk, s) {{
      T* const Ws = BLOCK_SHARED(T, blk, per_block);
      T* const As = Ws + w_size;
      T* const P = As + (size_t)TK * SA;
      T* const X = P + (size_t)KS * Rp * GUp;
      const int u0 = (blk % NU) * U, b0 = (blk / NU) * Bb;
      const bool remote = {c["remote"]};
      {d["operand"]}
      FOR_THREADS(tid) {{
        #pragma unroll
        for (int r = 0; r < ROWS; ++r) {{
          #pragma unroll
          for (int c = 0; c < COLS; ++c) ACC(tid, r, c) = T(0);
        }}
      }}
      for (int k0 = 0; product && k0 < K; k0 += TK) {{
        const int tk = K - k0 < TK ? K - k0 : TK, n = Rp * tk;
        FOR_THREADS(tid) {{  // A[b0 + rb, k0 + kk] -> As[kk * SA + rb], all of a batch's loads in flight at once
          for (int e0 = tid; e0 < n; e0 += LOAD_BATCH * nthreads) {{
            T v[LOAD_BATCH];
            #pragma unroll
            for (int q = 0; q < LOAD_BATCH; ++q) {{
              const int e = e0 + q * nthreads, rb = e / tk, bq = b0 + rb, k = k0 + e % tk;
              v[q] = (e < n && rb < Bb && bq < B) ? (remote ? {c["load"]} : LOAD_FRESH(A + (ptrdiff_t)bq * a_stride + k))
                                                 : T(0);
            }}
            #pragma unroll
            for (int q = 0; q < LOAD_BATCH; ++q) {{
              const int e = e0 + q * nthreads;
              if (e < n) As[(e % tk) * SA + e / tk] = v[q];
            }}
          }}
        }}
        BLOCK_SYNC();
        FOR_THREADS(tid) {{  // rows rq*ROWS.., columns cq + c*CQ (adjacent threads, adjacent columns)
          if (tid < workers) {{
            const int ks = tid / groups, rq = tid % groups / CQ, cq = tid % groups % CQ;
            const int k_end = (ks + 1) * chunk < tk ? (ks + 1) * chunk : tk;
            const T* const a = As + rq * ROWS;
            const T* const w = Ws + (size_t)k0 * GUp + cq;
            #pragma unroll 4
            for (int kk = ks * chunk; kk < k_end; ++kk) {{
              T a_r[ROWS], w_c[COLS];
              #pragma unroll
              for (int r = 0; r < ROWS; ++r) a_r[r] = a[kk * SA + r];
              #pragma unroll
              for (int c = 0; c < COLS; ++c) w_c[c] = w[(size_t)kk * GUp + c * CQ];
              #pragma unroll
              for (int r = 0; r < ROWS; ++r) {{
                #pragma unroll
                for (int c = 0; c < COLS; ++c) ACC(tid, r, c) += a_r[r] * w_c[c];
              }}
            }}
          }}
        }}
        BLOCK_SYNC();
      }}
      FOR_THREADS(tid) {{  // each slice's partial sums, added up by the pairs below
        if (tid < workers) {{
          const int ks = tid / groups, rq = tid % groups / CQ, cq = tid % groups % CQ;
          #pragma unroll
          for (int r = 0; r < ROWS; ++r) {{
            #pragma unroll
            for (int c = 0; c < COLS; ++c) P[((size_t)ks * Rp + rq * ROWS + r) * GUp + cq + c * CQ] = ACC(tid, r, c);
          }}
        }}
      }}
      BLOCK_SYNC();
      FOR_THREADS(tid) {{
        for (int p = tid; p < Bb * U; p += nthreads) {{
          const int rb = p / U, uu = p % U, bq = b0 + rb, uq = u0 + uu;
          if (bq < B && uq < H) {{
            const ptrdiff_t i = (ptrdiff_t)bq * H + uq;
            T sums[{d["G"]}];
            #pragma unroll
            for (int g = 0; g < G; ++g) sums[g] = T(0);
            for (int ks = 0; ks < KS; ++ks) {{
              #pragma unroll
              for (int g = 0; g < G; ++g) sums[g] += P[((size_t)ks * Rp + rb) * GUp + g * U + uu];
            }}
            {d["product"]}
            {{
{STEP_INDEX}{body}{c["publish"]}            }}
          }}
        }}
      }}
    }}
    {c["barrier"]}
  }}
}}
"""


def persistent_source(emulate=False, ctypes=("float", "double")):
    """Every persistent kernel for the given C types in one module."""
    lines = ["#define ptrdiff_t long long" if not emulate else "#include <cstddef>", CUDA_PREAMBLE,
             persistent_preamble(emulate)]
    for ctype in ctypes:
        for name in KERNEL_NAMES:
            lines.append(persistent_kernel(name, ctype))
    return "\n".join(lines)


class PersistentPlan:
    """How a persistent launch splits the work.

    NU unit groups of U units times NB batch groups of Bb rows, one block each; KS slices of each
    sum per block; TK columns of A per shared-memory tile; `shared` bytes of shared memory per block.
    """

    def __init__(self, NU, U, NB, Bb, G, KS, TK, threads, shared):
        self.NU, self.U, self.NB, self.Bb, self.G, self.KS, self.TK = NU, U, NB, Bb, G, KS, TK
        self.threads, self.shared = threads, shared
        self.blocks = NU * NB
        if threads < self.workers:
            raise ValueError(f"a persistent block needs a thread per register tile and slice: {self}")

    @property
    def workers(self):
        """Threads that multiply: one per register tile of the block's output and slice of k."""
        return -(-self.Bb // PERSISTENT_ROWS) * -(-self.G * self.U // PERSISTENT_COLS) * self.KS

    def ints(self):
        """The plan's kernel arguments, in the order of PLAN_INTS."""
        return (self.NU, self.U, self.Bb, self.KS, self.TK, self.blocks, self.threads)

    def __repr__(self):
        return (f"PersistentPlan(blocks={self.blocks}: {self.NU} x {self.U} units, {self.NB} x {self.Bb} rows, "
                f"G={self.G}, slices={self.KS}, tile={self.TK}, threads={self.threads}, shared={self.shared})")


def _round_up(n, m):
    return -(-n // m) * m


def shared_bytes(Bb, U, K, G, KS, TK, itemsize):
    """Shared memory of one block: the resident weights, one tile of A, the slices' partial sums."""
    rows, cols = _round_up(Bb, PERSISTENT_ROWS), _round_up(G * U, PERSISTENT_COLS)
    return (K * cols + TK * (rows + 1) + KS * rows * cols) * itemsize


def k_slices(groups, TK, threads, min_chunk=PERSISTENT_MIN_CHUNK):
    """Slices of each staged tile of TK k summed apart (added at the end): enough that `groups`
    register tiles times the slices fill the block's threads, each slice min_chunk k at least."""
    return max(1, min(PERSISTENT_MAX_SLICES, threads // max(1, groups), TK // min_chunk))


Tiling = namedtuple("Tiling", "rows cols slices")
Tiling.__doc__ = """How a block's threads share a product: each a register tile of rows x cols outputs
over one of `slices` slices of every staged tile of k."""


def product_tiling(rows, columns, TK, threads, min_chunk=PERSISTENT_MIN_CHUNK):
    """The tiling of a block's rows x columns of a product's outputs: tiles of ROWS x COLS at most
    (no taller or wider than the block's share, so that a short share wastes no multiply-adds),
    slices of k as k_slices gives them."""
    tile_rows, tile_cols = max(1, min(PERSISTENT_ROWS, rows)), max(1, min(PERSISTENT_COLS, columns))
    groups = -(-rows // tile_rows) * -(-columns // tile_cols)
    return Tiling(tile_rows, tile_cols, k_slices(groups, TK, threads, min_chunk))


def _block_layout(Bb, U, K, G, itemsize, shared_limit, reserved=0):
    """(KS, TK, threads, shared) for one block's work, with the fewest tiles that fit beside `reserved`
    bytes of other shared memory (counted in `shared`); None if none does."""
    groups = -(-Bb // PERSISTENT_ROWS) * -(-G * U // PERSISTENT_COLS)
    if groups > PERSISTENT_THREADS:
        return None
    for tiles in range(1, max(1, K // PERSISTENT_MIN_CHUNK) + 1):
        TK = -(-K // tiles)
        KS = k_slices(groups, TK, PERSISTENT_THREADS)
        shared = shared_bytes(Bb, U, K, G, KS, TK, itemsize) + reserved
        if shared <= shared_limit:
            threads = min(PERSISTENT_THREADS, max(PERSISTENT_MIN_THREADS, _round_up(groups * KS, 32)))
            return KS, TK, threads, shared
    return None


@functools.lru_cache(maxsize=256)
def persistent_plan(batch, hidden, K, G, itemsize, multiprocessors, shared_limit=DEFAULT_SHARED):
    """The split of a step's work with the least estimated time per step; None where none fits.

    K: length of the product's sums; G: product columns per unit (gates forward, 1 backward). Each
    block must hold its slice of the weights (K x G x U) in `shared_limit` bytes beside one tile
    of A, and at most one block per multiprocessor is resident. The estimate, in cycles of one
    multiprocessor: its multiply-adds, its loads of A from L2, and a latency per tile.
    """
    best, NB = None, 1
    while NB <= batch:
        Bb = -(-batch // NB)
        nb = -(-batch // Bb)
        NU = max(1, min(hidden, multiprocessors // nb))
        U = -(-hidden // NU)
        NU = -(-hidden // U)
        layout = _block_layout(Bb, U, K, G, itemsize, shared_limit) if NU * nb <= multiprocessors else None
        if layout is not None:
            KS, TK, threads, shared = layout
            rows = _round_up(Bb, PERSISTENT_ROWS)
            # rough rates of an H100/H200 SM: 64 multiply-adds and 64 bytes from L2 a cycle; about
            # 1000 cycles for one tile's round trip to L2 and the block's syncs
            cycles = rows * G * U * K / 64 + rows * K * itemsize / 64 + 1000 * -(-K // TK)
            key = (cycles, NB)
            if best is None or key < best[0]:
                best = (key, PersistentPlan(NU, U, nb, Bb, G, KS, TK, threads, shared))
        NB *= 2
    return None if best is None else best[1]


class PlanLaunch:
    """A kernel launched on a plan's grid, threads and shared memory, called as kernel(*args, plan=,
    extra=()): the plan's ints follow the arguments, then `extra`; Python ints go as int32, and the
    shared-memory opt-in is asked for once a plan needs more than the default 48 KB."""

    def __init__(self, kernel):
        self.kernel, self.opted_in = kernel, DEFAULT_SHARED

    def __call__(self, *args, plan, extra=()):
        if plan.shared > self.opted_in:
            self.kernel.max_dynamic_shared_size_bytes = self.opted_in = plan.shared
        converted = [np.int32(a) if isinstance(a, (int, np.integer)) else a for a in args]
        plan_ints = [np.int32(v) for v in plan.ints()]
        self.kernel((plan.blocks,), (plan.threads,), (*converted, *plan_ints, *extra), shared_mem=plan.shared)


class PersistentLaunch(PlanLaunch):
    """A persistent kernel called as kernel(*step arrays and ints, L, t_lo, reverse, plan=, failed=).

    `failed` (one uint32 on the GPU) becomes nonzero if a barrier ever timed out; the caller checks it.
    """

    def __call__(self, *args, plan, failed):
        counter = backend.xp_for("cuda").zeros(1, np.uint32)
        super().__call__(*args, plan=plan, extra=(counter, failed))


_compiled = {}


def persistent_kernel_launcher(name, dtype):
    """The launcher of the persistent kernel for step `name` and dtype, compiled on first use."""
    ctype = {"float32": "float", "float64": "double"}[np.dtype(dtype).name]
    key = (name, ctype)
    if key not in _compiled:
        cupy = backend.xp_for("cuda")
        source = persistent_source(ctypes=(ctype,))
        _compiled[key] = PersistentLaunch(cupy.RawKernel(source, f"tinygrad_rnn_persistent_{name}_{ctype}"))
    return _compiled[key]


def multiprocessor_count():
    return _device_attribute("MultiProcessorCount")


def shared_memory_limit():
    """Shared memory one block may have with the opt-in, on the current GPU."""
    return _device_attribute("MaxSharedMemoryPerBlockOptin", DEFAULT_SHARED)


def _device_attribute(name, default=None):
    cupy = backend.xp_for("cuda")
    key = (name, cupy.cuda.Device().id)
    if key not in _compiled:
        _compiled[key] = cupy.cuda.Device().attributes.get(name, default)
    return _compiled[key]
