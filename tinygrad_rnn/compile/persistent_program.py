"""Persistent programs: every step of a segment of a compiled cell in one kernel launch.

The per-step CUDA program (cuda_program) launches a product and a few generated kernels per step
from Python; at long T a small cell is bound by those launches. Here the loop of each generated
forward and backward (numpy_program) becomes ONE kernel launch per segment; what runs before the
loop (the input projection over all steps) and after it (the gradients' products over all steps)
stays as it is. Inside the launch every block stays resident for the whole segment, and a step is
a sequence of phases, a grid-wide barrier after each:

  product  out (B, N) = A (B, K) @ W (K, N), A a value of the step, W a static (W_hh, its
           transpose in backward): block blk owns the columns [blk * Nb, (blk + 1) * Nb) of every
           product and keeps that slice of every W in shared memory for the whole launch (where
           all fit; else it reads them from global memory, cached in L2), stages A through shared
           memory in tiles of TK columns and sums its slice as the built-in persistent kernels do
           (nn/persistent_kernels: their tiling): each thread a register tile of outputs over a
           slice of every tile's k, the slices' sums added at the end;
  rows     the step's other work between two products: elementwise runs (the same Groups and C
           expressions as cuda_program), reductions over a row's features (LayerNorm's mean and
           variance), gradient chunks assembled, the states' and carries' bookkeeping. Block blk
           owns the batch rows blk, blk + nblocks, ...: every value it reads was written for the
           same row by itself, so a block barrier between these items is enough.

Values live where the NumPy program keeps them (numpy_program's ForwardCode / BackwardCode say
where: a state slot S{k}[j], a pre value V{id}[j], a buffer T{id} reused every step); a view is an
offset and strides into its base. Values written during the launch are read past L1 (volatile):
other blocks wrote them. A step that does anything else (an op with no lowering here, a row read
by another row's work) is refused with a reason, and the cell runs the per-step program instead.

The same source compiles as C++ with blocks and threads as loops (persistent_kernels' emulation):
the tests run every kernel that way on float64 against the NumPy program. cluster_program splits
the same kernels per thread-block cluster instead (Kernel's launch, blocks and barrier).
"""
import re
from functools import partial

import numpy as np

from ..nn import latency_model as LM
from ..nn import persistent_kernels as PK
from ..ops import Matmul, Mean, Sum
from .cuda_program import CTYPES, Group, c_type, floating_dtype, fusable, kernel_body, plain_store, strides
from .numpy_program import BackwardCode, ForwardCode, Source, _Section
from .plan import LOOP, is_view
from .rewrite import Assemble

THREADS = 256           # threads per block on the GPU
MAX_TILE = 512          # columns of A per shared-memory tile at most
REDUCTIONS = {Sum: "sum", Mean: "mean"}


