"""Data-parallel training: MPI starts the ranks, NumPy arrays travel through MPI, CuPy arrays through NCCL.

    mpirun -n 4 python -m tinygrad_rnn train --batch-size 64 ...   # each rank trains on 16 of the 64

In a script::

    from tinygrad_rnn.distributed import Communicator, DistributedDataParallel
    comm = Communicator()                  # device="cuda": NCCL, one GPU per rank
    ddp = DistributedDataParallel(model, comm)
    ...; loss.backward(); ddp.average_gradients(); optimizer.step()

Nothing here imports mpi4py or CuPy until a Communicator is made.
"""
from .comm import Communicator, DistributedError, ReduceOp, Work, default_communicator
from .data import ShardedTask, check_equal_shards, shard_rows
from .ddp import DistributedDataParallel
from .launch import abort_on_error, communicator_from_environment, launched_world_size
from .training import DataParallel, SingleProcess, data_parallel

__all__ = [
    "Communicator", "DataParallel", "DistributedDataParallel", "DistributedError", "ReduceOp", "ShardedTask",
    "SingleProcess", "Work", "abort_on_error", "check_equal_shards", "communicator_from_environment",
    "data_parallel", "default_communicator", "launched_world_size", "shard_rows",
]
