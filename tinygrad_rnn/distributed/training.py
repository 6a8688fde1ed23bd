"""What the training loop (train.loop.train) does differently on the ranks of a data-parallel run.

`data_parallel(comm, config)` gives the loop one object to call at each point where a
data-parallel run differs; in a single process (comm None) every call does nothing.
"""
import numpy as np

from .comm import ReduceOp
from .data import ShardedTask, check_equal_shards
from .ddp import DistributedDataParallel


class SingleProcess:
    """One process: the task, the model and the values stay as they are."""
    is_main = True
    world_size = 1

    def shard(self, task):
        return task

    def wrap(self, model):
        return model

    def average_gradients(self):
        pass

    def mean(self, value):
        return value


class DataParallel:
    """One rank of K: its shard of each batch, rank 0's weights, gradients and losses averaged over the ranks.

    Only rank 0 (`is_main`) should log, draw progress and write checkpoints; every rank
    evaluates, on the whole validation set, so schedules that read the validation loss agree.
    """

    def __init__(self, comm, config):
        check_equal_shards(config.batch_size, comm.world_size)
        self.comm, self.ddp = comm, None
        self.is_main, self.world_size = comm.rank == 0, comm.world_size

    def shard(self, task):
        return ShardedTask(task, self.comm)

    def wrap(self, model):
        """The model in a DistributedDataParallel: from here on every rank holds rank 0's weights."""
        self.ddp = DistributedDataParallel(model, self.comm)
        return self.ddp

    def average_gradients(self):
        self.ddp.average_gradients()

    def mean(self, value):
        """The mean of a number over the ranks (the loss of the whole batch, when shards are equal)."""
        buffer = np.array([value], dtype=np.float64)
        self.comm.all_reduce(buffer, ReduceOp.AVG)
        return float(buffer[0])


def data_parallel(comm, config):
    return SingleProcess() if comm is None else DataParallel(comm, config)
