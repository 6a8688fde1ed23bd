"""Cells written only here (and the lecture's, from examples/), from primitives, to show the step
compiler needs nothing of any cell."""
import math

import numpy as np

import tinygrad_rnn as tr
from examples.lecture_cells import LectureGRU, LectureLSTM
from tinygrad_rnn.nn import functional as F
from tinygrad_rnn.nn import init
from tinygrad_rnn.tensor import Function


def _uniform(cell, *shape):
    p = init.parameter(*shape, dtype=cell.dtype, device=cell.device)
    bound = 1 / math.sqrt(cell.hidden_size)
    return init.uniform_(p, -bound, bound)


class _Cell(tr.nn.RecurrentCell):
    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.device, self.dtype = device, dtype


class PeepholeLSTMCell(_Cell):
    """LSTM whose gates also read the cell state (Gers & Schmidhuber 2000)."""
    state_names = ("h", "c")

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size, device, dtype)
        self.weight_ih = _uniform(self, 4 * hidden_size, input_size)
        self.weight_hh = _uniform(self, 4 * hidden_size, hidden_size)
        self.bias = _uniform(self, 4 * hidden_size)
        self.peep_i, self.peep_f, self.peep_o = (_uniform(self, hidden_size) for _ in range(3))

    @property
    def state_sizes(self):
        return (self.hidden_size, self.hidden_size)

    def step(self, x, state):
        h, c = state
        w = self.constants()
        a_i, a_f, a_g, a_o = (x @ w["weight_ih"] + h @ w["weight_hh"] + self.bias).chunk(4, 1)
        i = (a_i + self.peep_i * c).sigmoid()
        f = (a_f + self.peep_f * c).sigmoid()
        c = f * c + i * a_g.tanh()
        o = (a_o + self.peep_o * c).sigmoid()
        return o * c.tanh(), c


class IndRNNCell(_Cell):
    """h' = relu(W x + u * h + b): each unit its own recurrence (Li et al. 2018), no recurrent product."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size, device, dtype)
        self.weight = _uniform(self, input_size, hidden_size)
        self.recurrent = _uniform(self, hidden_size)
        self.bias = _uniform(self, hidden_size)

    def step(self, x, state):
        h, = state
        return ((x @ self.weight + self.bias + self.recurrent * h).relu(),)


class MinimalGatedUnit(_Cell):
    """One forget gate (Zhou et al. 2016): h' = (1 - f) h + f tanh(W x + U (f h) + b)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size, device, dtype)
        self.wf, self.wh = _uniform(self, input_size, hidden_size), _uniform(self, input_size, hidden_size)
        self.uf, self.uh = _uniform(self, hidden_size, hidden_size), _uniform(self, hidden_size, hidden_size)
        self.bf, self.bh = _uniform(self, hidden_size), _uniform(self, hidden_size)

    def step(self, x, state):
        h, = state
        f = (x @ self.wf + h @ self.uf + self.bf).sigmoid()
        candidate = (x @ self.wh + (f * h) @ self.uh + self.bh).tanh()
        return ((1 - f) * h + f * candidate,)


class ModuleCell(tr.nn.Module):
    """Not a RecurrentCell: any Module with state_sizes and forward(x, h) -> h."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__()
        self.state_sizes = (hidden_size,)
        self.w = init.uniform_(init.parameter(hidden_size, input_size, dtype=dtype, device=device), -0.5, 0.5)
        self.u = init.orthogonal_(init.parameter(hidden_size, hidden_size, dtype=dtype, device=device))

    def forward(self, x, h):
        return (x @ self.w.T + h @ self.u.T).tanh()


class Scale(Function):
    """A primitive of the test's own, with its VJP in Tensor ops: the compiler runs its forward."""
    saves = ()

    def forward(self, x, factor):
        self.factor = factor
        return x * factor

    def backward(self, g):
        return (g * self.factor,)


class ManyOpsCell(_Cell):
    """A step that uses many primitives: cat, einsum, clip, amax, softmax-like division, exp, log,
    power, where on a constant mask, a stack and a primitive defined here."""
    state_names = ("h", "m")

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size, device, dtype)
        self.w = _uniform(self, input_size + hidden_size, hidden_size)
        self.v = _uniform(self, hidden_size, hidden_size)
        self.mask = np.arange(hidden_size) % 2 == 0

    @property
    def state_sizes(self):
        return (self.hidden_size, self.hidden_size)

    def step(self, x, state):
        h, m = state
        a = tr.cat([x, h], dim=1) @ self.w
        b = tr.einsum("bi,ij->bj", m, self.v).clip(-1.5, 1.5)
        e = (a - a.amax(dim=1, keepdim=True)).exp()
        p = e / e.sum(dim=1, keepdim=True)
        r = ((p + 1).log() + b * b + (m * m + 1) ** 0.5).tanh()
        new_h = tr.where(tr.Tensor(self.mask), r, Scale.apply(r, factor=0.5) - h.mean(dim=1, keepdim=True))
        new_m = tr.stack([new_h, m], dim=0).mean(dim=0)
        return new_h, new_m


