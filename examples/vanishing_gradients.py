"""Why RNNs forget and LSTMs remember: the lecture's figures, computed from real runs.

A plain tanh RNN, an LSTM and a GRU (32 units each) learn the adding problem at T = 50: the target
is the sum of two marked values, the first marker somewhere in the first 25 steps, so the answer
needs a memory of at least 25 steps. Before and after training the script measures, with
tinygrad_rnn.diagnostics, and draws into out/vanishing_gradients/ (`--out docs` redraws the README's):

  diag_sensitivity.png  ||d output(t) / d x(1)|| over 100 steps: how long the first input is felt
  diag_grad_norms.png   ||dL/dh(t)|| (and ||dL/dc(t)||) of the training loss: how far back it reaches
  diag_eigenvalues.png  eigenvalues of the recurrent weights against the unit circle
  diag_cliff.png        a loss cliff, and training with and without gradient clipping over it

    python examples/vanishing_gradients.py               # about 1-2 minutes on 2 CPU cores
    python examples/vanishing_gradients.py --steps 300   # a quick look: too short for the LSTM to learn

The captions report what the run measured (with --steps 300 they say that the LSTM has not learned).
"""
import argparse
import os
import time

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import diagnostics as D
from tinygrad_rnn.data.tasks import adding_baseline_mse, adding_problem
from tinygrad_rnn.diagnostics.plots import COLORS, plot_eigenvalues, plot_per_step, pyplot
from tinygrad_rnn.nn import functional as F
from tinygrad_rnn.nn.utils import clip_grad_norm_
from tinygrad_rnn.optim import SGD, Adam
from tinygrad_rnn.train.threads import blas_threads

CELLS = {"RNN": tr.nn.RNN, "LSTM": tr.nn.LSTM, "GRU": tr.nn.GRU}
CELL_OPTIONS = {"LSTM": {"forget_bias": 1.0}}  # the usual LSTM recipe (Gers et al. 2000)


class Regressor(tr.nn.Module):
    """A recurrent layer read out by a Linear at the last step: (T, B, 2) -> (B, 1)."""

    def __init__(self, cell, hidden):
        super().__init__()
        self.rnn = CELLS[cell](2, hidden, dtype="float64", **CELL_OPTIONS.get(cell, {}))
        self.head = tr.nn.Linear(hidden, 1, dtype="float64")

    def forward(self, x):
        output, _ = self.rnn(x)
        return self.head(output[-1])


def adding_batch(batch, steps, rng):
    x, y = adding_problem(batch, steps, rng=rng, dtype=np.float64)
    return tr.Tensor(x, dtype="float64"), tr.Tensor(y, dtype="float64")


def measure(model, probe, batch):
    """The diagnostics of one model: sensitivity on the long probe, gradient norms on a training batch."""
    x, y = batch
    blocks = D.recurrent_weights(model.rnn)
    return {
        "sensitivity": D.sensitivity(model.rnn, probe) / np.sqrt(probe.shape[1]),  # per sequence (RMS)
        "gradients": D.state_gradient_norms(model, x, lambda prediction: F.mse_loss(prediction, y)),
        "eigenvalues": D.eigenvalues(D.content_block(blocks)),
        "radius": D.spectral_radius(D.content_block(blocks)),
        "memory": memory_factor(model.rnn, probe),
    }


MEMORY_GATES = {"LSTM": ("f", 1), "GRU": ("z", 1)}  # name, index among the stacked gates (i f g o / r z n)


def memory_factor(layer, probe):
    """What lets a cell keep its state, measured on the probe.

    For a tanh RNN the mean of tanh' = 1 - h^2 (each step multiplies the gradient by diag(tanh') W_hh);
    for an LSTM (forget gate f) or a GRU (update gate z) the gate's mean over steps and sequences for
    its most persistent unit, recomputed from the weights and the layer's outputs.
    """
    with tr.no_grad():
        output = layer(tr.Tensor(probe, dtype="float64"))[0].numpy()
    kind = type(layer).__name__
    if kind not in MEMORY_GATES:
        return float((1 - output ** 2).mean())
    previous = np.concatenate([np.zeros_like(output[:1]), output[:-1]])
    index = MEMORY_GATES[kind][1]
    rows = slice(index * layer.hidden_size, (index + 1) * layer.hidden_size)
    w = {name: p.numpy()[rows] for name, p in layer.named_parameters()}
    pre = probe @ w["weight_ih_l0"].T + w["bias_ih_l0"] + previous @ w["weight_hh_l0"].T + w["bias_hh_l0"]
    return float((1 / (1 + np.exp(-pre))).mean(axis=(0, 1)).max())


