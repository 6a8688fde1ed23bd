"""Algebraic simplification of a traced VJP step: fewer calls in the loop walking back.

Walking back, every op that reads the incoming gradient runs once per step; an op on forward values
alone runs once for all steps (plan.py: fpre). The VJPs, written op by op, mix the two: sigmoid's is
`(g * s) * (1 - s)`, a quotient's `-(g / y) * out`. Here, on the ops that depend on the gradient:

- a negation moves to where it costs nothing: `sum(-x)` becomes `-sum(x)`, `a + -b` becomes `a - b`
  (exact: negation and these rearrangements round alike), also where x or b is a forward value;
- `(a + b) + b` (a square's VJP) becomes `a + 2 b`, the doubling done on b's smaller factor, and
  `x + x` with `x = l * f` (f forward) becomes `l * (f + f)`;
- `sum(x) / n` with n the count summed (a mean's VJP, as `-sum(x) / -n`) becomes `mean(x)`: the
  division folds into the mean's row weights;
- `l * a + l * b` with a and b forward becomes `l * (a + b)`;
- a product chain (of Mul, Div and Neg ops each read once) with one gradient-dependent factor and
  several forward factors becomes `g * (their product)`: the product is computed before the loop,
  the loop keeps one call. Rounding moves by an ulp or two per reassociated factor;
- `l * u` (l the gradient's, a row statistic) with u a wide forward value that the forward divides by
  a row statistic, `q = u / s`, and whose quotient the VJP reads anyway, becomes `(l * s) * q`: the
  forward then keeps q alone instead of both (a layer norm's centred input beside its normalised
  one), a wide buffer written each step and read back fewer, and the reassociation above folds s
  into l's forward factors. It differs from u by an ulp, and only where s is 0 or infinite (q then
  is not finite, nor is the quotient's own VJP) can it differ further.

A chain is rewritten only where it costs less with the forward-only ops run for all steps at once
(small segments) and no more with them run step by step (large ones): see `per_step_cost`.
"""
import numpy as np

from ..ops import Add, Div, Getitem, Mean, Mul, Neg, Sub, Sum
from .plan import is_row_statistic
from .trace import Op, Value, ancestors

# what one step of an op costs, in elements written: a NumPy call has a fixed price; an input
# broadcast along the output (a (B, 1) or (H,) operand) makes every element dearer (NumPy walks the
# rows one by one); an op over all steps at once works out of cache (measured on (32, 512) float32)
CALL_COST = 8192
BROADCAST = 2.5
OUT_OF_CACHE = 2


def _size(value):
    return int(np.prod(value.shape, dtype=np.int64))


class _Graph:
    """The VJP ops being rewritten, with what each value depends on and who reads it."""

    def __init__(self, graph, bgraph, per_time_ids):
        self.graph, self.bgraph = graph, bgraph
        self.loop = {s.id for s in bgraph.seeds}            # depends on the incoming gradients
        self.per_time = set(per_time_ids) | {graph.x.id} | {s.id for s in graph.states} | self.loop
        for op in bgraph.ops:
            self.mark(op)
        self.uses = {}
        for op in bgraph.ops:
            for v in op.inputs:
                self.uses[v.id] = self.uses.get(v.id, 0) + 1
        for v in bgraph.grads.values():
            if v is not None:
                self.uses[v.id] = self.uses.get(v.id, 0) + 1
        self.added = []  # the ops made for the op being rewritten, in order
        self.products = set()   # forward products made here (a later chain around one flattens it)
        self.quotient_of = {}   # u.id -> (q, s) for the forward's q = u / s, s a row statistic
        outputs = {v.id for v in graph.outputs}
        for op in graph.ops:
            u, s = op.inputs[:2] if len(op.inputs) == 2 else (None, None)
            if op.cls is Div and op.out.id in self.per_time and u.op is not None and u.id not in outputs and \
                    u.shape == op.out.shape and u.dtype == op.out.dtype and is_row_statistic(s.shape) and \
                    _size(s) < _size(u):
                self.quotient_of.setdefault(u.id, (op.out, s))

    def mark(self, op):
        ids = {v.id for v in op.inputs}
        if ids & self.loop:
            self.loop.add(op.out.id)
        if ids & self.per_time:
            self.per_time.add(op.out.id)

    def make(self, cls, inputs, options=None):
        """A new op (and its value) computed just before the op being rewritten."""
        shape = np.broadcast_shapes(*(v.shape for v in inputs))
        return self.made(cls, inputs, options or {}, shape)

    def made(self, cls, inputs, options, shape):
        out = Value(len(self.graph.values), shape, inputs[0].dtype, "op")
        self.graph.values.append(out)
        out.op = Op(cls, inputs, options, out)
        self.mark(out.op)
        self.added.append(out.op)
        return out

    def forget(self):
        """Drop the ops made for a rewrite that is not taken (their values stay, unread)."""
        for op in self.added:
            self.loop.discard(op.out.id)
            self.per_time.discard(op.out.id)
        self.added = []

    def single_use(self, v):
        return v.op is not None and self.uses.get(v.id) == 1 and v.id in self.loop

    def per_step_cost(self, op, bulk):
        """What `op` costs a step: with `bulk`, the forward-only ops run for all steps at once before the
        loop; else every per-time op runs in the loop."""
        if op.out.id not in self.per_time:
            return 0   # statics: once
        elements = _size(op.out) * (BROADCAST if any(
            v.id in self.per_time and v.shape != op.out.shape and _size(v) > 1 for v in op.inputs) else 1)
        if bulk and op.out.id not in self.loop:
            return OUT_OF_CACHE * elements
        return CALL_COST + elements


