"""The pointwise work of one recurrent step, forward and backward: NumPy in place, CUDA as kernels.

`fused.py` runs whole sequences and does every matrix product; this module does what lies between
them. Each step works on a row of the gate buffer `S` (batch, width), whose layout is:

    LSTM  [i | f | o | g]       pre-activations of i, f, o arrive halved, since
                                sigmoid(a) = 0.5 * tanh(a / 2) + 0.5 and one tanh then covers all four
    GRU   [n | r | z | hn]      columns 0:3H hold the input projection (n, r, z), r and z halved;
                                hn = W_hn h + b_hn, kept because the gradient of r needs it
    RNN   [h]                   the state buffer itself

Forward replaces the pre-activations with the activations; backward replaces the activations with
the gradients of the pre-activations (in place for LSTM and GRU, into a separate buffer for the RNN,
whose buffer is the output). On CuPy each of those is one kernel launch per step over
batch * hidden threads, reading whole-segment buffers at a step index, launched one of three ways
(see CUDA steps below), or the same step bodies run inside one persistent kernel per segment that
also does the recurrent products (see persistent kernels below). Kernels are compiled on first use
and cached.
"""
import numpy as np

from .. import backend

# ----------------------------------------------------------------------------- NumPy steps
# Every function works in place on preallocated arrays; `work` is a Workspace of scratch arrays.


def half_sigmoid_(a):
    """sigmoid of the un-halved pre-activation, given `a` = pre-activation / 2, in place."""
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5


def lstm_forward(S_t, c_prev, c_out, h_out, work):
    H = c_out.shape[1]
    np.tanh(S_t, out=S_t)
    sig = S_t[:, :3 * H]
    sig *= 0.5
    sig += 0.5
    i, f, o, g = S_t[:, :H], S_t[:, H:2 * H], S_t[:, 2 * H:3 * H], S_t[:, 3 * H:]
    np.multiply(f, c_prev, out=c_out)
    ig = work.h1
    np.multiply(i, g, out=ig)
    c_out += ig
    np.tanh(c_out, out=ig)
    np.multiply(o, ig, out=h_out)


def lstm_backward(S_t, c_prev, c_t, dh, dc, work):
    """Gate activations in S_t become pre-activation gradients; dc (grad of c_t) becomes grad of c_prev."""
    H = c_t.shape[1]
    i, f, o, g = S_t[:, :H], S_t[:, H:2 * H], S_t[:, 2 * H:3 * H], S_t[:, 3 * H:]
    tc, tmp, d_sig = work.h1, work.h2, work.w3
    np.tanh(c_t, out=tc)
    np.multiply(dh, tc, out=d_sig[:, 2 * H:])        # d o
    np.multiply(tc, tc, out=tc)
    np.subtract(1, tc, out=tc)
    tc *= o
    tc *= dh
    dc += tc                                          # all of the gradient reaching c_t
    np.multiply(dc, g, out=d_sig[:, :H])             # d i
    np.multiply(dc, c_prev, out=d_sig[:, H:2 * H])   # d f
    np.multiply(g, g, out=tmp)
    np.subtract(1, tmp, out=tmp)
    tmp *= dc
    np.multiply(tmp, i, out=g)                        # d g, before i is overwritten
    dc *= f
    sig, sig_sq = S_t[:, :3 * H], work.w3b
    np.multiply(sig, sig, out=sig_sq)
    sig -= sig_sq                                     # s (1 - s)
    sig *= d_sig


def gru_forward(S_t, R, b_hn, h_prev, h_out, work):
    H = h_out.shape[1]
    n, rz, hn = S_t[:, :H], S_t[:, H:3 * H], S_t[:, 3 * H:]
    rz += R[:, :2 * H]
    if b_hn is None:
        np.copyto(hn, R[:, 2 * H:])
    else:
        np.add(R[:, 2 * H:], b_hn, out=hn)
    half_sigmoid_(rz)
    r, z = S_t[:, H:2 * H], S_t[:, 2 * H:3 * H]
    tmp = work.h1
    np.multiply(r, hn, out=tmp)
    n += tmp
    np.tanh(n, out=n)
    np.subtract(h_prev, n, out=tmp)
    tmp *= z
    np.add(n, tmp, out=h_out)