def train(model, args, rng):
    optimizer = Adam(model.parameters(), lr=args.lr)
    losses = []
    for _ in range(args.steps):
        x, y = adding_batch(args.batch, args.T, rng)
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses)


def run_cells(args):
    rng = np.random.default_rng(args.seed)
    probe = adding_problem(2, 100, rng=rng, dtype=np.float64)[0]  # 100 steps: twice the training length
    grad_batch = adding_batch(128, args.T, rng)
    results = {}
    for cell in CELLS:
        tic = time.perf_counter()
        tr.manual_seed(args.seed)
        model = Regressor(cell, args.hidden)
        before = measure(model, probe, grad_batch)
        losses = train(model, args, np.random.default_rng(args.seed + 1))
        after = measure(model, probe, grad_batch)
        results[cell] = {"before": before, "after": after, "losses": losses}
        print(f"{cell:>4}: final training MSE {losses[-100:].mean():.4f} (memoryless baseline "
              f"{adding_baseline_mse():.4f}); spectral radius {before['radius']:.2f} -> {after['radius']:.2f}; "
              f"{time.perf_counter() - tic:.0f} s", flush=True)
    return results


# --------------------------------------------------------------------------- the cliff

CLIFF = {"steps": 10, "start": (2.5, 0.0), "target": 0.7, "lr": 0.2, "max_norm": 1.0, "updates": 150}


def cliff_setup():
    """The cliff's two trained weights [w, b] and its loss_fn() (see cliff_model)."""
    rnn, loss_fn = cliff_model()
    return [rnn.weight_hh_l0, rnn.bias_hh_l0], loss_fn


def cliff_model():
    """Pascanu et al.'s cliff in a one-unit tanh RNN (tr.nn.RNN(1, 1)): h(1) = tanh(0.5 + b), then
    h(t) = tanh(w h(t-1) + b), loss (h(T) - 0.7)^2. For w > 1 the state settles on one of two
    attractors, near +1 or near -1; which one flips across a thin wall in the (w, b) plane, and on
    the wall the gradient is huge. Returns the RNN and loss_fn()."""
    rnn = tr.nn.RNN(1, 1, dtype="float64")
    w, b = CLIFF["start"]
    with tr.no_grad():
        for name, value in (("weight_ih_l0", 0.5), ("bias_ih_l0", 0.0), ("weight_hh_l0", w), ("bias_hh_l0", b)):
            getattr(rnn, name).array[...] = value
    x = np.zeros((CLIFF["steps"], 1, 1))
    x[0] = 1.0  # the only input
    x = tr.Tensor(x, dtype="float64")

    def loss_fn():
        _, h_n = rnn(x)
        return ((h_n - CLIFF["target"]) ** 2).sum()
    return rnn, loss_fn


def run_cliff():
    params, loss_fn = cliff_setup()
    axes = (D.axis_direction(params, 0), D.axis_direction(params, 1))  # w alone, b alone
    w0, b0 = CLIFF["start"]
    ws, bs = np.linspace(0.6, 3.4, 141), np.linspace(-1.0, 1.0, 101)
    surface = D.loss_on_plane(loss_fn, params, axes, ws - w0, bs - b0)
    line_b = np.linspace(-0.6, 0.2, 801)
    line = D.loss_along_line(loss_fn, params, axes[1], line_b - b0)
    runs = D.clipping_runs(loss_fn, params, lambda p: SGD(p, lr=CLIFF["lr"]), steps=CLIFF["updates"],
                           max_norm=CLIFF["max_norm"])
    origin = D.landscape.weights_of(params)
    paths = {label: D.plane_coordinates(run["weights"], origin, axes) + (w0, b0) for label, run in runs.items()}
    return {"w": ws, "b": bs, "surface": surface, "line_b": line_b, "line": line, "runs": runs, "paths": paths}


# --------------------------------------------------------------------------- figures

