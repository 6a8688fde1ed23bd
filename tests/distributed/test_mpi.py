"""Real MPI: 2 ranks under mpirun train to the same weights as one process with the whole batch.

Skipped, with the reason, where mpirun or mpi4py is missing; in CI (CI=true) they must run, and
`make test` installs them where it may (the Makefile's mpi target).
"""
import dataclasses
import importlib.util
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_rnn import backend
from tinygrad_rnn.train import train

from ..conftest import IN_CI
from .scenarios import RESUMED, SCENARIOS, corpus

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RANKS = 2
TIMEOUT_S = 60  # a hung collective must fail the test, not the whole run
WORKER = os.path.join("tests", "distributed", "mpi_worker.py")


@pytest.fixture
def mpirun():
    launcher = shutil.which("mpirun") or shutil.which("mpiexec")
    needs = {"mpirun (Open MPI: apt-get install openmpi-bin libopenmpi-dev)": launcher,
             "mpi4py (pip install mpi4py)": importlib.util.find_spec("mpi4py")}
    missing = [what for what, found in needs.items() if not found]
    if missing:
        reason = f"data-parallel runs need {' and '.join(missing)}"
        if IN_CI:
            pytest.fail(f"{reason}; CI must run these tests (make mpi installs them)")
        pytest.skip(reason)
    return launcher


def launch(mpirun, *argv, ranks=RANKS):
    """`mpirun -n ranks python argv...` from the repository root, ended whole if it outlives TIMEOUT_S."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
           "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",  # containers often run as root
           "OMPI_MCA_rmaps_base_oversubscribe": "1",  # more ranks than cores is fine for tests
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    process = subprocess.Popen([mpirun, "-n", str(ranks), sys.executable, *argv], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"mpirun did not finish within {TIMEOUT_S} s:\n{out}\n{err}")
    return process.returncode, out, err


def compare_with_one_process(ranks, device, float64_atol):
    for name, config in [*SCENARIOS.items(), ("resumed", SCENARIOS[RESUMED])]:
        one = train(dataclasses.replace(config, device=device), progress=False, corpus=corpus())
        tolerance = {"rtol": 0, "atol": float64_atol} if config.dtype == "float64" else {"rtol": 1e-5, "atol": 1e-6}
        assert float(ranks[f"{name}/__spread__"]) == 0.0, f"{name}: the ranks' weights differ"
        np.testing.assert_allclose(ranks[f"{name}/__loss__"], one.history["loss"], **tolerance, err_msg=name)
        for key, value in one.model.state_dict().items():
            np.testing.assert_allclose(ranks[f"{name}/{key}"], value, **tolerance, err_msg=f"{name}: {key}")


def test_two_ranks_train_to_the_weights_of_one_process_with_the_whole_batch(mpirun, tmp_path):
    path = str(tmp_path / "ranks.npz")
    code, out, err = launch(mpirun, WORKER, path)
    assert code == 0, f"{out}\n{err}"
    ranks = np.load(path)
    assert int(ranks["__world_size__"]) == RANKS
    compare_with_one_process(ranks, "cpu", float64_atol=1e-12)

    # the command line in the same launch: rank 0 alone logs, reports and writes; a bad batch fails cleanly
    assert out.count("resumed from") == 1
    assert out.count("training gru on task adding") == 1 and out.count("step 3: loss") == 1
    assert "data-parallel over 2 ranks (mpi), 2 sequences of each batch per rank" in out
    assert os.path.exists(tmp_path / "cli.npz")
    assert ranks["__cli_codes__"].tolist() == [[0, 1, 1]] + [[0, 1, 0]] * (RANKS - 1)  # exit codes, curves drawn
    assert err.count("batch_size 3 does not split evenly over 2 ranks") == RANKS


@pytest.mark.skipif(not backend.cuda_available(), reason="CuPy with a working GPU is not available here")
def test_ranks_on_gpus_through_nccl(mpirun, tmp_path):
    gpus = backend.xp_for("cuda").cuda.runtime.getDeviceCount()
    path = str(tmp_path / "gpus.npz")
    code, out, err = launch(mpirun, WORKER, path, "cuda", ranks=min(RANKS, gpus))  # one GPU per rank
    assert code == 0, f"{out}\n{err}"
    compare_with_one_process(np.load(path), "cuda", float64_atol=1e-10)  # cuBLAS may sum in another order
