"""Trace: run a cell's step once and record the primitives it applies, then the VJPs of that step.

A step `(x_t, state) -> state` is run on tensors of the step's shapes while every `Function.apply`
is written to a tape: the op class, its input tensors, its options (the keyword arguments of apply)
and its output. The tape becomes a `StepGraph` of `Value`s and `Op`s. Values that no op on the tape
made are the step's inputs (x, the states) or leaves: tensors that require grad ("param", bound to
whatever tensor the step used, a parameter or a tensor from outside) and tensors that do not
("const", captured per call). Nothing here knows any cell.

The backward step is traced the same way: walking the recorded step back, each op's own VJP
(`node.backward(g)`, written with Tensor ops in ops.py) runs on the tape, so the VJP graph is a
graph of the same primitives, over the forward values it reads, the incoming state gradients
("seed") and constants. The few VJPs that read raw arrays (relu, clip, max) are written here with
the mask ops below instead.

A mask the step computes from its values (a comparison, a sign, where a maximum lies: the no-gradient
ops of ops.py, `Piecewise`) is a value like any other. Where takes its condition as a raw array, not
as an input; where that array is one such value's, the op is recorded as a `Select` reading it, so
the compiled step computes its masks from the data as op by op does (abs, maximum, max(dim),
softplus, norm, a user's where(h > 0, ...)).
"""
import contextlib
import linecache
import os
import sys

import numpy as np

from .. import backend, factory
from ..ops import (
    Clip,
    Max,
    Piecewise,
    Relu,
    StopGradient,
    Where,
    _reduced_shape,
    inside_mask,
    max_weights,
    unbroadcast,
)
from ..tensor import (
    ChangedInPlace,
    Function,
    IndexFromValues,
    Tensor,
    enable_grad,
    is_grad_enabled,
    no_grad,
    op_tape,
)
from ..tensor import DataDependent as ValueRead


class NotTraceable(Exception):
    """The step cannot be compiled; `reason` says why, `op` names the op when one is to blame and
    `where` the line of the step it came from ("cells.py:42: return (h.abs(),)") when known."""

    def __init__(self, reason, op=None, where=None):
        super().__init__(reason)
        self.reason, self.op, self.where = reason, op, where


class DataDependent(NotTraceable):
    """The step read a tensor's value into Python (item(), bool(), numpy()) while being traced."""


class Value:
    """One value of a step: an input, a leaf or the output of an op. `shape` is the step's shape."""
    __slots__ = ("array", "dtype", "id", "index", "kind", "op", "shape")

    def __init__(self, id, shape, dtype, kind, index=None):
        self.id, self.shape, self.dtype, self.kind, self.index = id, tuple(shape), np.dtype(dtype), kind, index
        self.op = self.array = None

    def __repr__(self):
        return f"<{self.kind}{'' if self.index is None else self.index} v{self.id} {self.shape}>"


class Op:
    __slots__ = ("cls", "inputs", "options", "out")

    def __init__(self, cls, inputs, options, out):
        self.cls, self.inputs, self.options, self.out = cls, tuple(inputs), options, out

    @property
    def name(self):
        return _op_name(self.cls)

    def __repr__(self):
        return f"v{self.out.id} = {self.name}({', '.join(f'v{v.id}' for v in self.inputs)})"


def _op_name(cls):
    op = cls.__dict__.get("op")
    return op if isinstance(op, str) else cls.__name__.lower()


# ----------------------------------------------------------------------------- mask ops for VJPs
# Relu, Clip and Max compute their VJP's mask from raw arrays in forward; these ops compute the
# same masks as recorded values, so the compiled backward recomputes them from the forward values.


class PositiveMask(Function):
    """1 where x > 0, else 0, in x's dtype (relu's VJP mask); piecewise constant: no gradient."""
    saves = ()

    def forward(self, x):
        return (x > 0).astype(x.dtype)

    def backward(self, g):
        return (None,)


