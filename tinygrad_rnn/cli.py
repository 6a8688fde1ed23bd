"""The command line: train, sample, graph, diagnose and demo (`python -m tinygrad_rnn --help`).

Every option is checked before any work starts: a value that cannot work ends in one line on stderr
that names the option, exit status 2, with nothing written. Errors met while working exit with 1.

One vocabulary across the commands: --hidden-size, --num-layers, --seq-len (the length of a
sequence), --steps (optimizer steps, nothing else) and --device; old spellings still work, with a
note (see tinygrad_rnn.spellings). `train` and `demo` write each run into a folder of its own
(--out, or a new time-stamped one under out/): the checkpoint model.npz, metrics.csv and loss.png,
so no run throws its model away or overwrites another's outputs.
"""
import argparse
import contextlib
import dataclasses
import os
import sys
import time

from . import backend
from .archive import check_output_file, check_output_folder
from .checkpoint import load_checkpoint
from .diagnostics import command as diagnose_command
from .extras import MissingPackage, available, missing, require
from .spellings import OldSpelling, add_option, old_spelling_notes, spelling
from .train import LOSS_MEANING, OPTIMIZERS, SCHEDULES, ConfigError, NumberRange, TrainConfig
from .train.config import RANGES, SEED_RANGE

PROG = "tinygrad-rnn"

# What each TrainConfig field means on the command line; the defaults come from TrainConfig itself.
TRAIN_OPTIONS = {
    "task": (("lm: next-character language model; adding: the adding problem (a regression over a "
              "sequence); copy: recall 10 symbols after a delay"), ["lm", "adding", "copy"]),
    "cell": ("recurrent layer: rnn (tanh Elman), lstm or gru", ["rnn", "lstm", "gru"]),
    "hidden_size": ("hidden units per layer", None),
    "embed_size": ("lm/copy: size of the character embedding (0: the hidden size)", None),
    "num_layers": ("stacked recurrent layers", None),
    "dropout": ("dropout between stacked layers (with --num-layers > 1)", None),
    "fused": (("run each recurrent layer as one fused node with hand-written BPTT: the same numbers, "
               "faster; --no-fused records every gate op by op"), None),
    "batch_size": ("sequences per batch", None),
    "seq_len": (("time steps of a training sequence: lm: characters per sequence, i.e. how far BPTT "
                 "reaches back; adding: the sequence length T (--T, its old spelling, still works); "
                 "copy: set by --delay"), None),
    "stateful": (("lm: read the text in order and carry the hidden state from batch to batch, "
                  "detached (truncated BPTT); otherwise each batch is random windows"), None),
    "T": ("adding: sequence length (deprecated: --seq-len)", None),
    "delay": ("copy: blank steps between the symbols and the recall signal", None),
    "text": ("lm: train on this UTF-8 text file instead of the Python documentation", None),
    "optimizer": ("update rule", list(OPTIMIZERS)),
    "lr": ("learning rate; with --resume, a new value rescales the saved run's schedule", None),
    "momentum": ("momentum of sgd and rmsprop", None),
    "weight_decay": ("L2 penalty (decoupled for adamw)", None),
    "clip": ("clip the global gradient norm to this value (0: no clipping)", None),
    "schedule": (("learning-rate schedule: none, step (x0.3 every third of the run), cosine (to 0 at the "
                  "end) or plateau (halve when the validation loss stalls)"), list(SCHEDULES)),
    "steps": (("optimizer steps in all: a resumed run counts the steps already done, and stops at once "
               "if its checkpoint has reached this many"), None),
    "eval_every": (("every this many steps (and at the last): evaluate on held-out data, print a line, "
                    "save the checkpoint and metrics.csv"), None),
    "eval_chars": ("lm: held-out characters per evaluation", None),
    "eval_sequences": ("adding/copy: size of the fixed validation set", None),
    "device": ("cpu (NumPy) or cuda (CuPy)", ["cpu", "cuda"]),
    "dtype": ("float32 or float64", ["float32", "float64"]),
    "seed": ("seed of the weights, the batches and dropout", None),
}

METAVARS = {"text": "PATH", "T": "N", "delay": "N", "seed": "N"}
BLAS_THREADS = NumberRange(int, 0, 1024)
PICTURE_FORMATS = (".svg", ".png", ".pdf")  # what viz.render writes
RUNS = "out"                                # where time-stamped run folders go
CHECKPOINT, METRICS, LOSS_CURVE = "model.npz", "metrics.csv", "loss.png"   # the files of a run folder

