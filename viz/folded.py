"""The folded view: the recurrent figure, derived from the recorded unrolled graph.

Every step of a layer and direction folds onto one node per role (x, the cell, h, c); an edge that
crosses from one step to the next becomes a loop through a delay marker (z⁻¹), one per recurrent
state. Parameters used only inside the steps are not drawn as nodes: each is written on the edge
it acts on (weight_ih on x -> cell, weight_hh on the h loop), found by following it to the first op
that also takes a value from outside the parameters; one that meets several (a bias added to the
sum of both paths) is written in the cell.

Drawn names: `r{i}` for a role, `s{i}` for a cell, `d{i}` for the delay of the role or cell with
the same i (the walk position of the first item folded into it); items outside the steps keep
the names they have in the unrolled view. With a prefix (one panel of several), every name starts with it.
"""
from tinygrad_rnn import vocabulary as V

from . import style
from .dot import quote
from .structure import STEP_STATES, cell_kind
from .viewkit import constant_text, new_scene, shape_text

INITIAL = {V.initial(s): s for s in STEP_STATES}   # an initial state is the first content of its state's delay


def folded(rec, params=True, rankdir=None, title=None, dpi=None, scene=None, prefix=""):
    """One node per role per layer and direction, the recurrence as loops through delays."""
    scene = scene or new_scene(rankdir or "LR", title, dpi)
    p = prefix
    items, is_node, step_of = rec.items, rec.is_node, rec.step_of
    n = len(items)
    out_ids, in_ids = [None] * n, [None] * n
    roles = {}          # (group, role) -> node id
    cells = {}          # group -> [node id, names folded into it, ops folded into it]
    representative = {group: list(steps)[min(1, len(steps) - 1)] for group, steps in rec.steps.items()}
    sample = {}         # group -> walk positions of its representative step's items
    on_edges = _params_on_edges(rec) if params else set()

    for i in range(n):
        if i in rec.scalar_consts or i in on_edges:
            continue
        if i in rec.param_of and rec.param_of[i] != i:   # a transpose of a drawn parameter
            out_ids[i] = in_ids[i] = out_ids[rec.param_of[i]]
            continue
        item = items[i]
        step = step_of[i]
        if step is not None:
            group, t = step
            name = item.name
            role = rec.role(i)
            if role is not None:
                node_id = roles.get((group, role))
                if node_id is None:
                    node_id = roles[(group, role)] = f"{p}r{i}"
                    kind = "state" if role in STEP_STATES else "input"
                    text = f"{role}(t)\n{shape_text(rec.shape(i))}"
                    scene.node(group, node_id, f"[label={quote(text)} {style.KINDS[kind]}]")
            else:
                cell = cells.setdefault(group, [f"{p}s{i}", set(), set()])
                if name is not None:
                    cell[1].add(name)
                if is_node[i]:
                    cell[2].add(item.op)
                node_id = cell[0]
            out_ids[i] = in_ids[i] = node_id
            if representative[group] == t:
                sample.setdefault(group, []).append(i)
            continue
        kind = rec.kind(i)
        if kind == "param" and not params:
            continue
        path = rec.place[i]
        label = rec.label_name(i)
        if is_node[i]:
            in_ids[i] = f"{p}n{i}"
            scene.node(path, in_ids[i], f"[label={quote(rec.op_label(i))}]")
            if label is None:
                out_ids[i] = in_ids[i]
                continue
            out_ids[i] = f"{p}v{i}"
            scene.edge(in_ids[i], out_ids[i])
        else:
            out_ids[i] = in_ids[i] = f"{p}n{i}"
        text = constant_text(items[i]) if kind == "const" else f"{label}\n{shape_text(rec.shape(i))}"
        scene.node(path, out_ids[i], f"[label={quote(text)} {style.KINDS[kind]}]")

    edge_labels, cell_params = {}, {}
    for group, positions in sample.items():
        for param, (sources, consumers) in _where_params_act(rec, positions, out_ids, on_edges).items():
            name = str(items[param].name)
            if (len(sources) > 1 or len(consumers) > 1) and group in cells:
                cell_params.setdefault(group, []).append(name)   # it acts on a mix: inside the cell
                continue
            for source in sources:
                tail = _delay_id(source[1], p) if isinstance(source, tuple) else source
                for head in consumers:
                    edge_labels.setdefault((tail, head), []).append(name)
    for group, (node_id, names, ops) in cells.items():
        has_state = (group, "h") in roles
        lines = [cell_kind(names, has_state, ops)] + cell_params.get(group, [])
        scene.node(group, node_id, f"[label={quote(chr(10).join(lines))} {style.KINDS['cell']}]")
    _fold_edges(rec, scene, out_ids, in_ids, roles, on_edges, edge_labels, p)
    return scene


