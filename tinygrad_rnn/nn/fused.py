"""Fused recurrent passes: a whole (layer, direction) pass as one graph node with hand-written BPTT.

The composed cells record every gate of every step; this is the fast path beside them. One pass
over T steps is one node ("lstm_fused", "gru_fused", "rnn_tanh_fused", "rnn_relu_fused") whose
outputs are the (T, B, H) sequence, named "output", and the final states "h_n" (and "c_n").

Forward: the input projection of all steps is one matrix product before the loop; where the input
is an embedding lookup, the pass is given the projected table and the index instead and gathers
each step's rows of it straight into its gate buffer (see projected_input); each step adds h_prev @ W_hh^T and
runs the cell's pointwise work in place (fused_kernels). On CuPy a small pass runs all of a
segment's steps in one persistent or cluster kernel launch (CUDA_STEPS below). Saved for backward:
the gate activations and the states of every step, in preallocated (T, B, .) buffers.

Backward (BPTT): walking the steps back, each step turns its gate activations into pre-activation
gradients dA in place and passes dA @ W_hh (plus the paths that skip W_hh) to the step before.
After the loop, the weight gradients of all steps are one product each, dW_ih = dA^T X and
dW_hh = dA^T H_prev, and dX = dA W_ih; a projected table's gradient is dA summed by row.

checkpoint_every=k keeps only the state at the start of every k-th step in forward; backward
recomputes each segment of k steps from its start state, so the saved arrays shrink from O(T) to
O(T / k + k) (the output itself stays O(T)). The gradients are the same.

Variable lengths (host ints, one per sequence): at a padded step the state is carried unchanged
and the output is zero, so a sequence's forward pass ends at its last step and its reverse pass
starts there, as with PyTorch's packed sequences. The input and the output gradient at padded
steps are replaced by zeros (selected, not multiplied) before anything reads them, so whatever
they hold, NaN and Inf included, has no effect on any result or gradient.
"""
import os
import threading
from collections import OrderedDict

import numpy as np

from .. import backend
from .. import vocabulary as V
from ..tensor import Function, Tensor, enable_grad, is_grad_enabled, stack, where
from . import cluster_kernels as CK
from . import fused_kernels as K
from . import launch_plan as LP
from . import persistent_kernels as PK
from .checks import check_lengths, padding_mask
from .linear import Lookup, looked_up, sum_rows_into

# ----------------------------------------------------------------------------- cells


class _Cell:
    """What differs between RNN, LSTM and GRU: gate layout, weight preparation, pointwise steps."""
    name = None
    gates = 1             # weight blocks of H rows
    width = 1             # columns of the gate buffer, in units of H
    x_cols = (0, 1)       # columns (in H) of the gate buffer that the input projection fills
    h_cols = (0, 1)       # columns (in H) holding the pre-activation gradients of W_hh's rows
    x_order = (0,)        # PyTorch's block of W_ih behind each internal block of the input projection
    x_scales = (1,)       # and its scale (-1 for a sigmoid gate, see fused_kernels)
    has_cell_state = False
    grads_in_place = True  # dA overwrites the gate buffer (not for the RNN, whose buffer is h)

    def prepare(self, xp, w_ih, w_hh, b_ih, b_hh):
        raise NotImplementedError

    def export(self, H, dwx, dwh, dbx, dbh):
        """Internal-order gradients -> PyTorch's (weight_ih, weight_hh, bias_ih, bias_hh)."""
        raise NotImplementedError


def _blocks(array, order, H):
    """Rows of `array` regrouped as the listed blocks of H rows (a contiguous copy)."""
    xp = backend.xp_of(array)
    return xp.concatenate([array[k * H:(k + 1) * H] for k in order])


def _input_blocks(w_ih, order, H):
    """_blocks of W_ih, or None for a pass whose input is already projected (no W_ih of its own)."""
    return None if w_ih is None else _blocks(w_ih, order, H)


def _scale_blocks(array, scales, H):
    """Each block of H rows times its scale (negating the sigmoid gates' pre-activations)."""
    if array is None:
        return None
    out = array.copy()
    for k, s in enumerate(scales):
        if s != 1:
            out[k * H:(k + 1) * H] *= s
    return out


def _sum_bias(xp, a, b, rows, dtype):
    if a is None and b is None:
        return None
    zero = xp.zeros(rows, dtype)
    return (zero if a is None else a) + (zero if b is None else b)


def _unpermute(array, order, H):
    """Inverse of _blocks: internal block k goes back to PyTorch block order[k]."""
    if array is None:
        return None
    out = array.copy()
    for k, target in enumerate(order):
        out[target * H:(target + 1) * H] = array[k * H:(k + 1) * H]
    return out


class _Weights:
    """Weights in the cell's internal order: forward ones with the sigmoid rows negated, backward ones not."""

    def __init__(self, wx_fwd, bx_fwd, wh_fwd, wx, wh, b_hn=None):
        self.wx_fwd, self.bx_fwd, self.wh_fwd, self.wx, self.wh, self.b_hn = wx_fwd, bx_fwd, wh_fwd, wx, wh, b_hn
        self.whT_fwd = wh_fwd.T


class _LSTM(_Cell):
    name, gates, width = "lstm", 4, 4
    x_cols = h_cols = (0, 4)
    has_cell_state = True
    order = x_order = (0, 1, 3, 2)          # PyTorch i, f, g, o -> internal i, f, o, g
    scales = x_scales = (-1, -1, -1, 1)

    def prepare(self, xp, w_ih, w_hh, b_ih, b_hh):
        H = w_hh.shape[1]
        wx, wh = _input_blocks(w_ih, self.order, H), _blocks(w_hh, self.order, H)
        bias = _sum_bias(xp, b_ih, b_hh, 4 * H, w_hh.dtype)
        bx = None if bias is None else _scale_blocks(_blocks(bias, self.order, H), self.scales, H)
        return _Weights(_scale_blocks(wx, self.scales, H), bx, _scale_blocks(wh, self.scales, H), wx, wh)

    def export(self, H, dwx, dwh, dbx, dbh):
        db = _unpermute(dbx, self.order, H)
        return _unpermute(dwx, self.order, H), _unpermute(dwh, self.order, H), db, \
            None if db is None else db.copy()


class _GRU(_Cell):
    name, gates, width = "gru", 3, 4
    x_cols, h_cols = (0, 3), (1, 4)
    x_order = (2, 0, 1)           # PyTorch r, z, n -> input projection n, r, z
    x_scales, h_scales = (1, -1, -1), (-1, -1, 1)

    def prepare(self, xp, w_ih, w_hh, b_ih, b_hh):
        H = w_hh.shape[1]
        wx = _input_blocks(w_ih, self.x_order, H)
        bias = _sum_bias(xp, b_ih, None, 3 * H, w_hh.dtype)
        if bias is not None:
            bias = _blocks(bias, self.x_order, H)
            if b_hh is not None:
                bias[H:] += b_hh[:2 * H]   # b_hr, b_hz act like input biases; b_hn stays inside r * (.)
            bias = _scale_blocks(bias, self.x_scales, H)
        b_hn = None if b_hh is None else b_hh[2 * H:]
        return _Weights(_scale_blocks(wx, self.x_scales, H), bias, _scale_blocks(w_hh, self.h_scales, H),
                        wx, w_hh, b_hn)

    def export(self, H, dwx, dwh, dbx, dbh):
        return (_unpermute(dwx, self.x_order, H), dwh, _unpermute(dbx, self.x_order, H), dbh)


