"""The command line: train, sample, graph, diagnose and demo (`python -m tinygrad_rnn --help`).

Every option is checked before any work starts: a value that cannot work ends in one line on stderr
that names the option, exit status 2, with nothing written. Errors met while working exit with 1.
"""
import argparse
import contextlib
import dataclasses
import os
import sys
import time

import numpy as np

from . import backend
from .archive import check_output_file, check_output_folder
from .checkpoint import load_checkpoint
from .diagnostics import command as diagnose_command
from .train import OPTIMIZERS, SCHEDULES, ConfigError, NumberRange, TrainConfig
from .train.config import RANGES, SEED_RANGE

PROG = "tinygrad-rnn"

# What each TrainConfig field means on the command line; the defaults come from TrainConfig itself.
TRAIN_OPTIONS = {
    "task": (("lm: next-character language model; adding: the adding problem (a regression over T steps); "
              "copy: recall 10 symbols after a delay"), ["lm", "adding", "copy"]),
    "cell": ("recurrent layer: rnn (tanh Elman), lstm or gru", ["rnn", "lstm", "gru"]),
    "hidden_size": ("hidden units per layer", None),
    "embed_size": ("lm/copy: size of the character embedding (0: the hidden size)", None),
    "num_layers": ("stacked recurrent layers", None),
    "dropout": ("dropout between stacked layers (with --num-layers > 1)", None),
    "fused": (("run each recurrent layer as one fused node with hand-written BPTT: the same numbers, "
               "faster; --no-fused records every gate op by op"), None),
    "batch_size": ("sequences per batch", None),
    "seq_len": ("lm: characters per sequence, i.e. how far BPTT reaches back", None),
    "stateful": (("lm: read the text in order and carry the hidden state from batch to batch, "
                  "detached (truncated BPTT); otherwise each batch is random windows"), None),
    "T": ("adding: sequence length", None),
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
    "eval_every": ("evaluate on held-out data (and save the checkpoint) every this many steps", None),
    "eval_chars": ("lm: held-out characters per evaluation", None),
    "eval_sequences": ("adding/copy: size of the fixed validation set", None),
    "device": ("cpu (NumPy) or cuda (CuPy)", ["cpu", "cuda"]),
    "dtype": ("float32 or float64", ["float32", "float64"]),
    "seed": ("seed of the weights, the batches and dropout", None),
}

METAVARS = {"text": "PATH", "T": "N", "delay": "N", "seed": "N"}
BLAS_THREADS = NumberRange(int, 0, 1024)
PICTURE_FORMATS = (".svg", ".png", ".pdf")  # what viz.render writes

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
            raise UsageError(_flag(name), problem)


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
        parser.add_argument(_flag(field.name), type=accepted.parse if accepted else type(default), choices=choices,
                            default=None,
                            metavar=None if choices else METAVARS.get(field.name, type(default).__name__.upper()),
                            help=f"{text} (default: {default if default != '' else 'none'})")


