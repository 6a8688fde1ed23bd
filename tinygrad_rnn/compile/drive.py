"""Drive: a compiled cell run over a whole sequence as one graph node, and the layers' seam.

`compiled_run(cell, x, state, lengths, reverse)` is what `Recurrent` calls for a (layer, direction)
pass of any cell (see recurrent.register_fused). Each call traces one step (cheap: one step's ops),
looks its structure up in the cache, compiling it on a miss, and applies one `CompiledPass` node:
its inputs are x, the initial states and the statics the step reads (a parameter, W.T, a
constant), recorded in the caller's graph as the ordinary ops they are, so their gradients reach
the parameters through the engine. The node's outputs are the output sequence and the final states.

The pass runs in segments of processing order (the reverse direction reads time backwards):
`checkpoint_every=k` keeps only every k-th state in forward and recomputes each segment in backward.
With `lengths`, a sequence that has ended keeps its state: the step's result is replaced there by
the previous state (a select, never a product with a mask), its output is zero, its padded inputs
are read as zeros and its gradients pass the padded steps untouched.
"""
import os
import time
import warnings
import weakref

import numpy as np

from .. import backend
from .. import vocabulary as V
from ..autograd import _run
from ..tensor import Function, Tensor, enable_grad, forward_mode_active, is_grad_enabled, stack
from . import cluster_program
from .cuda_program import cupy_launcher
from .fold import fold
from .numpy_program import NumpyProgram
from .persistent_program import cupy_build
from .plan import STATIC, BackwardPlan, ForwardPlan
from .rewrite import rewrite
from .trace import (
    FROM_DATA,
    NotTraceable,
    Op,
    check_same_backward,
    check_same_program,
    signature,
    trace_backward,
    trace_step,
)
from .workspace import Lease

_CACHE = {}        # (cell type, device, structure) -> [Compiled, one per set of array options], or the
                   # NotTraceable that refused it
_BOUND = weakref.WeakKeyDictionary()   # cell -> Bound: its compiled step while nothing about it changes
_WARNED = set()
CACHE_LIMIT = 256
# programs kept for one structure whose array options differ (cells of one type, each with a fixed
# mask of its own in where()); a further set is refused, op by op, without compiling
VARIANT_LIMIT = 8
# the backward's work on forward values runs step by step (in cache, a row at a time) where a step's
# state row is at least STEP_BYTES or a segment's state sequence is larger than BULK_BYTES; only
# smaller ones do it for all steps at once before the loop (fewer calls). Measured (one thread, LSTM
# and LayerNormLSTM, T = 50): for all steps at once pays at B * H = 128 (0.73 against 0.97 ms a
# backward), breaks even near 1024 and costs 0.3 to 0.7 ms at (32, 128), where an array written
# for all steps and read back a row at a time leaves the cache
STEP_BYTES = 8 << 10
BULK_BYTES = 1 << 20


def backward_kind(row, L):
    """The backward a segment of L steps whose state row has `row` bytes runs: "loop" (the work on
    forward values step by step) or "bulk" (for all steps at once before the loop)."""
    return "loop" if row >= STEP_BYTES or L * row > BULK_BYTES else "bulk"
# On a GPU the compiled pass (generated CUDA kernels, tested as C++ on the CPU) is taken only when
# asked for; otherwise cells run op by op there as before
COMPILED_CUDA = os.environ.get("TINYGRAD_RNN_COMPILED_CUDA", "").lower() in ("1", "true", "yes")


class Compiled:
    """A traced, planned and generated step: what every pass of that structure runs."""

    def __init__(self, graph, fplan, program, seconds, constants_fixed, state_names, step, options):
        self.graph, self.fplan, self.program, self.seconds = graph, fplan, program, seconds
        self.state_names = state_names
        self.step = step  # (per-step ops, new states) as traced, before rewrite: what replay records
        self.options = options   # (op class, options) of every op as traced
        self.constants_fixed = constants_fixed   # no constant depends on a parameter's value
        statics = {v.id for v in fplan.statics}
        needed = set()  # the static ops the statics come from, replayed by Bound
        for v in reversed(graph.values):
            if (v.id in statics or v.id in needed) and v.op is not None:
                needed.update(i.id for i in v.op.inputs)
        self.static_ops = [op for op in graph.ops if op.out.id in needed | statics
                           and fplan.klass[op.out.id] == STATIC]

    def other_option(self, graph):
        """Array options (where's condition, index arrays) are part of the program: (op, option name) of
        the first of graph's ops whose array option differs from this program's, or None."""
        for (_, mine), op in zip(self.options, graph.ops):
            for key, value in op.options.items():
                if any(not np.array_equal(backend.to_numpy(a), backend.to_numpy(b))
                       for a, b in zip(_arrays_in(value), _arrays_in(mine[key]))):
                    return op, key
        return None

    @property
    def source(self):
        return self.program.source