class _RNN(_Cell):
    gates, width = 1, 1
    grads_in_place = False

    def __init__(self, relu):
        self.relu = relu
        self.name = "rnn_relu" if relu else "rnn_tanh"

    def prepare(self, xp, w_ih, w_hh, b_ih, b_hh):
        H = w_hh.shape[1]
        return _Weights(w_ih, _sum_bias(xp, b_ih, b_hh, H, w_hh.dtype), w_hh, w_ih, w_hh)

    def export(self, H, dwx, dwh, dbx, dbh):
        return dwx, dwh, dbx, dbh


CELLS = {"lstm": _LSTM(), "gru": _GRU(), "rnn_tanh": _RNN(relu=False), "rnn_relu": _RNN(relu=True)}


# ----------------------------------------------------------------------------- per-step drivers


def forward_order(L, reverse):
    """(j, jp) for a segment's forward steps in processing order; jp = -1 at the segment's start."""
    jp = -1
    for j in (range(L - 1, -1, -1) if reverse else range(L)):
        yield j, jp
        jp = j


def backward_order(L, reverse):
    """(j, jp, jn) for a segment's backward steps, last in time first; jn: the step handled just before."""
    jn = -1
    for j in (range(L) if reverse else range(L - 1, -1, -1)):
        jp = j + 1 if reverse else j - 1
        yield j, (-1 if jp < 0 or jp >= L else jp), jn
        jn = j


class _StepLoop:
    """What Sequence asks of a step driver: forward_segment(seg, reverse, h_start, c_start, y) runs a
    segment's forward steps and returns the index of the last one; start_backward(dh_n, dc_n),
    backward_segment(seg, dA, reverse, h_start, c_start, g) (dA[j] gets step j's pre-activation
    gradients) and finish_backward() -> (dh_0, dc_0) run backward; check() raises if a run went
    wrong in a way only the device can tell (see _PersistentSteps)."""

    keeps_tanh_c = False  # the LSTM's forward steps write tanh(c) into the segment's TC for backward

    def check(self):
        pass


class _NumpySteps(_StepLoop):
    """Each step a recurrent product, then the pointwise work (fused_kernels' NumPy steps) in place.

    Per-step views of the segment's buffers are made once per segment: at small sizes a step costs
    mostly per-call overhead.
    """
    keeps_tanh_c = True

    def __init__(self, cell, weights, batch, hidden, dtype, inactive):
        self.cell, self.w, self.inactive = cell, weights, inactive
        self.work = K.Workspace(np, batch, hidden, dtype)
        self.R = np.empty((batch, cell.gates * hidden), dtype)
        self.R_blocks = K.column_blocks(self.R, hidden)   # GRU reads R's r, z and hn columns gate-major
        # OpenBLAS multiplies a few rows by a transposed view 1.1x to 1.6x slower than by a contiguous copy
        self.whT = np.ascontiguousarray(weights.whT_fwd)
        self.carry_h = self.carry_c = None

    def forward_segment(self, seg, reverse, h_start, c_start, y):
        name, work, R, whT, inactive = self.cell.name, self.work, self.R, self.whT, self.inactive
        H = seg.Hc.shape[2]
        Hc, Cc = list(seg.Hc), list(seg.Cc) if seg.Cc is not None else None
        if name == "lstm":
            TC = list(seg.TC)
            S, views = list(seg.S), list(zip(K.column_blocks(seg.S[:, :, :3 * H], H), seg.S[:, :, 3 * H:],
                                             K.column_blocks(seg.S, H)))
        elif name == "gru":
            blocks = list(K.column_blocks(seg.S, H))
            R_rz, R_hn, b_hn = self.R_blocks[:2], self.R_blocks[2], self.w.b_hn
        h_prev, c_prev = h_start, c_start
        with backend.ieee_quiet(np):   # the sigmoids' exp(-a), see fused_kernels
            for j, jp in forward_order(seg.L, reverse):
                np.matmul(h_prev, whT, out=R)
                h_out = Hc[j]
                c_out = None
                if name == "lstm":
                    c_out = Cc[j]
                    K.lstm_forward(S[j], R, views[j], c_prev, c_out, TC[j], h_out, work)
                elif name == "gru":
                    K.gru_forward(blocks[j], R_rz, R_hn, b_hn, h_prev, h_out, work)
                else:
                    np.add(h_out, R, out=h_out)
                    K.rnn_forward(h_out, self.cell.relu)
                t = seg.t_lo + j
                rows = inactive[t] if inactive is not None else None
                if rows is not None:
                    h_out[rows] = h_prev[rows]
                    if c_out is not None:
                        c_out[rows] = c_prev[rows]
                if y is not None:
                    np.copyto(y[t], h_out)
                    if rows is not None:
                        y[t][rows] = 0
                h_prev, c_prev = h_out, c_out
        return 0 if reverse else seg.L - 1

    def start_backward(self, dh_n, dc_n):
        self.carry_h = dh_n.copy()
        self.carry_c = dc_n.copy() if self.cell.has_cell_state else None
        self.dh = np.empty_like(self.carry_h)
        self.direct = np.empty_like(self.carry_h)

    def backward_segment(self, seg, dA, reverse, h_start, c_start, g):
        """dA[j] gets step j's pre-activation gradients; the carries move to the step before."""
        cell, work, wh, dh, direct, inactive = self.cell, self.work, self.w.wh, self.dh, self.direct, self.inactive
        carry_h, carry_c = self.carry_h, self.carry_c
        H = dh.shape[1]
        lo, hi = cell.h_cols
        dA_h = list(dA[:, :, lo * H:hi * H])
        Hc, Cc = list(seg.Hc), list(seg.Cc) if seg.Cc is not None else None
        blocks = list(K.column_blocks(seg.S, H)) if cell.grads_in_place else None
        for j, jp, _ in backward_order(seg.L, reverse):
            t = seg.t_lo + j
            rows = inactive[t] if inactive is not None else None
            if rows is not None:  # a padded step: the state's gradient passes through untouched
                keep_h = carry_h[rows]
                carry_h[rows] = 0
                if carry_c is not None:
                    keep_c = carry_c[rows]
                    carry_c[rows] = 0
            np.add(carry_h, g[t], out=dh)
            if rows is not None:
                dh[rows] = 0
            if cell.name == "lstm":
                K.lstm_backward(blocks[j], c_start if jp < 0 else Cc[jp], seg.TC[j], dh, carry_c, work)
            elif cell.name == "gru":
                K.gru_backward(blocks[j], h_start if jp < 0 else Hc[jp], dh, direct, work)
            else:
                K.rnn_backward(Hc[j], dh, dA[j], cell.relu, work)
            np.matmul(dA_h[j], wh, out=carry_h)
            if cell.name == "gru":
                carry_h += direct
            if rows is not None:
                carry_h[rows] = keep_h
                if carry_c is not None:
                    carry_c[rows] = keep_c

    def finish_backward(self):
        return self.carry_h, self.carry_c


