"""Gate-major scratch: a step's column blocks of a (B, k*h) matrix, worked on contiguously.

A loop that reads or writes a matrix by column blocks (a gate's columns of the gates' activations,
a gate's gradient written into the step's row of pre-activation gradients) makes NumPy walk a
strided (B, h) view row by row: each such operand costs about one more call's time than a
contiguous one. Here such a matrix gets a contiguous (k', B, h) scratch of the blocks it uses:

    read   one transposing copy in where it is first read (only the blocks read), and every
           one-block view becomes a contiguous scratch block;
    write  an Assemble whose pieces are all whole blocks written in place: the pieces are computed
           into scratch blocks and one transposing copy at the Assemble puts them in its matrix;
    whole  an elementwise op whose output is read only by column blocks (or by such whole ops), on
           operands that all have a scratch of the same blocks (or are scalars), runs once over the
           scratch: 1 - s of two gates as one (2, B, h) call.

A matrix takes a scratch where it pays: where its block operands outnumber the blocks copied in (a
copy costs about what a strided operand adds), and always for writes of two blocks or more. The
values are the same numbers moved: every result is exact.
"""
from math import gcd

from ..ops import Add, Div, Exp, Getitem, Log, Mul, Neg, Pow, Sub, Tanh, _is_basic_index
from .rewrite import Assemble

ELEMENTWISE = (Add, Sub, Mul, Div, Pow, Neg, Exp, Log, Tanh)


def column_block(v):
    """(base, first column, end column) where v is a view of a 2-D base's columns, else None."""
    op = v.op
    if op is None or op.cls is not Getitem or not _is_basic_index(op.options["index"]):
        return None
    base, index = op.inputs[0], op.options["index"]
    return _columns(base, index)


def _columns(base, index):
    if len(base.shape) != 2 or not isinstance(index, tuple) or len(index) != 2:
        return None
    rows, cols = index
    if rows != slice(None) or not isinstance(cols, slice):
        return None
    lo, hi, step = cols.indices(base.shape[1])
    return (base, lo, hi) if step == 1 and hi > lo else None


