"""Fold: algebra on the forward step, done after its VJP is traced: the backward stays the VJP of the
step as the cell wrote it, and every forward value it reads is computed with the same numbers.

- A per-step sum with a term that does not depend on the state adds that term before the loop:
  `p + (l + s)` -> `(p + s) + l` for p input-only, s static (computed for all steps at once), and
  where p is `q + s1`, `(q + (s1 + s)) + l` (LSTM's two biases summed once per pass, added to the
  input projection as one was): one call fewer per step.
- `sigmoid(z) = 1 / (1 + exp(-z))`. The negation is pushed back through the linear ops that make
  z, as a scale per column (the last axis): through sums, differences and negations, products (with
  a static where there is one), a product with a static weight (its columns scaled), a slice of a
  wider value (those columns of it), and a view or a sum over rows where the scale is one number.
  It lands on statics (a product of the pass's statics computed once per pass: the sigmoid gates'
  columns of W.T negated, `ForwardPlan.fold_ops`) or on input-only work (scaled once for all steps).
  A value read by a sigmoid and by other ops keeps one scale per column where their columns do not
  overlap (LSTM's i, f, o beside g); otherwise the scaled form is a copy. The exp of neighbouring
  gates then run as one call (rewrite.py's siblings), and a sigmoid costs an exp, a sum and a
  quotient instead of its four calls. Sigmoids are taken where the calls per step go down (all of
  them, then each left out where that costs no more): a negation that lands on a per-step value
  (sigmoid(h * h)) costs a product there each step, so such a sigmoid stays unless that product
  serves several.

The scale is -1: every scaled value is exact, and the forward computes the numbers the op-by-op
step computes (sigmoid's own forward is this form). A value the VJP reads (a quotient's output, a
tanh's) keeps its own numbers: a negation asked of it is a copy.
"""
import numpy as np

from .. import backend
from ..ops import (
    Add,
    Div,
    Exp,
    Expand,
    Getitem,
    Matmul,
    Mean,
    Mul,
    Neg,
    Permute,
    Reshape,
    Sigmoid,
    Sub,
    Sum,
    _is_basic_index,
)
from ..tensor import Tensor
from .plan import LOOP, PRE, STATIC, ForwardPlan
from .trace import Op, Value, ancestors

SIGMOID_CALLS = 4     # sigmoid lowered on its own: negate, exp, add one, divide one by it
EXP_FORM_CALLS = 3    # exp, add one, divide one by it (the exp joins its neighbours' where it can)
UNIFORM_ONLY = (Reshape, Permute, Expand, Sum, Mean)   # linear: a scale common to all columns passes


def fold(graph, read_by_vjp):
    """Rewrite graph's forward ops in place (see the module's docstring). read_by_vjp: the ids of the
    forward values the traced VJP reads, which must be computed as they were. Records on graph
    `folded` (ids of the static products computed once per pass) and `embedded` (ids of the
    constants the rewrite made)."""
    graph.folded, graph.embedded = set(), set()
    _hoist_terms(graph, ForwardPlan(graph), read_by_vjp)
    _exp_form(graph, ForwardPlan(graph), read_by_vjp)


# ----------------------------------------------------------------------------- values


def _new_value(graph, shape, dtype, kind="op"):
    v = Value(len(graph.values), shape, dtype, kind)
    graph.values.append(v)
    return v


def constant(graph, array, like):
    """A constant the rewrite made: embedded in the generated code, never a pass input."""
    array = backend.to_device(np.asarray(array, like.dtype), backend.device_of(graph.tensors[graph.x.id].array))
    v = _new_value(graph, array.shape, array.dtype, "const")
    graph.tensors[v.id] = Tensor._make(array, None)
    graph.embedded.add(v.id)
    return v


def _op(graph, cls, inputs):
    """An elementwise op's new value."""
    out = _new_value(graph, np.broadcast_shapes(*(v.shape for v in inputs)), inputs[0].dtype)
    out.op = Op(cls, inputs, {}, out)
    return out


# ----------------------------------------------------------------------------- hoisting static terms