class _KernelSteps(_StepLoop):
    """The CuPy path: per step a cuBLAS product and one kernel, or one kernel that does both.

    The kernels read the whole-segment buffers at a step index, so a step makes no array views
    beyond the operands of its matrix product. `kernel(name)` returns a callable with CuPy's
    ElementwiseKernel convention, `matmul(a, b, out)` computes out = a @ b; with inline=True the
    kernels compute the recurrent product themselves and `matmul` runs only between segments.
    (The tests pass C++ builds of the same kernel sources and NumPy's matmul.)
    """

    def __init__(self, xp, kernel, matmul, inline, cell, weights, batch, hidden, dtype, mask):
        self.xp, self.kernel, self.matmul, self.inline = xp, kernel, matmul, inline
        self.cell, self.w, self.M, self.B, self.H = cell, weights, mask, batch, hidden
        self.unused = xp.zeros(1, dtype)
        self.R = self.unused if inline else xp.empty((batch, cell.gates * hidden), dtype)
        self.WT = xp.ascontiguousarray(weights.whT_fwd) if inline else self.unused
        self.W = xp.ascontiguousarray(weights.wh)
        self.b_hn = weights.b_hn if weights.b_hn is not None else xp.zeros(hidden, dtype)
        self.relu = int(getattr(cell, "relu", False))
        lo, hi = cell.h_cols
        self.h_cols = slice(lo * hidden, hi * hidden)
        self.kind = "rnn" if cell.name.startswith("rnn") else cell.name

    def _forward_arrays(self, seg, h_start, c_start, y):
        """(arrays before the ints, flags after the step ints, outputs) of a forward kernel call."""
        write_y = int(y is not None)
        y = seg.Hc if y is None else y  # any array of the right dtype; not written when write_y is 0
        extra = {"lstm": c_start, "gru": self.b_hn}.get(self.kind, self.unused)
        outputs = {"lstm": (seg.S, seg.Hc, seg.Cc, y), "gru": (seg.S, seg.Hc, y)}.get(self.kind, (seg.Hc, y))
        return (self.R, self.WT, h_start, extra, self.M), (write_y, self.relu), outputs

    def _backward_arrays(self, seg, dA, h_start, c_start, g):
        start = {"lstm": c_start, "gru": h_start}.get(self.kind, self.unused)
        states = seg.Cc if self.kind == "lstm" else seg.Hc
        outputs = {"lstm": (seg.S, self.carry_c, self.keep), "gru": (seg.S, self.keep)}.get(
            self.kind, (dA, self.keep))
        return (g, self.dHn, self.W, start, states, self.M), (self.relu,), outputs

    def forward_segment(self, seg, reverse, h_start, c_start, y):
        kernel = self.kernel(f"{self.kind}_forward")
        arrays, flags, outputs = self._forward_arrays(seg, h_start, c_start, y)
        for j, jp in forward_order(seg.L, reverse):
            if not self.inline:
                self.matmul(h_start if jp < 0 else seg.Hc[jp], self.w.whT_fwd, self.R)
            kernel(*arrays, self.H, self.B, j, jp, seg.t_lo + j, *flags, *outputs, size=self.B * self.H)
        return 0 if reverse else seg.L - 1

    def start_backward(self, dh_n, dc_n):
        self.keep = dh_n.copy()                  # reaches the last step through `keep`
        self.dHn = self.xp.zeros_like(dh_n)
        self.carry_c = dc_n.copy() if self.cell.has_cell_state else None

    def backward_segment(self, seg, dA, reverse, h_start, c_start, g):
        kernel = self.kernel(f"{self.kind}_backward")
        arrays, flags, outputs = self._backward_arrays(seg, dA, h_start, c_start, g)
        for j, jp, jn in backward_order(seg.L, reverse):
            kernel(*arrays, self.H, self.B, j, jp, jn, seg.t_lo + j, *flags, *outputs, size=self.B * self.H)
            if not self.inline:
                self.matmul(dA[j][:, self.h_cols], self.W, self.dHn)
        self.end_segment(dA, seg.L - 1 if reverse else 0)

    def end_segment(self, dA, j):
        """The next segment's first backward step reads dA_j @ W_hh from dHn."""
        if self.inline:
            self.matmul(dA[j][:, self.h_cols], self.W, self.dHn)

    def finish_backward(self):
        return self.dHn + self.keep, self.carry_c


class _PersistentSteps(_KernelSteps):
    """The CuPy path with one kernel launch per segment and direction (persistent_kernels.py).

    `kernel(name)` returns a callable taking the step kernel's arguments without the step indices,
    then (L, t_lo, reverse) and plan=; plans come from persistent_kernels.persistent_plan.
    """

    def __init__(self, xp, kernel, matmul, plans, cell, weights, batch, hidden, dtype, mask):
        super().__init__(xp, kernel, matmul, True, cell, weights, batch, hidden, dtype, mask)
        self.plan_forward, self.plan_backward = plans
        self.failed = xp.zeros(1, np.uint32)

    def forward_segment(self, seg, reverse, h_start, c_start, y):
        arrays, flags, outputs = self._forward_arrays(seg, h_start, c_start, y)
        self.kernel(f"{self.kind}_forward")(*arrays, self.H, self.B, *flags, *outputs, seg.L, seg.t_lo,
                                            int(reverse), plan=self.plan_forward, failed=self.failed)
        return 0 if reverse else seg.L - 1

    def backward_segment(self, seg, dA, reverse, h_start, c_start, g):
        arrays, flags, outputs = self._backward_arrays(seg, dA, h_start, c_start, g)
        self.kernel(f"{self.kind}_backward")(*arrays, self.H, self.B, *flags, *outputs, seg.L, seg.t_lo,
                                             int(reverse), plan=self.plan_backward, failed=self.failed)
        self.end_segment(dA, seg.L - 1 if reverse else 0)

    def check(self):
        """Raise, with the next read from the GPU, if a grid barrier timed out (the blocks were not all
        resident): the results are wrong."""
        backend.check(self.failed != 0, lambda: RuntimeError(
            f"fused {self.cell.name}: a persistent kernel's blocks were not all resident on the GPU "
            f"({self.plan_forward}, {self.plan_backward}), so its results are wrong; set "
            f"TINYGRAD_RNN_CUDA_STEPS=elementwise to run step by step"))

    def finish_backward(self):
        self.check()
        return super().finish_backward()


class _ClusterSteps(_PersistentSteps):
    """The persistent path's launches with thread-block-cluster kernels (cluster_kernels.py): one
    cluster per batch row group, no grid barrier (so no failure to check); plans from cluster_plans."""


