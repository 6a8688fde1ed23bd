"""What a drawing needs to know about a recorded graph, read in one pass over `graph.walk`.

Every item (recorded node or leaf tensor) is known by its position in walk order, which depends
only on how the graph was built; all node names in the DOT text derive from these positions.
"""
import re

from tinygrad_rnn import vocabulary as V
from tinygrad_rnn.graph import walk
from tinygrad_rnn.tensor import Function, Tensor

STEP = V.STEP                                # the scope entry that marks one time step
INPUT_NAMES = frozenset({V.INPUT, "input"})
STEP_STATES = frozenset(V.BUILT_IN_STATES)   # the recurrent states inside a step
STATE_NAMES = STEP_STATES | {V.initial(s) for s in STEP_STATES} | {V.final(s) for s in STEP_STATES}
OUTPUT_NAMES = frozenset({V.OUTPUT, V.LOSS})
CELL_KINDS = ((frozenset("ifgo"), "LSTM cell"), (frozenset("rzn"), "GRU cell"))
# what an Elman step h = tanh(W x + U h + b) records (with transposed weights, or relu; masks of padded
# steps, dropout, the two directions joined); a step with other ops (gates: sigmoid, slices of a
# stacked product) is some other cell, which the drawing does not name
ELMAN_OPS = frozenset({"matmul", "add", "tanh", "relu", "permute", "transpose", "where", "mul", "cat"})
NUMBERED = re.compile(r"^(.*\S)\s*\((?:t|-?\d+)\)$")   # "x(3)", "x (t)": a name that counts its step


def flatten_roots(root):
    """A tensor or a (nested) list/tuple of tensors -> a flat list; anything else is refused."""
    if isinstance(root, Tensor):
        return [root]
    if isinstance(root, (list, tuple)):
        flat = [t for r in root for t in flatten_roots(r)]
        if not flat:
            raise ValueError("viz: got an empty list of tensors to draw")
        return flat
    raise TypeError(f"viz: expected a Tensor or a list of Tensors to draw, got {type(root).__name__}")


def split_step(scope):
    """(group, t) for a scope inside a time step, where group is the scope above the step; else None."""
    for i, (name, index) in enumerate(scope):
        if name == STEP:
            return scope[:i], index
    return None


def _common_prefix(a, b):
    if a is None or a is b:
        return b
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return a if i == len(a) else a[:i]


