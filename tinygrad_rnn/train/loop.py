"""The training loop shared by the command line, the demo and the examples.

`train(config)` builds the task's model and optimizer, runs `config.steps` updates with gradient
clipping, evaluates now and then, and saves a checkpoint that holds everything needed to go on
to the same numbers: weights, optimizer and schedule state, the random generators, the task's
position in its data and the loss history.
"""
import contextlib
import dataclasses
import errno
import math
import os
import signal
import sys
import threading
import time

from .. import backend, factory, optim
from ..archive import prepare_output_file
from ..checkpoint import CheckpointError, check_state_compatible, load_checkpoint, save_checkpoint
from ..distributed import data_parallel
from ..generator import default_generator
from ..nn.utils import clip_grad_norm_
from .config import ARCHITECTURE, KEPT_ON_RESUME, OPTIMIZERS, ConfigError, TrainConfig
from .models import build_model
from .report import throughput, write_metrics
from .tasks import make_task

MAX_SKIPPED_IN_A_ROW = 25  # steps with non-finite gradients in a row before training stops


@dataclasses.dataclass
class TrainResult:
    model: object
    optimizer: object
    task: object
    history: dict   # step, loss (per applied step); val_step, val_loss, lr, throughput, train_seconds (per
    step: int       # evaluation); skipped; seconds, items (training time and items so far)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after a whole step, and the state at that step was saved to `checkpoint`."""

    def __init__(self, step, checkpoint, history):
        super().__init__(f"interrupted at step {step}; {checkpoint} holds that step")
        self.step, self.checkpoint, self.history = step, checkpoint, history


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


def _saved_config(path, meta):
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path} holds no training config; was it written by tinygrad_rnn train?")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    try:
        return TrainConfig(**{k: v for k, v in meta["config"].items() if k in known}).check()
    except ConfigError as error:
        raise CheckpointError(f"{path} holds an impossible training config ({error})") from None


def _run_of(path, meta):
    config = _saved_config(path, meta)
    step = meta.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"{path} holds no valid step count ({step!r:.40})")
    return config, step


def read_run(path):
    """The TrainConfig a checkpoint's run was trained with, and the step it has reached."""
    return _run_of(path, load_checkpoint(path)["meta"])


def config_from_checkpoint(path, **overrides):
    """The TrainConfig stored in a checkpoint, with the given fields replaced."""
    return dataclasses.replace(read_run(path)[0], **overrides)


def resume_conflicts(saved, config, fields=ARCHITECTURE + KEPT_ON_RESUME):
    """The fields of `config` that differ from the `saved` one although a resumed run must keep them."""
    return [name for name in fields if getattr(config, name) != getattr(saved, name)]


def build(config, corpus=None):
    """Task, model, optimizer and schedule for a config, seeded as a fresh run is."""
    config.check()
    factory.manual_seed(config.seed)
    task = make_task(config, corpus)
    model = task.build_model()
    optimizer = make_optimizer(config, model.parameters())
    return task, model, optimizer, make_scheduler(config, optimizer)


def save_training_state(path, config, model, optimizer, scheduler, task, history, step):
    """Save everything a resumed run needs; refuses (FloatingPointError) weights that are not finite."""
    _check_finite_weights(model, step, f"so {path} was not written")
    meta = {"step": step, "config": dataclasses.asdict(config), "history": history,
            "rng": default_generator.get_state(), "task": task.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "vocab": "".join(task.corpus.vocab) if hasattr(task, "corpus") else None, "vocab_size": task.vocab_size}
    save_checkpoint(path, model.state_dict(), optimizer.state_dict(), meta)


def checkpoint_device(saved, device=None, what="the checkpoint", log=print):
    """The device to load onto: `device` if given, else `saved`, except that a run saved on cuda comes to
    the CPU, with a line through `log` saying so, where no GPU can be used."""
    if device is not None:
        return backend.check_device(device)
    if saved == "cuda" and not backend.cuda_available():
        log(f"note: {what} was trained on cuda, which is not available here (CuPy or a GPU is missing), "
            f"so it runs on the cpu")
        return "cpu"
    return saved


