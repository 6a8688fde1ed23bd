"""expand_fused: a fused pass drawn as the op-by-op graph it stands for, the picture fused=False draws."""
import dataclasses
import shutil

import numpy as np
import pytest

import tinygrad_rnn as tr
import viz
from tests.viz.dotparse import Dot
from tinygrad_rnn.nn.fused import fused_pass

KINDS = ("RNN", "LSTM", "GRU")
FUSED_OPS = {"RNN": "rnn_tanh_fused", "LSTM": "lstm_fused", "GRU": "gru_fused"}
CELL_LABELS = {"RNN": "RNN cell", "LSTM": "LSTM cell", "GRU": "GRU cell"}
PICTURES = [("unrolled", "ops"), ("unrolled", "cells"), ("unrolled", "states"), ("folded", None)]
SETUPS = {
    "one layer": {},
    "bidirectional": {"bidirectional": True},
    "two layers, bidirectional, dropout": {"num_layers": 2, "bidirectional": True, "dropout": 0.5},
    "lengths, bidirectional": {"bidirectional": True, "lengths": [3, 1]},
    "batch_first, initial state": {"batch_first": True, "hx": True},
    "unbatched": {"unbatched": True},
}


def run(kind, fused, steps=3, batch=2, hx=False, unbatched=False, lengths=None, **options):
    """The loss of one call of a fresh layer (the same weights for fused and op by op)."""
    tr.manual_seed(0)
    layer = getattr(tr.nn, kind)(3, 4, fused=fused, **options)
    rng = np.random.default_rng(0)
    shape = (steps, 3) if unbatched else (batch, steps, 3) if options.get("batch_first") else (steps, batch, 3)
    x = tr.Tensor(rng.standard_normal(shape))
    state = None
    if hx:
        state = tr.Tensor(rng.standard_normal((layer.num_layers * layer.num_directions, batch, 4)),
                          requires_grad=True)
        if kind == "LSTM":
            state = (state, tr.Tensor(np.zeros(state.shape)))
    output, final = layer(x, state, lengths=None if lengths is None else np.array(lengths))
    finals = list(final) if isinstance(final, tuple) else [final]
    return [output.sum().named("loss")] + finals


@pytest.mark.parametrize("setup", sorted(SETUPS))
@pytest.mark.parametrize("kind", KINDS)
def test_expanded_fused_layer_draws_what_fused_false_draws(kind, setup):
    for view, detail in PICTURES:
        op_by_op = viz.to_dot(run(kind, False, **SETUPS[setup]), view=view, detail=detail)
        expanded = viz.to_dot(run(kind, True, **SETUPS[setup]), view=view, detail=detail, expand_fused=True)
        assert expanded == op_by_op, (view, detail)


@pytest.mark.parametrize("kind", KINDS)
def test_default_draws_one_node_per_fused_pass(kind):
    roots = run(kind, True, num_layers=2, bidirectional=True)
    dot = Dot(viz.to_dot(roots))
    assert sum(dot.label(n) == FUSED_OPS[kind] for n in dot.nodes) == 4
    assert not dot.step_clusters()
    expanded = Dot(viz.to_dot(roots, detail="cells", expand_fused=True))
    assert not any(expanded.label(n) == FUSED_OPS[kind] for n in expanded.nodes)
    assert sum(expanded.first_line(n) == CELL_LABELS[kind] for n in expanded.nodes) == 2 * 2 * 3


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_relu"])
def test_a_reverse_pass_with_lengths_expands_step_by_step(mode):
    """fused_pass called directly: every step gets its cluster and its cell, h_n and c_n included."""
    tr.manual_seed(0)
    cell_type = {"lstm": tr.nn.LSTMCell, "gru": tr.nn.GRUCell}.get(mode, tr.nn.RNNCell)
    cell = cell_type(3, 4, **({"nonlinearity": "relu"} if mode == "rnn_relu" else {}))
    x = tr.Tensor(np.random.default_rng(0).standard_normal((4, 2, 3)))
    output, h_n, c_n = fused_pass(mode, x, None, None, cell.weight_ih, cell.weight_hh, cell.bias_ih,
                                  cell.bias_hh, reverse=True, lengths=[4, 2])
    roots = [output.sum()] + [s for s in (h_n, c_n) if s is not None]
    dot = Dot(viz.to_dot(roots, detail="cells", expand_fused=True))
    assert sorted(c.label for c in dot.step_clusters()) == [f"t = {t}" for t in range(4)]
    label = {"lstm": "LSTM cell", "gru": "GRU cell"}.get(mode, "RNN cell")
    assert sum(dot.first_line(n) == label for n in dot.nodes) == 4
    # the reverse pass ends at t = 0: the final state comes out of that step
    states = [n for n in dot.nodes if dot.first_line(n) in ("h(0)", "c(0)")]
    assert states and all(dot.step_of(n).label == "t = 0" for n in states)