def _random_like(rng, array):
    values = rng.standard_normal(array.shape).astype(array.dtype)
    return backend.to_device(values, backend.device_of(array))


def make_program(fplan, bplans, device):
    """The generated program for the arrays' device: NumPy calls on the CPU; on a GPU each segment's
    loop as one launch of cluster kernels (where asked for) or of a persistent kernel where the step
    fits one, else the same driver over CuPy with each loop's elementwise runs fused into generated
    CUDA kernels (cluster_program.choose_program, persistent_program.choose_program)."""
    if device == "cpu":
        return NumpyProgram(fplan, bplans)
    return cluster_program.choose_program(fplan, bplans, backend.xp_for(device), cupy_launcher, cupy_build,
                                          cluster_program.cupy_build)


def _constants_fixed(graph, retrace, rng):
    """Whether the step's constants stay the same when its parameters change (then a later call
    may reuse them instead of tracing again): traced once more with every parameter perturbed."""
    params = [graph.tensors[v.id] for v in graph.leaves if v.kind == "param"]
    if any(p._ctx is not None for p in params):
        return False
    saved = [p.array for p in params]
    try:
        for p in params:
            p.array = p.array + _random_like(rng, p.array)
        other = retrace()
    finally:
        for p, array in zip(params, saved):
            p.array = array
    try:
        check_same_program(graph, other)
    except NotTraceable:
        return False
    return True


def compile_step(cell, step, x, states):
    """Trace the step twice on different values (the programs must agree), trace its VJP, plan and
    generate. Raises NotTraceable."""
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    inputs = [(_random_like(rng, x), [_random_like(rng, s) for s in states]) for _ in range(2)]
    traces = [trace_step(cell, step, x_t, s_t, requires_grad=True, seed=seed)
              for seed, (x_t, s_t) in enumerate(inputs)]
    check_same_program(*traces)
    for graph in traces:   # the program owns its index and mask arrays: a buffer's memory may change later
        for op in graph.ops:
            op.options = _copied(op.options)
    fixed = _constants_fixed(traces[0], lambda: trace_step(cell, step, *inputs[0], requires_grad=True), rng)
    # fold and rewrite change ops in place; a replay records the step as the cell wrote it (fused=False's
    # graph), and a later trace's array options are compared with the ops as traced
    graph = traces[0]
    per_time = {id(op) for op in ForwardPlan(graph).per_time_ops}
    step = ([Op(op.cls, op.inputs, op.options, op.out) for op in graph.ops if id(op) in per_time], list(graph.outputs))
    options = [(op.cls, op.options) for op in graph.ops]
    backwards = []
    for graph in traces:
        fplan = ForwardPlan(graph)
        targets = [graph.x] + graph.states + fplan.statics
        backwards.append((graph, fplan, trace_backward(graph, fplan.per_time_ops, targets, rng)))
    check_same_backward(backwards[0][2], backwards[1][2])
    graph, fplan, bgraph = backwards[0]
    try:
        fold(graph, {v.id for op in bgraph.ops for v in op.inputs} | {v.id for v in bgraph.grads.values() if v})
        fplan = ForwardPlan(graph, fplan.statics)
        rewrite(graph, bgraph, {op.out.id for op in fplan.per_time_ops})
        fplan = ForwardPlan(graph, fplan.statics)
        bplans = {"bulk": BackwardPlan(fplan, bgraph), "loop": BackwardPlan(fplan, bgraph, fpre_in_loop=True)}
        program = make_program(fplan, bplans, backend.device_of(x))
    except NotTraceable:
        raise
    except Exception as error:  # a step the compiler mishandles still runs, op by op
        raise NotTraceable(f"the compiler failed on it ({type(error).__name__}: {error}); please report "
                           f"this with the cell's code") from error
    return Compiled(graph, fplan, program, time.perf_counter() - start, fixed, V.state_names(cell), step, options)