def gru_backward(S_t, h_prev, dh, direct, work):
    """Activations in S_t become [dn, dr, dz, dhn]; `direct` gets dh * z, the path h_prev -> h."""
    H = dh.shape[1]
    n, r, z, hn = S_t[:, :H], S_t[:, H:2 * H], S_t[:, 2 * H:3 * H], S_t[:, 3 * H:]
    dz, dn, tmp = work.h1, work.h2, work.h3
    np.subtract(h_prev, n, out=dz)
    dz *= dh
    np.multiply(dh, z, out=direct)
    np.subtract(dh, direct, out=dn)                   # dh * (1 - z)
    np.multiply(n, n, out=tmp)
    np.subtract(1, tmp, out=tmp)
    np.multiply(dn, tmp, out=n)                       # n <- d n_pre
    np.subtract(1, z, out=tmp)
    tmp *= z
    np.multiply(dz, tmp, out=z)                       # z <- d z_pre
    np.multiply(n, hn, out=dz)                        # d r (post-activation)
    np.multiply(n, r, out=hn)                         # hn <- d hn
    np.subtract(1, r, out=tmp)
    tmp *= r
    np.multiply(dz, tmp, out=r)                       # r <- d r_pre


def rnn_forward(h_t, relu):
    """h_t holds the pre-activation; it becomes the new state."""
    if relu:
        np.maximum(h_t, 0, out=h_t)
    else:
        np.tanh(h_t, out=h_t)


def rnn_backward(h_t, dh, dA_t, relu, work):
    if relu:
        np.greater(h_t, 0, out=work.mask)
        np.multiply(dh, work.mask, out=dA_t)
    else:
        np.multiply(h_t, h_t, out=dA_t)
        np.subtract(1, dA_t, out=dA_t)
        dA_t *= dh


class Workspace:
    """Scratch arrays for the NumPy steps, made once per sequence."""

    def __init__(self, xp, batch, hidden, dtype):
        self.h1, self.h2, self.h3 = (xp.empty((batch, hidden), dtype) for _ in range(3))
        self.w3 = xp.empty((batch, 3 * hidden), dtype)
        self.w3b = xp.empty((batch, 3 * hidden), dtype)
        self.mask = xp.empty((batch, hidden), bool)


# ----------------------------------------------------------------------------- CUDA steps
# One thread per (batch row b, hidden unit u): i = b * H + u. Buffers are whole segments indexed
# by the local step j (S: (L, B, width), Hc/Cc: (L, B, H)); jp is the local index of the previous
# state, or -1 for the segment's start state (h_start/c_start, (B, H)). M (T, B) is 1 where step t
# is inside row b's sequence: elsewhere the state is carried unchanged and the output is zero.
# Backward carries `keep`, the part of dL/dh_prev that skips the recurrent product (the state
# passing through a padded step, and GRU's z * h path).
#
# The recurrent product enters each body through r0.. (forward: unit u's share of h_prev @ W_hh^T
# for each gate) or dh_rec (backward: dA_next @ W_hh at unit u). Three ways to launch a step:
#   "elementwise"  cuBLAS writes R = h_prev @ W^T (dHn = dA @ W_hh), then one cupy.ElementwiseKernel
#   "raw"          the same two launches from raw pointers: one cublas<t>gemm, one RawKernel
#   "inline"       one RawKernel per step that also computes the product, each thread a dot product
#                  of length H (4H back): no cuBLAS in the loop; pays while launches dominate

CUDA_PREAMBLE = r"""
template <typename T> __device__ __forceinline__ T half_sigmoid(T a) {
    return tanh(a) * T(0.5) + T(0.5);
}
"""

_INDEX = r"""
const ptrdiff_t b = i / H, u = i % H;
const ptrdiff_t row = (ptrdiff_t)j * B + b;
const ptrdiff_t state = row * H + u;
const ptrdiff_t prev = ((ptrdiff_t)(jp < 0 ? 0 : jp) * B + b) * H + u;
const ptrdiff_t out = ((ptrdiff_t)t * B + b) * H + u;
const bool active = M[(ptrdiff_t)t * B + b] != T(0);
"""

_FORWARD_INPUTS = "raw T R, raw T WT, raw T h_start, raw T {extra}, raw T M, " \
                  "int32 H, int32 B, int32 j, int32 jp, int32 t, int32 write_y, int32 relu"
_BACKWARD_INPUTS = "raw T dY, raw T dHn, raw T W, raw T {start}, raw T {states}, raw T M, " \
                   "int32 H, int32 B, int32 j, int32 jp, int32 jn, int32 t, int32 relu"

