"""Pictures that never mislead: a graph built by hand from primitives, with the names a newcomer gives
it, is drawn as what it is; labels carry the index of a slice, the full names of a model's weights,
a legend whose values differ, and no node without its inputs."""
import re
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
import viz

from .dotparse import Dot
from .handmade import record

LEGEND_VALUE = re.compile(r'<td bgcolor="#[0-9a-f]{6}" width="48"><font color="\w+">([^<]+)</font></td>')


def hand_built_lstm(steps=3, name_inputs=None):
    """An LSTM written out with tensors: one product for the four gates, which stay unnamed; the input
    is a slice of a sequence that needs no gradient. name_inputs(t) names x[t], or leaves it unnamed."""
    rng = np.random.default_rng(0)
    w_x = tr.Tensor(rng.standard_normal((3, 16)), requires_grad=True).named("W_x")
    w_h = tr.Tensor(rng.standard_normal((4, 16)), requires_grad=True).named("W_h")
    xs = tr.Tensor(rng.standard_normal((steps, 2, 3)))
    h, c = tr.zeros(2, 4).named("h0"), tr.zeros(2, 4).named("c0")
    for t in range(steps):
        with tr.scope("t", t):
            x = xs[t] if name_inputs is None else xs[t].named(name_inputs(t))
            i, f, g, o = (x @ w_x + h @ w_h).chunk(4, 1)
            c = (f.sigmoid() * c + i.sigmoid() * g.tanh()).named("c")
            h = (o.sigmoid() * c.tanh()).named("h")
    return h.sum().named("loss")


def test_a_cell_built_by_hand_is_not_called_an_rnn_cell():
    loss = hand_built_lstm()
    cells = Dot(viz.to_dot(loss, detail="cells"))
    boxes = [n for n in cells.nodes if cells.step_of(n) is not None and "ops" in cells.label(n)]
    assert len(boxes) == 3 and {cells.first_line(n) for n in boxes} == {"cell"}
    folded = Dot(viz.to_dot(loss, view="folded"))
    assert "RNN cell" not in {folded.first_line(n) for n in folded.nodes}
    # a real Elman step keeps its name
    rnn_loss, _, _ = record("rnn", steps=2)
    assert "RNN cell" in {Dot(viz.to_dot(rnn_loss, detail="cells")).first_line(n)
                          for n in Dot(viz.to_dot(rnn_loss, detail="cells")).nodes}


def test_steps_outside_any_layer_scope_draw_without_a_missing_cluster():
    steps = [tr.randn(2, 4, requires_grad=True)]
    for t in range(3):
        with tr.scope("t", t):
            steps.append((steps[-1] * 0.5).tanh().named("h"))
    dot = viz.to_dot(tr.stack(steps[1:]).sum(), detail="cells")   # the stack reads every step's h
    assert "cluster_None" not in dot and "of 3 steps" in dot


def test_an_input_named_with_its_step_is_not_numbered_twice():
    loss = hand_built_lstm(name_inputs=lambda t: f"x({t})")
    for detail in ("ops", "cells"):
        labels = {Dot(viz.to_dot(loss, detail=detail)).first_line(n) for n in Dot(viz.to_dot(loss, detail=detail)).nodes}
        assert {"x(0)", "x(1)", "x(2)"} <= labels and not any(")(" in label for label in labels)
    folded = Dot(viz.to_dot(loss, view="folded"))
    assert "x(t)" in {folded.first_line(n) for n in folded.nodes}   # one role, whatever step it names


def test_an_unnamed_input_without_gradient_is_drawn_as_the_input():
    loss = hand_built_lstm()
    for detail in ("ops", "cells"):
        dot = Dot(viz.to_dot(loss, detail=detail))
        inputs = [n for n in dot.nodes if dot.first_line(n).startswith("input(")]
        assert sorted(dot.first_line(n) for n in inputs) == ["input(0)", "input(1)", "input(2)"]
        assert all(dot.label(n).split("\n")[1] == "(2, 3)" and dot.step_of(n) is not None for n in inputs)
        assert not [n for n in dot.nodes if dot.first_line(n) == "const"]
    folded = Dot(viz.to_dot(loss, view="folded"))
    assert "input(t)" in {folded.first_line(n) for n in folded.nodes}


