"""The pointwise work of one recurrent step, forward and backward: NumPy in place, CUDA as kernels.

`fused.py` runs whole sequences and does every matrix product; this module does what lies between
them. Each step works on a row of the gate buffer `S` (batch, width), whose layout is:

    LSTM  [i | f | o | g]       pre-activations of i, f, o arrive negated, since
                                sigmoid(a) = 1 / (1 + exp(-a)) and one exp then covers all three
    GRU   [n | r | z | hn]      columns 0:3H hold the input projection (n, r, z), r and z negated;
                                hn = W_hn h + b_hn, kept because the gradient of r needs it
    RNN   [h]                   the state buffer itself

Forward replaces the pre-activations with the activations; backward replaces the activations with
the gradients of the pre-activations (in place for LSTM and GRU, into a separate buffer for the RNN,
whose buffer is the output). On CuPy each of those is one kernel launch per step over
batch * hidden threads, reading whole-segment buffers at a step index, launched one of three ways
(see CUDA steps below), or the same step bodies run inside one persistent kernel per segment that
also does the recurrent products (persistent_kernels.py). Kernels are compiled on first use
and cached.
"""
import numpy as np

from .. import backend

# ----------------------------------------------------------------------------- NumPy steps
# Every function works in place on preallocated arrays; `work` is a Workspace of scratch arrays.
# At small sizes a step costs mostly per-call overhead, and a ufunc over a gate column (a (B, H) view
# with row stride width * H) costs several times one over a contiguous array. So the LSTM and GRU
# steps copy a row of S into the contiguous gate-major scratch work.gates (gates, B, H) with one
# transposing copy, work there, and copy the results back with another. The gate-major views of S
# they read and write come from column_blocks, made once per segment.


