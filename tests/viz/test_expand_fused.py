"""Every view of a default layer draws its passes step by step: the picture fused=False draws.

A default layer records each (layer, direction) pass as one node: hand-written (RNN, LSTM, GRU) or
compiled (any other cell). viz rebuilds each op by op; recorded under retain_grads, the pass kept
every step's state gradients in its backward, so the gradient view colours them too.
"""
import contextlib
import dataclasses
import shutil
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
import viz
from examples.lecture_cells import LectureLSTM
from tests.viz.dotparse import Dot
from tinygrad_rnn.graph import walk
from tinygrad_rnn.nn.fused import fused_pass

KINDS = ("RNN", "LSTM", "GRU")
CELLS = {"LayerNormLSTM": tr.nn.LayerNormLSTMCell, "lecture LSTM": LectureLSTM}
ALL_KINDS = KINDS + tuple(CELLS)
PASS_OPS = {"RNN": "rnn_tanh_fused", "LSTM": "lstm_fused", "GRU": "gru_fused",
            "LayerNormLSTM": "layernormlstm_compiled", "lecture LSTM": "lecturelstm_compiled"}
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


def layer_of(kind, fused, **options):
    if kind in CELLS:
        return tr.nn.Recurrent(CELLS[kind], 3, 4, fused=fused, **options)
    return getattr(tr.nn, kind)(3, 4, fused=fused, **options)


def run(kind, fused, steps=3, batch=2, hx=False, unbatched=False, lengths=None, backward=False, **options):
    """The roots of one call of a fresh layer (the same weights for the default and op by op):
    the loss and the final states; with backward=True recorded under retain_grads, then backward."""
    tr.manual_seed(0)
    layer = layer_of(kind, fused, **options)
    rng = np.random.default_rng(0)
    shape = (steps, 3) if unbatched else (batch, steps, 3) if options.get("batch_first") else (steps, batch, 3)
    x = tr.Tensor(rng.standard_normal(shape))
    state = None
    if hx:
        sizes = layer.state_sizes
        shape = (layer.num_layers * layer.num_directions, batch)
        state = tuple(tr.Tensor(rng.standard_normal(shape + (size,)), requires_grad=k == 0)
                      for k, size in enumerate(sizes))
        state = state[0] if len(state) == 1 else state
    with tr.retain_grads() if backward else contextlib.nullcontext():
        output, final = layer(x, state, lengths=None if lengths is None else np.array(lengths))
        finals = list(final) if isinstance(final, tuple) else [final]
        loss = ((output * output).sum() + finals[0].sum()).named("loss")
    if backward:
        loss.backward()
    return [loss] + finals


def default_and_op_by_op(kind, setup, **extra):
    return run(kind, None, **SETUPS[setup], **extra), run(kind, False, **SETUPS[setup], **extra)


@pytest.mark.parametrize("setup", sorted(SETUPS))
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_default_layer_draws_what_fused_false_draws(kind, setup):
    default, op_by_op = default_and_op_by_op(kind, setup)
    assert any(getattr(n, "whole_sequence", False) for n in walk(default))   # a pass node per (layer, direction)
    for view, detail in PICTURES:
        with warnings.catch_warnings():
            warnings.simplefilter("error")   # nothing drawn less, so nothing to say
            drawn = viz.to_dot(default, view=view, detail=detail)
        assert drawn == viz.to_dot(op_by_op, view=view, detail=detail), (view, detail)


@pytest.mark.parametrize("setup", ["one layer", "two layers, bidirectional, dropout", "lengths, bidirectional",
                                   "batch_first, initial state"])
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_the_gradient_view_of_a_default_layer_colours_what_fused_false_colours(kind, setup):
    """Recorded under retain_grads, each pass kept dL/dh(t) (and dL/dc(t)) of every step in its
    backward: the same states carry the same numbers as the op-by-op graph's."""
    default, op_by_op = default_and_op_by_op(kind, setup, backward=True)
    for detail in ("states", "cells", "ops"):
        drawn = viz.to_dot(default, view="gradient", detail=detail)
        assert drawn == viz.to_dot(op_by_op, view="gradient", detail=detail), detail


def test_a_reverse_layer_with_lengths_draws_its_first_step_last_with_the_state_it_ends_with():
    roots = run("LayerNormLSTM", None, bidirectional=True, lengths=[3, 1])
    dot = Dot(viz.to_dot(roots, detail="cells"))
    assert sorted({c.label for c in dot.step_clusters()}) == [f"t = {t}" for t in range(3)]
    assert not any(dot.label(n).startswith(PASS_OPS["LayerNormLSTM"]) for n in dot.nodes)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_expand_fused_false_draws_one_node_per_pass_and_says_so(kind):
    roots = run(kind, None, num_layers=2, bidirectional=True)
    with pytest.warns(UserWarning, match=f"{PASS_OPS[kind]}.*expand_fused=False"):
        dot = Dot(viz.to_dot(roots, expand_fused=False))
    assert sum(dot.label(n).startswith(PASS_OPS[kind]) for n in dot.nodes) == 4
    assert not dot.step_clusters()
    expanded = Dot(viz.to_dot(roots, detail="cells"))
    assert not any(expanded.label(n).startswith(PASS_OPS[kind]) for n in expanded.nodes)
    if kind in CELL_LABELS:
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
    dot = Dot(viz.to_dot(roots, detail="cells"))
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


def test_after_backward_a_pass_without_its_values_is_one_node_and_the_warning_says_what_to_do():
    for kind in ("GRU", "LayerNormLSTM"):
        loss = run(kind, None)[0]
        loss.backward()
        with pytest.warns(UserWarning, match=f"{PASS_OPS[kind]}.*retain_graph=True.*retain_grads"):
            dot = Dot(viz.to_dot(loss))
        assert any(dot.label(n).startswith(PASS_OPS[kind]) for n in dot.nodes)
        with pytest.raises(ValueError, match="retain_graph=True"):
            viz.to_dot(loss, expand_fused=True)   # asked for in full: an error


@pytest.mark.parametrize("kind", ["LSTM", "lecture LSTM"])
def test_a_pass_recorded_under_retain_grads_draws_its_steps_after_backward(kind):
    default, op_by_op = run(kind, None, backward=True), run(kind, False, backward=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert viz.to_dot(default, detail="cells") == viz.to_dot(op_by_op, detail="cells")


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


def test_outside_retain_grads_a_pass_keeps_nothing_more():
    """Per-step gradients and the values for a drawing after backward are kept under retain_grads
    only: otherwise a pass holds what it held before, and nothing after backward."""
    for kind in ("LSTM", "LayerNormLSTM"):
        tr.manual_seed(0)
        layer = layer_of(kind, None)
        x = tr.randn(5, 2, 3)
        for keep in (False, True):
            with tr.retain_grads() if keep else contextlib.nullcontext():
                output, _ = layer(x)
            node = output.grad_fn
            before = sum(a.nbytes for a in node.saved_arrays())
            assert "step_grads" not in node.__dict__
            output.sum().backward()
            if keep:
                assert sorted(node.step_grads["h"]) == list(range(5))
            else:
                assert node.__dict__ == {} and before > 0


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
