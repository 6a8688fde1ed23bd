"""The unrolled view's structure, read back from the DOT text: step clusters, parameters, roles."""
import numpy as np
import pytest

import tinygrad_rnn as tr
import viz
from tests.viz.dotparse import Dot
from tests.viz.handmade import make_params, record

KINDS = ("rnn", "lstm", "gru")
GROUPS = [("layer 0", "forward"), ("layer 0", "reverse"), ("layer 1", "forward"), ("layer 1", "reverse")]


def steps_by_group(dot):
    """{(layer label, direction label): [t in document order]}."""
    found = {}
    for c in dot.step_clusters():
        found.setdefault(c.path()[:-1], []).append(dot.step_index(c))
    return found


def param_names(params):
    return sorted(params)


@pytest.mark.parametrize("detail", ["ops", "cells", "states"])
@pytest.mark.parametrize("kind", KINDS)
def test_one_cluster_per_step_per_layer_and_direction(kind, detail):
    loss, _, _ = record(kind, steps=4, num_layers=2, bidirectional=True)
    groups = steps_by_group(Dot(viz.to_dot(loss, detail=detail)))
    assert sorted(groups) == sorted(GROUPS)
    for group, labels in groups.items():
        assert sorted(labels) == list(range(4)), group


@pytest.mark.parametrize("detail", ["ops", "cells"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_parameter_drawn_once_with_an_edge_into_every_step(kind, detail):
    loss, params, _ = record(kind, steps=3, num_layers=2, bidirectional=True)
    dot = Dot(viz.to_dot(loss, detail=detail))
    edges_from = {}
    for tail, head, attrs in dot.visible_edges():
        edges_from.setdefault(tail, []).append(head)
    for name in params:
        nodes = dot.nodes_named(name)
        assert len(nodes) == 1, f"{name} drawn {len(nodes)} times"
        node = nodes[0]
        assert dot.step_of(node) is None  # shared by the steps, so outside them
        reached = {dot.step_of(h).label for h in edges_from[node] if dot.step_of(h) is not None}
        layer, direction = int(name.split("_l")[1][0]), "reverse" if name.endswith("reverse") else "forward"
        group_path = (f"layer {layer}", direction)
        assert dot.cluster_of[node].path() == group_path
        assert reached == {f"t = {t}" for t in range(3)}, name


@pytest.mark.parametrize("kind", KINDS)
def test_roles_are_named_per_step(kind):
    loss, _, _ = record(kind, steps=3)
    dot = Dot(viz.to_dot(loss))
    for t in range(3):
        for role in ("x", "h") + (("c", "i", "f", "g", "o") if kind == "lstm" else ()) + \
                (("r", "z", "n") if kind == "gru" else ()):
            nodes = dot.nodes_named(f"{role}({t})")
            assert len(nodes) == 1, (role, t)
            assert dot.step_of(nodes[0]).label == f"t = {t}"
            assert dot.label(nodes[0]).split("\n")[1] == ("(2, 3)" if role == "x" else "(2, 4)")
    assert len(dot.nodes_named("loss")) == 1
    assert len(dot.nodes_named("output")) == 1


def test_ops_detail_draws_every_primitive_as_its_op():
    loss, _, _ = record("rnn", steps=2)
    dot = Dot(viz.to_dot(loss, detail="ops"))
    ops = sorted(dot.label(n) for n in dot.nodes if n.startswith("n") and "\n" not in dot.label(n))
    # per step: two transposes, two products, three adds, one tanh; then stack, getitem, mean
    assert ops.count("matmul") == 4 and ops.count("tanh") == 2 and ops.count("permute") == 4
    assert ops.count("add") == 6 and {"stack", "[-1]", "mean"} <= set(ops)


def test_cells_detail_has_one_box_per_step_and_the_lecture_edges():
    loss, _, _ = record("lstm", steps=3)
    dot = Dot(viz.to_dot(loss, detail="cells"))
    cells = [n for n in dot.nodes if dot.first_line(n) == "LSTM cell"]
    assert sorted(dot.step_of(c).label for c in cells) == ["t = 0", "t = 1", "t = 2"]
    cell_at = {dot.step_of(c).label: c for c in cells}
    edges = {(t, h) for t, h, _ in dot.visible_edges()}
    for t in range(3):
        cell = cell_at[f"t = {t}"]
        x, h, c = (dot.nodes_named(f"{r}({t})")[0] for r in "xhc")
        assert (x, cell) in edges and (cell, h) in edges and (cell, c) in edges
        assert (c, cell) not in edges   # h = o * tanh(c) is inside the box
        if t:
            for r in "hc":
                assert (dot.nodes_named(f"{r}({t - 1})")[0], cell) in edges


def test_states_detail_folds_the_cell_into_state_to_state_edges():
    loss, _, _ = record("lstm", steps=3)
    dot = Dot(viz.to_dot(loss, detail="states"))
    in_steps = {dot.first_line(n) for n in dot.nodes if dot.step_of(n) is not None}
    assert in_steps == {f"{r}({t})" for r in "hc" for t in range(3)}
    edges = {(dot.first_line(t), dot.first_line(h)) for t, h, _ in dot.visible_edges()}
    for t in (1, 2):
        assert {(f"h({t-1})", f"h({t})"), (f"c({t-1})", f"c({t})"), (f"h({t-1})", f"c({t})")} <= edges
        assert (f"c({t})", f"h({t})") in edges
    assert ("h0", "h(0)") in edges and ("c0", "c(0)") in edges


def test_many_steps_read_by_one_node_share_one_edge_from_the_cluster():
    loss, _, _ = record("rnn", steps=5)
    dot = Dot(viz.to_dot(loss, detail="cells"))
    stack = next(n for n in dot.nodes if dot.label(n) == "stack")
    into_stack = [(t, a) for t, h, a in dot.visible_edges() if h == stack]
    assert len(into_stack) == 1
    tail, attrs = into_stack[0]
    assert attrs["ltail"].startswith("cluster_") and "of 5 steps" in attrs["taillabel"]
    assert dot.first_line(tail) == "h(4)"


def test_reverse_direction_keeps_processing_order_and_its_own_steps():
    loss, _, _ = record("gru", steps=3, bidirectional=True)
    dot = Dot(viz.to_dot(loss, detail="cells"))
    recurrent = [(dot.first_line(t), dot.step_of(h).label) for t, h, a in dot.visible_edges()
                 if a.get("color") == "#3c8c4f" and dot.step_of(h) is not None
                 and dot.step_of(h).path()[1] == "reverse"]
    assert sorted(recurrent) == [("h(1)", "t = 0"), ("h(2)", "t = 1")]


def test_an_mlp_draws_without_clusters():
    rng = np.random.default_rng(0)
    w1 = tr.Tensor(rng.standard_normal((3, 5)), requires_grad=True).named("w1")
    w2 = tr.Tensor(rng.standard_normal((5, 1)), requires_grad=True).named("w2")
    x = tr.Tensor(rng.standard_normal((4, 3))).named("x")
    loss = ((x @ w1).relu() @ w2).mean()
    for detail in ("ops", "cells", "states"):
        dot = Dot(viz.to_dot(loss, detail=detail))
        assert not list(dot.clusters())
        labels = {dot.first_line(n) for n in dot.nodes}
        assert {"w1", "w2", "x", "matmul", "relu", "mean", "loss"} <= labels
        assert len(dot.visible_edges()) == 7   # x, w1, relu, w2 into products; two links; the loss


def test_a_list_of_roots_and_a_leaf_root():
    loss, params, out = record("rnn", steps=2)
    dot = Dot(viz.to_dot([loss, out]))
    assert len(dot.nodes_named("loss")) == 1 and len(dot.nodes_named("output")) == 1
    leaf = Dot(viz.to_dot(params["weight_hh_l0"]))
    assert [leaf.first_line(n) for n in leaf.nodes] == ["weight_hh_l0"]


def test_scalar_constants_are_written_into_their_op():
    loss, _, _ = record("gru", steps=2)
    dot = Dot(viz.to_dot(loss, detail="ops"))
    assert len([n for n in dot.nodes if dot.label(n) == "sub(1, ·)"]) == 2
    assert not [n for n in dot.nodes if dot.label(n) == "1"]


def test_params_can_be_left_out():
    loss, params, _ = record("lstm", steps=2)
    dot = Dot(viz.to_dot(loss, detail="cells", params=False))
    assert not any(dot.first_line(n) in params for n in dot.nodes)


def test_labels_are_escaped_so_any_name_parses():
    name = 'odd "name" \\ with\nnewline {}[]<>;'
    params = make_params("rnn", 3, 4)
    x = tr.Tensor(np.ones((2, 3)))
    y = (x @ params["weight_ih_l0"].T).named(name).sum()
    text = viz.to_dot(y)
    dot = Dot(text)
    assert [n for n in dot.nodes if dot.label(n).startswith(name)]


def test_bad_arguments_are_refused_with_a_clear_message():
    loss, _, _ = record("rnn", steps=2)
    with pytest.raises(TypeError, match="Tensor"):
        viz.to_dot("loss")
    with pytest.raises(ValueError, match="view must be one of"):
        viz.to_dot(loss, view="sideways")
    with pytest.raises(ValueError, match="detail must be one of"):
        viz.to_dot(loss, detail="atoms")
    with pytest.raises(ValueError, match="max_steps"):
        viz.to_dot(loss, max_steps=1)
    with pytest.raises(ValueError, match="folded"):
        viz.to_dot(loss, view="folded", detail="cells")
    with pytest.raises(ValueError, match="empty"):
        viz.to_dot([])