def _elements(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class Scratch:
    """One matrix's scratch: blocks [first, end) of width h, the array `name` (end - first, B, h)."""

    def __init__(self, value, h, first, end, name):
        self.value, self.h, self.first, self.end, self.name = value, h, first, end, name

    def block(self, lo, hi):
        """The scratch expression of columns [lo, hi): one block (B, h), or several (n, B, h)."""
        a, b = lo // self.h - self.first, hi // self.h - self.first
        return f"{self.name}[{a}]" if b == a + 1 else f"{self.name}[{a}:{b}]"

    def matrix_view(self, expr):
        """The matrix's columns of the scratch's blocks, as a (n, B, h) view of `expr`."""
        B = self.value.shape[0]
        whole = self.first == 0 and self.end * self.h == self.value.shape[1]
        cols = expr if whole else f"{expr}[:, {self.first * self.h}:{self.end * self.h}]"
        return f"{cols}.reshape({B}, {self.end - self.first}, {self.h}).swapaxes(0, 1)"

    @property
    def shape(self):
        return (self.end - self.first, self.value.shape[0], self.h)


class Blocks:
    """Which matrices of a loop get a gate-major scratch (see the module's docstring).

    loop_ops: the loop's ops in order; into: {piece id: (Assemble output, index)} of pieces written
    in place; fixed(v): whether v must keep its own buffer (a carry, an output, a value kept for
    every step), so that it cannot live in a scratch alone.
    read / whole / written: {value id: Scratch}; whole_ops: {value id: the op computing it there}."""

    def __init__(self, loop_ops, into, fixed):
        self.read, self.whole, self.written, self.whole_ops = {}, {}, {}, {}
        self.piece_of = {}   # piece id -> (Scratch, lo, hi)
        views = {op.out.id for op in loop_ops if column_block(op.out) is not None}
        readers, producers, spans, bases = {}, {}, {}, {}
        for op in loop_ops:
            producers[op.out.id] = op
            for v in op.inputs:
                readers.setdefault(v.id, []).append(op)
                block = column_block(v) if op.out.id not in views else None
                if block is not None:
                    base, lo, hi = block
                    bases[base.id] = base
                    spans.setdefault(base.id, []).append((lo, hi))
        names = iter(f"GM{k}" for k in range(len(loop_ops) * 2 + 2))
        # written: an Assemble of whole blocks, each computed in place
        for op in loop_ops:
            if op.cls is not Assemble or not op.options["covered"] or len(op.out.shape) != 2:
                continue
            cols = [_columns(op.out, index) for index in op.options["indexes"]]
            if len(cols) < 2 or any(c is None for c in cols) or any(p.id not in into for p in op.inputs):
                continue
            edges = [(lo, hi) for _, lo, hi in cols]
            h = _width(op.out, edges + spans.get(op.out.id, []))
            if h is None or any(hi - lo != h for lo, hi in edges):
                continue
            scratch = self.written[op.out.id] = Scratch(op.out, h, 0, op.out.shape[1] // h, next(names))
            for piece, (lo, hi) in zip(op.inputs, edges):
                self.piece_of[piece.id] = (scratch, lo, hi)
        # whole: an elementwise op read only through column views, on matrices that can have blocks
        for vid in bases:
            op = producers.get(vid)
            if op is None or op.cls not in ELEMENTWISE or fixed(op.out) or vid in into or vid in self.written \
                    or not all(r.out.id in views for r in readers.get(vid, ())) or len(op.out.shape) != 2:
                continue
            matrices = [i for i in op.inputs if _elements(i.shape) > 1]
            if any(i.shape != op.out.shape or i.id in self.written or i.id in into for i in matrices):
                continue
            h = _width(op.out, spans[vid] + [e for i in matrices for e in spans.get(i.id, [])])
            if h is None or any(hi - lo != h for lo, hi in spans[vid]):   # read as single blocks only
                continue
            k = op.out.shape[1] // h
            self.whole[vid] = Scratch(op.out, h, 0, k, next(names))
            self.whole_ops[vid] = op
            for i in matrices:
                if i.id not in self.whole:
                    self.read[i.id] = Scratch(i, h, 0, k, next(names))
        # an elementwise op read only by whole ops runs whole too, into a scratch of their blocks (the
        # 1 - s a joined s * (1 - s) reads)
        grown = True
        while grown:
            grown = False
            for vid, op in list(self.whole_ops.items()):
                scratch = self.whole[vid]
                for i in op.inputs:
                    made = producers.get(i.id)
                    if made is None or i.id in self.whole or made.cls not in ELEMENTWISE or fixed(i) or \
                            i.id in into or i.shape != op.out.shape or \
                            not all(r.out.id in self.whole_ops for r in readers.get(i.id, ())):
                        continue
                    matrices = [m for m in made.inputs if _elements(m.shape) > 1]
                    if any(m.shape != i.shape or m.id in self.written or m.id in into for m in matrices):
                        continue
                    self.whole[i.id] = Scratch(i, scratch.h, 0, scratch.end, next(names))
                    self.whole_ops[i.id] = made
                    for m in matrices:
                        if m.id not in self.whole:
                            self.read[m.id] = Scratch(m, scratch.h, 0, scratch.end, next(names))
                    grown = True
        # whole ops in a chain: an operand computed whole keeps its scratch as is
        for vid, op in self.whole_ops.items():
            for i in op.inputs:
                if i.id in self.whole and i.id in self.read:
                    del self.read[i.id]
        # read: where a matrix's one-block operands outnumber the blocks copied in
        for vid, edges in spans.items():
            if vid in self.read or vid in self.whole or vid in self.written or vid in into:
                continue
            h = _width(bases[vid], edges)
            if h is None:
                continue
            first, end = min(lo for lo, _ in edges) // h, max(hi for _, hi in edges) // h
            singles = sum(1 for lo, hi in edges if hi - lo == h)
            if singles >= 2 and singles > end - first:
                self.read[vid] = Scratch(bases[vid], h, first, end, next(names))
        changed = True
        while changed:   # a whole op needs a scratch of the same blocks for each matrix operand, and
            changed = False   # readers that read its blocks or run whole themselves
            for vid in list(self.whole):
                op, h = self.whole_ops[vid], self.whole[vid].h
                if any(_elements(i.shape) > 1 and (self.scratch(i.id) is None or self.scratch(i.id).h != h)
                       for i in op.inputs) or not all(r.out.id in views or r.out.id in self.whole_ops
                                                      for r in readers.get(vid, ())):
                    del self.whole[vid], self.whole_ops[vid]
                    changed = True

    def needs(self, op):
        """The read scratches op reads (through one-block views, or whole): filled before it runs."""
        if op.out.id in self.whole_ops:
            return [self.read[i.id] for i in op.inputs if i.id in self.read]
        found = []
        for v in op.inputs:
            block = column_block(v)
            if block is not None and block[0].id in self.read and self.view(v) is not None:
                found.append(self.read[block[0].id])
        return found

    def scratch(self, vid):
        return self.written.get(vid) or self.whole.get(vid) or self.read.get(vid)

    def scratches(self):
        return list(self.written.values()) + list(self.whole.values()) + list(self.read.values())

    def view(self, v):
        """The scratch expression of a one-block column view v where its matrix has a scratch."""
        block = column_block(v)
        if block is None:
            return None
        base, lo, hi = block
        scratch = self.scratch(base.id)
        if scratch is None or lo % scratch.h or hi - lo != scratch.h or not \
                scratch.first <= lo // scratch.h < scratch.end:
            return None
        return scratch.block(lo, hi)


def _width(value, spans):
    """The widest block width that divides every span's edges and the matrix's width (None: 1 column
    or the whole matrix)."""
    h = value.shape[1]
    for lo, hi in spans:
        h = gcd(gcd(h, lo), hi)
    return h if 1 < h < value.shape[1] else None