class NotPersistent(Exception):
    """A step the persistent kernel cannot run; `reason` says why (the per-step program runs it)."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


# ----------------------------------------------------------------------------- where values live


class Operand:
    """A value as a kernel reads or writes it: array `name` (a kernel parameter), the slot of this
    step in it ("j", "j + 1", or None: the same for every step), the slot's size in elements, and
    the value's element `offset` and `steps` (strides over its own shape) within the slot."""

    def __init__(self, name, slot, slot_size, offset, steps, shape):
        self.name, self.slot, self.slot_size = name, slot, slot_size
        self.offset, self.steps, self.shape = offset, tuple(steps), tuple(shape)

    def pointer(self):
        at = [f"(long long)({self.slot}) * {self.slot_size}"] if self.slot else []
        at += [str(self.offset)] if self.offset else []
        return f"{self.name} + {' + '.join(at)}" if at else self.name

    def view(self, op):
        """The operand of view op's output (op.inputs[0] is this operand's value)."""
        return self._through(lambda a: op.cls.__new__(op.cls).forward(a, **op.options), op.out.shape)

    def index(self, index, shape):
        return self._through(lambda a: a[index], shape)

    def _through(self, make_view, shape):
        # the view applied to an array of element offsets: its values are the offsets it reads
        offsets = np.lib.stride_tricks.as_strided(np.arange(self.offset, self.offset + self.slot_size + 1),
                                                  self.shape, [8 * s for s in self.steps])
        view = make_view(offsets)
        if not np.shares_memory(view, offsets) and view.size > 1:
            raise NotPersistent("a view of the step copies its input")
        return Operand(self.name, self.slot, self.slot_size, int(view.flat[0]) if view.size else 0,
                       [s // 8 for s in view.strides], shape)

    def over(self, shape):
        """Strides reading this operand at each coordinate of `shape` (0 where broadcast)."""
        return strides(np.lib.stride_tricks.as_strided(np.zeros(1), self.shape, [8 * s for s in self.steps]), shape)


def _contiguous(shape):
    steps, size = [], 1
    for n in reversed(shape):
        steps.append(size)
        size *= n
    return steps[::-1]


def _elements(shape):
    return int(np.prod(shape, dtype=np.int64))


class Places:
    """Where the values of one generated function's loop live, asked of the NumPy program's code
    (ForwardCode or BackwardCode `.step`), and the kernel's array parameters that follow.

    in_loop(v): whether v is computed step by step (its views are made here, as offsets and strides).
    params: {parameter name: (driver expression or None for a constant, written in the launch)}.
    """

    _FORM = re.compile(r"^(\w+)(?:\[(j|j \+ 1)(?:, \.\.\.)?\])?$")
    _READ_ONLY = re.compile(r"X|G|[VFPB]\d+")   # inputs, pre values, statics: made before the launch

    def __init__(self, code, in_loop):
        self.code, self.in_loop = code, in_loop
        self.scratch = Source("def scratch():")
        self.section = _Section(self.scratch)
        self.section.new_iteration()
        self.params, self.constants, self.arrays, self.known = {}, {}, {}, {}
        self.types = {}   # parameter name -> its C element type where not T (a mask: bool)
        self.into = getattr(code, "into", {})

    def of(self, v):
        if v.id not in self.known:
            if v.id in self.into:
                whole, index = self.into[v.id]
                self.known[v.id] = self.of(whole).index(index, v.shape)
            elif v.op is not None and is_view(v.op) and self.in_loop(v):
                self.known[v.id] = self.of(v.op.inputs[0]).view(v.op)
            else:
                self.known[v.id] = self._placed(v)
        return self.known[v.id]

    def _placed(self, v):
        expression = self.code.step(v, self.section)
        locals_ = dict(line.strip().split(" = ", 1) for line in self.scratch.lines[1:])
        form = self._FORM.match(locals_.get(expression, expression))
        if form is None:
            raise NotPersistent(f"the step keeps {v} where a kernel cannot address it")
        name, slot = form.groups()
        value = self.scratch.namespace.get(name)
        if value is not None and not callable(value):              # a constant embedded in the program
            name = self._constant(value)
        elif re.fullmatch(r"[CD]\d+", name):                        # a carry: swapped each step (see Kernel)
            self.params.setdefault(f"{name}_", (name, True))
        elif self._READ_ONLY.fullmatch(name):
            self.params.setdefault(name, (f"xp.ascontiguousarray({name})", False))
        else:
            self.params.setdefault(name, (name, True))
        if c_type(v) != "T":
            self.types[name] = c_type(v)
        return Operand(name, slot, _elements(v.shape), 0, _contiguous(v.shape), v.shape)

    def _constant(self, array, key=None):
        """The parameter of a constant array; `key` names one made afresh each time it is asked for."""
        key = id(array) if key is None else key
        if key not in self.constants:
            name = f"K{len(self.constants)}"
            self.constants[key], self.arrays[name] = (name, array), array
            self.params[name] = (None, False)
        return self.constants[key][0]

    def written(self, operand):
        """Whether the launch writes the operand's array (then other blocks' writes are read past L1)."""
        return self.params.get(operand.name, self.params.get(f"{operand.name}_", (None, False)))[1]


# ----------------------------------------------------------------------------- the kernel


def _one_op_group(op):
    """A single elementwise op as a Group (group_ops leaves runs of one op ungrouped)."""
    group = Group(op.out.shape, floating_dtype(op))
    group.ops, group.outputs = [op], [op.out]
    group.inputs = list({v.id: v for v in op.inputs}.values())
    group.conditions = [op] if "condition" in op.options else []
    return group


def _coordinates(shape, counter, dims):
    """C lines setting c{k} for each k in dims (in C order over shape) from the flat `counter`."""
    lines, rest = [], counter
    for n, k in enumerate(reversed(dims)):
        if n == len(dims) - 1:
            lines.append(f"const long long c{k} = {rest};")
        else:
            lines.append(f"const long long c{k} = {rest} % {shape[k]}, q{k} = {rest} / {shape[k]};")
            rest = f"q{k}"
    return lines


class Store:
    """What a row item writes: `operand` over `shape`, always or only where a condition holds."""

    def __init__(self, operand, shape, conditional):
        self.operand, self.shape, self.conditional = operand, tuple(shape), conditional


class Kernel:
    """The C source of one generated function's loop as a persistent kernel (see the module's
    docstring): phases of ("product", op) and ("rows", [make_lines() -> C lines run for row b]).

    A row item's lines are made when it is added (placing its operands: the launch's parameters)
    and again when the source is written, so that its stores can do more than write global memory
    once every phase is known (cluster_program publishes the values a product reads on chip);
    `stores` holds each rows phase's Stores."""

    def __init__(self, name, places, batch, ctype, direction="forward"):
        self.name, self.places, self.B, self.ctype, self.direction = name, places, batch, ctype, direction
        self.phases, self.products, self.plan = [], [], None
        self.stores, self._recording, self._phase, self._published = {}, None, None, {}

    # --- operands
    def declare(self, name, operand, shape, output=False, ctype="T", when=None):
        """A pointer `name` to the operand (of elements `ctype`) and its strides name_s{k} over `shape`;
        a value other blocks wrote during the launch is read past L1 (volatile). An output is written
        through store(name, ...), only where the C condition `when` holds if given."""
        steps = operand.over(shape) if shape else [0]
        written = self.places.written(operand)
        if written:
            self.check_row_local(operand, shape, steps)
        if output:
            if self._recording is not None:   # the item is being added: the phases after it are not known yet
                self._recording.append(Store(operand, shape, when is not None))
            self._published[name] = [] if self._recording is not None else self.published(operand, shape)
        kind = f"{ctype}*" if output else (f"const volatile {ctype}*" if written else f"const {ctype}*")
        return [f"{kind} const {name} = {operand.pointer()};",
                "const long long " + ", ".join(f"{name}_s{k} = {s}" for k, s in enumerate(steps)) + ";"]

    def store(self, name, dims, value):
        """C lines writing `value` at coordinates c{k} (k in dims) of output pointer `name`, and
        publishing it where published() said (declare)."""
        extra = self._published.get(name)
        if not extra:
            return plain_store(name, dims, value)
        return "{ const T v = " + value + "; " + plain_store(name, dims, "v") + " " + \
            " ".join(publish(dims, "v") for publish in extra) + " }"

    def published(self, operand, shape):
        """[publish(dims, value) -> C] for the copies a store to operand over shape makes besides
        global memory, in the phase being written (self._phase): none in a persistent kernel."""
        return []

    def check_row_local(self, operand, shape, steps):
        """Row phases give each block whole batch rows: a value written in the launch must be read
        and written in the row being computed."""
        row = operand.slot_size // self.B if operand.slot_size % self.B == 0 else 0
        inner = [(n - 1) * s for n, s in zip(shape[1:], steps[1:])]
        low, high = operand.offset + sum(min(d, 0) for d in inner), operand.offset + sum(max(d, 0) for d in inner)
        if not (shape and shape[0] == self.B and row and steps[0] == row and 0 <= low and high < row):
            raise NotPersistent(f"a value of shape {tuple(shape)} is read across the batch rows")

    # --- phases
    def rows(self, make_lines):
        """Add a row item: make_lines() -> its C lines for row b (see the class's docstring)."""
        if not self.phases or self.phases[-1][0] != "rows":
            self.phases.append(("rows", []))
        self.phases[-1][1].append(make_lines)
        self._recording = self.stores.setdefault(len(self.phases) - 1, [])
        try:
            make_lines()
        finally:
            self._recording = None

    def item(self, item):
        """Add one of the loop's items: a Group, a product, a reduction, an Assemble."""
        if isinstance(item, Group):
            return self.rows(lambda: self.group(item))
        op = item
        if op.cls is Matmul:
            return self.product(op)
        if op.cls in REDUCTIONS:
            return self.rows(lambda: self.reduction(op))
        if op.cls is Assemble:
            return self.rows(lambda: self.assemble(op))
        if fusable(op):
            group = _one_op_group(op)
            return self.rows(lambda: self.group(group))
        raise NotPersistent(f"op {op.name} has no lowering in a persistent kernel")

    def group(self, group):
        shape = tuple(group.shape)
        if not shape or shape[0] != self.B:
            raise NotPersistent(f"an elementwise run of shape {shape} is not over the batch rows")
        lines = [f"// {', '.join(op.name for op in group.ops)}",
                 "const long long " + ", ".join(f"d{k} = {n}" for k, n in enumerate(shape)) + ";"]
        for n, v in enumerate(group.inputs):
            lines += self.declare(f"in{n}", self.places.of(v), shape, ctype=c_type(v))
        for n, op in enumerate(group.conditions):
            condition = np.broadcast_to(np.asarray(op.options["condition"], group.dtype), op.out.shape)
            constant = self.places._constant(np.ascontiguousarray(condition), key=("condition", op.out.id))
            lines += self.declare(f"cond{n}", Operand(constant, None, condition.size, 0, _contiguous(shape), shape),
                                  shape)
        for n, v in enumerate(group.outputs):
            lines += self.declare(f"out{n}", self.places.of(v), shape, output=True, ctype=c_type(v))
        return lines + self.each_element(_elements(shape[1:]), kernel_body(group, self.store).split("\n"), flat="i")

    def each_element(self, count, body, flat):
        """The row's `count` elements spread over the block's threads: e, and `flat` = b * count + e."""
        head = f"const long long {flat} = (long long)b * {count} + e;" if flat else ""
        return ["FOR_THREADS(tid) {", f"  for (long long e = tid; e < {count}; e += nthreads) {{"] + \
            [f"    {line}" for line in [head] + body if line] + ["  }", "}"]

    def reduction(self, op):
        x = op.inputs[0]
        shape, axis = tuple(x.shape), op.options.get("axis")
        axes = tuple(range(len(shape))) if axis is None else tuple(
            a % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,)))
        if not shape or 0 in axes or x.dtype not in CTYPES:
            raise NotPersistent(f"op {op.name} reduces over the batch rows")
        kept = [k for k in range(1, len(shape)) if k not in axes]
        keep_shape = tuple(1 if k in axes else n for k, n in enumerate(shape))
        out = self.places.of(op.out)
        out = out._through(lambda a: a.reshape(keep_shape), keep_shape)
        n = _elements([shape[k] for k in axes])
        kind = REDUCTIONS[op.cls]
        body = (["const long long c0 = b;"] + _coordinates(shape, "e", kept) + ["T acc = T(0);",
                f"for (long long r = 0; r < {n}; ++r) {{"] +
                ["  " + line for line in _coordinates(shape, "r", list(axes))] +
                ["  const T x = in0[" + " + ".join(f"c{k} * in0_s{k}" for k in range(len(shape))) + "];",
                 "  acc = r == 0 ? x : acc + x;", "}",
                 self.store("out0", [0] + kept, f"acc / T({n})" if kind == "mean" else "acc")])
        lines = [f"// {op.name} over axes {axes}"] + self.declare("in0", self.places.of(x), shape)
        return lines + self.declare("out0", out, shape, output=True) + self.each_element(
            _elements([shape[k] for k in kept]), body, flat=None)

    def copy(self, destination, sources, shape, when=None, value=None):
        """destination = value(the sources' elements) over a row (by default the one source's
        element, or zero without sources), only where the C condition `when` holds."""
        rank = len(shape)
        lines = self.declare("out0", destination, shape, output=True, when=when)
        for n, source in enumerate(sources):
            lines += self.declare(f"in{n}", source, shape)
        elements = [f"in{n}[{' + '.join(f'c{k} * in{n}_s{k}' for k in range(rank))}]" for n in range(len(sources))]
        value = value(elements) if value else (elements[0] if elements else "T(0)")
        body = ["const long long c0 = b;"] + _coordinates(shape, "e", list(range(1, rank))) + \
            [self.store("out0", range(rank), value)]
        loop = self.each_element(_elements(shape[1:]), body, flat=None)
        return ["{"] + ["  " + line for line in lines + ([f"if ({when}) {{"] + loop + ["}"] if when else loop)] + ["}"]

    def assemble(self, op):
        whole = self.places.of(op.out)
        lines = [] if op.options["covered"] else self.copy(whole, [], op.out.shape)
        for piece, index in zip(op.inputs, op.options["indexes"]):
            if piece.id not in self.places.into:
                lines += self.copy(whole.index(index, piece.shape), [self.places.of(piece)], piece.shape)
        return [f"// {op.name}"] + lines

    def product(self, op):
        a, w = op.inputs
        weight = self.places.of(w)
        if len(a.shape) != 2 or len(w.shape) != 2 or self.places.in_loop(w) or a.shape[0] != self.B or \
                weight.slot or weight.offset or weight.steps != (w.shape[1], 1) or op.out.dtype not in CTYPES:
            raise NotPersistent("a product other than (rows of the step) @ (a static matrix)")
        self.products.append((op, weight))
        self.phases.append(("product", op))


    def tilings(self):
        """[PK.Tiling] of each product on this kernel's plan: how a block's threads share its outputs."""
        rows, column_blocks = self.share(self.plan)
        return product_tilings([(op.inputs[0].shape[1], op.out.shape[1]) for op, _ in self.products], rows,
                               column_blocks, self.plan.TK, self.plan.threads, self.plan.min_chunk)

    def product_lines(self, q, op, weight):
        """The block's columns [n0, n0 + nb) of product q (its column block cb) over the rows
        [row0, row0 + rows), as the built-in persistent kernels sum theirs: A staged in tiles of TK
        columns, the weights from the block's resident slice (or global memory); each thread sums a
        register tile of TR x TC outputs over one of KS slices of every staged tile (tilings()), its
        k loop unrolled UNROLL times; the slices' sums are added through shared memory at the end.
        Tiles and slices beyond the threads take further rounds (A staged again where K takes
        several tiles)."""
        (B, K), N = op.inputs[0].shape, op.out.shape[1]
        TR, TC, KS = self.tilings()[q]
        UNROLL = PK.PERSISTENT_UNROLL
        lines = [f"// {op.name}: ({B} x {K}) @ ({K} x {N}), register tiles of {TR} x {TC}, {KS} slices of k",
                 f"const int n0 = cb * Nb{q}, nb = {N} - n0 < Nb{q} ? {N} - n0 : Nb{q};",
                 "if (nb > 0 && rows > 0) {"]
        each_tile = ["#pragma unroll", f"for (int r = 0; r < {TR}; ++r) {{", "  #pragma unroll",
                     f"  for (int c = 0; c < {TC}; ++c) {{", "@", "  }", "}"]

        def over_tile(*body):
            return [line for template in each_tile for line in (["    " + b for b in body] if template == "@" else [template])]

        def multiply(k):   # the tile's multiply-adds for k of the staged tile
            return ["{", f"  const T* const ak = As + ({k}) * SA;",
                    f"  const T* const wk = w + (long long)(k0 + {k}) * w_s;", f"  T a_r[{TR}], w_c[{TC}];",
                    "  #pragma unroll", f"  for (int r = 0; r < {TR}; ++r) a_r[r] = ak[ar[r]];",
                    "  #pragma unroll", f"  for (int c = 0; c < {TC}; ++c) w_c[c] = wk[wc[c]];"] + \
                ["  " + line for line in over_tile("ACC(tid, r, c) += a_r[r] * w_c[c];")] + ["}"]

        tile_of_item = ["const int item = item0 + tid, ks = item / groups, rq = item % groups / CQ, cq = item % groups % CQ;"]
        # the tile's rows rq * TR + r and columns cq + c * CQ (adjacent threads, adjacent columns),
        # clamped into the block's share: a ragged tile repeats its last row or column, never stored
        clamped = [f"int ar[{TR}];", f"long long wc[{TC}];", "#pragma unroll",
                   f"for (int r = 0; r < {TR}; ++r) ar[r] = rq * {TR} + r < rows ? rq * {TR} + r : rows - 1;",
                   "#pragma unroll", f"for (int c = 0; c < {TC}; ++c) wc[c] = cq + c * CQ < nb ? cq + c * CQ : nb - 1;"]
        sums = "out[(long long)(row0 + row) * out_s0 + (n0 + col) * out_s1]" if KS == 1 else \
            "Ps[((long long)ks * rows + row) * nb + col]"
        body = self.declare("a", self.places.of(op.inputs[0]), (B, K)) + \
            self.declare("out", self.places.of(op.out), (B, N), output=True) + [
            f"const T* const w = resident ? shared + w_at{q} : {weight.name} + n0;",
            f"const long long w_s = resident ? Nb{q} : {N};",
            "const int SA = rows | 1;  // odd: a tile's column stores spread over the banks",
            "T* const As = shared + (resident ? w_total : 0);",
            "T* const Ps = As + (long long)TK * SA;  // the slices' sums",
            f"const int CQ = (nb + {TC - 1}) / {TC}, groups = (rows + {TR - 1}) / {TR} * CQ, workers = groups * {KS};",
            "DECLARE_ACC(T);",
            "for (int item0 = 0; item0 < workers; item0 += nthreads) {",
            "  FOR_THREADS(tid) {"] + ["    " + line for line in over_tile("ACC(tid, r, c) = T(0);")] + [
            "  }",
            f"  for (int k0 = 0; k0 < {K}; k0 += TK) {{",
            f"    const int tk = {K} - k0 < TK ? {K} - k0 : TK;",
            f"    if (item0 == 0 || {K} > TK) {{  // a later round stages A again where K takes several tiles",
            "      BLOCK_SYNC();  // the last tile was read",
            "      FOR_THREADS(tid) {",
            "        for (int e = tid; e < rows * tk; e += nthreads) {",
            "          const int r = e / tk, kk = e % tk;",
            f"          As[kk * SA + r] = {self.operand_load(q, K, 'a[(long long)(row0 + r) * a_s0 + (k0 + kk) * a_s1]')};",
            "        }",
            "      }",
            "      BLOCK_SYNC();",
            "    }",
            "    FOR_THREADS(tid) {",
            "      if (item0 + tid < workers) {"] + ["        " + line for line in tile_of_item + clamped + [
            f"const int chunk = (tk + {KS - 1}) / {KS}, k_end = (ks + 1) * chunk < tk ? (ks + 1) * chunk : tk;",
            "int kk = ks * chunk;",
            f"for (; kk + {UNROLL} <= k_end; kk += {UNROLL}) {{",
            "  #pragma unroll", f"  for (int u = 0; u < {UNROLL}; ++u)"] +
            ["  " + line for line in multiply("kk + u")] + ["}", "for (; kk < k_end; ++kk)"] + multiply("kk")] + [
            "      }",
            "    }",
            "  }",
            "  FOR_THREADS(tid) {",
            "    if (item0 + tid < workers) {"] + ["      " + line for line in tile_of_item + over_tile(
                f"const int row = rq * {TR} + r, col = cq + c * CQ;",
                f"if (row < rows && col < nb) {sums} = ACC(tid, r, c);")] + [
            "    }",
            "  }",
            "}"]
        if KS > 1:  # each output's slices added in order
            body += ["BLOCK_SYNC();", "FOR_THREADS(tid) {",
                     "  for (int p = tid; p < rows * nb; p += nthreads) {",
                     "    T sum = Ps[p];",
                     f"    for (int ks = 1; ks < {KS}; ++ks) sum += Ps[(long long)ks * rows * nb + p];",
                     "    out[(long long)(row0 + p / nb) * out_s0 + (n0 + p % nb) * out_s1] = sum;",
                     "  }", "}"]
        return lines + ["  " + line for line in body] + ["}"]

    def operand_load(self, q, K, load):
        """The C expression of A[row0 + r, k0 + kk] of product q (K columns), `load` from global memory."""
        return load

    def shared_layout(self):
        """C lines placing more in a block's shared memory (after its weights, tile and sums)."""
        return []

    def plan_needs(self):
        """What the plan must know besides the products, as plan_for's keyword arguments."""
        return {}

    # How the launch splits the work (cluster_program splits it per cluster of blocks instead): block
    # blk owns column block cb = blk of every product over all the batch rows, rows blk, blk +
    # nblocks, ... in the row phases, and all blocks wait at a grid barrier after each phase.
    QUALIFIER = "KERNEL"
    SYNC_PARAMS = ("unsigned int* counter", "unsigned int* failed")
    COLUMN_BLOCKS = "nblocks"   # the blocks that split a product's columns (and the rows' work)

    @property
    def plan_ints(self):
        return PLAN_INTS

    def share(self, plan):
        """(rows, column blocks): a block's rows of each product, and the blocks its columns split over."""
        return self.B, plan.blocks

    def launch(self, lines):
        """The body of the launch around the weights' loading and the steps: it sets row0 and rows,
        the batch rows its blocks work on."""
        return [f"const int row0 = 0, rows = {self.B};", "unsigned int barriers = 0;"] + lines

    def blocks(self, lines):
        """`lines` run by every block, with cb (its column block) and shared (its shared memory)."""
        return ["FOR_BLOCKS(blk) {", "  const int cb = blk;", "  T* const shared = BLOCK_SHARED(T, blk, per_block);"] + \
            ["  " + line for line in lines] + ["}"]

    def barrier(self):
        return "grid_barrier(counter, ++barriers * nblocks, failed);"

    BARRIER_FIGURE = "grid_barrier"   # the latency model's figure for barrier()

    def on_chip(self):
        """{q: ...} of the products whose operand A is staged from on-chip memory (none here)."""
        return {}

    def step_phases(self):
        """The step's phases as the latency model reads them: ("product", K, N, operand on chip,
        tiling) or ("rows", items)."""
        on_chip, tilings = self.on_chip(), self.tilings()
        index = {id(op): q for q, (op, _) in enumerate(self.products)}
        return [("rows", len(content)) if kind == "rows" else
                ("product", content.inputs[0].shape[1], content.out.shape[1], index[id(content)] in on_chip,
                 tilings[index[id(content)]])
                for kind, content in self.phases]

    def step_terms(self, itemsize):
        """{term: microseconds} of one step on the plan, as the latency model estimates it."""
        return LM.compiled_step_terms(self.step_phases(), self.plan, itemsize, *self.share(self.plan),
                                      barrier=self.BARRIER_FIGURE)

    def source(self, direction):
        """The kernel's C source; direction "forward" walks j up, "backward" down."""
        places = self.places
        params = ["const int L"]
        for name, (_, written) in places.params.items():
            params.append(f"{'' if written else 'const '}{places.types.get(name, 'T')}* {name}")
        params += [f"const int {n}" for n in self.plan_ints] + list(self.SYNC_PARAMS)
        lines = [f"{self.QUALIFIER} {self.name}({', '.join(params)}) {{"]
        top = [f"const int Nb{q} = ({op.out.shape[1]} + {self.COLUMN_BLOCKS} - 1) / {self.COLUMN_BLOCKS};"
               for q, (op, _) in enumerate(self.products)]
        at = "0"
        for q, (op, _) in enumerate(self.products):
            top.append(f"const long long w_at{q} = {at};")
            at = f"w_at{q} + (long long){op.inputs[0].shape[1]} * Nb{q}"
        top += [f"const long long w_total = {at};", "DECLARE_SHARED(T, per_block);"] + self.shared_layout()
        body = []
        if self.products:  # every block's slices of the weights, resident for the whole launch
            load = ["FOR_THREADS(tid) {"]
            for q, (op, weight) in enumerate(self.products):
                K, N = op.inputs[0].shape[1], op.out.shape[1]
                load += [f"  for (long long e = tid; e < (long long){K} * Nb{q}; e += nthreads) {{",
                         f"    const long long k = e / Nb{q}, n = cb * Nb{q} + e % Nb{q};",
                         f"    shared[w_at{q} + e] = n < {N} ? {weight.name}[k * {N} + n] : T(0);", "  }"]
            body += ["if (resident) {"] + ["  " + line for line in self.blocks(load + ["}"])] + \
                ["  BLOCK_SYNC();", "}"]
        step = ["const int j = s;" if direction == "forward" else "const int j = L - 1 - s;"]
        for name in places.params:
            if name.endswith("_"):  # a carry: C is read, D written; they swap each step
                other = ("D" if name[0] == "C" else "C") + name[1:]
                step.append(f"T* const {name[:-1]} = s % 2 ? {other} : {name};")
        for n, (kind, content) in enumerate(self.phases):
            if kind == "product":
                q = next(q for q, (op, _) in enumerate(self.products) if op is content)
                work = self.product_lines(q, *self.products[q])
            else:
                work = [f"for (int b = row0 + cb; b < row0 + rows; b += {self.COLUMN_BLOCKS}) {{",
                        f"  const bool ended = M[(long long)j * {self.B} + b] == T(0);"]
                self._phase = n
                for make_lines in content:
                    work += ["  {"] + ["    " + line for line in make_lines()] + ["  }", "  BLOCK_SYNC();"]
                work.append("}")
            step += self.blocks(work)
            last = n == len(self.phases) - 1
            step.append(("if (s + 1 < L) " if last else "") + self.barrier())
        body += ["for (int s = 0; s < L; ++s) {"] + ["  " + line for line in step] + ["}"]
        lines += ["  " + line for line in top + self.launch(body)]
        return "\n".join(lines + ["}"])