# name -> (inputs, outputs, gates G, where backward reads dA rows (buffer, width, first column), body)
_STEPS = {
    "lstm_forward": (_FORWARD_INPUTS.format(extra="c_start"), "raw T S, raw T Hc, raw T Cc, raw T Y", 4, None, r"""
const ptrdiff_t gate = row * 4 * H + u;
const T c_prev = jp < 0 ? c_start[i] : Cc[prev];
const T h_prev = jp < 0 ? h_start[i] : Hc[prev];
const T in_gate = half_sigmoid(S[gate] + r0);
const T forget = half_sigmoid(S[gate + H] + r1);
const T out_gate = half_sigmoid(S[gate + 2 * H] + r2);
const T cand = tanh(S[gate + 3 * H] + r3);
const T c_new = forget * c_prev + in_gate * cand;
const T h_new = out_gate * tanh(c_new);
S[gate] = in_gate;
S[gate + H] = forget;
S[gate + 2 * H] = out_gate;
S[gate + 3 * H] = cand;
Cc[state] = active ? c_new : c_prev;
Hc[state] = active ? h_new : h_prev;
if (write_y) Y[out] = active ? h_new : T(0);
"""),
    "lstm_backward": (_BACKWARD_INPUTS.format(start="c_start", states="Cc"), "raw T S, raw T dc, raw T keep", 4,
                      ("S", 4, 0), r"""
const ptrdiff_t gate = row * 4 * H + u;
const T m = active ? T(1) : T(0);
const T dh_all = dh_rec + keep[i] + m * dY[out];
const T dh = m * dh_all;
const T dc_carry = dc[i];
const T c_prev = jp < 0 ? c_start[i] : Cc[prev];
const T in_gate = S[gate], forget = S[gate + H], out_gate = S[gate + 2 * H], cand = S[gate + 3 * H];
const T tc = tanh(Cc[state]);
const T dc_all = m * dc_carry + dh * out_gate * (T(1) - tc * tc);
S[gate] = dc_all * cand * in_gate * (T(1) - in_gate);
S[gate + H] = dc_all * c_prev * forget * (T(1) - forget);
S[gate + 2 * H] = dh * tc * out_gate * (T(1) - out_gate);
S[gate + 3 * H] = dc_all * in_gate * (T(1) - cand * cand);
dc[i] = dc_all * forget + (T(1) - m) * dc_carry;
keep[i] = (T(1) - m) * dh_all;
"""),
    "gru_forward": (_FORWARD_INPUTS.format(extra="b_hn"), "raw T S, raw T Hc, raw T Y", 3, None, r"""
const ptrdiff_t gate = row * 4 * H + u;
const T h_prev = jp < 0 ? h_start[i] : Hc[prev];
const T reset = half_sigmoid(S[gate + H] + r0);
const T update = half_sigmoid(S[gate + 2 * H] + r1);
const T hn = r2 + b_hn[u];
const T cand = tanh(S[gate] + reset * hn);
const T h_new = cand + update * (h_prev - cand);
S[gate] = cand;
S[gate + H] = reset;
S[gate + 2 * H] = update;
S[gate + 3 * H] = hn;
Hc[state] = active ? h_new : h_prev;
if (write_y) Y[out] = active ? h_new : T(0);
"""),
    "gru_backward": (_BACKWARD_INPUTS.format(start="h_start", states="Hc"), "raw T S, raw T keep", 3,
                     ("S", 4, 1), r"""
const ptrdiff_t gate = row * 4 * H + u;
const T m = active ? T(1) : T(0);
const T dh_all = dh_rec + keep[i] + m * dY[out];
const T dh = m * dh_all;
const T h_prev = jp < 0 ? h_start[i] : Hc[prev];
const T cand = S[gate], reset = S[gate + H], update = S[gate + 2 * H], hn = S[gate + 3 * H];
const T dn = dh * (T(1) - update) * (T(1) - cand * cand);
S[gate] = dn;
S[gate + H] = dn * hn * reset * (T(1) - reset);
S[gate + 2 * H] = dh * (h_prev - cand) * update * (T(1) - update);
S[gate + 3 * H] = dn * reset;
keep[i] = active ? dh_all * update : dh_all;
"""),
    "rnn_forward": (_FORWARD_INPUTS.format(extra="unused"), "raw T Hc, raw T Y", 1, None, r"""
const T h_prev = jp < 0 ? h_start[i] : Hc[prev];
const T a = Hc[state] + r0;
const T h_new = relu ? (a > T(0) ? a : T(0)) : tanh(a);
Hc[state] = active ? h_new : h_prev;
if (write_y) Y[out] = active ? h_new : T(0);
"""),
    "rnn_backward": (_BACKWARD_INPUTS.format(start="unused", states="Hc"), "raw T dA, raw T keep", 1,
                     ("dA", 1, 0), r"""
const T m = active ? T(1) : T(0);
const T dh_all = dh_rec + keep[i] + m * dY[out];
const T dh = m * dh_all;
const T h = Hc[state];
dA[state] = relu ? (h > T(0) ? dh : T(0)) : dh * (T(1) - h * h);
keep[i] = (T(1) - m) * dh_all;
"""),
}


