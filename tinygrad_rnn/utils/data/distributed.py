"""torch.utils.data.distributed.DistributedSampler: each rank reads its own share of a dataset.

The shuffled order is torch's: randperm from a Generator seeded with seed + epoch, which tr.Generator
reproduces, so every rank (and torch for the same arguments) agrees on the split."""
import math

from ...factory import randperm
from ...generator import Generator
from .sampler import Sampler


class DistributedSampler(Sampler):
    """Indices rank, rank + num_replicas, ... of the (shuffled) dataset, padded by repeating its start
    to a multiple of num_replicas, or cut to one (drop_last). Call set_epoch(e) before each epoch for
    a new order; num_replicas and rank default to those of the running ranks (tinygrad_rnn.distributed)."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None:
            num_replicas = _world().world_size
        if rank is None:
            rank = _world().rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.epoch, self.drop_last, self.shuffle, self.seed = 0, drop_last, shuffle, seed
        if drop_last and len(dataset) % num_replicas != 0:
            self.num_samples = math.ceil((len(dataset) - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(len(dataset) / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = randperm(n, generator=Generator().manual_seed(self.seed + self.epoch)).tolist()
        else:
            indices = list(range(n))
        if self.drop_last:
            indices = indices[:self.total_size]
        else:
            padding = self.total_size - len(indices)
            indices += (indices * math.ceil(padding / len(indices)))[:padding] if indices else []
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """The epoch whose order the next pass gives (with shuffle, each epoch has its own)."""
        self.epoch = epoch


def _world():
    from ...distributed import default_communicator
    comm = default_communicator()
    if comm is None:
        raise ValueError("Default process group has not been initialized, please make sure to call "
                         "init_process_group. (Here: create a tinygrad_rnn.distributed.Communicator first, or "
                         "pass num_replicas and rank.)")
    return comm
