"""Timing helpers for the benchmarks: medians after warm-up, round-robin runs, tables with ratios.

Run the contenders of one row round-robin (`interleaved_medians`) so that a busy machine slows
them all alike, and report ratios measured in the same run rather than absolute times. Where the
machine's speed drifts during a run, `paired_ratio` takes the ratio within each round (the two
contenders ran one after the other) and gives their median and quartiles.
"""
import os
import platform
import statistics
import time


def median_ms(fn, warmup=1, repeats=5):
    """Median wall time of fn() in milliseconds, after `warmup` untimed calls."""
    return interleaved_medians({"fn": fn}, warmup, repeats)["fn"]


def interleaved_medians(fns, warmup=1, repeats=5, clock=time.perf_counter):
    """{name: median ms} for a dict of callables, timed in turn within each round.

    clock: time.perf_counter (wall time) or time.process_time (this process's CPU time, steadier
    than wall time on a machine that other jobs keep busy; one-thread runs only)."""
    return {name: statistics.median(t) for name, t in interleaved_times(fns, warmup, repeats, clock).items()}


def interleaved_times(fns, warmup=1, repeats=5, clock=time.perf_counter):
    """{name: [ms of each round]} for a dict of callables, timed in turn within each round."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        # each round starts one contender later, so that none always runs first (after the last one)
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = clock()
            fns[name]()
            times[name].append((clock() - start) * 1e3)
    return times


def paired_ratio(numerators, denominators):
    """(median, first quartile, third quartile) of the ratios of two contenders' times round by round."""
    ratios = sorted(a / b for a, b in zip(numerators, denominators))
    q1, median, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return median, q1, q3


def ratio(numerator, denominator):
    return f"{numerator / denominator:.2f}x"


def format_ms(ms):
    return f"{ms:.1f}" if ms < 1000 else f"{ms:.0f}"


def table(headers, rows):
    """A Markdown table (right-aligned numbers) as a string."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.rjust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "| " + " | ".join("-" * (w - 1) + ":" for w in widths) + " |")
    return "\n".join(lines)


def machine():
    """One line on where the numbers come from (they only compare within one run)."""
    import numpy
    parts = [platform.processor() or platform.machine(), f"{os.cpu_count()} cores", f"numpy {numpy.__version__}"]
    try:
        import torch
        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    except ImportError:
        pass
    import tinygrad_rnn
    if tinygrad_rnn.cuda_available():
        import cupy
        gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        parts.append(f"{gpu}, cupy {cupy.__version__}")
    threads = [f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS") if k in os.environ]
    if threads:
        parts.append(" ".join(threads))
    if hasattr(os, "getloadavg"):
        parts.append(f"load average {os.getloadavg()[0]:.1f}")
    return ", ".join(parts)
