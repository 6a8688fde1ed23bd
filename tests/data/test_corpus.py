import hashlib
import sys
from itertools import islice

import numpy as np
import pytest

from tinygrad_rnn.data import CharCorpus, batchify, bptt_batches, load_default_text, random_batches

# ---------------------------------------------------------------- default text


def test_default_text_is_the_same_on_every_python():
    """The shipped text, checked byte for byte: the running Python's own topics play no part."""
    from tinygrad_rnn.data.corpus import DEFAULT_TEXT_SHA256

    text = load_default_text()
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == DEFAULT_TEXT_SHA256
    assert len(text) == 465_126 and text.startswith('The "assert" statement')


def test_default_text_needs_no_pydoc_data(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydoc_data", None)
    monkeypatch.setitem(sys.modules, "pydoc_data.topics", None)
    assert len(load_default_text()) == 465_126


def test_default_corpus_round_trips_its_text():
    corpus = CharCorpus.default()
    text = load_default_text()
    assert corpus.vocab_size == len(set(text))
    assert corpus.decode(np.concatenate([corpus.train_ids, corpus.val_ids])) == text


# ---------------------------------------------------------------- vocabulary


def test_vocab_is_sorted_unique_characters():
    corpus = CharCorpus("hello world")
    assert corpus.vocab == [" ", "d", "e", "h", "l", "o", "r", "w"]
    assert corpus.vocab_size == 8


def test_encode_gives_int64_ids_into_the_vocab():
    corpus = CharCorpus("hello world")
    ids = corpus.encode("hold")
    assert ids.dtype == np.int64
    assert ids.tolist() == [3, 5, 4, 1]


@pytest.mark.parametrize("as_ids", [list, tuple, np.array, lambda ids: np.array(ids, dtype=np.int32)])
def test_decode_accepts_any_integer_sequence(as_ids):
    corpus = CharCorpus("hello world")
    assert corpus.decode(as_ids(corpus.encode("world").tolist())) == "world"


def test_decode_of_nothing_is_empty():
    assert CharCorpus("abc").decode([]) == ""


def test_encode_names_an_unknown_character():
    with pytest.raises(ValueError, match=r"'z' \(position 2\)"):
        CharCorpus("hello").encode("hoz")


@pytest.mark.parametrize(
    "ids, message", [([0, 3], "id 3"), ([-1], "id -1"), ([[0, 1]], r"shape \(1, 2\)"), ([0.5], "float")]
)
def test_decode_rejects_ids_that_are_not_in_the_vocab(ids, message):
    with pytest.raises(ValueError, match=message):
        CharCorpus("abc").decode(ids)


# ---------------------------------------------------------------- split and construction


def test_split_is_contiguous_with_the_tail_for_validation():
    text = "".join(chr(ord("a") + i % 26) for i in range(100))
    corpus = CharCorpus(text, val_fraction=0.1)
    assert len(corpus.train_ids) == 90 and len(corpus.val_ids) == 10
    assert corpus.decode(corpus.train_ids) == text[:90]
    assert corpus.decode(corpus.val_ids) == text[90:]


def test_zero_val_fraction_keeps_everything_for_training():
    corpus = CharCorpus("abcdef", val_fraction=0.0)
    assert len(corpus.train_ids) == 6 and len(corpus.val_ids) == 0


@pytest.mark.parametrize(
    "text, val_fraction, message",
    [("", 0.1, "empty"), ("abc", 1.0, "val_fraction"), ("abc", -0.1, "val_fraction")],
)
def test_bad_construction_arguments_are_rejected(text, val_fraction, message):
    with pytest.raises(ValueError, match=message):
        CharCorpus(text, val_fraction)


def test_from_file_uses_the_given_encoding(tmp_path):
    path = tmp_path / "text.txt"
    path.write_bytes("café crème".encode("latin-1"))
    corpus = CharCorpus.from_file(path, encoding="latin-1", val_fraction=0.0)
    assert corpus.decode(corpus.train_ids) == "café crème"


# ---------------------------------------------------------------- batches


@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "utf_8"])
def test_from_file_leaves_out_a_utf8_byte_order_mark(tmp_path, encoding):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfna\xc3\xafve \xef\xbb\xbf")  # the mark, then one inside the text
    corpus = CharCorpus.from_file(path, encoding=encoding, val_fraction=0.0)
    assert corpus.decode(corpus.train_ids) == "na\u00efve \ufeff"
    path.write_bytes(b"\xef\xbb\xbf")
    with pytest.raises(ValueError, match="bom.txt is empty"):
        CharCorpus.from_file(path, encoding=encoding)