def cached(cell, step, x, states, graph):
    """The Compiled for this trace's structure and array options (compiling on a miss); raises
    NotTraceable."""
    # array options are compared by content on a hit (other_option), not hashed on every call
    key = (type(cell), backend.device_of(x), signature(graph, arrays=False))
    variants = _CACHE.get(key)
    if variants is None:
        if len(_CACHE) >= CACHE_LIMIT:
            _CACHE.clear()
        variants = _CACHE[key] = []
    if isinstance(variants, NotTraceable):
        raise variants
    for compiled in variants:
        if compiled.other_option(graph) is None:
            return compiled
    if variants and len(variants) >= VARIANT_LIMIT:
        op, name = variants[0].other_option(graph)
        raise NotTraceable(f"the {name} of {op.name} differs from call to call ({VARIANT_LIMIT} programs "
                           f"compiled for this step already)", op=op.name, where=graph.line_of(op))
    try:
        compiled = compile_step(cell, step, x, states)
        other = compiled.other_option(graph)
        if other is not None:  # traced on random values it differs from this call's: computed from the data
            op, name = other
            raise NotTraceable(f"the {name} of {op.name} changes with the input values ({FROM_DATA})",
                               op=op.name, where=graph.line_of(op))
    except NotTraceable as refused:
        _CACHE[key] = refused
        raise
    variants.append(compiled)
    return compiled


def cache_info():
    """{cell type name: [compile seconds of each compiled structure]}, for reports and benchmarks."""
    info = {}
    for (cell_type, _, _), variants in _CACHE.items():
        if not isinstance(variants, NotTraceable):
            info.setdefault(cell_type.__name__, []).extend(compiled.seconds for compiled in variants)
    return info


class Bound:
    """A cell and its compiled step, reused while nothing the trace depended on has changed.

    The guard holds the shapes and dtypes, the identity and requires_grad of every parameter and
    tensor attribute, and the plain attributes (numbers, strings, flags such as `training`, and what
    lists and dicts of them hold) of the cell and its submodules, their classes' numbers and the
    module globals its step reads by name. A number reached another way (a helper's global) is not seen. While it holds, a call replays the static ops (W.T, ...) on the
    parameters instead of tracing the whole step again.
    """

    def __init__(self, compiled, graph, guard):
        self.compiled, self.guard = compiled, guard
        self.leaves = {v.id: graph.tensors[v.id] for v in graph.leaves}
        # the index and mask arrays the program was chosen for (they are part of it): often a buffer's
        # own memory (h[:, self.idx], where(self.mask, ...)), which a fill_ or copy_ changes in place
        self.option_arrays = [(a, a.copy()) for op in graph.ops for a in _arrays_in(op.options)]

    def holds(self, guard):
        """Whether this step is still the one to run: the guard, and the option arrays as they were."""
        return self.guard == guard and all(
            backend.xp_of(now).array_equal(now, then, equal_nan=now.dtype.kind in "fc")
            for now, then in self.option_arrays)

    @classmethod
    def make(cls, cell, compiled, graph, guard):
        """A Bound, or None where a later call must trace again (a constant depends on the
        parameters, or the step uses a tensor the guard cannot see)."""
        if not compiled.constants_fixed:
            return None
        own = {id(t) for m in cell.modules() for t in vars(m).values() if isinstance(t, Tensor)}
        if any(v.kind == "param" and id(graph.tensors[v.id]) not in own for v in graph.leaves):
            return None
        return cls(compiled, graph, guard)

    def statics(self):
        values = dict(self.leaves)
        for op in self.compiled.static_ops:
            values[op.out.id] = op.cls.apply(*[values[v.id] for v in op.inputs], **op.options)
        return [values[v.id] for v in self.compiled.fplan.statics]


def _arrays_in(value):
    """The arrays in an op's options (nested in tuples: an index)."""
    if hasattr(value, "dtype") and hasattr(value, "shape") and getattr(value, "ndim", 0):
        return [value]
    if isinstance(value, dict):
        value = tuple(value.values())
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _arrays_in(v)]
    return []


def _copied(value):
    """An op's options with their arrays copied."""
    if hasattr(value, "dtype") and hasattr(value, "shape") and getattr(value, "ndim", 0):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_copied(v) for v in value)
    return value


