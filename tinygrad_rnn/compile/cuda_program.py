"""CUDA programs: the per-step elementwise work of a planned step fused into generated kernels.

On a GPU a NumPy-style program would launch one kernel per op and step (twenty and more per step
for an LSTM). Here the ops of a step's loop that are elementwise over one shape run as one
generated kernel: its inputs are read once, its intermediate values stay in registers, and only
what later ops, the state, the backward or the ops after the loop read is written. Matrix
products, reductions and the rest stay as they are in numpy_program (cuBLAS, CuPy).

A kernel is one function of the thread index i over the group's shape; each operand (a view: a
gate's columns, a state row, a broadcast bias) is a pointer with one stride per dimension, so no
view is copied. The same body compiles as CUDA (a grid-stride loop) and as C++ (a loop over i):
the tests run the generated programs on the CPU that way, as tests/nn/test_fused.py runs the
hand-written kernels.
"""
import numpy as np

from .. import backend
from ..ops import (
    Add,
    Clip,
    Compare,
    Cos,
    Div,
    Erf,
    Exp,
    Expm1,
    Log,
    Log1p,
    Mul,
    Neg,
    Pow,
    Relu,
    Sigmoid,
    Sign,
    Sin,
    Sub,
    Tanh,
    Where,
)
from .plan import is_view, view_base
from .trace import InsideMask, PositiveMask, Select

CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
BOOL = np.dtype(np.bool_)   # a mask (Compare's output, Select's condition): a C bool in a kernel
C_COMPARISONS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _clip(a, o):
    out = a
    if o["low"] is not None:
        out = f"({out} < T({float(o['low'])!r}) ? T({float(o['low'])!r}) : {out})"
    if o["high"] is not None:
        out = f"({out} > T({float(o['high'])!r}) ? T({float(o['high'])!r}) : {out})"
    return out


def _compare(a, o):
    other = a[1] if len(a) > 1 else f"T({float(o['other'])!r})"
    test = f"{a[0]} {C_COMPARISONS[o['op']]} {other}"
    return f"({test} || {a[0]} != {a[0]})" if o.get("nan_wins") else f"({test})"


def _inside(a, o):
    low, high = (">", "<") if o.get("strict") else (">=", "<=")
    tests = [f"{a[0]} {low} T({float(o['low'])!r})"] if o["low"] is not None else []
    tests += [f"{a[0]} {high} T({float(o['high'])!r})"] if o["high"] is not None else []
    return f"({' && '.join(tests) or 'true'} ? T(1) : T(0))"


# each op's value in C, from its inputs' expressions: the same arithmetic as its NumPy forward
C_OPS = {
    Add: lambda a, o: f"{a[0]} + {a[1]}",
    Sub: lambda a, o: f"{a[0]} - {a[1]}",
    Mul: lambda a, o: f"{a[0]} * {a[1]}",
    Div: lambda a, o: f"{a[0]} / {a[1]}",
    Pow: lambda a, o: f"pow({a[0]}, {a[1]})",
    Neg: lambda a, o: f"-{a[0]}",
    Exp: lambda a, o: f"exp({a[0]})",
    Log: lambda a, o: f"log({a[0]})",
    Tanh: lambda a, o: f"tanh({a[0]})",
    Log1p: lambda a, o: f"log1p({a[0]})",
    Expm1: lambda a, o: f"expm1({a[0]})",
    Erf: lambda a, o: f"erf({a[0]})",
    Sin: lambda a, o: f"sin({a[0]})",
    Cos: lambda a, o: f"cos({a[0]})",
    Sigmoid: lambda a, o: f"T(1) / (T(1) + exp(-{a[0]}))",
    Relu: lambda a, o: f"({a[0]} > T(0) || {a[0]} != {a[0]} ? {a[0]} : T(0))",   # NaN stays, as np.maximum
    PositiveMask: lambda a, o: f"({a[0]} > T(0) ? T(1) : T(0))",
    Clip: lambda a, o: _clip(a[0], o),
    InsideMask: _inside,
    Where: lambda a, o: f"({a[2]} != T(0) ? {a[0]} : {a[1]})",  # the condition comes in as a third operand
    Select: lambda a, o: f"({a[0]} ? {a[1]} : {a[2]})",
    Compare: _compare,
    # 0 and NaN stay, as np.sign; NaN gives 0 with nan_as_zero, as torch.sign
    Sign: lambda a, o: (f"({a[0]} > T(0) ? T(1) : {a[0]} < T(0) ? T(-1) : "
                        f"{'T(0)' if o.get('nan_as_zero') else a[0]})"),
}
def floating_dtype(op):
    """The floating dtype an elementwise op computes in (a comparison's operands', not its mask's)."""
    return op.inputs[0].dtype if op.cls is Compare else op.out.dtype