def _push_negation(g, op):
    """sum(-x) -> -sum(x); sum(-a * b) -> -sum(a * b); a + -b -> a - b; -a + b -> b - a;
    a - -b -> a + b. Returns (the new op, the ops it replaces) or None."""
    def negation(v):   # of a gradient, or of a forward value (its negation then costs nothing)
        return v.op if v.op is not None and v.op.cls is Neg and g.uses.get(v.id) == 1 else None

    if op.cls is Sum and negation(op.inputs[0]) is not None:
        neg = negation(op.inputs[0])
        total = g.made(Sum, [neg.inputs[0]], op.options, op.out.shape)
        return Op(Neg, [total], {}, op.out), [op, neg]
    product = op.inputs[0].op
    if op.cls is Sum and product is not None and product.cls is Mul and g.single_use(op.inputs[0]):
        a, b = product.inputs
        neg = negation(a) or negation(b)
        if neg is not None:
            inputs = [neg.inputs[0], b] if negation(a) is not None else [a, neg.inputs[0]]
            positive = g.make(Mul, inputs)
            total = g.made(Sum, [positive], op.options, op.out.shape)
            return Op(Neg, [total], {}, op.out), [op, product, neg]
    if op.cls in (Add, Sub):   # (broadcast or not: a + -b and a - b round alike)
        a, b = op.inputs
        if negation(b) is not None:
            return Op(Sub if op.cls is Add else Add, [a, b.op.inputs[0]], {}, op.out), [op, b.op]
        if op.cls is Add and negation(a) is not None:
            return Op(Sub, [b, a.op.inputs[0]], {}, op.out), [op, a.op]
    return None


def _twice_added(g, op):
    """(a + b) + b, the VJP of a square (g * x reaches x twice), -> a + (2 s) * t with b = s * t and s
    the smaller factor: one add fewer, and the doubling (exact) on the smaller array."""
    if op.cls is not Add or op.inputs[0].shape != op.out.shape:
        return None
    inner, b = op.inputs
    if inner.op is None or inner.op.cls is not Add or not g.single_use(inner) or inner.shape != op.out.shape:
        return None
    a = inner.op.inputs[0] if inner.op.inputs[1] is b else inner.op.inputs[1] if inner.op.inputs[0] is b else None
    if a is None or a is b or b.op is None or b.op.cls is not Mul or g.uses.get(b.id) != 2:
        return None
    s, t = sorted(b.op.inputs, key=_size)
    if _size(s) == _size(b):
        return None
    twice = g.make(Mul, [g.make(Add, [s, s]), t])
    return Op(Add, [a, twice], {}, op.out), [op, inner.op, b.op]


def _from_quotient(g, op):
    """l * u (l the gradient's and smaller, u read by this op alone) with q = u / s in the forward and q
    read by the VJP -> (l * s) * q: u need not be kept for backward."""
    if op.cls is not Mul:
        return None
    for l, u in (op.inputs, op.inputs[::-1]):
        found = g.quotient_of.get(u.id)
        if found is None or l.id not in g.loop or u.id in g.loop or g.uses.get(u.id) != 1 or \
                not g.uses.get(found[0].id) or _size(l) >= _size(u) or u.shape != op.out.shape:
            continue
        q, s = found
        return Op(Mul, [g.make(Mul, [l, s]), q], {}, op.out), [op]
    return None


