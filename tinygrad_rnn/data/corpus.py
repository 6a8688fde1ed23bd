"""A character-level corpus and the batch layouts used to train language models with BPTT.

Every batch is time-major, ``(T, B)``, the default layout of PyTorch's recurrent layers.
"""

import codecs
import gzip
from importlib import resources
from pathlib import Path

import numpy as np


def _require_positive_int(name, value):
    """Reject sizes that would otherwise surface later as empty arrays or odd index errors."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _as_id_stream(ids):
    """Token ids as a 1-D int64 array; a 2-D input here is almost always an already batchified array."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise ValueError(
            f"expected a 1-D sequence of integer token ids, got shape {ids.shape} dtype {ids.dtype}"
        )
    return ids.astype(np.int64, copy=False)


# The Python documentation topics (pydoc_data.topics) of CPython 3.11.7, joined in sorted order and
# shipped with the package: each Python version has its own topics, so reading the running one's
# would make the text, the vocabulary and every loss depend on the interpreter.
DEFAULT_TEXT = "pydoc_topics.txt.gz"
DEFAULT_TEXT_SHA256 = "71f2ff5d99bdc1f9c48c5c2353ad138201c5ca1c377e0226857ef8fa89b8bcee"  # of the UTF-8 text


def load_default_text() -> str:
    """The Python documentation topics of CPython 3.11 (about 465 kB of English and code).

    The text ships with the package, so examples and tests train on real text without a download,
    and on the same text whatever the Python version (results compare across machines).
    """
    data = gzip.decompress(resources.files(__package__).joinpath(DEFAULT_TEXT).read_bytes())
    return data.decode("utf-8")


class CharCorpus:
    """A text as a stream of character ids, split into a training part and a validation part.

    The split is contiguous (the first ``1 - val_fraction`` of the text trains, the rest validates)
    so validation text is never seen, even as the tail of a training window.
    """

    def __init__(self, text: str, val_fraction: float = 0.1):
        if not text:
            raise ValueError("cannot build a CharCorpus from an empty text")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        self.vocab = sorted(set(text))
        self.vocab_size = len(self.vocab)
        self._id_of = {char: i for i, char in enumerate(self.vocab)}
        ids = self.encode(text)
        n_train = len(ids) - round(len(ids) * val_fraction)
        self.train_ids, self.val_ids = ids[:n_train], ids[n_train:]

    @classmethod
    def from_file(cls, path, encoding: str = "utf-8", val_fraction: float = 0.1) -> "CharCorpus":
        """The corpus of a text file; ValueError naming the file if it is not ``encoding`` text or is empty.

        A UTF-8 file's leading byte order mark (what some editors write first) is a signature, not a
        character of the text, so it stays out of the vocabulary and the samples.
        """
        if codecs.lookup(encoding).name == "utf-8":
            encoding = "utf-8-sig"
        try:
            text = Path(path).read_text(encoding=encoding)
        except UnicodeDecodeError as error:
            raise ValueError(f"{path} is not {encoding} text: byte {error.object[error.start]:#04x} at "
                             f"position {error.start} cannot be decoded ({error.reason})") from None
        if not text:
            raise ValueError(f"{path} is empty")
        return cls(text, val_fraction)

    @classmethod
    def default(cls, val_fraction: float = 0.1) -> "CharCorpus":
        """The corpus of :func:`load_default_text`."""
        return cls(load_default_text(), val_fraction)

    def encode(self, text: str) -> np.ndarray:
        try:
            return np.array([self._id_of[char] for char in text], dtype=np.int64)
        except KeyError as error:
            char = error.args[0]
            raise ValueError(
                f"character {char!r} (position {text.index(char)}) is not in the vocabulary "
                f"of {self.vocab_size} characters"
            ) from None

    def decode(self, ids) -> str:
        ids = _as_id_stream(ids)
        out_of_range = ids[(ids < 0) | (ids >= self.vocab_size)]
        if out_of_range.size:
            raise ValueError(f"id {out_of_range[0]} is outside the vocabulary range [0, {self.vocab_size})")
        return "".join(self.vocab[i] for i in ids.tolist())


def batchify(ids, batch_size: int) -> np.ndarray:
    """Cut a token stream into ``batch_size`` contiguous columns: shape ``(n_steps, batch_size)``.

    Column ``b`` continues where it left off from one BPTT chunk to the next, which is what lets a
    caller carry the hidden state across chunks. The remainder that does not fill a row is dropped.
    """
    ids = _as_id_stream(ids)
    _require_positive_int("batch_size", batch_size)
    n_steps = len(ids) // batch_size
    if n_steps == 0:
        raise ValueError(f"batch_size={batch_size} is larger than the data ({len(ids)} tokens)")
    return np.ascontiguousarray(ids[: n_steps * batch_size].reshape(batch_size, n_steps).T)


def bptt_batches(data: np.ndarray, seq_len: int):
    """Iterate over a batchified array in order, as ``(inputs, targets)`` chunks of up to ``seq_len`` steps.

    Targets are the inputs shifted one step ahead; the last chunk is shorter when the steps do not
    divide evenly. Chunks follow each other in time, so a caller may carry state between them.
    """
    data = np.asarray(data)
    _require_positive_int("seq_len", seq_len)
    if data.ndim != 2 or data.shape[0] < 2:
        raise ValueError(f"expected a batchified (n_steps >= 2, batch) array, got shape {data.shape}")
    last = data.shape[0] - 1
    return (
        (data[t : min(t + seq_len, last)], data[t + 1 : min(t + seq_len, last) + 1])
        for t in range(0, last, seq_len)
    )


def random_batches(ids, batch_size: int, seq_len: int, rng=None):
    """Endlessly yield ``(inputs, targets)`` of shape ``(seq_len, batch_size)`` from random windows.

    For training without carried state: each column is an independent window, so a batch
    decorrelates better than consecutive BPTT chunks. Take a finite number with ``itertools.islice``.
    ``rng`` is a numpy Generator, an int seed or None.
    """
    ids = _as_id_stream(ids)
    _require_positive_int("batch_size", batch_size)
    _require_positive_int("seq_len", seq_len)
    if len(ids) < seq_len + 1:
        raise ValueError(f"seq_len={seq_len} needs at least {seq_len + 1} tokens, the data has {len(ids)}")
    rng = np.random.default_rng(rng)
    steps = np.arange(seq_len)[:, None]

    def windows():
        while True:
            positions = steps + rng.integers(0, len(ids) - seq_len, size=batch_size)
            yield ids[positions], ids[positions + 1]

    return windows()