class InsideMask(Function):
    """1 where low <= x <= high, or low < x < high if strict (clip's VJP mask)."""
    saves = ()

    def forward(self, x, low, high, strict=False):
        return inside_mask(x, low, high, strict)

    def backward(self, g):
        return (None,)


class MaxWeights(Function):
    """Where x equals its maximum over `axis`, 1 / (how many do), else 0 (max's VJP weights)."""
    saves = ()

    def forward(self, x, axis, nan_shares=False):
        return max_weights(x, x.max(axis=axis, keepdims=True), axis, nan_shares)

    def backward(self, g):
        return (None,)


class Select(Function):
    """where(condition, x, y) with the condition a value of the step: Where with its mask as an input
    (no gradient) instead of a captured array."""
    op = "where"
    saves = ()

    def forward(self, condition, x, y):
        self.condition = condition
        return backend.xp_of(x).where(condition, x, y)

    def backward(self, g):
        zero = Tensor._make(g.xp.zeros((), dtype=g.dtype), None)
        return (None, Where.apply(g, zero, condition=self.condition) if self.needs[1] else None,
                Where.apply(zero, g, condition=self.condition) if self.needs[2] else None)

    def jvp(self, inputs, tangents):
        return Where.jvp(self, inputs[1:], tangents[1:])


def _relu_vjp(node, g):
    return (g * PositiveMask.apply(node.output(node.out)),)


def _clip_vjp(node, g):
    return (g * InsideMask.apply(node.traced_input, low=node.low, high=node.high, strict=node.strict),)


def _max_vjp(node, g):
    weights = MaxWeights.apply(node.traced_input, axis=node.axis, nan_shares=node.nan_shares)
    return (g.reshape(_reduced_shape(weights.shape, node.axis)) * weights,)


# ops whose forward keeps raw arrays for backward need what those arrays came from: recorded at
# trace time by `_remember_inputs` (clip's bounds and input, max's input)
VJP_RULES = {Relu: _relu_vjp, Clip: _clip_vjp, Max: _max_vjp}


def _remember_inputs(cls, node, inputs, options):
    node.traced_input = inputs[0]
    if cls is Clip:
        node.low, node.high, node.strict = options.get("low"), options.get("high"), options.get("strict", False)


# ----------------------------------------------------------------------------- the tape


_ENGINE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _in_engine(frame):
    return frame.f_code.co_filename.startswith(_ENGINE)


def describe_line(location):
    """'file.py:12: the code' for a (filename, line number), or None."""
    if location is None:
        return None
    filename, lineno = location
    code = linecache.getline(filename, lineno).strip()
    return f"{os.path.basename(filename)}:{lineno}" + (f": {code}" if code else "")


def _step_line(frames):
    """(filename, line) of the innermost frame outside the engine among `frames` (innermost last)."""
    for frame in reversed(frames):
        if not _in_engine(frame):
            return frame.f_code.co_filename, frame.f_lineno
    return None


@contextlib.contextmanager
def recording(lines=None, grad_on=None):
    """Every op applied inside is appended to the yielded OpTape's ops, (cls, inputs, options, output)
    each (other threads are left alone); its `outside` holds the values computed without an op. Reading a tensor's value into Python
    (item(), bool(), numpy(), np.asarray) raises DataDependent: a compiled step cannot follow a branch
    taken on data.

    lines: a list that gets, for each op on the tape, the line of the step it was applied from (the
    innermost frame outside the engine, below this call), for messages that point at the cell's code;
    grad_on, whether gradients were on when it was applied."""
    outer = sys._getframe(2)   # the caller of this context manager (contextlib's frame in between)
    try:
        with op_tape(reads=False) as tape:
            if lines is not None:
                apply = tape.apply

                def apply_and_locate(cls, inputs, options):
                    line, frame = None, sys._getframe(1)
                    while frame is not None and frame is not outer:
                        if not _in_engine(frame):
                            line = frame.f_code.co_filename, frame.f_lineno
                            break
                        frame = frame.f_back
                    if grad_on is not None:
                        grad_on.append(is_grad_enabled())
                    out = apply(cls, inputs, options)
                    lines.append(line)
                    return out
                tape.apply = apply_and_locate
            yield tape
    except IndexFromValues as index:
        raise NotTraceable(f"{index.what} takes an index or mask computed from the step's values, which a "
                           f"replay would take from one call", where=_raised_at(index)) from None
    except ValueRead as read:
        raise DataDependent(f"its step reads a tensor's value into Python ({read.what}()), so what it "
                            f"computes may depend on the data", where=_raised_at(read)) from None
    except ChangedInPlace as changed:
        raise NotTraceable(f"its step makes {changed}", where=_raised_at(changed)) from None


