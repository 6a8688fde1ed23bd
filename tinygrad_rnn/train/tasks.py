"""The built-in training tasks: what a batch is, which model fits it, how it is scored.

Each task draws its batches from its own NumPy generator and can save and restore everything it
carries between steps (that generator, and for stateful language modelling the position in the
text and the hidden state), so a run resumed from a checkpoint sees the same batches.
"""
import numpy as np

from .. import backend
from ..data import (
    CharCorpus,
    adding_baseline_mse,
    adding_problem,
    batchify,
    copy_baseline_loss,
    copy_task,
    random_batches,
)
from ..nn import functional as F
from ..tbptt import detach_state
from ..tensor import Tensor, no_grad
from .config import ConfigError
from .models import build_model, sequence_cross_entropy

VALIDATION_SEED_OFFSET = 10_000  # validation sets come from a generator apart from the training batches


def _state_to_host(state):
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.numpy()
    return tuple(_state_to_host(s) for s in state)


def _state_to_device(state, device):
    if state is None:
        return None
    if isinstance(state, np.ndarray):
        return Tensor(backend.to_device(state, device), dtype=state.dtype)  # Tensor() alone makes float32
    return tuple(_state_to_device(s, device) for s in state)


def _read_corpus(path):
    try:
        return CharCorpus.from_file(path)
    except OSError as error:
        raise ConfigError("text", f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise ConfigError("text", str(error)) from None


class Task:
    """Base: `batch()` -> (inputs, targets) on the host, `loss(model, batch)` -> scalar Tensor."""

    unit = "seqs"  # what throughput counts
    baseline_label = "baseline"
    vocab_size = None  # token-level tasks set it

    def __init__(self, config):
        self.config = config
        self.rng = np.random.default_rng(config.seed)

    def build_model(self):
        return build_model(self.config, self.vocab_size)

    def items(self, batch):
        """How many units one batch holds, for the throughput."""
        return batch[0].shape[1]

    def _tensor(self, array):
        return Tensor(array, device=self.config.device,
                      dtype=self.config.dtype if array.dtype.kind == "f" else None)

    def state_dict(self):
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = state["rng"]


class LanguageModelTask(Task):
    """Next-character prediction on a CharCorpus (the Python docs by default).

    With `stateful`, batches are consecutive BPTT chunks of `batchify`d text and the hidden state
    is carried, detached, from one chunk to the next; otherwise each batch is random windows.
    """

    unit = "chars"
    baseline_label = "unigram baseline"

    def __init__(self, config, corpus=None):
        super().__init__(config)
        if corpus is None:
            corpus = _read_corpus(config.text) if config.text else CharCorpus.default()
        self.corpus = corpus
        self.vocab_size = corpus.vocab_size
        self._check_sizes(config, corpus)
        self.windows = random_batches(corpus.train_ids, config.batch_size, config.seq_len, rng=self.rng)
        self.stream = batchify(corpus.train_ids, config.batch_size) if config.stateful else None
        self.position, self.carry = 0, None
        self.val_data = batchify(corpus.val_ids[:config.eval_chars], self.eval_columns(config))

    @staticmethod
    def eval_columns(config):
        return min(config.batch_size, 16)

    @classmethod
    def _check_sizes(cls, config, corpus):
        """Refuse, before training, sizes the text cannot fill: they would fail at the first batch or evaluation."""
        train_chars, val_chars = len(corpus.train_ids), len(corpus.val_ids)
        source = f"the text {config.text}" if config.text else "the text"
        if train_chars < config.seq_len + 1:
            raise ConfigError("seq_len", f"{config.seq_len} needs {config.seq_len + 1} training characters; "
                                         f"{source} has {train_chars}")
        if config.stateful and train_chars // config.batch_size < config.seq_len + 1:
            raise ConfigError("batch_size", f"{config.batch_size} is too large with {{}}: {config.batch_size} "
                                            f"streams of {config.seq_len + 1} characters ({{}} + 1) need "
                                            f"{config.batch_size * (config.seq_len + 1)}; {source} has "
                                            f"{train_chars} for training", ("stateful", "seq_len"))
        columns = cls.eval_columns(config)
        if val_chars // columns < 2:  # an evaluation predicts at least one character in each column
            fix = f"a batch size of at most {val_chars // 2}, or " if val_chars >= 2 else ""
            raise ConfigError("batch_size", f"{config.batch_size} is too large for the {val_chars} validation "
                                            f"characters of {source} (its last tenth), which an evaluation cuts into "
                                            f"{columns} columns of at least 2; use {fix}a longer text")
        if config.eval_chars // columns < 2:
            raise ConfigError("eval_chars", f"{config.eval_chars} is too few: the validation text is cut into "
                                            f"{columns} columns of at least 2 characters, so give at least "
                                            f"{2 * columns}")

    def items(self, batch):
        return batch[0].size

    def batch(self):
        if self.stream is None:
            return next(self.windows)
        if self.position + self.config.seq_len + 1 > len(self.stream):
            self.position, self.carry = 0, None  # a new pass over the text starts from a zero state
        chunk = self.stream[self.position:self.position + self.config.seq_len + 1]
        self.position += self.config.seq_len
        return chunk[:-1], chunk[1:]

    def loss(self, model, batch):
        logits, state = model(self._tensor(batch[0]), self.carry)
        if self.stream is not None:
            self.carry = detach_state(state)
        return sequence_cross_entropy(logits, batch[1])

    def evaluate(self, model):
        """Mean cross-entropy (nats per character) over the held-out text, state carried through it."""
        model.eval()
        total, count, state = 0.0, 0, None
        with no_grad():
            for start in range(0, len(self.val_data) - 1, self.config.seq_len):
                chunk = self.val_data[start:start + self.config.seq_len + 1]
                logits, state = model(self._tensor(chunk[:-1]), state)
                total += sequence_cross_entropy(logits, chunk[1:]).item() * chunk[1:].size
                count += chunk[1:].size
        model.train()
        return total / count

    def baseline(self):
        """The loss of predicting each character by its frequency in the training text."""
        counts = np.bincount(self.corpus.train_ids, minlength=self.vocab_size) + 1e-12
        freq = counts / counts.sum()
        return float(-(freq * np.log(freq)).sum())

    def state_dict(self):
        return {**super().state_dict(), "position": self.position, "carry": _state_to_host(self.carry)}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.position = state["position"]
        self.carry = _state_to_device(state["carry"], self.config.device)


class AddingTask(Task):
    """The adding problem: read T (value, marker) pairs, output the sum of the two marked values."""

    baseline_label = "predicting the mean"

    def __init__(self, config):
        super().__init__(config)
        self.val_x, self.val_y = adding_problem(config.eval_sequences, config.T,
                                                rng=config.seed + VALIDATION_SEED_OFFSET)

    def batch(self):
        return adding_problem(self.config.batch_size, self.config.T, rng=self.rng)

    def loss(self, model, batch):
        prediction, _ = model(self._tensor(batch[0]))
        return F.mse_loss(prediction, self._tensor(batch[1]))

    def evaluate(self, model):
        with no_grad():
            return self.loss(model, (self.val_x, self.val_y)).item()

    def baseline(self):
        return adding_baseline_mse()


class CopyTask(Task):
    """The copy task: remember 10 symbols through `delay` blank steps, then reproduce them."""

    N_SYMBOLS, LENGTH = 8, 10
    baseline_label = "memoryless baseline"

    def __init__(self, config):
        super().__init__(config)
        self.vocab_size = self.N_SYMBOLS + 2
        self.val_x, self.val_y = copy_task(config.eval_sequences, config.delay, self.N_SYMBOLS, self.LENGTH,
                                           rng=config.seed + VALIDATION_SEED_OFFSET)

    def batch(self):
        return copy_task(self.config.batch_size, self.config.delay, self.N_SYMBOLS, self.LENGTH, rng=self.rng)

    def loss(self, model, batch):
        logits, _ = model(self._tensor(batch[0]))
        return sequence_cross_entropy(logits, batch[1])

    def evaluate(self, model):
        model.eval()
        with no_grad():
            value = self.loss(model, (self.val_x, self.val_y)).item()
        model.train()
        return value

    def baseline(self):
        return copy_baseline_loss(self.N_SYMBOLS, self.LENGTH, self.config.delay)


TASKS = {"lm": LanguageModelTask, "adding": AddingTask, "copy": CopyTask}


def make_task(config, corpus=None):
    if config.task not in TASKS:
        raise ValueError(f"unknown task {config.task!r}; choose one of {sorted(TASKS)}")
    return LanguageModelTask(config, corpus) if config.task == "lm" else TASKS[config.task](config)
