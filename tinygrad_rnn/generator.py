"""`tr.Generator`: torch's CPU generator, a Mersenne Twister seeded as torch seeds it.

A Generator given as `generator=` to `randperm`, `randint`, the samplers and `random_split` draws
the very numbers torch draws from a torch.Generator with the same seed, so a shuffled DataLoader
visits its samples in torch's order. The global generator that `tr.manual_seed` seeds is NumPy's
(see factory.py); only what is drawn from a Generator follows torch.
"""
import numbers

import numpy as np

SEEDS = (-2 ** 63, 2 ** 64)  # torch's range; a negative seed wraps around as it does there
DEFAULT_SEED = 67280421310721  # torch.Generator().initial_seed()


def check_seed(seed, fn):
    """`seed` as torch keeps it, an integer in [0, 2**64); TypeError or ValueError naming `fn`."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{fn}: seed must be an integer; got {type(seed).__name__} {seed!r}")
    if not SEEDS[0] <= seed < SEEDS[1]:
        raise ValueError(f"{fn}: seed must lie in [{SEEDS[0]}, {SEEDS[1]}); got {seed}")
    return int(seed) % 2 ** 64


def _twister_key(seed):
    """The 624 words of torch's at::mt19937 seeded with `seed` (its low 32 bits, MT's init_genrand)."""
    key = [seed & 0xFFFFFFFF]
    for j in range(1, 624):
        previous = key[-1]
        key.append((1812433253 * (previous ^ (previous >> 30)) + j) & 0xFFFFFFFF)
    return np.array(key, dtype=np.uint32)


class Generator:
    """torch.Generator on the CPU: `manual_seed(seed)` (returns the generator), `initial_seed()`, `seed()`."""

    def __init__(self, device="cpu"):
        if str(device) != "cpu":
            raise ValueError(f"Generator: only a CPU generator is supported (numbers are drawn on the host); "
                             f"got device {device!r}")
        self.device = "cpu"
        self._bits = np.random.MT19937(0)
        self.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed):
        self._seed = check_seed(seed, "Generator.manual_seed")
        self._bits.state = {"bit_generator": "MT19937", "state": {"key": _twister_key(self._seed), "pos": 624}}
        return self

    def initial_seed(self):
        return self._seed

    def seed(self):
        """Seed from the operating system's entropy, as torch's Generator.seed(); returns the seed."""
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        self.manual_seed(seed)
        return seed

    def random32(self, count):
        """`count` draws of torch's generator->random(): 32-bit words, as uint64 (NumPy's MT19937 gives
        the same words in the same order)."""
        return self._bits.random_raw(count)

    @property
    def numpy(self):
        """A NumPy Generator over this generator's own bit stream, for the draws that need not be torch's
        (normal and uniform numbers, multinomial): seeded by manual_seed and advancing the same state."""
        if getattr(self, "_numpy", None) is None or self._numpy.bit_generator is not self._bits:
            self._numpy = np.random.Generator(self._bits)
        return self._numpy

    def random64(self, count):
        """`count` draws of generator->random64(): two words each, the first the high half."""
        words = self._bits.random_raw(2 * count).reshape(count, 2)
        return (words[:, 0] << np.uint64(32)) | words[:, 1]


def numpy_source(generator, fn, default):
    """Where a draw that need not be torch's comes from: `default` for None, a tr.Generator's NumPy view,
    or a NumPy Generator (what tr.manual_seed returns); TypeError naming `fn` otherwise."""
    if generator is None:
        return default
    if isinstance(generator, Generator):
        return generator.numpy
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"{fn}: argument 'generator' must be a tr.Generator (or the generator tr.manual_seed returns); "
                    f"got {type(generator).__name__}")


def check_generator(generator, fn):
    """`generator` if it is a Generator (or None); TypeError naming `fn` otherwise."""
    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(f"{fn}: generator must be a tr.Generator; got {type(generator).__name__}")
    return generator
