"""The curvature at a loss cliff: where the gradient jumps, the loss bends sharply (Pascanu et al. 2013).

Beside docs/diag_cliff.png (drawn by vanishing_gradients.py): the same one-unit tanh RNN, the same
line through its weights and the same two SGD runs, with the Hessian's dominant eigenvalue at every
point, found by power iteration on Hessian-vector products (forward over reverse). Writes

  diag_cliff_curvature.png   the loss and its curvature along the line, and along both runs

    python examples/cliff_curvature.py          # about 15-25 seconds
"""
import argparse
import os
import time

import numpy as np
from vanishing_gradients import CLIFF, cliff_model, run_cliff

import tinygrad_rnn as tr
from tinygrad_rnn import diagnostics as D
from tinygrad_rnn.diagnostics.plots import pyplot
from tinygrad_rnn.train.threads import blas_threads

COLORS = {"unclipped": "#d62728", "clipped": "#1f77b4"}  # as in diag_cliff.png


def curvature_of_cliff(points=401):
    """The loss, its gradient's norm and the dominant Hessian eigenvalue along the line through the
    start (b moves, w stays) and along the clipped and unclipped SGD runs of vanishing_gradients."""
    cliff = run_cliff()
    rnn, loss_fn = cliff_model()
    loss = D.parameter_function(rnn, loss_fn, params=[rnn.weight_hh_l0, rnn.bias_hh_l0])  # loss(w, b)
    w0, _ = CLIFF["start"]
    line_b = np.linspace(cliff["line_b"][0], cliff["line_b"][-1], points)
    line = [[np.array([[w0]]), np.array([b])] for b in line_b]
    return {
        "line_b": line_b,
        "line_loss": np.array([loss(*_tensors(point)).item() for point in line]),
        "line_grad": np.array([_gradient_norm(loss, point) for point in line]),
        "line_curvature": D.curvature_along(loss, line),
        "runs": cliff["runs"],
        "run_curvature": {label: D.curvature_along(loss, run["weights"][:-1])  # where each update was taken
                          for label, run in cliff["runs"].items()},
    }


def _tensors(point):
    return [tr.Tensor(w, dtype="float64") for w in point]


def _gradient_norm(loss, point):
    grads = tr.func.grad(loss, argnums=(0, 1))(*_tensors(point))
    return float(np.sqrt(sum((g.numpy() ** 2).sum() for g in grads)))


def positive(values):
    """A log axis shows magnitudes; exact zeros (a saturated tanh: a flat loss) are left out."""
    values = np.abs(np.asarray(values, dtype=np.float64))
    return np.where(values > 0, values, np.nan)


def draw(result, path):
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12.5, 8.2), sharex="col")
    (line_loss, run_loss), (line_curve, run_curve) = axes
    b, curvature = result["line_b"], result["line_curvature"]
    wall = int(np.argmax(np.abs(curvature)))

    line_loss.semilogy(b, result["line_loss"], color="k")
    line_loss.set_ylabel("loss")
    line_loss.set_title("(a) the loss along the line through the start (w = 2.5): a cliff")
    line_curve.semilogy(b, positive(curvature), color="k", label="|largest Hessian eigenvalue|: curvature")
    line_curve.semilogy(b, positive(result["line_grad"]), color="0.55", ls="--", label="||gradient||")
    line_curve.annotate(f"on the wall the loss bends {abs(curvature[wall]) / abs(curvature[0]):.0e} times\n"
                        f"as sharply as at b = {b[0]:g}", xy=(b[wall], abs(curvature[wall])),
                        xytext=(b[wall] + 0.12, abs(curvature[wall]) / 3), fontsize=8.5,
                        arrowprops={"arrowstyle": "->", "color": "0.3"})
    line_curve.set_xlabel("bias b (bias_hh_l0)")
    line_curve.set_ylabel("magnitude")
    line_curve.set_title("(b) the curvature along the same line")
    line_curve.legend(fontsize=8, loc="center right")
    for ax in (line_loss, line_curve):
        ax.axvline(b[wall], color="0.7", lw=0.8, ls=":")
        ax.grid(True, which="major", alpha=0.3)

    jump = int(np.argmax(result["runs"]["unclipped"]["update_norm"]))
    after = f"{jump + 1}-{len(result['run_curvature']['unclipped']) - 1}"
    notes = {"unclipped": f"unclipped: exactly 0 in steps {after}, not drawn\n(tanh saturated: a flat loss)",
             "clipped": "clipped: crosses the wall again (the spikes),\neach step bounded by lr x max_norm = "
                        f"{CLIFF['lr'] * CLIFF['max_norm']:g}"}
    for label, width in (("unclipped", 3), ("clipped", 1.3)):  # the same path until the jump: both visible
        run_loss.semilogy(result["runs"][label]["loss"], color=COLORS[label], lw=width, label=label)
        run_curve.semilogy(positive(result["run_curvature"][label]), color=COLORS[label], lw=width,
                           label=notes[label])
    run_loss.set_ylabel("loss")
    run_loss.set_title(f"(c) SGD, lr {CLIFF['lr']}, without and with clipping at {CLIFF['max_norm']:g}")
    run_loss.legend(fontsize=8)
    spike = abs(result["run_curvature"]["unclipped"][jump])
    run_curve.annotate(f"step {jump}: both runs land on the wall,\ncurvature {spike:.1e}; the unclipped step "
                       f"is thrown\nwhere tanh saturates: flat, no curvature",
                       xy=(jump, spike), xytext=(jump + 12, spike / 20), fontsize=8.5,
                       arrowprops={"arrowstyle": "->", "color": "0.3"})
    run_curve.set_xlabel("SGD step")
    run_curve.set_ylabel("|largest Hessian eigenvalue|")
    run_curve.set_title("(d) the curvature where each update was taken")
    run_curve.set_ylim(1e-3, None)  # room for the legend below the curves
    run_curve.legend(fontsize=8, loc="lower right")
    for ax in (run_loss, run_curve):
        ax.axvline(jump, color="0.7", lw=0.8, ls=":")
        ax.grid(True, which="major", alpha=0.3)

    fig.suptitle("The cliff is where the curvature explodes: the Hessian's largest eigenvalue (in magnitude) "
                 "of the loss (h(T) - 0.7)^2 over (w, b)", fontsize=10.5)
    fig.text(0.01, 0.005, "Power iteration on Hessian-vector products, each one a forward-mode pass through the "
             "gradient's computation (tr.func.jvp of tr.func.grad). The gradient jumps where the loss bends:\n"
             "a step of lr x ||gradient|| taken there overshoots by far. The eigenvalue's sign changes across the "
             "wall; drawn is its magnitude.", fontsize=8.5,
             color="0.2")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default=os.path.join("out", "cliff_curvature"),
                        help="where the PNG goes (--out docs redraws the README's figure)")
    parser.add_argument("--points", type=int, default=401, help="points along the line")
    args = parser.parse_args()
    tic = time.perf_counter()
    with blas_threads(1):
        result = curvature_of_cliff(args.points)
    line, runs = result["line_curvature"], result["run_curvature"]
    print(f"curvature along the line: {np.abs(line).min():.2g} to {np.abs(line).max():.2g}; "
          f"along the unclipped run up to {np.abs(runs['unclipped']).max():.2g}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "diag_cliff_curvature.png")
    draw(result, path)
    print("wrote", os.path.normpath(path), f"in {time.perf_counter() - tic:.0f} s")


if __name__ == "__main__":
    main()
