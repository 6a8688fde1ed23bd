"""Matplotlib drawings of the diagnostics (imported on demand: matplotlib is optional).

Each function draws into a given Axes, so a script can arrange several models side by side; the
`draw_report` helper writes the figures of one `report.diagnose` result.
"""
import os

import numpy as np

# one colour per kind of cell, in every figure
COLORS = {"RNN": "#d62728", "LSTM": "#1f77b4", "GRU": "#2ca02c"}


def pyplot():
    """matplotlib.pyplot on a file-only backend, or a clear error naming what to install."""
    from ..extras import require
    matplotlib = require("matplotlib", "the diagnostics' figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_per_step(ax, curves, ylabel, title=None, first_step=1):
    """Semilog lines over the time step. `curves`: {label: (values, style dict for ax.plot)}.

    Steps are counted from `first_step` (1, as the lecture writes x(1)); zeros and NaNs are
    left out of a log axis rather than drawn as a drop to the bottom.
    """
    for label, (values, style) in curves.items():
        values = np.asarray(values, dtype=np.float64)
        shown = np.where(values > 0, values, np.nan)
        ax.semilogy(np.arange(len(values)) + first_step, shown, label=label, **style)
    ax.set_xlabel("time step t")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)


def plot_eigenvalues(ax, spectra, title=None):
    """Eigenvalues in the complex plane against the unit circle. `spectra`: {label: (values, style)}."""
    angle = np.linspace(0, 2 * np.pi, 400)
    ax.fill(np.cos(angle), np.sin(angle), color="0.93", zorder=0)
    ax.plot(np.cos(angle), np.sin(angle), color="0.4", lw=1, zorder=1)
    for label, (values, style) in spectra.items():
        ax.scatter(np.real(values), np.imag(values), label=label, zorder=3, **style)
    ax.axhline(0, color="0.75", lw=0.5, zorder=1)
    ax.axvline(0, color="0.75", lw=0.5, zorder=1)
    ax.set_aspect("equal")
    ax.set_xlabel("real part")
    ax.set_ylabel("imaginary part")
    if title:
        ax.set_title(title)


def draw_report(results, title, directory):
    """The figures of one layer's `report.diagnose` result, as PNGs in `directory`; returns their paths."""
    from .spectrum import eigenvalues
    plt = pyplot()
    os.makedirs(directory, exist_ok=True)
    steps = results["steps"]
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.4))
    plot_per_step(left, {"||d output(t) / d x(1)||": (results["sensitivity"], {"color": "k"})},
                  "norm", "how much output(t) still depends on x(1)")
    grads = {f"||dL/d{name}(t)||": (norms, {"ls": ls, "color": "k"})
             for (name, norms), ls in zip(results["gradients"].items(), ("-", "--"))}
    plot_per_step(middle, grads, "norm", f"gradient of a loss on output({steps}) reaching step t")
    middle.legend()
    gate = results["content_gate"]
    plot_eigenvalues(right, {f"W_h{gate}" if gate != "h" else "W_hh":
                             (eigenvalues(results["content_weight"]), {"s": 14, "color": "k"})},
                     f"eigenvalues of W_h{gate if gate != 'h' else 'h'} "
                     f"(radius {results['radius'][gate]:.2f})")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = os.path.join(directory, "diagnose.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
