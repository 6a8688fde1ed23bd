"""The folded view: one node per role, one loop through a delay per recurrent state, parameters
written on the edges they act on."""
import numpy as np
import pytest

import tinygrad_rnn as tr
import viz
from tests.viz.dotparse import Dot
from tests.viz.handmade import record

STATES = {"rnn": ["h"], "lstm": ["c", "h"], "gru": ["h"]}
CELL = {"rnn": "RNN cell", "lstm": "LSTM cell", "gru": "GRU cell"}


def group_nodes(dot, layer, direction):
    return [n for n in dot.nodes if dot.cluster_of[n].path() == (f"layer {layer}", direction)]


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_one_node_per_role_and_one_loop_per_recurrent_state(kind):
    loss, _, _ = record(kind, steps=4, num_layers=2, bidirectional=True)
    dot = Dot(viz.to_dot(loss, view="folded"))
    assert not dot.step_clusters()
    edges = {(t, h): a for t, h, a in dot.visible_edges()}
    for layer in (0, 1):
        for direction in ("forward", "reverse"):
            nodes = group_nodes(dot, layer, direction)
            by_label = {dot.first_line(n): n for n in nodes}
            cells = [n for n in nodes if dot.first_line(n) == CELL[kind]]
            assert len(cells) == 1
            cell = cells[0]
            delays = [n for n in nodes if dot.label(n) == "z⁻¹"]
            assert len(delays) == len(STATES[kind])          # one loop per recurrent state
            for state in STATES[kind]:
                node = by_label[f"{state}(t)"]
                delay = [d for d in delays if (node, d) in edges]
                assert len(delay) == 1, state
                assert (cell, node) in edges and (delay[0], cell) in edges   # cell -> h -> z^-1 -> cell
                initial = by_label[f"{state}0"]
                assert edges[(initial, delay[0])]["style"] == "dashed"      # h0 fills the delay first
            assert sum(1 for n in nodes if dot.first_line(n) == "x(t)") == 1


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_parameters_are_written_on_the_edges_they_act_on(kind):
    loss, params, _ = record(kind, steps=3)
    dot = Dot(viz.to_dot(loss, view="folded"))
    assert not [n for n in dot.nodes if dot.first_line(n) in params]
    by_label = {dot.first_line(n): n for n in dot.nodes}
    cell = by_label[CELL[kind]]
    edges = {(t, h): a for t, h, a in dot.visible_edges()}
    on_x = edges[(by_label["x(t)"], cell)]["label"].split("\n")
    assert sorted(on_x) == ["bias_ih_l0", "weight_ih_l0"]
    loop = [a for (t, h), a in edges.items() if h == cell and dot.label(t) == "z⁻¹" and "label" in a]
    assert len(loop) == 1
    on_loop = loop[0]["label"].split("\n")
    if kind == "gru":
        # n = tanh(W_in x + b_in + r * (W_hn h + b_hn)): both hidden parameters act on h alone
        assert sorted(on_loop) == ["bias_hh_l0", "weight_hh_l0"]
    else:
        # the recurrent bias is added to the sum of both paths, so it belongs to the cell
        assert on_loop == ["weight_hh_l0"]
        assert dot.label(cell).split("\n")[1:] == ["bias_hh_l0"]


def test_params_false_leaves_the_edges_unlabelled():
    loss, _, _ = record("lstm", steps=3)
    dot = Dot(viz.to_dot(loss, view="folded", params=False))
    assert not [a for _, _, a in dot.visible_edges() if "label" in a]


def test_a_single_step_has_no_loop():
    loss, _, _ = record("rnn", steps=1)
    dot = Dot(viz.to_dot(loss, view="folded"))
    by_label = {dot.first_line(n): n for n in dot.nodes}
    assert {"x(t)", "h(t)", "RNN cell", "h0", "loss"} <= set(by_label)
    assert not [n for n in dot.nodes if dot.label(n) == "z⁻¹"]
    assert (by_label["h0"], by_label["RNN cell"]) in {(t, h) for t, h, _ in dot.visible_edges()}


def test_a_graph_without_steps_folds_to_itself():
    w = tr.Tensor(np.ones((3, 2)), requires_grad=True).named("w")
    loss = (tr.Tensor(np.ones((4, 3))).named("x") @ w).tanh().sum()
    folded, unrolled = Dot(viz.to_dot(loss, view="folded")), Dot(viz.to_dot(loss))
    assert folded.nodes == unrolled.nodes
    assert sorted(folded.edges, key=str) == sorted(unrolled.edges, key=str)


def test_a_step_that_is_only_its_state_gets_its_parameter_on_the_loop():
    w = tr.Tensor(np.full((4, 4), 0.1), requires_grad=True).named("w")
    mask = tr.Tensor(np.ones((2, 4)))
    h = tr.ones(2, 4, requires_grad=True).named("h0")
    with tr.scope("layer", 0), tr.scope("direction", "forward"):
        for t in range(3):
            with tr.scope("t", t):
                h = (h @ w).named("h")     # one op, and it is the state itself: no cell box
    loss = (h * mask).sum()
    dot = Dot(viz.to_dot(loss, view="folded"))
    by_label = {dot.first_line(n): n for n in dot.nodes}
    assert "const" in by_label and "None" not in by_label
    loop = [a for t, h, a in dot.visible_edges() if dot.label(t) == "z⁻¹" and h == by_label["h(t)"]]
    assert [a.get("label") for a in loop] == ["w"]
