"""The training loop shared by the command line, the demo and the examples.

`train(config)` builds the task's model and optimizer, runs `config.steps` updates with gradient
clipping, evaluates now and then, and saves a checkpoint that holds everything needed to go on
to the same numbers: weights, optimizer and schedule state, the random generators, the task's
position in its data and the loss history.
"""
import dataclasses
import math
import os
import time

import numpy as np

from .. import factory, optim
from ..checkpoint import CheckpointError, check_state_compatible, load_checkpoint, save_checkpoint
from ..distributed import data_parallel
from ..nn.utils import clip_grad_norm_
from .models import build_model
from .tasks import make_task

OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW, "adagrad": optim.Adagrad,
              "rmsprop": optim.RMSprop}
SCHEDULES = ("none", "step", "cosine", "plateau")
# fields that fix the model's shape: a resumed run takes them from the checkpoint
ARCHITECTURE = ("task", "cell", "hidden_size", "embed_size", "num_layers", "dropout", "T", "delay", "text")


@dataclasses.dataclass
class TrainConfig:
    task: str = "lm"            # lm | adding | copy
    cell: str = "lstm"          # rnn | lstm | gru
    hidden_size: int = 128
    embed_size: int = 0         # 0: the hidden size
    num_layers: int = 1
    dropout: float = 0.0
    fused: bool = True          # each layer as one node with hand-written BPTT (same numbers, faster)
    batch_size: int = 32
    seq_len: int = 64           # lm: BPTT length of a batch
    stateful: bool = False      # lm: carry the state across consecutive chunks (truncated BPTT)
    T: int = 100                # adding: sequence length
    delay: int = 20             # copy: blank steps between the symbols and the delimiter
    text: str = ""              # lm: a UTF-8 text file; empty for the Python docs
    optimizer: str = "adam"
    lr: float = 3e-3
    momentum: float = 0.9       # sgd and rmsprop
    weight_decay: float = 0.0
    clip: float = 1.0           # global gradient norm; 0 turns clipping off
    schedule: str = "none"      # none | step | cosine | plateau
    steps: int = 1000
    eval_every: int = 100
    eval_chars: int = 16384     # lm: held-out characters per evaluation
    eval_sequences: int = 512   # adding, copy: size of the fixed validation set
    device: str = "cpu"
    dtype: str = "float32"
    seed: int = 0

    def check(self):
        """Raise ValueError naming the first field with an impossible value."""
        positive = ["hidden_size", "num_layers", "batch_size", "seq_len", "T", "delay", "steps", "eval_every",
                    "eval_chars", "eval_sequences"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        choices = {"task": ("lm", "adding", "copy"), "cell": ("rnn", "lstm", "gru"),
                   "optimizer": tuple(OPTIMIZERS), "schedule": SCHEDULES, "device": ("cpu", "cuda"),
                   "dtype": ("float32", "float64")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        for name in ("lr", "clip", "weight_decay", "momentum", "embed_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.task == "adding" and self.T < 2:
            raise ValueError(f"the adding problem needs T >= 2, got {self.T}")
        return self


@dataclasses.dataclass
class TrainResult:
    model: object
    optimizer: object
    task: object
    history: dict   # step, loss (per step); val_step, val_loss (per evaluation); seconds, items
    step: int


def make_optimizer(config, params):
    extra = {}
    if config.optimizer in ("sgd", "rmsprop"):
        extra["momentum"] = config.momentum
    return OPTIMIZERS[config.optimizer](params, lr=config.lr, weight_decay=config.weight_decay, **extra)


def make_scheduler(config, optimizer):
    if config.schedule == "step":
        return optim.lr_scheduler.StepLR(optimizer, step_size=max(1, config.steps // 3), gamma=0.3)
    if config.schedule == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    if config.schedule == "plateau":
        return optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
    return None


def config_from_checkpoint(path, **overrides):
    """The TrainConfig stored in a checkpoint, with the given fields replaced."""
    meta = load_checkpoint(path)["meta"] or {}
    if "config" not in meta:
        raise CheckpointError(f"{path} holds no training config; was it written by tinygrad_rnn train?")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return dataclasses.replace(TrainConfig(**{k: v for k, v in meta["config"].items() if k in known}),
                               **overrides)


def build(config, corpus=None):
    """Task, model, optimizer and schedule for a config, seeded as a fresh run is."""
    config.check()
    factory.manual_seed(config.seed)
    task = make_task(config, corpus)
    model = task.build_model()
    optimizer = make_optimizer(config, model.parameters())
    return task, model, optimizer, make_scheduler(config, optimizer)


def save_training_state(path, config, model, optimizer, scheduler, task, history, step):
    meta = {"step": step, "config": dataclasses.asdict(config), "history": history,
            "rng": factory.rng().bit_generator.state, "task": task.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "vocab": "".join(task.corpus.vocab) if hasattr(task, "corpus") else None, "vocab_size": task.vocab_size}
    save_checkpoint(path, model.state_dict(), optimizer.state_dict(), meta)


def load_model(path, device=None):
    """The model of a checkpoint, its meta and (for language models) its vocabulary, ready to sample."""
    loaded = load_checkpoint(path)
    meta = loaded["meta"] or {}
    config = config_from_checkpoint(path, device=device) if device else config_from_checkpoint(path)
    factory.manual_seed(config.seed)
    model = build_model(config, meta.get("vocab_size"))
    check_state_compatible(model.state_dict(), loaded["model"])
    model.load_state_dict(loaded["model"])
    return model, meta


def _restore(path, config, model, optimizer, scheduler, task):
    loaded = load_checkpoint(path)
    meta = loaded["meta"] or {}
    check_state_compatible(model.state_dict(), loaded["model"])
    model.load_state_dict(loaded["model"])
    if loaded["optimizer"] is None:
        raise CheckpointError(f"{path} holds no optimizer state, so training cannot resume from it")
    optimizer.load_state_dict(loaded["optimizer"])
    if scheduler is not None and meta.get("scheduler") is not None:
        scheduler.load_state_dict(meta["scheduler"])
    task.load_state_dict(meta["task"])
    factory.rng().bit_generator.state = meta["rng"]
    return meta["step"], meta["history"]


def _progress_bar(total, initial, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=True)


def train(config, checkpoint=None, resume=False, progress=True, corpus=None, log=print, on_step=None, comm=None):
    """Train as `config` says; with `checkpoint`, save there at each evaluation and at the end.

    `resume=True` continues from `checkpoint` when the file exists (up to `config.steps` in all;
    schedules span `config.steps`, so resume with the same value to get the same run).
    `on_step(step, history)` is called after each step (and after its checkpoint, if any).
    `comm` (a tinygrad_rnn.distributed.Communicator) trains data-parallel on its ranks: each rank
    takes its share of every batch, and only rank 0 logs and writes the checkpoint.
    Returns a TrainResult with the model, optimizer, task and loss history.
    """
    task, model, optimizer, scheduler = build(config, corpus)
    parallel = data_parallel(comm, config)
    task = parallel.shard(task)
    log, progress = (log, progress) if parallel.is_main else (lambda *args: None, False)
    history = {"step": [], "loss": [], "val_step": [], "val_loss": [], "seconds": 0.0, "items": 0}
    start = 0
    if resume and checkpoint and os.path.exists(checkpoint):
        start, history = _restore(checkpoint, config, model, optimizer, scheduler, task)
        log(f"resumed from {checkpoint} at step {start}")
    replica = parallel.wrap(model)  # data-parallel: every rank starts from rank 0's weights
    params = list(model.parameters())
    bar = _progress_bar(config.steps, start, progress)
    smoothed = history["loss"][-1] if history["loss"] else None
    for step in range(start + 1, config.steps + 1):
        tic = time.perf_counter()
        batch = task.batch()
        loss = task.loss(replica, batch)
        optimizer.zero_grad()
        loss.backward()
        parallel.average_gradients()
        if config.clip > 0:
            clip_grad_norm_(params, config.clip)
        optimizer.step()
        value = parallel.mean(loss.item())
        history["seconds"] += time.perf_counter() - tic  # training only: evaluation and saving excluded
        history["items"] += task.items(batch)
        if not math.isfinite(value):
            raise FloatingPointError(f"the loss became {value} at step {step}; lower --lr or set --clip")
        history["step"].append(step)
        history["loss"].append(value)
        smoothed = value if smoothed is None else 0.95 * smoothed + 0.05 * value
        if scheduler is not None and not isinstance(scheduler, optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step()
        evaluate = step % config.eval_every == 0 or step == config.steps
        if evaluate:
            history["val_step"].append(step)
            history["val_loss"].append(task.evaluate(model))
            if isinstance(scheduler, optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(history["val_loss"][-1])
        if bar is not None:
            postfix = {"loss": f"{smoothed:.3f}"}
            if history["val_loss"]:
                postfix["val"] = f"{history['val_loss'][-1]:.3f}"
            postfix[f"{task.unit}/s"] = f"{throughput(history):,.0f}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
        elif progress and evaluate:
            log(f"step {step}/{config.steps}: loss {smoothed:.3f}, validation {history['val_loss'][-1]:.3f}, "
                f"{throughput(history):,.0f} {task.unit}/s")
        if checkpoint and evaluate and parallel.is_main:
            save_training_state(checkpoint, config, model, optimizer, scheduler, task, history, step)
        if on_step is not None:
            on_step(step, history)
    if bar is not None:
        bar.close()
    return TrainResult(model, optimizer, task, history, config.steps)


def throughput(history):
    return history["items"] / history["seconds"] if history["seconds"] > 0 else float("nan")


def plot_losses(history, path, title="training loss", baseline=None):
    """Write the per-step loss (smoothed) and the validation loss as a PNG; returns the path.

    baseline: (value, label) of a reference loss drawn as a dashed line, or None.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses = np.asarray(history["step"]), np.asarray(history["loss"])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="batch loss")
    if len(losses) >= 10:
        width = max(1, len(losses) // 50)
        kernel = np.ones(width) / width
        ax.plot(steps[width - 1:], np.convolve(losses, kernel, mode="valid"), color="tab:blue",
                label=f"batch loss, mean of {width}")
    if history["val_loss"]:
        ax.plot(history["val_step"], history["val_loss"], "o-", color="tab:orange", label="validation loss")
    if baseline is not None:
        value, label = baseline
        ax.axhline(value, color="gray", linestyle="--", linewidth=1, label=f"{label} ({value:.3f})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