def persistent_plans(cell, batch, hidden, itemsize, multiprocessors, shared_limit):
    """(forward plan, backward plan) for the persistent kernels, or None where they do not fit."""
    plans = (PK.persistent_plan(batch, hidden, hidden, cell.gates, itemsize, multiprocessors, shared_limit),
             PK.persistent_plan(batch, hidden, cell.gates * hidden, 1, itemsize, multiprocessors, shared_limit))
    return None if None in plans else plans


# How a CuPy pass runs its steps (see fused_kernels): "auto" asks launch_plan.choose (a measured
# table, else the latency model) for "cluster" or "persistent" (one launch per segment) or
# "elementwise" (cuBLAS and one kernel per step); "raw" and "inline" are the other per-step launchers.
CUDA_STEPS = os.environ.get("TINYGRAD_RNN_CUDA_STEPS", "auto")
CUDA_STEP_CHOICES = ("auto", "cluster", "persistent", "elementwise", "raw", "inline")


def make_steps(xp, cell, weights, batch, hidden, dtype, lengths, steps):
    """The per-step driver for the arrays' backend: NumPy in-place ops, or CUDA kernels (CUDA_STEPS)."""
    if xp is np:
        inactive = None
        if lengths is not None:
            padded = np.arange(steps)[:, None] >= lengths[None, :]
            inactive = [np.nonzero(row)[0] if row.any() else None for row in padded]
        return _NumpySteps(cell, weights, batch, hidden, dtype, inactive)
    if CUDA_STEPS not in CUDA_STEP_CHOICES:
        raise ValueError(f"TINYGRAD_RNN_CUDA_STEPS must be one of {CUDA_STEP_CHOICES}; got {CUDA_STEPS!r}")
    mask = xp.asarray(step_mask(lengths, steps, batch, dtype))
    mode = CUDA_STEPS
    if mode == "auto":
        mode = LP.choose(cell, batch, hidden, steps, dtype)
    if mode == "cluster":
        plans = LP.device_cluster_plans(cell, batch, hidden, dtype)
        if plans is not None:
            return _ClusterSteps(xp, lambda name: CK.cluster_kernel_launcher(name, dtype),
                                 lambda a, b, out: xp.matmul(a, b, out=out), plans,
                                 cell, weights, batch, hidden, dtype, mask)
        mode = "persistent"  # no cluster on this GPU, or W_hh does not fit one cluster's shared memory
    if mode == "persistent":
        plans = persistent_plans(cell, batch, hidden, np.dtype(dtype).itemsize, PK.multiprocessor_count(),
                                 PK.shared_memory_limit())
        if plans is not None:
            return _PersistentSteps(xp, lambda name: PK.persistent_kernel_launcher(name, dtype),
                                    lambda a, b, out: xp.matmul(a, b, out=out), plans,
                                    cell, weights, batch, hidden, dtype, mask)
        mode = "elementwise"  # the weights or the work do not fit one resident block per multiprocessor
    if mode == "elementwise":
        return _KernelSteps(xp, K.elementwise_kernel, lambda a, b, out: xp.matmul(a, b, out=out), False,
                            cell, weights, batch, hidden, dtype, mask)
    inline = mode == "inline"
    return _KernelSteps(xp, lambda name: K.raw_kernel(name, dtype, inline), K.CublasMatmul(dtype), inline,
                        cell, weights, batch, hidden, dtype, mask)


def step_mask(lengths, steps, batch, dtype):
    """(T, B) host array, 1 where step t lies inside sequence b."""
    if lengths is None:
        return np.ones((steps, batch), dtype)
    return (np.arange(steps)[:, None] < lengths[None, :]).astype(dtype)


# ----------------------------------------------------------------------------- whole sequence


class BufferPool:
    """The passes' large NumPy work buffers (gates, states), kept for the next pass of the same shape.

    A training step frees several MB of them and the next step asks for the same again; glibc hands
    freed memory at the top of its heap (or a large block's own mapping) back to the system, and
    every page of the next allocation then faults in again (about 2000 minor faults, 4 to 6 ms, a
    step at H = 128: bench/RESULTS.md). Only arrays that own their memory come back, each once, and
    only when nothing else reads them; at most `limit` bytes are kept, the shapes used least recently
    dropped first. CuPy keeps a memory pool of its own.
    """

    def __init__(self, limit):
        self.limit, self.held, self.free, self.lock = limit, 0, OrderedDict(), threading.Lock()

    def empty(self, xp, shape, dtype):
        """An uninitialised array, a kept one where there is one."""
        if xp is np:
            key = (tuple(shape), np.dtype(dtype).str)
            with self.lock:
                kept = self.free.get(key)
                if kept:
                    self.free.move_to_end(key)
                    array = kept.pop()
                    self.held -= array.nbytes
                    return array
        return xp.empty(shape, dtype)

    def give(self, *arrays):
        """Keep these arrays for later passes (their owners read them no more)."""
        with self.lock:
            for array in {id(a): a for a in arrays if isinstance(a, np.ndarray) and a.base is None}.values():
                key = (array.shape, array.dtype.str)
                self.free.setdefault(key, []).append(array)
                self.free.move_to_end(key)
                self.held += array.nbytes
            while self.held > self.limit:
                key, kept = next(iter(self.free.items()))
                self.held -= kept.pop(0).nbytes
                if not kept:
                    del self.free[key]

    def clear(self):
        """Drop every kept buffer (their memory goes back to the allocator)."""
        with self.lock:
            self.free.clear()
            self.held = 0


BUFFERS = BufferPool(256 << 20)


class _Segment:
    """Buffers of L consecutive time steps starting at t_lo: gates S, states Hc (and Cc), and where
    the NumPy LSTM steps run, TC = tanh(Cc) for their backward (the CUDA kernels recompute it)."""

    def __init__(self, t_lo, S, Hc, Cc, TC=None):
        self.t_lo, self.S, self.Hc, self.Cc, self.TC = t_lo, S, Hc, Cc, TC
        self.L = S.shape[0]

    def buffers(self):
        return self.S, self.Hc, self.Cc, self.TC


