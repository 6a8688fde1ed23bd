"""`tr.Generator`: torch's CPU generator, a Mersenne Twister seeded as torch seeds it.

A Generator given as `generator=` to `randperm`, `randint`, `multinomial`, the samplers and
`random_split` draws the very numbers torch draws from a torch.Generator with the same seed, so a
shuffled DataLoader visits its samples in torch's order. `tr.default_generator` is the global one:
`tr.manual_seed` seeds it and returns it, and every draw given no generator takes from it. Uniform
and normal numbers are torch's CPU ones too (draws.py), so a seed gives torch's initial weights.

`get_state()` is torch's CPU generator state byte for byte (a uint8 Tensor of 5056 bytes: the initial
seed, the twister's 624 words and position, and the cached normal sample), so a state moves
between torch and tr in both directions.
"""
import numbers

import numpy as np

SEEDS = (-2 ** 63, 2 ** 64)  # torch's range; a negative seed wraps around as it does there
DEFAULT_SEED = 67280421310721  # torch.Generator().initial_seed()
MT_WORDS = 624
# torch's CPUGeneratorImplState: seed, left and seeded (int32), next, the words as uint64, three doubles
# of which the second is the cached normal sample, its flag, then a float cache (unused by the CPU
# kernels) and its flag; 5056 bytes with padding
STATE_LAYOUT = np.dtype({"names": ["seed", "left", "seeded", "next", "words", "normal_y", "normal_is_valid",
                                   "float_normal_is_valid"],
                         "formats": ["<u8", "<i4", "<i4", "<u8", ("<u8", MT_WORDS), "<f8", "<i4", "u1"],
                         "offsets": [0, 8, 12, 16, 24, 5024, 5040, 5052], "itemsize": 5056})


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
    for j in range(1, MT_WORDS):
        previous = key[-1]
        key.append((1812433253 * (previous ^ (previous >> 30)) + j) & 0xFFFFFFFF)
    return np.array(key, dtype=np.uint32)


class Generator:
    """torch.Generator on the CPU: `manual_seed(seed)` (returns the generator), `initial_seed()`, `seed()`,
    `get_state()` and `set_state(state)`."""

    def __init__(self, device="cpu"):
        if str(device) != "cpu":
            raise ValueError(f"Generator: only a CPU generator is supported (numbers are drawn on the host); "
                             f"got device {device!r}")
        self.device = "cpu"
        self._bits = np.random.MT19937(0)
        self.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed):
        self._seed = check_seed(seed, "Generator.manual_seed")
        self._bits.state = {"bit_generator": "MT19937", "state": {"key": _twister_key(self._seed), "pos": MT_WORDS}}
        self._normal_cache = None  # the second normal of a Box-Muller pair (draws.py), as torch keeps it
        return self

    def get_state(self):
        """torch's state bytes as a uint8 Tensor (see the module's notes)."""
        from .factory import tensor
        twister = self._bits.state["state"]
        state = np.zeros((), STATE_LAYOUT)
        # NumPy's position counts the words used since the last twist; torch counts those left (plus one)
        # and where the next is, which seeding puts at 0 (the words still the seed's: no twist yet)
        pos = twister["pos"]
        seeded = pos == MT_WORDS and np.array_equal(twister["key"], _twister_key(self._seed))
        state["seed"], state["left"], state["seeded"] = self._seed, MT_WORDS + 1 - pos, 1
        state["next"] = 0 if seeded else pos
        state["words"] = twister["key"]
        if self._normal_cache is not None:
            state["normal_y"], state["normal_is_valid"] = self._normal_cache, 1
        return tensor(np.frombuffer(state.tobytes(), np.uint8))

    def set_state(self, new_state):
        """Restore a state from get_state() (or torch's generator.get_state()); returns the generator."""
        from .tensor import Tensor
        if not isinstance(new_state, Tensor):
            raise TypeError(f"expected a tr.Tensor of uint8 (a ByteTensor), but got {type(new_state).__name__}")
        if new_state.dtype != np.uint8:
            raise TypeError(f"RNG state must be a uint8 tensor (a ByteTensor); got dtype {new_state.dtype}")
        if new_state.numel() != STATE_LAYOUT.itemsize:
            raise RuntimeError(f"Expected a CPUGeneratorImplState of size {STATE_LAYOUT.itemsize} but found the "
                               f"input RNG state size to be {new_state.numel()}")
        state = np.frombuffer(new_state.numpy().tobytes(), STATE_LAYOUT)[0]
        if not 1 <= state["left"] <= MT_WORDS or (state["words"] >> np.uint64(32)).any():
            raise RuntimeError(f"set_state: not a generator state (position {int(state['left'])} and words must "
                               f"lie in range)")
        self._seed = int(state["seed"])
        self._bits.state = {"bit_generator": "MT19937", "state": {"key": state["words"].astype(np.uint32),
                                                                   "pos": MT_WORDS + 1 - int(state["left"])}}
        self._normal_cache = float(state["normal_y"]) if state["normal_is_valid"] else None
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
        (multinomial from float16 weights): seeded by manual_seed and advancing the same state."""
        if getattr(self, "_numpy", None) is None or self._numpy.bit_generator is not self._bits:
            self._numpy = np.random.Generator(self._bits)
        return self._numpy

    def random64(self, count):
        """`count` draws of generator->random64(): two words each, the first the high half."""
        words = self._bits.random_raw(2 * count).reshape(count, 2)
        return (words[:, 0] << np.uint64(32)) | words[:, 1]

    def uniform(self, count):
        """`count` doubles in [0, 1) as torch's uniform_real_distribution<double>: 53 bits of random64()."""
        return (self.random64(count) & np.uint64(2 ** 53 - 1)).astype(np.float64) * 2.0 ** -53


default_generator = Generator()


def manual_seed(seed):
    """Seed the default generator (every draw given no generator) and return it, as torch.manual_seed."""
    return default_generator.manual_seed(check_seed(seed, "manual_seed"))


def initial_seed():
    return default_generator.initial_seed()


def seed():
    """Seed the default generator from the operating system's entropy; returns the seed."""
    return default_generator.seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(new_state):
    default_generator.set_state(new_state)


def numpy_source(generator, fn, default):
    """Where a draw that need not be torch's comes from: `default` (a NumPy Generator) for None, else a
    NumPy Generator over the tr.Generator's bits; TypeError naming `fn` for anything else."""
    return default if check_generator(generator, fn) is None else generator.numpy


def check_generator(generator, fn):
    """`generator` if it is a Generator (or None); TypeError naming `fn` otherwise."""
    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(f"{fn}: generator must be a tr.Generator; got {type(generator).__name__}")
    return generator