def _raised_at(error):
    """The line of the step an error raised while tracing came from."""
    frames, tb = [], error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return describe_line(_step_line(frames))


@contextlib.contextmanager
def own_random_stream(seed):
    """Random numbers drawn inside come from a stream of their own: tracing never moves the
    caller's, and two traces with different seeds draw different masks (which then tell)."""
    kept = factory._rng
    factory._rng = np.random.default_rng(seed)
    try:
        yield
    finally:
        factory._rng = kept


_CONTAINERS = (list, dict, set)


def _attributes(cell):
    """What each module of `cell` holds in its attributes: the objects themselves and, of a list, dict
    or set (registries, hooks, a user's history list), what it holds."""
    kept = []
    for module in cell.modules() if hasattr(cell, "modules") else [cell]:
        attributes = dict(getattr(module, "__dict__", {}))
        contents = {name: value.copy() for name, value in attributes.items() if type(value) in _CONTAINERS}
        kept.append((module, attributes, contents))
    return kept


def _same_contents(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(a[k] is b[k] for k in a)
    if isinstance(a, set):
        return a == b
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def _restore_attributes(kept):
    """Put every attribute back as `_attributes` found it; returns 'Module.name' of those that had changed."""
    changed = []
    for module, attributes, contents in kept:
        now = getattr(module, "__dict__", {})
        names = [name for name in now.keys() | attributes.keys()
                 if now.get(name, _MISSING) is not attributes.get(name, _MISSING)
                 or (name in contents and not _same_contents(contents[name], now[name]))]
        for name in sorted(names):
            changed.append(f"{type(module).__name__}.{name}")
            if name in contents:   # the container itself, as it held before (others may hold it too)
                container = attributes[name]
                container.clear()
                if isinstance(container, list):
                    container.extend(contents[name])
                else:
                    container.update(contents[name])
        now.clear()
        now.update(attributes)
    return changed


_MISSING = object()


# ----------------------------------------------------------------------------- graphs


def ancestors(roots, ops_of):
    """Ops (among `ops_of`, by output id) that the roots depend on."""
    live, stack = set(), [v for v in roots if v is not None]
    while stack:
        v = stack.pop()
        if v.id in live or v.id not in ops_of:
            continue
        live.add(v.id)
        stack.extend(ops_of[v.id].inputs)
    return live



class StepGraph:
    """A recorded step: values (inputs, leaves, op outputs), ops in order, and the new states.

    x, states: the input Values; leaves: param/const Values in order of first use, with
    `tensors[value.id]` the tensor each stood for in this trace; outputs: the new state Values.
    """

    def __init__(self):
        self.values, self.ops, self.leaves, self.states, self.outputs = [], [], [], [], []
        self.x = None
        self.tensors = {}          # value id -> the tensor traced (for binding leaves and statics)
        self.lines = {}            # op output id -> (filename, line) of the step that applied it
        self._by_tensor = {}       # id(tensor) -> Value
        self._by_array = {}        # id(array) -> Value (a VJP's fresh handle on a forward array)

    def _new(self, tensor, kind, index=None):
        v = Value(len(self.values), tensor.shape, tensor.dtype, kind, index)
        self.values.append(v)
        self.tensors[v.id] = tensor
        self._by_tensor[id(tensor)] = v
        self._by_array.setdefault(id(tensor.array), v)
        return v

    def lookup(self, tensor, leaf_kind=None):
        """The Value a tape tensor stands for; a tensor met for the first time is a leaf. In a VJP
        trace (leaf_kind "vconst") a fresh handle on a forward array (node.input, node.output)
        stands for that forward value."""
        v = self._by_tensor.get(id(tensor))
        if v is None and leaf_kind == "vconst":
            v = self._by_array.get(id(tensor.array))
        if v is None:
            kind = leaf_kind or ("param" if tensor.requires_grad else "const")
            v = self._new(tensor, kind, len(self.leaves))
            self.leaves.append(v)
        return v

    def record(self, tape, leaf_kind=None, lines=None, grad_on=None, outside=None):
        """Append the tape's ops (applied from `lines` of the step, where known); returns them. An op
        applied with gradients off (`grad_on`; a no_grad block in the step) is followed by a
        StopGradient that what reads its output reads instead, so that a replay of the ops cuts the
        gradient there as the step did."""
        ops = []
        outside = outside or {}
        outside_arrays = {id(t.array): what for t, what in outside.values()}   # a where's condition
        lines = lines or [None] * len(tape)
        grad_on = grad_on or [True] * len(tape)
        for (cls, inputs, options, out), line, on in zip(tape, lines, grad_on):
            if not isinstance(out, Tensor):
                raise NotTraceable(f"op {_op_name(cls)} gives several outputs", op=_op_name(cls),
                                   where=describe_line(line))
            if out._ctx is not None and cls in (Clip, Max):
                _remember_inputs(cls, out._ctx, inputs, options)
            read = [outside[id(t)][1] for t in inputs if id(t) in outside and id(t) not in self._by_tensor]
            if cls is Where and id(options["condition"]) in outside_arrays:
                read.append(outside_arrays[id(options["condition"])])
            if read:
                raise NotTraceable(f"op {_op_name(cls)} reads a value computed from the step's values outside "
                                   f"the ops ({read[0]}), which a replay would take from one call",
                                   op=_op_name(cls), where=describe_line(line))
            ins = [self.lookup(t, leaf_kind) for t in inputs]
            mask = self._by_array.get(id(options["condition"])) if cls is Where else None
            if mask is not None and mask.kind == "op":   # a mask the step computed (see the docstring)
                cls, ins, options = Select, [mask] + ins, {}
            v = self._new(out, "op")
            v.op = Op(cls, ins, options, v)
            if line is not None:
                self.lines[v.id] = line
            ops.append(v.op)
            if not on and not issubclass(cls, Piecewise):
                cut = self._new(Tensor._make(out.array, None), "op")
                cut.op = Op(StopGradient, [v], {}, cut)
                self._by_tensor[id(out)] = cut
                if line is not None:
                    self.lines[cut.id] = line
                ops.append(cut.op)
        return ops

    def line_of(self, op):
        """'file.py:12: the code' of the step's line that applied op, or None."""
        return describe_line(self.lines.get(op.out.id))


def trace_step(cell, step, x, states, requires_grad, seed=0):
    """Run `step(x, states)` on the given arrays under recording; returns the StepGraph.

    requires_grad: make x and the states leaves that require grad, so every op of the step is a
    recorded node whose VJP can be traced (the compile-time traces); the per-call trace leaves them
    plain, so only the ops on parameters are recorded into the caller's graph.
    """
    graph = StepGraph()
    x_t = Tensor._make(x, None)
    state_t = tuple(Tensor._make(s, None) for s in states)
    for t in (x_t,) + state_t:
        t.requires_grad = requires_grad
    graph.x = graph._new(x_t, "x", 0)
    graph.states = [graph._new(s, "state", k) for k, s in enumerate(state_t)]
    unrolled = getattr(cell, "unrolled", contextlib.nullcontext)
    lines, grad_on = [], []
    # gradients on whatever the caller's mode, so that a no_grad block inside the step shows (grad_on)
    with own_random_stream(seed), enable_grad(), recording(lines, grad_on) as tape, unrolled(), \
            np.errstate(all="ignore"):
        attributes = _attributes(cell)
        try:
            new = step(x_t, state_t)
        finally:
            changed = _restore_attributes(attributes)   # traced once, the step must leave the cell as it was
        if changed:
            raise NotTraceable(f"its step changes attributes of the cell ({', '.join(changed)}), which a step "
                               f"traced once and replayed would change once, not at every step")
    new = (new,) if isinstance(new, Tensor) else tuple(new)
    if len(new) != len(states):
        raise NotTraceable(f"its step returned {len(new)} state tensors; state_sizes names {len(states)}")
    graph.ops = graph.record(tape.ops, lines=lines, grad_on=grad_on, outside=tape.outside)
    if any(id(t) in tape.outside and id(t) not in graph._by_tensor for t in new):
        raise NotTraceable("its step returns a state computed outside the ops (an argmax, a nonzero, ...), "
                           "which a replay would take from one call")
    graph.outputs = [graph.lookup(t) for t in new]
    for k, (out, s) in enumerate(zip(graph.outputs, graph.states)):
        if out.shape != s.shape or out.dtype != s.dtype:
            raise NotTraceable(f"its step returned state {k} of shape {out.shape} {out.dtype} for a state "
                               f"of {s.shape} {s.dtype}")
    return graph


# ----------------------------------------------------------------------------- signatures


def freeze(value):
    """A hashable stand-in for an op option (arrays by content, slices by bounds)."""
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, (tuple, list)):
        return (type(value).__name__,) + tuple(freeze(v) for v in value)
    if isinstance(value, slice):
        return ("slice", value.start, value.stop, value.step)
    if isinstance(value, np.ndarray):
        return ("array", value.shape, str(value.dtype), value.tobytes())
    if isinstance(value, np.dtype):
        return ("dtype", str(value))
    if isinstance(value, type):
        return ("type", value.__module__, value.__qualname__)
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # a device array: compared on the host
        return freeze(np.asarray(value.get() if hasattr(value, "get") else value))
    try:
        hash(value)
    except TypeError:
        return ("object", id(value))
    return value