_PLAIN = (int, float, str, bool, type(None))
_ENGINE_PACKAGE = __name__.split(".")[0] + "."


def _guard(cell, x, state):
    """What a Bound's reuse depends on (see Bound)."""
    parts = [x.shape, x.dtype.str, x.device, tuple(s.shape for s in state), tuple(s.dtype.str for s in state)]
    for module in cell.modules():
        for name, value in vars(module).items():
            if name not in ("_parameters", "_modules"):
                parts.append((name, _guarded(value)))
        for klass in type(module).__mro__:   # a user's class attributes (leak = 0.5 in the class body)
            if klass.__module__.startswith(_ENGINE_PACKAGE) or klass is object:
                break
            parts.extend((name, value) for name, value in vars(klass).items() if isinstance(value, _PLAIN))
    from ..nn.cells import RecurrentCell
    step = type(cell).step if isinstance(cell, RecurrentCell) else type(cell).forward
    code, names = getattr(step, "__code__", None), getattr(step, "__globals__", {})
    if code is not None:   # the globals the step reads by name (a TEMPERATURE or a MASK set between calls)
        parts.extend((name, _guarded(names[name])) for name in code.co_names if name in names)
    return tuple(parts)


def _guarded(value, depth=0):
    """A tensor by identity, flags and shape; a number, string or flag by value; a list, tuple or dict
    (a config the step reads, self.cfg["beta"]) by what it holds, a level or two deep; anything else by
    identity."""
    if isinstance(value, Tensor):
        return id(value), value.requires_grad, value.shape, value.dtype.str
    if isinstance(value, _PLAIN):
        return value
    if type(value) in (list, tuple) and depth < 2:
        return (type(value).__name__,) + tuple(_guarded(v, depth + 1) for v in value)
    if type(value) is dict and depth < 2:
        return ("dict",) + tuple((k, _guarded(v, depth + 1)) for k, v in value.items())
    return id(value)


# ----------------------------------------------------------------------------- one pass, on arrays


