"""NumPy programs: a planned step as generated Python source of in-place NumPy calls.

Per compiled cell this generates `forward(env, L, rows)` (twice: keeping what backward reads, or
not) and `backward(env, L, rows, first)` (once per backward plan), each for one segment of L steps
in processing order. `env` holds the segment's arrays by name:

    X            (L, B, ...) the inputs x_t
    S{k}         (L + 1, B, size_k) state k: slot 0 the segment's start state, slot j + 1 after step j
    P{i}         the i-th static (a parameter, a product of parameters, a constant)
    V{id}        (L, ...) a pre value, computed for all steps at once
    SV{id}       (L, ...) a loop value the backward reads, kept for every step
    G            (L, B, size_0) the output's gradient; C{k}, D{k}: state k's gradient carried
                 between steps (read, written; swapped each step); seed0 scratch
    SB{id}       (L, ...) a backward loop value that the post ops read
    dx, GS       the gradient of X, and the statics' gradients (summed over the segment's steps)
    dx_out       where given (not None), the (L, ...) array the gradient of X may be written into

Inside the loop every op writes into a preallocated buffer through `out=`; nothing is recorded and
no Tensor is made. `rows[j]` lists the sequences that have ended by step j (None: none have).
An op without a lowering here runs its own `forward` (exact, but allocating).
"""
import string

import numpy as np

from ..ops import (
    COMPARISONS,
    Add,
    Cast,
    Cat,
    Clip,
    Compare,
    Cos,
    Div,
    Einsum,
    Exp,
    Expand,
    Expm1,
    Getitem,
    IndexAdd,
    Log,
    Log1p,
    Matmul,
    Max,
    Mean,
    Mul,
    Neg,
    Permute,
    Pow,
    Relu,
    Reshape,
    Sigmoid,
    Sign,
    Sin,
    Stack,
    Sub,
    Sum,
    Tanh,
    Where,
    _is_basic_index,
)
from .blocks import Blocks
from .cuda_program import CTYPES, Group, group_ops, module_source
from .plan import FPRE, LOOP, POST, PRE, STATIC, BackwardPlan, is_view, view_base
from .rewrite import Assemble, use_counts
from .trace import NotTraceable, PositiveMask, Select

BINARY = {Add: "add", Sub: "subtract", Mul: "multiply", Div: "true_divide", Pow: "power"}
UNARY = {Neg: "negative", Exp: "exp", Log: "log", Tanh: "tanh", Log1p: "log1p", Expm1: "expm1", Sin: "sin",
         Cos: "cos"}
REDUCTIONS = {Sum: "sum_into", Mean: "sum_into", Max: "max_into"}  # mean: the sum, then / count
DEVICE_OPS = ("todevice",)


def _forward_of(cls, options):
    """An op's own forward on raw arrays (the fallback lowering)."""
    def run(*arrays):
        return cls.__new__(cls).forward(*arrays, **options)
    return run


_CALLED = ("add", "subtract", "multiply", "true_divide", "power", "negative", "exp", "log", "tanh", "log1p", "expm1",
           "sin", "cos",
           "maximum", "clip", "matmul", "copyto", "empty", "zeros", "concatenate", "stack", "einsum",
           "broadcast_to", "sign", "isnan", "logical_or") + tuple(COMPARISONS.values())


def namespace(xp):
    """The names generated code calls, from the arrays' module (NumPy, or CuPy on a GPU)."""
    names = {name: getattr(xp, name) for name in _CALLED}
    names["xp"] = xp
    if xp is np:  # a ufunc's reduce skips np.sum's Python layer
        names["sum_into"], names["max_into"] = np.add.reduce, np.maximum.reduce
    else:
        names["sum_into"] = lambda a, axis, keepdims, out: xp.sum(a, axis=axis, keepdims=keepdims, out=out)
        names["max_into"] = lambda a, axis, keepdims, out: xp.amax(a, axis=axis, keepdims=keepdims, out=out)
    return names


def _index_tuple(index):
    return index if isinstance(index, tuple) else (index,)


def _shift(axis, lifted=True):
    """A step's axis (or axes) on the arrays with the leading L axis."""
    if not lifted:
        return axis
    if isinstance(axis, tuple):
        return tuple(_shift(a) for a in axis)
    return axis + 1 if axis >= 0 else axis


class Source:
    """Lines of a generated function, and the objects its names stand for."""

    def __init__(self, header, xp=np):
        self.lines = [header]
        self.namespace = namespace(xp)
        self.depth = 1
        self._objects = {}

    def line(self, text):
        self.lines.append("    " * self.depth + text)

    def name(self, obj, prefix="k"):
        """A global name bound to `obj` in the generated code (options, index tuples, dtypes)."""
        key = (prefix, id(obj))
        if key not in self._objects:
            name = f"{prefix}{len(self._objects)}"
            self._objects[key] = (name, obj)
            self.namespace[name] = obj
        return self._objects[key][0]

    def literal(self, value):
        """`value` as source when its repr reads back exactly (ints, shapes, slices), else a name."""
        if value is None or isinstance(value, (bool, int, str)):
            return repr(value)
        if isinstance(value, float) and float(repr(value)) == value:
            return repr(value)
        if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
            return repr(value)
        return self.name(value)

    def compile(self, name):
        code = "\n".join(self.lines) + "\n"
        namespace = dict(self.namespace)
        exec(compile(code, f"<compiled {name}>", "exec"), namespace)  # noqa: S102 (code generated here)
        return namespace[name], code


# ----------------------------------------------------------------------------- lowerings