class Sequence:
    """One (layer, direction) pass over a batch: forward, saved buffers, and BPTT."""

    def __init__(self, cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse, lengths, checkpoint_every,
                 record, index=None):
        xp = backend.xp_of(x)
        self.xp, self.cell, self.reverse, self.record = xp, cell, reverse, record
        self.x_shape = x.shape
        if w_ih is not None:
            self.T, self.B, self.I = x.shape
        elif index is None:  # x is already x @ W_ih^T: a table with one row per step and sequence
            self.T, self.B, self.I = x.shape
            x, index = x.reshape(self.T * self.B, self.I), xp.arange(self.T * self.B).reshape(self.T, self.B)
        else:
            (self.T, self.B), self.I = index.shape, x.shape[1]
        inside = padding_mask(lengths, self.T)
        self.inside = None if inside is None else xp.asarray(inside[:, :, None])
        self.H = w_hh.shape[1]
        self.dtype = x.dtype
        self.h0 = xp.ascontiguousarray(h0)  # the CUDA kernels index the start states as plain rows
        self.c0 = None if c0 is None else xp.ascontiguousarray(c0)
        self.w = cell.prepare(xp, w_ih, w_hh, b_ih, b_hh)
        if index is None:
            self.x = xp.ascontiguousarray(x) if inside is None else xp.where(self.inside, x, x.dtype.type(0))
            self.rows = self.index = None
        else:
            self.x = None
            self.rows, self.index = self._gathered_rows(x, index)
        k = checkpoint_every if record and checkpoint_every and cell.grads_in_place else self.T
        self.segments = [(p, min(p + k, self.T)) for p in range(0, self.T, k)]
        self.lengths = None if inside is None else lengths  # None too when no step is padded
        self.steps = make_steps(xp, cell, self.w, self.B, self.H, self.dtype, self.lengths, self.T)
        self.starts = []       # (h, c) at the start of each segment: all that checkpointing keeps
        self.saved = None      # the whole-sequence buffers, when not checkpointing

    def _gathered_rows(self, table, index):
        """(rows, index) for a pass given a projected table (V, gates * H), PyTorch's gate order: the
        rows its steps gather into the gate buffer, laid out as the buffer is (internal gate order, the
        sigmoid gates negated, the input bias added, the columns the input does not fill zero), and
        the index (T, B) into them. With padded steps the rows get one more, what a zero input gives
        (the bias), and the padded steps read it: as the unprojected pass, which zeroes their input."""
        xp, cell, H = self.xp, self.cell, self.H
        V, lo, hi = table.shape[0], cell.x_cols[0] * H, cell.x_cols[1] * H
        padded = self.inside is not None
        rows = xp.zeros((V + padded, cell.width * H), self.dtype)
        for k, (source, scale) in enumerate(zip(cell.x_order, cell.x_scales)):  # exact: scales are 1 or -1
            block, into = table[:, source * H:(source + 1) * H], rows[:V, lo + k * H:lo + (k + 1) * H]
            xp.copyto(into, block) if scale == 1 else xp.multiply(block, scale, out=into)
        if self.w.bx_fwd is not None:
            rows[:, lo:hi] += self.w.bx_fwd
        index = xp.asarray(index)
        if padded:
            index = xp.where(self.inside[:, :, 0], index, V)
        return rows, xp.ascontiguousarray(index)

    def _table_grad(self, grad_rows):
        """The projected table's gradient, (V, gates * H) in PyTorch's gate order and the input's shape,
        from the pre-activation gradients of the input's columns summed by row, internal order."""
        cell, H = self.cell, self.H
        V = self.x_shape[0] if len(self.x_shape) == 2 else self.T * self.B
        grad = self.xp.empty((V, self.I), self.dtype)
        for k, source in enumerate(cell.x_order):
            grad[:, source * H:(source + 1) * H] = grad_rows[:V, k * H:(k + 1) * H]
        return grad.reshape(self.x_shape)

    # --- buffers
    def _time_range(self, p0, p1):
        """Steps p0..p1-1 in processing order as the time range [t_lo, t_lo + L)."""
        return (p0, p1 - p0) if not self.reverse else (self.T - p1, p1 - p0)

    def _buffers(self, L, y_slice=None):
        """Buffers for L steps (from BUFFERS): S, Hc, Cc, TC as _Segment's; the state buffer is y_slice
        when given (no lengths, forward)."""
        xp, B, H, cell, dtype = self.xp, self.B, self.H, self.cell, self.dtype
        Hc = y_slice if y_slice is not None else BUFFERS.empty(xp, (L, B, H), dtype)
        S = Hc if cell.width == 1 and not cell.grads_in_place else BUFFERS.empty(xp, (L, B, cell.width * H), dtype)
        Cc = BUFFERS.empty(xp, (L, B, H), dtype) if cell.has_cell_state else None
        TC = BUFFERS.empty(xp, (L, B, H), dtype) if cell.has_cell_state and self.steps.keeps_tanh_c else None
        return S, Hc, Cc, TC

    # --- forward
    def _run(self, seg, h_start, c_start, y):
        """The forward steps of one segment from its start state; y gets outputs when given."""
        xp, B, I, H, cell, w = self.xp, self.B, self.I, self.H, self.cell, self.w
        L, t_lo = seg.L, seg.t_lo
        if self.index is not None:  # the gathered rows fill the whole buffer, the bias already added
            _gather_into(xp, self.rows, self.index[t_lo:t_lo + L].reshape(L * B), seg.S.reshape(L * B, -1))
        else:
            lo, hi = cell.x_cols
            projection = seg.S.reshape(L * B, cell.width * H)[:, lo * H:hi * H]
            _matmul_into(xp, self.x[t_lo:t_lo + L].reshape(L * B, I), w.wx_fwd.T, projection)
            if w.bx_fwd is not None:
                projection += w.bx_fwd
        last = self.steps.forward_segment(seg, self.reverse, h_start, c_start, y)
        return seg.Hc[last], (seg.Cc[last] if seg.Cc is not None else None)

    def forward(self):
        """Run the pass; returns (output (T, B, H), h_n, c_n or None)."""
        xp, T, B, H = self.xp, self.T, self.B, self.H
        y = xp.zeros((T, B, H), self.dtype) if self.lengths is not None else xp.empty((T, B, H), self.dtype)
        whole = len(self.segments) == 1
        h, c = self.h0, self.c0
        scratch = None
        for p0, p1 in self.segments:
            t_lo, L = self._time_range(p0, p1)
            if self.record:
                self.starts.append((h, c))
            y_slice = y[t_lo:t_lo + L] if self.lengths is None else None
            if whole:
                S, Hc, Cc, TC = self._buffers(L, y_slice)
            else:  # one set of segment buffers, reused; only the state buffer follows y
                if scratch is None:
                    scratch = self._buffers(p1 - p0)
                S, _, Cc, TC = (a[:L] if a is not None else None for a in scratch)
                Hc = y_slice if y_slice is not None else scratch[1][:L]
            seg = _Segment(t_lo, S, Hc, Cc, TC)
            h, c = self._run(seg, h, c, y if self.lengths is not None else None)
            if not whole:  # the next segment overwrites the buffers these point into
                h, c = h.copy(), (c.copy() if c is not None else None)
        h_n, c_n = h.copy(), (c.copy() if c is not None else None)
        if self.record and whole:
            self.saved = seg
            self.saved_state_is_output = self.lengths is None
        else:  # y is the output, a view of it is never kept
            BUFFERS.give(*(scratch or seg.buffers()))
        if not self.record:
            self.steps.check()  # no backward will come to check the run
        return y, h_n, c_n

    def saved_arrays(self):
        """Arrays kept for backward that are neither inputs nor the output (which holds the states)."""
        held = [] if self.saved is None else list(self.saved.buffers())
        held += [a for start in self.starts[1:] for a in start]  # starts[0] is (h0, c0) itself
        held += [self.rows, self.index]  # a projected table's rows as the steps read them
        output = self.saved.Hc if self.saved is not None and self.saved_state_is_output else None
        return list({id(a): a for a in held if a is not None and a is not output}.values())

    # --- backward
    def backward(self, g, dh_n, dc_n, needs):
        """Gradients of (x, h0, c0, w_ih, w_hh, b_ih, b_hh) for those whose flag in `needs` is set."""
        xp, T, B, I, H, cell = self.xp, self.T, self.B, self.I, self.H, self.cell
        g = xp.ascontiguousarray(g) if self.inside is None else xp.where(self.inside, g, g.dtype.type(0))
        need_x, need_h0, need_c0, need_wih, need_whh, need_bias = needs
        dx = None
        if need_x:  # the gathered rows' gradient, dA summed by row; or dX
            dx = xp.zeros((self.rows.shape[0], self.I), self.dtype) if self.index is not None \
                else xp.empty((T, B, I), self.dtype)
        dwx = xp.zeros((cell.gates * H, I), self.dtype) if need_wih else None
        dwh = xp.zeros((cell.gates * H, H), self.dtype) if need_whh else None
        dbx = xp.zeros(cell.gates * H, self.dtype) if need_bias else None
        dbh = xp.zeros(cell.gates * H, self.dtype) if need_bias else None
        zeros = xp.zeros((B, H), self.dtype)
        self.steps.start_backward(zeros if dh_n is None else dh_n, zeros if dc_n is None else dc_n)
        scratch = None
        for s in range(len(self.segments) - 1, -1, -1):
            p0, p1 = self.segments[s]
            t_lo, L = self._time_range(p0, p1)
            h_start, c_start = self.starts[s]
            if self.saved is not None:
                seg = self.saved
            else:  # checkpointed, or the saved gates were spent by an earlier backward: recompute
                if scratch is None:
                    scratch = self._buffers(self.segments[0][1])  # the longest segment
                seg = _Segment(t_lo, *(a[:L] if a is not None else None for a in scratch))
                self._run(seg, h_start, c_start, None)
            dA = seg.S if cell.grads_in_place else BUFFERS.empty(xp, seg.S.shape, self.dtype)
            self.steps.backward_segment(seg, dA, self.reverse, h_start, c_start, g)
            self._weight_grads(seg, dA, h_start, dx, dwx, dwh, dbx, dbh, first=s == len(self.segments) - 1)
            if dA is not seg.S:
                BUFFERS.give(dA)
        if scratch is not None:
            BUFFERS.give(*scratch)
        if cell.grads_in_place and self.saved is not None:  # its gates now hold gradients: a second backward
            BUFFERS.give(*self.saved.buffers())  # recomputes them
            self.saved = None
        dh0, dc0 = self.steps.finish_backward()
        dw_ih, dw_hh, db_ih, db_hh = cell.export(H, dwx, dwh, dbx, dbh)
        if dx is not None and self.index is not None:
            dx = self._table_grad(dx)
        return (dx, dh0 if need_h0 else None, dc0 if need_c0 else None, dw_ih, dw_hh, db_ih, db_hh)

    def _weight_grads(self, seg, dA, h_start, dx, dwx, dwh, dbx, dbh, first=False):
        """All of a segment's steps at once: dX = dA W_ih, dW_ih = dA^T X, dW_hh = dA^T H_prev.

        The first segment handled (first=True) writes the weight gradients, later ones add to them."""
        xp, B, I, H, cell = self.xp, self.B, self.I, self.H, self.cell
        L, t_lo = seg.L, seg.t_lo
        flat = dA.reshape(L * B, cell.width * H)
        dAx = flat[:, cell.x_cols[0] * H:cell.x_cols[1] * H]
        dAh = dA[:, :, cell.h_cols[0] * H:cell.h_cols[1] * H]

        def add_product(a, b, out):
            if first:
                xp.matmul(a, b, out=out)
            else:
                out += a @ b

        if dx is not None and self.index is not None:  # the gathered rows' gradient: dA summed by row
            sum_rows_into(dx, self.index[t_lo:t_lo + L], dAx)
        elif dx is not None:
            xp.matmul(dAx, self.w.wx, out=dx[t_lo:t_lo + L].reshape(L * B, I))
        if dwx is not None:
            add_product(dAx.T, self.x[t_lo:t_lo + L].reshape(L * B, I), dwx)
        if dbx is not None:  # the column sums of every gate in one product, one pass over dA
            sums = xp.ones(L * B, self.dtype) @ flat
            dbx += sums[cell.x_cols[0] * H:cell.x_cols[1] * H]
            dbh += sums[cell.h_cols[0] * H:cell.h_cols[1] * H]
        if dwh is not None:
            # step j's previous state is Hc[j - 1] (Hc[j + 1] in reverse), the start state at the edge
            edge, rest, prev = (L - 1, slice(0, L - 1), slice(1, L)) if self.reverse else \
                (0, slice(1, L), slice(0, L - 1))
            if L > 1:
                add_product(dAh[rest].reshape(-1, dAh.shape[2]).T, seg.Hc[prev].reshape(-1, H), dwh)
            dwh += dAh[edge].T @ h_start


