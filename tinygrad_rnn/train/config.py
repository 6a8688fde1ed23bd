"""What a training run is: TrainConfig, the values each field accepts, and the error that names a field.

The command line builds its options from the same tables, so a value is refused with the same
words whether it comes from `--lr nan` or from `TrainConfig(lr=float("nan")).check()`.
"""
import dataclasses
import math
import numbers
import os
import re

from .. import optim

OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW, "adagrad": optim.Adagrad,
              "rmsprop": optim.RMSprop}
SCHEDULES = ("none", "step", "cosine", "plateau")
# fields that fix the model's shape: a resumed run takes them from the checkpoint
ARCHITECTURE = ("task", "cell", "hidden_size", "embed_size", "num_layers", "dropout", "T", "delay", "text")
# fields whose saved state only fits the same choice: a resumed run cannot change them
KEPT_ON_RESUME = ("optimizer", "schedule")
CHOICES = {"task": ("lm", "adding", "copy"), "cell": ("rnn", "lstm", "gru"), "optimizer": tuple(OPTIMIZERS),
           "schedule": SCHEDULES, "device": ("cpu", "cuda"), "dtype": ("float32", "float64")}


class ConfigError(ValueError):
    """An impossible value of a TrainConfig field, or of a command-line option.

    ``str()`` names the field (``eval_chars: ...``); ``describe(name)`` lets the command line name
    its flags instead. Other fields the problem mentions are ``{}`` in ``problem``, filled from ``others``.
    """

    def __init__(self, field, problem, others=()):
        self.field, self.problem, self.others = field, problem, tuple(others)
        super().__init__(self.describe())

    def describe(self, name=str):
        names = iter([name(other) for other in self.others])
        return f"{name(self.field)}: " + re.sub(r"\{\}", lambda _: next(names, "{}"), self.problem)


@dataclasses.dataclass(frozen=True)
class NumberRange:
    """The numbers a field accepts: integers, or finite floats, from `low` (None: any) to `high` (excluded if
    `high_open`)."""

    kind: type
    low: float = None
    high: float = None
    high_open: bool = False

    def __str__(self):
        what = "an integer" if self.kind is int else "a finite number"
        if self.low is None:
            return what
        if self.high is None:
            return f"{what} >= {self.low}"
        if self.high_open:
            return f"{what} in [{self.low}, {self.high})"
        return f"{what} from {self.low} to {self.high}"

    def problem(self, value):
        """What is wrong with `value`, or None when it is in range."""
        wanted = numbers.Integral if self.kind is int else numbers.Real
        if isinstance(value, bool) or not isinstance(value, wanted):
            return f"must be {self}, got {value!r}"
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        too_low = self.low is not None and value < self.low
        if not math.isfinite(value) or too_low or too_high:
            return f"must be {self}, got {value!r}"
        return None

    def parse(self, text):
        """A command-line value (an argparse `type`); out of range, argparse shows the problem."""
        import argparse
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {self}, got {text!r}") from None
        problem = self.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value


SEED_RANGE = NumberRange(int, 0, 2**32 - 1)
RANGES = {
    "hidden_size": NumberRange(int, 1), "embed_size": NumberRange(int, 0), "num_layers": NumberRange(int, 1),
    "dropout": NumberRange(float, 0, 1, high_open=True), "batch_size": NumberRange(int, 1),
    "seq_len": NumberRange(int, 1), "T": NumberRange(int, 2), "delay": NumberRange(int, 1),
    "lr": NumberRange(float, 0), "momentum": NumberRange(float, 0), "weight_decay": NumberRange(float, 0),
    "clip": NumberRange(float, 0), "steps": NumberRange(int, 1), "eval_every": NumberRange(int, 1),
    "eval_chars": NumberRange(int, 1), "eval_sequences": NumberRange(int, 1), "seed": SEED_RANGE,
}


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
        """Raise ConfigError naming the first field with an impossible value; returns the config."""
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(name, f"must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        for name, accepted in RANGES.items():
            problem = accepted.problem(getattr(self, name))
            if problem:
                raise ConfigError(name, problem)
        self._check_memory()
        return self

    def _largest_arrays(self):
        """(bytes, what, fields) of the biggest things a run holds at once, roughly."""
        from .tasks import CopyTask
        item = 4 if self.dtype == "float32" else 8
        gates = {"rnn": 1, "gru": 3, "lstm": 4}[self.cell]
        width = self.hidden_size + (self.embed_size or self.hidden_size) + 2
        steps, time_field = {"lm": (self.seq_len, "seq_len"), "adding": (self.T, "T"),
                             "copy": (2 * CopyTask.LENGTH + self.delay, "delay")}[self.task]
        # weights, their gradients and two optimizer buffers
        yield 4 * item * self.num_layers * gates * self.hidden_size * width, "the weights", \
            ("hidden_size", "num_layers")
        # what one step saves for backward: gates, states and outputs of every time step and layer
        yield 3 * item * steps * self.batch_size * self.num_layers * gates * self.hidden_size, \
            "one batch's activations", (time_field, "batch_size", "hidden_size")
        if self.task != "lm":  # the fixed validation set, drawn in float64 before the cast
            per_sequence = 40 * self.T if self.task == "adding" else 16 * steps
            yield per_sequence * self.eval_sequences, "the validation set", (time_field, "eval_sequences")

    def _check_memory(self):
        """Refuse sizes no machine here could hold, before anything is allocated."""
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):
            return
        size, what, fields = max(self._largest_arrays())
        if size > memory:
            lower = ["it"] + ["{}"] * (len(fields) - 1)
            raise ConfigError(fields[0], f"too large: {what} would take about {_gib(size)}, more than the "
                                         f"{_gib(memory)} of memory of this machine; lower "
                                         f"{', '.join(lower[:-1])} or {lower[-1]}", fields[1:])


def _gib(size):
    return f"{size / 2**30:,.0f} GiB"