def _cheaper(g, before, new):
    """Whether `new` (with the ops made for it) costs a step less than the ops `before` with the
    forward-only ops run for all steps at once, and no more with them run step by step; if not, the
    ops made for it are forgotten."""
    costs = [[sum(g.per_step_cost(o, bulk) for o in ops) for bulk in (True, False)]
             for ops in (before, g.added + [new])]
    if costs[1][0] < costs[0][0] and costs[1][1] <= costs[0][1]:
        return True
    g.forget()
    return False


def _other(product, v):
    return product.inputs[1] if product.inputs[0] is v else product.inputs[0]


def _doubled(g, op):
    """x + x with x = l * f (l the gradient's, f forward) -> l * (f + f): the doubling (exact) moves off
    the loop, onto the forward factor (the VJP of a square through a mean)."""
    x = op.inputs[0]
    if op.cls is not Add or op.inputs[1] is not x or g.uses.get(x.id) != 2 or x.op is None or x.op.cls is not Mul:
        return None
    looped = [v for v in x.op.inputs if v.id in g.loop]
    if len(looped) != 1:
        return None
    f = _other(x.op, looped[0])
    new = Op(Mul, [looped[0], g.make(Add, [f, f])], {}, op.out)
    return (new, [op, x.op]) if _cheaper(g, [op, x.op], new) else None


def _known(v):
    """The value of a scalar made of the VJP's constants alone (a count, its negation), else None."""
    if v.kind == "vconst" and v.array is not None:
        return np.asarray(v.array)
    op = v.op
    if op is None or _size(v) != 1 or op.cls not in (Neg, Mul, Div, Add, Sub):
        return None
    arrays = [_known(i) for i in op.inputs]
    if any(a is None for a in arrays):
        return None
    return np.asarray(op.cls.__new__(op.cls).forward(*arrays, **op.options))


def _mean_of_sum(g, op):
    """sum(x) / n with n the count summed (a mean's VJP makes -sum / -n) -> mean(x), negated for -n: the
    mean's lowering folds the division into its row weights (numpy_program's _row_weights)."""
    if op.cls is not Div or _size(op.inputs[1]) != 1 or op.out.shape != op.inputs[0].shape:
        return None
    total, n = op.inputs
    replaced, negative = [op], False
    while total.op is not None and total.op.cls is Neg and g.single_use(total):
        replaced.append(total.op)
        total, negative = total.op.inputs[0], not negative
    if total.op is None or total.op.cls is not Sum or not g.single_use(total):
        return None
    value = _known(n)
    if value is None or abs(float(value)) != _size(total.op.inputs[0]) // max(_size(total), 1):
        return None
    replaced.append(total.op)
    if (float(value) < 0) == negative:
        return Op(Mean, list(total.op.inputs), total.op.options, op.out), replaced
    mean = g.made(Mean, list(total.op.inputs), total.op.options, total.shape)
    return Op(Neg, [mean], {}, op.out), replaced


def _factored(g, op):
    """l * a + l * b (l the gradient's, a and b forward, each product read once) -> l * (a + b): the
    forward sum runs before the loop (a - c where b is -c)."""
    if op.cls not in (Add, Sub) or op.inputs[0] is op.inputs[1] or not all(
            v.op is not None and v.op.cls is Mul and g.single_use(v) for v in op.inputs):
        return None
    first, second = (v.op for v in op.inputs)
    for shared in first.inputs:
        if shared.id not in g.loop or not any(v is shared for v in second.inputs):
            continue
        a, b = _other(first, shared), _other(second, shared)
        if a.id in g.loop or b.id in g.loop or not shared.shape == a.shape == b.shape == op.out.shape:
            continue
        cls, replaced = op.cls, [op, first, second]
        if b.op is not None and b.op.cls is Neg and g.uses.get(b.id) == 1:
            cls = Sub if cls is Add else Add
            replaced.append(b.op)
            b = b.op.inputs[0]
        new = Op(Mul, [shared, g.make(cls, [a, b])], {}, op.out)
        return (new, replaced) if _cheaper(g, [op, first, second], new) else None
    return None