def trained_on(args):
    return (f"trained with {args.steps} Adam steps (lr {args.lr:g}, batch {args.batch}) on the adding problem "
            f"at T = {args.T}")


def remembers(values):
    """Whether a sensitivity curve still feels x(1) after 100 steps: it keeps at least 0.9 of it a step."""
    return D.decay_rate(values) >= 0.9


def draw_sensitivity(results, path, args):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 5))
    curves = {}
    for cell, result in results.items():
        for stage, style in (("after", {"lw": 2}), ("before", {"lw": 1, "ls": "--", "alpha": 0.8})):
            values = result[stage]["sensitivity"]
            label = f"{cell}, {'trained' if stage == 'after' else 'untrained'}: x{D.decay_rate(values):.2f} a step"
            curves[label] = (values, {"color": COLORS[cell], **style})
    plot_per_step(ax, curves, "||d output(t) / d x(1)||",
                  "How strongly the layer's output at step t still depends on the first input x(1)")
    ax.axvline(args.T, color="0.5", lw=0.8, ls=":")
    ax.text(args.T + 1, ax.get_ylim()[1], f"trained on sequences of {args.T} steps", va="top", fontsize=8,
            color="0.4")
    rnn = results["RNN"]["after"]["sensitivity"]
    verdict = "forgets" if not remembers(rnn) else "still feels it"
    ax.annotate(f"the trained RNN {verdict}: at t = 100, x(1) weighs {rnn[-1] / rnn[0]:.0e} of its weight at t = 1",
                xy=(70, rnn[69]), xytext=(12, rnn[69] * 1e-5), fontsize=9, color=COLORS["RNN"],
                arrowprops={"arrowstyle": "->", "color": COLORS["RNN"]})
    gated = [cell for cell in ("LSTM", "GRU") if remembers(results[cell]["after"]["sensitivity"])]
    if gated:
        curve, colour = results[gated[0]]["after"]["sensitivity"], COLORS[gated[0]]
        ax.annotate(f"the trained {' and '.join(gated)} {'remembers' if len(gated) == 1 else 'remember'}",
                    xy=(75, curve[74]), xytext=(60, curve[74] * 1e-4), fontsize=9, color=colour,
                    arrowprops={"arrowstyle": "->", "color": colour})
    ax.legend(fontsize=8.5, loc="upper left", bbox_to_anchor=(1.01, 1), title="fitted rate over 100 steps",
              title_fontsize=8.5)
    fig.text(0.01, 0.01, "Frobenius norm of the Jacobian, exact (backpropagation through the recorded graph); "
             f"root mean square over 2 adding-problem sequences of 100 steps.\nEach layer {trained_on(args)}.",
             fontsize=8, color="0.3")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def draw_gradients(results, path, args):
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5), sharey=True)
    for ax, stage in zip(axes, ("before", "after")):
        curves = {}
        for cell, result in results.items():
            grads = result[stage]["gradients"]
            curves[f"{cell} ||dL/dh(t)||"] = (grads["h"], {"color": COLORS[cell], "lw": 2})
            if "c" in grads:
                curves[f"{cell} ||dL/dc(t)||"] = (grads["c"], {"color": COLORS[cell], "lw": 1.5, "ls": "--"})
        plot_per_step(ax, curves, "gradient norm", ("untrained" if stage == "before" else "trained")
                      + ": the loss's gradient reaching step t")
    axes[1].legend(fontsize=8.5, loc="lower right")
    T = args.T
    fig.suptitle("Backpropagation through time: the gradient of the adding-problem loss (read at the last "
                 f"step, t = {T}) with respect to each step's state;\neach layer {trained_on(args)}", fontsize=10)
    low = axes[0].get_ylim()[0] * 10
    axes[0].annotate("", xy=(0.1 * T, low), xytext=(0.9 * T, low), arrowprops={"arrowstyle": "->", "color": "0.4"})
    axes[0].text(T / 2, low * 3, f"the gradient travels backwards, from the loss at t = {T}", ha="center",
                 fontsize=8.5, color="0.3")
    ratios = ", ".join(f"{cell} {r['after']['gradients']['h'][0] / r['after']['gradients']['h'][-1]:.0e}"
                       for cell, r in results.items())
    fig.text(0.01, 0.01, f"After training, ||dL/dh(1)|| / ||dL/dh({T})||: {ratios}. The first marker lies in "
             f"steps 1-{T // 2}: a gradient that does not reach them cannot teach the layer to keep the value it "
             "marks.", fontsize=8.5, color="0.2")
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def draw_eigenvalues(results, path, args):
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 6.2))
    names = {"RNN": "W_hh", "LSTM": "W_hg (cell candidate block)", "GRU": "W_hn (new state block)"}
    reach = 1.1 * max(max(r[s]["radius"] for s in ("before", "after")) for r in results.values())
    for ax, (cell, result) in zip(axes, results.items()):
        before, after = result["before"], result["after"]
        spectra = {f"untrained, radius {before['radius']:.2f}":
                   (before["eigenvalues"], {"s": 16, "facecolors": "none", "edgecolors": "0.45"}),
                   f"trained, radius {after['radius']:.2f}":
                   (after["eigenvalues"], {"s": 16, "color": COLORS[cell]})}
        plot_eigenvalues(ax, spectra, f"{cell}: eigenvalues of {names[cell]}")
        ax.set_xlim(-reach, reach)
        ax.set_ylim(-reach, reach)
        ax.legend(fontsize=8, loc="lower left")
        ax.text(0.5, -0.16, _eigen_caption(cell, before, after), transform=ax.transAxes, ha="center",
                va="top", fontsize=8.5)
    fig.suptitle("The recurrence as powers of W: eigenvalues inside the unit circle (grey) shrink a "
                 f"signal at every step, those outside grow it\n(each layer {trained_on(args)})")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _eigen_caption(cell, before, after):
    if cell == "RNN":
        outside = [int((np.abs(stage["eigenvalues"]) > 1).sum()) for stage in (before, after)]
        return (f"{outside[1]} eigenvalues lie outside the circle after training\n({outside[0]} before). "
                f"A step multiplies the gradient by\ndiag(tanh') W_hh: the mean tanh' on the probe went\n"
                f"from {before['memory']:.2f} to {after['memory']:.2f}.")
    name, _ = MEMORY_GATES[cell]
    keeps = "c(t) = f * c(t-1) + i * g" if cell == "LSTM" else "h(t) = (1 - z) * n + z * h(t-1)"
    return (f"Its memory runs through {keeps}: the gate {name},\nnot this matrix, sets how long a unit "
            f"remembers.\nThe most persistent unit's mean {name} on the probe:\n"
            f"{before['memory']:.2f} untrained, {after['memory']:.3f} trained.")


