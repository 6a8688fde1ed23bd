"""K ranks as K threads of the test process, so the collectives' users can be tested without MPI.

`ThreadTransport` stands where MPITransport stands inside a real Communicator: every collective
meets the other ranks at a barrier, copies what they brought and combines it in rank order, as an
MPI library would. MPI itself is tested for real, under mpirun, in test_mpi.py.
"""
import functools
import operator
import threading

import numpy as np

from tinygrad_rnn.distributed import Communicator, ReduceOp, Work

# Thread ranks run forward and backward one at a time, so that a rank's backward that waits on a
# collective (an all-reduce started from its hooks) is tested against the others' progress, and
# ranks drawing from the one random stream take turns; only the collectives run side by side.
COMPUTE = threading.Lock()
COMBINE = {ReduceOp.SUM: operator.add, ReduceOp.PRODUCT: operator.mul, ReduceOp.MIN: np.minimum,
           ReduceOp.MAX: np.maximum}


class Serialized:
    """A model whose calls hold COMPUTE, for code that runs the forward itself (a task's loss)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, *args, **kwargs):
        with COMPUTE:
            return self.model(*args, **kwargs)


class ThreadGroup:
    def __init__(self, size):
        self.size = size
        self.barrier = threading.Barrier(size, timeout=20)
        self.slots = [None] * size
        self.aborted = []

    def exchange(self, rank, value):
        """Every rank's value, in rank order."""
        self.slots[rank] = value
        self.barrier.wait()
        values = list(self.slots)
        self.barrier.wait()  # nobody overwrites a slot before everyone has read them all
        return values


class ThreadTransport:
    def __init__(self, group, rank):
        self.group, self.rank, self.size, self.local_rank = group, rank, group.size, rank

    def _host(self, array):
        return np.array(array.get() if hasattr(array, "get") else array)

    def all_reduce(self, array, op):
        # met at wait(), as a non-blocking MPI request completes there: a rank may start one inside its
        # backward (which holds COMPUTE) and the others still get to theirs
        def complete():
            values = self.group.exchange(self.rank, self._host(array))
            array[...] = functools.reduce(COMBINE[op], values)
        return Work(complete)

    def broadcast(self, array, src):
        array[...] = self.group.exchange(self.rank, self._host(array))[src]
        return Work()

    def all_gather(self, output, source):
        values = self.group.exchange(self.rank, self._host(source))
        output.reshape(-1)[...] = np.concatenate([v.reshape(-1) for v in values])
        return Work()

    def broadcast_bytes(self, data, src=0):
        self.broadcast(data, src)

    def barrier(self):
        self.group.barrier.wait()

    def abort(self, errorcode):
        self.group.aborted.append((self.rank, errorcode))


def run_ranks(size, fn, nccl=None):
    """fn(comm) on `size` thread ranks at once; their results in rank order (the first error is raised).

    With `nccl`, each rank's Communicator also gets nccl(its transport) as its NCCL transport,
    built inside the rank's thread (building one exchanges the unique id, a collective).
    """
    group = ThreadGroup(size)
    results, errors = [None] * size, [None] * size

    def rank_main(rank):
        try:
            transport = ThreadTransport(group, rank)
            comm = object.__new__(Communicator)
            comm._attach(transport, nccl(transport) if nccl is not None else None)
            results[rank] = fn(comm)
        except BaseException as e:  # noqa: BLE001  (raised again below, in the test's thread; pytest's
            # failures, such as pytest.raises finding no error, are BaseExceptions)
            errors[rank] = e
            group.barrier.abort()  # release the ranks that wait for this one

    threads = [threading.Thread(target=rank_main, args=(rank,)) for rank in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    first = next((e for e in errors if e is not None and not isinstance(e, threading.BrokenBarrierError)), None)
    first = first or next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return results
