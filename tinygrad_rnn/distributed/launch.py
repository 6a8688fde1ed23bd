"""Starting under an MPI launcher: how many ranks were started, and a failing rank ending the job."""
import contextlib
import os
import sys

from .comm import Communicator, DistributedError

# Open MPI; MPICH and Intel MPI (Hydra) and Slurm's srun (PMI); MVAPICH
WORLD_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")


def launched_world_size(environ=None):
    """How many ranks the MPI launcher started alongside this process; 1 when no launcher started it."""
    environ = os.environ if environ is None else environ
    for name in WORLD_SIZE_VARIABLES:
        if environ.get(name, "").strip():
            try:
                return max(1, int(environ[name]))
            except ValueError:
                raise DistributedError(f"the launcher set {name}={environ[name]!r}, "
                                       f"which is not a number") from None
    return 1


def communicator_from_environment(device="cpu"):
    """A Communicator when this process is one of several ranks an MPI launcher started, else None.

    MPI is not even imported in a plain `python -m tinygrad_rnn ...` (or under `mpirun -n 1`).
    """
    started = launched_world_size()
    if started == 1:
        return None
    comm = Communicator(device=device)
    if comm.world_size != started:
        raise DistributedError(f"the launcher started {started} ranks but MPI sees {comm.world_size}: mpi4py "
                               f"is probably built for another MPI than the mpirun that started this process")
    return comm


@contextlib.contextmanager
def abort_on_error(comm):
    """An exception inside ends every rank of the job (MPI_Abort) instead of leaving the other ranks
    waiting forever in their next collective; in one process it passes through unchanged."""
    try:
        yield
    except BaseException as e:
        if comm is None or comm.world_size == 1:
            raise
        print(f"rank {comm.rank} of {comm.world_size}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        comm.abort(1)
        raise  # not reached: abort ends this process
