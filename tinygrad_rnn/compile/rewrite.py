"""Rewrites of a traced step that change what runs, never what it computes.

- An op that repeats one already recorded (same op, inputs and options; the VJP of c * c makes
  g * c twice) is computed once.
- A broadcast read only by elementwise ops is left to them (they broadcast into their output).
- A view that changes nothing (a reshape or broadcast to the same shape, the identity permutation:
  Matmul's VJP reshapes every gradient so) becomes its input, and so does a detach (StopGradient:
  the traced VJP stops there already).
- A sum of scatters into disjoint parts of one zero array, the VJP of splitting a tensor into
  chunks (LSTM's gates: four IndexAdds and three Adds of (B, 4H) arrays per step), becomes one
  `Assemble` that writes each piece into its part; the planner lets each piece's op write there
  directly.
- The same elementwise op on adjacent slices of the same arrays (LSTM's i and f sigmoids on two
  neighbouring chunks of the gates, GRU's r and z sums and sigmoids), and of the same one-element
  value (the 1 of a sigmoid's 1 / (1 + exp(-z))), runs once on the joined slice; each former result
  becomes a view of the joined one. Ops that cannot fail on any finite input join across a gap of
  columns fewer than those they use (LSTM's i, f and o around g): the gap is computed for nothing,
  one call instead of two.
"""
import numpy as np

from ..ops import (
    Add,
    Cast,
    Clip,
    Div,
    Exp,
    Expand,
    Getitem,
    IndexAdd,
    Log,
    Mul,
    Neg,
    Permute,
    Pow,
    Relu,
    Reshape,
    Sigmoid,
    StopGradient,
    Sub,
    Tanh,
    Where,
    _is_basic_index,
)
from ..tensor import Function
from .simplify import simplify
from .trace import Op, PositiveMask, Value, ancestors, freeze


class Assemble(Function):
    """zeros(shape) with each piece written at its index (the indexes are disjoint)."""

    def forward(self, *pieces, indexes, shape, covered):
        out = np.zeros(shape, pieces[0].dtype)
        for piece, index in zip(pieces, indexes):
            out[index] = piece
        return out

    def backward(self, g):
        raise NotImplementedError("Assemble exists only inside compiled programs")


def _is_noop_view(op):
    if op.cls is StopGradient:   # its gradient's cut is in the traced VJP already
        return True
    if op.cls in (Reshape, Expand):
        return op.out.shape == op.inputs[0].shape
    return op.cls is Permute and tuple(op.options["axes"]) == tuple(range(len(op.out.shape)))


def _key(op):
    """Ops with equal keys compute the same value (the inputs of a sum or product in either order)."""
    ids = tuple(v.id for v in op.inputs)
    if op.cls in (Add, Mul):
        ids = tuple(sorted(ids))
    return op.cls, ids, freeze(op.options)


def use_counts(ops, extra_roots):
    """{value id: how many inputs of `ops`, and roots among `extra_roots`, it is}."""
    count = {}
    for op in ops:
        for v in op.inputs:
            count[v.id] = count.get(v.id, 0) + 1
    for v in extra_roots:
        if v is not None:
            count[v.id] = count.get(v.id, 0) + 1
    return count


def _scatter_pieces(value, uses, shape):
    """[(index, piece)] if `value` is a sum of single-use scatters into `shape`, else None."""
    op = value.op
    if op is None or op.out.shape != shape:
        return None
    if op.cls is IndexAdd and _is_basic_index(op.options["index"]):
        return [(op.options["index"], op.inputs[0])]
    if op.cls is Add and len({v.id for v in op.inputs}) == 2 and all(  # inner sums read once; a scatter may be shared
            v.shape == shape and (uses.get(v.id) == 1 or (v.op is not None and v.op.cls is IndexAdd))
            for v in op.inputs):
        parts = [_scatter_pieces(v, uses, shape) for v in op.inputs]
        if None not in parts:
            return parts[0] + parts[1]
    return None


def _coverage(pieces, shape):
    covered = np.zeros(shape, np.int8)
    for index, _ in pieces:
        covered[index] += 1
    return covered


def _disjoint(pieces, shape):
    return _coverage(pieces, shape).max() <= 1


def _covers(pieces, shape):
    return bool(_coverage(pieces, shape).min() >= 1)