def compute_lines(op, ins, out, src, lifted=None):
    """Source lines computing op's output into the array expression `out`.

    Step form (lifted None): inputs and output have the step's shapes. Whole-segment form: `lifted`
    says which inputs carry the leading L axis; `out` has it. Returns None where an op has no
    whole-segment form here (it then runs step by step)."""
    cls, o = op.cls, op.options
    rank = len(op.out.shape)
    if lifted is not None and (cls in BINARY or cls in (Where, Select, Compare)):
        ins = [_aligned(e, v, f, rank) for e, v, f in zip(ins, op.inputs, lifted)]
    axis = o.get("axis")
    if lifted is not None and cls in REDUCTIONS:
        axis = tuple(range(1, len(op.inputs[0].shape) + 1)) if axis is None else _shift(axis)
    if cls in BINARY:
        return [f"{BINARY[cls]}({ins[0]}, {ins[1]}, out={out})"]
    if cls in UNARY:
        return [f"{UNARY[cls]}({ins[0]}, out={out})"]
    if cls is Sigmoid:
        return [f"negative({ins[0]}, out={out})", f"exp({out}, out={out})",
                f"add({out}, 1, out={out})", f"true_divide(1, {out}, out={out})"]
    if cls is Relu:
        return [f"maximum({ins[0]}, 0, out={out})"]
    if cls is PositiveMask:
        return [f"greater({ins[0]}, 0, out={out})"]
    if cls is Clip:
        return [f"clip({ins[0]}, {src.literal(o['low'])}, {src.literal(o['high'])}, out={out})"]
    if cls is Where:
        return [f"copyto({out}, {ins[1]})", f"copyto({out}, {ins[0]}, where={src.name(o['condition'])})"]
    if cls is Select:   # the mask a value of the step
        return [f"copyto({out}, {ins[2]})", f"copyto({out}, {ins[1]}, where={ins[0]})"]
    if cls is Compare:
        other = ins[1] if len(ins) > 1 else src.literal(o["other"])
        lines = [f"{COMPARISONS[o['op']]}({ins[0]}, {other}, out={out})"]
        return lines + ([f"logical_or({out}, isnan({ins[0]}), out={out})"] if o.get("nan_wins") else [])
    if cls is Sign:
        nan_as_zero = [f"copyto({out}, 0, where=isnan({ins[0]}))"] if o.get("nan_as_zero") else []
        return [f"sign({ins[0]}, out={out})"] + nan_as_zero
    if cls in (Sum, Mean) and lifted is None and _over_rows(op):
        return [f"matmul({ins[0]}, {_row_weights(op, src)}, out={out})"]
    if cls in REDUCTIONS:
        lines = [f"{REDUCTIONS[cls]}({ins[0]}, axis={src.literal(axis)}, keepdims={o['keepdims']}, out={out})"]
        if cls is Mean:  # as numpy's mean: the sum divided by the count in place
            if op.inputs[0].dtype == np.float16:
                mean = f"xp.mean({ins[0]}, axis={src.literal(axis)}, keepdims={o['keepdims']})"
                return None if lifted is not None else [f"copyto({out}, {mean})"]
            count = int(np.prod(op.inputs[0].shape)) // max(int(np.prod(op.out.shape)), 1)
            lines.append(f"true_divide({out}, {count}, out={out})")
        return lines
    if cls is Cast:
        return [f"copyto({out}, {ins[0]}, casting='unsafe')"]
    if cls is Matmul:
        if lifted is None:
            return [f"matmul({ins[0]}, {ins[1]}, out={out})"]
        (a, b), (la, lb) = ins, lifted
        ra, rb = (len(v.shape) for v in op.inputs)
        if la and not lb and rb == 2:  # all L steps' rows in one product
            k, n = op.inputs[0].shape[-1], op.inputs[1].shape[-1]
            rows = _steps_rows(op.inputs[0].shape)
            return [f"matmul({a}.reshape({rows}, {k}), {b}, out={out}.reshape({rows}, {n}))"]
        if lb and rb >= 2 and (ra >= 2 or not la):
            rank2 = max(ra, rb)
            a, b = _aligned(a, op.inputs[0], la, rank2), _aligned(b, op.inputs[1], lb, rank2)
            return [f"matmul({a}, {b}, out={out})"]
        return None
    if cls in (Cat, Stack):
        parts = ins if lifted is None else [e if f else f"broadcast_to({e}, (L,) + {v.shape!r})"
                                            for e, v, f in zip(ins, op.inputs, lifted)]
        axis = _shift(o["axis"], lifted is not None)
        if cls is Cat:
            return [f"concatenate(({', '.join(parts)},), axis={axis}, out={out})"]
        return [f"copyto({out}, stack(({', '.join(parts)},), axis={axis}))"]
    if cls is Einsum:
        subs, output = list(o["inputs"]), o["output"]
        if lifted is not None:
            letter = next(c for c in string.ascii_letters if c not in "".join(subs) + output)
            subs = [letter + sub if f else sub for sub, f in zip(subs, lifted)]
            output = letter + output
        return [f"copyto({out}, einsum({','.join(subs) + '->' + output!r}, {', '.join(ins)}))"]
    if cls is Assemble:
        lead = () if lifted is None else (slice(None),)
        lines = [] if o["covered"] else [f"{out}[...] = 0"]
        return lines + [f"copyto({out}[{src.name(lead + _index_tuple(index))}], {piece})"
                        for piece, index in zip(ins, o["indexes"]) if piece is not None]
    if cls is IndexAdd and _is_basic_index(o["index"]):
        index = _index_tuple(o["index"])
        if lifted is not None:
            index = (slice(None),) + index
        return [f"{out}[...] = 0", f"{out}[{src.name(index)}] += {ins[0]}"]
    if lifted is not None:
        return None
    if cls is Getitem:  # integer-array indexing (basic indexing is a view)
        return [f"copyto({out}, {ins[0]}[{src.name(o['index'])}])"]
    return [f"copyto({out}, {src.name(_forward_of(cls, o), 'f')}({', '.join(ins)}))"]


