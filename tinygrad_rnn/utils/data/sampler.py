"""Samplers as torch.utils.data's: the order in which a DataLoader reads a map-style dataset.

What a sampler draws from a `tr.Generator` is what torch's draws from a torch.Generator with the same
seed (randperm and randint, generator.py). Without one, a RandomSampler seeds a fresh Generator from
tr.default_generator each pass, as torch does, so `tr.manual_seed(s)` gives the order torch gives after
`torch.manual_seed(s)`.
"""
import numbers

import numpy as np

from ... import factory
from ...generator import Generator, check_generator, default_generator

_RANDINT_CHUNK = 32  # torch draws samples with replacement 32 at a time


class Sampler:
    """Base class: subclasses give `__iter__` (indices, or lists of indices for a batch sampler)."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A new random permutation each pass (num_samples past len(data_source): several, the last cut), or
    num_samples indices drawn with replacement."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source, self.replacement, self._num_samples = data_source, replacement, num_samples
        self.generator = check_generator(generator, "RandomSampler")
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement should be a boolean value, but got "
                            f"replacement={replacement!r}")
        if not _positive_int(self.num_samples):
            raise ValueError(f"RandomSampler: num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples!r}")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n, count = len(self.data_source), self.num_samples
        generator = self.generator
        if generator is None:
            # torch's int64 random_(): one 64-bit draw modulo 2**63
            generator = Generator().manual_seed(int(default_generator.random64(1)[0]) % 2 ** 63)
        if self.replacement:
            for size in [_RANDINT_CHUNK] * (count // _RANDINT_CHUNK) + [count % _RANDINT_CHUNK]:
                yield from factory.randint(0, n, (size,), generator=generator).tolist()
            return
        for _ in range(count // n):
            yield from factory.randperm(n, generator=generator).tolist()
        yield from factory.randperm(n, generator=generator).tolist()[:count % n]

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a new random order each pass."""

    def __init__(self, indices, generator=None):
        self.indices, self.generator = indices, check_generator(generator, "SubsetRandomSampler")

    def __iter__(self):
        for k in factory.randperm(len(self.indices), generator=self.generator).tolist():
            yield self.indices[k]

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """num_samples indices in [0, len(weights)) drawn with probabilities proportional to `weights`, with
    replacement by default: torch's indices for a generator in the same state (tr.multinomial)."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if not _positive_int(num_samples):
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(  # noqa: TRY004 (torch raises ValueError here)
                f"replacement should be a boolean value, but got replacement={replacement}")
        weights = factory.as_tensor(weights, dtype=np.float64)
        if weights.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {tuple(weights.shape)}")
        self.weights, self.num_samples, self.replacement = weights, num_samples, replacement
        self.generator = check_generator(generator, "WeightedRandomSampler")

    def __iter__(self):
        yield from factory.multinomial(self.weights, self.num_samples, self.replacement,
                                       generator=self.generator).tolist()

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of batch_size indices from `sampler`; the last one shorter, or left out with drop_last."""

    def __init__(self, sampler, batch_size, drop_last):
        if not _positive_int(batch_size):
            raise ValueError(f"BatchSampler: batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size!r}")
        if not isinstance(drop_last, bool):
            raise ValueError(  # noqa: TRY004 (torch raises ValueError here)
                f"BatchSampler: drop_last should be a boolean value, but got drop_last={drop_last!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        batch = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        full, rest = divmod(len(self.sampler), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)


class InfiniteConstantSampler(Sampler):
    """None forever: what a DataLoader over an IterableDataset batches (the dataset gives the order)."""

    def __iter__(self):
        while True:
            yield None


def _positive_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0