def _loaded_product(gates, grads):
    """The recurrent product read from R (forward) or dHn (backward), as cuBLAS wrote it."""
    if grads is not None:
        return "const T dh_rec = dHn[i];\n"
    loads = ", ".join(f"r{g} = R[b * {gates} * H + u + {g} * H]" for g in range(gates))
    return f"const T {loads};\n"


def _inline_product(gates, grads):
    """The recurrent product computed by the thread itself (contiguous buffers assumed)."""
    if grads is not None:
        buffer, width, first = grads
        return (f"T dh_rec = dHn[i];\n"
                f"if (jn >= 0) {{\n"
                f"  dh_rec = T(0);\n"
                f"  const T* d_row = &{buffer}[((ptrdiff_t)jn * B + b) * {width} * H + {first} * H];\n"
                f"  for (int k = 0; k < {gates} * H; ++k) dh_rec += d_row[k] * W[(ptrdiff_t)k * H + u];\n"
                f"}}\n")
    zeros = ", ".join(f"r{g} = T(0)" for g in range(gates))
    sums = " ".join(f"r{g} += h_k * w[{g} * H];" for g in range(gates))
    return (f"T {zeros};\n"
            f"const T* h_row = jp < 0 ? &h_start[b * H] : &Hc[((ptrdiff_t)jp * B + b) * H];\n"
            f"for (int k = 0; k < H; ++k) {{\n"
            f"  const T h_k = h_row[k];\n"
            f"  const T* w = &WT[(ptrdiff_t)k * {gates} * H + u];\n"
            f"  {sums}\n"
            f"}}\n")


def kernel_body(name, inline=False):
    """The loop body of step kernel `name`, with the recurrent product loaded or computed inline."""
    gates, grads, body = _STEPS[name][2:]
    product = (_inline_product if inline else _loaded_product)(gates, grads)
    return _INDEX + product + body


def kernel_params(name):
    """(inputs, outputs): CuPy ElementwiseKernel parameter lists, all raw or int32."""
    return _STEPS[name][0], _STEPS[name][1]


KERNEL_NAMES = tuple(_STEPS)
_compiled = {}


def elementwise_kernel(name):
    """The cupy.ElementwiseKernel for step `name`, built on first use; call it with size=B*H."""
    key = ("elementwise", name)
    if key not in _compiled:
        cupy = backend.xp_for("cuda")
        inputs, outputs = kernel_params(name)
        _compiled[key] = cupy.ElementwiseKernel(inputs, outputs, kernel_body(name), f"tinygrad_rnn_{name}",
                                                preamble=CUDA_PREAMBLE, no_return=True)
    return _compiled[key]


def raw_kernel_source(inline):
    """One CUDA module with every step kernel for float and double, taking plain pointers."""
    lines = ["#define ptrdiff_t long long", CUDA_PREAMBLE]  # NVRTC without headers may lack the typedef
    for ctype in ("float", "double"):
        for name in KERNEL_NAMES:
            lines.append(_raw_kernel(name, ctype, inline))
    return "\n".join(lines)


def _c_params(name, ctype, skip=()):
    """The step kernel's parameters as C declarations (inputs const), leaving out the ints in `skip`."""
    inputs, outputs = kernel_params(name)
    params = []
    for decl, const in [(p, "const ") for p in inputs.split(",")] + [(p, "") for p in outputs.split(",")]:
        words = decl.split()
        if words[0] == "raw":
            params.append(f"{const}{ctype}* {words[2]}")
        elif words[1] not in skip:
            params.append(f"const int {words[1]}")
    return params


