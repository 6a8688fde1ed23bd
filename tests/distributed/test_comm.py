"""Communicator: collectives' results and checks (over thread ranks), launch detection, abort on error."""
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import backend
from tinygrad_rnn.distributed import (
    DistributedError,
    ReduceOp,
    abort_on_error,
    communicator_from_environment,
    launched_world_size,
)

from .threads import run_ranks


@pytest.mark.parametrize("op,expected", [(ReduceOp.SUM, [3.0, 30.0]), (ReduceOp.AVG, [1.5, 15.0]),
                                         (ReduceOp.MIN, [1.0, 10.0]), (ReduceOp.MAX, [2.0, 20.0]),
                                         (ReduceOp.PRODUCT, [2.0, 200.0])])
def test_all_reduce_combines_every_rank_in_place(op, expected):
    def rank(comm):
        x = tr.Tensor([1.0, 10.0], dtype="float64") * (comm.rank + 1)
        assert comm.all_reduce(x, op) is None
        return x.numpy()

    for result in run_ranks(2, rank):
        np.testing.assert_array_equal(result, expected)


def test_async_work_and_raw_arrays():
    def rank(comm):
        x = np.full(3, comm.rank + 1, dtype=np.int64)
        work = comm.all_reduce(x, async_op=True)
        assert work.wait() and work.is_completed()
        y = np.arange(4.0) if comm.rank == 1 else np.zeros(4)
        comm.broadcast(y, src=1)
        out = np.empty((comm.world_size, 2), dtype=np.float32)
        comm.all_gather_into_tensor(out, np.full(2, comm.rank, dtype=np.float32))
        comm.barrier()
        return x, y, out

    for x, y, out in run_ranks(3, rank):
        np.testing.assert_array_equal(x, [6, 6, 6])
        np.testing.assert_array_equal(y, [0, 1, 2, 3])
        np.testing.assert_array_equal(out, [[0, 0], [1, 1], [2, 2]])


@pytest.mark.parametrize("call,error,message", [
    (lambda c: c.all_reduce(np.zeros((4, 4))[:, 0]), ValueError, "not contiguous"),
    (lambda c: c.all_reduce(np.zeros(2), op="mean"), ValueError, "op must be one of sum, avg"),
    (lambda c: c.all_reduce(np.zeros(2, dtype=np.int64), ReduceOp.AVG), TypeError, "needs a floating array"),
    (lambda c: c.all_reduce([1.0, 2.0]), TypeError, "must be a Tensor or a NumPy/CuPy array, got list"),
    (lambda c: c.broadcast(np.zeros(2), src=2), ValueError, "src must be a rank in [0, 2), got 2"),
    (lambda c: c.all_gather_into_tensor(np.zeros(3), np.zeros(2)), ValueError, "must hold 2 x input_tensor"),
])
def test_bad_arguments_are_named(call, error, message):
    def rank(comm):
        with pytest.raises(error) as caught:
            call(comm)
        return str(caught.value)

    assert all(message in text for text in run_ranks(2, rank))


def test_cupy_arrays_need_a_communicator_made_for_cuda():
    class FakeCupyArray:  # anything but a NumPy array counts as a CuPy array
        dtype, shape, strides, flags = np.dtype(np.float32), (2,), (4,), SimpleNamespace(c_contiguous=True)

    def rank(comm):
        assert comm.backend == "mpi" and comm.device == "cpu"
        with pytest.raises(backend.DeviceError, match="Communicator\\(device='cuda'\\)"):
            comm.all_reduce(FakeCupyArray())
        return repr(comm)

    assert run_ranks(2, rank)[1] == "Communicator(rank=1, world_size=2, backend='mpi')"
    assert backend.device_of(FakeCupyArray()) == "cuda"


@pytest.mark.parametrize("environ,size", [({}, 1), ({"OMPI_COMM_WORLD_SIZE": "4"}, 4), ({"PMI_SIZE": "2"}, 2),
                                          ({"MV2_COMM_WORLD_SIZE": "3"}, 3), ({"OMPI_COMM_WORLD_SIZE": " "}, 1)])
def test_launched_world_size_reads_the_launchers_variables(environ, size):
    assert launched_world_size(environ) == size


def test_launch_variables_that_are_not_numbers_are_named():
    with pytest.raises(DistributedError, match="OMPI_COMM_WORLD_SIZE='two'"):
        launched_world_size({"OMPI_COMM_WORLD_SIZE": "two"})


def test_one_process_gets_no_communicator_and_never_imports_mpi_or_cupy(monkeypatch):
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert communicator_from_environment("cpu") is None
    code = ("import sys, tinygrad_rnn.distributed, tinygrad_rnn.train, tinygrad_rnn.cli; "
            "print(sorted(m for m in ('mpi4py', 'cupy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_abort_on_error_ends_the_job_only_with_several_ranks(capsys):
    with pytest.raises(ValueError), abort_on_error(None):
        raise ValueError("one process: the error passes through")

    def rank(comm):
        if comm.rank == 1:
            with pytest.raises(ValueError), abort_on_error(comm):  # the real abort never returns
                raise ValueError("only rank 1 failed")
        return comm._mpi.group.aborted

    assert run_ranks(2, rank)[1] == [(1, 1)]
    assert "rank 1 of 2: ValueError: only rank 1 failed" in capsys.readouterr().err