def load_model(path, device=None, log=print):
    """The model of a checkpoint written by `train` (or the demo) and the checkpoint's meta.

    Returns ``(model, meta)``: the model built from the saved config with the saved weights, and the
    meta dict (``meta["vocab"]``, the characters of a language model in id order, for `generate`;
    ``meta["config"]``, ``meta["step"]``, ``meta["history"]``). `device` ("cpu" or "cuda") puts the
    model there; by default it goes where it was trained, or to the CPU, with a line through `log`,
    when that was a GPU and none can be used here.
    """
    loaded = load_checkpoint(path)
    meta = loaded["meta"]
    config = _saved_config(path, meta)
    config = dataclasses.replace(config, device=checkpoint_device(config.device, device, path, log))
    factory.manual_seed(config.seed)
    model = build_model(config, meta.get("vocab_size"))
    check_state_compatible(model.state_dict(), loaded["model"])
    model.load_state_dict(loaded["model"])
    return model, meta


def _non_finite_parameter(model):
    """The name of the first parameter holding NaN or Inf, or None."""
    for name, p in model.named_parameters():
        if not bool(p.xp.isfinite(p.array).all()):
            return name
    return None


def _check_finite_weights(model, step, consequence):
    name = _non_finite_parameter(model)
    if name is not None:
        raise FloatingPointError(f"the weights are not finite at step {step} ({name} holds NaN or Inf), "
                                 f"{consequence}; an update overflowed: lower the learning rate (--lr)")


def _restore(path, config, model, optimizer, scheduler, task, log):
    """Load the state of `path` into the run; returns (step, history)."""
    loaded = load_checkpoint(path)
    meta = loaded["meta"]
    saved, step = _run_of(path, meta)
    changed = resume_conflicts(saved, config, KEPT_ON_RESUME)
    if changed:
        raise ConfigError(changed[0], f"{getattr(config, changed[0])!r} differs from {getattr(saved, changed[0])!r} "
                                      f"in the checkpoint {path}: its saved state only fits the same "
                                      f"optimizer and schedule; keep them, or start a new run")
    check_state_compatible(model.state_dict(), loaded["model"])
    if loaded["optimizer"] is None:
        raise CheckpointError(f"{path} holds no optimizer state, so training cannot resume from it")
    try:
        model.load_state_dict(loaded["model"])
        optimizer.load_state_dict(loaded["optimizer"])
        if scheduler is not None and meta.get("scheduler") is not None:
            scheduler.load_state_dict(meta["scheduler"])
        task.load_state_dict(meta["task"])
        _restore_generator(meta["rng"], config.seed + step, path, log)
        history = _standard_history(meta["history"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"{path} holds no usable training state ({type(error).__name__}: {error})") from None
    for change in _apply_new_hyperparameters(saved, config, optimizer, scheduler):
        log(f"resuming with {change}")
    if config.steps != saved.steps and config.schedule in ("step", "cosine"):
        log(f"note: the {config.schedule} schedule keeps the span of the saved run ({saved.steps} steps)")
    return step, history


def _restore_generator(state, fresh_seed, path, log):
    """The default generator as the checkpoint left it. A checkpoint written while draws came from
    NumPy's generator holds that generator's state (a dict), which torch's Mersenne Twister cannot take
    up: the run goes on, its weights, optimizer and data position intact, from a generator seeded anew."""
    if not isinstance(state, dict):
        default_generator.set_state(state)
        return
    default_generator.manual_seed(fresh_seed)
    log(f"note: {path} holds the random state of an earlier version's generator; the run goes on with the "
        f"generator seeded with {fresh_seed} (the seed plus the step), so its dropout masks differ from "
        f"those of an uninterrupted run")


def _apply_new_hyperparameters(saved, config, optimizer, scheduler):
    """Set the lr, momentum and weight decay that `config` changes from the saved run; describe each change.

    A new lr rescales the schedule: the rate at this step becomes what it would be had the run
    started from the new lr, as a fresh run with that --lr would have it.
    """
    changes = []
    if config.lr != saved.lr:
        scale = config.lr / saved.lr if saved.lr else None
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] * scale if scale is not None else config.lr
            if "initial_lr" in group:
                group["initial_lr"] = config.lr
        if hasattr(scheduler, "base_lrs"):
            scheduler.base_lrs = [config.lr] * len(optimizer.param_groups)
        if scheduler is not None:
            scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
        now = optimizer.param_groups[0]["lr"]
        changes.append(f"lr {config.lr:g} (the checkpoint's run had {saved.lr:g})"
                       + (f"; the {config.schedule} schedule is at {now:g} now" if now != config.lr else ""))
    for name in ("momentum", "weight_decay"):
        new, old = getattr(config, name), getattr(saved, name)
        if new == old:
            continue
        groups = [group for group in optimizer.param_groups if name in group]
        if not groups:
            changes.append(f"{name} {new:g}, which {config.optimizer} does not use")
            continue
        if name == "momentum" and config.optimizer == "rmsprop" and old == 0:
            raise ConfigError(name, f"cannot turn on momentum ({new:g}) when resuming rmsprop without it: "
                                    f"its saved state has no momentum buffer; start a new run")
        for group in groups:
            group[name] = new
        changes.append(f"{name} {new:g} (the checkpoint's run had {old:g})")
    return changes


