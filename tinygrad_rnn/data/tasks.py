"""Synthetic long-memory tasks with known trivial baselines.

Both tasks are solvable only by carrying information across ``T`` steps, so they show directly
whether gradients survive that distance. Each comes with the loss of the best memoryless
strategy: a model that has not beaten it has not learned to remember anything.
Arrays are time-major, ``(T, B, ...)``. ``rng`` is a numpy Generator, an int seed or None.
"""

import math

import numpy as np

from .corpus import _require_positive_int

# form -> (interval of the values, how the two marked values become the target, MSE of predicting the mean)
_ADDING_FORMS = {
    "sum": ((0.0, 1.0), lambda a, b: a + b, 1.0 / 6.0),
    "hochreiter": ((-1.0, 1.0), lambda a, b: 0.5 + (a + b) / 4.0, 1.0 / 24.0),
}


def _adding_form(form):
    if form not in _ADDING_FORMS:
        raise ValueError(f"unknown adding-problem form {form!r}; choose one of {sorted(_ADDING_FORMS)}")
    return _ADDING_FORMS[form]


def adding_problem(batch_size: int, T: int, rng=None, form: str = "sum", dtype=np.float32):
    """The adding problem (Hochreiter & Schmidhuber 1997; the variant of Le et al. 2015).

    Returns ``x`` of shape ``(T, B, 2)`` and ``y`` of shape ``(B, 1)``, both of ``dtype``.
    Channel 0 of ``x`` holds random values, channel 1 a marker that is 1 at exactly two steps,
    one in the first half (``t < T // 2``) and one in the second half, and 0 elsewhere.

    - ``form="sum"``: values uniform in [0, 1), ``y = X1 + X2`` (Le et al. 2015).
    - ``form="hochreiter"``: values uniform in [-1, 1), ``y = 0.5 + (X1 + X2) / 4`` (the 1997 target).
    """
    _require_positive_int("batch_size", batch_size)
    _require_positive_int("T", T)
    if T < 2:
        raise ValueError(f"T must be at least 2 to place a marker in each half, got T={T}")
    (low, high), target_of, _ = _adding_form(form)
    rng = np.random.default_rng(rng)
    columns = np.arange(batch_size)
    values = rng.uniform(low, high, size=(T, batch_size))
    first = rng.integers(0, T // 2, size=batch_size)
    second = rng.integers(T // 2, T, size=batch_size)
    markers = np.zeros((T, batch_size))
    markers[first, columns] = markers[second, columns] = 1.0
    x = np.stack([values, markers], axis=-1).astype(dtype)
    y = target_of(values[first, columns], values[second, columns])[:, None].astype(dtype)
    return x, y


def adding_baseline_mse(form: str = "sum") -> float:
    """MSE of always predicting the mean target, the score of a model that ignores the markers.

    - ``"sum"``: X1, X2 ~ U[0, 1) independent, Var(X1 + X2) = 2 * 1/12 = 1/6 ≈ 0.1667 (mean 1).
    - ``"hochreiter"``: X ~ U[-1, 1) has variance 1/3, so Var(0.5 + (X1 + X2)/4) = 2 * (1/3) / 16
      = 1/24 ≈ 0.0417 (mean 0.5).
    """
    return _adding_form(form)[2]


def copy_task(batch_size: int, delay: int, n_symbols: int = 8, seq_len: int = 10, rng=None):
    """The copy task (Arjovsky et al. 2016): recall ``seq_len`` symbols after ``delay`` steps.

    Returns int64 ``x`` and ``y`` of shape ``(2 * seq_len + delay, B)``. Token 0 is the blank,
    1..n_symbols are the symbols and ``n_symbols + 1`` the delimiter, so the vocabulary has
    ``n_symbols + 2`` tokens. ``x`` is the symbols, ``delay - 1`` blanks, the delimiter, then
    ``seq_len`` blanks; ``y`` is blank except for its last ``seq_len`` steps, which repeat the symbols.
    """
    for name, value in [
        ("batch_size", batch_size),
        ("delay", delay),
        ("n_symbols", n_symbols),
        ("seq_len", seq_len),
    ]:
        _require_positive_int(name, value)
    rng = np.random.default_rng(rng)
    symbols = rng.integers(1, n_symbols + 1, size=(seq_len, batch_size))
    x = np.zeros((2 * seq_len + delay, batch_size), dtype=np.int64)
    y = np.zeros_like(x)
    x[:seq_len] = symbols
    x[seq_len + delay - 1] = n_symbols + 1
    y[-seq_len:] = symbols
    return x, y


def copy_baseline_loss(n_symbols: int = 8, seq_len: int = 10, delay: int = 1) -> float:
    """Mean cross-entropy per step of the memoryless strategy on :func:`copy_task`.

    Predicting blank with certainty until the last ``seq_len`` steps costs nothing, and a uniform
    guess over the symbols costs ``log(n_symbols)`` at each of those steps, so the mean over all
    ``2 * seq_len + delay`` steps is ``seq_len * log(n_symbols) / (2 * seq_len + delay)``
    (Arjovsky et al. 2016 write it ``10 log 8 / (T + 20)``).
    """
    for name, value in [("n_symbols", n_symbols), ("seq_len", seq_len), ("delay", delay)]:
        _require_positive_int(name, value)
    return seq_len * math.log(n_symbols) / (2 * seq_len + delay)