def _gather_into(xp, rows, index, out):
    """out[k] = rows[index[k]] (index flat, in range), written in place."""
    if xp is np:
        np.take(rows, index, axis=0, out=out, mode="clip")  # "raise" would gather into a buffer first
    else:
        xp.take(rows, index, axis=0, out=out)


def _matmul_into(xp, a, b, out):
    """out[...] = a @ b; NumPy writes strided outputs directly, CuPy via a contiguous result."""
    if xp is np or out.flags.c_contiguous:
        xp.matmul(a, b, out=out)
    else:
        out[...] = a @ b


# ----------------------------------------------------------------------------- graph nodes


class FusedPass(Function):
    """One (layer, direction) pass as one node: inputs x, h0, [c0], w_ih, w_hh, [b_ih, b_hh]; with the
    option index, "table" (the projected table) in place of x and no w_ih."""
    cell = None
    array_backward = True
    whole_sequence = True
    multiple_outputs = True  # output, h_n and, for the LSTM, c_n

    def forward(self, *arrays, layout, reverse, lengths, checkpoint_every, record, index=None):
        named = dict(zip(layout, arrays))
        seq = Sequence(self.cell, arrays[0], named["h0"], named.get("c0"), named.get("w_ih"), named["w_hh"],
                       named.get("b_ih"), named.get("b_hh"), reverse, lengths, checkpoint_every, record, index)
        y, h_n, c_n = seq.forward()
        if record:
            self.seq, self.layout = seq, layout
            # what the pass received, by name: unfuse.py redraws it op by op from these (viz's expand_fused)
            self.inputs, self.reverse, self.lengths, self.index = named, reverse, lengths, index
        return (y, h_n) if c_n is None else (y, h_n, c_n)

    def backward(self, g, dh_n, dc_n=None):
        if g is None:  # a loss on the final states alone
            g = backend.xp_of(dh_n if dh_n is not None else dc_n).zeros(self.shape, self.seq.dtype)
        if self.keep_grad:  # recorded under tr.retain_grads(): keep every step's dL/dh(t), dL/dc(t)
            from .unfuse import keep_step_gradients
            keep_step_gradients(self, g, (dh_n, dc_n))
        flags = dict(zip(self.layout, self.needs))
        source = self.layout[0]  # x, or the projected table
        needs = (flags[source], flags["h0"], flags.get("c0", False), flags.get("w_ih", False), flags["w_hh"],
                 flags.get("b_ih", False) or flags.get("b_hh", False))
        grads = dict(zip((source, "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"),
                         self.seq.backward(g, dh_n, dc_n, needs)))
        return tuple(grads[name] if flags[name] else None for name in self.layout)

    def differentiable_backward(self, g, dh_n, dc_n=None):
        """The backward as recorded ops, for gradients of gradients and forward-over-reverse.

        The hand-written BPTT above works on raw arrays, so here the pass is rebuilt op by op from the
        values it received (the graph `fused=False` records) and differentiated; its inputs enter
        through fresh boundary nodes, so that inner backward never walks into the outer graph.
        """
        from ..autograd import _run
        from .unfuse import compose
        with enable_grad():
            boundary = {}
            for k, name in enumerate(self.layout):
                value = self.attached(k, self.inputs[name])
                boundary[name] = value.reshape(value.shape)  # a node of its own: where the inner pass stops
            steps, state = compose(self, boundary)
            roots = [stack(steps)] + [s for s in state]
        grads = [d if d is not None else Tensor._make(r.xp.zeros(r.shape, dtype=r.dtype), None)
                 for d, r in zip((g, dh_n, dc_n), roots)]
        wanted = {name: t._ctx for name, t in boundary.items() if t._ctx is not None}
        capture = {id(node): None for node in wanted.values()}
        create_graph = is_grad_enabled()  # the outer backward records (create_graph=True)
        _run(roots, [d if isinstance(d, Tensor) else Tensor._make(d, None) for d in grads],
             retain_graph=create_graph, create_graph=create_graph, capture=capture, only=(),
             stop=frozenset(wanted.values()))
        return tuple(capture[id(wanted[name])] if name in wanted and need else None
                     for name, need in zip(self.layout, self.needs))

    def saved_arrays(self):
        """The arrays this node keeps for backward besides its inputs and its output (memory checks)."""
        seq = getattr(self, "seq", None)
        return [] if seq is None else seq.saved_arrays()

    def kept_for_drawing(self):
        from .unfuse import kept_for_drawing
        return kept_for_drawing(self)