class Recorded:
    """The items above some roots with their parents (as positions), placement scope and kind.

    `place[i]` is the scope an item is drawn in: a node's own scope; for a leaf, the scope its
    consumers share, never inside a step for parameters and initial states (they belong to the
    whole layer). `steps` maps each group (the scope above "t") to its steps in processing
    order (t descending for a reverse direction), each with the walk position of its last item.
    """

    def __init__(self, root):
        self.roots = flatten_roots(root)
        self.items = items = walk(self.roots)
        position = {id(item): i for i, item in enumerate(items)}
        self.root_positions = {position[id(r._ctx if r._ctx is not None else r)] for r in self.roots}
        n = len(items)
        self.is_node = is_node = [isinstance(item, Function) for item in items]
        self.parents = parents = [()] * n
        place = [None] * n
        for i, item in enumerate(items):
            if is_node[i]:
                scope = item.scope
                place[i] = scope
                ps = tuple(position[id(p)] for p in item.parents)
                parents[i] = ps
                for p in ps:
                    if not is_node[p]:
                        place[p] = _common_prefix(place[p], scope)
        # unnamed scalar constants (the 1 of `1 - z`, cached and shared by every step) are written
        # into the label of the op that uses them instead of being drawn as nodes
        self.scalar_consts = {i for i, item in enumerate(items)
                              if not is_node[i] and item.name is None and not item.requires_grad
                              and item.array.size == 1}
        step_cache = {}
        self.step_of = step_of = [None] * n      # (group, t) or None
        self.steps = {}                          # group -> {t: last position}, in processing order
        for i, item in enumerate(items):
            if not is_node[i]:
                place[i] = self._leaf_place(item, place[i])
            scope = place[i]
            info = step_cache.get(scope, False)
            if info is False:
                info = step_cache[scope] = split_step(scope)
            if info is not None:
                step_of[i] = info
                self.steps.setdefault(info[0], {})[info[1]] = i
        # A step's last item (its new state) comes after the previous step's in any walk, while
        # its first (an input slice) may be reached early: order the steps by their last item.
        for group, steps in self.steps.items():
            self.steps[group] = dict(sorted(steps.items(), key=lambda item: item[1]))
        self.place = place
        self.param_of = self._parameter_values()

    def _parameter_values(self):
        """{position: parameter position} for each parameter and each unnamed value computed,
        outside the steps, from one parameter alone (a weight transposed once for all steps).

        Views above the ops detail draw such a value as its parameter, so the parameter's edges
        still reach every step that uses it.
        """
        param_of = {}
        for i, item in enumerate(self.items):
            if not self.is_node[i]:
                if self.kind(i) == "param":
                    param_of[i] = i
            elif self.step_of[i] is None and item.name is None and i not in self.root_positions:
                sources = {param_of.get(p) for p in self.parents[i] if p not in self.scalar_consts}
                if len(sources) == 1 and None not in sources:
                    param_of[i] = sources.pop()
        return param_of

    @staticmethod
    def _leaf_place(leaf, place):
        if place is None:
            return ()
        if leaf.requires_grad or leaf.name in STATE_NAMES:
            info = split_step(place)
            if info is not None:
                return info[0]
        return place

    # --- per-item descriptions (called only for items that are drawn)
    def shape(self, i):
        return tuple(self.items[i].shape)

    def kind(self, i):
        """What an item shows as: param, input, const, state, output, loss, tensor (named), op.

        A leaf that needs no gradient is an input when it is named, or when it is an array fed to
        the ops of one step (the slice x[t] of a sequence); an unnamed one elsewhere is a constant.
        """
        item = self.items[i]
        name = item.name
        is_root = i in self.root_positions
        if name is None and is_root:
            return "loss" if _size(item.shape) == 1 else "output"
        if name in STATE_NAMES:
            return "state"
        if name in OUTPUT_NAMES:
            return name
        if name in INPUT_NAMES:
            return "input"
        if self.is_node[i]:
            return "op" if name is None else ("output" if is_root else "tensor")
        if item.requires_grad:
            return "param"
        if name is not None or (self.step_of[i] is not None and _size(item.shape) > 1):
            return "input"
        return "const"

    def is_step_input(self, i):
        """A leaf fed to one step that is data, not a weight or a state: drawn as x(t)."""
        return not self.is_node[i] and self.step_of[i] is not None and self.kind(i) == "input"

    def role(self, i):
        """The role of an item inside a step, the same at every step (h, c, x, input), or None.

        A step input keeps its own name, less a step number written into it ("x(3)" is x)."""
        name = self.items[i].name
        if name in STEP_STATES or name in INPUT_NAMES:
            return name
        if self.is_step_input(i):
            if name is None:
                return "input"
            numbered = NUMBERED.match(str(name))
            return numbered.group(1) if numbered else str(name)
        return None

    def label_name(self, i):
        """The drawn name: the tensor's name, with (t) added inside a step unless the name already
        counts its step; roots and unnamed step inputs get a default."""
        item = self.items[i]
        name = item.name
        if name is None:
            if i in self.root_positions:
                return "loss" if _size(item.shape) == 1 else "output"
            if self.is_node[i]:
                return None
            if item.requires_grad:
                return "param"
            if not self.is_step_input(i):
                return None
            name = "input"
        name = str(name)
        step = self.step_of[i]
        if step is None or NUMBERED.match(name):
            return name
        return f"{name}({step[1]})"

    def op_label(self, i):
        """A node's op, with its scalar constant inputs written in ("sub(1, ·)", "mul(·, 0.5)") and
        a getitem as the index it takes ("[:, 0:4]", as Python writes it), an index assignment as the
        statement ("[1] = ·", "[:, 0] = 0")."""
        item = self.items[i]
        parents = self.parents[i]
        args = [f"{self.items[p].array.reshape(()).item():.4g}" if p in self.scalar_consts else "·"
                for p in parents]
        if item.op == "indexput" and hasattr(item, "index") and len(args) == 2:
            return f"{index_text(item.index)} = {args[1]}"
        if not any(p in self.scalar_consts for p in parents):
            return self.plain_op_label(i)
        return f"{item.op}({', '.join(args)})"

    def plain_op_label(self, i):
        """The op's name; a getitem is written as the index it takes, an index assignment as the
        statement ("[1] =")."""
        item = self.items[i]
        if item.op == "getitem" and hasattr(item, "index"):
            return index_text(item.index)
        if item.op == "indexput" and hasattr(item, "index"):
            return f"{index_text(item.index)} ="
        return item.op

    def grad(self, i):
        """The kept gradient of an item's output (a node's retained grad, a leaf's .grad), or None."""
        item = self.items[i]
        grad = item.grad if self.is_node[i] else item._grad
        return None if grad is None else grad.array


def _size(shape):
    size = 1
    for n in shape:
        size *= n
    return size


def cell_kind(names, has_state, ops):
    """The cell a step's gate names reveal: LSTM (i, f, g, o), GRU (r, z, n); a plain RNN cell when
    the step makes a state h with an Elman step's ops alone; "cell" for any other step that makes a
    state (a cell built by hand, its gates unnamed); else the ops it holds (a per-step concatenation)."""
    for gates, label in CELL_KINDS:
        if gates <= names:
            return label
    if has_state:
        return "RNN cell" if ops and ops <= ELMAN_OPS else "cell"
    shown = sorted(ops)
    return ", ".join(shown[:3]) + (", …" if len(shown) > 3 else "") if shown else "step"


def index_text(index):
    """An index as Python writes it: [:, 0:4], [-1], [..., None]; an array index by its shape."""
    parts = index if isinstance(index, tuple) else (index,)
    return "[" + ", ".join(_index_part(part) for part in parts) + "]"


def _index_part(part):
    if isinstance(part, slice):
        text = ("" if part.start is None else str(part.start)) + ":" + ("" if part.stop is None else str(part.stop))
        return text + (f":{part.step}" if part.step is not None else "")
    if part is Ellipsis:
        return "..."
    if part is None:
        return "None"
    shape = getattr(part, "shape", None)
    if shape is None or shape == ():
        return str(int(part)) if not isinstance(part, (list, tuple)) else f"list of {len(part)}"
    what = "mask" if str(getattr(part, "dtype", "")) == "bool" else "ids"
    return f"{what} ({', '.join(map(str, shape))}{',' if len(shape) == 1 else ''})"