def _delay_id(node_id, prefix):
    """The delay marker of a role or cell: the same number, `d` in place of its letter."""
    return f"{prefix}d{node_id[len(prefix) + 1:]}"


def _params_on_edges(rec):
    """Positions of the parameters whose every use lies inside a time step (and of the values made
    from them alone, like a transpose): their names go on the folded edges instead of nodes."""
    param_of = rec.param_of
    inside, outside = set(), set()
    for i, parents in enumerate(rec.parents):
        if i in param_of:
            continue  # a value made from a parameter alone stands for the parameter
        for p in parents:
            q = param_of.get(p)
            if q is not None:
                (inside if rec.step_of[i] is not None else outside).add(q)
    written = inside - outside
    return {i for i, q in param_of.items() if q in written}


def _where_params_act(rec, positions, out_ids, on_edges):
    """{param: (sources, consumers)} for one step: what each parameter first meets on its way
    into the step, and the drawn node (the cell, or a role) where they meet.

    A source is the drawn node a value comes from (x, something outside the steps) or
    ("delay", node) for a value from the previous step. Values computed from parameters alone
    (a transpose of a weight) carry the parameters on until they meet a source.
    """
    step = rec.step_of[positions[0]]
    sources, carried, acts_on = {}, {}, {}
    for i in positions:
        if not rec.is_node[i]:
            sources[i] = {out_ids[i]} if out_ids[i] is not None else set()
            continue
        found, params = set(), set()
        for p in rec.parents[i]:
            p_step = rec.step_of[p]
            if p in on_edges:
                params.add(rec.param_of[p])
            elif p_step == step:
                if rec.role(p) is not None:
                    found.add(out_ids[p])
                else:
                    found |= sources.get(p, set())
                    params |= carried.get(p, set())
            elif p_step is not None and p_step[0] == step[0]:
                found.add(("delay", out_ids[p]))
            elif out_ids[p] is not None:
                found.add(out_ids[p])
        if found:
            for param in params:
                met, consumers = acts_on.setdefault(param, (set(), set()))
                met.update(found)
                consumers.add(out_ids[i])
        else:
            carried[i] = params
        # downstream, a role is a source of its own (h(t) feeds the next ops as "h")
        sources[i] = {out_ids[i]} if rec.role(i) is not None else found
    return acts_on


def _fold_edges(rec, scene, out_ids, in_ids, roles, on_edges, edge_labels, prefix):
    items, step_of, parents = rec.items, rec.step_of, rec.parents
    recurrent, initial = style.EDGES["recurrent"], style.EDGES["initial"]

    def edge(tail, head, attrs=""):
        names = edge_labels.get((tail, head))
        if names:
            text = quote("\n".join(names))
            attrs = (attrs + " " if attrs else "") + f'label={text} fontsize=9 fontcolor="#9a6700"'
        scene.edge(tail, head, attrs)

    delays = set()

    def delay(node_id, group):
        delay_id = _delay_id(node_id, prefix)
        if delay_id not in delays:
            delays.add(delay_id)
            scene.node(group, delay_id, f"[label=\"z⁻¹\" {style.KINDS['delay']}]")
            scene.edge(node_id, delay_id, recurrent)
        return delay_id

    for i in range(len(items)):
        head = in_ids[i]
        if head is None or not rec.is_node[i]:
            continue
        step = step_of[i]
        for p in parents[i]:
            tail = out_ids[p]
            if p in on_edges or tail is None:
                continue
            p_step = step_of[p]
            if p_step is not None and step is not None and p_step[0] == step[0] and p_step != step:
                edge(delay(tail, step[0]), head, recurrent)   # h(t) = W h(t-1) loops onto itself
            elif tail == head:
                continue
            elif p_step is not None and p_step == step and items[p].name in STEP_STATES:
                continue  # a state used again inside its own step is the cell's business
            elif (p_step is None and step is not None and len(rec.steps[step[0]]) > 1
                  and (step[0], INITIAL.get(items[p].name)) in roles):
                state = roles[(step[0], INITIAL[items[p].name])]
                scene.edge(tail, delay(state, step[0]), initial)
            else:
                edge(tail, head, style.EDGES["param"] if p in rec.param_of else "")
