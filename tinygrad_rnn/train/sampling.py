"""Text from a character language model: feed a prime, then sample one character at a time."""
import math
import numbers

import numpy as np

from ..tensor import Tensor, no_grad


def _sample(logits, temperature, rng):
    """An index drawn from softmax(logits / temperature); temperature 0 takes the most likely one."""
    if temperature == 0:
        return int(np.argmax(logits))
    logits = logits.astype(np.float64)
    p = np.exp((logits - logits.max()) / temperature)  # shifted first: no overflow at tiny temperatures
    return min(int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right")), len(p) - 1)


def generate(model, vocab, prime="\n", length=200, temperature=0.8, rng=None):
    """`length` characters sampled from `model` (a CharLM) after `prime`, returned without the prime.

    `vocab` is the list (or string) of characters in id order; `rng` a NumPy generator or seed.
    Lower temperatures give safer, more repetitive text; 1 samples the model's own distribution.
    """
    if not (isinstance(temperature, numbers.Real) and math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if not prime:
        raise ValueError("generate needs a non-empty prime to start from")
    id_of = {char: i for i, char in enumerate(vocab)}
    unknown = sorted(set(prime) - set(id_of))
    if unknown:
        raise ValueError(f"the prime holds characters the model has never seen: {''.join(unknown)!r}")
    rng = np.random.default_rng(rng)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out, state = [], None
    ids = np.array([[id_of[char]] for char in prime], dtype=np.int64)  # (T, B=1)
    with no_grad():
        for _ in range(length):
            logits, state = model(Tensor(ids, device=device), state)
            next_id = _sample(logits.numpy()[-1, 0], temperature, rng)
            out.append(vocab[next_id])
            ids = np.array([[next_id]], dtype=np.int64)
    model.train(was_training)
    return "".join(out)