def draw_cliff(cliff, path, args):
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12.5, 9))
    (line, plane), (losses, updates) = axes
    colors = {"unclipped": "#d62728", "clipped": "#1f77b4"}
    w0, b0 = CLIFF["start"]

    line.semilogy(cliff["line_b"], cliff["line"], color="k")
    line.set_xlabel("bias b (bias_hh_l0), with w fixed at its start value 2.5")
    line.set_ylabel("loss")
    line.set_title("(a) the loss along a line through the start: a cliff")
    line.text(-0.58, 1.6, "h(T) settles near -1", fontsize=8.5, color="0.3")
    line.text(-0.28, 0.11, "h(T) settles near +1", fontsize=8.5, color="0.3")
    line.axvline(b0, color="0.5", ls=":")
    line.text(b0, line.get_ylim()[0] * 1.5, " start", color="0.3", fontsize=8)

    w, b = np.meshgrid(cliff["w"], cliff["b"])
    image = plane.contourf(w, b, np.log10(cliff["surface"]), levels=np.linspace(-6, 0.5, 27), cmap="viridis",
                           extend="min")
    fig.colorbar(image, ax=plane, label="log10 loss")
    for label, z in (("clipped", 3), ("unclipped", 4)):
        run_path = cliff["paths"][label]
        plane.plot(run_path[:, 0], run_path[:, 1], "-o", color=colors[label] if label == "unclipped" else "white",
                   ms=2.5, lw=1, label=label, zorder=z)
    jump = int(np.argmax(cliff["runs"]["unclipped"]["update_norm"]))
    end = cliff["paths"]["unclipped"][-1]
    plane.annotate(f"unclipped: thrown to w = {end[0]:.1f}, b = {end[1]:.1f},\nwhere tanh saturates and learning stops",
                   xy=cliff["paths"]["unclipped"][jump], xytext=(0.7, 0.75), color="white", fontsize=8,
                   arrowprops={"arrowstyle": "->", "color": "white"})
    plane.plot([w0], [b0], "*", color="white", ms=12)
    plane.text(w0 + 0.06, b0 + 0.05, "start", color="white", fontsize=8.5)
    end = cliff["paths"]["clipped"][-1]
    plane.annotate("clipped: ends in the valley", xy=end, xytext=(end[0] - 0.6, end[1] + 0.35), color="white",
                   fontsize=8.5, arrowprops={"arrowstyle": "->", "color": "white"})
    plane.set_xlim(cliff["w"][0], cliff["w"][-1])
    plane.set_ylim(cliff["b"][0], cliff["b"][-1])
    plane.set_xlabel("recurrent weight w (weight_hh_l0)")
    plane.set_ylabel("bias b (bias_hh_l0)")
    plane.set_title("(b) the loss over (w, b); the cliff is the yellow edge")
    plane.legend(loc="lower left", fontsize=8, facecolor="0.6")

    for label, run in cliff["runs"].items():
        losses.semilogy(run["loss"], color=colors[label], label=label)
        moved = np.where(run["update_norm"] > 0, run["update_norm"], np.nan)  # stuck: no step at all
        updates.semilogy(moved, color=colors[label], label=label)
    losses.set_xlabel("SGD step")
    losses.set_ylabel("loss")
    losses.set_title(f"(c) SGD, lr {CLIFF['lr']}, from the same start")
    losses.legend(fontsize=8)
    bound = CLIFF["lr"] * CLIFF["max_norm"]
    updates.axhline(bound, color="0.4", ls="--", lw=1)
    updates.text(0, bound * 1.3, f"lr x max_norm = {bound:g}: clipping's bound on a step", fontsize=8, color="0.3")
    updates.set_xlabel("SGD step")
    updates.set_ylabel("||weights after - weights before||")
    updates.set_title("(d) the size of every update")
    updates.legend(fontsize=8)
    fig.suptitle(f"A loss cliff in a one-unit tanh RNN over T = {CLIFF['steps']} steps, "
                 f"and gradient clipping at max_norm = {CLIFF['max_norm']:g}")
    fig.text(0.01, 0.005, "On the wall a tiny change of b flips the attractor h(T) settles on, so the gradient there "
             "is huge. The unclipped step that lands on it is thrown far away; clipping bounds every\nstep by "
             "lr x max_norm, so that run crosses the wall a few times but stays near it and reaches the valley "
             "(dark blue, loss ~ 0). Loss (h(T) - 0.7)^2, h(1) = tanh(0.5 + b).", fontsize=8.5, color="0.2")
    fig.tight_layout(rect=(0, 0.035, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default=os.path.join("out", "vanishing_gradients"),
                        help="where the PNGs go (--out docs redraws the README's figures)")
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps per model")
    parser.add_argument("--seq-len", "--T", dest="T", type=int, default=50, help="training sequence length T")
    parser.add_argument("--hidden-size", "--hidden", dest="hidden", type=int, default=32, help="hidden units")
    parser.add_argument("--batch-size", "--batch", dest="batch", type=int, default=32, help="sequences per batch")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the batches")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    tic = time.perf_counter()
    with blas_threads(1):  # a recurrent step's products are small: threads cost more than they give
        results = run_cells(args)
        cliff = run_cliff()
    first = results["RNN"]["after"]["sensitivity"]
    print(f"trained RNN: d output(100) / d x(1) is {first[-1] / first[0]:.1e} of d output(1) / d x(1); "
          f"cliff: the unclipped run ends at loss {cliff['runs']['unclipped']['loss'][-1]:.3f}, "
          f"the clipped one at {cliff['runs']['clipped']['loss'][-1]:.1e}")
    for name, draw, data in (("diag_sensitivity.png", draw_sensitivity, results),
                             ("diag_grad_norms.png", draw_gradients, results),
                             ("diag_eigenvalues.png", draw_eigenvalues, results),
                             ("diag_cliff.png", draw_cliff, cliff)):
        path = os.path.join(args.out, name)
        draw(data, path, args)
        print("wrote", os.path.normpath(path))
    print(f"done in {time.perf_counter() - tic:.0f} s")


if __name__ == "__main__":
    main()
