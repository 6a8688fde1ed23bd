"""The NCCL path: which GPU a rank takes, the unique id's trip, pointers, counts, dtypes and stream order.

Without a GPU, CuPy and NCCL are stood in for by fakes over host memory (a device pointer is the
host address, and the fake NCCL really reduces over the thread ranks), so the calls the transport
makes are checked for their effect. With CuPy and a GPU, one test runs real NCCL on one rank.
"""
import ctypes
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from tinygrad_rnn import backend
from tinygrad_rnn.distributed import ReduceOp
from tinygrad_rnn.distributed.mpi import MPITransport
from tinygrad_rnn.distributed.nccl import NCCLTransport, gpu_for, load_nccl

from .threads import COMBINE, ThreadGroup, ThreadTransport, run_ranks

NCCL_CODES = {"NCCL_INT8": 0, "NCCL_UINT8": 1, "NCCL_INT32": 2, "NCCL_UINT32": 3, "NCCL_INT64": 4,
              "NCCL_UINT64": 5, "NCCL_FLOAT16": 6, "NCCL_FLOAT32": 7, "NCCL_FLOAT64": 8}
NCCL_OPS = {"NCCL_SUM": 0, "NCCL_PROD": 1, "NCCL_MAX": 2, "NCCL_MIN": 3}
DTYPE_OF_CODE = {code: np.dtype(name.replace("NCCL_", "").lower()) for name, code in NCCL_CODES.items()}
OP_OF_CODE = {0: ReduceOp.SUM, 1: ReduceOp.PRODUCT, 2: ReduceOp.MAX, 3: ReduceOp.MIN}


class FakeDeviceArray:
    """A CuPy array stand-in: NumPy memory, its address as the device pointer."""

    def __init__(self, values, gpu=0):
        self.host = np.ascontiguousarray(values)
        self.dtype, self.shape, self.size = self.host.dtype, self.host.shape, self.host.size
        self.strides, self.flags = self.host.strides, self.host.flags
        self.data = SimpleNamespace(ptr=self.host.ctypes.data)
        self.device = SimpleNamespace(id=gpu)

    def __itruediv__(self, other):
        self.host /= other
        return self


def memory(ptr, count, code):
    dtype = DTYPE_OF_CODE[code]
    return np.frombuffer((ctypes.c_byte * (count * dtype.itemsize)).from_address(ptr), dtype=dtype)


class FakeNcclCommunicator:
    def __init__(self, fake, ndev, unique_id, rank):
        self.fake, self.ndev, self.unique_id, self.rank = fake, ndev, unique_id, rank
        self.aborted = False

    def _exchange(self, values):
        return self.fake.group.exchange(self.rank, np.array(values))

    def allReduce(self, send, recv, count, dtype, op, stream):  # CuPy's names
        self.fake.log.append((self.rank, "allReduce", stream))
        values = self._exchange(memory(send, count, dtype))
        memory(recv, count, dtype)[...] = np.array(COMBINE[OP_OF_CODE[op]](values[0], values[1]))

    def broadcast(self, send, recv, count, dtype, root, stream):
        self.fake.log.append((self.rank, "broadcast", stream))
        memory(recv, count, dtype)[...] = self._exchange(memory(send, count, dtype))[root]

    def allGather(self, send, recv, count, dtype, stream):
        self.fake.log.append((self.rank, "allGather", stream))
        gathered = np.concatenate(self._exchange(memory(send, count, dtype)))
        memory(recv, count * self.ndev, dtype)[...] = gathered

    def abort(self):
        self.aborted = True


class FakeStream:
    def __init__(self, fake, name):
        self.fake, self.name, self.ptr = fake, name, id(self)

    def record(self):
        event = f"event {len(self.fake.log)} on {self.name}"
        self.fake.log.append((self._rank(), "record", self.name))
        return event

    def wait_event(self, event):
        self.fake.log.append((self._rank(), "wait", self.name, event.split(" on ")[1]))

    def _rank(self):
        return self.fake.rank_of[threading.get_ident()]


class FakeCuPy:
    """cupy and cupy.cuda.nccl as far as NCCLTransport uses them, for two ranks on one machine with two GPUs."""

    def __init__(self, device_count=2):
        self.group, self.log, self.used, self.rank_of = ThreadGroup(2), [], {}, {}
        fake = self
        self.nccl = SimpleNamespace(get_unique_id=lambda: tuple(range(-64, 64)), available=True,
                                    NcclCommunicator=lambda *args: FakeNcclCommunicator(fake, *args),
                                    **NCCL_CODES, **NCCL_OPS)
        self.current = FakeStream(self, "current")
        self.cuda = SimpleNamespace(
            runtime=SimpleNamespace(getDeviceCount=lambda: device_count),
            Device=lambda index: SimpleNamespace(use=lambda: self.used.__setitem__(threading.get_ident(), index)),
            Stream=lambda non_blocking: FakeStream(self, "nccl" if non_blocking else "blocking"),
            get_current_stream=lambda: self.current)

    def transport(self, mpi):
        self.rank_of[threading.get_ident()] = mpi.rank
        return NCCLTransport(mpi, loader=lambda: (self, self.nccl))