def _operand_dtypes(op, dtype):
    """The dtype a kernel needs for each of op's inputs, then its output: masks are bools."""
    if op.cls is Compare:
        return [dtype] * len(op.inputs) + [BOOL]
    if op.cls is Select:
        return [BOOL, dtype, dtype, dtype]
    return [dtype] * (len(op.inputs) + 1)


def fusable(op):
    """An elementwise op of one floating dtype that a kernel can compute (masks as C bools)."""
    dtype = floating_dtype(op)
    if op.cls not in C_OPS or dtype not in CTYPES:
        return False
    if op.cls in (Clip, InsideMask) and any(b is not None and not (np.ndim(b) == 0 and np.isfinite(b))
                                            for b in (op.options["low"], op.options["high"])):
        return False
    return all(v.dtype == d for v, d in zip(list(op.inputs) + [op.out], _operand_dtypes(op, dtype)))


def c_type(value):
    """A value's type in a kernel: T, or bool for a mask."""
    return "bool" if value.dtype == BOOL else "T"


class Group:
    """Consecutive elementwise ops over one shape, computed by one kernel.

    inputs: the values it reads from memory; outputs: the values it writes (read after it, or kept);
    conditions: where-conditions, passed as operands of the group's dtype.
    """

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, dtype
        self.ops, self.inputs, self.outputs, self.conditions = [], [], [], []
        self.name = None

    def covers(self, value):
        return any(op.out is value for op in self.ops)


def group_ops(loop_ops, persists):
    """The loop's ops as a list of single ops and Groups, in order.

    persists(value) -> whether a value must be written to memory whatever reads it (a state, a
    value the backward or the ops after the loop read). Views are left out (made where read).
    """
    readers = {}
    for op in loop_ops:
        for v in op.inputs:
            readers.setdefault(v.id, []).append(op)
    items, group = [], None
    for op in loop_ops:
        if is_view(op):
            continue
        joins = group is not None and fusable(op) and op.out.shape == group.shape and floating_dtype(op) == group.dtype
        if joins:
            for v in op.inputs:
                if v.op is not None and is_view(v.op) and group.covers(view_base(v)):
                    joins = False  # a view of a value still in registers: write it first
        if not joins:
            group = None
            if fusable(op):
                group = Group(op.out.shape, floating_dtype(op))
                items.append(group)
            else:
                items.append(op)
                continue
        group.ops.append(op)
    for item in items:
        if isinstance(item, Group):
            _operands(item, readers, persists)
    return [item if not isinstance(item, Group) or len(item.ops) > 1 else item.ops[0] for item in items]


def _operands(group, readers, persists):
    inside = {op.out.id for op in group.ops}
    seen = set()
    for op in group.ops:
        for v in op.inputs:
            if v.id not in inside and v.id not in seen:
                seen.add(v.id)
                group.inputs.append(v)
        if op.cls is Where:
            group.conditions.append(op)
    for op in group.ops:
        outside = [r for r in readers.get(op.out.id, ()) if r not in group.ops]
        if outside or persists(op.out):
            group.outputs.append(op.out)


def plain_store(name, dims, value):
    """The C line storing `value` at coordinates c{k} (k in dims) of output pointer `name`."""
    return f"{name}[{' + '.join(f'c{k} * {name}_s{k}' for k in dims)}] = {value};"


