"""How long viz takes to write the DOT text of a big unrolled graph: a 1,000-step, 2-layer LSTM.

Timed from the recorded graph to the finished text, the graph walk included (viz.to_dot does
both), for every view, medians after a warm-up. For scale, the same nodes and edges handed one
by one to the graphviz package's Digraph (what a drawer built on its API would pay before
writing the text); the walk alone is the floor. No Graphviz layout is run: `dot` on a hundred
thousand nodes takes minutes, which is why max_steps exists.

    python bench/bench_viz.py            # T = 1000, 2 layers, B = 4, I = 32, H = 64
    python bench/bench_viz.py --steps 200
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tinygrad_rnn as tr
import viz
from bench.common import format_ms, interleaved_medians, machine, ratio, table
from tinygrad_rnn.graph import walk
from tinygrad_rnn.tensor import Function

VIEWS = [("unrolled, ops", {}), ("unrolled, ops, max_steps=10", {"max_steps": 10}),
         ("unrolled, cells", {"detail": "cells"}), ("unrolled, states", {"detail": "states"}),
         ("folded", {"view": "folded"}), ("gradient (states)", {"view": "gradient"})]


def record(steps, layers=2, batch=4, inputs=32, hidden=64):
    tr.manual_seed(0)
    lstm = tr.nn.LSTM(inputs, hidden, num_layers=layers, fused=False)
    x = tr.Tensor(np.random.default_rng(0).standard_normal((steps, batch, inputs)))
    with tr.retain_grads():
        output, _ = lstm(x)
        loss = output[-1].sum().named("loss")
    loss.backward()
    return loss


def digraph_by_api(loss):
    """The same nodes and edges (no clusters, no styles) through graphviz.Digraph's node()/edge()."""
    import graphviz
    graph = graphviz.Digraph()
    items = walk(loss)
    position = {id(item): i for i, item in enumerate(items)}
    for i, item in enumerate(items):
        graph.node(f"n{i}", item.op if isinstance(item, Function) else (item.name or "leaf"))
        for parent in getattr(item, "parents", ()):
            graph.edge(f"n{position[id(parent)]}", f"n{i}")
    return graph


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    loss = record(args.steps)
    items = walk(loss)
    text = viz.to_dot(loss)
    print(f"2-layer LSTM, T={args.steps}: {len(items):,} recorded items; DOT of the ops view "
          f"{len(text) / 1e6:.1f} MB, {text.count(chr(10)):,} lines\n{machine()}\n")

    fns = {"walk only": lambda: walk(loss)}
    fns.update({name: (lambda options=options: viz.to_dot(loss, **options)) for name, options in VIEWS})
    fns["graphviz.Digraph API, same nodes"] = lambda: digraph_by_api(loss).source
    times = interleaved_medians(fns, warmup=1, repeats=args.repeats)
    rows = [(name, format_ms(ms), ratio(ms, times["unrolled, ops"])) for name, ms in times.items()]
    print(table(["DOT text of", "ms (median)", "vs to_dot ops"], rows))
    worst = max(times[name] for name, _ in VIEWS)
    print(f"\nslowest view: {worst / 1e3:.2f} s (target: under 2 s)")


if __name__ == "__main__":
    main()
