"""Cells written the way a PyTorch user writes them (nn.Linear submodules, cat before one product,
chunk/split, slices, LayerNorm, softmax over features, buffers, several states), to check the step
compiler on idioms the cells of cells.py do not use. Each takes (input_size, hidden_size, device,
dtype) as `Recurrent` builds it.

Some cells write by hand what F has too (a linear as x @ W.T + b, unbind as integer indexing, softplus
as log(1 + exp(z)), elu from relu and exp, gelu's tanh form), as code written before F had them does;
the last ones take F's own (F.linear, unbind, gelu, softplus, elu, silu, leaky_relu, hardtanh,
logsigmoid, log1p, expm1, erf, cumsum, remainder, and the rest of the activations)."""
import math

import tinygrad_rnn as tr
from tinygrad_rnn import nn
from tinygrad_rnn.nn import functional as F


def _weight(*shape, dtype=None, device=None, scale=0.4):
    # drawn in float64 whatever the dtype, so a seed gives a cell the same weights (and masks drawn after
    # them) in float32 as in float64
    drawn = tr.randn(*shape, dtype=tr.float64, device=device) * scale
    return nn.Parameter(drawn.to(dtype or tr.get_default_dtype()))


class ConcatElmanCell(nn.Module):
    """Not a RecurrentCell: one product over cat([x, h]), forward(x, h) -> h."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__()
        self.state_sizes = (hidden_size,)
        self.W = _weight(input_size + hidden_size, hidden_size, dtype=dtype, device=device)
        self.b = _weight(hidden_size, dtype=dtype, device=device)

    def forward(self, x, h):
        return tr.tanh(tr.cat([x, h], dim=1) @ self.W + self.b)


class LinearGRUCell(nn.RecurrentCell):
    """A GRU from nn.Linear submodules (with and without bias), chunk and split, the reset gate
    applied before the product: n = tanh(W_x x + W_r (r * h))."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.x2h = nn.Linear(input_size, 3 * hidden_size, dtype=dtype, device=device)
        self.h2h = nn.Linear(hidden_size, 2 * hidden_size, bias=False, dtype=dtype, device=device)
        self.reset_proj = nn.Linear(hidden_size, hidden_size, bias=False, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        xz, xr, xn = self.x2h(x).chunk(3, dim=1)
        hz, hr = self.h2h(h).split(self.hidden_size, dim=1)
        z = tr.sigmoid(xz + hz)
        r = tr.sigmoid(xr + hr)
        n = tr.tanh(xn + self.reset_proj(r * h))
        return ((1 - z) * n + z * h,)


class IndexedGatesLSTMCell(nn.RecurrentCell):
    """An LSTM whose gates come from a reshape to (B, 4, H) and integer indexing (torch's unbind),
    weights (4H, I) used as x @ W.t() (F.linear by hand), states returned as a list."""
    state_names = ("h", "c")

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.weight_ih = _weight(4 * hidden_size, input_size, dtype=dtype, device=device)
        self.weight_hh = _weight(4 * hidden_size, hidden_size, dtype=dtype, device=device)
        self.bias = nn.Parameter(tr.zeros(4 * hidden_size, dtype=dtype, device=device))

    @property
    def state_sizes(self):
        return (self.hidden_size, self.hidden_size)

    def step(self, x, state):
        h, c = state
        gates = (x @ self.weight_ih.t() + h @ self.weight_hh.t() + self.bias).view(x.shape[0], 4, self.hidden_size)
        i, f, g, o = (gates[:, k] for k in range(4))
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return [o.sigmoid() * c.tanh(), c]


class ExpGateCell(nn.RecurrentCell):
    """Three states (h, c, n) as sLSTM: an exponential input gate (clamped), a normaliser state,
    h = o * c / sqrt(n^2 + 1)."""
    state_names = ("h", "c", "n")

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.lin = nn.Linear(input_size + hidden_size, 4 * hidden_size, dtype=dtype, device=device)

    @property
    def state_sizes(self):
        return (self.hidden_size,) * 3

    def step(self, x, state):
        h, c, n = state
        a_i, a_f, a_z, a_o = self.lin(tr.cat([x, h], 1)).chunk(4, 1)
        i = a_i.clamp(max=2.0).exp()
        f = a_f.sigmoid()
        c = f * c + i * a_z.tanh()
        n = f * n + i
        h = a_o.sigmoid() * c / (n ** 2 + 1).sqrt()
        return h, c, n


class TupleReturnCell(nn.Module):
    """A Module whose only state is h but whose forward returns a one-element tuple; python float
    constants, int powers, the free functions tr.tanh / tr.sigmoid."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__()
        self.state_sizes = (hidden_size,)
        self.inp = nn.Linear(input_size, hidden_size, dtype=dtype, device=device)
        self.rec = _weight(hidden_size, hidden_size, dtype=dtype, device=device)

    def forward(self, x, h):
        pre = self.inp(x) + h @ self.rec
        cand = tr.tanh(pre) - 0.1 * pre ** 3 / (1.0 + pre ** 2)
        keep = tr.sigmoid(2.5 * h - 0.5)
        return (keep * h + (1.0 - keep) * cand,)


class TiedWeightCell(nn.RecurrentCell):
    """One weight used in two products (h @ W and tanh(a) @ W) and a scalar gate used twice; the step
    returns its one state as a tensor, not a tuple."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.U = _weight(input_size, hidden_size, dtype=dtype, device=device)
        self.W = _weight(hidden_size, hidden_size, dtype=dtype, device=device)
        self.alpha = nn.Parameter(tr.full((1,), 0.3, dtype=dtype, device=device))

    def step(self, x, state):
        h, = state
        a = tr.tanh(x @ self.U + h @ self.W)
        b = tr.tanh(a @ self.W + x @ self.U * 0.5)
        return self.alpha * h + (1 - self.alpha) * b


class BufferCell(nn.RecurrentCell):
    """Tensors that are not parameters: a registered buffer, a plain tensor attribute, a bool mask in
    where() and an int64 mask in a product, all fixed at construction."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.proj = nn.Linear(input_size, hidden_size, dtype=dtype, device=device)
        self.rec = _weight(hidden_size, hidden_size, dtype=dtype, device=device)
        self.register_buffer("decay", tr.linspace(0.1, 0.9, hidden_size, dtype=dtype, device=device))
        self.scale = tr.full((hidden_size,), 0.7, dtype=dtype, device=device)
        self.odd = tr.tensor([k % 2 == 1 for k in range(hidden_size)], device=device)
        self.keep = (tr.arange(hidden_size, device=device) < hidden_size - 1).long()

    def step(self, x, state):
        h, = state
        cand = tr.tanh(self.proj(x) + (h * self.keep) @ self.rec)
        mixed = tr.where(self.odd, cand * self.scale, cand)
        return (self.decay * h + (1 - self.decay) * mixed,)


class LayerNormGRUCell(nn.RecurrentCell):
    """nn.LayerNorm submodules on both products, and a hand-written normalisation with var(unbiased=False)
    and sqrt on the candidate."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.wx = nn.Linear(input_size, 2 * hidden_size, dtype=dtype, device=device)
        self.wh = nn.Linear(hidden_size, 2 * hidden_size, bias=False, dtype=dtype, device=device)
        self.ln_x = nn.LayerNorm(2 * hidden_size, dtype=dtype, device=device)
        self.ln_h = nn.LayerNorm(2 * hidden_size, elementwise_affine=False, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        z, cand = (self.ln_x(self.wx(x)) + self.ln_h(self.wh(h))).chunk(2, -1)
        mean = cand.mean(-1, keepdim=True)
        cand = (cand - mean) / (cand.var(-1, keepdim=True, unbiased=False) + 1e-5).sqrt()
        z = z.sigmoid()
        return (z * h + (1 - z) * cand.tanh(),)


class SoftmaxMixCell(nn.RecurrentCell):
    """Softmax and log_softmax over the features, a stack of three candidates mixed by softmax weights
    over dim 1, sums with and without keepdim."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.wx = _weight(input_size, 3 * hidden_size, dtype=dtype, device=device)
        self.wh = _weight(hidden_size, 3 * hidden_size, dtype=dtype, device=device)
        self.mix = _weight(input_size + hidden_size, 3, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        a, b, c = (x @ self.wx + h @ self.wh).chunk(3, dim=1)
        attention = F.softmax(a, dim=-1) * self.hidden_size
        logits = F.log_softmax(b, dim=1)
        candidates = tr.stack([attention * h, logits.exp() + c.tanh(), (logits / 4).tanh()], dim=1)  # (B, 3, H)
        weights = (tr.cat([x, h], dim=1) @ self.mix).softmax(-1)                                    # (B, 3)
        out = (weights.unsqueeze(-1) * candidates).sum(1)
        return (out - out.sum(-1, keepdim=True) / self.hidden_size,)


class ActivationZooCell(nn.RecurrentCell):
    """relu, softplus, elu, gelu (tanh form) from primitives, rsqrt, square, reciprocal, clamp with both
    bounds, amax over the features, a mean over the features without keepdim."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.lin = nn.Linear(input_size, 4 * hidden_size, dtype=dtype, device=device)
        self.rec = nn.Linear(hidden_size, 4 * hidden_size, bias=False, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        a, b, c, d = (self.lin(x) + self.rec(h)).chunk(4, 1)
        softplus = (1 + a.exp()).log()
        elu = b.relu() + ((-(-b).relu()).exp() - 1)
        gelu = 0.5 * c * (1 + tr.tanh(math.sqrt(2 / math.pi) * (c + 0.044715 * c ** 3)))
        gate = (d.square() + 1).rsqrt() + (2 + d.clamp(-1.0, 1.0)).reciprocal()
        peak = (softplus - softplus.amax(dim=1, keepdim=True)).exp()
        mean = elu.mean(dim=1).unsqueeze(1)
        return (tr.tanh(gate * (gelu + peak) - 0.3 * mean) * 0.9 + 0.1 * h,)


class SlicedStateCell(nn.RecurrentCell):
    """A state of two halves read as slices h[:, :k] and h[:, k:] (a fast and a slow part), joined back
    with cat; narrow, a strided slice and a column x[:, :1] broadcast over the features."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.k = hidden_size // 2
        self.w_fast = _weight(input_size + hidden_size, self.k, dtype=dtype, device=device)
        self.w_slow = _weight(input_size, hidden_size - self.k, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        fast, slow = h[:, :self.k], h[:, self.k:]
        new_fast = tr.tanh(tr.cat([x, fast, slow], 1) @ self.w_fast + x[:, :1])
        rate = tr.sigmoid(slow.narrow(1, 0, slow.shape[1]) + h[:, ::2].mean(1, keepdim=True))
        new_slow = slow + 0.1 * rate * (tr.tanh(x @ self.w_slow) - slow)
        return (tr.cat([new_fast, new_slow], dim=1),)


class DropoutInsideCell(nn.RecurrentCell):
    """nn.Dropout inside the step: a fresh mask every step while training (op by op), the identity in
    eval() (compiled)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.lin = nn.Linear(input_size + hidden_size, hidden_size, dtype=dtype, device=device)
        self.drop = nn.Dropout(0.3)

    def step(self, x, state):
        h, = state
        return (tr.tanh(self.lin(self.drop(tr.cat([x, h], 1)))),)


class FreshTensorsCell(nn.RecurrentCell):
    """Tensors made inside the step from the batch size (zeros, ones_like), masked_fill with a fixed
    mask, a state of size 1 beside one of twice the hidden size."""
    state_names = ("h", "wide", "level")

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.wx = _weight(input_size, 2 * hidden_size, dtype=dtype, device=device)
        self.wh = _weight(2 * hidden_size, hidden_size, dtype=dtype, device=device)
        self.first = tr.arange(2 * hidden_size, device=device) == 0

    @property
    def state_sizes(self):
        return (self.hidden_size, 2 * self.hidden_size, 1)

    def step(self, x, state):
        h, wide, level = state
        bias = tr.zeros(x.shape[0], 2 * self.hidden_size, dtype=x.dtype, device=x.device) + 0.05
        wide = tr.tanh(x @ self.wx + bias + wide * 0.5).masked_fill(self.first, 0.0)
        level = level * 0.9 + 0.1 * wide.sum(-1, keepdim=True) / self.hidden_size
        h = tr.tanh(wide @ self.wh) * tr.ones_like(h) + level
        return h, wide, level


class BatchNormRNNCell(nn.RecurrentCell):
    """Recurrent batch normalisation (Cooijmans et al. 2017): both products normalised with the batch's
    own mean and variance, so every row of the step reads every other (with lengths, the rows of
    ended sequences too, as the op-by-op graph computes them)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.wx = _weight(input_size, hidden_size, dtype=dtype, device=device)
        self.wh = _weight(hidden_size, hidden_size, dtype=dtype, device=device)
        self.gamma = nn.Parameter(tr.full((hidden_size,), 0.5, dtype=dtype, device=device))

    @staticmethod
    def normalised(a):
        return (a - a.mean(0, keepdim=True)) / (a.var(0, keepdim=True, unbiased=False) + 1e-3).sqrt()

    def step(self, x, state):
        h, = state
        return (tr.tanh(self.gamma * (self.normalised(x @ self.wx) + self.normalised(h @ self.wh))),)


class RandomUnitsCell(nn.RecurrentCell):
    """Each cell draws its own fixed random set of units that update (the rest keep their state): a
    where() whose condition differs from cell to cell of one type, the same at every step."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size + hidden_size, hidden_size, dtype=dtype, device=device)
        self.updating = tr.rand(hidden_size, device=device) < 0.6

    def step(self, x, state):
        h, = state
        return (tr.where(self.updating, tr.tanh(tr.cat([x, h], 1) @ self.w), h),)


# ----------------------------------------------------------------------------- cells that choose by value
# Their masks are computed from the data (comparisons, signs, where a maximum lies): the compiled step
# computes them as op by op does, ties included (the zero initial state ties abs, minimum and max(dim)).


class AbsCell(nn.RecurrentCell):
    """abs(): its gradient's sign is computed from the data (0 at 0)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        return (tr.tanh(x @ self.w) - 0.5 * h.abs(),)


class MaximumCell(nn.RecurrentCell):
    """maximum(a, b) and minimum(h, 0): which one wins is decided on the data; a tie (h = 0) splits
    the gradient."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        return (tr.maximum(tr.tanh(x @ self.w), h * 0.5) + 0.3 * tr.minimum(h, 0.0),)


class MaxOverFeaturesCell(nn.RecurrentCell):
    """max(dim) -> (values, indices): the values are picked at indices found in the data (the first
    of a tie)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        top, _ = h.max(dim=1, keepdim=True)
        return (tr.tanh(x @ self.w + h - top),)


class NormCell(nn.RecurrentCell):
    """norm() takes its gradient at 0 from a where() on `total == 0`: random values never meet it, the
    zero initial state does."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        return (tr.tanh(x @ self.w + h / (1 + h.norm(dim=1, keepdim=True))),)


class SoftplusCell(nn.RecurrentCell):
    """F.softplus with a low threshold: some inputs above it (x itself), some below."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device, scale=1.0)

    def step(self, x, state):
        h, = state
        return (F.softplus(x @ self.w + h, beta=2.0, threshold=1.0) - 0.5 * h,)


class ClampCell(nn.RecurrentCell):
    """clamp with values on both sides of both bounds."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device, scale=1.0)

    def step(self, x, state):
        h, = state
        return ((x @ self.w + 0.5 * h).clamp(-0.6, 0.4) + 0.1 * h,)


class WhereOnDataCell(nn.RecurrentCell):
    """A user's own where() on a comparison of the state."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        a = tr.tanh(x @ self.w)
        return (tr.where(h > a, a - 0.5 * h, a * h),)


# ----------------------------------------------------------------------------- F's own functions in a step


class GeluUnbindCell(nn.RecurrentCell):
    """An LSTM-like cell written with F.linear, unbind over a (B, 4, H) view, gelu and softplus."""
    state_names = ("h", "c")

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.weight_ih = _weight(4 * hidden_size, input_size, dtype=dtype, device=device)
        self.weight_hh = _weight(4 * hidden_size, hidden_size, dtype=dtype, device=device)
        self.bias = _weight(4 * hidden_size, dtype=dtype, device=device)

    @property
    def state_sizes(self):
        return (self.hidden_size, self.hidden_size)

    def step(self, x, state):
        h, c = state
        gates = F.linear(x, self.weight_ih, self.bias) + F.linear(h, self.weight_hh)
        i, f, g, o = gates.view(x.shape[0], 4, self.hidden_size).unbind(1)
        c = f.sigmoid() * c + F.softplus(i) * F.gelu(g) * 0.5
        return (o.sigmoid() * F.gelu(c, approximate="tanh"), c)


class ActivationsCell(nn.RecurrentCell):
    """One state through elu, silu, leaky_relu, hardtanh, logsigmoid, log1p, expm1 and erf."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.lin = nn.Linear(input_size + hidden_size, 2 * hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        a, b = self.lin(tr.cat([x, h], 1)).chunk(2, 1)
        mixed = F.elu(a, 0.7) + F.silu(b) * 0.3 + F.leaky_relu(a - b, 0.1) + F.logsigmoid(b) * 0.2
        squashed = F.hardtanh(mixed, -0.8, 0.9) + (b * b).log1p() * 0.1 + (a * 0.3).expm1() * 0.2
        return ((squashed * 0.7).erf() * 0.9 + h * 0.1,)


class MoreActivationsCell(nn.RecurrentCell):
    """One state through relu6, selu, celu, mish, softsign, tanhshrink, hardsigmoid, hardswish, sin, cos,
    a PReLU per unit and an RMSNorm."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.lin = nn.Linear(input_size + hidden_size, 2 * hidden_size, dtype=dtype, device=device)
        self.act = nn.PReLU(2 * hidden_size, init=0.2, dtype=dtype, device=device)
        self.norm = nn.RMSNorm(hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        a, b = (self.act(self.lin(tr.cat([x, h], 1))) * 3).chunk(2, 1)
        mixed = F.relu6(a) * 0.1 + F.selu(b) * 0.2 + F.celu(a, 0.5) * 0.1 + F.mish(b) * 0.2 + F.softsign(a)
        squashed = F.tanhshrink(mixed) * 0.1 + F.hardsigmoid(b) + F.hardswish(a - b) * 0.1
        squashed = squashed + (a * 0.5).sin() * 0.1 + tr.cos(b) * 0.1
        return (self.norm(squashed).tanh() * 0.9 + h * 0.1,)


class GluSoftminThresholdCell(nn.RecurrentCell):
    """One state through glu, softmin and threshold."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.lin = nn.Linear(input_size + hidden_size, 2 * hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        z = self.lin(tr.cat([x, h], 1))
        gated = F.glu(z, 1) + F.threshold(z[:, :h.shape[1]], 0.1, -0.2) * 0.3
        return ((gated * 0.5).tanh() * F.softmin(gated, dim=1) * 2 + h * 0.1,)


class CumsumRemainderCell(nn.RecurrentCell):
    """Running sums over the features and a remainder: ops a step can hold without a lowering of their own."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.lin = nn.Linear(input_size + hidden_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        z = self.lin(tr.cat([x, h], 1))
        return ((z.cumsum(1) * 0.3).tanh() + (z % 0.75) * 0.2,)


class StopGradientCell(nn.RecurrentCell):
    """Cuts in the gradient: a gate from h.detach() and a term through .data."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.gate = nn.Linear(input_size + hidden_size, hidden_size, dtype=dtype, device=device)
        self.lin = nn.Linear(input_size + hidden_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        gate = tr.sigmoid(self.gate(tr.cat([x, h.detach()], 1)))
        z = self.lin(tr.cat([x, h], 1))
        return (gate * z.tanh() + (1 - gate) * (h * 0.6 + h.data * 0.3),)


class NoGradCell(nn.RecurrentCell):
    """A scale from the state and a normalised weight, each computed inside a no_grad block: values
    whose gradient stops there (replayed op by op too, for gradients of gradients)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.lin = nn.Linear(input_size + hidden_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        with tr.no_grad():
            scale = h.abs().mean(1, keepdim=True) + 1
            norm = self.lin.weight.norm()
        return (F.linear(tr.cat([x, h], 1), self.lin.weight / norm, self.lin.bias).tanh() / scale,)


class InPlaceCell(nn.RecurrentCell):
    """Units of a copied state cleared by index assignment, then *= and += on the new state and a floor set
    through a mask (a[a < -0.5] = -0.5): in-place changes recorded as ops (IndexPut, Mul, Add, Select), as
    ported PyTorch code writes them."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)
        self.u = _weight(hidden_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        kept = h.clone()
        kept[:, :(self.hidden_size + 1) // 2] = 0
        a = x @ self.w + kept @ self.u  # (not tanh's output: its backward reads it, as torch's)
        a *= 0.9
        a += 0.1 * kept
        a[a < -0.5] = -0.5   # a mask of the step's values, as masked_fill_
        return (a.tanh(),)


class EmptyPartCell(nn.RecurrentCell):
    """A state in a slow and a fast part, the slow one hidden_size // 8 units wide with weights of its own:
    empty at small sizes (zero-width slices, a parameter with no rows, products over no terms)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.slow = hidden_size // 8
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)
        self.u = _weight(hidden_size - self.slow, hidden_size, dtype=dtype, device=device)
        self.from_slow = _weight(self.slow, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        slow, fast = h[:, :self.slow], h[:, self.slow:]
        new = (x @ self.w + fast @ self.u + slow @ self.from_slow).tanh()
        return (tr.cat([0.9 * slow + 0.1 * new[:, :self.slow], new[:, self.slow:]], 1),)


class MasksAndCastsCell(nn.RecurrentCell):
    """Masks combined with ~, &, |, ^, tested with isnan, isinf and isfinite, counted through long(), int(),
    bool() and double(), a sign, and a mask multiplied in as a number: each computed from each step's
    values (a compiled step that took one step's masks as constants would differ)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)
        self.u = _weight(hidden_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        a = x @ self.w + h @ self.u
        up, big = a > 0, a.abs() > 0.5
        keep = (up & ~big) | (up ^ (h > 0))
        holes = tr.where(big, a, float("nan")).isnan() | tr.where(up, a, float("inf")).isinf()
        count = up.long() + big.int() + keep.bool().long() + tr.where(h > 0.2, h, float("inf")).isfinite().long()
        scale = (count.double() * 0.1).to(a.dtype)
        return (tr.where(keep, a.tanh(), 0.5 * h) + scale * a.sign() + 0.05 * holes + up * h * 0.1,)


class BandClampCell(nn.RecurrentCell):
    """The new state kept in a learned band around the old one, clamp(min=h - width, max=h + width): bounds
    that are tensors of the step's values and a parameter, both given gradients as torch gives them."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)
        self.u = _weight(hidden_size, hidden_size, dtype=dtype, device=device)
        self.width = _weight(hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        width = self.width.abs() + 0.1
        target = (x @ self.w + h @ self.u).tanh() * 2
        return (target.clamp(min=h - width, max=h + width),)


TRACEABLE = {cell.__name__: cell for cell in (
    ConcatElmanCell, LinearGRUCell, IndexedGatesLSTMCell, ExpGateCell, TupleReturnCell, TiedWeightCell,
    BufferCell, LayerNormGRUCell, SoftmaxMixCell, ActivationZooCell, SlicedStateCell, FreshTensorsCell,
    BatchNormRNNCell, RandomUnitsCell, AbsCell, MaximumCell, MaxOverFeaturesCell, NormCell, SoftplusCell, ClampCell,
    WhereOnDataCell, GeluUnbindCell, ActivationsCell, MoreActivationsCell, GluSoftminThresholdCell, CumsumRemainderCell,
    StopGradientCell, NoGradCell, InPlaceCell, EmptyPartCell, MasksAndCastsCell, BandClampCell)}


# ----------------------------------------------------------------------------- cells it must refuse


class StateChangedInPlaceCell(nn.RecurrentCell):
    """Its state input changed in place (an op tape cannot tell the value before from the value after)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        h *= 0.5
        return (x @ self.w + h,)


class ViewChangedInPlaceCell(nn.RecurrentCell):
    """A view of a new value changed in place (recorded through its base, which an op tape cannot follow)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        a = x @ self.w + h
        a[:, :1] *= 0.5
        return (a.tanh(),)


class DetachedChangedInPlaceCell(nn.RecurrentCell):
    """A detached copy changed in place: its tensor changes too (the same memory), which an op tape, holding
    the two as two values, cannot follow (before, the compiled pass left the tensor unchanged, silently)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        a = x @ self.w + h
        cut = a.detach()
        cut.clamp_(min=0)
        return ((a + cut).tanh(),)


class BranchingCell(nn.RecurrentCell):
    """Python control flow on a tensor's value."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        a = x @ self.w + h
        if a.mean() > 0:
            return (a.tanh(),)
        return (a.sigmoid(),)


class CountingCell(nn.RecurrentCell):
    """Python state of its own, changed at every step: a step counter it reads, the last state and a list of
    the states seen (traced once, the step would count once per call, not once per step)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)
        self.calls = 0
        self.seen = []

    def step(self, x, state):
        h, = state
        self.calls += 1
        self.last = h
        self.seen.append(h)
        return ((x @ self.w + h * (0.5 if self.calls % 2 else -0.5)).tanh(),)


class AnyUnitOnCell(nn.RecurrentCell):
    """A gate from whether any unit of the state is on: any() computes outside the ops (it has no op), so a
    replay would take one step's answer."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        on = (h > 0).any(1, keepdim=True)
        return ((x @ self.w + h).tanh() * on + (x @ self.w).sigmoid(),)


class AnyUnitOnWhereCell(AnyUnitOnCell):
    """The same gate taken by where(): any()'s answer as a where condition."""

    def step(self, x, state):
        h, = state
        return (tr.where((h > 0).any(1, keepdim=True), (x @ self.w + h).tanh(), (x @ self.w).sigmoid()),)


class ArgmaxGatherCell(nn.RecurrentCell):
    """The state's largest unit, picked by gather with an index from argmax: an index of each step's values."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        a = x @ self.w + h
        return ((a + a.gather(1, a.argmax(1, keepdim=True))).tanh(),)


class MaskedSelectCell(nn.RecurrentCell):
    """A random walk whose far units (|h| > 4, picked by indexing with a mask of the step's values) pull it
    back: no unit is that far in the values a step is traced on, so a replay of one call's mask would
    never pull."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        walk = h + 3 * (x @ self.w)
        return (walk - 0.1 * walk[walk.abs() > 4].sum(),)


class ColumnsFromStepCell(nn.RecurrentCell):
    """A random walk reading the columns of x an index tensor computed from its state picks (x[:, idx])."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        idx = (h[0].abs() > 4).long()
        return (h + 3 * (x @ self.w) + x[:, idx] * 0.5,)


class OneHotFeedbackCell(nn.RecurrentCell):
    """A random walk told by a one-hot of its own state (whether its first unit is far, |h| > 4): the class
    an index of each step's values, which no value the step is traced on reaches."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        walk = h + 3 * (x @ self.w)
        return (walk + F.one_hot((walk[:, 0].abs() > 4).long(), self.hidden_size).to(walk.dtype),)


class StartsFromRestCell(nn.RecurrentCell):
    """A first step told apart by h.allclose(0) (a Python bool from the values, as equal() and `in` give)."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        if h.allclose(tr.zeros_like(h)):
            return ((x @ self.w).sigmoid(),)
        return ((x @ self.w + h).tanh(),)


class PrintingCell(nn.RecurrentCell):
    """Prints its state at every step (debugging): the prints show each step's values, op by op."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = _weight(input_size, hidden_size, dtype=dtype, device=device)

    def step(self, x, state):
        h, = state
        print("h =", h)
        return ((x @ self.w + h).tanh(),)


REFUSED = {cell.__name__: cell for cell in (BranchingCell, StateChangedInPlaceCell, ViewChangedInPlaceCell,
                                             DetachedChangedInPlaceCell, CountingCell, AnyUnitOnCell, AnyUnitOnWhereCell,
                                             ArgmaxGatherCell, MaskedSelectCell, ColumnsFromStepCell,
                                             OneHotFeedbackCell, StartsFromRestCell, PrintingCell)}
