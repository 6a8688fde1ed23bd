"""Run under `mpirun -n 2`: every scenario data-parallel, one stopped and resumed, then the command line.

Usage: mpi_worker.py OUT.npz [cuda]. Rank 0 writes the file: per scenario, the final parameters, the loss
history and how far the ranks' parameters differ from rank 0's (they must not); and for each rank
the exit codes of two `train` commands (ARGV, then ARGV with a batch that does not split evenly),
whose output goes to stdout and stderr, and how many loss curves it drew. One launch for all,
since each launch costs a second. With `cuda`, the scenarios run on one GPU per rank through NCCL,
and the command line is left out.
"""
import dataclasses
import os
import sys

import numpy as np

from tests.distributed.scenarios import RESUMED, SCENARIOS, corpus, stopped_early
from tinygrad_rnn import cli
from tinygrad_rnn.distributed import Communicator
from tinygrad_rnn.train import train

ARGV = ["train", "--task", "adding", "--cell", "gru", "--T", "5", "--hidden-size", "4", "--batch-size", "4",
        "--steps", "3", "--eval-every", "3", "--eval-sequences", "8", "--no-progress"]


def spread_over_ranks(comm, model):
    """The largest difference between any rank's parameters and rank 0's."""
    flat = np.concatenate([p.numpy().astype(np.float64).ravel() for p in model.parameters()])
    everyone = np.empty((comm.world_size, flat.size))
    comm.all_gather_into_tensor(everyone, flat)
    return float(np.abs(everyone - everyone[0]).max())


def record(results, name, result, comm):
    results[f"{name}/__loss__"] = np.asarray(result.history["loss"])
    results[f"{name}/__spread__"] = np.asarray(spread_over_ranks(comm, result.model))
    for key, value in result.model.state_dict().items():
        results[f"{name}/{key}"] = value


def main(path, device="cpu"):
    comm = Communicator(device=device)
    scenarios = {name: dataclasses.replace(config, device=device) for name, config in SCENARIOS.items()}
    results = {"__world_size__": np.asarray(comm.world_size)}
    for name, config in scenarios.items():
        record(results, name, train(config, progress=False, corpus=corpus(), comm=comm), comm)
    folder = os.path.dirname(path)
    checkpoint = os.path.join(folder, "resumed.npz")
    train(stopped_early(scenarios[RESUMED]), checkpoint=checkpoint, progress=False, corpus=corpus(), comm=comm)
    comm.barrier()  # rank 0 has written the checkpoint that every rank resumes from
    resumed = train(scenarios[RESUMED], checkpoint=checkpoint, resume=True, progress=False, corpus=corpus(),
                    comm=comm)
    record(results, "resumed", resumed, comm)
    if device == "cpu":
        run_command_line(results, folder, comm)
    if comm.rank == 0:
        np.savez(path, **results)


def run_command_line(results, folder, comm):
    plotted = []
    cli._try_plot = lambda *args: plotted.append(comm.rank)  # drawing is test_train_cli's; here: who draws
    codes = [cli.main([*ARGV, "--checkpoint", os.path.join(folder, "cli.npz"), "--out", os.path.join(folder, "out")]),
             cli.main([*ARGV, "--batch-size", "3"])]
    results["__cli_codes__"] = np.empty((comm.world_size, 3), dtype=np.int64)
    comm.all_gather_into_tensor(results["__cli_codes__"], np.array(codes + [len(plotted)], dtype=np.int64))


if __name__ == "__main__":
    main(*sys.argv[1:])