def _over_rows(op):
    """A sum or mean of a matrix's rows (over its last axis) in floating point: one product with a
    column of ones (1 / n for a mean), a BLAS call cheaper than a reduction and its division."""
    x, axis = op.inputs[0], op.options["axis"]
    axes = tuple(a % 2 for a in axis) if isinstance(axis, tuple) else (None if axis is None else (axis % 2,))
    return len(x.shape) == 2 and axes == (1,) and x.dtype in (np.float32, np.float64) and x.shape[1] > 1


def _row_weights(op, src):
    n = op.inputs[0].shape[1]
    weights = np.full((n, 1) if op.options["keepdims"] else (n,), 1 / n if op.cls is Mean else 1, op.inputs[0].dtype)
    return src.name(src.namespace["xp"].asarray(weights), "ones")


def view_expr(op, a, lifted, src):
    """The view op's output as an expression over its input `a` (with a leading L axis if lifted)."""
    cls, o, lead = op.cls, op.options, "(L,) + " if lifted else ""
    if cls is Reshape:
        return f"{a}.reshape({lead}{op.out.shape!r})"
    if cls is Permute:
        axes = (0,) + tuple(x + 1 for x in o["axes"]) if lifted else o["axes"]
        return f"{a}.transpose({axes!r})"
    if cls is Expand:
        if not lifted:
            return f"broadcast_to({a}, {op.out.shape!r})"
        pad = (1,) * (len(op.out.shape) - len(op.inputs[0].shape)) + op.inputs[0].shape
        return f"broadcast_to({a}.reshape((L,) + {pad!r}), (L,) + {op.out.shape!r})"
    index = _index_tuple(o["index"])
    return f"{a}[{src.name(((slice(None),) if lifted else ()) + index)}]"


def _aligned(expr, value, lifted, rank):
    """A lifted operand of an elementwise op, its step dims padded to the result's rank."""
    if lifted and len(value.shape) < rank:
        return f"{expr}.reshape((L,) + {(1,) * (rank - len(value.shape)) + value.shape!r})"
    return expr


def static_expr(op, ins, src):
    """An expression for an op on statics alone (no leading L)."""
    if is_view(op):
        return view_expr(op, ins[0], False, src)
    return f"xp.asarray({src.name(_forward_of(op.cls, op.options), 'f')}({', '.join(ins)}))"  # 0-d stays an array


def check_lowerable(op):
    """Ops that must run on the arrays' own device are refused (the pass is one device)."""
    if op.name in DEVICE_OPS:
        raise NotTraceable(f"op {op.name} moves data between devices inside the step", op=op.name)


# ----------------------------------------------------------------------------- forward


def _in_place_pieces(plan):
    """{piece id: (Assemble's output, index)} for loop values that no other loop op reads: their op
    writes straight into the Assemble's buffer. Where the ops after the loop read a piece too, they
    read it there: the Assemble's buffer is kept for every step instead of the piece's own."""
    loop_uses = {}
    for op in plan.loop_ops:
        for v in op.inputs:
            loop_uses[v.id] = loop_uses.get(v.id, 0) + 1
    carries = {v.id for v in plan.carries if v is not None}
    computed = {op.out.id for op in plan.loop_ops if not is_view(op) and op.cls is not Assemble}
    into = {}
    for op in plan.loop_ops:
        if op.cls is Assemble:
            for piece, index in zip(op.inputs, op.options["indexes"]):
                if piece.id in computed and loop_uses.get(piece.id) == 1 and piece.id not in carries:
                    into[piece.id] = (op.out, index)
                    if piece.id in plan.saved:
                        plan.saved.discard(piece.id)
                        plan.saved.add(op.out.id)
    return into


def _loop_items(loop_ops, persists, kernels):
    """What the loop runs: its ops one by one, or with `kernels` (a list collecting the CUDA
    program's Groups) the elementwise runs fused, each Group named after its kernel."""
    if kernels is None:
        return [op for op in loop_ops if not is_view(op)]
    items = group_ops(loop_ops, persists)
    for item in items:
        if isinstance(item, Group):
            item.name = f"K{len(kernels)}"
            kernels.append(item)
    return items


def _in_registers(items):
    """Values a fused kernel keeps to itself: they need no buffer."""
    kept = set()
    for item in items:
        if isinstance(item, Group):
            written = {v.id for v in item.outputs}
            kept.update(op.out.id for op in item.ops if op.out.id not in written)
    return kept


def _emit_group(group, place, xp, src):
    """One launch of the group's kernel: its inputs, where-conditions and outputs as arrays."""
    arrays = [place(v) for v in group.inputs]
    arrays += [src.name(xp.asarray(op.options["condition"], dtype=group.dtype)) for op in group.conditions]
    arrays += [place(v) for v in group.outputs]
    src.line(f"{group.name}({', '.join(arrays)})")


def _matmul_operands(ops, keep):
    """Ids of the 2-D values among `keep` that the ops multiply: a C-contiguous copy of a transposed
    weight makes each product faster (BLAS reads it without transposing)."""
    return {v.id for op in ops if op.cls is Matmul for v in op.inputs if v.id in keep and len(v.shape) == 2}