def _factors(g, v, inverse, factors, chain, root=False):
    """Flatten the product chain under v into factors [(value, inverse)]; returns the sign (+1/-1)."""
    op = v.op
    ours = v.id in g.products and g.uses.get(v.id) == 1
    if op is None or op.cls not in (Mul, Div, Neg) or v.dtype != op.inputs[0].dtype or not (
            ours or (v.id in g.loop and (root or g.single_use(v)))):
        factors.append((v, inverse))
        return 1
    chain.append(op)
    if op.cls is Neg:
        return -_factors(g, op.inputs[0], inverse, factors, chain)
    a, b = op.inputs
    return _factors(g, a, inverse, factors, chain) * _factors(g, b, inverse ^ (op.cls is Div), factors, chain)


def _product(g, values, cls=Mul):
    """values[0] (cls) values[1] ... smallest first, so the broadcasts grow as late as they can; of one
    size, slices of the same columns of wider values first (a gate's s and 1 - s): the same product
    on the neighbouring columns in other chains (each gate's s * (1 - s)) then joins with it into one
    call (rewrite's siblings)."""
    cuts = [_cut(v) for v in values]
    paired = [c is not None and sum(c[1:] == d[1:] for d in cuts if d is not None) > 1 for c in cuts]
    order = sorted(range(len(values)), key=lambda k: (_size(values[k]), not paired[k],
                                                      cuts[k][1:] + (cuts[k][0].id,) if paired[k] else ()))
    out = values[order[0]]
    for k in order[1:]:
        out = g.make(cls, [out, values[k]])
        if cls is Mul:
            g.products.add(out.id)
    return out


def _cut(v):
    """(base, index) of a value that is a basic slice of a wider one, else None."""
    return (v.op.inputs[0], repr(v.op.options["index"])) if v.op is not None and v.op.cls is Getitem else None


def _negated_smallest(g, values):
    smallest = min(values, key=_size)
    return [v for v in values if v is not smallest] + [g.make(Neg, [smallest])]


def _reassociate(g, op):
    """A product chain with one gradient-dependent factor as that factor times a forward product.
    Returns (the new op, the ops it replaces) or None."""
    factors, chain = [], []
    sign = _factors(g, op.out, False, factors, chain, root=True)
    looped = [v for v, inverse in factors if v.id in g.loop]
    numerators = [v for v, inverse in factors if v.id not in g.loop and not inverse]
    denominators = [v for v, inverse in factors if v.id not in g.loop and inverse]
    if len(chain) < 2 or len(looped) != 1 or (looped[0], False) not in factors or not numerators + denominators:
        return None
    before = [sum(g.per_step_cost(o, bulk) for o in chain) for bulk in (True, False)]
    if sign < 0:  # the sign goes to the smallest forward factor
        if numerators:
            numerators = _negated_smallest(g, numerators)
        else:
            denominators = _negated_smallest(g, denominators)
    if numerators and denominators:
        forward, cls = g.make(Div, [_product(g, numerators), _product(g, denominators)]), Mul
    elif numerators:
        forward, cls = _product(g, numerators), Mul
    else:
        forward, cls = _product(g, denominators), Div
    new = Op(cls, [looped[0], forward], {}, op.out)
    after = [sum(g.per_step_cost(o, bulk) for o in g.added + [new]) for bulk in (True, False)]
    if after[0] < before[0] and after[1] <= before[1]:
        return new, chain
    g.forget()
    return None


def simplify(graph, bgraph, per_time_ids):
    """Rewrite bgraph's ops in place (see the module's docstring); per_time_ids: the ids of the forward
    values computed each step."""
    g = _Graph(graph, bgraph, per_time_ids)
    ops = []

    def visit(op):   # the ops a rewrite makes are visited in turn (2 s made for a square may fold further)
        g.added = []
        found = None
        if op.out.id in g.loop:
            found = _push_negation(g, op) or _twice_added(g, op) or _doubled(g, op) or _mean_of_sum(g, op) or \
                _factored(g, op) or _from_quotient(g, op) or \
                (_reassociate(g, op) if op.cls in (Mul, Div, Neg) else None)
        if found is None:
            ops.append(op)
            return
        new, replaced = found
        added = g.added
        for old in replaced:
            for v in old.inputs:
                g.uses[v.id] -= 1
        for made in added + [new]:
            for v in made.inputs:
                g.uses[v.id] = g.uses.get(v.id, 0) + 1
        op.out.op = new
        for made in added:
            visit(made)
        ops.append(new)

    for op in bgraph.ops:
        visit(op)
    roots = [v for v in bgraph.grads.values() if v is not None]
    live = ancestors(roots, {o.out.id: o for o in ops})
    bgraph.ops = [o for o in ops if o.out.id in live]
