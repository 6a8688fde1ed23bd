"""Large graphs: max_steps keeps the first and last steps and counts the rest; same graph, same text."""
import re

import pytest

import viz
from tests.viz.dotparse import Dot
from tests.viz.handmade import record


@pytest.mark.parametrize("detail", ["ops", "cells", "states"])
@pytest.mark.parametrize("max_steps,kept,elided", [(4, [0, 1, 8, 9], range(2, 8)),
                                                    (5, [0, 1, 2, 8, 9], range(3, 8)),
                                                    (2, [0, 9], range(1, 9))])
def test_max_steps_keeps_first_and_last_and_counts_the_middle(detail, max_steps, kept, elided):
    loss, params, _ = record("lstm", steps=10, num_layers=2, bidirectional=True)
    dot = Dot(viz.to_dot(loss, detail=detail, max_steps=max_steps))
    elisions = [n for n in dot.nodes if dot.label(n).startswith("⋯")]
    assert len(elisions) == 4   # one per layer and direction
    steps = {}
    for c in dot.step_clusters():
        steps.setdefault(c.path()[:-1], []).append(dot.step_index(c))
    # "first" and "last" follow processing order: t = 9, 8, ... for the reverse direction
    mirror = {"forward": lambda t: t, "reverse": lambda t: 9 - t}
    for group, ts in steps.items():
        assert sorted(ts) == sorted(map(mirror[group[1]], kept)), group
    for node in elisions:
        order = [mirror[dot.cluster_of[node].path()[1]](t) for t in elided]
        assert dot.label(node) == f"⋯ {len(elided)} steps ⋯\nt = {order[0]} … {order[-1]}"
    # the elided steps leave no nodes behind, and the kept ones connect through the elision node
    forward_elided = [n for n in dot.nodes if dot.cluster_of[n].path()[1:2] == ("forward",)
                      and re.match(rf"^[a-z]\(({'|'.join(map(str, elided))})\)$", dot.first_line(n))]
    assert not forward_elided
    edges = {(t, h) for t, h, _ in dot.visible_edges()}
    for node in elisions:
        assert any(h == node for _, h in edges) and any(t == node for t, _ in edges)
    if detail != "states":   # parameters reach the elided steps too
        for name in params:
            assert any(t == dot.nodes_named(name)[0] and h in elisions for t, h in edges), name


def test_max_steps_at_or_above_the_length_elides_nothing():
    loss, _, _ = record("rnn", steps=4)
    assert viz.to_dot(loss, max_steps=4) == viz.to_dot(loss) == viz.to_dot(loss, max_steps=100)


def test_the_same_graph_gives_byte_identical_text():
    loss, _, _ = record("lstm", steps=5, num_layers=2, bidirectional=True)
    for options in ({}, {"detail": "cells"}, {"view": "folded"}, {"detail": "states", "max_steps": 2}):
        assert viz.to_dot(loss, **options) == viz.to_dot(loss, **options)


def test_two_recordings_of_one_model_give_byte_identical_text():
    first, _, _ = record("gru", steps=4, num_layers=2, bidirectional=True)
    second, _, _ = record("gru", steps=4, num_layers=2, bidirectional=True)
    for options in ({}, {"detail": "cells", "max_steps": 2}, {"view": "folded"}):
        assert viz.to_dot(first, **options) == viz.to_dot(second, **options)


def test_node_names_are_walk_positions():
    from tinygrad_rnn.graph import walk
    loss, _, _ = record("rnn", steps=3)
    items = walk(loss)
    dot = Dot(viz.to_dot(loss))
    for node_id in dot.nodes:
        kind, position = node_id[0], int(node_id[1:])
        item = items[position]
        if kind == "n" and hasattr(item, "op") and "\n" not in dot.label(node_id):
            assert dot.label(node_id) == item.op or (item.op == "getitem" and dot.label(node_id).startswith("["))
        elif kind == "v":
            assert dot.first_line(node_id).startswith(item.name)