class Sequence:
    """One (layer, direction) pass of a compiled step over a batch: forward, saved arrays, backward."""

    def __init__(self, compiled, x, states, statics, reverse, lengths, checkpoint_every, record):
        self.compiled, self.program = compiled, compiled.program
        self.reverse, self.record = reverse, record
        self.T, self.B = x.shape[0], x.shape[1]
        self.dtype = x.dtype
        self.state_shapes = [s.shape for s in states]
        xp = self.xp = backend.xp_of(x)
        self.lengths = None if lengths is None or int(np.min(lengths)) == self.T else lengths
        if self.lengths is not None:
            active = np.arange(self.T)[:, None] < self.lengths[None, :]          # (T, B), time order, host
            self.active = xp.asarray(active)
            x = xp.where(self.active.reshape(active.shape + (1,) * (x.ndim - 2)), x, 0).astype(x.dtype)
            order = active[::-1] if reverse else active
            self.rows = [None if row.all() else xp.asarray(np.nonzero(~row)[0]) for row in order]
        else:
            self.active, self.rows = None, [None] * self.T
        self.x = x                                                            # padded steps read as zeros
        self.x_proc = x[::-1] if reverse else x
        self.starts = [tuple(xp.ascontiguousarray(s) for s in states)]
        self.statics = statics
        self.folded = compiled.fplan.folded_arrays(statics)   # once per pass (fold.py)
        k = checkpoint_every if record and checkpoint_every else self.T
        self.segments = [(p, min(p + k, self.T)) for p in range(0, self.T, k)]
        self.env = None
        self.lease = Lease(xp)   # the buffers of the segment(s) in flight

    def _env(self, p0, p1, starts):
        L = p1 - p0
        env = {f"P{i}": a for i, a in enumerate(list(self.statics) + self.folded)}
        env["X"] = self.x_proc[p0:p1]
        env["alloc"] = self.lease.alloc
        for k, (start, shape) in enumerate(zip(starts, self.state_shapes)):
            buffer = self.lease.alloc((L + 1,) + shape, self.dtype)
            buffer[0] = start
            env[f"S{k}"] = buffer
        return env

    def _time_slice(self, p0, p1):
        return slice(self.T - p1, self.T - p0) if self.reverse else slice(p0, p1)

    def _in_time_order(self, array):
        return array[::-1] if self.reverse else array

    def forward(self):
        """Run the pass; returns (output (T, B, size_0), final states)."""
        T, B = self.T, self.B
        y = self.xp.zeros((T, B) + self.state_shapes[0][1:], self.dtype)
        starts = self.starts[0]
        run = self.program.forward if self.record else self.program.forward_only
        for s, (p0, p1) in enumerate(self.segments):
            if s:
                self.starts.append(starts)
            env = self._env(p0, p1, starts)
            with backend.ieee_quiet(self.xp):   # a sigmoid's exp(-z), see backend
                run(env, p1 - p0, self.rows[p0:p1])
            slot = self._time_slice(p0, p1)
            outputs = self._in_time_order(env["S0"][1:])
            if self.active is None:
                y[slot] = outputs
            else:
                self.xp.copyto(y[slot], outputs, where=self.active[slot].reshape(outputs.shape[:2] + (1,) *
                                                                            (outputs.ndim - 2)))
            starts = tuple(env[f"S{k}"][-1].copy() for k in range(len(self.state_shapes)))
            if self.record and len(self.segments) == 1:
                self.env = env
            else:
                self.lease.release()
        return y, starts

    def saved_arrays(self):
        """The arrays kept for backward besides the inputs and the output."""
        if self.env is None:
            return [a for start in self.starts[1:] for a in start]
        return [a for name, a in self.env.items() if not name.startswith("P") and hasattr(a, "nbytes")]

    def backward(self, g, dstates, needs):
        """Gradients of (x, states..., statics...) for those whose flag in `needs` is set."""
        program, xp = self.program, self.xp
        g_proc = self._in_time_order(g)
        n_states = len(self.state_shapes)
        carries = {}
        for k, (d, shape) in enumerate(zip(dstates, self.state_shapes)):
            carries[f"C{k}"] = xp.zeros((self.B,) + shape[1:], self.dtype) if d is None else xp.array(d, self.dtype)
            carries[f"D{k}"] = xp.empty((self.B,) + shape[1:], self.dtype)
        carries["seed0"] = xp.empty((self.B,) + self.state_shapes[0][1:], self.dtype)
        grads_of_statics = [None] * len(self.statics)
        dx = xp.empty(self.x.shape, self.dtype) if needs[0] else None   # each segment writes its part
        last = len(self.segments) - 1
        for s in range(last, -1, -1):
            p0, p1 = self.segments[s]
            if self.env is not None:
                env = self.env
            else:  # checkpointed (or a second backward): recompute the segment from its start
                env = self._env(p0, p1, self.starts[s])
                with backend.ieee_quiet(xp):
                    program.forward(env, p1 - p0, self.rows[p0:p1])
            env.update(carries)
            env["G"] = g_proc[p0:p1]
            env["GS"] = grads_of_statics
            # processing order is time order: the program may write x's gradient where it belongs
            env["dx_out"] = dx[p0:p1] if dx is not None and not self.reverse else None
            L = p1 - p0
            row = self.B * int(np.prod(self.state_shapes[0][1:])) * self.dtype.itemsize
            kind = backward_kind(row, L)
            run = program.backward_for(kind, needs) if hasattr(program, "backward_for") else program.backward[kind]
            run(env, L, self.rows[p0:p1], s == last)
            carries = {name: env[name] for name in carries}
            if dx is not None and env["dx"] is None:
                dx[self._time_slice(p0, p1)] = 0
            elif dx is not None and env["dx"] is not env["dx_out"]:
                dx[self._time_slice(p0, p1)] = self._in_time_order(env["dx"])
            env = None
            self.lease.release()
        if dx is not None and self.active is not None:
            dx[~self.active] = 0
        self.env = None  # its buffers went back to the workspace; a second backward recomputes them
        grads = [dx] + [carries[f"C{k}"] for k in range(n_states)] + grads_of_statics
        return [None if not need else _zeros_if_none(xp, gr, shape, self.dtype)
                for gr, need, shape in zip(grads, needs, [self.x.shape] + self.state_shapes +
                                           [a.shape for a in self.statics])]


def _zeros_if_none(xp, grad, shape, dtype):
    return xp.zeros(shape, dtype) if grad is None else grad


# ----------------------------------------------------------------------------- the graph node