def _progress_bar(total, initial, enabled):
    """A tqdm bar on stderr: always when `enabled`, never when False, and on a terminal only when None
    (a log file or a pipe gets the evaluation lines alone, without the bar's repaints)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=True)


def _check_checkpoint_target(checkpoint, resume, overwrite):
    if not resume and not overwrite and os.path.exists(checkpoint):
        raise FileExistsError(errno.EEXIST, "the checkpoint exists already; pass resume=True to continue "
                                            "its run or overwrite=True to replace it", checkpoint)
    prepare_output_file(checkpoint)


def read_scalars(*tensors):
    """Python floats of one-element tensors, read from a GPU in one transfer (each read waits for
    all the work queued there)."""
    xp = tensors[0].xp
    values = xp.stack([t.array.reshape(()).astype(xp.float64) for t in tensors])
    return backend.to_numpy(values).tolist()


@contextlib.contextmanager
def _interrupt_after_the_step(enabled):
    """While training, a first Ctrl-C asks the loop to stop after the step it is in (and save it); a
    second one interrupts at once, as usual. Only in the main thread, and only where Ctrl-C has
    Python's usual meaning (not where it is ignored or handled by the program)."""
    stop = {"asked": False}
    if not enabled or threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield stop
        return

    def ask_to_stop(signum, frame):
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True

    signal.signal(signal.SIGINT, ask_to_stop)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _standard_history(history):
    """The history of a resumed run, with the keys that older checkpoints lack."""
    history.setdefault("skipped", [])
    for key in ("lr", "throughput", "train_seconds"):
        history.setdefault(key, [])
    return history