@pytest.mark.parametrize("local_rank,count,gpu", [(0, 4, 0), (3, 4, 3), (5, 1, 0)])
def test_each_rank_takes_its_own_gpu(local_rank, count, gpu):
    assert gpu_for(local_rank, count) == gpu


@pytest.mark.parametrize("local_rank,count,message", [(4, 4, "start at most 4 ranks per machine"),
                                                      (0, 0, "no GPU is visible")])
def test_too_many_ranks_for_the_gpus_is_explained(local_rank, count, message):
    with pytest.raises(backend.DeviceError, match=message):
        gpu_for(local_rank, count)


def test_collectives_reach_nccl_with_the_right_pointers_counts_and_dtypes():
    fake = FakeCuPy()

    def rank(comm):
        nccl = comm._nccl
        x = FakeDeviceArray(np.array([1.0, 2.0, 4.0], dtype=np.float32) * (comm.rank + 1), gpu=comm.rank)
        comm.all_reduce(x)
        y = FakeDeviceArray(np.array([[1.0, 3.0]]) * (comm.rank + 1), gpu=comm.rank)
        work = comm.all_reduce(y, ReduceOp.AVG, async_op=True)
        work.wait()
        z = FakeDeviceArray(np.arange(3, dtype=np.int64) + 10 * comm.rank, gpu=comm.rank)
        comm.broadcast(z, src=1)
        out = FakeDeviceArray(np.zeros((2, 2), dtype=np.float16), gpu=comm.rank)
        comm.all_gather_into_tensor(out, FakeDeviceArray(np.full(2, comm.rank, dtype=np.float16), gpu=comm.rank))
        return comm.backend, nccl.gpu, nccl.comm, x.host, y.host, z.host, out.host

    for r, (name, gpu, nccl_comm, x, y, z, out) in enumerate(run_ranks(2, rank, nccl=fake.transport)):
        assert name == "nccl" and gpu == r and set(fake.used.values()) == {0, 1}
        assert (nccl_comm.ndev, nccl_comm.rank, nccl_comm.unique_id) == (2, r, tuple(range(-64, 64)))
        np.testing.assert_array_equal(x, [3.0, 6.0, 12.0])
        np.testing.assert_array_equal(y, [[1.5, 4.5]])
        np.testing.assert_array_equal(z, [10, 11, 12])
        np.testing.assert_array_equal(out, [[0, 0], [1, 1]])


def test_a_collective_waits_for_the_current_stream_and_the_current_stream_for_it():
    fake = FakeCuPy()

    def rank(comm):
        work = comm.all_reduce(FakeDeviceArray(np.ones(2), gpu=comm.rank), async_op=True)
        before = len([e for e in fake.log if e[0] == comm.rank])
        work.wait()
        return before, comm._nccl.stream.ptr

    before, nccl_stream = run_ranks(2, rank, nccl=fake.transport)[0]
    steps = [e[1:] for e in fake.log if e[0] == 0]
    assert steps[:before] == [("record", "current"), ("wait", "nccl", "current"), ("allReduce", nccl_stream),
                              ("record", "nccl")]
    assert steps[before:] == [("wait", "current", "nccl")]


def test_what_nccl_cannot_carry_is_named():
    fake = FakeCuPy()

    def rank(comm):
        errors = []
        for call in (lambda: comm.all_reduce(FakeDeviceArray(np.zeros(2, dtype=bool), gpu=comm.rank)),
                     lambda: comm.all_reduce(FakeDeviceArray(np.zeros(2), gpu=1 - comm.rank))):
            with pytest.raises((TypeError, backend.DeviceError)) as caught:
                call()
            errors.append(str(caught.value))
        comm.abort()
        return errors, comm._nccl.comm.aborted

    (bad_dtype, other_gpu), aborted = run_ranks(2, rank, nccl=fake.transport)[0]
    assert "NCCL cannot carry bool arrays" in bad_dtype
    assert "is on GPU 1, but this rank communicates on GPU 0" in other_gpu
    assert aborted


@pytest.mark.skipif(backend.cuda_available(), reason="checks the message given where CuPy or a GPU is missing")
def test_without_cupy_the_nccl_path_says_what_to_install():
    with pytest.raises(backend.DeviceError, match="cupy"):
        load_nccl()


def test_real_nccl_on_one_gpu():
    if not backend.cuda_available():
        pytest.skip("CuPy with a working GPU is not available here")
    cupy, _ = load_nccl()

    def rank(comm):
        x = cupy.arange(4, dtype=cupy.float64)
        comm.all_reduce(x, ReduceOp.AVG)
        out = cupy.zeros((1, 4), dtype=cupy.float64)
        comm.all_gather_into_tensor(out, x)
        comm.broadcast(x, src=0)
        return cupy.asnumpy(x), cupy.asnumpy(out)

    x, out = run_ranks(1, rank, nccl=lambda mpi: NCCLTransport(mpi))[0]
    np.testing.assert_array_equal(x, [0, 1, 2, 3])
    np.testing.assert_array_equal(out, [[0, 1, 2, 3]])


def test_the_thread_stand_in_offers_what_the_real_transport_does():
    """So that the fakes here call what a real Communicator calls."""
    for name in ("all_reduce", "broadcast", "all_gather", "broadcast_bytes", "barrier", "abort"):
        assert callable(getattr(MPITransport, name)) and callable(getattr(ThreadTransport, name))