class NormalizedCell(_Cell):
    """A normalisation, a square, a negation and a quotient: the VJP patterns compile/simplify.py rewrites
    (sum(-x), (a + b) + b, product chains of gradient and forward factors)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size, device, dtype)
        self.w, self.u = _uniform(self, input_size, hidden_size), _uniform(self, hidden_size, hidden_size)
        self.gain, self.bias = _uniform(self, hidden_size), _uniform(self, hidden_size)

    def step(self, x, state):
        h, = state
        a = x @ self.w + h @ self.u
        c = a - a.mean(dim=1, keepdim=True)
        n = c / ((c * c).mean(dim=1, keepdim=True) + 1e-5) ** 0.5
        t = (n * self.gain - self.bias).tanh()
        return (-(t * h.sigmoid()) / (2 + h * h) + h * 0.5,)


class NegatedGatesCell(_Cell):
    """Sigmoids whose negation (sigmoid(z) = 1 / (1 + exp(-z)), compile/fold.py) lands in several
    ways: a static gain, a (B, 1) mean, an input-only tanh (negated for all steps at once), a product
    of two states that two sigmoids share (one per-step copy for both)."""
    state_names = ("h", "c")

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size, device, dtype)
        self.u, self.w = _uniform(self, input_size, 2 * hidden_size), _uniform(self, hidden_size, 2 * hidden_size)
        self.v = _uniform(self, input_size, hidden_size)
        self.gain = init.uniform_(init.parameter(hidden_size, dtype=dtype, device=device), 0.5, 1.5)

    @property
    def state_sizes(self):
        return (self.hidden_size, self.hidden_size)

    def step(self, x, state):
        h, c = state
        i, f = (x @ self.u + h @ self.w).chunk(2, 1)
        i = (i * self.gain).sigmoid()
        f = (f - f.mean(dim=1, keepdim=True) + (x @ self.v).tanh()).sigmoid()
        q = h * c
        g, o = q.sigmoid(), (1 - q).sigmoid()
        c = f * c + i * g
        return o * c.tanh(), c


class SquaredGateCell(_Cell):
    """sigmoid(h * h): its negation would cost a product each step, so that sigmoid stays; the other
    gate's folds into the weights."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size, device, dtype)
        self.u, self.w = _uniform(self, input_size, hidden_size), _uniform(self, hidden_size, hidden_size)

    def step(self, x, state):
        h, = state
        gate = (x @ self.u + h @ self.w).sigmoid()
        return (gate * (h * h).sigmoid() + (1 - gate) * h,)


TRACEABLE = {"lecture_lstm": LectureLSTM, "lecture_gru": LectureGRU, "peephole_lstm": PeepholeLSTMCell,
             "indrnn": IndRNNCell, "mgu": MinimalGatedUnit, "module_cell": ModuleCell, "many_ops": ManyOpsCell,
             "normalized": NormalizedCell, "negated_gates": NegatedGatesCell, "squared_gate": SquaredGateCell}


# ----------------------------------------------------------------------------- cells it must refuse


class BranchOnDataCell(_Cell):
    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size, device, dtype)
        self.w = _uniform(self, input_size, hidden_size)

    def step(self, x, state):
        h, = state
        pre = x @ self.w + h
        return (pre.tanh() if pre.sum() > 0 else pre.sigmoid(),)


class LeakyCell(_Cell):
    """where() on a comparison of the raw array: the condition is computed from the data outside the
    graph (`pre > 0`, an op, would compile)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size, device, dtype)
        self.w = _uniform(self, input_size, hidden_size)

    def step(self, x, state):
        h, = state
        pre = x @ self.w + h * 0.5
        return (tr.where(tr.tensor(pre.array > 0), pre, pre * 0.1),)


class NoisyCell(_Cell):
    """Dropout inside the step: a fresh random mask every step."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size, device, dtype)
        self.w = _uniform(self, input_size, hidden_size)

    def step(self, x, state):
        h, = state
        return (F.dropout((x @ self.w + h).tanh(), 0.5, True),)


class Opaque(Function):
    """A primitive whose backward works on raw arrays: it has no VJP to trace."""
    array_backward = True
    saves = ()

    def forward(self, x):
        return x * 2

    def backward(self, g):
        return (g * 2,)


class OpaqueCell(_Cell):
    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size, device, dtype)
        self.w = _uniform(self, input_size, hidden_size)

    def step(self, x, state):
        h, = state
        return (Opaque.apply(x @ self.w + h).tanh(),)
