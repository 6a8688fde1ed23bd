"""Communicator: the ranks MPI started, and collectives on their arrays.

NumPy arrays travel through MPI (mpi4py); CuPy arrays through NCCL, one GPU per rank, after MPI
has handed every rank NCCL's unique id. Which way an array goes is chosen by the array itself,
as everywhere in tinygrad_rnn. Collectives work in place on a Tensor's array (or on a raw array)
and take torch.distributed's names and arguments: `all_reduce(tensor, op=ReduceOp.SUM,
async_op=False)`, `broadcast(tensor, src, async_op=False)`, `all_gather_into_tensor(output,
input)`, `barrier()`; `rank` and `world_size` are attributes.
"""
import numpy as np

from .. import backend
from ..tensor import Tensor


class DistributedError(RuntimeError):
    """MPI or NCCL is missing, or the ranks cannot agree (a launch problem, not bad data)."""


class ReduceOp:
    """How all_reduce combines the ranks' arrays (torch.distributed.ReduceOp's names)."""
    SUM = "sum"
    AVG = "avg"         # SUM, then a division by world_size on every rank (the same numbers on MPI and NCCL)
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


REDUCE_OPS = (ReduceOp.SUM, ReduceOp.AVG, ReduceOp.PRODUCT, ReduceOp.MIN, ReduceOp.MAX)


class Work:
    """A collective in flight (returned with async_op=True): `wait()` before using its result.

    On MPI, wait() returns when the data has arrived. On NCCL it orders the current CUDA stream
    after the collective (the host does not block), as torch's Work.wait() does.
    """

    def __init__(self, wait=None, then=None):
        self._wait, self._then, self._done = wait, then, False

    def wait(self):
        if not self._done:
            if self._wait is not None:
                self._wait()
            if self._then is not None:
                self._then()
            self._done = True
            self._wait = self._then = None  # let go of the buffers the collective held
        return True

    def is_completed(self):
        return self._done


_default = [None]  # the first Communicator over COMM_WORLD made in this process


def default_communicator():
    """The first Communicator over all the ranks made in this process, or None (torch's default process
    group, where init_process_group was called)."""
    return _default[0]


class Communicator:
    """The ranks of an MPI communicator (COMM_WORLD unless given) and collectives among them.

    `device="cuda"` also joins the ranks through NCCL: each rank takes one GPU (its rank among
    the ranks on its machine) before anything touches CuPy, so create the communicator first.
    """

    def __init__(self, mpi_comm=None, device="cpu"):
        from .mpi import MPITransport
        from .nccl import NCCLTransport
        device = backend.check_device(device)
        mpi = MPITransport(mpi_comm)
        self._attach(mpi, NCCLTransport(mpi) if device == "cuda" else None)
        if mpi_comm is None and _default[0] is None:
            _default[0] = self  # the ranks of the job: DistributedSampler's defaults (torch's default group)

    def _attach(self, mpi, nccl):
        """Collectives over these transports: `mpi` for host arrays, `nccl` (or None) for CuPy arrays."""
        self._mpi, self._nccl = mpi, nccl
        self.rank, self.world_size, self.local_rank = mpi.rank, mpi.size, mpi.local_rank
        self.device = "cuda" if nccl is not None else "cpu"

    @property
    def backend(self):
        """"nccl" where CuPy arrays can be reduced, else "mpi" (NumPy arrays go through MPI in both)."""
        return "nccl" if self._nccl is not None else "mpi"

    def __repr__(self):
        return f"Communicator(rank={self.rank}, world_size={self.world_size}, backend={self.backend!r})"

    # ------------------------------------------------------------------ collectives

    def all_reduce(self, tensor, op=ReduceOp.SUM, async_op=False):
        """Combine `tensor` over all ranks, in place: every rank ends with the same result."""
        array = self._buffer("all_reduce", "tensor", tensor)
        if op not in REDUCE_OPS:
            raise ValueError(f"all_reduce: op must be one of {', '.join(REDUCE_OPS)}; got {op!r}")
        if op == ReduceOp.AVG and array.dtype.kind != "f":
            raise TypeError(f"all_reduce: ReduceOp.AVG needs a floating array, got {array.dtype}")
        transport = self._transport("all_reduce", array)
        work = transport.all_reduce(array, ReduceOp.SUM if op == ReduceOp.AVG else op)
        if op == ReduceOp.AVG:
            work = Work(work.wait, then=lambda: _divide(array, self.world_size))
        return _finish(work, async_op)

    def broadcast(self, tensor, src=0, async_op=False):
        """Overwrite `tensor` on every rank with rank `src`'s, in place."""
        array = self._buffer("broadcast", "tensor", tensor)
        self._check_rank("broadcast", "src", src)
        return _finish(self._transport("broadcast", array).broadcast(array, src), async_op)

    def all_gather_into_tensor(self, output_tensor, input_tensor, async_op=False):
        """Every rank's `input_tensor`, rank after rank, into `output_tensor` on every rank.

        `output_tensor` holds world_size times as many elements, of the same dtype and device:
        shaped (world_size, *input.shape) or with the first dimension world_size times longer.
        """
        output = self._buffer("all_gather_into_tensor", "output_tensor", output_tensor)
        source = self._buffer("all_gather_into_tensor", "input_tensor", input_tensor)
        if output.size != source.size * self.world_size or output.dtype != source.dtype:
            raise ValueError(f"all_gather_into_tensor: output_tensor {output.shape} {output.dtype} must hold "
                             f"{self.world_size} x input_tensor {source.shape} {source.dtype}")
        if backend.device_of(output) != backend.device_of(source):
            devices = f"{backend.device_of(output)} and {backend.device_of(source)}"
            raise backend.DeviceError(f"all_gather_into_tensor: output_tensor and input_tensor are on "
                                      f"{devices}")
        work = self._transport("all_gather_into_tensor", source).all_gather(output, source)
        return _finish(work, async_op)

    def barrier(self):
        """Return once every rank has called barrier (host-side; GPU work already queued may still run)."""
        self._mpi.barrier()

    def abort(self, errorcode=1):
        """End every rank of the job now: for a rank that failed while the others wait in a collective."""
        if self._nccl is not None:
            self._nccl.abort()
        self._mpi.abort(errorcode)

    # ------------------------------------------------------------------ checks

    def _buffer(self, op, name, tensor):
        array = tensor.array if isinstance(tensor, Tensor) else tensor
        if not hasattr(array, "dtype") or not hasattr(array, "flags") or isinstance(array, np.generic):
            raise TypeError(f"{op}: {name} must be a Tensor or a NumPy/CuPy array, "
                            f"got {type(tensor).__name__}")
        if not array.flags.c_contiguous:
            raise ValueError(f"{op}: {name} of shape {array.shape} is not contiguous (strides "
                             f"{array.strides}); collectives work in place on contiguous memory, so reduce a "
                             f"contiguous copy")
        return array

    def _transport(self, op, array):
        if backend.device_of(array) == "cpu":
            return self._mpi
        if self._nccl is None:
            raise backend.DeviceError(f"{op}: a CuPy array {array.shape} {array.dtype} needs NCCL, and this "
                                      f"communicator was made for the CPU; create it with "
                                      f"Communicator(device='cuda')")
        return self._nccl

    def _check_rank(self, op, name, rank):
        if not isinstance(rank, (int, np.integer)) or not 0 <= rank < self.world_size:
            raise ValueError(f"{op}: {name} must be a rank in [0, {self.world_size}), got {rank!r}")


def _divide(array, count):
    array /= array.dtype.type(count)


def _finish(work, async_op):
    if async_op:
        return work
    work.wait()
    return None