def train(config, checkpoint=None, resume=False, progress=None, corpus=None, log=print, on_step=None, comm=None,
          overwrite=False, metrics=None):
    """Train as `config` says; with `checkpoint`, save there at each evaluation and at the end.

    `resume=True` continues from `checkpoint` when the file exists, up to `config.steps` steps in
    all (schedules span the saved run's steps, so resume with the same value to get the same run;
    a checkpoint already at `config.steps` or beyond is returned as it is). A new lr, momentum or
    weight decay in `config` is applied to the resumed optimizer and logged. Without `resume`, an
    existing `checkpoint` is only replaced with `overwrite=True`.

    Every `config.eval_every` steps (and at the last) the run evaluates on held-out data and logs a
    line through `log` (None: nothing): the step, the loss (the mean training loss of the steps since
    the previous evaluation, see tinygrad_rnn.train.report), the validation loss and the throughput.
    `progress` shows a tqdm bar as well: True, False, or None for a bar only when stderr is a terminal.
    `metrics`: a path where a CSV with one row per evaluation is rewritten at each one.

    A step whose loss or gradient norm is not finite is skipped (the weights stay as they were), logged
    and listed in `history["skipped"]`; after MAX_SKIPPED_IN_A_ROW in a row, or if the weights
    themselves become non-finite, FloatingPointError stops the run, and no checkpoint with
    non-finite weights is ever written.
    With a `checkpoint`, Ctrl-C (SIGINT) in a single process lets the current step finish, saves the
    state at that step and raises TrainingInterrupted (a KeyboardInterrupt); a second Ctrl-C stops at once.
    `on_step(step, history)` is called after each step (and after its checkpoint, if any).
    `comm` (a tinygrad_rnn.distributed.Communicator) trains data-parallel on its ranks: each rank
    takes its share of every batch, and only rank 0 logs and writes the checkpoint.
    Returns a TrainResult with the model, optimizer, task and loss history.
    """
    task, model, optimizer, scheduler = build(config, corpus)
    parallel = data_parallel(comm, config)
    task = parallel.shard(task)
    log = log if (log is not None and parallel.is_main) else (lambda *args: None)
    progress = progress if parallel.is_main else False
    if checkpoint and parallel.is_main:
        _check_checkpoint_target(checkpoint, resume, overwrite)
    history = _standard_history({"step": [], "loss": [], "val_step": [], "val_loss": [], "skipped": [],
                                 "seconds": 0.0, "items": 0})
    start = 0
    if resume and checkpoint and os.path.exists(checkpoint):
        start, history = _restore(checkpoint, config, model, optimizer, scheduler, task, log)
        log(f"resumed from {checkpoint} at step {start}")
        if start >= config.steps:
            log(f"{checkpoint} is at step {start} already, which reaches steps={config.steps}: nothing to "
                f"train (steps counts all the steps, those done included)")
            return TrainResult(model, optimizer, task, history, start)
    replica = parallel.wrap(model)  # data-parallel: every rank starts from rank 0's weights
    params = list(model.parameters())
    bar = _progress_bar(config.steps, start, progress)
    say = bar.write if bar is not None and log is print else log  # a line above the bar, not through it
    window = []   # losses of the steps since the previous evaluation: what "loss" means
    in_a_row = 0
    saving = bool(checkpoint) and parallel.is_main
    with _interrupt_after_the_step(saving and comm is None) as stop:
        for step in range(start + 1, config.steps + 1):
            tic = time.perf_counter()
            batch = task.batch()
            loss = task.loss(replica, batch)
            optimizer.zero_grad()
            loss.backward()
            parallel.average_gradients()
            # the global norm that clipping computes (without clipping, max_norm=inf leaves the gradients
            # as they are) says whether the step is safe to take; every rank has the same gradients
            value, norm = read_scalars(loss, clip_grad_norm_(params, config.clip or math.inf))
            value = parallel.mean(value)
            if math.isfinite(value) and math.isfinite(norm):
                optimizer.step()
                in_a_row = 0
            else:
                in_a_row = _skip(step, value, norm, in_a_row, history, model, config, say)
            history["seconds"] += time.perf_counter() - tic  # training only: evaluation and saving excluded
            history["items"] += task.items(batch)
            if not in_a_row:
                history["step"].append(step)
                history["loss"].append(value)
                window.append(value)
            lr = optimizer.param_groups[0]["lr"]  # the rate this step was taken with
            if scheduler is not None and not isinstance(scheduler, optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step()
            evaluate = step % config.eval_every == 0 or step == config.steps
            if evaluate:
                _check_finite_weights(model, step, "so the run stops" + (f"; {checkpoint} keeps the last good "
                                                                         f"state" if checkpoint else ""))
                history["val_step"].append(step)
                history["val_loss"].append(task.evaluate(model))
                history["lr"].append(lr)
                history["throughput"].append(throughput(history))
                history["train_seconds"].append(history["seconds"])
                if isinstance(scheduler, optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(history["val_loss"][-1])
                mean = sum(window) / len(window) if window else math.nan
                say(f"step {step}/{config.steps}: loss {mean:.4f}, validation {history['val_loss'][-1]:.4f}, "
                    f"{throughput(history):,.0f} {task.unit}/s")
                window = []
            if bar is not None:
                postfix = {"loss": f"{sum(window) / len(window):.3f}" if window else "-"}
                if history["val_loss"]:
                    postfix["val"] = f"{history['val_loss'][-1]:.3f}"
                postfix[f"{task.unit}/s"] = f"{throughput(history):,.0f}"
                bar.set_postfix(postfix, refresh=False)
                bar.update(1)
            if saving and evaluate:
                save_training_state(checkpoint, config, model, optimizer, scheduler, task, history, step)
            if metrics and evaluate and parallel.is_main:
                write_metrics(metrics, history)
            if on_step is not None:
                on_step(step, history)
            if stop["asked"]:
                if bar is not None:
                    bar.close()
                if not evaluate:
                    save_training_state(checkpoint, config, model, optimizer, scheduler, task, history, step)
                raise TrainingInterrupted(step, checkpoint, history)
    if bar is not None:
        bar.close()
    return TrainResult(model, optimizer, task, history, config.steps)


def _skip(step, loss, norm, in_a_row, history, model, config, log):
    """Record a step left out because its loss or gradients are not finite; returns the count in a row."""
    _check_finite_weights(model, step, "so the run stops")
    history["skipped"].append(step)
    what = f"the loss is {loss}" if not math.isfinite(loss) else f"the gradient norm is {norm}"
    log(f"step {step}: {what}, so the step was skipped and the weights are unchanged "
        f"({len(history['skipped'])} skipped so far)")
    in_a_row += 1
    if in_a_row >= MAX_SKIPPED_IN_A_ROW:
        clipping = (f"clipping (--clip {config.clip:g}) cannot bound a norm that is not finite"
                    if config.clip else "clipping is off")
        raise FloatingPointError(f"the loss or the gradients were not finite at {in_a_row} steps in a row "
                                 f"(steps {step - in_a_row + 1} to {step}), so none of them was applied; "
                                 f"{clipping}: lower the learning rate (--lr) or check the data")
    return in_a_row