def _hoist_terms(graph, plan, read_by_vjp):
    """p + (l + s) -> (p + s) + l: see the module's docstring."""
    uses = {}
    for op in graph.ops:
        for v in op.inputs:
            uses[v.id] = uses.get(v.id, 0) + 1
    for v in graph.outputs:
        uses[v.id] = uses.get(v.id, 0) + 1
    for v in read_by_vjp:   # the VJP reads it: it stays
        uses[v] = uses.get(v, 0) + 1
    klass = plan.klass
    ops = []
    for op in graph.ops:
        found = _hoistable(op, klass, uses) if op in plan.loop_ops else None
        if found is None:
            ops.append(op)
            continue
        p, l, s = found
        inner = p.op
        if klass[s.id] == STATIC and uses.get(p.id) == 1 and inner is not None and inner.cls is Add and \
                klass[inner.inputs[1].id] == STATIC and \
                np.broadcast_shapes(*(v.shape for v in inner.inputs + (s,))) == p.shape:
            # p = q + s1: (q + (s1 + s)) + l, the statics' sum once per pass
            statics = _op(graph, Add, [inner.inputs[1], s])
            graph.folded.add(statics.id)
            early = _op(graph, Add, [inner.inputs[0], statics])
            ops += [statics.op]
        else:
            early = _op(graph, Add, [p, s])
        op.out.op = Op(Add, [early, l], {}, op.out)
        ops += [early.op, op.out.op]
    graph.ops = ops


def _hoistable(op, klass, uses):
    """(p, l, s) when op is p + (l + s) in either order, p input-only of op's shape, l per-step and s
    static or input-only, the inner sum read once."""
    if op.cls is not Add:
        return None
    for p, inner in (op.inputs, op.inputs[::-1]):
        if klass[p.id] != PRE or p.shape != op.out.shape or inner.op is None or inner.op.cls is not Add \
                or uses.get(inner.id) != 1 or klass[inner.id] != LOOP:
            continue
        for l, s in (inner.op.inputs, inner.op.inputs[::-1]):
            if klass[l.id] == LOOP and klass[s.id] in (STATIC, PRE) and \
                    np.broadcast_shapes(p.shape, s.shape) == p.shape:
                return p, l, s
    return None


# ----------------------------------------------------------------------------- scales per column


def _columns(v):
    return v.shape[-1] if v.shape else 1


def _full(v, scale):
    return np.full(_columns(v), scale, np.float64)


def _uniform(scale):
    return scale.min() == scale.max()


def _filled(demand):
    """The scale a value is computed with, from what its readers ask of each column (nan: nobody
    reads it); None for no scale."""
    read = demand[~np.isnan(demand)]
    if read.size == 0:
        return None
    free = read[0] if (read == read[0]).all() else 1.0   # a common scale lets a (B, 1) operand carry it
    scale = np.where(np.isnan(demand), free, demand)
    return None if (scale == 1).all() else scale


def _merge(demands, n):
    """Readers' demands on one value joined column by column; None where two ask differently."""
    merged = np.full(n, np.nan)
    for d in demands:
        both = ~np.isnan(merged) & ~np.isnan(d)
        if (merged[both] != d[both]).any():
            return None
        merged = np.where(np.isnan(merged), d, merged)
    return merged


def _last_axis_slice(op):
    """The slice of the input's last axis a basic index keeps as the output's last axis, or None."""
    index = op.options["index"]
    items = index if isinstance(index, tuple) else (index,)
    x = op.inputs[0]
    if not _is_basic_index(index) or not x.shape or any(i is None or i is Ellipsis for i in items) \
            or len(items) > len(x.shape):
        return None
    last = items[-1] if len(items) == len(x.shape) else slice(None)
    return last if isinstance(last, slice) else None


def _carrier(op, scale, klass):
    """Which input of a product takes the scale: a static, else input-only work, else the first; None
    where none can (a (B, 1) operand and columns scaled differently)."""
    def fits(v):
        return _columns(v) == _columns(op.out) or (_columns(v) == 1 and _uniform(scale))
    order = sorted(range(len(op.inputs)), key=lambda k: {STATIC: 0, PRE: 1}.get(klass[op.inputs[k].id], 2))
    return next((k for k in order if fits(op.inputs[k])), None)


def _passes(op, scale, klass):
    """What op asks of each input for its output to come out scaled by `scale` (over its columns):
    a demand per input (nan: a column it does not read), or None where it cannot carry the scale."""
    ins = op.inputs
    if op.cls is Getitem:
        cut = _last_axis_slice(op)
        if cut is None:
            return [_full(ins[0], scale[0])] if _uniform(scale) else None
        demand = _full(ins[0], np.nan)
        demand[cut] = scale
        return [demand]
    if (scale == 1).all():
        return [_full(v, 1.0) for v in ins]
    if op.cls in (Add, Sub):
        if all(_columns(v) == _columns(op.out) for v in ins):
            return [scale for _ in ins]
        return [_full(v, scale[0]) for v in ins] if _uniform(scale) else None
    if op.cls is Neg:
        return [scale]
    if op.cls is Mul:   # (a quotient's VJP reads the quotient: it keeps its numbers, see fold's docstring)
        k = _carrier(op, scale, klass)
        if k is None:
            return None
        return [(scale if _columns(v) == len(scale) else _full(v, scale[0])) if j == k else _full(v, 1.0)
                for j, v in enumerate(ins)]
    if op.cls is Matmul:
        a, w = ins
        if klass[w.id] == STATIC and len(w.shape) >= 2:
            return [_full(a, 1.0), scale]
        return [_full(a, scale[0]), _full(w, 1.0)] if _uniform(scale) else None
    if op.cls in UNIFORM_ONLY and len(ins) == 1 and _uniform(scale):
        return [_full(ins[0], scale[0])]
    return None