def test_batchify_cuts_contiguous_columns_and_drops_the_remainder():
    data = batchify(np.arange(11), batch_size=3)
    assert data.dtype == np.int64
    np.testing.assert_array_equal(data, [[0, 3, 6], [1, 4, 7], [2, 5, 8]])


@pytest.mark.parametrize(
    "ids, batch_size, message",
    [
        (np.arange(5), 6, "batch_size=6 is larger than the data \\(5 tokens\\)"),
        (np.arange(5), 0, "batch_size must be a positive integer, got 0"),
        (np.arange(5), 2.0, "batch_size must be a positive integer, got 2.0"),
        (np.zeros((2, 3), dtype=np.int64), 2, r"1-D.*shape \(2, 3\)"),
        (np.zeros(4), 2, "float64"),
    ],
)
def test_batchify_rejects_bad_sizes(ids, batch_size, message):
    with pytest.raises(ValueError, match=message):
        batchify(ids, batch_size)


def test_bptt_batches_walk_the_columns_with_shifted_targets_and_a_short_last_chunk():
    data = batchify(np.arange(22), batch_size=2)  # 11 steps, 10 of them have a next token
    chunks = list(bptt_batches(data, seq_len=4))
    assert [inputs.shape for inputs, _ in chunks] == [(4, 2), (4, 2), (2, 2)]
    assert all(targets.shape == inputs.shape for inputs, targets in chunks)
    np.testing.assert_array_equal(np.concatenate([inputs for inputs, _ in chunks]), data[:-1])
    np.testing.assert_array_equal(np.concatenate([targets for _, targets in chunks]), data[1:])


@pytest.mark.parametrize(
    "data, seq_len, message",
    [
        (np.zeros((5, 2), np.int64), 0, "seq_len.*got 0"),
        (np.zeros((1, 2), np.int64), 3, r"shape \(1, 2\)"),
        (np.zeros(5, np.int64), 3, r"shape \(5,\)"),
    ],
)
def test_bptt_batches_reject_bad_sizes_when_called(data, seq_len, message):
    with pytest.raises(ValueError, match=message):
        bptt_batches(data, seq_len)


def test_random_batches_are_windows_with_shifted_targets():
    ids = np.arange(100, 200)
    for inputs, targets in islice(random_batches(ids, batch_size=5, seq_len=7, rng=0), 20):
        assert inputs.shape == targets.shape == (7, 5)
        np.testing.assert_array_equal(np.diff(inputs, axis=0), 1)
        np.testing.assert_array_equal(targets, inputs + 1)


def test_random_batches_reach_both_ends_of_the_data():
    ids = np.arange(12)
    starts = {start for inputs, _ in islice(random_batches(ids, 8, 4, rng=1), 200) for start in inputs[0]}
    assert starts == set(range(8))  # the last window's target is the final token


def test_random_batches_are_reproducible_from_a_seed():
    ids = np.arange(1000)
    first, second = (list(islice(random_batches(ids, 4, 8, rng=seed), 3)) for seed in (7, 7))
    other = list(islice(random_batches(ids, 4, 8, rng=8), 3))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, second))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other))


def test_random_batches_reject_a_window_longer_than_the_data():
    with pytest.raises(ValueError, match="seq_len=10 needs at least 11 tokens, the data has 10"):
        random_batches(np.arange(10), batch_size=2, seq_len=10)