class _Spread:
    """Statics that a loop's elementwise op broadcasts (a bias (H,) over (B, H)), spread to the op's
    shape once before the loop: NumPy walks a broadcast operand row by row, a full one in one sweep."""

    def __init__(self, src, is_static):
        self.src, self.is_static, self.names, self.lines = src, is_static, {}, []
        self.at = len(src.lines)   # where the loop starts: the spread copies are made just before

    def operands(self, op, ins):
        if op.cls not in BINARY:
            return ins
        return [self.spread(e, v, op.out.shape) if self.is_static(v) and 1 < _elements(v.shape) < _elements(
            op.out.shape) else e for e, v in zip(ins, op.inputs)]

    def spread(self, expr, value, shape):
        key = (expr, shape)
        if key not in self.names:
            self.names[key] = f"full{len(self.names)}"
            self.lines.append(f"    {self.names[key]} = xp.ascontiguousarray(broadcast_to({expr}, {shape!r}))")
        return self.names[key]

    def insert(self):
        self.src.lines[self.at:self.at] = self.lines


def _elements(shape):
    return int(np.prod(shape, dtype=np.int64))


def _steps_rows(shape):
    """The rows of all L steps of a value of `shape` taken as a matrix of shape[-1] columns, spelled
    out: reshape cannot infer a -1 for an empty array (a zero-width part of a state)."""
    return f"L * {_elements(shape[:-1])}"


def _emit_op(op, step, spread, section, skip=()):
    """One loop op's lines: where a matrix it touches has a scratch (blocks.py), filled first, run on
    it (a whole op), or copied out of it (an Assemble of scratch blocks)."""
    src, blocks = section.src, section.blocks
    if blocks is not None:
        for scratch in blocks.needs(op):
            section.fill(scratch, step)
        if op.out.id in blocks.whole_ops:
            ins = [blocks.scratch(i.id).name if blocks.scratch(i.id) is not None else step(i) for i in op.inputs]
            for text in compute_lines(op, ins, blocks.whole[op.out.id].name, src):
                src.line(text)
            return
        if op.out.id in blocks.written:
            scratch = blocks.written[op.out.id]
            src.line(f"copyto({scratch.matrix_view(step(op.out))}, {scratch.name})")
            return
    ins = spread.operands(op, [None if i.id in skip else step(i) for i in op.inputs])
    out = step(op.out)
    for text in compute_lines(op, ins, out, src):
        src.line(text)


def _alloc_scratches(section):
    for scratch in section.blocks.scratches():
        section.src.line(f"{scratch.name} = alloc({scratch.shape!r}, {section.src.name(scratch.value.dtype)})")


class _Section:
    """Name resolution for one generated function: each value's expression, made on first use."""

    def __init__(self, src):
        self.src = src
        self.step_names = {}   # value id -> expression inside the current loop iteration
        self.bulk_names = {}   # value id -> expression of its (L, ...) array
        self.blocks = None     # the loop's gate-major scratches (blocks.py), where it has any
        self.filled = set()    # the read scratches filled in this iteration so far

    def new_iteration(self):
        self.step_names = {}
        self.filled = set()

    def fill(self, scratch, step):
        """Copy a read scratch's blocks in from its matrix, once an iteration, before the first reader."""
        if scratch.name not in self.filled:
            self.filled.add(scratch.name)
            self.src.line(f"copyto({scratch.name}, {scratch.matrix_view(step(scratch.value))})")

    def in_scratch(self, v, step):
        """A one-block column view's expression in its matrix's scratch, or None. A read scratch is
        filled here too: a view of the view (x[:, a:b][:, 0:n]) reaches it without its op's `needs`."""
        expr = None if self.blocks is None else self.blocks.view(v)
        if expr is not None:
            base = v.op.inputs[0]
            if self.blocks.read.get(base.id) is self.blocks.scratch(base.id):
                self.fill(self.blocks.read[base.id], step)
            self.step_names[v.id] = expr
        return expr

    def local(self, expr, name):
        self.src.line(f"{name} = {expr}")
        return name


