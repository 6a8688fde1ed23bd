"""The gradient view colours each state by log10 of its kept gradient's norm."""
import math
import re

import numpy as np
import pytest

import tinygrad_rnn as tr
import viz
from tests.viz.dotparse import Dot
from tests.viz.handmade import record
from tinygrad_rnn.graph import named_nodes
from viz import style


def planted(steps=7):
    """An RNN graph whose h(t) nodes carry planted gradients of norm 10**(t - steps + 1)."""
    loss, _, _ = record("rnn", steps=steps)
    hs = named_nodes(loss, "h")
    assert len(hs) == steps
    for t, node in enumerate(hs):
        g = np.zeros(node.shape)
        g.flat[0] = 10.0 ** (t - steps + 1)
        node.grad = tr.Tensor(g, dtype=g.dtype)
    return loss


def fills(dot):
    return {dot.first_line(n): a["fillcolor"] for n, a in dot.nodes.items() if "fillcolor" in a}


@pytest.mark.parametrize("detail", ["states", "cells", "ops"])
def test_colours_follow_planted_gradient_norms(detail):
    dot = Dot(viz.to_dot(planted(), view="gradient", detail=detail, grad_range=(-6, 0)))
    colour = fills(dot)
    for t in range(7):
        value = t - 6
        assert colour[f"h({t})"] == style.scale_colour((value + 6) / 6)
        node = dot.nodes_named(f"h({t})")[0]
        assert dot.label(node).split("\n")[-1] == f"{value:.2f}"
    assert colour["h(0)"] == style.SCALE[0] and colour["h(6)"] == style.SCALE[-1]
    assert colour["h(3)"] == style.SCALE[4]
    assert colour["h0"] == style.NO_GRAD  # nothing was planted there


def test_default_range_spans_the_data_and_the_legend_shows_it():
    text = viz.to_dot(planted(5), view="gradient")
    colour = fills(Dot(text))
    assert colour["h(0)"] == style.SCALE[0] and colour["h(4)"] == style.SCALE[-1]
    legend = re.search(r"label=(<<table.*>>)", text).group(1)
    assert "-4.0" in legend and "0.0" in legend and "log10" in legend


def test_darker_means_smaller():
    colour = fills(Dot(viz.to_dot(planted(), view="gradient")))
    luminance = [sum(w * c for w, c in zip((0.299, 0.587, 0.114), style._rgb(colour[f"h({t})"])))
                 for t in range(7)]
    assert luminance == sorted(luminance)


def test_real_backward_with_retain_grads_labels_each_state_with_its_norm(device):
    with tr.retain_grads():
        loss, _, _ = record("lstm", steps=6, device=device)
    loss.backward()
    dot = Dot(viz.to_dot(loss, view="gradient"))
    for name in ("h", "c"):
        for t, node in enumerate(named_nodes(loss, name)):
            expected = math.log10(np.linalg.norm(node.grad.numpy()))
            drawn = dot.nodes_named(f"{name}({t})")[0]
            assert float(dot.label(drawn).split("\n")[-1]) == pytest.approx(expected, abs=0.006)


def test_retain_grad_on_one_tensor_colours_only_that_state():
    w = tr.Tensor(np.full((4, 4), 0.3), requires_grad=True).named("weight_hh_l0")
    h, states = tr.zeros(2, 4).named("h0"), []
    with tr.scope("layer", 0), tr.scope("direction", "forward"):
        for t in range(3):
            with tr.scope("t", t):
                h = (h @ w + 1.0).tanh().named("h")
            states.append(h)
    states[1].retain_grad()
    loss = h.sum()
    loss.backward()
    colour = fills(Dot(viz.to_dot(loss, view="gradient")))
    assert colour["h(1)"] != style.NO_GRAD
    assert colour["h(0)"] == colour["h(2)"] == style.NO_GRAD


def test_zero_gradient_and_no_gradient_are_told_apart():
    loss = planted(3)
    named_nodes(loss, "h")[0].grad = tr.zeros(2, 4)
    dot = Dot(viz.to_dot(loss, view="gradient"))
    assert dot.label(dot.nodes_named("h(0)")[0]).endswith("grad 0")
    assert dot.label(dot.nodes_named("h0")[0]).endswith("constant")   # zeros that need no gradient


def test_panels_share_one_scale():
    low, high = planted(3), planted(7)
    text = viz.to_dot({"short": low, "long": high}, view="gradient")
    dot = Dot(text)
    # written bottom panel first, because dot stacks them upwards when time runs left to right
    assert [c.label for c in dot.root.children] == ["long", "short"]
    assert all(n.startswith("p0_") for n in dot.root.children[1].all_nodes())
    first = {dot.first_line(n): a["fillcolor"] for n, a in dot.nodes.items() if n.startswith("p0_")
             and "fillcolor" in a}
    # h(2) of the short run has norm 1, the top of the shared scale that spans 1e-6 .. 1
    assert first["h(2)"] == style.SCALE[-1] and first["h(0)"] == style.scale_colour(4 / 6)
    assert all(n.startswith(("p0_", "p1_")) for n in dot.nodes)


def test_bad_grad_range_is_refused():
    with pytest.raises(ValueError, match="grad_range"):
        viz.to_dot(planted(3), view="gradient", grad_range=(0, -1))
    with pytest.raises(ValueError, match="grad_range"):
        viz.to_dot(planted(3), view="gradient", grad_range="wide")
