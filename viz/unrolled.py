"""The unrolled graph: one cluster per time step inside clusters per layer and direction.

Three levels of detail:
  "ops"    every primitive: an op node per recorded node, plus a tensor node for each named result
           (x, h, c, the gates, output, loss); time runs top to bottom, one step under the other.
  "cells"  one box per cell step, with x(t), h(t), c(t) around it; time runs left to right, as
           in the lecture's unfolded figure.
  "states" only the states h(t), c(t) of each step (the cell folded into the edges between
           them): the compact picture for long sequences and for the gradient view.

Drawn node names come from walk positions: `n{i}` for an item (its op when it is a named node),
`v{i}` for the named tensor a node produces, `s{i}` for a cell box, `e{i}` for the elided steps
of a layer and direction, where i is the walk position of the first item the node stands for.
With a prefix (one panel of several), every name starts with it.
"""
import itertools

from tinygrad_rnn import vocabulary as V

from . import gradient, style
from .dot import quote
from .structure import INPUT_NAMES, STATE_NAMES, STEP, STEP_STATES, cell_kind
from .viewkit import constant_text, new_scene, shape_text

DETAILS = ("ops", "cells", "states")
RANKDIR = {"ops": "TB", "cells": "LR", "states": "LR"}


class Elision:
    """Which steps of each group are drawn when `max_steps` caps them: the first ceil(k/2) and
    the last floor(k/2) in processing order; the ones between become one node per group."""

    def __init__(self, rec, max_steps):
        if max_steps is not None and (not isinstance(max_steps, int) or isinstance(max_steps, bool)
                                      or max_steps < 2):
            raise ValueError(f"max_steps must be an int >= 2 (the first and the last step are kept), "
                             f"got {max_steps!r}")
        self.kept = {}       # group -> set of kept t, or None when every step is drawn
        self.elided = {}     # group -> elided t in processing order
        self.node_ids = {}   # group -> the elision node's name, once drawn
        for group, steps in rec.steps.items():
            order = list(steps)
            if max_steps is None or len(order) <= max_steps:
                self.kept[group] = None
                continue
            head, tail = (max_steps + 1) // 2, max_steps // 2
            self.kept[group] = set(order[:head]) | set(order[len(order) - tail:])
            self.elided[group] = order[head:len(order) - tail]

    def label(self, group):
        elided = self.elided[group]
        if len(elided) == 1:
            return f"⋯ 1 step ⋯\nt = {elided[0]}"
        return f"⋯ {len(elided)} steps ⋯\nt = {elided[0]} … {elided[-1]}"


def unrolled(rec, detail="ops", max_steps=None, params=True, colour=None, rankdir=None, title=None,
             dpi=None, scene=None, prefix=""):
    """The unrolled view as a Scene. `colour` is a GradientScale for the gradient view (or None)."""
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {DETAILS}, got {detail!r}")
    scene = scene or new_scene(rankdir or RANKDIR[detail], title, dpi, compact=detail == "states")
    view = _Unrolled(rec, detail, Elision(rec, max_steps), params, colour, scene, prefix)
    view.draw_items()
    view.draw_edges()
    view.align()
    return scene


