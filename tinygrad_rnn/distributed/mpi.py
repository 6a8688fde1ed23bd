"""Collectives on NumPy arrays through mpi4py (imported on first use, never at package import)."""
import numpy as np

from .comm import DistributedError, ReduceOp, Work

INSTALL_HINT = ("install an MPI library and mpi4py: for example `apt-get install openmpi-bin libopenmpi-dev` "
                "and `pip install 'tinygrad-rnn[mpi]'` (or `pip install mpi4py`)")
# MPI has no half precision; every other NumPy number type has an MPI datatype mpi4py finds by itself
DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                     np.uint16, np.uint32, np.uint64, np.bool_))


def load_mpi():
    """mpi4py's MPI module (importing it initialises MPI), or a DistributedError that says what to install."""
    try:
        from mpi4py import MPI
    except Exception as e:  # ImportError, or a RuntimeError when the MPI library itself cannot be loaded
        raise DistributedError(f"data-parallel runs need MPI: {INSTALL_HINT}; the import failed with "
                               f"{type(e).__name__}: {e}") from e
    return MPI


class MPITransport:
    """In-place collectives on host arrays; each returns a Work whose wait() ends the MPI request."""

    def __init__(self, comm=None):
        self.MPI = load_mpi()
        self.comm = comm if comm is not None else self.MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        node = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)  # the ranks on this machine
        self.local_rank = node.Get_rank()
        node.Free()
        self.ops = {ReduceOp.SUM: self.MPI.SUM, ReduceOp.PRODUCT: self.MPI.PROD, ReduceOp.MIN: self.MPI.MIN,
                    ReduceOp.MAX: self.MPI.MAX}

    def all_reduce(self, array, op):
        _check_dtype("all_reduce", array)
        return _work(self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self.ops[op]))

    def broadcast(self, array, src):
        _check_dtype("broadcast", array)
        return _work(self.comm.Ibcast(array, root=src))

    def all_gather(self, output, source):
        _check_dtype("all_gather_into_tensor", source)
        return _work(self.comm.Iallgather(source, output))

    def broadcast_bytes(self, data, src=0):
        """A small host buffer from rank `src` to all, blocking (NCCL's unique id travels this way)."""
        self.comm.Bcast(data, root=src)

    def barrier(self):
        self.comm.Barrier()

    def abort(self, errorcode):
        self.comm.Abort(errorcode)


def _check_dtype(op, array):
    if array.dtype not in DTYPES:
        raise TypeError(f"{op}: MPI cannot carry {array.dtype} arrays (shape {array.shape}); "
                        f"use one of {', '.join(str(d) for d in DTYPES)}")


def _work(request):
    return Work(request.Wait)