def column_blocks(a, width):
    """View of a (..., B, k * width) array as (..., k, B, width): its blocks of `width` columns first."""
    blocks = a.reshape(a.shape[:-1] + (a.shape[-1] // width, width))  # splits a unit-stride axis: a view
    return blocks.swapaxes(-2, -3)


def lstm_forward(S_t, R, views, c_prev, c_out, tanh_c_out, h_out, work):
    """R (h_prev @ W_hh^T) joins the pre-activations in S_t, which become the activations.

    views: S_t's sigmoid columns gate-major (3, B, H), its g column, and all of S_t gate-major (4, B, H).
    tanh(c) is kept for backward."""
    sig_t, g_t, gates_t = views
    sig, (i, f, o, g) = work.sig, work.gate_rows
    np.add(S_t, R, out=S_t)
    np.exp(sig_t, out=sig)                            # exp(-a), inf far below 0: the steps run ieee_quiet
    np.add(sig, work.one, out=sig)
    np.divide(work.one, sig, out=sig)                 # 1 / (1 + exp(-a))
    np.tanh(g_t, out=g)
    np.multiply(f, c_prev, out=c_out)
    ig = work.h1
    np.multiply(i, g, out=ig)
    c_out += ig
    np.tanh(c_out, out=tanh_c_out)
    np.multiply(o, tanh_c_out, out=h_out)
    np.copyto(gates_t, work.gates)


def lstm_backward(gates_t, c_prev, tanh_c, dh, dc, work):
    """Gate activations in gates_t (a row of S, gate-major) become pre-activation gradients; dc (grad
    of c_t) becomes grad of c_prev. tanh_c: tanh(c_t), kept by the forward step."""
    sig, (i, f, o, g) = work.sig, work.gate_rows
    tc, tmp, d_sig, d_rows, sig_sq, one = work.h1, work.h2, work.w3, work.w3_rows, work.w3b, work.one
    np.copyto(work.gates, gates_t)
    np.multiply(dh, tanh_c, out=d_rows[2])            # d o
    np.multiply(tanh_c, tanh_c, out=tc)
    np.subtract(one, tc, out=tc)
    tc *= o
    tc *= dh
    dc += tc                                          # all of the gradient reaching c_t
    np.multiply(dc, g, out=d_rows[0])                 # d i
    np.multiply(dc, c_prev, out=d_rows[1])            # d f
    np.multiply(g, g, out=tmp)
    np.subtract(one, tmp, out=tmp)
    tmp *= dc
    np.multiply(tmp, i, out=g)                        # d g, before i is overwritten
    dc *= f
    np.multiply(sig, sig, out=sig_sq)
    sig -= sig_sq                                     # s (1 - s)
    sig *= d_sig
    np.copyto(gates_t, work.gates)


def gru_forward(gates_t, R_rz, R_hn, b_hn, h_prev, h_out, work):
    """gates_t: a row of S gate-major (4, B, H); R_rz (2, B, H) and R_hn: h_prev @ W_hh^T, gate-major."""
    n, r, z, hn = work.gate_rows
    rz = work.rz
    np.copyto(work.gates, gates_t)                    # n, r, z of the input projection; hn is set below
    rz += R_rz
    if b_hn is None:
        np.copyto(hn, R_hn)
    else:
        np.add(R_hn, b_hn, out=hn)
    np.exp(rz, out=rz)                                # r, z: 1 / (1 + exp(-a)) of the negated a
    np.add(rz, work.one, out=rz)
    np.divide(work.one, rz, out=rz)
    tmp = work.h1
    np.multiply(r, hn, out=tmp)
    n += tmp
    np.tanh(n, out=n)
    np.subtract(h_prev, n, out=tmp)
    tmp *= z
    np.add(n, tmp, out=h_out)
    np.copyto(gates_t, work.gates)


def gru_backward(gates_t, h_prev, dh, direct, work):
    """Activations in gates_t (a row of S, gate-major) become [dn, dr, dz, dhn]; `direct` gets dh * z,
    the path h_prev -> h."""
    n, r, z, hn = work.gate_rows
    dz, dn, tmp, one = work.h1, work.h2, work.h3, work.one
    np.copyto(work.gates, gates_t)
    np.subtract(h_prev, n, out=dz)
    dz *= dh
    np.multiply(dh, z, out=direct)
    np.subtract(dh, direct, out=dn)                   # dh * (1 - z)
    np.multiply(n, n, out=tmp)
    np.subtract(one, tmp, out=tmp)
    np.multiply(dn, tmp, out=n)                       # n <- d n_pre
    np.subtract(one, z, out=tmp)
    tmp *= z
    np.multiply(dz, tmp, out=z)                       # z <- d z_pre
    np.multiply(n, hn, out=dz)                        # d r (post-activation)
    np.multiply(n, r, out=hn)                         # hn <- d hn
    np.subtract(one, r, out=tmp)
    tmp *= r
    np.multiply(dz, tmp, out=r)                       # r <- d r_pre
    np.copyto(gates_t, work.gates)


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
        np.subtract(work.one, dA_t, out=dA_t)
        dA_t *= dh


class Workspace:
    """Scratch arrays for the NumPy steps, made once per sequence, with views of them made once too."""

    def __init__(self, xp, batch, hidden, dtype):
        self.h1, self.h2, self.h3 = (xp.empty((batch, hidden), dtype) for _ in range(3))
        self.gates = xp.empty((4, batch, hidden), dtype)   # one step's gate columns, gate-major
        self.gate_rows = tuple(self.gates)
        self.sig = self.gates[:3]                                        # LSTM i, f, o
        self.rz = self.gates[1:3]                                        # GRU r, z
        self.w3 = xp.empty((3, batch, hidden), dtype)
        self.w3_rows = tuple(self.w3)
        self.w3b = xp.empty((3, batch, hidden), dtype)
        self.mask = xp.empty((batch, hidden), bool)
        self.one = xp.ones((), dtype)   # 0-d: a cheaper operand than a float


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
template <typename T> __device__ __forceinline__ T sigmoid_of_negated(T minus_a) {
    return T(1) / (T(1) + exp(minus_a));
}
"""

STEP_INDEX = r"""
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
const T in_gate = sigmoid_of_negated(S[gate] + r0);
const T forget = sigmoid_of_negated(S[gate + H] + r1);
const T out_gate = sigmoid_of_negated(S[gate + 2 * H] + r2);
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
const T reset = sigmoid_of_negated(S[gate + H] + r0);
const T update = sigmoid_of_negated(S[gate + 2 * H] + r1);
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


def step_parts(name):
    """(gates G, where backward reads dA rows or None, body) of step kernel `name`."""
    return _STEPS[name][2:]


def kernel_body(name, inline=False):
    """The loop body of step kernel `name`, with the recurrent product loaded or computed inline."""
    gates, grads, body = _STEPS[name][2:]
    product = (_inline_product if inline else _loaded_product)(gates, grads)
    return STEP_INDEX + product + body


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


def c_params(name, ctype, skip=()):
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
    params = c_params(name, ctype)
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