class _Unrolled:
    def __init__(self, rec, detail, elision, params, colour, scene, prefix):
        self.rec, self.detail, self.elision, self.params = rec, detail, elision, params
        self.colour, self.scene, self.prefix = colour, scene, prefix
        n = len(rec.items)
        self.in_ids = [None] * n        # where edges into an item attach (its op node)
        self.out_ids = [None] * n       # where edges out of an item leave (its tensor node)
        self.hidden = None              # states detail: items folded into the edges
        self.cells = {}                 # step -> [name, path, names inside, op count, ops]
        self.marks = {}                 # group -> {t: {role: name}}, to line the picture up
        self.entries = {}               # step -> names that take no input from inside the step
        self.lines = {}                 # (group, role) -> Graphviz `group`: keeps a row straight
        self.param_ids = set()

    # --- nodes
    def draw_items(self):
        rec, scene, p = self.rec, self.scene, self.prefix
        items, is_node, step_of, place = rec.items, rec.is_node, rec.step_of, rec.place
        kept, cells_view = self.elision.kept, self.detail == "cells"
        states_view = self.detail == "states"
        visible = STEP_STATES if states_view else STEP_STATES | INPUT_NAMES
        if states_view:
            self.hidden = [False] * len(items)
            needed = self._leaves_with_drawn_consumers(visible)
        op_labels = {}
        consts = rec.scalar_consts
        # above the ops detail a value made from one parameter alone (its transpose) is drawn as
        # the parameter: param_of runs in walk order, so the parameter's name exists by then
        derived = {} if self.detail == "ops" else {i: q for i, q in rec.param_of.items() if i != q}
        unparametrised = set()   # params=False: the parameters and what is made from them alone
        for i in range(len(items)):
            if i in consts:
                continue
            if not self.params and self._from_parameters_alone(i, unparametrised):
                unparametrised.add(i)
                continue   # a transpose of a weight left alone would be a node without inputs
            if i in derived:
                self.in_ids[i] = self.out_ids[i] = self.out_ids[derived[i]]
                continue
            item = items[i]
            step = step_of[i]
            name = item.name
            if step is not None:
                group, t = step
                keep = kept[group]
                if keep is not None and t not in keep:      # elided: no node of its own
                    self.in_ids[i] = self.out_ids[i] = self._elision_node(group, i)
                    continue
                role = name if name in visible else (V.INPUT if not states_view and rec.is_step_input(i) else None)
                if role is None:
                    if cells_view:
                        self.in_ids[i] = self.out_ids[i] = self._cell(step, i, name)
                    elif states_view:
                        self.hidden[i] = True
                    if cells_view or states_view:
                        continue
            elif states_view and not is_node[i] and i not in needed and name not in STATE_NAMES:
                continue
            kind = rec.kind(i)
            if kind == "param" and not self.params:
                continue
            path = place[i]
            label = rec.label_name(i)
            if is_node[i] and not (step is not None and (cells_view or states_view)):
                # an op node; a named node also gets the tensor it produces
                op_id = self.in_ids[i] = f"{p}n{i}"
                if any(q in consts for q in rec.parents[i]):
                    op_label = f"[label={quote(rec.op_label(i))}]"
                else:
                    text = rec.plain_op_label(i)
                    op_label = op_labels.get(text)
                    if op_label is None:
                        op_label = op_labels[text] = f"[label={quote(text)}]"
                scene.node(path, op_id, op_label)
                if label is None:
                    self.out_ids[i] = op_id
                    continue
                tensor_id = self.out_ids[i] = f"{p}v{i}"
                scene.edge(op_id, tensor_id)
            else:
                tensor_id = self.in_ids[i] = self.out_ids[i] = f"{p}n{i}"
            self._draw_tensor(i, kind, label, path, step, tensor_id)
            if kind == "param":
                self.param_ids.add(tensor_id)
            if step is not None:
                if role is not None:
                    self.marks.setdefault(step[0], {}).setdefault(step[1], {})[role] = tensor_id
                if not is_node[i]:
                    self.entries.setdefault(step, []).append(tensor_id)
        self._draw_cells()

    def _from_parameters_alone(self, i, found):
        """Whether item i is a parameter, or a node whose inputs are all in `found` (walk order puts
        them first) or scalar constants."""
        rec = self.rec
        if not rec.is_node[i]:
            return rec.kind(i) == "param"
        inputs = [p for p in rec.parents[i] if p not in rec.scalar_consts]
        return bool(inputs) and all(p in found for p in inputs)

    def _draw_tensor(self, i, kind, label, path, step, node_id):
        rec = self.rec
        item = rec.items[i]
        if kind == "const":
            text = constant_text(item)
        elif self.detail == "states" and step is not None:
            text = label                          # the shape is the same at every step
        else:
            text = f"{label}\n{shape_text(rec.shape(i))}"
        attrs = style.KINDS[kind]
        if kind == "state" and self.colour is not None:
            constant = not rec.is_node[i] and not item.requires_grad
            text, fill = gradient.state_label_and_attrs(text, gradient.log_norm(rec.grad(i)), self.colour, constant)
            attrs = f"{attrs} {fill}"
        if step is not None and item.name in STEP_STATES and self.detail != "ops":
            attrs = f"{attrs} group={self._line(step[0], item.name)}"
        self.scene.node(path, node_id, f"[label={quote(text)} {attrs}]")

    def _line(self, group, role):
        """One Graphviz group per row: its nodes are kept on a straight line."""
        return self.lines.setdefault((group, "h" if role == "cell" else role), f"{self.prefix}g{len(self.lines)}")

    def _elision_node(self, group, i):
        node_id = self.elision.node_ids.get(group)
        if node_id is None:
            node_id = self.elision.node_ids[group] = f"{self.prefix}e{i}"
            attrs = style.KINDS["skip"]
            if self.detail != "ops":
                attrs += f" group={self._line(group, 'h')}"
            self.scene.node(group, node_id, f"[label={quote(self.elision.label(group))} {attrs}]")
            first = self.elision.elided[group][0]
            self.marks.setdefault(group, {}).setdefault(first, {})["skip"] = node_id
        return node_id

    def _cell(self, step, i, name):
        unit = self.cells.get(step)
        if unit is None:
            unit = self.cells[step] = [f"{self.prefix}s{i}", step[0] + ((STEP, step[1]),), set(), 0, set()]
            self.marks.setdefault(step[0], {}).setdefault(step[1], {})["cell"] = unit[0]
        if self.rec.is_node[i]:
            unit[3] += 1
            unit[4].add(self.rec.items[i].op)
        if name is not None:
            unit[2].add(name)
        return unit[0]

    def _draw_cells(self):
        for (group, t), (node_id, path, names, count, ops) in self.cells.items():
            has_state = "h" in self.marks[group][t]
            text = f"{cell_kind(names, has_state, ops)}\n{count} op{'s' * (count != 1)}"
            self.scene.node(path, node_id, f"[label={quote(text)} {style.KINDS['cell']} "
                                           f"group={self._line(group, 'cell')}]")

    def _leaves_with_drawn_consumers(self, visible):
        """States detail: the leaves that feed a drawn node directly (a value made from one
        parameter counts as that parameter). The others, the weights of the folded cells above
        all, are left out rather than drawn with an edge to every state."""
        rec = self.rec
        needed = set()
        for i, parents in enumerate(rec.parents):
            if not parents or i in rec.param_of:
                continue
            step = rec.step_of[i]
            if step is None or rec.items[i].name in visible:
                for p in parents:
                    if not rec.is_node[p]:
                        needed.add(p)
                    elif p in rec.param_of:
                        needed.add(rec.param_of[p])
        return needed

    # --- edges
    def draw_edges(self):
        """One edge per pair of drawn nodes that some recorded input connects, in walk order.

        In the states detail an edge into a folded item is carried on to what that item feeds,
        so h(t-1) -> h(t) stands for the whole cell between them. In the ops detail the nodes
        that take no input from inside their own step are noted (`entries`) for `align`.
        """
        rec, scene = self.rec, self.scene
        items, parents, step_of, is_node = rec.items, rec.parents, rec.step_of, rec.is_node
        in_ids, out_ids, hidden = self.in_ids, self.out_ids, self.hidden
        param_ids, param_style = self.param_ids, style.EDGES["param"]
        recurrent = style.EDGES["recurrent"]
        cells_view, ops_view = self.detail == "cells", self.detail == "ops"
        carried = {}        # states detail: folded item -> positions of the drawn items feeding it
        gathered = None if ops_view else {}   # (group, node outside the steps) -> {t: state feeding it}
        for i in range(len(items)):
            if not is_node[i]:
                continue
            step = step_of[i]
            if hidden is not None and hidden[i]:
                feeding = set()
                for p in parents[i]:
                    if hidden[p]:
                        feeding |= carried.get(p, set())
                    elif out_ids[p] is not None and p not in rec.param_of:
                        feeding.add(p)
                carried[i] = feeding
                continue
            head = in_ids[i]
            if head is None:
                continue
            inside = False
            for p in parents[i]:
                p_step = step_of[p]
                if p_step == step and step is not None:
                    inside = True
                sources = carried.get(p, ()) if hidden is not None and hidden[p] else (p,)
                for s in sources:
                    tail = out_ids[s]
                    if tail is None or tail == head:
                        continue
                    s_step = step_of[s]
                    if s_step is not None and step is not None and s_step[0] == step[0] and s_step != step:
                        scene.edge(tail, head, recurrent)
                    elif cells_view and s_step == step and step is not None and items[s].name in STEP_STATES:
                        continue  # a state feeding later ops of its own step (h = o * tanh(c)): in the box
                    elif gathered is not None and step is None and s_step is not None:
                        gathered.setdefault((s_step[0], head), {})[s_step[1]] = (tail, items[s].name)
                    else:
                        scene.edge(tail, head, param_style if tail in param_ids else "")
            if ops_view and step is not None and not inside:
                self.entries.setdefault(step, []).append(head)
        if gathered:
            self._gathered_edges(gathered)

    def _gathered_edges(self, gathered):
        """A node outside the steps that reads the states of many steps (the stacked output) gets
        one edge from the whole layer-and-direction cluster instead of one arc per step."""
        scene = self.scene
        for (group, head), tails in gathered.items():
            if len(tails) == 1:
                scene.edge(next(iter(tails.values()))[0], head)
                continue
            order = self.rec.steps[group]
            last = tails[max(tails, key=order.__getitem__)][0]
            roles = sorted({name for _, name in tails.values() if name in STEP_STATES}) or ["values"]
            label = ", ".join(f"{r}(t)" if r != "values" else r for r in roles) + f"\nof {len(tails)} steps"
            cluster = scene.cluster_ids[scene.outer + group]
            # a taillabel, not a label: an edge label would make dot double every rank's spacing
            attrs = f'taillabel={quote(label)} labelangle=-35 labeldistance=3 labelfontcolor="#5f6368" labelfontsize=9'
            if cluster is None:   # steps recorded outside any layer scope: no cluster holds them all
                scene.edge(last, head, attrs)
                continue
            scene.edge(last, head, f"ltail=cluster_{cluster} {attrs}")
            scene.graph_attrs["compound"] = "true"

    # --- layout hints
    def align(self):
        """Make the picture read along time, each step after the one before it.

        Ops detail: invisible edges from a step's states to the first nodes of the next step, so
        the input half of a step (which needs no state) does not slide up beside the previous
        one. Cells detail: x(t) stands under its cell (same rank). States detail: c(t) stands
        over h(t). Rows of cells and states share a Graphviz `group`, drawn as straight lines.
        """
        for group, steps in self.marks.items():
            order = self.rec.steps[group]
            ordered = sorted(steps.items(), key=lambda item: order[item[0]])   # processing order
            if self.detail != "ops":
                pair = (V.INPUT, "cell") if self.detail == "cells" else (V.CELL, V.HIDDEN)
                for t, m in ordered:
                    if pair[0] in m and pair[1] in m:
                        self.scene.cluster(group + ((STEP, t),)).append(f"{{rank=same; {m[pair[0]]} {m[pair[1]]}}}")
                continue
            for (_, before), (t, after) in itertools.pairwise(ordered):
                tails = [before[r] for r in (V.HIDDEN, V.CELL, "skip") if r in before]
                heads = [after["skip"]] if "skip" in after else self.entries.get((group, t), [])
                for tail in tails:
                    for head in heads:
                        self.scene.edge(tail, head, style.EDGES["align"])