def rewrite(graph, bgraph, per_time_ids):
    """Rewrite the forward ops that are per-time (`per_time_ids`: their output ids) and the VJP ops
    in place: graph.ops, graph.outputs, bgraph.ops and bgraph.grads."""
    alias = {}

    def resolve(v):
        while v is not None and v.id in alias:
            v = alias[v.id]
        return v

    seen = {}
    for ops, local in ((graph.ops, True), (bgraph.ops, False)):
        for op in ops:
            op.inputs = tuple(resolve(v) for v in op.inputs)
            if local and op.out.id not in per_time_ids:
                continue
            if _is_noop_view(op):
                alias[op.out.id] = op.inputs[0]
                continue
            key = _key(op)
            if key in seen:
                alias[op.out.id] = seen[key]
            else:
                seen[key] = op.out
    graph.outputs = [resolve(v) for v in graph.outputs]
    bgraph.grads = {k: resolve(v) for k, v in bgraph.grads.items()}
    graph.ops = [op for op in graph.ops if op.out.id not in alias]
    bgraph.ops = [op for op in bgraph.ops if op.out.id not in alias]
    while _merge_siblings(graph, graph, per_time_ids):
        pass
    while _merge_siblings(graph, bgraph, {op.out.id for op in bgraph.ops}):   # 1 - t*t of each gate: once
        pass

    _drop_broadcasts(graph, bgraph, per_time_ids)
    uses = use_counts(bgraph.ops, list(bgraph.grads.values()))
    assembled = set()
    for op in reversed(bgraph.ops):
        if op.cls is not Add or op.out.id in assembled:
            continue
        pieces = _scatter_pieces(op.out, uses, op.out.shape)
        if pieces is None or len(pieces) < 2 or not _disjoint(pieces, op.out.shape):
            continue
        indexes = tuple(index for index, _ in pieces)
        options = {"indexes": indexes, "shape": op.out.shape, "covered": _covers(pieces, op.out.shape)}
        op.out.op = Op(Assemble, [piece for _, piece in pieces], options, op.out)
        assembled.add(op.out.id)
    kept = []
    for op in bgraph.ops:
        if op.out.id in assembled:
            kept.append(op.out.op)
        else:
            kept.append(op)
    bgraph.ops = _live(kept, list(bgraph.grads.values()))
    simplify(graph, bgraph, per_time_ids)
    while _merge_siblings(graph, bgraph, {op.out.id for op in bgraph.ops}):   # products simplify reordered
        pass


# ops that broadcast their inputs to the output they write (`out=`), so an input needs no expand
ELEMENTWISE = (Add, Sub, Mul, Div, Pow, Neg, Exp, Log, Tanh, Sigmoid, Relu, Clip, Where, Cast, PositiveMask)


def _drop_broadcasts(graph, bgraph, per_time_ids):
    """An expand read only by elementwise ops becomes its input: they broadcast it themselves
    (np.broadcast_to costs more than a small ufunc)."""
    ops = [op for op in graph.ops if op.out.id in per_time_ids] + bgraph.ops
    readers = {}
    for op in ops:
        for v in op.inputs:
            readers.setdefault(v.id, []).append(op)
    roots = {v.id for v in graph.outputs} | {v.id for v in bgraph.grads.values() if v is not None}
    alias = {}
    for op in ops:
        if op.cls is Expand and op.out.id not in roots and op.out.id in readers and all(
                reader.cls in ELEMENTWISE for reader in readers[op.out.id]):
            alias[op.out.id] = op.inputs[0]
    if not alias:
        return
    for op in graph.ops + bgraph.ops:
        op.inputs = tuple(alias.get(v.id, v) for v in op.inputs)
    graph.ops = [op for op in graph.ops if op.out.id not in alias]
    bgraph.ops = [op for op in bgraph.ops if op.out.id not in alias]


def _live(ops, roots):
    """The ops some root depends on, in order (the scatters an Assemble replaced drop out)."""
    live = ancestors(roots, {op.out.id: op for op in ops})
    return [op for op in ops if op.out.id in live]


# ----------------------------------------------------------------------------- siblings

SIBLINGS = (Add, Sub, Mul, Div, Neg, Exp, Log, Tanh, Sigmoid, Relu)   # elementwise, no options
GAP_SAFE = (Add, Sub, Mul, Neg, Tanh, Relu)   # no warning on any finite input: they may run on columns between