PLAN_INTS = ("nblocks", "nthreads", "TK", "resident", "per_block")


class Plan:
    """How a launch splits the work: `blocks` blocks of `threads` threads, TK columns of A per tile,
    the weights' slices resident in shared memory or not, `shared` bytes of it per block; a slice
    of k is min_chunk k of a tile at least (product_tilings)."""

    def __init__(self, blocks, threads, TK, resident, elements, itemsize, min_chunk=PK.PERSISTENT_MIN_CHUNK):
        self.blocks, self.threads, self.TK, self.resident = blocks, threads, TK, resident
        self.elements, self.shared, self.min_chunk = elements, elements * itemsize, min_chunk

    def ints(self):
        return (self.blocks, self.threads, self.TK, int(self.resident), self.elements)

    def __repr__(self):
        return (f"Plan(blocks={self.blocks}, threads={self.threads}, tile={self.TK}, resident={self.resident}, "
                f"shared={self.shared})")


def product_tilings(products, rows, column_blocks, TK, threads, min_chunk=PK.PERSISTENT_MIN_CHUNK):
    """[PK.Tiling] of products [(K, N)] whose columns are split over column_blocks blocks, each on
    `rows` rows with `threads` threads and tiles of TK k: the built-in persistent kernels' tiling."""
    return [PK.product_tiling(rows, -(-N // column_blocks), TK, threads, min_chunk) for _, N in products]


def shared_elements(products, batch, blocks, TK, resident, threads=THREADS, min_chunk=PK.PERSISTENT_MIN_CHUNK):
    """Shared memory of one block in elements: its weight slices (if resident), a tile of A (an odd
    row stride), the sums of each slice of k. products: [(K, N)]; the kernel lays them out in this
    order (Kernel.source)."""
    slices = [-(-N // blocks) for _, N in products]
    weights = sum(K * nb for (K, _), nb in zip(products, slices))
    sums = [tiling.slices * batch * nb if tiling.slices > 1 else 0 for tiling, nb in
            zip(product_tilings(products, batch, blocks, TK, threads, min_chunk), slices)]
    return (weights if resident else 0) + TK * (batch | 1) + max(sums, default=0)


def make_plan(products, batch, itemsize, multiprocessors, shared_limit, threads=THREADS):
    """The plan for products [(K, N)] over `batch` rows on a GPU with this many multiprocessors and
    bytes of shared memory per block; None where a block's share does not fit. One block per
    multiprocessor at most (the grid barrier needs them all resident)."""
    blocks = max(1, min(multiprocessors, max([batch] + [N for _, N in products])))
    tile = min(MAX_TILE, max([K for K, _ in products], default=1))
    for resident in (True, False):
        TK = tile
        while TK >= 1:
            elements = shared_elements(products, batch, blocks, TK, resident, threads)
            if elements * itemsize <= shared_limit:
                return Plan(blocks, threads, TK, resident, elements, itemsize)
            TK //= 2
    return None


# ----------------------------------------------------------------------------- the program


def _state_operand(name, slot, shape):
    return Operand(name, slot, _elements(shape), 0, _contiguous(shape), shape)


def _items(loop_ops, groups):
    """The loop's items in order: each Group once (where its first op was), every other op but views."""
    owner = {id(op): group for group in groups for op in group.ops}
    items, seen = [], set()
    for op in loop_ops:
        group = owner.get(id(op))
        if group is None and not is_view(op):
            items.append(op)
        elif group is not None and id(group) not in seen:
            seen.add(id(group))
            items.append(group)
    return items


def forward_kernel(name, code, groups, batch, ctype, kernel_type=Kernel):
    """The forward loop of `code` (a ForwardCode whose source was generated with `groups`)."""
    plan = code.plan
    places = Places(code, lambda v: plan.klass.get(v.id) == LOOP)
    places.params["M"] = ("row_mask(rows, L)", False)
    kernel = kernel_type(name, places, batch, ctype, "forward")
    for item in _items(plan.loop_ops, groups):
        kernel.item(item)
    for k, v in enumerate(code.graph.outputs):   # the new states; a sequence that has ended keeps its state
        places.params.setdefault(f"S{k}", (f"S{k}", True))
        after, before = _state_operand(f"S{k}", "j + 1", v.shape), _state_operand(f"S{k}", "j", v.shape)
        if code.output_slot.get(v.id) != k:
            kernel.rows(partial(kernel.copy, after, [places.of(v)], v.shape))
        kernel.rows(partial(kernel.copy, after, [before], v.shape, when="ended"))
    return kernel


def backward_kernel(name, code, groups, batch, ctype, kernel_type=Kernel):
    """The backward loop of `code` (a BackwardCode whose source was generated with `groups`)."""
    plan, fplan = code.plan, code.fwd.plan
    places = Places(code, lambda v: LOOP in (plan.klass.get(v.id), fplan.klass.get(v.id)))
    places.params["M"] = ("row_mask(rows, L)", False)
    shapes = [s.shape for s in fplan.graph.states]
    carries = [_state_operand(f"C{k}", None, shape) for k, shape in enumerate(shapes)]
    news = [_state_operand(f"D{k}", None, shape) for k, shape in enumerate(shapes)]
    keeps = [_state_operand(f"KP{k}", None, shape) for k, shape in enumerate(shapes)]
    for k in range(len(shapes)):
        places.params[f"C{k}_"], places.params[f"D{k}_"] = (f"C{k}", True), (f"D{k}", True)
        places.params[f"KP{k}"] = (f"xp.empty_like(C{k})", True)
    places.params["seed0"] = ("seed0", True)
    places.params["G"] = ("xp.ascontiguousarray(G)", False)
    kernel = kernel_type(name, places, batch, ctype, "backward")
    # the seeds: the output's gradient joins the first carry; a sequence that has ended passes its carries by
    for k, shape in enumerate(shapes):
        kernel.rows(partial(kernel.copy, keeps[k], [carries[k]], shape, when="ended"))
    kernel.rows(partial(kernel.copy, _state_operand("seed0", None, shapes[0]), [carries[0], _state_operand("G", "j", shapes[0])],
                            shapes[0], value=lambda ins: f"ended ? T(0) : {ins[0]} + {ins[1]}"))
    for k in range(1, len(shapes)):
        kernel.rows(partial(kernel.copy, carries[k], [], shapes[k], when="ended"))
    for seed in plan.seeds:
        if seed.id in plan.saved:
            places.params.setdefault(f"SB{seed.id}", (f"SB{seed.id}", True))
            kernel.rows(partial(kernel.copy, _state_operand(f"SB{seed.id}", "j", seed.shape), [places.of(seed)], seed.shape))
    for item in _items(plan.loop_ops, groups):
        kernel.item(item)
    for k, v in enumerate(plan.carries):
        if v is None:
            kernel.rows(partial(kernel.copy, news[k], [], shapes[k]))
        elif code.carry_slot.get(v.id) != k:
            kernel.rows(partial(kernel.copy, news[k], [places.of(v)], shapes[k]))
        kernel.rows(partial(kernel.copy, news[k], [keeps[k]], shapes[k], when="ended"))
    return kernel


class Launch:
    """A persistent kernel as the generated driver calls it: launch(L, arrays...); `function` and
    `plan` are set once the module is built."""

    def __init__(self, name):
        self.name, self.function, self.plan = name, None, None

    def __call__(self, *args):
        self.function(*args, plan=self.plan)


def _splice(src, header, launch, kernel, swap_carries):
    """Replace the generated function's loop (from `header`) by one launch of `kernel`."""
    lines = [line for line in src.lines if not re.match(r"^    full\d+ = ", line)]   # spread operands: unused
    start = lines.index(header)
    end = start + 1
    while end < len(lines) and lines[end].startswith("        "):
        end += 1
    args = ["L"]
    for name, (expression, _) in kernel.places.params.items():
        if expression is None:
            expression = src.name(src.namespace["xp"].asarray(kernel.places.arrays[name]), "const")
        args.append(expression)
    call = [f"    {src.name(launch, 'persistent')}({', '.join(args)})"]
    if swap_carries:  # the launch swapped C and D each step, as the loop did
        n = sum(1 for name in kernel.places.params if name.startswith("C") and name.endswith("_"))
        call += ["    if L % 2:", "        " + ", ".join(f"C{k}, D{k}" for k in range(n)) + " = " +
                 ", ".join(f"D{k}, C{k}" for k in range(n))]
    src.lines = lines[:start] + call + lines[end:]


def _row_mask(xp, batch, dtype):
    """row_mask(rows, L) -> (L, B): 0 where a sequence has ended by step j (rows[j]), else 1."""
    def row_mask(rows, L):
        mask = xp.ones((L, batch), dtype)
        for j, ended in enumerate(rows):
            if ended is not None:
                mask[j, ended] = 0
        return mask
    return row_mask


class PersistentProgram:
    """A NumpyProgram's forward and backwards with each loop one persistent kernel launch.

    build(source, names) -> {name: kernel(*args, plan=)}: the kernels compiled (CuPy, or C++ in the
    tests); plan_for(products [(K, N)], batch, itemsize, **kernel.plan_needs()) -> Plan or None.
    Raises NotPersistent.
    cluster_program.ClusterProgram is the same program with the kernels of another kernel_type.
    """

    kernel_type = Kernel

    def __init__(self, fplan, bplans, xp, build, plan_for):
        graph = fplan.graph
        batch, dtype = graph.x.shape[0], np.dtype(graph.states[0].dtype)
        if dtype not in CTYPES:
            raise NotPersistent(f"its dtype is {dtype}")
        ctype = CTYPES[dtype]
        self.fplan, self.bplans = fplan, bplans
        groups = []
        recording = ForwardCode(fplan, record=True, xp=xp, kernels=groups)
        functions = []   # (name, Source, kernel, loop header, swaps carries)
        for name, bplan in bplans.items():  # first: they say which forward values they read
            code = BackwardCode(bplan, recording)
            first = len(groups)
            src = code.source()
            kernel = backward_kernel(f"tinygrad_rnn_backward_{name}", code, groups[first:], batch, ctype,
                                     self.kernel_type)
            functions.append((f"backward_{name}", "backward", src, kernel, "    for j in range(L - 1, -1, -1):"))
        for record in (True, False):
            code = recording if record else ForwardCode(fplan, record=False, xp=xp, kernels=groups)
            first = len(groups)
            src = code.source()
            if record:
                code.export_lines(src)
            kernel = forward_kernel(f"tinygrad_rnn_forward{'' if record else '_only'}", code, groups[first:],
                                    batch, ctype, self.kernel_type)
            functions.append(("forward" if record else "forward_only", "forward", src, kernel,
                              "    for j in range(L):"))
        self.kernels, self.launches, compiled = [], {}, {}
        for name, direction, src, kernel, header in functions:
            products = [(op.inputs[0].shape[1], op.out.shape[1]) for op, _ in kernel.products]
            launch = Launch(kernel.name)
            launch.plan = kernel.plan = plan_for(products, batch, dtype.itemsize, **kernel.plan_needs())
            if launch.plan is None:
                raise NotPersistent(f"a block's share of the products {products} does not fit in shared memory")
            src.namespace["row_mask"] = _row_mask(xp, batch, dtype)
            _splice(src, header, launch, kernel, direction == "backward")
            compiled[name] = src.compile(direction)
            self.kernels.append((kernel, direction))
            self.launches[kernel.name] = launch
        self.kernel_source = "\n\n".join(kernel.source(direction) for kernel, direction in self.kernels)
        built = build(lambda emulate: self.module_source(ctype, emulate), list(self.launches))
        for name, function in built.items():
            self.launches[name].function = function
        self.forward, self.forward_source = compiled["forward"]
        self.forward_only, self.forward_only_source = compiled["forward_only"]
        self.backward = {name: compiled[f"backward_{name}"][0] for name in bplans}
        self.backward_source = "\n".join(f"# backward ({name})\n{compiled[f'backward_{name}'][1]}" for name in bplans)

    def step_terms(self, backward):
        """{"forward": terms, "backward": terms}: the latency model's estimate of one step of the
        forward and of the backward named `backward` ("loop" or "bulk", as drive.backward_kind picks)."""
        kernels = {kernel.name: kernel for kernel, _ in self.kernels}
        itemsize = np.dtype(self.fplan.graph.states[0].dtype).itemsize
        return {"forward": kernels["tinygrad_rnn_forward"].step_terms(itemsize),
                "backward": kernels[f"tinygrad_rnn_backward_{backward}"].step_terms(itemsize)}

    def step_us(self, backward):
        """The model's microseconds of one step, forward and backward averaged (as latency_model.step_us)."""
        return sum(sum(terms.values()) for terms in self.step_terms(backward).values()) / 2

    def module_source(self, ctype, emulate):
        return module_source(self.kernels, ctype, emulate)

    @property
    def source(self):
        return f"{self.forward_source}\n{self.backward_source}\n/* persistent kernels */\n{self.kernel_source}"


def module_source(kernels, ctype, emulate):
    """The kernels in one source: CUDA, or C++ with blocks and threads as loops (emulate=True)."""
    head = "#include <cmath>\nusing namespace std;" if emulate else ""
    return "\n".join([head, PK.persistent_preamble(emulate), f"typedef {ctype} T;"] +
                     [k.source(d) for k, d in kernels])


def device_plan(products, batch, itemsize):
    """The plan for the current GPU (its multiprocessors and opt-in shared memory per block)."""
    return make_plan(products, batch, itemsize, PK.multiprocessor_count(), PK.shared_memory_limit())


def cupy_build(source, names):
    """{name: kernel(*args, plan=)} for CuPy: one RawModule of the CUDA source(emulate=False), each
    kernel behind persistent_kernels' launcher (the shared-memory opt-in, the barrier's counter);
    a barrier that timed out raises with the next value read from the GPU (backend.check)."""
    from .. import backend
    cupy = backend.xp_for("cuda")
    module = cupy.RawModule(code=source(False))
    failed = cupy.zeros(1, np.uint32)   # once set, later barriers wait no more: the check raises

    def launcher(name):
        launch = PK.PersistentLaunch(module.get_function(name))

        def run(*args, plan):
            launch(*args, plan=plan, failed=failed)
            backend.check(failed != 0, lambda: RuntimeError(
                f"a persistent kernel's blocks were not all resident on the GPU ({plan}), so its results "
                f"are wrong; set TINYGRAD_RNN_CUDA_STEPS=elementwise to run step by step"))
        return run
    return {name: launcher(name) for name in names}


def choose_program(fplan, bplans, xp, launcher, build, plan_for=device_plan):
    """On a GPU: the persistent program where the step fits one (TINYGRAD_RNN_CUDA_STEPS auto,
    cluster or persistent, as nn/fused.make_steps reads it for the built-in cells), else the
    per-step program, which says why in `per_step_reason`. cluster_program.choose_program asks
    here where it does not take the cluster program."""
    from ..nn import fused
    from .numpy_program import NumpyProgram
    reason = f"TINYGRAD_RNN_CUDA_STEPS={fused.CUDA_STEPS}"
    if fused.CUDA_STEPS in ("auto", "cluster", "persistent"):
        try:
            return PersistentProgram(fplan, bplans, xp, build, plan_for)
        except NotPersistent as refused:
            reason = refused.reason
    program = NumpyProgram(fplan, bplans, xp=xp, launcher=launcher)
    program.per_step_reason = reason
    return program
