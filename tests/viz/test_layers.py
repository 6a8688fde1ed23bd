"""The drawings of the library's own RNN, LSTM and GRU layers (PyTorch's API)."""
import numpy as np
import pytest

import tinygrad_rnn as tr
import viz
from tests.viz.dotparse import Dot

LAYERS = {"RNN": ("RNN cell", ["h"]), "LSTM": ("LSTM cell", ["c", "h"]), "GRU": ("GRU cell", ["h"])}


def run(kind, steps=3, num_layers=2, bidirectional=True):
    tr.manual_seed(0)
    layer = getattr(tr.nn, kind)(3, 4, num_layers=num_layers, bidirectional=bidirectional, fused=False)
    x = tr.Tensor(np.random.default_rng(0).standard_normal((steps, 2, 3)))
    output, _ = layer(x)
    return output.sum().named("loss"), layer


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_steps_cluster_by_layer_and_direction(kind):
    loss, _ = run(kind)
    dot = Dot(viz.to_dot(loss, detail="cells"))
    groups = {}
    for c in dot.step_clusters():
        groups.setdefault(c.path()[:-1], set()).add(c.label)
    for layer_index in (0, 1):
        for direction in ("forward", "reverse"):
            assert groups[(f"layer {layer_index}", direction)] == {"t = 0", "t = 1", "t = 2"}
    cells = [n for n in dot.nodes if dot.first_line(n) == LAYERS[kind][0]]
    assert len(cells) == 3 * 2 * 2


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_parameters_once_each_reaching_every_step(kind):
    loss, layer = run(kind)
    names = [name for name, _ in layer.named_parameters()]
    dot = Dot(viz.to_dot(loss, detail="cells"))
    for name in names:
        nodes = dot.nodes_named(name)
        assert len(nodes) == 1, name
        reached = {dot.step_of(h).label for t, h, _ in dot.visible_edges()
                   if t == nodes[0] and dot.step_of(h) is not None}
        assert reached == {"t = 0", "t = 1", "t = 2"}, name


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_folds_to_one_loop_per_state(kind):
    loss, layer = run(kind)
    dot = Dot(viz.to_dot(loss, view="folded"))
    cell_label, states = LAYERS[kind]
    cells = [n for n in dot.nodes if dot.first_line(n) == cell_label]
    delays = [n for n in dot.nodes if dot.label(n) == "z⁻¹"]
    assert len(cells) == 4 and len(delays) == 4 * len(states)
    labels = [a.get("label", "") for _, _, a in dot.visible_edges()]
    for name, _ in layer.named_parameters():
        written = [label for label in labels if name in label.split("\n")]
        in_cells = [n for n in cells if name in dot.label(n).split("\n")]
        assert len(written) + len(in_cells) == 1, name


def test_layer_gradient_view_after_retain_grads():
    tr.manual_seed(0)
    layer = tr.nn.LSTM(3, 4, fused=False)
    x = tr.Tensor(np.random.default_rng(0).standard_normal((5, 2, 3)))
    with tr.retain_grads():
        output, _ = layer(x)
        loss = output[-1].sum()
    loss.backward()
    dot = Dot(viz.to_dot(loss, view="gradient"))
    for role in "hc":
        for t in range(5):
            node = dot.nodes_named(f"{role}({t})")[0]
            float(dot.label(node).split("\n")[-1])   # a number, not "no grad kept"