def _slice_of(value):
    """(base, axis, start, stop) if value is a view of one contiguous range along one axis of base."""
    op = value.op
    if op is None or op.cls is not Getitem:
        return None
    index = op.options["index"]
    index = index if isinstance(index, tuple) else (index,)
    base = op.inputs[0]
    if len(index) > len(base.shape) or not all(isinstance(i, slice) for i in index):
        return None
    cut = [k for k, i in enumerate(index) if i != slice(None)]
    if len(cut) != 1:
        return None
    axis = cut[0]
    start, stop, step = index[axis].indices(base.shape[axis])
    return (base, axis, start, stop) if step == 1 and stop > start else None


def _view(graph, base, axis, start, stop, out=None):
    """base[..., start:stop, ...] along axis, as a new Getitem (or as the op making `out`)."""
    index = (slice(None),) * axis + (slice(start, stop),)
    if out is None:
        shape = base.shape[:axis] + (stop - start,) + base.shape[axis + 1:]
        out = Value(len(graph.values), shape, base.dtype, "op")
        graph.values.append(out)
    out.op = Op(Getitem, [base], {"index": index}, out)
    return out.op


def _shared(value):
    """A value of one element (the 1 in 1 + exp(-z)): the same for every slice, so a sibling may read it."""
    return int(np.prod(value.shape, dtype=np.int64)) == 1


def _runs(cls, by_start):
    """[(start, ops)]: sibling ops (by_start: {start: (op, stop, bases)}) run as one, in order of their
    slices: adjacent ones, and across a gap where the op cannot fail on the columns between (they are
    computed for nothing) and those are fewer than the columns used (LSTM's i, f and o beside g)."""
    found, run, start, used = [], [], None, 0
    for first in sorted(by_start):
        width = by_start[first][1] - first
        gap = first - run[-1][1] if run else None
        if run and (gap == 0 or (gap is not None and gap > 0 and cls in GAP_SAFE and gap <= used + width)):
            run.append(by_start[first])
            used += width
            continue
        if len(run) >= 2:
            found.append((start, run))
        run, start, used = [by_start[first]], first, width
    if len(run) >= 2:
        found.append((start, run))
    return found


def _merge_siblings(graph, step, ids):
    """One round of joining sibling ops on adjacent slices (see the module's docstring) among the ops of
    `step` (the forward graph or the VJP's) whose outputs are in `ids`; True if any."""
    runs = {}
    for op in step.ops:
        if op.cls not in SIBLINGS or op.options or op.out.id not in ids:
            continue
        slices = [_slice_of(v) for v in op.inputs]
        cut = {(s[1], s[2], s[3]) for s in slices if s is not None}
        if len(cut) != 1 or any(
                v.dtype != op.out.dtype or (v.shape != op.out.shape if s else not _shared(v))
                for v, s in zip(op.inputs, slices)):
            continue
        axis, start, stop = cut.pop()
        bases = [s[0] if s else v for v, s in zip(op.inputs, slices)]
        key = (op.cls, axis, tuple((s is None, b.id) for b, s in zip(bases, slices)))
        runs.setdefault(key, {})[start] = (op, stop, [(b, s is not None) for b, s in zip(bases, slices)])
    made = {}   # id of a run's earliest op -> the joined op and its views, placed before it
    position = {op: k for k, op in enumerate(step.ops)}
    for (cls, axis, _), by_start in runs.items():
        for start, run in _runs(cls, by_start):
            stop = run[-1][1]
            first, _, bases = run[0]
            whole = (start, stop) == (0, next(base for base, sliced in bases if sliced).shape[axis])
            views = [] if whole else [_view(graph, base, axis, start, stop) for base, sliced in bases if sliced]
            inputs = iter(view.out for view in views)
            shape = first.out.shape[:axis] + (stop - start,) + first.out.shape[axis + 1:]
            joined = Value(len(graph.values), shape, first.out.dtype, "op")
            graph.values.append(joined)
            joined.op = Op(cls, [(base if whole else next(inputs)) if sliced else base for base, sliced in bases], {},
                           joined)
            ids.update(v.out.id for v in views)
            ids.add(joined.id)
            made[min((op for op, _, _ in run), key=position.get).out.id] = views + [joined.op]   # before all
            for op, op_stop, _ in run:
                op_start = op_stop - op.out.shape[axis]
                _view(graph, joined, axis, op_start - start, op_stop - start, out=op.out)
    if not made:
        return False
    ops = []
    for op in step.ops:
        ops.extend(made.get(op.out.id, []))
        ops.append(op.out.op if op.out.op is not op else op)
    step.ops = ops
    return True
