"""The adding problem at T = 100: a tanh RNN against an LSTM and a GRU.

Each sequence is 100 (value, marker) pairs; the target is the sum of the two marked values, one
marker in each half. A model that forgets predicts the mean and scores MSE 1/6 = 0.167. Backprop
through all 100 steps, with clipping; the gradient reaching the first marker must survive ~50-100
steps of the recurrence, which the gated cells manage and the tanh RNN does not.

    python examples/adding_problem.py                  # about 75 seconds on 2 CPU cores
    python examples/adding_problem.py --device cuda    # the same on the GPU (CuPy)
"""
import argparse
import time

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn.data import adding_baseline_mse, adding_problem
from tinygrad_rnn.nn import functional as F
from tinygrad_rnn.nn.utils import clip_grad_norm_
from tinygrad_rnn.optim import Adam
from tinygrad_rnn.train import SequenceRegressor
from tinygrad_rnn.train.threads import blas_threads


def train_cell(cell, args, val_x, val_y):
    tr.manual_seed(args.seed)
    model = SequenceRegressor(2, args.hidden, 1, cell=cell, device=args.device)
    opt = Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    val_x, val_y = tr.Tensor(val_x, device=args.device), tr.Tensor(val_y, device=args.device)
    curve = []
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = adding_problem(args.batch, args.T, rng=rng)
        prediction, _ = model(tr.Tensor(x, device=args.device))
        loss = F.mse_loss(prediction, tr.Tensor(y, device=args.device))
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        if step % args.eval_every == 0:
            with tr.no_grad():
                val = F.mse_loss(model(val_x)[0], val_y).item()
            curve.append((step, val))
            print(f"  {cell:>4} step {step:5d}  train MSE {loss.item():.4f}  validation MSE {val:.4f}", flush=True)
    return curve, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seq-len", "--T", dest="T", type=int, default=100, help="sequence length T")
    parser.add_argument("--hidden-size", "--hidden", dest="hidden", type=int, default=32, help="hidden units")
    parser.add_argument("--batch-size", "--batch", dest="batch", type=int, default=64, help="sequences per batch")
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps per cell")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam's learning rate")
    parser.add_argument("--clip", type=float, default=1.0, help="global gradient-norm clip")
    parser.add_argument("--eval-every", type=int, default=100, help="steps between validations")
    parser.add_argument("--cells", default="rnn,lstm,gru", help="the cells to train, comma-separated")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cpu (NumPy) or cuda (CuPy)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the batches")
    parser.add_argument("--plot", default="out/adding_problem.png", help="where the validation curves go")
    args = parser.parse_args()

    val_x, val_y = adding_problem(1000, args.T, rng=12345)
    baseline = adding_baseline_mse()
    results = {}
    for cell in args.cells.split(","):
        print(f"{cell.upper()}, T={args.T}, hidden {args.hidden}, batch {args.batch}, Adam lr {args.lr}:")
        results[cell] = train_cell(cell, args, val_x, val_y)

    print(f"\nvalidation MSE after {args.steps} steps (predicting the mean scores {baseline:.3f}):")
    for cell, (curve, seconds) in results.items():
        print(f"  {cell:>4}: {curve[-1][1]:.4f}   ({seconds:.0f} s)")

    import os

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for cell, (curve, _) in results.items():
        ax.plot(*zip(*curve), marker="o", markersize=3, label=cell.upper())
    ax.axhline(baseline, color="gray", linestyle="--", label="predict the mean (1/6)")
    ax.set_yscale("log")
    ax.set(xlabel="optimizer step", ylabel="validation MSE",
           title=f"Adding problem, T = {args.T}: hidden {args.hidden}, {args.steps} Adam steps of batch {args.batch}")
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.plot) or ".", exist_ok=True)
    fig.savefig(args.plot, dpi=110)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    with blas_threads(1):  # small matrix products: one BLAS thread is fastest (see tinygrad_rnn/train/threads.py)
        main()
