"""What a training run reports: its loss, the metrics file and the loss curve.

"loss" means one thing everywhere (the progress bar, the evaluation lines, the summary, metrics.csv
and the curve in loss.png): the mean training loss of the steps since the previous evaluation,
per item of the task (nats per character for a language model, the mean squared error of a
sequence for the adding problem, nats per recalled symbol for the copy task). "validation" is the
same loss on held-out data, measured at each evaluation. The curve also shows each batch's own
loss, faintly, for its spread.
"""
import csv
import io
import math
import os

import numpy as np

LOSS_MEANING = "the mean training loss of the steps since the previous evaluation"
METRICS_COLUMNS = ("step", "loss", "val_loss", "lr", "items_per_s", "train_seconds")


def throughput(history):
    """Items (characters, sequences) per second of training so far, evaluation and saving excluded."""
    return history["items"] / history["seconds"] if history["seconds"] > 0 else float("nan")


def window_losses(history):
    """The loss at each evaluation: the mean of the batch losses of the steps since the one before.

    Computed from the per-step losses, so it holds for runs resumed from any checkpoint. NaN for an
    evaluation with no applied step since the previous one (all were skipped).
    """
    steps, losses = np.asarray(history["step"], dtype=np.int64), np.asarray(history["loss"], dtype=np.float64)
    means, previous = [], 0
    for val_step in history["val_step"]:
        inside = (steps > previous) & (steps <= val_step)
        means.append(float(losses[inside].mean()) if inside.any() else math.nan)
        previous = val_step
    return means


def _padded(values, length):
    """A per-evaluation column recorded since some version: NaN where an older checkpoint has none."""
    values = list(values or [])
    return [math.nan] * (length - len(values)) + values[-length:] if length else []


def metrics_rows(history):
    """One dict per evaluation, with the columns of METRICS_COLUMNS."""
    count = len(history["val_step"])
    columns = (history["val_step"], window_losses(history), history["val_loss"],
               _padded(history.get("lr"), count), _padded(history.get("throughput"), count),
               _padded(history.get("train_seconds"), count))
    return [dict(zip(METRICS_COLUMNS, values)) for values in zip(*columns)]


def write_metrics(path, history):
    """Write the run's metrics as CSV, one row per evaluation, replacing the file atomically."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(METRICS_COLUMNS)
    for row in metrics_rows(history):
        writer.writerow(row["step"] if name == "step" else _number(row[name]) for name in METRICS_COLUMNS)
    write_text(path, text.getvalue())
    return path


def _number(value):
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.6g}"


def write_text(path, text):
    """Write `text` to a temporary file beside `path` and rename it into place: no half-written file."""
    folder, name = os.path.split(os.path.abspath(path))
    partial = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        with open(partial, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def plot_losses(history, path, title="training loss", baseline=None):
    """Write the loss curve as a PNG; returns the path. Needs matplotlib (ImportError otherwise).

    The loss (see LOSS_MEANING) and the validation loss at each evaluation, each batch's loss faintly
    behind them; baseline: (value, label) of a reference loss drawn as a dashed line, or None.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(history["step"], history["loss"], color="tab:blue", alpha=0.2, linewidth=0.8, label="loss of each batch")
    if history["val_step"]:
        first = min(history["step"][:1] + history["val_step"][:1]) - 1
        ax.stairs(window_losses(history), [first] + list(history["val_step"]), color="tab:blue", linewidth=1.8,
                  baseline=None, label="loss: mean over the steps since the previous evaluation")
        ax.plot(history["val_step"], history["val_loss"], "o-", color="tab:orange", markersize=4,
                label="validation loss")
    if baseline is not None:
        value, label = baseline
        ax.axhline(value, color="gray", linestyle="--", linewidth=1, label=f"{label} ({value:.3f})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