class CompiledPass(Function):
    """One (layer, direction) pass of a compiled cell: inputs x (T, B, ...), the initial states, the
    statics; outputs the sequence (T, B, size_0) and the final states. Subclassed per cell type for
    its op name (`<cell>_compiled`)."""
    array_backward = True
    whole_sequence = True
    multiple_outputs = True

    def forward(self, x, *arrays, compiled, reverse, lengths, checkpoint_every, record):
        n = len(compiled.graph.states)
        seq = Sequence(compiled, x, arrays[:n], arrays[n:], reverse, lengths, checkpoint_every, record)
        y, finals = seq.forward()
        if record:
            self.seq, self.compiled = seq, compiled
            self.reverse, self.lengths = reverse, lengths
            self.arrays = (x,) + arrays
        return (y,) + tuple(finals)

    def backward(self, g, *dstates):
        xp = self.seq.xp
        g = xp.zeros(self.shape, self.seq.dtype) if g is None else xp.ascontiguousarray(g)
        if self.keep_grad:  # recorded under tr.retain_grads(): keep every step's state gradients
            from ..nn.unfuse import keep_step_gradients
            keep_step_gradients(self, g, dstates)
        return tuple(self.seq.backward(g, dstates, self.needs))

    def differentiable_backward(self, g, *dstates):
        """The backward as recorded ops, for gradients of gradients: the pass is replayed op by op
        from the values it received (the graph fused=False records) and differentiated; its inputs
        enter through fresh boundary nodes, so the inner backward stops there."""
        with enable_grad():
            boundary = []
            for k, array in enumerate(self.arrays):
                value = self.attached(k, array)
                boundary.append(value.reshape(value.shape))
            n = len(self.compiled.graph.states)
            steps, finals = replay(self.compiled, boundary[0], boundary[1:n + 1], boundary[n + 1:],
                                   self.lengths, self.reverse)
            roots = [stack(steps)] + list(finals)
        grads = [d if d is not None else Tensor._make(r.xp.zeros(r.shape, dtype=r.dtype), None)
                 for d, r in zip((g,) + dstates, roots)]
        wanted = {k: t._ctx for k, t in enumerate(boundary) if t._ctx is not None}
        capture = {id(node): None for node in wanted.values()}
        create_graph = is_grad_enabled()
        _run(roots, [d if isinstance(d, Tensor) else Tensor._make(d, None) for d in grads],
             retain_graph=create_graph, create_graph=create_graph, capture=capture, only=(),
             stop=frozenset(wanted.values()))
        return tuple(capture[id(wanted[k])] if k in wanted and need else None
                     for k, need in enumerate(self.needs))

    def saved_arrays(self):
        seq = self.__dict__.get("seq")
        return [] if seq is None else seq.saved_arrays()

    def kept_for_drawing(self):
        from ..nn.unfuse import kept_for_drawing
        return kept_for_drawing(self)


def replay(compiled, x, states, statics, lengths, reverse):
    """The pass op by op from the compiled step's ops as traced, recorded as run_cell records a cell's
    steps (each in its time scope, its ops named as the cell named them, x masked and the new states
    named at padded steps alike): (a list of T outputs, final states).

    x (T, B, ...) or a list of T step tensors, states and statics: tensors standing for the pass's
    inputs (a drawing or the differentiable backward chooses them).
    """
    from ..nn.recurrent import run_steps
    graph, fplan = compiled.graph, compiled.fplan
    step_ops, step_outputs = compiled.step
    names = {op.out.id: graph.tensors[op.out.id].name for op in step_ops}   # as traced (rewrite adds values)

    def step(x_t, state):
        values = {graph.x.id: x_t}
        values.update({v.id: s for v, s in zip(graph.states, state)})
        values.update({v.id: s for v, s in zip(fplan.statics, statics)})
        for op in step_ops:
            out = values[op.out.id] = op.cls.apply(*[values[v.id] for v in op.inputs], **op.options)
            if names[op.out.id] is not None:
                out.named(names[op.out.id])
        return tuple(values[v.id] for v in step_outputs)

    return run_steps(step, compiled.state_names, x, tuple(states), lengths, reverse)


_PASS_TYPES = {}


