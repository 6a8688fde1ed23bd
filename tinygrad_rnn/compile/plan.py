"""Plan: which work of a step runs once, over all steps at once, or step by step.

Forward, every value of a traced step is
    static  it depends on parameters and constants alone: computed once, outside the pass, as
            ordinary recorded ops (their gradients reach the parameters through the engine);
    pre     it depends on x_t (and statics) but not on the state: computed for all steps of a
            segment at once, before the loop (the input projection becomes one product over T*B rows);
    loop    it depends on the state: computed step by step.
Backward, every value of the traced VJP step is
    static  statics and constants alone: computed once per backward;
    fpre    forward values alone (say 1 - tanh(c)^2): computed for all steps at once before the loop
            (or, with fpre_in_loop, step by step where the loop reads them: in cache for long
            segments of large steps);
    loop    it depends on the incoming state gradients and leads to the gradients of the previous
            state: step by step, walking back;
    post    it depends on the gradients but nothing in the loop needs it (the gradient of x, every
            contribution to a parameter's gradient): for all steps at once, after the loop; the
            gradient of a static is the sum over steps, a product such as sum_t h_t^T dA_t becoming
            one matrix product over all T*B rows.
Views (slices, reshapes, transposes, broadcasts) cost nothing and are made where they are read.
"""
from .. import backend
from ..ops import Expand, Getitem, Permute, Reshape, _is_basic_index
from .trace import ancestors

STATIC, PRE, LOOP = "static", "pre", "loop"
FWD, FPRE, POST = "fwd", "fpre", "post"   # FWD: a forward value, read by the backward
VIEW_OPS = (Reshape, Permute, Expand)


def is_row_statistic(shape):
    """At most one element per row of the step (a (B, 1) column, a (B,) vector, a scalar)."""
    n = 1
    for d in shape:
        n *= d
    return n <= (shape[0] if shape else 1)


def is_view(op):
    """Ops whose output is a view of their input (made where read, never written)."""
    return op is not None and (op.cls in VIEW_OPS or (op.cls is Getitem and _is_basic_index(op.options["index"])))


def view_base(value):
    """The value a chain of views reads from."""
    while is_view(value.op):
        value = value.op.inputs[0]
    return value


class ForwardPlan:
    """The forward step split into pre and loop ops; `statics` are the static values the step reads
    (the pass node's inputs after x and the states), `fold_ops` the static products made of them by
    fold.py; `saved` the loop values backward reads."""

    def __init__(self, graph, statics=None):
        self.graph = graph
        klass = {}
        for v in graph.values:
            if v.kind in ("param", "const"):
                klass[v.id] = STATIC
        klass[graph.x.id] = PRE
        for s in graph.states:
            klass[s.id] = LOOP
        for op in graph.ops:
            kinds = {klass[v.id] for v in op.inputs}
            klass[op.out.id] = LOOP if LOOP in kinds else PRE if PRE in kinds else STATIC
        self.klass = klass
        ops_of = {op.out.id: op for op in graph.ops if klass[op.out.id] != STATIC}
        live = ancestors(graph.outputs, ops_of)
        self.pre_ops = [op for op in graph.ops if op.out.id in live and klass[op.out.id] == PRE]
        self.loop_ops = [op for op in graph.ops if op.out.id in live and klass[op.out.id] == LOOP]
        given, statics, folds = statics, {}, {}
        folded, embedded = getattr(graph, "folded", ()), getattr(graph, "embedded", ())

        def received(v):  # a fold is computed from the pass's statics; a constant of the compiler embedded
            if v.id in folded:
                folds[v.id] = v.op
                for i in v.op.inputs:
                    received(i)
            elif v.id not in embedded:
                statics.setdefault(v.id, v)

        for op in self.pre_ops + self.loop_ops:
            for v in op.inputs:
                if klass[v.id] == STATIC:
                    received(v)
        for v in graph.outputs:
            if klass[v.id] == STATIC:
                received(v)
        self.statics = list(statics.values()) if given is None else list(given)
        order = {op.out.id: k for k, op in enumerate(graph.ops)}
        self.fold_ops = sorted(folds.values(), key=lambda op: order[op.out.id])
        self.static_index = {v.id: k for k, v in enumerate(self.received)}
        self.saved = set()

    @property
    def received(self):
        """What the generated code reads as P0, P1, ...: the statics (the pass's inputs), then the
        folds (products of them computed once per pass: see fold.py)."""
        return self.statics + [op.out for op in self.fold_ops]

    def folded_arrays(self, statics):
        """The folds' arrays, computed from the statics' arrays (C-contiguous: the forward's products
        read them so; only the forward reads them)."""
        values = {v.id: a for v, a in zip(self.statics, statics)}
        for op in self.fold_ops:
            arrays = [values[v.id] if v.id in values else self.graph.tensors[v.id].array for v in op.inputs]
            out = op.cls.__new__(op.cls).forward(*arrays, **op.options)
            values[op.out.id] = backend.xp_of(arrays[0]).ascontiguousarray(out)
        return [values[op.out.id] for op in self.fold_ops]

    @property
    def per_time_ops(self):
        return self.pre_ops + self.loop_ops

    def is_per_time(self, value):
        return self.klass.get(value.id) in (PRE, LOOP)

    def mark_read_by_backward(self, values):
        """Loop values the backward reads (through views, their bases) are kept for every step."""
        for v in values:
            base = view_base(v)
            if self.klass.get(base.id) == LOOP and base.op is not None and base not in self.graph.outputs:
                self.saved.add(base.id)