class ForwardCode:
    """The forward of one segment; knows where every forward value lives (used by the backward too)."""

    def __init__(self, fplan, record, xp=np, kernels=None, blocks=True):
        self.plan, self.graph, self.record = fplan, fplan.graph, record
        self.xp, self.kernels, self.blocks = xp, kernels, blocks
        self.output_slot = {}
        for k, v in enumerate(self.graph.outputs):
            if v.op is not None and fplan.klass[v.id] == LOOP and not is_view(v.op):
                self.output_slot.setdefault(v.id, k)
        self.exported_pre = set()   # pre values the backward reads

    # --- where forward values are, from any generated function
    def static_name(self, v, src):
        """A static the pass receives; a constant only a VJP reads (a cached scalar) is embedded."""
        if v.id in self.plan.static_index:
            return f"P{self.plan.static_index[v.id]}"
        if v.kind == "const":
            return src.name(self.graph.tensors[v.id].array)
        raise NotTraceable(f"its backward reads {v}, a static the pass does not receive")

    def bulk(self, v, section):
        """(L, ...) expression of a forward per-time value, or the static's name."""
        if v.id in section.bulk_names:
            return section.bulk_names[v.id]
        klass = self.plan.klass[v.id]
        if klass == STATIC:
            return self.static_name(v, section.src)
        if v is self.graph.x:
            return "X"
        if v.kind == "state":
            expr = f"S{v.index}[:L]"
        elif v.id in self.output_slot:
            expr = f"S{self.output_slot[v.id]}[1:]"
        elif klass == PRE:
            self.exported_pre.add(v.id)
            expr = f"V{v.id}"
        elif is_view(v.op):
            expr = section.local(view_expr(v.op, self.bulk(v.op.inputs[0], section), True, section.src),
                                 f"w{v.id}")
        elif v.id in self.plan.saved:
            expr = f"SV{v.id}"
        else:
            raise AssertionError(f"forward value {v} is not kept for backward")
        section.bulk_names[v.id] = expr
        return expr

    def step(self, v, section):
        """Expression of a forward value at step j, inside a loop over j."""
        if v.id in section.step_names:
            return section.step_names[v.id]
        klass = self.plan.klass[v.id]
        if klass == STATIC:
            return self.static_name(v, section.src)
        scratch = section.in_scratch(v, lambda u: self.step(u, section))
        if scratch is not None:
            return scratch
        if v is self.graph.x:
            expr = section.local("X[j]", "xj")
        elif v.kind == "state":
            expr = section.local(f"S{v.index}[j]", f"s{v.index}")
        elif v.id in self.output_slot:
            k = self.output_slot[v.id]
            expr = section.local(f"S{k}[j + 1]", f"n{k}")
        elif klass == PRE:
            self.exported_pre.add(v.id)
            expr = section.local(_at_j(f"V{v.id}", v), f"p{v.id}")
        elif is_view(v.op):
            expr = section.local(view_expr(v.op, self.step(v.op.inputs[0], section), False, section.src), f"w{v.id}")
        elif v.id in self.plan.saved and self.record:
            expr = section.local(_at_j(f"SV{v.id}", v), f"a{v.id}")
        else:
            expr = f"T{v.id}"
        section.step_names[v.id] = expr
        return expr

    # --- the generated forward
    def source(self):
        plan, graph = self.plan, self.graph
        src = Source("def forward(env, L, rows):", self.xp)
        section = _Section(src)
        src.line("X = env['X']")
        src.line("alloc = env['alloc']")
        operands = _matmul_operands(plan.pre_ops + plan.loop_ops, plan.static_index)
        for i, v in enumerate(plan.received):
            src.line(f"P{i} = xp.ascontiguousarray(env['P{i}'])" if v.id in operands else f"P{i} = env['P{i}']")
        for k in range(len(graph.states)):
            src.line(f"S{k} = env['S{k}']")
        free = _read_once(plan.pre_ops, plan.pre_ops + plan.loop_ops, graph.outputs, "V", self.exported_pre)
        for op in plan.pre_ops:
            check_lowerable(op)
            ins = [self.bulk(v, section) for v in op.inputs]
            lifted = [plan.is_per_time(v) for v in op.inputs]
            _emit_bulk(op, ins, lifted, f"V{op.out.id}", src, free)
            section.bulk_names[op.out.id] = f"V{op.out.id}"
        outputs = {v.id for v in graph.outputs}
        items = _loop_items(plan.loop_ops, lambda v: v.id in outputs or (self.record and v.id in plan.saved),
                            self.kernels)
        in_registers = _in_registers(items)
        for op in plan.loop_ops:
            check_lowerable(op)
            if is_view(op):
                continue
            v = op.out
            if v.id in self.output_slot or v.id in in_registers:
                continue
            if v.id in plan.saved and self.record:
                src.line(f"SV{v.id} = alloc((L,) + {v.shape!r}, {src.name(v.dtype)})")
                src.line(f"env['SV{v.id}'] = SV{v.id}")
            else:
                src.line(f"T{v.id} = alloc({v.shape!r}, {src.name(v.dtype)})")
        if self.kernels is None and self.blocks:
            section.blocks = Blocks(plan.loop_ops, {}, lambda v: v.id in outputs or (
                self.record and v.id in plan.saved))
            _alloc_scratches(section)
        spread = _Spread(src, lambda v: plan.klass.get(v.id) == STATIC)
        src.line("for j in range(L):")
        src.depth += 1
        section.new_iteration()
        for item in items:
            if isinstance(item, Group):
                _emit_group(item, lambda v: self.step(v, section), self.xp, src)
                continue
            _emit_op(item, lambda v: self.step(v, section), spread, section)
        for k, v in enumerate(graph.outputs):
            if self.output_slot.get(v.id) != k:
                src.line(f"copyto(S{k}[j + 1], {self.step(v, section)})")
        src.line("r = rows[j]")
        src.line("if r is not None:")
        for k in range(len(graph.states)):
            src.line(f"    S{k}[j + 1][r] = S{k}[j][r]")
        src.depth -= 1
        spread.insert()
        return src

    def export_lines(self, src):
        for i in sorted(self.exported_pre):
            src.line(f"env['V{i}'] = V{i}")


def _read_once(made, readers, roots, prefix, kept=()):
    """Names (prefix + id) of the values of `made` that one op of `readers` reads and nothing else
    (no root, none of `kept`): the buffers that op may overwrite."""
    uses = use_counts(readers, roots)
    return {f"{prefix}{op.out.id}" for op in made if uses.get(op.out.id) == 1 and op.out.id not in kept
            and not is_view(op)}


def _at_j(name, value):
    return f"{name}[j]" if value.shape else f"{name}[j, ...]"