def _pass_type(cell_type):
    """CompiledPass subclassed for one cell type, so the graph names the node after the cell."""
    if cell_type not in _PASS_TYPES:
        name = cell_type.__name__
        stem = name[:-4] if name.endswith("Cell") and len(name) > 4 else name
        _PASS_TYPES[cell_type] = type(f"{name}Compiled", (CompiledPass,), {"op": f"{stem.lower()}_compiled"})
    return _PASS_TYPES[cell_type]


# ----------------------------------------------------------------------------- the layers' seam


def accepts(cell):
    """Whether compiled_run takes `cell` (recurrent.register_fused's `accepts`): any cell, outside
    forward mode (tr.func.jvp runs op by op). A cell the compiler cannot trace runs op by op too,
    with a warning, when it is first run."""
    return not forward_mode_active()


def _warn_once(cell, refused):
    key = (type(cell), refused.reason)
    if key in _WARNED:
        return
    _WARNED.add(key)
    what = f"op '{refused.op}'" if refused.op else "its step"
    if refused.where:
        what += f" ({refused.where})"
    warnings.warn(f"{type(cell).__name__}: the step compiler cannot take {what}: {refused.reason}; "
                  f"running it op by op", stacklevel=4)


_HOOKS = ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks")


def _hooked(cell):
    """'its submodule 'lin'' (or 'the cell') where a module the step calls has hooks, else None. A
    RecurrentCell's step is called directly: its own hooks do not run in a step."""
    from ..nn.cells import RecurrentCell
    for name, module in cell.named_modules():
        if (name or not isinstance(cell, RecurrentCell)) and any(getattr(module, h, None) for h in _HOOKS):
            return f"its submodule '{name}'" if name else "the cell"
    return None


def _op_by_op(cell, x, state, lengths, reverse):
    from ..nn.recurrent import run_cell
    outputs, final = run_cell(cell, x, state, lengths, reverse)
    return stack(outputs), final


def compiled_run(cell, x, state, lengths=None, reverse=False, checkpoint_every=None):
    """One (layer, direction) pass of any cell, compiled: (output (T, B, size_0), final state tuple).

    x (T, B, F) in time order; state a tuple of (B, size) tensors; lengths host ints (B,) or None.
    """
    from ..nn.recurrent import _step_function
    # an empty batch has nothing to compile (and its reductions over no rows nothing to trace on): op by
    # op gives its empty outputs and gradients at no cost
    if forward_mode_active() or x.shape[1] == 0 or (backend.device_of(x.array) != "cpu" and not COMPILED_CUDA):
        return _op_by_op(cell, x, state, lengths, reverse)
    hooked = _hooked(cell)
    if hooked is not None:
        _warn_once(cell, NotTraceable(f"{hooked} has hooks, which op by op run at every step (a compiled step "
                                      f"would run them on the values it is traced on)"))
        return _op_by_op(cell, x, state, lengths, reverse)
    guard = _guard(cell, x, state)
    bound = _BOUND.get(cell)
    if bound is not None and bound.holds(guard):
        compiled, statics = bound.compiled, bound.statics()
    else:
        step = _step_function(cell)
        first = x.array[x.shape[0] - 1 if reverse else 0]
        state_arrays = [s.array for s in state]
        try:
            graph = trace_step(cell, step, first, state_arrays, requires_grad=False)
            compiled = cached(cell, step, first, state_arrays, graph)
        except NotTraceable as refused:
            _warn_once(cell, refused)
            return _op_by_op(cell, x, state, lengths, reverse)
        statics = [graph.tensors[v.id] for v in compiled.fplan.statics]
        bound = Bound.make(cell, compiled, graph, guard)
        try:
            if bound is None:
                _BOUND.pop(cell, None)
            else:
                _BOUND[cell] = bound
        except TypeError:  # a cell that takes no weak references is traced on every call
            pass
    inputs = [x] + list(state) + statics
    record = is_grad_enabled() and any(t.requires_grad for t in inputs)
    output, *finals = _pass_type(type(cell)).apply(*inputs, compiled=compiled, reverse=bool(reverse),
                                                   lengths=lengths, checkpoint_every=checkpoint_every,
                                                   record=record)
    return output.named(V.OUTPUT), tuple(s.named(V.final(name)) for s, name in zip(finals, compiled.state_names))


def register():
    """Make every cell type without a registered pass of its own take the compiled one."""
    from ..nn.module import Module
    from ..nn.recurrent import register_fused
    register_fused(Module, compiled_run, accepts)