def signature(graph, arrays=True):
    """What the compiled program depends on: structure, options, shapes and dtypes (not values).
    Array options (where's condition, index arrays) by content, or by shape alone (arrays=False)."""
    leaves = tuple((v.kind, v.shape, str(v.dtype)) for v in graph.values if v.kind != "op")
    ops = tuple((op.cls, freeze(op.options) if arrays else _shapes_only(freeze(op.options)),
                 tuple(v.id for v in op.inputs)) for op in graph.ops)
    return leaves, ops, tuple(v.id for v in graph.outputs)


def _shapes_only(frozen):
    if isinstance(frozen, tuple) and frozen[:1] == ("array",):
        return frozen[:3]
    if isinstance(frozen, tuple):
        return tuple(_shapes_only(f) for f in frozen)
    return frozen


FROM_DATA = ("computed from the data outside the graph: a comparison, abs, maximum, a random mask?")


def check_same_program(first, second):
    """Two traces of one step on different data must record the same ops, options and constants."""
    if signature(first, arrays=False) != signature(second, arrays=False):
        raise NotTraceable("its step records different ops for different input values (Python control "
                           "flow on data?)")
    for a, b in zip(first.ops, second.ops):
        for key, value in a.options.items():
            if freeze(value) != freeze(b.options[key]):
                raise NotTraceable(f"the {key} of {a.name} changes with the input values ({FROM_DATA})",
                                   op=a.name, where=first.line_of(a))
    for a, b in zip(first.leaves, second.leaves):
        if a.kind != "const":
            continue
        x, y = first.tensors[a.id].array, second.tensors[b.id].array
        if x is not y and not np.array_equal(backend.to_numpy(x), backend.to_numpy(y), equal_nan=True):
            users = [op for op in first.ops if a in op.inputs]
            name = users[0].name if users else None
            raise NotTraceable(f"a constant used by {name or 'the step'} changes with the input values "
                               f"({FROM_DATA})", op=name, where=first.line_of(users[0]) if users else None)