def _emit_bulk(op, ins, lifted, name, src, free=(), given=None):
    """`name` = op over all L steps, in a buffer from the pass's workspace (`alloc`), or in place of an
    input's buffer among `free` (buffers of this function that only this op reads: an elementwise op
    writing where it reads, a bias added to the input projection, leaves no second array to walk), or
    in the array the expression `given` names where it is not None (the caller's result buffer);
    step by step where the op has no whole-segment form."""
    if is_view(op):
        src.line(f"{name} = {view_expr(op, ins[0], lifted[0], src)}")
        return
    v = op.out
    reused = next((e for e, i, f in zip(ins, op.inputs, lifted) if f and e in free and i.shape == v.shape
                   and i.dtype == v.dtype), None) if op.cls in BINARY or op.cls in UNARY else None
    new = f"alloc((L,) + {v.shape!r}, {src.name(v.dtype)})"
    if given is not None:
        src.line(f"{name} = {given}")
        src.line(f"if {name} is None:")
        src.line(f"    {name} = {new}")
    else:
        src.line(f"{name} = {reused}" if reused else f"{name} = {new}")
    lines = compute_lines(op, ins, name, src, lifted)
    if lines is None:
        src.line("for j in range(L):")
        per_step = [f"{e}[j]" if f else e for e, f in zip(ins, lifted)]
        lines = ["    " + text for text in compute_lines(op, per_step, f"{name}[j, ...]", src)]
    for text in lines:
        src.line(text)


# ----------------------------------------------------------------------------- backward