class LSTMFused(FusedPass):
    op, cell = "lstm_fused", CELLS["lstm"]


class GRUFused(FusedPass):
    op, cell = "gru_fused", CELLS["gru"]


class RNNTanhFused(FusedPass):
    op, cell = "rnn_tanh_fused", CELLS["rnn_tanh"]


class RNNReluFused(FusedPass):
    op, cell = "rnn_relu_fused", CELLS["rnn_relu"]


PASSES = {"lstm": LSTMFused, "gru": GRUFused, "rnn_tanh": RNNTanhFused, "rnn_relu": RNNReluFused}


# ----------------------------------------------------------------------------- entry point

MODES = ("lstm", "gru", "rnn_tanh", "rnn_relu")
TABLE = "table"  # the name of a pass's first input where it is a projected table read through an index


def fused_pass(mode, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False, lengths=None,
               nonlinearity="tanh", checkpoint_every=None, index=None):
    """One (layer, direction) pass of an RNN, LSTM or GRU over a whole sequence, as one graph node.

    mode: "lstm", "gru", "rnn" (with nonlinearity "tanh" or "relu"), or "rnn_tanh" / "rnn_relu".
    x (T, B, I); h0, c0 (B, H) or None for zeros (c0 only for the LSTM); weights and biases with
    PyTorch's shapes and gate order (b_ih/b_hh may be None). w_ih None: x is already the input's
    projection x @ w_ih^T (T, B, gates * H), and its gradient is that of the pre-activations; with
    index as well (an integer array (T, B), on x's device), x is a projected table (V, gates * H)
    and step t of sequence b reads its row index[t, b] (the pass gathers it: the node's input is the
    table, whose gradient sums the pre-activation gradients by row). lengths: host ints (B,), each in
    [1, T], or None. checkpoint_every: keep every k-th state and recompute the rest in backward.
    Returns (output (T, B, H), h_n (B, H), c_n (B, H) or None), each a Tensor.
    """
    mode = _check_mode(mode, nonlinearity)
    cell = CELLS[mode]
    x, h0, c0, index = _check_inputs(mode, cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, index)
    T, B = x.shape[:2] if index is None else index.shape
    lengths = check_lengths("fused_pass", lengths, T, B)
    if checkpoint_every is not None and (not isinstance(checkpoint_every, int) or isinstance(checkpoint_every, bool)
                                         or checkpoint_every < 1):
        raise ValueError(f"fused_pass: checkpoint_every must be a positive int or None; got {checkpoint_every!r}")
    named = [(V.INPUT if index is None else TABLE, x), ("h0", h0), ("c0", c0), ("w_ih", w_ih), ("w_hh", w_hh),
             ("b_ih", b_ih), ("b_hh", b_hh)]
    named = [(n, t) for n, t in named if t is not None]
    layout = tuple(n for n, _ in named)
    inputs = [t for _, t in named]
    record = is_grad_enabled() and any(t.requires_grad for t in inputs)
    output, h_n, *c_n = PASSES[mode].apply(*inputs, layout=layout, reverse=bool(reverse), lengths=lengths,
                                           checkpoint_every=checkpoint_every, record=record,
                                           **({} if index is None else {"index": index}))
    return (output.named(V.OUTPUT), h_n.named(V.final(V.HIDDEN)),
            c_n[0].named(V.final(V.CELL)) if c_n else None)