DEMO = TrainConfig(task="lm", cell="lstm", hidden_size=192, embed_size=32, batch_size=32, seq_len=64,
                   optimizer="adam", lr=4e-3, clip=1.0, schedule="cosine", steps=2400, eval_every=400,
                   eval_chars=8192)
DEMO_PRIME = "The "


class Parser(argparse.ArgumentParser):
    """Bad arguments end in one line on stderr and exit status 2, without the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class UsageError(ValueError):
    """An option whose value cannot work, found after parsing (a file it names, values that clash)."""

    def __init__(self, option, problem):
        self.option, self.problem = option, problem
        super().__init__(f"argument {option}: {problem}")


def _flag(name):
    return "--" + name.replace("_", "-")


def _describe_os_error(error):
    reason = (error.strerror or str(error)).lower()
    return f"{reason}: {error.filename}" if error.filename else reason


@contextlib.contextmanager
def _blame(option):
    """Problems of the file or folder an option names become a UsageError of that option."""
    try:
        yield
    except ValueError as error:  # CheckpointError among them
        if isinstance(error, (ConfigError, UsageError)):
            raise
        raise UsageError(option, str(error)) from None
    except OSError as error:
        if isinstance(error, BrokenPipeError):
            raise
        raise UsageError(option, _describe_os_error(error)) from None


def _check_ranges(args, ranges):
    """For options parsed without a range (those of diagnose): raise UsageError for a value out of range."""
    for name, accepted in ranges.items():
        value = getattr(args, name, None)
        problem = accepted.problem(value) if value is not None else None
        if problem:
            raise UsageError(spelling(args, name), problem)


def _add_train_options(parser, only=None):
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        if only is not None and field.name not in only:
            continue
        text, choices = TRAIN_OPTIONS[field.name]
        default = getattr(defaults, field.name)
        if field.type in (bool, "bool"):
            parser.add_argument(_flag(field.name), action=argparse.BooleanOptionalAction, default=None,
                                help=f"{text} (default: {'on' if default else 'off'})")
            continue
        accepted = RANGES.get(field.name)
        options = {"type": accepted.parse if accepted else type(default), "choices": choices, "default": None,
                   "metavar": None if choices else METAVARS.get(field.name, type(default).__name__.upper())}
        if field.name == "T":  # the old spelling of --seq-len for the adding problem, hidden from --help
            parser.add_argument("--T", action=OldSpelling, new_name="--seq-len", help=argparse.SUPPRESS, **options)
            continue
        shown = f"{default} for lm, {defaults.T} for adding" if field.name == "seq_len" else default
        add_option(parser, _flag(field.name), help=f"{text} (default: {shown if shown != '' else 'none'})",
                   **options)


def _add_device(parser, default, text):
    add_option(parser, "--device", choices=backend.DEVICES, default=default, help=text)


def build_parser():
    parser = Parser(prog=PROG, description="Train, sample and draw recurrent networks built on tinygrad_rnn.",
                    epilog="Run '%(prog)s COMMAND --help' for the options of a command.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    train = commands.add_parser(
        "train", help="train a model on a built-in task",
        description=f"Train an RNN, LSTM or GRU on a built-in task. Each run writes into a folder of its own "
                    f"(--out): the checkpoint {CHECKPOINT} (at every evaluation, at the end and on Ctrl-C), "
                    f"{METRICS} (one row per evaluation) and the loss curve {LOSS_CURVE}; language models also "
                    f"print a sample. 'loss' is always {LOSS_MEANING}; 'validation' is that loss on held-out "
                    f"data. A step whose loss or gradients are not finite is skipped and reported.")
    _add_train_options(train)
    train.add_argument("--out", metavar="DIR", help=f"the run's folder (default: a new one, {RUNS}/train/DATE_TIME)")
    train.add_argument("--checkpoint", metavar="PATH", help=f"where to save the model and optimizer state "
                       f"(.npz); its folder is created (default: DIR/{CHECKPOINT} of --out)")
    train.add_argument("--resume", action="store_true", help="continue the run whose checkpoint is --checkpoint, "
                       "or the one in --out, if it exists; the model, optimizer and schedule come from the "
                       "checkpoint, --lr, --momentum, --weight-decay and the other options may change")
    train.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint and outputs with "
                       "a new run (without it, or --resume, an existing checkpoint is never touched)")
    train.add_argument("--sample-length", type=NumberRange(int, 0).parse, default=200, metavar="N",
                       help="lm: characters to sample after training (0: none; default: %(default)s)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (it is drawn on stderr only "
                       "when that is a terminal; the evaluation lines are printed either way)")
    _add_blas_threads(train)

    sample = commands.add_parser(
        "sample", help="generate text from a language-model checkpoint",
        description=f"Generate text from a checkpoint written by 'train --task lm' or 'demo' (the {CHECKPOINT} "
                    f"of its run folder).")
    sample.add_argument("--checkpoint", metavar="PATH", required=True, help="checkpoint (.npz) to load")
    sample.add_argument("--prime", default=None,
                        help=f"text to start from (default: {DEMO_PRIME!r} where the model knows those characters, "
                             f"else the first character of its vocabulary)")
    sample.add_argument("--length", type=NumberRange(int, 1).parse, default=400, metavar="N",
                        help="characters to generate (default: %(default)s)")
    sample.add_argument("--temperature", type=NumberRange(float, 0).parse, default=0.8, metavar="T",
                        help="softmax temperature: lower is safer, higher more varied, 0 always takes the "
                             "most likely character (default: %(default)s)")
    sample.add_argument("--seed", type=SEED_RANGE.parse, default=0, metavar="N",
                        help="seed of the sampling (default: %(default)s)")
    _add_device(sample, None, "cpu (NumPy) or cuda (CuPy) (default: the one it was trained on, or cpu when "
                              "that is cuda and CuPy is missing)")

    graph = commands.add_parser(
        "graph", help="draw a model's unrolled computational graph",
        description="Record a few steps of a model (from --checkpoint, or a fresh one of the given shape) "
                    "with their loss and draw the graph with viz and Graphviz.")
    graph.add_argument("--checkpoint", metavar="PATH", help="model to draw (default: a fresh model)")
    _add_train_options(graph, only={"task", "cell", "hidden_size", "embed_size", "num_layers", "seed"})
    add_option(graph, "--seq-len", "--steps", type=NumberRange(int, 1).parse, default=3, metavar="N",
               help="time steps to unroll (default: %(default)s)")
    _add_device(graph, None, "cpu (NumPy) or cuda (CuPy) (default: cpu; for --checkpoint the device it was "
                             "trained on, or cpu when that is cuda and CuPy is missing)")
    graph.add_argument("--view", choices=["unrolled", "folded", "gradient"], default="unrolled",
                       help="unrolled: every step; folded: the recurrence as a loop; gradient: steps "
                            "coloured by the norm of their gradient (default: %(default)s)")
    graph.add_argument("--detail", choices=["ops", "cells"], default=None,
                       help="one node per primitive (ops) or per cell step (cells) (default: ops)")
    graph.add_argument("--expand-fused", action=argparse.BooleanOptionalAction, default=True,
                       help="draw each fused layer op by op, every gate of every step (default); "
                            "--no-expand-fused draws one node per layer and direction")
    graph.add_argument("--out", metavar="PATH", default=f"{RUNS}/graph.svg",
                       help="picture to write; .svg, .png or .pdf (default: %(default)s)")

    diagnose_command.add_arguments(commands.add_parser(
        "diagnose", help="gradient diagnostics of a recurrent layer: spectrum, sensitivity, gradient norms per step",
        description="Why RNNs forget and LSTMs remember, measured on a fresh layer or on the recurrent "
                    "layer of a checkpoint: the spectrum of W_hh, the sensitivity of each output to the "
                    "first input, and the gradient norm per step."))

    demo = commands.add_parser(
        "demo", help="train a character LSTM on the Python docs in about two minutes",
        description="The main demonstration: train an LSTM language model on CPython's documentation "
                    "topics, show the progress, print text generated before and after training, and "
                    f"write the checkpoint, {METRICS}, the loss curve and the unrolled graph into the "
                    "run's folder.")
    demo.add_argument("--out", metavar="DIR", help=f"the run's folder (default: a new one, {RUNS}/demo/DATE_TIME)")
    demo.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run in --out")
    demo.add_argument("--steps", type=NumberRange(int, 1).parse, default=DEMO.steps, metavar="N",
                      help="optimizer steps (default: %(default)s)")
    _add_device(demo, "cpu", "cpu (NumPy) or cuda (CuPy) (default: %(default)s)")
    demo.add_argument("--seed", type=SEED_RANGE.parse, default=DEMO.seed, metavar="N",
                      help="seed of the weights, the batches and the samples (default: %(default)s)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar (it is drawn on stderr only "
                      "when that is a terminal; the evaluation lines are printed either way)")
    _add_blas_threads(demo)
    return parser


def _add_blas_threads(parser):
    parser.add_argument("--blas-threads", type=BLAS_THREADS.parse, default=1, metavar="N",
                        help="threads NumPy's BLAS may use for matrix products; 1 is fastest for the small "
                             "products of a recurrent step and stays fast on a busy machine; 0 keeps the "
                             "library's own setting (default: %(default)s)")


# ------------------------------------------------------------------------------ run folders

def _new_run_folder(kind):
    """A path for a new run folder, out/KIND/DATE_TIME, not taken yet (run_folder creates it)."""
    base = os.path.join(RUNS, kind, time.strftime("%Y-%m-%d_%H%M%S"))
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}_{n}"
    return path


def _earlier_outputs(folder, names):
    return [name for name in names if os.path.exists(os.path.join(folder, name))]


@dataclasses.dataclass
class RunPaths:
    """Where a run writes: its folder, and a checkpoint given on the command line (else one in the folder)."""

    folder: str
    given_checkpoint: str = None
    new_folder: bool = False     # a time-stamped folder this run creates

    @property
    def checkpoint(self):
        return self.given_checkpoint or os.path.join(self.folder, CHECKPOINT)

    @property
    def metrics(self):
        return os.path.join(self.folder, METRICS)

    @property
    def loss_curve(self):
        return os.path.join(self.folder, LOSS_CURVE)


@contextlib.contextmanager
def run_folder(paths):
    """Create the run's folder (and the folders above it) for the work inside; yields the RunPaths.

    A new time-stamped folder is taken with mkdir, so two runs started in the same second get two
    folders. If the work fails, the folders created for it are removed again when still empty.
    """
    created, folder = [], os.path.abspath(paths.folder)
    above = []
    parent = os.path.dirname(folder)
    while not os.path.isdir(parent):
        above.append(parent)
        parent = os.path.dirname(parent)
    for path in reversed(above):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
            created.append(path)
    name, n = paths.folder, 1
    while True:
        try:
            os.mkdir(name)
            created.append(name)
            break
        except FileExistsError:
            if not paths.new_folder:
                break
            n += 1
            name = f"{paths.folder}_{n}"
    try:
        yield dataclasses.replace(paths, folder=name)
    except BaseException:
        for path in reversed(created):
            try:
                os.rmdir(path)
            except OSError:
                break
        raise


def _train_paths(args):
    """Every path train writes, checked before the data is even read."""
    if args.resume and args.overwrite:
        raise UsageError("--overwrite", "contradicts --resume: continue the checkpoint's run, or replace it")
    if args.resume and not (args.checkpoint or args.out):
        raise UsageError("--resume", "needs --checkpoint PATH, or --out DIR of the run to continue")
    folder = args.out or _new_run_folder("train")
    checkpoint = args.checkpoint or os.path.join(folder, CHECKPOINT)
    blame = "--checkpoint" if args.checkpoint else "--out"
    with _blame(blame):
        check_output_file(checkpoint)
    if os.path.exists(checkpoint) and not (args.resume or args.overwrite):
        if args.checkpoint:
            raise UsageError("--checkpoint", f"{checkpoint} exists already; pass --resume to continue its run, "
                                             f"or --overwrite to replace it with a new one")
        raise UsageError("--out", f"{folder} holds a run already ({CHECKPOINT}); pass --resume to continue its "
                                  f"run, or --overwrite to replace it with a new one")
    with _blame("--out"):
        check_output_folder(folder)
    earlier = _earlier_outputs(folder, (METRICS, LOSS_CURVE)) if args.out else []
    if earlier and not (args.resume or args.overwrite):
        raise UsageError("--out", f"{folder} holds the outputs of another run ({', '.join(earlier)}); choose a "
                                  f"new folder, or pass --overwrite to replace them")
    return RunPaths(folder, args.checkpoint, new_folder=not args.out)


def _config_from_args(args, checkpoint):
    """TrainConfig defaults, then the checkpoint's when resuming, then what was given on the command line.

    Returns the config and the step the checkpoint is at (None for a new run). For the adding problem
    --seq-len sets the sequence length T (--T, its old spelling, wins when both are given).
    """
    from .train import read_run, resume_conflicts
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    resuming = args.resume and os.path.exists(checkpoint)
    saved, step = None, None
    if resuming:
        with _blame("--checkpoint" if args.checkpoint else "--out"):
            saved, step = read_run(checkpoint)
    task = given.get("task") or (saved or TrainConfig()).task
    if task == "adding" and "seq_len" in given:
        given.setdefault("T", given.pop("seq_len"))
    if saved is not None and "device" not in given:
        from .train import checkpoint_device
        given["device"] = checkpoint_device(saved.device, None, checkpoint)
    config = dataclasses.replace(saved or TrainConfig(), **given)
    if saved is not None:
        changed = resume_conflicts(saved, config)
        if changed:
            values = ", ".join(f"{getattr(saved, name)!r}" for name in changed)
            raise UsageError(", ".join(map(_train_flag(args), changed)),
                             f"{'differs' if len(changed) == 1 else 'differ'} from the checkpoint {checkpoint} "
                             f"({values}): a resumed run keeps the model, optimizer and schedule it was saved "
                             f"with; leave {'it' if len(changed) == 1 else 'them'} out, or start a new run "
                             f"with --overwrite")
    return config.check(), step


def _train_flag(args):
    """How to name a TrainConfig field in an error: as the user spelled it (T: --T or --seq-len)."""
    def flag(name):
        if name == "T":
            return "--T" if getattr(args, "T", None) is not None else spelling(args, "seq_len")
        return spelling(args, name)
    return flag


def _print_sample(title, text):
    print(f"\n--- {title} " + "-" * max(0, 60 - len(title)))
    print(text)
    print("-" * 65)


def _note_old_spellings(args):
    for note in old_spelling_notes(args, f"{PROG} {args.command}"):
        print(note, file=sys.stderr)


def _note_missing_bar(no_progress):
    if not no_progress and sys.stderr.isatty() and not available("tqdm"):
        print(f"note: {missing('tqdm', 'the progress bar')}", file=sys.stderr)


# ------------------------------------------------------------------------------ commands

def command_train(args):
    from . import distributed
    from .train import train
    paths = _train_paths(args)
    config, done = _config_from_args(args, paths.checkpoint)
    if done is not None and done >= config.steps:
        print(f"{paths.checkpoint} is at step {done} already, which reaches --steps {config.steps}: nothing to "
              f"train (--steps counts all the steps, those done included; give a larger one to go on)")
        return 0
    comm = distributed.communicator_from_environment(config.device)  # None unless mpirun started several ranks
    if comm is not None:
        distributed.check_equal_shards(config.batch_size, comm.world_size)
        if comm.rank > 0:  # rank 0 alone prints, plots, samples and writes the checkpoint
            with distributed.abort_on_error(comm):
                train(config, checkpoint=paths.checkpoint, resume=args.resume, overwrite=args.overwrite,
                      progress=False, comm=comm)
            return 0
    if config.device == "cuda":
        backend.xp_for("cuda")  # fail now, with the install hint, not after building the data
    _note_old_spellings(args)
    _note_missing_bar(args.no_progress)
    with run_folder(paths) as paths:
        return _train_in(paths, args, config, done, comm)


def _train_in(paths, args, config, done, comm):
    from . import distributed
    from .train import TrainingInterrupted, generate, throughput, train, window_losses
    where = f"from step {done} to step {config.steps}" if done is not None else f"for {config.steps} steps"
    print(f"training {config.cell} on task {config.task} {where} "
          f"(hidden {config.hidden_size}, batch {config.batch_size}, {config.optimizer} lr {config.lr:g}, "
          f"device {config.device})")
    print(f"run folder: {paths.folder}" + (f" (checkpoint: {paths.checkpoint})" if args.checkpoint else ""))
    if comm is not None:
        print(f"data-parallel over {comm.world_size} ranks ({comm.backend}), "
              f"{config.batch_size // comm.world_size} sequences of each batch per rank")
    try:
        with distributed.abort_on_error(comm):
            result = train(config, checkpoint=paths.checkpoint, resume=args.resume, overwrite=args.overwrite,
                           progress=False if args.no_progress else None, comm=comm, metrics=paths.metrics)
    except TrainingInterrupted as stop:
        _try_plot(stop.history, paths.loss_curve, _curve_title(config), None)
        print(f"\ninterrupted: the checkpoint {stop.checkpoint} holds step {stop.step}; continue with "
              f"'{PROG} train {_resume_option(args, paths)} --resume'", file=sys.stderr)
        return 130
    history, task = result.history, result.task
    losses = window_losses(history)
    loss = losses[-1] if losses else float("nan")
    val = history["val_loss"][-1] if history["val_loss"] else float("nan")
    print(f"step {result.step}: loss {loss:.4f}, validation {val:.4f} "
          f"({task.baseline_label} {task.baseline():.4f}), {throughput(history):,.0f} {task.unit}/s")
    if history["skipped"]:
        listed = ", ".join(map(str, history["skipped"][:10])) + (", ..." if len(history["skipped"]) > 10 else "")
        print(f"{len(history['skipped'])} steps were skipped because their loss or gradients were not finite "
              f"(steps {listed}); the weights never took them")
    written = [paths.checkpoint, paths.metrics]
    plot = _try_plot(history, paths.loss_curve, _curve_title(config), task)
    written += [plot] if plot else []
    print("wrote " + ", ".join(written))
    if config.task == "lm" and args.sample_length > 0:
        prime = _prime_for(task.corpus.vocab, task.corpus.decode(task.corpus.train_ids[:4]))
        _print_sample("sample", prime + generate(result.model, task.corpus.vocab, prime, args.sample_length, 0.8,
                                                 rng=config.seed))
    return 0


def _curve_title(config):
    return f"{config.cell.upper()}, hidden {config.hidden_size}, on task {config.task}"


def _resume_option(args, paths):
    return f"--checkpoint {paths.checkpoint}" if args.checkpoint else f"--out {paths.folder}"


def _prime_for(vocab, opening=None):
    """The demo's prime where `vocab` holds its characters, else `opening` (the start of the training
    text) when given, else the vocabulary's first character: a model trained on another text or
    language knows no other prime for sure."""
    if set(DEMO_PRIME) <= set(vocab):
        return DEMO_PRIME
    return opening or vocab[0]


def _try_plot(history, path, title, task):
    """Draw the loss curve; without matplotlib, one line saying how to get it. Returns the path or None."""
    from .train import plot_losses
    try:
        baseline = (task.baseline(), task.baseline_label) if task is not None else None
        return plot_losses(history, path, title=title, baseline=baseline)
    except ImportError:
        print(f"note: no loss curve was drawn: {missing('matplotlib', 'the loss curve')}")
        return None


def command_sample(args):
    from .train import generate, load_model
    if args.prime == "":
        raise UsageError("--prime", "must hold at least one character to start from")
    with _blame("--checkpoint"):
        model, meta = load_model(args.checkpoint, device=args.device)
    if not meta.get("vocab"):
        raise UsageError("--checkpoint", f"{args.checkpoint} is not a language model (task "
                                         f"{meta['config'].get('task')!r}); sample needs one from train --task lm")
    if args.prime is None:
        args.prime = _prime_for(meta["vocab"])
    unknown = sorted(set(args.prime) - set(meta["vocab"]))
    if unknown:
        raise UsageError("--prime", f"holds characters the model has never seen: {''.join(unknown)!r}")
    print(args.prime + generate(model, meta["vocab"], args.prime, args.length, args.temperature, rng=args.seed))
    return 0


def record_steps(model, config, steps, vocab=None):
    """A loss over `steps` time steps of `model` on one sequence of its task: the root to draw."""
    import numpy as np

    from .data import adding_problem, copy_task
    from .nn import functional as F
    from .tensor import Tensor
    from .train import sequence_cross_entropy
    if config.task == "adding":
        x, y = adding_problem(1, max(steps, 2), rng=config.seed)
        prediction, _ = model(Tensor(x, dtype=config.dtype, device=config.device))
        return F.mse_loss(prediction, Tensor(y, dtype=config.dtype, device=config.device))
    if config.task == "copy":
        ids, targets = copy_task(1, delay=max(1, steps), seq_len=1, rng=config.seed)
        ids, targets = ids[:steps], targets[:steps]
    else:
        text = "def tanh(x):\n    return (exp(x) - exp(-x)) / (exp(x) + exp(-x))\n" * (1 + steps // 50)
        id_of = {c: i for i, c in enumerate(vocab)} if vocab else {}
        ids = np.array([[id_of.get(c, 0)] for c in text[:steps + 1]], dtype=np.int64)
        ids, targets = ids[:-1], ids[1:]
    logits, _ = model(Tensor(ids, device=config.device))
    return sequence_cross_entropy(logits, targets)


def draw_graph(model, config, steps, path, view="unrolled", detail=None, vocab=None, title=None,
               expand_fused=True):
    """Render the graph of `steps` steps of `model` with viz; raises ImportError without viz.

    Parameters are drawn with their names in the model ("rnn.weight_ih_l0", "embedding.weight").
    expand_fused: draw a fused layer op by op (viz's default) rather than as one node per pass; the
    forward runs under retain_grads, so the gradient view colours a fused layer's steps too.
    """
    import viz

    from .tensor import retain_grads
    if steps < 1:
        raise ValueError(f"--seq-len must be at least 1, got {steps}")
    for name, parameter in model.named_parameters():
        parameter.name = name  # the qualified name, whoever named it before
    with retain_grads():
        loss = record_steps(model, config, steps, vocab)
    if view == "gradient":
        loss.backward()
    return viz.render(loss, path, view=view, detail=detail, title=title, expand_fused=expand_fused)


def _fresh_model(config):
    """A new model of the config's shape; language models get printable ASCII as their vocabulary."""
    from .train import CopyTask, build_model
    vocab = [chr(i) for i in range(128)] if config.task == "lm" else None
    vocab_size = {"lm": 128, "copy": CopyTask.N_SYMBOLS + 2}.get(config.task)
    return build_model(config, vocab_size), vocab


def _check_picture_path(path):
    suffix = os.path.splitext(path)[1].lower()
    if suffix and suffix not in PICTURE_FORMATS:
        raise UsageError("--out", f"{path} ends in {suffix}; the picture is written as {', '.join(PICTURE_FORMATS)}")
    with _blame("--out"):
        check_output_file(path)


def _require_viz():
    """viz and the graphviz package, or one line saying what is missing."""
    try:
        import viz  # noqa: F401  (ships with tinygrad_rnn)
    except ImportError as e:
        raise MissingPackage(f"the graph command needs the viz package, which is installed with tinygrad-rnn "
                             f"({e}); reinstall it") from None
    require("graphviz", "the graph command")


def command_graph(args):
    from . import factory
    from .train import checkpoint_device, config_from_checkpoint, load_model
    _check_picture_path(args.out)
    _require_viz()
    if args.checkpoint:
        with _blame("--checkpoint"):
            config = config_from_checkpoint(args.checkpoint)
            device = checkpoint_device(config.device, args.device, args.checkpoint)
            model, meta = load_model(args.checkpoint, device=device)
            config, vocab = dataclasses.replace(config, device=device), meta.get("vocab")
    else:
        given = {name: getattr(args, name) for name in ("task", "cell", "hidden_size", "embed_size",
                                                           "num_layers", "seed") if getattr(args, name) is not None}
        config = dataclasses.replace(TrainConfig(), device=args.device or "cpu", **given).check()
        backend.xp_for(config.device)  # a missing GPU fails here, with the install hint
        factory.manual_seed(config.seed)
        model, vocab = _fresh_model(config)
    _note_old_spellings(args)
    path = draw_graph(model, config, args.seq_len, args.out, args.view, args.detail, vocab,
                      expand_fused=args.expand_fused)
    print(f"graph of {args.seq_len} steps: {path}")
    return 0


def command_diagnose(args):
    """diagnose, its options checked as every command's are."""
    _check_ranges(args, {"seed": SEED_RANGE, "blas_threads": BLAS_THREADS, "forget_bias": NumberRange(float, None)})
    if args.figures:
        with _blame("--figures"):
            check_output_folder(args.figures)
        if not available("matplotlib"):
            raise UsageError("--figures", missing("matplotlib", "drawing the figures"))
    if args.checkpoint:
        with _blame("--checkpoint"):
            load_checkpoint(args.checkpoint)  # a file that is not a checkpoint is the option's fault
    elif args.module:
        raise UsageError("--module", "chooses a layer of a checkpoint; give --checkpoint PATH too")
    if args.device == "cuda":
        backend.xp_for("cuda")  # a missing GPU fails here, with the install hint
    if not args.checkpoint:
        status = diagnose_command.run(args)
    else:
        with _blame("--module" if args.module else "--checkpoint"):  # the file is sound: the layer is not
            status = diagnose_command.run(args)
    _note_old_spellings(args)  # after the report: the layer is built and checked in run()
    return status


def _demo_paths(args):
    folder = args.out or _new_run_folder("demo")
    with _blame("--out"):
        check_output_file(os.path.join(folder, CHECKPOINT))
        check_output_folder(folder)
    earlier = _earlier_outputs(folder, (CHECKPOINT, METRICS, LOSS_CURVE, "samples.txt", "graph.svg"))
    if earlier and not args.overwrite:
        raise UsageError("--out", f"{folder} holds the outputs of another run ({', '.join(earlier)}); choose a "
                                  f"new folder, or pass --overwrite to replace them")
    return RunPaths(folder, new_folder=not args.out)


def command_demo(args):
    config = dataclasses.replace(DEMO, steps=args.steps, device=args.device, seed=args.seed).check()
    paths = _demo_paths(args)
    backend.xp_for(config.device)  # a missing GPU fails here, with the install hint
    _note_missing_bar(args.no_progress)
    with run_folder(paths) as paths:
        return _demo_in(paths, args, config)


def _demo_in(paths, args, config):
    from .data import CharCorpus
    from .train import TrainingInterrupted, build, generate, throughput, train, window_losses
    started = time.perf_counter()
    corpus = CharCorpus.default()
    print(f"Character-level {config.cell.upper()} language model on CPython's documentation topics "
          f"({len(corpus.train_ids):,} training characters, {corpus.vocab_size} distinct).")
    print(f"hidden {config.hidden_size}, batch {config.batch_size} x {config.seq_len} characters, "
          f"{config.optimizer} lr {config.lr} with a {config.schedule} schedule, clip {config.clip}, "
          f"{config.steps} steps on {config.device}; run folder {paths.folder}.")
    print(f"'loss' is {LOSS_MEANING}, in nats per character; 'validation' is the same on held-out text.")
    _, untrained, _, _ = build(config, corpus)
    before = DEMO_PRIME + generate(untrained, corpus.vocab, DEMO_PRIME, 300, 0.8, rng=config.seed)
    _print_sample("before training", before)

    try:
        result = train(config, checkpoint=paths.checkpoint, overwrite=True, corpus=corpus, metrics=paths.metrics,
                       progress=False if args.no_progress else None)
    except TrainingInterrupted as stop:
        print(f"\ninterrupted: the checkpoint {stop.checkpoint} holds step {stop.step}; sample from it with "
              f"'{PROG} sample --checkpoint {stop.checkpoint}'", file=sys.stderr)
        return 130
    history, task = result.history, result.task
    after = DEMO_PRIME + generate(result.model, corpus.vocab, DEMO_PRIME, 300, 0.8, rng=config.seed)
    _print_sample("after training", after)
    losses = window_losses(history)
    print(f"loss {losses[0]:.3f} at step {history['val_step'][0]} -> {losses[-1]:.3f} at step "
          f"{history['val_step'][-1]} nats/char; validation {history['val_loss'][-1]:.3f} "
          f"({task.baseline_label} {task.baseline():.3f}); {throughput(history):,.0f} chars/s")

    written = [paths.checkpoint, paths.metrics]
    samples = os.path.join(paths.folder, "samples.txt")
    with open(samples, "w", encoding="utf-8") as f:
        f.write(f"before training:\n{before}\n\nafter {config.steps} steps:\n{after}\n")
    written.append(samples)
    plot = _try_plot(history, paths.loss_curve, "LSTM language model, Python docs", task)
    written += [plot] if plot else []
    try:
        _require_viz()
        written.append(draw_graph(result.model, config, 3, os.path.join(paths.folder, "graph.svg"),
                                  vocab=corpus.vocab, title="the demo's LSTM unrolled over 3 characters"))
    except (ImportError, RuntimeError) as e:
        print(f"note: the unrolled graph was skipped: {e}")
    print(f"\nwrote {', '.join(os.path.basename(p) for p in written)} into {os.path.abspath(paths.folder)} "
          f"({time.perf_counter() - started:.0f} s in all)")
    return 0


COMMANDS = {"train": command_train, "sample": command_sample, "graph": command_graph, "demo": command_demo,
            "diagnose": command_diagnose}
EXPECTED_ERRORS = (ValueError, KeyError, OSError, backend.DeviceError, FloatingPointError, RuntimeError,
                   MissingPackage)


def main(argv=None):
    """Run one command; returns its exit status (argparse's own errors and --help raise SystemExit)."""
    try:
        return _run(argv)
    except BrokenPipeError:
        # the reader of our output went away (`... | head`): stop quietly, as Python's docs advise
        # (https://docs.python.org/3/library/signal.html#note-on-sigpipe)
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(argv):
    from .train.threads import blas_threads
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        sys.stdout.flush()  # --help's text: a closed pipe shows here, not at exit
        raise
    try:
        with blas_threads(getattr(args, "blas_threads", 0)):
            status = COMMANDS[args.command](args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        raise
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    except UsageError as e:
        return _fail(args, e, 2, help_hint=True)
    except ConfigError as e:
        return _fail(args, f"argument {e.describe(_train_flag(args))}", 2, help_hint=True)
    except MemoryError as e:
        return _fail(args, f"not enough memory ({e or 'MemoryError'}); try smaller sizes", 1)
    except EXPECTED_ERRORS as e:
        if isinstance(e, OSError) and e.filename:
            message = _describe_os_error(e)
        else:
            message = e.args[0] if isinstance(e, KeyError) and e.args else e
        return _fail(args, message, 1)


def _fail(args, message, status, help_hint=False):
    text = str(message) or type(message).__name__
    print(f"{PROG} {args.command}: error: {text}" + (" (see --help)" if help_hint else ""), file=sys.stderr)
    return status
