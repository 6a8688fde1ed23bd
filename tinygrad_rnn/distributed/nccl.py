"""Collectives on CuPy arrays through NCCL, one GPU per rank; MPI starts the ranks and hands out the id.

Every collective runs on a stream of its own: it first waits for what the current stream has
queued (the array's producers), and its Work.wait() makes the stream current at that time wait
for it in turn. So the host never blocks, and buckets reduce while later ones are still being
packed. CuPy and its NCCL module are loaded on first use only.
"""
import importlib

import numpy as np

from .. import backend
from .comm import ReduceOp, Work

UNIQUE_ID_BYTES = 128
NCCL_HINT = ("NCCL for CuPy: `pip install nvidia-nccl-cu12` (or `python -m cupyx.tools.install_library "
             "--library nccl --cuda 12.x`)")
DTYPE_NAMES = {np.dtype(name): "NCCL_" + name.upper() for name in
               ("float16", "float32", "float64", "int8", "uint8", "int32", "uint32", "int64", "uint64")}
OP_NAMES = {ReduceOp.SUM: "NCCL_SUM", ReduceOp.PRODUCT: "NCCL_PROD", ReduceOp.MIN: "NCCL_MIN",
            ReduceOp.MAX: "NCCL_MAX"}


def load_nccl():
    """(cupy, cupy.cuda.nccl), or a DeviceError saying what is missing."""
    cupy = backend.xp_for("cuda")  # CuPy and a GPU, with backend's install hint when either is missing
    try:
        nccl = importlib.import_module("cupy.cuda.nccl")
    except ImportError as e:
        raise backend.DeviceError(f"data-parallel training on GPUs needs {NCCL_HINT}; the import failed "
                                  f"with: {e}") from e
    if not getattr(nccl, "available", True):
        raise backend.DeviceError(f"this CuPy was built without NCCL; install {NCCL_HINT}")
    return cupy, nccl


def gpu_for(local_rank, device_count):
    """The GPU a rank takes: its rank among the ranks on its machine, or the only one it can see."""
    if device_count < 1:
        raise backend.DeviceError("no GPU is visible to this rank (check CUDA_VISIBLE_DEVICES)")
    if device_count == 1:
        return 0  # the launcher gave each rank its own GPU (CUDA_VISIBLE_DEVICES per rank)
    if local_rank >= device_count:
        raise backend.DeviceError(f"this is rank {local_rank} on its machine, which has {device_count} GPUs: "
                                  f"start at most {device_count} ranks per machine (one GPU per rank)")
    return local_rank


class NCCLTransport:
    """In-place collectives on CuPy arrays of this rank's GPU."""

    def __init__(self, mpi, loader=load_nccl):
        self.cupy, self.nccl = loader()
        self.gpu = gpu_for(mpi.local_rank, self.cupy.cuda.runtime.getDeviceCount())
        self.cupy.cuda.Device(self.gpu).use()  # before any allocation, so every array lands on this GPU
        unique_id = np.zeros(UNIQUE_ID_BYTES, dtype=np.int8)
        if mpi.rank == 0:
            unique_id[:] = self.nccl.get_unique_id()
        mpi.broadcast_bytes(unique_id, src=0)
        self.comm = self.nccl.NcclCommunicator(mpi.size, tuple(int(b) for b in unique_id), mpi.rank)
        self.stream = self.cupy.cuda.Stream(non_blocking=True)

    def all_reduce(self, array, op):
        dtype = self._dtype("all_reduce", array)
        ptr = array.data.ptr
        return self._launch((array,), lambda stream: self.comm.allReduce(
            ptr, ptr, array.size, dtype, getattr(self.nccl, OP_NAMES[op]), stream))

    def broadcast(self, array, src):
        dtype = self._dtype("broadcast", array)
        ptr = array.data.ptr
        return self._launch((array,), lambda stream: self.comm.broadcast(
            ptr, ptr, array.size, dtype, src, stream))

    def all_gather(self, output, source):
        dtype = self._dtype("all_gather_into_tensor", source)
        return self._launch((output, source), lambda stream: self.comm.allGather(
            source.data.ptr, output.data.ptr, source.size, dtype, stream))

    def abort(self):
        self.comm.abort()

    def _dtype(self, op, array):
        if array.dtype not in DTYPE_NAMES:
            raise TypeError(f"{op}: NCCL cannot carry {array.dtype} arrays (shape {array.shape}); "
                            f"use one of {', '.join(str(d) for d in DTYPE_NAMES)}")
        if array.device.id != self.gpu:
            raise backend.DeviceError(f"{op}: the array {array.shape} is on GPU {array.device.id}, but this "
                                      f"rank communicates on GPU {self.gpu}")
        return getattr(self.nccl, DTYPE_NAMES[array.dtype])

    def _launch(self, arrays, call):
        """Run call(stream pointer) on the NCCL stream once the current stream has produced `arrays`."""
        cuda = self.cupy.cuda
        self.stream.wait_event(cuda.get_current_stream().record())
        call(self.stream.ptr)
        done = self.stream.record()

        def wait():  # holds `arrays` until then, so the memory pool cannot hand them out mid-collective
            cuda.get_current_stream().wait_event(done)
            return arrays

        return Work(wait)