def kernel_body(group, store=plain_store):
    """The C body computing element i of every output (T is the group's C type); store(name, dims,
    value) writes each output (persistent_program's cluster kernels also publish some on chip)."""
    rank = max(len(group.shape), 1)
    lines, rest = [], "i"
    for k in reversed(range(rank)):
        lines.append(f"const long long c{k} = {rest} % d{k};" if k else f"const long long c0 = {rest};")
        if k:
            lines.append(f"const long long q{k} = {rest} / d{k};")
            rest = f"q{k}"
    names = {}

    def address(operand):
        return " + ".join(f"c{k} * {operand}_s{k}" for k in range(rank))

    for n, v in enumerate(group.inputs):
        names[v.id] = f"v{v.id}"
        lines.append(f"const {c_type(v)} v{v.id} = in{n}[{address(f'in{n}')}];")
    for n, op in enumerate(group.conditions):
        lines.append(f"const T w{op.out.id} = cond{n}[{address(f'cond{n}')}];")
    for op in group.ops:
        args = [names[v.id] for v in op.inputs] + ([f"w{op.out.id}"] if op.cls is Where else [])
        lines.append(f"const {c_type(op.out)} v{op.out.id} = {C_OPS[op.cls](args, op.options)};")
        names[op.out.id] = f"v{op.out.id}"
    for n, v in enumerate(group.outputs):
        lines.append(store(f"out{n}", range(rank), f"v{v.id}"))
    return "\n".join(lines)


def kernel_params(group):
    """The kernel's parameters after n: the group's dims, then each operand's pointer and strides."""
    rank = max(len(group.shape), 1)
    params = [f"const long long d{k}" for k in range(rank)]
    operands = ([("in", n, True, c_type(v)) for n, v in enumerate(group.inputs)] +
                [("cond", n, True, "T") for n in range(len(group.conditions))] +
                [("out", n, False, c_type(v)) for n, v in enumerate(group.outputs)])
    for kind, n, const, ctype in operands:
        params.append(f"{'const ' if const else ''}{ctype}* {kind}{n}")
        params += [f"const long long {kind}{n}_s{k}" for k in range(rank)]
    return params


def module_source(groups, ctype, target):
    """Every group's kernel in one source: target "cuda" (grid-stride loops) or "cpp" (a loop over i)."""
    lines = ["#include <cmath>\nusing namespace std;" if target == "cpp" else "", f"typedef {ctype} T;"]
    for group in groups:
        params = ", ".join(["const long long n"] + kernel_params(group))
        if target == "cuda":
            head = (f'extern "C" __global__ void {group.name}({params}) {{\n'
                    f"  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
                    f"       i += (long long)blockDim.x * gridDim.x) {{\n")
        else:
            head = f'extern "C" void {group.name}({params}) {{\n  for (long long i = 0; i < n; ++i) {{\n'
        body = "\n".join("    " + line for line in kernel_body(group).split("\n"))
        lines.append(f"{head}{body}\n  }}\n}}\n")
    return "\n".join(lines)


def strides(array, shape):
    """The element strides with which `array` (broadcastable to `shape`) is read at each of
    shape's coordinates: 0 along a dimension it is broadcast over."""
    rank = max(len(shape), 1)
    shape = tuple(shape) or (1,)
    lead = rank - array.ndim
    out = []
    for k in range(rank):
        j = k - lead
        if j < 0 or array.shape[j] == 1 and shape[k] != 1:
            out.append(0)
        else:
            out.append(array.strides[j] // array.itemsize)
    return out


class Launch:
    """A generated kernel called with the group's operands as arrays (views, broadcast operands):
    the launcher turns each into a pointer and its strides."""

    def __init__(self, group, function, call):
        self.shape = tuple(group.shape) or (1,)
        self.size = int(np.prod(self.shape))
        self.function, self.call = function, call

    def __call__(self, *arrays):
        args = [self.size] + list(self.shape)
        for array in arrays:
            args.append(array)
            args += strides(array, self.shape)
        self.call(self.function, args, self.size)


def cupy_launcher(groups, dtype):
    """{kernel name: Launch} for CuPy: one RawModule of the groups' kernels, compiled once."""
    cupy = backend.xp_for("cuda")
    module = cupy.RawModule(code=module_source(groups, CTYPES[np.dtype(dtype)], "cuda"))
    block = 128

    def call(function, args, size):
        converted = [np.int64(a) if isinstance(a, (int, np.integer)) else a for a in args]
        function((min((size + block - 1) // block, 65535),), (block,), tuple(converted))

    return {group.name: Launch(group, module.get_function(group.name), call) for group in groups}