# ----------------------------------------------------------------------------- the VJP of a step


class BackwardGraph:
    """The traced VJP of a step: ops over forward values, seeds and constants; the gradients of
    the step's inputs (`grads`: value id of x, each state, each static -> Value or None)."""

    def __init__(self, ops, seeds, grads):
        self.ops, self.seeds, self.grads = ops, seeds, grads


def trace_backward(graph, per_time_ops, targets, rng):
    """Trace the VJP of `per_time_ops` (recorded nodes of a requires_grad trace) with random seeds.

    targets: the Values whose gradients are wanted (x, the states and the statics the step reads).
    Constants that the VJPs make are captured in their Values' `array`.
    """
    seeds = []
    grads = {}

    def add(value, g):
        grads[value.id] = g if value.id not in grads else grads[value.id] + g

    with no_grad(), recording() as tape, np.errstate(all="ignore"):
        for k, out in enumerate(graph.outputs):
            values = rng.standard_normal(out.shape).astype(out.dtype)
            seed = Tensor._make(backend.to_device(values, backend.device_of(graph.tensors[out.id].array)), None)
            seeds.append(seed)
            add(out, seed)
        for op in reversed(per_time_ops):
            g = grads.pop(op.out.id, None)
            if g is None:
                continue
            node = graph.tensors[op.out.id]._ctx
            if node is None:
                continue
            if node.array_backward:
                raise NotTraceable(f"op {op.name} has a backward on raw arrays (no VJP in primitives)",
                                   op=op.name, where=graph.line_of(op))
            rule = VJP_RULES.get(op.cls)
            in_grads, needs = rule(node, g) if rule else node.backward(g), node.needs
            if op.cls is Select:   # traced as a Where: its mask is no input there
                in_grads, needs = (None,) + tuple(in_grads), (False,) + tuple(needs)
            for value, gi, need in zip(op.inputs, in_grads, needs):
                if gi is None or not need:
                    continue
                if not isinstance(gi, Tensor):
                    raise NotTraceable(f"op {op.name}'s backward returned {type(gi).__name__}, not a Tensor",
                                       op=op.name, where=graph.line_of(op))
                if gi.shape != value.shape:
                    gi = unbroadcast(gi, value.shape)
                add(value, gi)
    seed_values = [graph._new(s, "seed", k) for k, s in enumerate(seeds)]
    ops = graph.record(tape.ops, leaf_kind="vconst", outside=tape.outside)
    for v in graph.values:
        if v.kind == "vconst" and v.array is None:
            v.array = graph.tensors[v.id].array
    found = {}
    for target in targets:
        g = grads.get(target.id)
        found[target.id] = None if g is None else graph.lookup(g, "vconst")
    return BackwardGraph(ops, seed_values, found)


def check_same_backward(first, second):
    """The VJP traces of two forward traces must agree, constants included."""
    a_ops, b_ops = first.ops, second.ops
    same = len(a_ops) == len(b_ops) and all(
        a.cls is b.cls and freeze(a.options) == freeze(b.options) and len(a.inputs) == len(b.inputs)
        and all(x.kind == y.kind and x.shape == y.shape for x, y in zip(a.inputs, b.inputs))
        for a, b in zip(a_ops, b_ops))
    if not same:
        raise NotTraceable("the VJP of its step records different ops for different values")
    for a, b in zip(a_ops, b_ops):
        for x, y in zip(a.inputs, b.inputs):
            if x.kind == "vconst" and not np.array_equal(backend.to_numpy(x.array), backend.to_numpy(y.array),
                                                         equal_nan=True):
                raise NotTraceable(f"the VJP of {a.name} reads a value computed from the data outside the graph",
                                   op=a.name)