class BackwardCode:
    """The backward of one segment: fpre ops over all steps, the loop walking back, post ops and
    the statics' gradients over all steps."""

    def __init__(self, bplan, forward_code):
        self.plan, self.fwd = bplan, forward_code
        self.into = _in_place_pieces(bplan)
        self.carry_slot = {}
        for k, v in enumerate(bplan.carries):
            if v is not None and v.op is not None and bplan.klass[v.id] == LOOP and not is_view(v.op) \
                    and v.id not in bplan.saved:
                self.carry_slot.setdefault(v.id, k)

    def bulk(self, v, section):
        if v.id in section.bulk_names:
            return section.bulk_names[v.id]
        plan, src = self.plan, section.src
        klass = plan.klass[v.id]
        if v.id in self.fwd.plan.klass:  # a forward value (or static)
            return self.fwd.bulk(v, section)
        if v.kind == "vconst":
            expr = src.name(v.array)
        elif klass == STATIC:
            expr = f"B{v.id}"
        elif klass == FPRE:
            expr = f"F{v.id}"
        elif klass == LOOP:
            base = view_base(v)
            if v.id in self.into:
                whole, index = self.into[v.id]
                expr = section.local(f"{self.bulk(whole, section)}[{src.name((slice(None),) + _index_tuple(index))}]",
                                     f"w{v.id}")
            elif base is v:
                expr = f"SB{v.id}"
            else:
                expr = section.local(view_expr(v.op, self.bulk(v.op.inputs[0], section), True, src), f"w{v.id}")
        else:  # post: computed where first needed
            op = v.op
            ins = [self.bulk(i, section) for i in op.inputs]
            given = "env.get('dx_out')" if v is plan.dx else None   # the caller's dx, where it gives one
            _emit_bulk(op, ins, [self.plan.is_per_time(i) for i in op.inputs], f"Q{v.id}", src, given=given)
            expr = f"Q{v.id}"
        section.bulk_names[v.id] = expr
        return expr

    def step(self, v, section):
        if v.id in section.step_names:
            return section.step_names[v.id]
        plan, src = self.plan, section.src
        klass = plan.klass[v.id]
        if v.id in self.fwd.plan.klass:  # a forward value (or static)
            return self.fwd.step(v, section)
        if klass == STATIC:
            return self.bulk(v, section)
        scratch = section.in_scratch(v, lambda u: self.step(u, section))
        if scratch is not None:
            return scratch
        if section.blocks is not None and v.id in section.blocks.piece_of:
            whole, lo, hi = section.blocks.piece_of[v.id]
            expr = whole.block(lo, hi)
        elif klass == FPRE:
            expr = section.local(_at_j(f"F{v.id}", v), f"q{v.id}")
        elif v.kind == "seed":
            expr = "seed0" if v.index == 0 else f"C{v.index}"
        elif is_view(v.op):
            expr = section.local(view_expr(v.op, self.step(v.op.inputs[0], section), False, src), f"w{v.id}")
        elif v.id in self.into:
            whole, index = self.into[v.id]
            expr = section.local(f"{self.step(whole, section)}[{src.name(_index_tuple(index))}]", f"d{v.id}")
        elif v.id in self.carry_slot:
            expr = f"D{self.carry_slot[v.id]}"
        elif v.id in plan.saved:
            expr = section.local(_at_j(f"SB{v.id}", v), f"b{v.id}")
        else:
            expr = f"T{v.id}"
        section.step_names[v.id] = expr
        return expr

    def reduce_over_time(self, v, section):
        """Expression for the sum over the segment's steps of the per-step value v (a static's
        gradient): products of per-step matrices become one product over all L*B rows."""
        plan = self.plan
        klass = plan.klass[v.id]
        if klass == STATIC:
            return f"(L * {self.bulk(v, section)})"
        op = v.op
        if klass == POST and op is not None:
            per_time = [plan.is_per_time(i) for i in op.inputs]
            if op.cls is Reshape:
                return f"{self.reduce_over_time(op.inputs[0], section)}.reshape({v.shape!r})"
            if op.cls is Permute:
                return f"{self.reduce_over_time(op.inputs[0], section)}.transpose({op.options['axes']!r})"
            if op.cls in (Add, Sub) and all(per_time) and all(i.shape == v.shape for i in op.inputs):
                sign = "+" if op.cls is Add else "-"
                a, b = (self.reduce_over_time(i, section) for i in op.inputs)
                return f"({a} {sign} {b})"
            if op.cls is Matmul and all(per_time) and all(len(i.shape) == 2 for i in op.inputs):
                m, n = v.shape
                a, b = op.inputs
                if a.op is not None and a.op.cls is Permute and tuple(a.op.options["axes"]) == (1, 0):
                    # a_t = u_t^T: the rows of all steps' u, turned around (a view; BLAS reads it so)
                    a = f"{self.bulk(a.op.inputs[0], section)}.reshape({_steps_rows(a.op.inputs[0].shape)}, {m}).T"
                else:
                    a = f"{self.bulk(a, section)}.transpose(1, 0, 2).reshape({m}, {_steps_rows(b.shape)})"
                return f"matmul({a}, {self.bulk(b, section)}.reshape({_steps_rows(b.shape)}, {n}))"
            if op.cls is Sum and per_time[0] and _leading_axes(op):
                return self.sum_of_rows(op, section)
            if op.cls is Sum and per_time[0]:
                axis = op.options["axis"]
                axis = None if axis is None else (0,) + _as_tuple(_shift(axis))
                keep = op.options["keepdims"]
                total = f"xp.sum({self.bulk(op.inputs[0], section)}, axis={axis!r}, keepdims={keep})"
                return f"{total}[0]" if keep else total
        return f"{self.bulk(v, section)}.sum(axis=0)"

    def sum_of_rows(self, op, section):
        """The sum over steps of a per-step sum over leading axes (a bias's gradient): the rows of all
        steps summed by one product with a ones row, or, of a product of two arrays (a scale's
        gradient), by one einsum that makes no product array."""
        x, v = op.inputs[0], op.out
        lead = _leading_axes(op)
        n, steps_rows = _elements(x.shape[lead:]), f"L * {_elements(x.shape[:lead])}"
        product = x.op
        if product is not None and product.cls is Mul and self.plan.klass.get(x.id) == POST and all(
                self.plan.is_per_time(i) and i.shape == x.shape for i in product.inputs):
            a, b = (f"{self.bulk(i, section)}.reshape({steps_rows}, {n})" for i in product.inputs)
            return f"einsum('ij,ij->j', {a}, {b}).reshape({v.shape!r})"
        rows = f"{self.bulk(x, section)}.reshape({steps_rows}, {n})"
        return f"matmul(xp.ones({rows}.shape[0], {section.src.name(x.dtype)}), {rows}).reshape({v.shape!r})"

    def source(self):
        plan, fwd = self.plan, self.fwd
        graph = fwd.graph
        src = Source("def backward(env, L, rows, first):", fwd.xp)
        carries = {v.id for v in plan.carries if v is not None}
        items = _loop_items(plan.loop_ops, lambda v: v.id in carries or v.id in plan.saved, fwd.kernels)
        in_registers = _in_registers(items)
        section = _Section(src)
        n_states = len(graph.states)
        src.line("X = env['X']")
        src.line("G = env['G']")
        src.line("alloc = env['alloc']")
        all_ops = plan.static_ops + plan.fpre_ops + plan.loop_ops + plan.post_ops
        operands = _matmul_operands(all_ops, fwd.plan.static_index.keys() | {op.out.id for op in plan.static_ops})
        for i, v in enumerate(fwd.plan.received):
            src.line(f"P{i} = xp.ascontiguousarray(env['P{i}'])" if v.id in operands else f"P{i} = env['P{i}']")
        for k in range(n_states):
            src.line(f"S{k} = env['S{k}']; C{k} = env['C{k}']; D{k} = env['D{k}']")
        src.line("seed0 = env['seed0']")
        for name in sorted(fwd.plan.saved):
            src.line(f"SV{name} = env['SV{name}']")
        pre_line = len(src.lines)  # the pre values the backward reads are fetched here (known at the end)
        for op in plan.static_ops:
            ins = [self.bulk(i, section) for i in op.inputs]
            expr = static_expr(op, ins, src)
            src.line(f"B{op.out.id} = {f'xp.ascontiguousarray({expr})' if op.out.id in operands else expr}")
        free = _read_once(plan.fpre_ops, all_ops, [plan.dx] + plan.carries + plan.static_grads, "F")
        for op in plan.fpre_ops:
            check_lowerable(op)
            ins = [self.bulk(i, section) for i in op.inputs]
            _emit_bulk(op, ins, [plan.is_per_time(i) for i in op.inputs], f"F{op.out.id}", src, free)
            section.bulk_names[op.out.id] = f"F{op.out.id}"
        for op in plan.loop_ops:
            check_lowerable(op)
            v = op.out
            if is_view(op) or v.id in self.carry_slot or v.id in self.into or v.id in in_registers:
                continue
            if v.id in plan.saved:
                src.line(f"SB{v.id} = alloc((L,) + {v.shape!r}, {src.name(v.dtype)})")
            else:
                src.line(f"T{v.id} = alloc({v.shape!r}, {src.name(v.dtype)})")
        for seed in plan.seeds:
            if seed.id in plan.saved:
                src.line(f"SB{seed.id} = alloc((L,) + {seed.shape!r}, {src.name(seed.dtype)})")
        if fwd.kernels is None and fwd.blocks:
            section.blocks = Blocks(plan.loop_ops, self.into, lambda v: v.id in carries or v.id in plan.saved)
            _alloc_scratches(section)
        spread = _Spread(src, lambda v: plan.klass.get(v.id) == STATIC)
        src.line("for j in range(L - 1, -1, -1):")
        src.depth += 1
        section.new_iteration()
        src.line("add(C0, G[j], out=seed0)")
        src.line("r = rows[j]")
        src.line("if r is not None:")
        for k in range(n_states):
            src.line(f"    keep{k} = C{k}[r]")
        src.line("    seed0[r] = 0")
        for k in range(1, n_states):
            src.line(f"    C{k}[r] = 0")
        for seed in plan.seeds:
            if seed.id in plan.saved:
                src.line(f"copyto(SB{seed.id}[j], {self.step(seed, section)})")
        for item in items:
            if isinstance(item, Group):
                _emit_group(item, lambda v: self.step(v, section), fwd.xp, src)
                continue
            _emit_op(item, lambda v: self.step(v, section), spread, section, skip=self.into)
        for k, v in enumerate(plan.carries):
            if v is None:
                src.line(f"D{k}.fill(0)")
            elif self.carry_slot.get(v.id) != k:
                src.line(f"copyto(D{k}, {self.step(v, section)})")
        src.line("if r is not None:")   # an ended sequence's state passed on, plus what the step's other
        for k in range(n_states):         # rows read of it (a mean over the batch); zero in a row-wise step
            src.line(f"    D{k}[r] += keep{k}")
        src.line(", ".join(f"C{k}, D{k}" for k in range(n_states)) + " = " +
                 ", ".join(f"D{k}, C{k}" for k in range(n_states)))
        src.depth -= 1
        spread.insert()
        for k in range(n_states):
            src.line(f"env['C{k}'] = C{k}; env['D{k}'] = D{k}")
        section.new_iteration()
        if plan.dx is not None:
            src.line(f"env['dx'] = {self.bulk(plan.dx, section)}")
        else:
            src.line("env['dx'] = None")
        src.line("GS = env['GS']")
        sums = {}   # the same sum over steps for two statics (two biases of one gate row) is made once
        for i, root in enumerate(plan.static_grads):
            if root is None:
                continue
            total = self.reduce_over_time(root, section)
            shared = total in sums
            if not shared:
                sums[total] = f"sum{len(sums)}"
                src.line(f"{sums[total]} = {total}")
            src.line(f"g = {sums[total]}")
            src.line(f"if first or GS[{i}] is None:")   # a sum is a new array: kept as it is, once
            src.line(f"    GS[{i}] = xp.array(g, copy=True)" if shared else f"    GS[{i}] = xp.asarray(g)")
            src.line("else:")
            src.line(f"    GS[{i}] += g")
        fetch = ["    " + f"V{i} = env['V{i}']" for i in sorted(fwd.exported_pre)]
        src.lines[pre_line:pre_line] = fetch
        return src