def _check_mode(mode, nonlinearity):
    if mode in ("rnn", "RNN"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        return f"rnn_{nonlinearity}"
    name = str(mode).lower()
    if name not in MODES:
        raise ValueError(f"fused_pass: unknown mode {mode!r}; expected one of 'lstm', 'gru', 'rnn', "
                         f"'rnn_tanh', 'rnn_relu'")
    return name


def _check_inputs(mode, cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, index):
    """Shapes, dtypes and devices, checked before anything runs; zero states made where missing."""
    for what, t in (("input", x), ("weight_ih", w_ih), ("weight_hh", w_hh)):
        if not isinstance(t, Tensor) and not (what == "weight_ih" and t is None):
            raise TypeError(f"fused_pass: {what} must be a Tensor; got {type(t).__name__}")
    if index is not None:
        index = _check_index(mode, x, w_ih, index)
        B, I = index.shape[1], x.shape[1]
    elif x.ndim != 3:
        raise ValueError(f"fused_pass: expected input of shape (T, B, input_size), got {tuple(x.shape)}")
    else:
        _, B, I = x.shape
    if w_hh.ndim != 2 or w_hh.shape[0] % cell.gates:
        raise ValueError(f"fused_pass ({mode}): weight_hh must have shape ({cell.gates}*hidden_size, "
                         f"hidden_size); got {tuple(w_hh.shape)}")
    H = w_hh.shape[0] // cell.gates
    rows = cell.gates * H
    expected = {"weight_ih": (w_ih, (rows, I)), "weight_hh": (w_hh, (rows, H)),
                "bias_ih": (b_ih, (rows,)), "bias_hh": (b_hh, (rows,))}
    for what, (t, shape) in expected.items():
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"fused_pass ({mode}): {what} has shape {tuple(t.shape)}, expected {shape} "
                             f"for input of shape {tuple(x.shape)} and hidden_size {H}")
    if w_ih is None and I != rows:
        expected = f"(T, B, {rows})" if index is None else f"(rows, {rows}) beside an index"
        raise ValueError(f"fused_pass ({mode}): without weight_ih the input must be its projection, of shape "
                         f"{expected}; got {tuple(x.shape)}")
    if c0 is not None and not cell.has_cell_state:
        raise ValueError(f"fused_pass ({mode}): c0 is only for the LSTM")
    states = []
    for what, t in (("h0", h0), ("c0", c0 if cell.has_cell_state else None)):
        if t is None:
            if what == "c0" and not cell.has_cell_state:
                states.append(None)
                continue
            t = Tensor._make(x.xp.zeros((B, H), dtype=x.dtype), None).named(what)
        elif tuple(t.shape) != (B, H):
            raise ValueError(f"fused_pass ({mode}): Expected {what} of size {(B, H)}, got {tuple(t.shape)} "
                             f"(input shape {tuple(x.shape)})")
        states.append(t)
    h0, c0 = states
    tensors = [("input", x), ("h0", h0), ("c0", c0), ("weight_ih", w_ih), ("weight_hh", w_hh),
               ("bias_ih", b_ih), ("bias_hh", b_hh)]
    tensors = [(n, t) for n, t in tensors if t is not None]
    if x.dtype.kind != "f" or len({t.dtype for _, t in tensors}) > 1:
        described = ", ".join(f"{n} {t.dtype}" for n, t in tensors)
        raise TypeError(f"fused_pass ({mode}): expected all tensors to have the same floating dtype; got {described}")
    if len({t.device for _, t in tensors}) > 1:
        described = ", ".join(f"{n} on {t.device}" for n, t in tensors)
        raise backend.DeviceError(f"fused_pass ({mode}): tensors are on different devices ({described}); "
                                  f"move them with .to(device) first")
    return x, h0, c0, index


def _check_index(mode, table, w_ih, index):
    """The index of a pass given a projected table: integers (T, B) within the table's rows, where it is."""
    if w_ih is not None or table.ndim != 2:
        raise ValueError(f"fused_pass ({mode}): with an index the input must be a projected table "
                         f"(rows, gates * hidden_size) and weight_ih None; got input of shape {tuple(table.shape)}"
                         f"{'' if w_ih is None else ' and a weight_ih'}")
    if isinstance(index, Tensor):
        index = index.array
    if backend.xp_of(index) is not table.xp:
        raise backend.DeviceError(f"fused_pass ({mode}): index must be on the table's device ({table.device})")
    if index.ndim != 2 or index.dtype.kind not in "iu":
        raise ValueError(f"fused_pass ({mode}): index must be an integer array (T, B); got {index.dtype} "
                         f"of shape {tuple(index.shape)}")
    rows = table.shape[0]
    if index.size:
        backend.check((index < 0) | (index >= rows), lambda: IndexError(
            f"fused_pass ({mode}): index spans [{int(index.min())}, {int(index.max())}] but the table has "
            f"{rows} rows"))
    return index


# ----------------------------------------------------------------------------- the layers' seam


def pass_mode(cell):
    """The fused mode that runs `cell` exactly, or None where the fused path declines it.

    Declined: LSTM with proj_size, GRU with reset_after=False, and any other cell type.
    """
    from .cells import GRUCell, LSTMCell, RNNCell
    kind = type(cell)
    if kind is LSTMCell:
        return None if cell.proj_size else "lstm"
    if kind is GRUCell:
        return "gru" if cell.reset_after else None
    if kind is RNNCell:
        return f"rnn_{cell.nonlinearity}"
    return None


def accepts(cell):
    """Whether fused_run handles `cell` (the `accepts` argument of recurrent.register_fused)."""
    return pass_mode(cell) is not None


def fused_run(cell, x, state, lengths=None, reverse=False, checkpoint_every=None):
    """One (layer, direction) pass for recurrent.py's seam: (output (T, B, H), final state tuple)."""
    mode = pass_mode(cell)
    if mode is None:
        raise ValueError(f"fused_run: the fused path does not handle {cell!r} (LSTM with proj_size and GRU "
                         f"with reset_after=False run op by op)")
    c0 = state[1] if mode == "lstm" else None
    x, w_ih, index = projected_input(x, cell.weight_ih)
    output, h_n, c_n = fused_pass(mode, x, state[0], c0, w_ih, cell.weight_hh, cell.bias_ih,
                                  cell.bias_hh, reverse=reverse, lengths=lengths,
                                  checkpoint_every=checkpoint_every, index=index)
    return output, ((h_n, c_n) if mode == "lstm" else (h_n,))


# The narrowest table projected_input projects. Below it the input's products over T * B rows of
# width E cost less than gathering T * B rows of width gates * H into the gate buffer and summing
# their gradients by row (bench/RESULTS.md, "Projecting the embedding table").
PROJECT_MIN_WIDTH = 32


def projected_input(x, w_ih):
    """(input, weight_ih, index) for a pass: (x, w_ih, None), or, where x (T, B, E) is an embedding
    lookup table[index] of a table with fewer rows than x (V < T * B) and at least PROJECT_MIN_WIDTH
    columns, (rows @ w_ih^T, None, index into rows), where rows are the table's rows the index reads
    (on a GPU: the table with the other rows set to zero).

    Then the input's product runs over the table's V rows instead of T * B looked-up ones, and so do
    its gradients: the pass gathers each step's rows of the projected table straight into its gate
    buffer and sums the pre-activation gradients by row, G (V, gates * H), and the product's VJP gives
    dW_ih = G^T table and d table = G W_ih. The product is an ordinary recorded node (Matmul) and the
    pass's parent, so gradients of gradients and pictures see what ran (unfuse.py rebuilds the pass
    as the lookup of the projected rows, then the cells).
    """
    source = looked_up(x) if x._ctx is not None and x.shape[-1] >= PROJECT_MIN_WIDTH else None
    if source is None:
        return x, w_ih, None
    table, index = source
    T, B, _ = x.shape
    if (table.shape[0] >= T * B or tuple(index.shape) != (T, B) or table.dtype != w_ih.dtype
            or table.device != w_ih.device):
        return x, w_ih, None
    # Only the rows read take part, so a NaN in another stays out of dW_ih. On the host the rows read
    # are projected alone; on a GPU, where their count would be a read every step, the others are zeros.
    used = table.xp.zeros(table.shape[0], bool)
    used[index.reshape(-1)] = True
    if backend.reads_stall(used):
        return where(used[:, None], table, 0.0) @ w_ih.T, None, index
    rows = np.flatnonzero(used)
    if len(rows) < len(used):
        table, index = Lookup.apply(table, index=rows), (np.cumsum(used) - 1)[index]
    return table @ w_ih.T, None, index