def test_drawing_changes_neither_results_nor_gradients_nor_the_random_stream():
    def grads(draw):
        tr.manual_seed(0)
        layer = tr.nn.LSTM(3, 4, bidirectional=True)
        x = tr.Tensor(np.random.default_rng(0).standard_normal((3, 2, 3)), requires_grad=True)
        output, (h_n, c_n) = layer(x)
        loss = output.sum() + (h_n * h_n).sum() + c_n.sum()
        if draw:
            viz.to_dot(loss, expand_fused=True)
        after = tr.nn.Linear(2, 2).weight.numpy()   # the next random numbers
        loss.backward()
        return [loss.numpy(), x.grad, after] + [p.grad for p in layer.parameters()]

    for drawn, plain in zip(grads(True), grads(False)):
        np.testing.assert_array_equal(drawn, plain)


def test_expanding_after_backward_says_what_to_do():
    loss = run("GRU", True)[0]
    loss.backward()
    with pytest.raises(ValueError, match="retain_graph=True"):
        viz.to_dot(loss, expand_fused=True)


def test_expanding_after_backward_with_retain_graph_works():
    loss = run("GRU", True)[0]
    loss.backward(retain_graph=True)
    assert viz.to_dot(loss, expand_fused=True) == viz.to_dot(run("GRU", False)[0])


def test_expanding_under_no_grad_and_in_panels():
    roots = run("LSTM", True)
    with tr.no_grad():
        panels = viz.to_dot({"fused": roots, "expanded": roots}, expand_fused=True)
    assert panels == viz.to_dot({"fused": run("LSTM", False), "expanded": run("LSTM", False)})


def test_draw_expands_as_to_dot_does():
    pytest.importorskip("graphviz", reason="the graphviz package is not installed (pip install graphviz)")
    roots = run("LSTM", True)
    assert viz.draw(roots, expand_fused=True).source == viz.to_dot(roots, expand_fused=True)


def test_the_gradient_view_refuses_expansion():
    with pytest.raises(ValueError, match="gradient view"):
        viz.to_dot(run("RNN", True)[0], view="gradient", expand_fused=True)


@pytest.mark.parametrize("task", ["lm", "adding"])
def test_the_graph_command_models_expand_like_their_op_by_op_copies(task):
    from tinygrad_rnn import cli, factory
    from tinygrad_rnn.train import TrainConfig, build_model
    config = dataclasses.replace(TrainConfig(), task=task, hidden_size=8, num_layers=2, dropout=0.3).check()
    factory.manual_seed(0)
    model, vocab = cli._fresh_model(config)
    vocab_size = model.embedding.num_embeddings if task == "lm" else None
    op_by_op = build_model(dataclasses.replace(config, fused=False), vocab_size)
    op_by_op.load_state_dict(model.state_dict())
    expanded = viz.to_dot(cli.record_steps(model, config, 3, vocab), expand_fused=True)
    assert expanded == viz.to_dot(cli.record_steps(op_by_op, config, 3, vocab))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_the_graph_command_expands_unless_told_not_to(tmp_path, capsys):
    from tinygrad_rnn import cli
    pytest.importorskip("graphviz")
    drawn = {}
    for flag in ("--expand-fused", "--no-expand-fused"):
        path = tmp_path / f"{flag}.svg"
        assert cli.main(["graph", "--cell", "gru", "--hidden-size", "4", "--steps", "2", flag, "--out", str(path)]) == 0
        drawn[flag] = path.read_text()
    assert "gru_fused" not in drawn["--expand-fused"] and "sigmoid" in drawn["--expand-fused"]
    assert "gru_fused" in drawn["--no-expand-fused"] and "sigmoid" not in drawn["--no-expand-fused"]


def test_expand_fused_returns_the_op_by_op_graph_itself():
    from tinygrad_rnn.graph import walk
    loss = run("LSTM", True)[0]
    expanded = viz.expand_fused(loss)
    assert isinstance(expanded, tr.Tensor) and expanded.name == "loss"
    assert {n.op for n in walk(expanded) if hasattr(n, "op")} == {n.op for n in walk(run("LSTM", False)[0])
                                                                   if hasattr(n, "op")}
    plain = run("LSTM", False)
    assert viz.expand_fused(plain) is plain   # nothing fused: the roots themselves