class BackwardPlan:
    """The traced VJP step split into static, fpre, loop and post ops.

    carries[k]: the gradient of state input k (None: zero); dx: the gradient of x (None: zero);
    static_grads[i]: the gradient of statics[i] in one step (summed over steps), None where none.
    saved: the ids of loop values (and seeds) that post ops read, kept for every step.
    """

    def __init__(self, forward, bgraph, fpre_in_loop=False, needs=None):
        """forward: the ForwardPlan; bgraph: the traced VJP step (trace.BackwardGraph); needs: flags
        of (x, states..., statics...) whose gradients are wanted (None: all); the gradient of x and a
        static's that are not wanted are not computed (the states' are: the loop carries them)."""
        graph = forward.graph
        self.forward, self.bgraph, self.fpre_in_loop = forward, bgraph, fpre_in_loop
        self.seeds = bgraph.seeds
        n_states = len(graph.states)
        wanted = (lambda k: True) if needs is None else (lambda k: needs[k])
        self.carries = [bgraph.grads.get(s.id) for s in graph.states]
        self.dx = bgraph.grads.get(graph.x.id) if wanted(0) else None
        self.static_grads = [bgraph.grads.get(v.id) if wanted(1 + n_states + i) else None
                             for i, v in enumerate(forward.statics)]
        klass = {}
        for v in graph.values:
            if v.kind in ("seed",):
                klass[v.id] = LOOP
            elif v.kind == "vconst" or forward.klass.get(v.id) == STATIC:
                klass[v.id] = STATIC
            elif v.id in forward.klass:
                klass[v.id] = FWD
        ops_of = {op.out.id: op for op in bgraph.ops}
        for op in bgraph.ops:
            kinds = {klass[v.id] for v in op.inputs}
            if LOOP in kinds or POST in kinds:
                klass[op.out.id] = LOOP
            elif FWD in kinds or FPRE in kinds:
                klass[op.out.id] = FPRE
            else:
                klass[op.out.id] = STATIC
        # seed-dependent ops that the carries do not need run after the loop
        to_carry = ancestors(self.carries, {i: op for i, op in ops_of.items() if klass[i] == LOOP})
        for op in bgraph.ops:
            if klass[op.out.id] == LOOP and op.out.id not in to_carry:
                klass[op.out.id] = POST
        if fpre_in_loop:
            readers = {}
            for op in bgraph.ops:
                for v in op.inputs:
                    readers.setdefault(v.id, []).append(op.out.id)
            for op in reversed(bgraph.ops):  # readers first, so whole chains move
                if klass[op.out.id] == FPRE and not is_row_statistic(op.out.shape) and \
                        any(klass[r] == LOOP for r in readers.get(op.out.id, ())):
                    klass[op.out.id] = LOOP
            # a small value (a row statistic) stays computed for all steps at once, where its
            # handful of elements costs no call per step, unless it reads a value the loop makes
            for op in bgraph.ops:
                if klass[op.out.id] == FPRE and any(klass[v.id] == LOOP for v in op.inputs):
                    klass[op.out.id] = LOOP
        self.klass = klass
        roots = self.carries + [self.dx] + self.static_grads
        live = ancestors(roots, ops_of)
        self.static_ops = [op for op in bgraph.ops if op.out.id in live and klass[op.out.id] == STATIC]
        self.fpre_ops = [op for op in bgraph.ops if op.out.id in live and klass[op.out.id] == FPRE]
        self.loop_ops = [op for op in bgraph.ops if op.out.id in live and klass[op.out.id] == LOOP]
        self.post_ops = [op for op in bgraph.ops if op.out.id in live and klass[op.out.id] == POST]
        # what the forward must keep: every forward value a live backward op reads
        forward.mark_read_by_backward([v for op in self.static_ops + self.fpre_ops + self.loop_ops + self.post_ops
                                       for v in op.inputs if klass.get(v.id) == FWD])
        # loop values (and seeds) read in bulk after the loop
        bulk_readers = self.post_ops
        self.saved = set()
        for op in bulk_readers:
            for v in op.inputs:
                base = view_base(v)
                if klass.get(base.id) == LOOP:
                    self.saved.add(base.id)
        for root in [self.dx] + self.static_grads:
            if root is not None:
                base = view_base(root)
                if klass.get(base.id) == LOOP:
                    self.saved.add(base.id)

    def is_per_time(self, value):
        return self.klass.get(value.id) in (FWD, FPRE, LOOP, POST) or (
            self.klass.get(value.id) is None and self.forward.is_per_time(value))

