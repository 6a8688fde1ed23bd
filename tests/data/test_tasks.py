import math

import numpy as np
import pytest

from tinygrad_rnn.data import adding_baseline_mse, adding_problem, copy_baseline_loss, copy_task

# ---------------------------------------------------------------- adding problem


@pytest.mark.parametrize("T", [2, 5, 50])
def test_adding_markers_are_one_in_each_half(T):
    x, _ = adding_problem(64, T, rng=0)
    markers = x[:, :, 1]
    assert set(np.unique(markers)) <= {0.0, 1.0}
    np.testing.assert_array_equal(markers[: T // 2].sum(axis=0), 1)
    np.testing.assert_array_equal(markers[T // 2 :].sum(axis=0), 1)


def test_adding_sum_target_is_the_sum_of_the_marked_values():
    x, y = adding_problem(32, 20, rng=1)
    assert x.shape == (20, 32, 2) and y.shape == (32, 1)
    assert x.dtype == y.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= 0.0 and values.max() < 1.0
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=0), rtol=1e-6)


def test_adding_hochreiter_target_is_scaled_and_shifted():
    x, y = adding_problem(32, 20, rng=2, form="hochreiter", dtype=np.float64)
    assert x.dtype == y.dtype == np.float64
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= -1.0 and values.max() < 1.0 and values.min() < 0.0
    np.testing.assert_allclose(y[:, 0], 0.5 + (values * markers).sum(axis=0) / 4)


@pytest.mark.parametrize("form, mean, mse", [("sum", 1.0, 1 / 6), ("hochreiter", 0.5, 1 / 24)])
def test_adding_baseline_mse_matches_a_large_sample(form, mean, mse):
    _, y = adding_problem(200_000, 4, rng=3, form=form, dtype=np.float64)
    assert adding_baseline_mse(form) == pytest.approx(mse)
    assert np.mean((y - mean) ** 2) == pytest.approx(adding_baseline_mse(form), rel=0.02)


def test_adding_problem_is_reproducible_from_a_seed_or_generator():
    same = [adding_problem(8, 10, rng=5), adding_problem(8, 10, rng=np.random.default_rng(5))]
    other = adding_problem(8, 10, rng=6)
    np.testing.assert_array_equal(same[0][0], same[1][0])
    np.testing.assert_array_equal(same[0][1], same[1][1])
    assert not np.array_equal(same[0][0], other[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"T": 1}, "T=1"),
        ({"T": 0}, "T must be a positive integer, got 0"),
        ({"form": "max"}, "'max'.*hochreiter"),
    ],
)
def test_adding_problem_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        adding_problem(**{"batch_size": 4, "T": 10, **kwargs})


# ---------------------------------------------------------------- copy task


@pytest.mark.parametrize("delay", [1, 5])
def test_copy_task_layout(delay):
    n_symbols, seq_len = 8, 10
    x, y = copy_task(16, delay, n_symbols=n_symbols, seq_len=seq_len, rng=0)
    assert x.shape == y.shape == (2 * seq_len + delay, 16)
    assert x.dtype == y.dtype == np.int64
    symbols = x[:seq_len]
    assert symbols.min() >= 1 and symbols.max() <= n_symbols
    np.testing.assert_array_equal(x[seq_len : seq_len + delay - 1], 0)
    np.testing.assert_array_equal(x[seq_len + delay - 1], n_symbols + 1)
    np.testing.assert_array_equal(x[-seq_len:], 0)
    np.testing.assert_array_equal(y[:-seq_len], 0)
    np.testing.assert_array_equal(y[-seq_len:], symbols)


def test_copy_task_uses_every_symbol_and_is_reproducible():
    x, _ = copy_task(64, 3, n_symbols=4, seq_len=5, rng=9)
    assert set(np.unique(x[:5])) == {1, 2, 3, 4}
    np.testing.assert_array_equal(x, copy_task(64, 3, n_symbols=4, seq_len=5, rng=9)[0])


def test_copy_baseline_loss_is_the_cross_entropy_of_the_memoryless_strategy():
    n_symbols, seq_len, delay = 8, 10, 30
    _, y = copy_task(256, delay, n_symbols=n_symbols, seq_len=seq_len, rng=4)
    steps, vocab_size = y.shape[0], n_symbols + 2
    probs = np.zeros((steps, vocab_size))
    probs[: steps - seq_len, 0] = 1.0
    probs[steps - seq_len :, 1 : n_symbols + 1] = 1.0 / n_symbols
    with np.errstate(divide="ignore"):
        log_probs = np.log(probs)
    cross_entropy = -np.take_along_axis(log_probs, y, axis=1).mean()
    assert cross_entropy == pytest.approx(copy_baseline_loss(n_symbols, seq_len, delay))


def test_copy_baseline_loss_matches_arjovsky_et_al():
    assert copy_baseline_loss(8, 10, 100) == pytest.approx(10 * math.log(8) / 120)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"delay": 0}, "delay.*got 0"),
        ({"n_symbols": -1}, "n_symbols.*got -1"),
        ({"seq_len": 2.5}, "seq_len.*got 2.5"),
    ],
)
def test_copy_task_rejects_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        copy_task(**{"batch_size": 4, "delay": 5, **kwargs})