class _Scales:
    """For a set of sigmoids in the exp form: the scale each per-step value is computed with, what
    each op asks of its inputs, and the per-step products (copies) that cost a call each step."""

    def __init__(self, graph, plan, taken, read_by_vjp):
        self.klass = plan.klass
        self.scaled = {}    # value id -> the scale it is computed with (its op rewritten)
        self.asks = {}      # id(op) -> its demands on its inputs
        demands = {v.id: [_full(v, 1.0)] for v in graph.outputs}
        for v in graph.values:
            if v.id in read_by_vjp:
                demands.setdefault(v.id, []).append(_full(v, 1.0))
        for op in reversed(plan.per_time_ops):
            v = op.out
            merged = _merge(demands.get(v.id, []), _columns(v))
            scale = None if merged is None else _filled(merged)
            asks = None
            if op in taken:
                asks = [_full(op.inputs[0], -1.0)]
            elif scale is not None:
                asks = _passes(op, scale, self.klass)
                if asks is not None:
                    self.scaled[v.id] = scale
            if asks is None:   # read as computed; readers wanting it scaled read a copy
                asks = _passes(op, _full(v, 1.0), self.klass)
            self.asks[id(op)] = asks
            for x, d in zip(op.inputs, asks):
                demands.setdefault(x.id, []).append(d)
        copies = set()
        for vid, wanted in demands.items():
            if self.klass.get(vid) == LOOP and vid not in self.scaled:
                copies.update((vid, s.tobytes()) for s in map(_filled, wanted) if s is not None)
        self.copies = len(copies)

    def calls(self, candidates, taken):
        return EXP_FORM_CALLS * len(taken) + SIGMOID_CALLS * (len(candidates) - len(taken)) + self.copies


def _exp_form(graph, plan, read_by_vjp):
    """Sigmoids as 1 / (1 + exp(-z)) with the negation folded back: see the module's docstring."""
    candidates = [op for op in plan.loop_ops if op.cls is Sigmoid]
    if not candidates:
        return
    # all at once (a copy may serve several), then each left out where that costs no more calls
    taken = list(candidates)
    scales = _Scales(graph, plan, taken, read_by_vjp)
    for op in candidates:
        fewer = [t for t in taken if t is not op]
        trial = _Scales(graph, plan, fewer, read_by_vjp)
        if trial.calls(candidates, fewer) <= scales.calls(candidates, taken):
            taken, scales = fewer, trial
    if taken:
        _rebuild(graph, plan, scales, taken)


def _rebuild(graph, plan, scales, taken):
    per_time = {id(op) for op in plan.per_time_ops}
    made = {}      # value id -> its scaled form (a new value)
    copies = {}    # (value id, scale) -> a product made for readers wanting it scaled
    ops, one = [], None

    def read(v, demand):
        if v.id in made:
            return made[v.id]
        scale = _filled(demand)
        if scale is None:
            return v
        key = (v.id, scale.tobytes())
        if key not in copies:
            factor = scale[0] if _uniform(scale) or not v.shape else scale
            copy = _op(graph, Mul, [v, constant(graph, factor, v)])
            if plan.klass[v.id] == STATIC:
                graph.folded.add(copy.id)
            ops.append(copy.op)
            copies[key] = copy
        return copies[key]

    for op in graph.ops:
        if id(op) not in per_time:
            ops.append(op)
            continue
        v = op.out
        inputs = [read(x, d) for x, d in zip(op.inputs, scales.asks[id(op)])]
        if op in taken:   # v = 1 / (1 + exp(-z)), -z read as the input: the VJP, traced already, reads v alone
            one = one or constant(graph, 1.0, v)
            exp = _op(graph, Exp, inputs)
            denominator = _op(graph, Add, [exp, one])
            v.op = Op(Div, [one, denominator], {}, v)
            ops += [exp.op, denominator.op, v.op]
        elif v.id in scales.scaled:
            scaled = _new_value(graph, v.shape, v.dtype)
            scaled.op = Op(op.cls, inputs, op.options, scaled)
            made[v.id] = scaled
            ops.append(scaled.op)
        else:
            if any(a is not b for a, b in zip(inputs, op.inputs)):
                v.op = Op(op.cls, inputs, op.options, v)
            ops.append(v.op)
    live = ancestors(graph.outputs, {op.out.id: op for op in ops})   # the ops the rewritten ones replace go
    graph.ops = [op for op in ops if op.out.id in live]
