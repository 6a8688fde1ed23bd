"""Which way a CuPy pass runs its steps: a cluster kernel, a persistent kernel, or launches per step.

TINYGRAD_RNN_CUDA_STEPS forces one (fused.CUDA_STEPS); "auto", the default, asks `choose`:

  1. a table of measured times, where one is present: the JSON file that
     `bench/bench_layers.py --device cuda --write-table PATH` writes, read at import from
     $TINYGRAD_RNN_STEP_TABLE or else cuda_step_times.json beside this module. The entry of the
     same cell and dtype nearest in (B, H, T) (each within a factor of 2, T within 4) names the
     fastest design measured there;
  2. otherwise the latency model's estimate (latency_model.py) for the designs whose plans fit
     this GPU, among those that have run on a GPU before: the cluster kernels (compute capability
     9.0) are tested as C++ on the CPU and built for sm_90, but until a table measured on a GPU
     names them, `auto` does not pick them; TINYGRAD_RNN_CUDA_STEPS=cluster does.

Table format: {"device": str, "entries": [{"cell": "lstm" | "gru" | "rnn", "dtype": "float32",
"batch": B, "input": I, "hidden": H, "steps": T, "ms": {"cluster": ms, "persistent": ms, ...}}]}.
Entries with "cell": "compiled" are compiled cells' (compile/cluster_program.py), H the width of the
step's first state; they are matched on B and H alone.
"""
import json
import math
import os
import warnings

import numpy as np

from . import cluster_kernels as CK
from . import latency_model as LM
from . import persistent_kernels as PK

DESIGNS = LM.DESIGNS
TABLE_PATH = os.environ.get("TINYGRAD_RNN_STEP_TABLE",
                            os.path.join(os.path.dirname(os.path.abspath(__file__)), "cuda_step_times.json"))


def load_table(path):
    """The measured entries of the table at `path`; [] where there is none or it cannot be read."""
    if not os.path.exists(path):
        return []
    try:
        with open(path) as f:
            entries = json.load(f)["entries"]
        for e in entries:
            e["cell"], e["dtype"], e["ms"] = str(e["cell"]), str(e["dtype"]), dict(e["ms"])
            e["batch"], e["hidden"], e["steps"] = int(e["batch"]), int(e["hidden"]), int(e["steps"])
        return entries
    except (OSError, ValueError, KeyError, TypeError) as error:
        warnings.warn(f"launch_plan: ignoring the step-time table {path} ({error}); the latency model decides")
        return []


TABLE = load_table(TABLE_PATH)


def cell_kind(cell):
    """'lstm', 'gru' or 'rnn': the tables do not tell tanh from relu."""
    return "rnn" if cell.name.startswith("rnn") else cell.name


def measured_choice(entries, kind, batch, hidden, steps, dtype):
    """The fastest design of the nearest measured entry, or None where no entry is near enough;
    steps None matches every length (a compiled cell's program is made before it sees one)."""
    best = None
    for e in entries:
        if e["cell"] != kind or e["dtype"] != np.dtype(dtype).name:
            continue
        ratios = (e["batch"] / batch, e["hidden"] / hidden, 1.0 if steps is None else e["steps"] / steps)
        if not (0.5 <= ratios[0] <= 2 and 0.5 <= ratios[1] <= 2 and 0.25 <= ratios[2] <= 4):
            continue
        timed = {d: ms for d, ms in e["ms"].items() if d in DESIGNS and ms is not None}
        if not timed:
            continue
        distance = sum(math.log(r) ** 2 for r in ratios)
        if best is None or distance < best[0]:
            best = (distance, min(timed, key=timed.get))
    return None if best is None else best[1]


def estimates_ms(cell, batch, inputs, hidden, steps, itemsize, multiprocessors, shared_limit, clusters=True):
    """{design: estimated ms of forward + backward} for the designs whose plans fit (latency_model)."""
    from .fused import persistent_plans  # fused imports this module
    plans = {"cluster": CK.cluster_plans(cell, batch, hidden, itemsize, multiprocessors, shared_limit)
             if clusters else None,
             "persistent": persistent_plans(cell, batch, hidden, itemsize, multiprocessors, shared_limit),
             "elementwise": None}
    found = {}
    for design in DESIGNS:
        ms = LM.pass_ms(design, cell.gates, batch, inputs, hidden, steps, itemsize, plans[design])
        if ms is not None:
            found[design] = ms
    return found


def model_choice(cell, batch, hidden, steps, itemsize, multiprocessors, shared_limit, clusters=True):
    """The design the latency model estimates fastest (the input size changes every design alike)."""
    found = estimates_ms(cell, batch, hidden, hidden, steps, itemsize, multiprocessors, shared_limit, clusters)
    return min(found, key=found.get)


def choose(cell, batch, hidden, steps, dtype, entries=None):
    """'cluster', 'persistent' or 'elementwise' for a pass on the current GPU."""
    measured = measured_choice(TABLE if entries is None else entries, cell_kind(cell), batch, hidden, steps, dtype)
    if measured is not None:
        return measured
    return model_choice(cell, batch, hidden, steps, np.dtype(dtype).itemsize, PK.multiprocessor_count(),
                        PK.shared_memory_limit(), clusters=False)


def device_cluster_plans(cell, batch, hidden, dtype):
    """Cluster plans for the current GPU, or None where it has no clusters, W_hh does not fit one, or
    the kernels do not build there."""
    if not CK.clusters_supported():
        return None
    plans = CK.cluster_plans(cell, batch, hidden, np.dtype(dtype).itemsize, PK.multiprocessor_count(),
                             PK.shared_memory_limit())
    return plans if plans is not None and CK.kernels_build(cell_kind(cell), dtype, plans) else None
