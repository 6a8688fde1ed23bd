"""Draw the pictures of docs/ from real recorded graphs (needs Graphviz's `dot`).

    python examples/draw_graphs.py                 # writes out/graphs/viz_*.png
    python examples/draw_graphs.py --out docs      # redraws the pictures the README shows
    python examples/draw_graphs.py --out /tmp/pictures --format svg

For each layer (RNN, LSTM, GRU) the unrolled graph of 3 steps with one box per cell, the same with
every primitive over 2 steps (a size that stays readable on a page), and the folded recurrence; then where the gradient vanishes over 50 steps (a plain RNN beside an LSTM),
and a 1,000-step, 2-layer LSTM with the middle steps elided.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tinygrad_rnn as tr
import viz
from tinygrad_rnn.nn import functional as F

LAYERS = ("RNN", "LSTM", "GRU")


def sequence_loss(kind, steps, batch=2, inputs=3, hidden=4, num_layers=1, retain=False, **options):
    """A layer over a random sequence and the mean squared error of its outputs against a target y."""
    tr.manual_seed(0)
    rng = np.random.default_rng(0)
    layer = getattr(tr.nn, kind)(inputs, hidden, num_layers=num_layers, fused=False, **options)
    x = tr.Tensor(rng.standard_normal((steps, batch, inputs))).named("input")
    y = tr.Tensor(rng.standard_normal((batch, hidden))).named("y")
    with tr.retain_grads() if retain else _nothing():
        output, _ = layer(x)
        loss = F.mse_loss(output[-1], y).named("loss")   # the loss reads the last step only
    if retain:
        loss.backward()
    return loss


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default=os.path.join("out", "graphs"), help="folder for the pictures")
    parser.add_argument("--format", default="png", choices=viz.FORMATS, help="picture format")
    args = parser.parse_args()

    def render(name, root, **options):
        path = viz.render(root, os.path.join(args.out, f"viz_{name}.{args.format}"), **options)
        print("wrote", path)

    for kind in LAYERS:
        loss = sequence_loss(kind, steps=3)
        low = kind.lower()
        render(f"{low}_ops", sequence_loss(kind, steps=2), detail="ops", dpi=96,
               title=f"{kind}, 2 steps unrolled: every primitive (detail=\"ops\")")
        render(f"{low}_cells", loss, detail="cells", dpi=110,
               title=f"{kind}, 3 steps unrolled: one box per cell step (detail=\"cells\")")
        render(f"{low}_folded", loss, view="folded", dpi=110,
               title=f"{kind} folded back into its recurrence (view=\"folded\")")

    panels = {
        "plain RNN (tanh)": sequence_loss("RNN", steps=50, batch=4, inputs=4, hidden=16, retain=True),
        "LSTM, PyTorch's initialisation (forget gate about 0.5)":
            sequence_loss("LSTM", steps=50, batch=4, inputs=4, hidden=16, retain=True),
        "LSTM, forget_bias=1.0 (forget gate about 0.73)":
            sequence_loss("LSTM", steps=50, batch=4, inputs=4, hidden=16, retain=True, forget_bias=1.0),
    }
    render("gradient_rnn_vs_lstm", panels, view="gradient", dpi=72,
           title="Where the gradient vanishes: 50 steps, the loss reads the last output only")

    big = sequence_loss("LSTM", steps=1000, num_layers=2)
    render("lstm_1000_steps", big, detail="cells", max_steps=4, dpi=110,
           title="A 2-layer LSTM over 1,000 steps, max_steps=4")


if __name__ == "__main__":
    main()
