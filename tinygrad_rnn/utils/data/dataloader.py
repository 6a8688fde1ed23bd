"""The DataLoader: batches of a dataset in a sampler's order, collated, as torch.utils.data.DataLoader."""
import math

from ...generator import check_generator, default_generator
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, InfiniteConstantSampler, RandomSampler, SequentialSampler


def get_worker_info():
    """None: samples are always loaded in the calling process (see DataLoader)."""


class DataLoader:
    """Iterate over `dataset` in batches, as torch's DataLoader, with its arguments and checks.

    batch_size samples a batch (None: one sample at a time, not collated), in order or shuffled
    (`shuffle=True`, drawing from `generator`: a tr.Generator seeded as a torch.Generator gives torch's
    order, pass after pass), or as `sampler` or `batch_sampler` say; `collate_fn` makes a batch
    (default_collate: tensors stacked, numbers and NumPy arrays made tensors); `drop_last` leaves out a
    last, shorter batch. An IterableDataset is read as its iterator gives it.

    Loading runs in the calling process: `num_workers` > 0 is accepted and loads the same batches
    in the same order, without worker processes (so `worker_init_fn` is not called and
    `get_worker_info()` is None); `pin_memory`, `timeout`, `prefetch_factor`, `persistent_workers` and
    `multiprocessing_context` change nothing.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers option should be non-negative; use num_workers=0 to disable "
                             f"multiprocessing (got {num_workers!r})")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout option should be non-negative; got {timeout!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("DataLoader: prefetch_factor option could only be specified in multiprocessing; let "
                             "num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
        self.generator = check_generator(generator, "DataLoader")
        if isinstance(dataset, IterableDataset):
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}")
            for name, value in (("sampler", sampler), ("batch_sampler", batch_sampler)):
                if value is not None:
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified {name} option, but "
                                     f"got {name}={value!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually exclusive "
                             "with drop_last")
        if sampler is None:
            if isinstance(dataset, IterableDataset):
                sampler = InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=self.generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self.num_workers, self.pin_memory, self.timeout = num_workers, pin_memory, timeout
        self.worker_init_fn, self.prefetch_factor, self.persistent_workers = (worker_init_fn, prefetch_factor,
                                                                             persistent_workers)
        self.multiprocessing_context, self.pin_memory_device, self.in_order = (multiprocessing_context,
                                                                               pin_memory_device, in_order)
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if batch_sampler is not None else default_convert)

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    def __iter__(self):
        # torch draws its workers' base seed at each pass
        (default_generator if self.generator is None else self.generator).random64(1)
        if isinstance(self.dataset, IterableDataset):
            return self._stream()
        return self._indexed()

    def _indexed(self):
        if not self._auto_collation:
            for index in self.sampler:
                yield self.collate_fn(self.dataset[index])
            return
        getitems = getattr(self.dataset, "__getitems__", None)
        for indices in self.batch_sampler:
            yield self.collate_fn(getitems(indices) if getitems else [self.dataset[i] for i in indices])

    def _stream(self):
        samples = iter(self.dataset)
        if not self._auto_collation:
            for sample in samples:
                yield self.collate_fn(sample)
            return
        for wanted in self.batch_sampler:
            batch = [sample for _, sample in zip(wanted, samples)]
            if not batch or (self.drop_last and len(batch) < len(wanted)):
                return
            yield self.collate_fn(batch)
            if len(batch) < len(wanted):
                return

    def __len__(self):
        if isinstance(self.dataset, IterableDataset):
            length = len(self.dataset)  # a TypeError where the dataset has no length, as in torch
            if self.batch_size is None:
                return length
            return length // self.batch_size if self.drop_last else math.ceil(length / self.batch_size)
        return len(self.batch_sampler if self._auto_collation else self.sampler)