def _raw_kernel(name, ctype, inline):
    params = _c_params(name, ctype)
    return (f'extern "C" __global__ void tinygrad_rnn_{name}_{ctype}(const ptrdiff_t n, {", ".join(params)}) {{\n'
            f"  typedef {ctype} T;\n"
            f"  for (ptrdiff_t i = (ptrdiff_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
            f"       i += (ptrdiff_t)blockDim.x * gridDim.x) {{\n"
            f"{kernel_body(name, inline)}\n  }}\n}}\n")


class _RawLaunch:
    """A RawKernel called like an ElementwiseKernel with raw arguments: kernel(*args, size=n)."""
    block = 128

    def __init__(self, function):
        self.function = function

    def __call__(self, *args, size):
        import numpy
        converted = [numpy.int32(a) if isinstance(a, (int, numpy.integer)) else a for a in args]
        grid = min((size + self.block - 1) // self.block, 65535)
        self.function((grid,), (self.block,), (numpy.int64(size), *converted))


def raw_kernel(name, dtype, inline):
    """The RawKernel launcher for step `name` and dtype; inline=True computes the product in-kernel."""
    key = ("inline" if inline else "raw", name, np.dtype(dtype).name)
    if key not in _compiled:
        cupy = backend.xp_for("cuda")
        module_key = ("module", inline)
        if module_key not in _compiled:
            _compiled[module_key] = cupy.RawModule(code=raw_kernel_source(inline))
        ctype = {"float32": "float", "float64": "double"}[np.dtype(dtype).name]
        _compiled[key] = _RawLaunch(_compiled[module_key].get_function(f"tinygrad_rnn_{name}_{ctype}"))
    return _compiled[key]


class CublasMatmul:
    """out = a @ b for 2-D CuPy arrays with one cublas<t>gemm call on raw pointers.

    Row-major operands are column-major transposes, so out^T = b^T a^T is what cuBLAS computes;
    each operand needs a unit stride on one axis (a row-major view or the transpose of one).
    """

    def __init__(self, dtype):
        from cupy_backends.cuda.libs import cublas
        cupy = backend.xp_for("cuda")
        self.cublas, self.handle = cublas, cupy.cuda.device.get_cublas_handle()
        self.gemm = {"float32": cublas.sgemm, "float64": cublas.dgemm}[np.dtype(dtype).name]
        self.one, self.zero = np.ones(1, dtype), np.zeros(1, dtype)
        self.itemsize = np.dtype(dtype).itemsize

    def _operand(self, x):
        s0, s1 = (s // self.itemsize for s in x.strides)
        if s1 == 1 or x.shape[1] == 1:
            return self.cublas.CUBLAS_OP_N, max(s0, x.shape[1])
        if s0 == 1 or x.shape[0] == 1:
            return self.cublas.CUBLAS_OP_T, max(s1, x.shape[0])
        raise ValueError(f"cuBLAS needs a unit stride on one axis; got strides {x.strides}")

    def __call__(self, a, b, out):
        (M, K), N = a.shape, b.shape[1]
        op_a, ld_a = self._operand(a)
        op_b, ld_b = self._operand(b)
        ld_out = out.strides[0] // self.itemsize
        if out.strides[1] != self.itemsize and N > 1:
            raise ValueError(f"cuBLAS output needs unit inner stride; got strides {out.strides}")
        mode = self.cublas.getPointerMode(self.handle)
        self.cublas.setPointerMode(self.handle, self.cublas.CUBLAS_POINTER_MODE_HOST)
        try:
            self.gemm(self.handle, op_b, op_a, N, M, K, self.one.ctypes.data, b.data.ptr, ld_b,
                      a.data.ptr, ld_a, self.zero.ctypes.data, out.data.ptr, max(ld_out, N))
        finally:
            self.cublas.setPointerMode(self.handle, mode)


# ----------------------------------------------------------------------------- persistent kernels
# One launch runs every step of a segment: the grid's blocks split the (batch row, unit) pairs,
# each block computing its share of the recurrent product as a tiled matrix product through shared
# memory, then the step body above, then waiting at a grid-wide barrier for the other blocks before
# the next step reads the states they wrote. No Python and no launch between steps.
#
# Block blk owns units [u0, u0 + U) of batch rows [b0, b0 + Bb); each thread owns one unit of
# PERSISTENT_ROWS consecutive rows and keeps their sums for every gate in registers, so a value read
# from shared memory feeds several multiply-adds. A step's product is out[b, g, u] =
# sum_k A[b, k] * Bm[k, g * H + u]: forward A = h_prev (K = H) and Bm = W_hh^T with G = gates;
# backward A = the next step's dA rows (K = gates * H) and Bm = W_hh with G = 1. A is read past L1
# (__ldcg): other blocks wrote it during this launch. The barrier counts arrivals on a counter
# that starts at zero; every block must be resident at once, so the grid is at most one block per
# multiprocessor (persistent_plan).
#
# The same source compiles as plain C++ with blocks and threads as loops (emulate=True): a step's
# phases run block by block and thread by thread in order, which the tests use to check the
# tiling and indexing without a GPU.

PERSISTENT_TILE = 64        # K columns per shared-memory tile
PERSISTENT_ROWS = 4         # batch rows per thread, summed in registers
PERSISTENT_THREADS = 512    # threads per block at most
PERSISTENT_MIN_THREADS = 256  # at least, so that a tile's loads are spread wide
PERSISTENT_SHARED = 48 * 1024  # shared memory per block that needs no opt-in

_PERSISTENT_CUDA = r"""
#define FOR_BLOCKS(blk) for (int blk = blockIdx.x, blk##_once = 1; blk##_once; blk##_once = 0)
#define FOR_THREADS(tid) for (int tid = threadIdx.x, tid##_once = 1; tid##_once; tid##_once = 0)
#define BLOCK_SYNC() __syncthreads()
#define LOAD_FRESH(p) __ldcg(p)
#define ACC(tid, q, g) acc[q][g]
#define DECLARE_ACC(T, G) T acc[ROWS][G]
#define DECLARE_TILES(T, n) extern __shared__ __align__(16) unsigned char tinygrad_rnn_shared[]; \
    T* const As = reinterpret_cast<T*>(tinygrad_rnn_shared)
#define KERNEL extern "C" __global__ void __launch_bounds__(MAX_THREADS)
__device__ __forceinline__ void grid_barrier(unsigned int* counter, unsigned int target, unsigned int* failed) {
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(counter, 1u);
        const long long start = clock64();
        while (*((volatile unsigned int*)counter) < target) {
            if (clock64() - start > (1LL << 33)) {  // seconds: a block never arrived; fail, never hang
                atomicExch(failed, 1u);
                break;
            }
        }
        __threadfence();
    }
    __syncthreads();
}
"""

_PERSISTENT_EMULATED = r"""
#include <vector>
#define FOR_BLOCKS(blk) for (int blk = 0; blk < nblocks; ++blk)
#define FOR_THREADS(tid) for (int tid = 0; tid < nthreads; ++tid)
#define BLOCK_SYNC()
#define LOAD_FRESH(p) (*(p))
#define ACC(tid, q, g) acc[((size_t)(tid) * ROWS + (q)) * G + (g)]
#define DECLARE_ACC(T, G) std::vector<T> acc((size_t)nthreads * ROWS * G)
#define DECLARE_TILES(T, n) std::vector<T> tiles_(n); T* const As = tiles_.data()
#define KERNEL extern "C" void
inline void grid_barrier(unsigned int*, unsigned int, unsigned int*) {}
"""

_LOOP_INTS = ("j", "jp", "jn", "t")


def persistent_preamble(emulate):
    """Definitions shared by the persistent kernels: on the GPU, or as C++ loops (emulate=True)."""
    constants = (f"#define TILE {PERSISTENT_TILE}\n#define ROWS {PERSISTENT_ROWS}\n"
                 f"#define MAX_THREADS {PERSISTENT_THREADS}\n")
    return constants + (_PERSISTENT_EMULATED if emulate else _PERSISTENT_CUDA)


def persistent_params(name):
    """Names of the persistent kernel's parameters in order: the step's arrays and ints, then the plan."""
    inputs, outputs = kernel_params(name)
    names = [p.split()[-1] for p in inputs.split(",") + outputs.split(",")]
    return [n for n in names if n not in _LOOP_INTS] + \
        ["L", "t_lo", "reverse", "NU", "U", "Bb", "nblocks", "nthreads", "counter", "failed"]


def persistent_kernel(name, ctype):
    """The source of the persistent kernel for step `name` (needs persistent_preamble before it)."""
    params = _c_params(name, ctype, skip=_LOOP_INTS)
    params += [f"const int {n}" for n in ("L", "t_lo", "reverse", "NU", "U", "Bb", "nblocks", "nthreads")]
    params += ["unsigned int* counter", "unsigned int* failed"]
    gates, grads, body = _STEPS[name][2:]
    forward = grads is None
    G = gates if forward else 1
    if forward:
        steps = ("const int j = reverse ? L - 1 - s : s;\n"
                 "    const int jp = s == 0 ? -1 : (reverse ? j + 1 : j - 1);\n")
        operands = ("const T* const A = jp < 0 ? h_start : Hc + (ptrdiff_t)jp * B * H;\n"
                    "      const ptrdiff_t a_stride = H;\n"
                    "      const int K = H;\n"
                    "      const T* const Bm = WT;\n"
                    f"      const ptrdiff_t b_stride = (ptrdiff_t){G} * H;\n"
                    "      const bool product = true;\n")
        loads = ", ".join(f"r{g} = ACC(tid, q, {g})" for g in range(G))
        product_vars = f"const T {loads};\n"
    else:
        buffer, width, first = grads
        steps = ("const int j = reverse ? s : L - 1 - s;\n"
                 "    const int jp = reverse ? (j + 1 < L ? j + 1 : -1) : j - 1;\n"
                 "    const int jn = s == 0 ? -1 : (reverse ? j - 1 : j + 1);\n")
        operands = (f"const T* const A = {buffer} + ((ptrdiff_t)(jn < 0 ? 0 : jn) * B * {width} + {first}) * H;\n"
                    f"      const ptrdiff_t a_stride = (ptrdiff_t){width} * H;\n"
                    f"      const int K = {gates} * H;\n"
                    "      const T* const Bm = W;\n"
                    "      const ptrdiff_t b_stride = H;\n"
                    "      const bool product = jn >= 0;\n")
        product_vars = "const T dh_rec = jn < 0 ? dHn[i] : ACC(tid, q, 0);\n"
    return f"""
KERNEL tinygrad_rnn_persistent_{name}_{ctype}({", ".join(params)}) {{
  typedef {ctype} T;
  const int G = {G};
  const int RQ = (Bb + ROWS - 1) / ROWS;         // row groups per block
  const int SA = RQ * ROWS + 1;                  // A tile stride: odd, so column stores spread over banks
  const int groups = RQ * U;                     // one per thread: unit p % U, rows (p / U) * ROWS ..
  DECLARE_ACC(T, {G});
  DECLARE_TILES(T, (size_t)TILE * SA + (size_t)TILE * G * U);
  T* const Bs = As + (size_t)TILE * SA;
  for (int s = 0; s < L; ++s) {{
    {steps}    const int t = t_lo + j;
    FOR_BLOCKS(blk) {{
      const int u0 = (blk % NU) * U, b0 = (blk / NU) * Bb;
      {operands}
      FOR_THREADS(tid) {{
        #pragma unroll
        for (int r = 0; r < ROWS; ++r) {{
          #pragma unroll
          for (int g = 0; g < G; ++g) ACC(tid, r, g) = T(0);
        }}
      }}
      for (int k0 = 0; product && k0 < K; k0 += TILE) {{
        FOR_THREADS(tid) {{
          #pragma unroll 4
          for (int e = tid; e < RQ * ROWS * TILE; e += nthreads) {{
            const int rb = e / TILE, kk = e % TILE, bq = b0 + rb, k = k0 + kk;
            As[kk * SA + rb] = (rb < Bb && bq < B && k < K) ? LOAD_FRESH(A + (ptrdiff_t)bq * a_stride + k) : T(0);
          }}
          #pragma unroll 4
          for (int e = tid; e < TILE * G * U; e += nthreads) {{
            const int kk = e / (G * U), c = e % (G * U), uq = u0 + c % U, k = k0 + kk;
            Bs[e] = (uq < H && k < K) ? Bm[(ptrdiff_t)k * b_stride + (ptrdiff_t)(c / U) * H + uq] : T(0);
          }}
        }}
        BLOCK_SYNC();
        FOR_THREADS(tid) {{
          if (tid < groups) {{
            const T* const a = As + (tid / U) * ROWS;
            const T* const w = Bs + tid % U;
            #pragma unroll 4
            for (int kk = 0; kk < TILE; ++kk) {{
              T a_r[ROWS];
              #pragma unroll
              for (int r = 0; r < ROWS; ++r) a_r[r] = a[kk * SA + r];
              #pragma unroll
              for (int g = 0; g < G; ++g) {{
                const T w_g = w[kk * G * U + g * U];
                #pragma unroll
                for (int r = 0; r < ROWS; ++r) ACC(tid, r, g) += a_r[r] * w_g;
              }}
            }}
          }}
        }}
        BLOCK_SYNC();
      }}
      FOR_THREADS(tid) {{
        #pragma unroll
        for (int q = 0; q < ROWS; ++q) {{
          const int rb = (tid / U) * ROWS + q, bq = b0 + rb, uq = u0 + tid % U;
          if (tid < groups && rb < Bb && bq < B && uq < H) {{
            const ptrdiff_t i = (ptrdiff_t)bq * H + uq;
            {product_vars}
            {{
{_INDEX}{body}
            }}
          }}
        }}
      }}
    }}
    if (s + 1 < L) grid_barrier(counter, (unsigned int)(s + 1) * nblocks, failed);
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
    """How a persistent launch splits the pairs: NU unit groups of U times batch groups of Bb rows."""

    def __init__(self, NU, U, NB, Bb, threads, shared):
        self.NU, self.U, self.NB, self.Bb, self.threads, self.shared = NU, U, NB, Bb, threads, shared
        self.blocks = NU * NB

    def __repr__(self):
        return (f"PersistentPlan(blocks={self.blocks}: {self.NU} x {self.U} units, {self.NB} x {self.Bb} rows, "
                f"threads={self.threads}, shared={self.shared})")


def persistent_plan(batch, hidden, K, G, itemsize, multiprocessors):
    """The split with the least memory traffic per step that fits one block per multiprocessor.

    K: length of the product's sums; G: outputs per pair (gates forward, 1 backward). Returns None
    where no split fits (the pairs outnumber what the resident blocks can hold).
    """
    best, NB = None, 1
    while NB <= batch:
        Bb = -(-batch // NB)
        nb = -(-batch // Bb)
        NU = max(1, min(hidden, multiprocessors // nb))
        U = -(-hidden // NU)
        NU = -(-hidden // U)
        groups = -(-Bb // PERSISTENT_ROWS) * U
        threads = min(PERSISTENT_THREADS, max(PERSISTENT_MIN_THREADS, 32 * -(-groups // 32)))
        rows = -(-Bb // PERSISTENT_ROWS) * PERSISTENT_ROWS
        shared = PERSISTENT_TILE * (rows + 1 + G * U) * itemsize
        if NU * nb <= multiprocessors and groups <= threads and shared <= PERSISTENT_SHARED:
            traffic = nb * K * G * hidden + NU * nb * Bb * K   # W read once per batch group, A once per block
            key = (traffic, -NU * nb, NB)
            if best is None or key < best[0]:
                best = (key, PersistentPlan(NU, U, nb, Bb, threads, shared))
        NB *= 2
    return None if best is None else best[1]


class _PersistentLaunch:
    """A persistent kernel called as kernel(*step arrays and ints, L, t_lo, reverse, plan=, failed=).

    `failed` (one uint32 on the GPU) becomes nonzero if a barrier ever timed out; the caller checks it.
    """

    def __init__(self, function):
        self.function = function

    def __call__(self, *args, plan, failed):
        cupy = backend.xp_for("cuda")
        converted = [np.int32(a) if isinstance(a, (int, np.integer)) else a for a in args]
        counter = cupy.zeros(1, np.uint32)
        extra = [np.int32(v) for v in (plan.NU, plan.U, plan.Bb, plan.blocks, plan.threads)]
        self.function((plan.blocks,), (plan.threads,), (*converted, *extra, counter, failed), shared_mem=plan.shared)


def persistent_kernel_launcher(name, dtype):
    """The launcher of the persistent kernel for step `name` and dtype, compiled on first use."""
    ctype = {"float32": "float", "float64": "double"}[np.dtype(dtype).name]
    key = ("persistent", name, ctype)
    if key not in _compiled:
        cupy = backend.xp_for("cuda")
        module_key = ("persistent module", ctype)
        if module_key not in _compiled:
            _compiled[module_key] = cupy.RawModule(code=persistent_source(ctypes=(ctype,)))
        _compiled[key] = _PersistentLaunch(_compiled[module_key].get_function(f"tinygrad_rnn_persistent_{name}_{ctype}"))
    return _compiled[key]


def multiprocessor_count():
    cupy = backend.xp_for("cuda")
    key = ("multiprocessors", cupy.cuda.Device().id)
    if key not in _compiled:
        _compiled[key] = cupy.cuda.Device().attributes["MultiProcessorCount"]
    return _compiled[key]
