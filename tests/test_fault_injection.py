"""kill -9 during `train --checkpoint`, then `--resume`: the final weights equal those of a run never
interrupted, and no temporary file is left beside the checkpoint.

One round stops the process for certain inside a save, with half the archive in its temporary file;
the others kill it at seeded random moments: once the checkpoint has reached a random step, after a
random few milliseconds more, wherever the process then is (a step, an evaluation, a save).
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinygrad_rnn.checkpoint import CheckpointError, load_checkpoint
from tinygrad_rnn.cli import main

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs kill -9")

STEPS = 30
OPTIONS = ["--task", "adding", "--cell", "gru", "--hidden-size", "24", "--batch-size", "8", "--T", "8",
           "--eval-sequences", "16", "--eval-every", "1", "--steps", str(STEPS), "--optimizer", "adam",
           "--schedule", "cosine", "--no-progress", "--sample-length", "0"]

# the command line in a child process; with STALL_IN_SAVE=n its n-th save writes half the archive into
# the temporary file, says so through the file READY, and waits there to be killed
CHILD = """
import io, os, sys, time
import numpy as np
from tinygrad_rnn.cli import main
stall_at, saves, savez = int(os.environ.get("STALL_IN_SAVE", "0")), [0], np.savez
def stalling_savez(file, *args, **kwargs):
    saves[0] += 1
    if saves[0] != stall_at:
        return savez(file, *args, **kwargs)
    whole = io.BytesIO()
    savez(whole, *args, **kwargs)
    file.write(whole.getvalue()[:len(whole.getvalue()) // 2])
    file.flush()
    open(os.environ["READY"], "w").close()
    time.sleep(120)
np.savez = stalling_savez
sys.exit(main(sys.argv[1:]))
"""


def command(folder, *extra):
    return ["train", *OPTIONS, "--checkpoint", str(folder / "run.npz"), "--out", str(folder / "out"), *extra]


def start_child(folder, env=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})}
    return subprocess.Popen([sys.executable, "-c", CHILD, *command(folder)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(path, process, timeout=60):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def wait_for_step(path, step, process, timeout=60):
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if load_checkpoint(path)["meta"]["step"] >= step:
                return True
        except (FileNotFoundError, CheckpointError):
            pass  # not written yet
        time.sleep(0.001)
    return False


def resume_and_read(folder, capsys):
    assert main(command(folder, "--resume")) == 0, capsys.readouterr().err
    capsys.readouterr()
    return load_checkpoint(folder / "run.npz")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("straight")
    assert main(command(folder)) == 0
    return load_checkpoint(folder / "run.npz")


def assert_same_end(resumed, straight, folder):
    assert resumed["meta"]["step"] == straight["meta"]["step"] == STEPS
    for name, array in straight["model"].items():
        np.testing.assert_array_equal(resumed["model"][name], array, err_msg=name)
    assert resumed["meta"]["history"]["loss"] == straight["meta"]["history"]["loss"]
    assert sorted(os.listdir(folder)) == ["out", "run.npz"]  # no temporary file left


def test_killed_in_the_middle_of_a_save(tmp_path, capsys, uninterrupted):
    ready = tmp_path / "ready"
    run = tmp_path / "run"
    run.mkdir()
    child = start_child(run, {"STALL_IN_SAVE": "4", "READY": str(ready)})
    try:
        assert wait_for(ready, child), "the child never reached its fourth save"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    stale = [name for name in os.listdir(run) if name.endswith(".tmp")]
    assert len(stale) == 1 and load_checkpoint(run / "run.npz")["meta"]["step"] == 3
    assert_same_end(resume_and_read(run, capsys), uninterrupted, run)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_killed_at_a_random_moment(tmp_path, capsys, uninterrupted, seed):
    rng = np.random.default_rng(seed)
    step = int(rng.integers(1, STEPS - 2))
    child = start_child(tmp_path)
    try:
        assert wait_for_step(tmp_path / "run.npz", step, child), f"the child never reached step {step}"
        time.sleep(rng.uniform(0.0, 0.01))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert_same_end(resume_and_read(tmp_path, capsys), uninterrupted, tmp_path)