def _leading_axes(op):
    """How many leading axes a floating-point sum reduces, when those are all it reduces (else 0)."""
    x, axis = op.inputs[0], op.options["axis"]
    if axis is None or x.dtype not in (np.float32, np.float64):
        return 0
    axes = sorted(a % len(x.shape) for a in _as_tuple(axis))
    return len(axes) if axes == list(range(len(axes))) and len(axes) < len(x.shape) else 0


def _as_tuple(axis):
    return axis if isinstance(axis, tuple) else (axis,)


class NumpyProgram:
    """The generated forward and backwards of one traced step (see the module's docstring).

    bplans: {name: BackwardPlan}, one backward generated for each ("bulk": the work on forward
    values alone done for all steps at once before the loop; "loop": done step by step, which keeps
    it in cache when a segment's arrays are large). xp: the arrays' module. launcher(groups, dtype)
    -> {name: kernel}: where given, each loop's elementwise runs become generated kernels
    (cuda_program) launched through it; else every op runs as a NumPy call, and blocks (the default)
    gives the loops gate-major scratch for matrices they work on by column blocks (blocks.py).
    """

    def __init__(self, fplan, bplans, xp=np, launcher=None, blocks=True):
        self.fplan, self.bplans = fplan, bplans
        kernels = None if launcher is None else []
        recording = ForwardCode(fplan, record=True, xp=xp, kernels=kernels, blocks=blocks)
        self.backward, sources, functions = {}, [], []
        for name, bplan in bplans.items():  # first: they say which forward values they read
            self.backward[name], code = BackwardCode(bplan, recording).source().compile("backward")
            sources.append(f"# backward ({name})\n{code}")
            functions.append(self.backward[name])
        self.backward_source = "\n".join(sources)
        self.recording, self.pruned = recording, {}
        self.kernels_made = kernels is not None   # launched once, here: a later backward makes none
        forward = recording.source()
        recording.export_lines(forward)
        self.forward, self.forward_source = forward.compile("forward")
        plain = ForwardCode(fplan, record=False, xp=xp, kernels=kernels, blocks=blocks).source()
        self.forward_only, self.forward_only_source = plain.compile("forward")
        self.groups = kernels or []
        if self.groups:
            dtype = self.groups[0].dtype
            launches = launcher(self.groups, dtype)
            for function in functions + [self.forward, self.forward_only]:
                function.__globals__.update(launches)
            self.kernel_source = module_source(self.groups, CTYPES[dtype], "cuda")

    def backward_for(self, name, needs):
        """The backward `name` for the gradients flagged in `needs` (x, states..., statics...): where
        some are not wanted (x of a first layer, a frozen parameter) one generated without their
        products, on first use (it reads a subset of what the full backward reads of the forward)."""
        n_states = len(self.fplan.graph.states)
        if self.kernels_made or (all(needs[:1]) and all(needs[1 + n_states:])):
            return self.backward[name]
        key = (name, tuple(bool(f) for f in needs))
        if key not in self.pruned:
            full = self.bplans[name]
            bplan = BackwardPlan(self.fplan, full.bgraph, full.fpre_in_loop, needs=key[1])
            self.pruned[key] = BackwardCode(bplan, self.recording).source().compile("backward")[0]
        return self.pruned[key]

    @property
    def source(self):
        return f"{self.forward_source}\n{self.backward_source}"