def test_a_slice_shows_its_index():
    x = tr.randn(5, 2, 8, requires_grad=True)
    ids = tr.Tensor(np.array([[1], [2]]))
    loss = (x[-1][:, 0:4].sum() + x[1:3, ..., None].sum() + tr.randn(4, 3, requires_grad=True)[ids].sum())
    labels = {Dot(viz.to_dot(loss)).label(n) for n in Dot(viz.to_dot(loss)).nodes}
    assert {"[-1]", "[:, 0:4]", "[1:3, ..., None]", "[ids (2, 1)]"} <= labels


def test_an_index_assignment_shows_its_index():
    h = tr.randn(2, 4, requires_grad=True)
    out = tr.zeros(3, 2, 4)
    for t in range(3):
        out[t] = (h * t).tanh()
    out[:, 0] = 0
    labels = {Dot(viz.to_dot(out.sum())).label(n) for n in Dot(viz.to_dot(out.sum())).nodes}
    assert {"[0] =", "[1] =", "[2] =", "[:, 0] = 0"} <= labels and "indexput" not in labels


def test_without_parameters_nothing_made_from_them_is_left_alone():
    loss, _, _ = record("rnn", steps=2)
    dot = Dot(viz.to_dot(loss, params=False))
    heads = {h for _, h, _ in dot.visible_edges()}
    ops = [n for n in dot.nodes if n.startswith("n") and "\n" not in dot.label(n)]
    assert ops and all(n in heads for n in ops)   # every op drawn has an input drawn
    assert "permute" not in {dot.label(n) for n in ops}


def test_one_elided_step_is_one_step():
    loss, _, _ = record("rnn", steps=3)
    dot = Dot(viz.to_dot(loss, max_steps=2))
    assert [dot.label(n) for n in dot.nodes if n.startswith("e")] == ["⋯ 1 step ⋯\nt = 1"]


def test_a_narrow_gradient_range_has_a_legend_that_reads():
    loss, _, _ = record("rnn", steps=3)
    with tr.retain_grads():
        loss, _, _ = record("rnn", steps=3)
    loss.backward()
    values = LEGEND_VALUE.findall(viz.to_dot(loss, view="gradient", grad_range=(-0.93, -0.87)))
    assert values == ["-0.93", "-0.92", "-0.91", "-0.90", "-0.89", "-0.88", "-0.87"]
    values = LEGEND_VALUE.findall(viz.to_dot(loss, view="gradient", grad_range=(-6, 0)))
    assert values == ["-6.0", "-5.0", "-4.0", "-3.0", "-2.0", "-1.0", "0.0"]


def test_the_command_line_names_each_weight_by_its_place_in_the_model(monkeypatch, tmp_path):
    from tinygrad_rnn import cli
    from tinygrad_rnn.train import TrainConfig
    drawn = {}

    def to_dot_instead(root, path, **options):
        drawn["dot"] = viz.to_dot(root, **options)
        return path

    monkeypatch.setattr(viz, "render", to_dot_instead)
    config = TrainConfig(cell="gru", hidden_size=4, embed_size=3)
    model, vocab = cli._fresh_model(config)
    cli.draw_graph(model, config, 2, str(tmp_path / "g.svg"), vocab=vocab)
    names = {Dot(drawn["dot"]).first_line(n) for n in Dot(drawn["dot"]).nodes}
    assert {"embedding.weight", "rnn.weight_ih_l0", "rnn.bias_hh_l0", "head.weight", "head.bias"} <= names
    assert not {"weight", "bias"} & names


def test_a_slice_keeps_its_index_in_the_drawing_after_backward():
    x = tr.randn(3, 4, requires_grad=True)
    y = (x[:, 1:3] * 2).sum()
    y.backward()
    assert 'label="[:, 1:3]"' in viz.to_dot(y)


def test_a_whole_sequence_pass_drawn_as_one_node_says_so():
    fused = tr.nn.LSTM(3, 4)
    out, _ = fused(tr.randn(3, 2, 3))
    with pytest.warns(UserWarning, match="lstm_fused.*expand_fused=False"):
        viz.to_dot(out.sum(), expand_fused=False)
    compiled = tr.nn.Recurrent(tr.nn.LayerNormLSTMCell, 3, 4)
    out, _ = compiled(tr.randn(3, 2, 3))
    loss = out.sum()
    loss.backward()   # releases what the pass received: its steps cannot be drawn
    with pytest.warns(UserWarning, match="compiled.*retain_graph=True"):
        viz.to_dot(loss)
    out, _ = fused(tr.randn(3, 2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        viz.to_dot(out.sum())   # drawn in full by default: nothing to say