def build_parser():
    parser = Parser(prog=PROG, description="Train, sample and draw recurrent networks built on tinygrad_rnn.",
                    epilog="Run '%(prog)s COMMAND --help' for the options of a command.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    train = commands.add_parser(
        "train", help="train a model on a built-in task",
        description="Train an RNN, LSTM or GRU on a built-in task, with a progress bar; at the end write "
                    "the loss curve (loss.png) into --out and, for language models, print a sample. "
                    "A step whose loss or gradients are not finite is skipped and reported.")
    _add_train_options(train)
    train.add_argument("--checkpoint", metavar="PATH", help="save model and optimizer state here (.npz) at "
                       "each evaluation and at the end; its folder is created")
    train.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists; the "
                       "model, optimizer and schedule come from the checkpoint, --lr, --momentum, "
                       "--weight-decay and the other options may change")
    train.add_argument("--overwrite", action="store_true", help="replace an existing --checkpoint with a new "
                       "run (without it, or --resume, an existing checkpoint is never touched)")
    train.add_argument("--out", metavar="DIR", default="out/train", help="folder for loss.png (default: %(default)s)")
    train.add_argument("--sample-length", type=NumberRange(int, 0).parse, default=200, metavar="N",
                       help="lm: characters to sample after training (0: none; default: %(default)s)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    _add_blas_threads(train)

    sample = commands.add_parser(
        "sample", help="generate text from a language-model checkpoint",
        description="Generate text from a checkpoint written by 'train --task lm' or 'demo'.")
    sample.add_argument("--checkpoint", metavar="PATH", required=True, help="checkpoint (.npz) to load")
    sample.add_argument("--prime", default=DEMO_PRIME, help="text to start from (default: %(default)r)")
    sample.add_argument("--length", type=NumberRange(int, 1).parse, default=400, metavar="N",
                        help="characters to generate (default: %(default)s)")
    sample.add_argument("--temperature", type=NumberRange(float, 0).parse, default=0.8, metavar="T",
                        help="softmax temperature: lower is safer, higher more varied, 0 always takes the "
                             "most likely character (default: %(default)s)")
    sample.add_argument("--seed", type=SEED_RANGE.parse, default=0, metavar="N",
                        help="seed of the sampling (default: %(default)s)")
    sample.add_argument("--device", choices=["cpu", "cuda"], default=None, help="device to run on "
                        "(default: the one it was trained on)")

    graph = commands.add_parser(
        "graph", help="draw a model's unrolled computational graph",
        description="Record a few steps of a model (from --checkpoint, or a fresh one of the given shape) "
                    "with their loss and draw the graph with viz and Graphviz.")
    graph.add_argument("--checkpoint", metavar="PATH", help="model to draw (default: a fresh model)")
    _add_train_options(graph, only={"task", "cell", "hidden_size", "embed_size", "num_layers", "seed"})
    graph.add_argument("--steps", type=NumberRange(int, 1).parse, default=3, metavar="N",
                       help="time steps to unroll (default: %(default)s)")
    graph.add_argument("--view", choices=["unrolled", "folded", "gradient"], default="unrolled",
                       help="unrolled: every step; folded: the recurrence as a loop; gradient: steps "
                            "coloured by the norm of their gradient (default: %(default)s)")
    graph.add_argument("--detail", choices=["ops", "cells"], default=None,
                       help="one node per primitive (ops) or per cell step (cells)")
    graph.add_argument("--expand-fused", action=argparse.BooleanOptionalAction, default=True,
                       help="draw each fused layer op by op, every gate of every step (default); "
                            "--no-expand-fused draws one node per layer and direction")
    graph.add_argument("--out", metavar="PATH", default="out/graph.svg",
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
                    "write the loss curve, the unrolled graph and the checkpoint into one folder.")
    demo.add_argument("--out", metavar="DIR", default="out/demo", help="output folder (default: %(default)s)")
    demo.add_argument("--steps", type=NumberRange(int, 1).parse, default=DEMO.steps, metavar="N",
                      help="training steps (default: %(default)s)")
    demo.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                      help="cpu (NumPy) or cuda (CuPy) (default: %(default)s)")
    demo.add_argument("--seed", type=SEED_RANGE.parse, default=DEMO.seed, metavar="N",
                      help="seed of the weights, the batches and the samples (default: %(default)s)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    _add_blas_threads(demo)
    return parser


def _add_blas_threads(parser):
    parser.add_argument("--blas-threads", type=BLAS_THREADS.parse, default=1, metavar="N",
                        help="threads NumPy's BLAS may use for matrix products; 1 (the default) is fastest for "
                             "the small products of a recurrent step and stays fast on a busy machine; "
                             "0 keeps the library's own setting")


# ------------------------------------------------------------------------------ commands

def _config_from_args(args):
    """TrainConfig defaults, then the checkpoint's when resuming, then what was given on the command line.

    Returns the config and the step the checkpoint is at (None for a new run).
    """
    from .train import read_run, resume_conflicts
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    if not (args.resume and os.path.exists(args.checkpoint)):
        return dataclasses.replace(TrainConfig(), **given).check(), None
    with _blame("--checkpoint"):
        saved, step = read_run(args.checkpoint)
    config = dataclasses.replace(saved, **given)
    changed = resume_conflicts(saved, config)
    if changed:
        values = ", ".join(f"{getattr(saved, name)!r}" for name in changed)
        raise UsageError(", ".join(map(_flag, changed)),
                         f"{'differs' if len(changed) == 1 else 'differ'} from the checkpoint {args.checkpoint} "
                         f"({values}): a resumed run keeps the model, optimizer and schedule it was saved with; "
                         f"leave {'it' if len(changed) == 1 else 'them'} out, or start a new run with --overwrite")
    return config.check(), step


def _check_train_paths(args):
    """Every path train writes, checked before the data is even read."""
    if args.resume and not args.checkpoint:
        raise UsageError("--resume", "needs --checkpoint PATH")
    if args.resume and args.overwrite:
        raise UsageError("--overwrite", "contradicts --resume: continue the checkpoint's run, or replace it")
    with _blame("--out"):
        check_output_folder(args.out)
    if args.checkpoint:
        with _blame("--checkpoint"):
            check_output_file(args.checkpoint)
        if os.path.exists(args.checkpoint) and not (args.resume or args.overwrite):
            raise UsageError("--checkpoint", f"{args.checkpoint} exists already; pass --resume to continue its "
                                             f"run, or --overwrite to replace it with a new one")


def _print_sample(title, text):
    print(f"\n--- {title} " + "-" * max(0, 60 - len(title)))
    print(text)
    print("-" * 65)


def command_train(args):
    from . import distributed
    from .train import generate, throughput, train
    _check_train_paths(args)
    config, done = _config_from_args(args)
    if done is not None and done >= config.steps:
        print(f"{args.checkpoint} is at step {done} already, which reaches --steps {config.steps}: nothing to "
              f"train (--steps counts all the steps, those done included; give a larger one to go on)")
        return 0
    comm = distributed.communicator_from_environment(config.device)  # None unless mpirun started several ranks
    if comm is not None:
        distributed.check_equal_shards(config.batch_size, comm.world_size)
        if comm.rank > 0:  # rank 0 alone prints, plots, samples and writes the checkpoint
            with distributed.abort_on_error(comm):
                train(config, checkpoint=args.checkpoint, resume=args.resume, overwrite=args.overwrite,
                      progress=False, comm=comm)
            return 0
    if config.device == "cuda":
        backend.xp_for("cuda")  # fail now, with the install hint, not after building the data
    where = f"from step {done} to step {config.steps}" if done is not None else f"for {config.steps} steps"
    print(f"training {config.cell} on task {config.task} {where} "
          f"(hidden {config.hidden_size}, batch {config.batch_size}, {config.optimizer} lr {config.lr:g}, "
          f"device {config.device})")
    if comm is not None:
        print(f"data-parallel over {comm.world_size} ranks ({comm.backend}), "
              f"{config.batch_size // comm.world_size} sequences of each batch per rank")
    with distributed.abort_on_error(comm):
        result = train(config, checkpoint=args.checkpoint, resume=args.resume, overwrite=args.overwrite,
                       progress=not args.no_progress, comm=comm)
    history, task = result.history, result.task
    loss = history["loss"][-1] if history["loss"] else float("nan")
    val = history["val_loss"][-1] if history["val_loss"] else float("nan")
    print(f"step {result.step}: loss {loss:.4f}, validation {val:.4f} "
          f"({task.baseline_label} {task.baseline():.4f}), {throughput(history):,.0f} {task.unit}/s")
    if history["skipped"]:
        listed = ", ".join(map(str, history["skipped"][:10])) + (", ..." if len(history["skipped"]) > 10 else "")
        print(f"{len(history['skipped'])} steps were skipped because their loss or gradients were not finite "
              f"(steps {listed}); the weights never took them")
    os.makedirs(args.out, exist_ok=True)
    plot = _try_plot(history, os.path.join(args.out, "loss.png"), f"{config.cell} on {config.task}", task)
    if plot:
        print(f"loss curve: {plot}")
    if args.checkpoint:
        print(f"checkpoint: {args.checkpoint}")
    if config.task == "lm" and args.sample_length > 0:
        prime = _prime_for(task.corpus)
        _print_sample("sample", prime + generate(result.model, task.corpus.vocab, prime, args.sample_length, 0.8,
                                                 rng=config.seed))
    return 0


def _prime_for(corpus):
    """The demo's prime where the corpus knows its characters, else the first word of the text."""
    if set(DEMO_PRIME) <= set(corpus.vocab):
        return DEMO_PRIME
    return corpus.decode(corpus.train_ids[:4])


def _try_plot(history, path, title, task):
    from .train import plot_losses
    try:
        return plot_losses(history, path, title=title, baseline=(task.baseline(), task.baseline_label))
    except ImportError:
        print("matplotlib is not installed, so no loss curve was drawn (pip install matplotlib)")
        return None


def command_sample(args):
    from .train import generate, load_model
    if not args.prime:
        raise UsageError("--prime", "must hold at least one character to start from")
    with _blame("--checkpoint"):
        model, meta = load_model(args.checkpoint, device=args.device)
    if not meta.get("vocab"):
        raise UsageError("--checkpoint", f"{args.checkpoint} is not a language model (task "
                                         f"{meta['config'].get('task')!r}); sample needs one from train --task lm")
    unknown = sorted(set(args.prime) - set(meta["vocab"]))
    if unknown:
        raise UsageError("--prime", f"holds characters the model has never seen: {''.join(unknown)!r}")
    print(args.prime + generate(model, meta["vocab"], args.prime, args.length, args.temperature, rng=args.seed))
    return 0


def record_steps(model, config, steps, vocab=None):
    """A loss over `steps` time steps of `model` on one sequence of its task: the root to draw."""
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

    expand_fused: draw a fused layer op by op (viz's expand_fused) rather than as one node per pass.
    """
    import viz

    from .tensor import retain_grads
    from .train import build_model
    if steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    if config.fused and expand_fused and view == "gradient":
        # the gradient view colours steps by their gradients, which only steps that ran backward
        # have (viz redraws the steps of the other views): record an op-by-op copy, same weights
        vocab_size = model.embedding.num_embeddings if hasattr(model, "embedding") else None
        op_by_op = build_model(dataclasses.replace(config, fused=False), vocab_size)
        op_by_op.load_state_dict(model.state_dict())
        model = op_by_op
    with retain_grads():
        loss = record_steps(model, config, steps, vocab)
    if view == "gradient":
        loss.backward()
    if expand_fused and view != "gradient":
        loss = viz.expand_fused(loss)
    return viz.render(loss, path, view=view, detail=detail, title=title)


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


def command_graph(args):
    from . import factory
    from .train import config_from_checkpoint, load_model
    _check_picture_path(args.out)
    if args.checkpoint:
        with _blame("--checkpoint"):
            model, meta = load_model(args.checkpoint)
            config, vocab = config_from_checkpoint(args.checkpoint), meta.get("vocab")
    else:
        given = {name: getattr(args, name) for name in ("task", "cell", "hidden_size", "embed_size",
                                                           "num_layers", "seed") if getattr(args, name) is not None}
        config = dataclasses.replace(TrainConfig(), **given).check()
        factory.manual_seed(config.seed)
        model, vocab = _fresh_model(config)
    try:
        path = draw_graph(model, config, args.steps, args.out, args.view, args.detail, vocab,
                          expand_fused=args.expand_fused)
    except ImportError as e:
        raise RuntimeError(f"the graph command needs the viz package and the graphviz Python package "
                           f"(pip install -e '.[viz]'): {e}") from e
    print(f"graph of {args.steps} steps: {path}")
    return 0


def command_diagnose(args):
    """diagnose, its options checked as every command's are."""
    _check_ranges(args, {"seed": SEED_RANGE, "blas_threads": BLAS_THREADS, "forget_bias": NumberRange(float, None)})
    if args.figures:
        with _blame("--figures"):
            check_output_folder(args.figures)
    if not args.checkpoint:
        if args.module:
            raise UsageError("--module", "chooses a layer of a checkpoint; give --checkpoint PATH too")
        return diagnose_command.run(args)
    with _blame("--checkpoint"):
        load_checkpoint(args.checkpoint)  # a file that is not a checkpoint is the option's fault
    with _blame("--module" if args.module else "--checkpoint"):  # the file is sound: the layer is not
        return diagnose_command.run(args)


def command_demo(args):
    from .data import CharCorpus
    from .train import build, generate, save_training_state, throughput, train
    config = dataclasses.replace(DEMO, steps=args.steps, device=args.device, seed=args.seed).check()
    with _blame("--out"):
        check_output_file(os.path.join(args.out, "model.npz"))
    backend.xp_for(config.device)  # a missing GPU fails here, with the install hint
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    corpus = CharCorpus.default()
    print(f"Character-level {config.cell.upper()} language model on CPython's documentation topics "
          f"({len(corpus.train_ids):,} training characters, {corpus.vocab_size} distinct).")
    print(f"hidden {config.hidden_size}, batch {config.batch_size} x {config.seq_len} characters, "
          f"{config.optimizer} lr {config.lr} with a {config.schedule} schedule, clip {config.clip}, "
          f"{config.steps} steps on {config.device}.")
    _, untrained, _, _ = build(config, corpus)
    before = DEMO_PRIME + generate(untrained, corpus.vocab, DEMO_PRIME, 300, 0.8, rng=config.seed)
    _print_sample("before training", before)

    result = train(config, progress=not args.no_progress, corpus=corpus)
    history, task = result.history, result.task
    after = DEMO_PRIME + generate(result.model, corpus.vocab, DEMO_PRIME, 300, 0.8, rng=config.seed)
    _print_sample("after training", after)
    print(f"loss {np.mean(history['loss'][:20]):.3f} -> {np.mean(history['loss'][-20:]):.3f} nats/char "
          f"(first and last 20 batches); validation {history['val_loss'][-1]:.3f} "
          f"({task.baseline_label} {task.baseline():.3f}); {throughput(history):,.0f} chars/s")

    written = []
    checkpoint = os.path.join(args.out, "model.npz")
    save_training_state(checkpoint, config, result.model, result.optimizer, None, task, history, result.step)
    written.append(checkpoint)
    with open(os.path.join(args.out, "samples.txt"), "w", encoding="utf-8") as f:
        f.write(f"before training:\n{before}\n\nafter {config.steps} steps:\n{after}\n")
    written.append(os.path.join(args.out, "samples.txt"))
    plot = _try_plot(history, os.path.join(args.out, "loss.png"), "LSTM language model, Python docs", task)
    written += [plot] if plot else []
    try:
        written.append(draw_graph(result.model, config, 3, os.path.join(args.out, "graph.svg"), vocab=corpus.vocab,
                                  title="the demo's LSTM unrolled over 3 characters"))
    except (ImportError, RuntimeError) as e:
        print(f"note: the unrolled graph was skipped: {e}")
    print(f"\nwrote {', '.join(os.path.basename(p) for p in written)} into {os.path.abspath(args.out)} "
          f"({time.perf_counter() - started:.0f} s in all)")
    return 0


COMMANDS = {"train": command_train, "sample": command_sample, "graph": command_graph, "demo": command_demo,
            "diagnose": command_diagnose}
EXPECTED_ERRORS = (ValueError, KeyError, OSError, backend.DeviceError, FloatingPointError, RuntimeError)


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
        return _fail(args, f"argument {e.describe(_flag)}", 2, help_hint=True)
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
