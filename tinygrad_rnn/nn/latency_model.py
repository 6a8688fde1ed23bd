"""A latency model of one recurrent step on an H200: what each way of running the steps must wait for.

A pass of T steps is a chain: step t + 1 needs all of step t's state. Where a step's work is small
the pass costs the chain's latency, not its arithmetic, so each design is judged by the dependent
waits of one step:

    launch     per-step path: the host's kernel launches of every step (cuBLAS product + pointwise
               kernel); persistent and cluster kernels: one launch per pass and direction
    barrier    persistent: a grid-wide barrier (a fence, an atomic on one L2 counter, polling until
               the last block arrives); cluster: the cluster's hardware barrier (no trip to L2)
    operand    the previous step's state (or dA) that the product reads: from L2 (persistent, fresh
               loads past L1) or from the other blocks' shared memory (cluster, DSMEM)
    product    the block's share of the recurrent product: its tiles' instructions, issued by the SM's
               schedulers, times a stall factor calibrated on the largest config
    pointwise  the step body's dependent global loads (gate pre-activations, previous states) and math

A compiled cell's persistent or cluster kernel (compile/persistent_program, cluster_program) has
these terms too, summed over its phases (compiled_step_terms): a barrier after each, its products'
operands from DSMEM or L2, each product summed in the register tiles and slices of k it runs.

Every figure names its source. "published" figures come from NVIDIA's H200 / Hopper documents;
"estimate" figures are orders of magnitude from public microbenchmarks and must be measured on the
machine (bench/RESULTS.md, "Latency model"); "calibrated" figures are fitted to the earlier H200 run
of bench_layers.py. The model ranks designs where no measured table exists (launch_plan.py); it is
not a measurement.
"""
from collections import namedtuple

from . import persistent_kernels as PK

Figure = namedtuple("Figure", "value unit source")

H200 = {
    "multiprocessors": Figure(132, "SMs", "published: H200 SXM (as H100 SXM5), 132 SMs"),
    "clock": Figure(1.98, "GHz", "published: H200 SXM max boost clock; sustained clocks may be lower"),
    "fma": Figure(128, "fp32 FMA / SM / cycle", "published: 128 FP32 units per Hopper SM (67 TFLOP/s fp32)"),
    "shared_per_sm": Figure(228, "KiB", "published: Hopper tuning guide, 228 KB per SM"),
    "shared_per_block": Figure(227, "KiB", "published: Hopper tuning guide, 227 KB per block with the opt-in"),
    "cluster_portable": Figure(8, "blocks", "published: CUDA guide, portable cluster size"),
    "cluster_max": Figure(16, "blocks", "published: Hopper, non-portable cluster size (opt-in)"),
    "hbm_bandwidth": Figure(4.8, "TB/s", "published: H200 HBM3e"),
    "l2_latency": Figure(400, "cycles", "estimate: L2 hit, near partition about 260 (microbenchmarks of "
                                        "H100/H800), far partition more; fresh loads land on either"),
    "hbm_latency": Figure(1000, "cycles", "estimate: a load that misses L2 (about 0.5 us)"),
    "dsmem_latency": Figure(200, "cycles", "estimate: SM-to-SM network, about 180-200 (Luo et al., "
                                           "arXiv 2402.13499, H800)"),
    "dsmem_bytes": Figure(32, "B / cycle / SM", "estimate: DSMEM throughput of one SM's reads"),
    "l2_bytes": Figure(64, "B / cycle / SM", "estimate: L2 throughput one SM sees"),
    "cluster_barrier": Figure(400, "cycles", "estimate: arrive.release + wait.acquire over the cluster"),
    "grid_barrier": Figure(1300, "cycles", "estimate: fence + atomic on L2 + polling that sees the last "
                                           "arrival, three L2 round trips, plus two block syncs"),
    "block_sync": Figure(40, "cycles", "estimate: one __syncthreads of 256-512 threads"),
    "math": Figure(300, "cycles", "estimate: a step body's transcendental functions and stores"),
    "schedulers": Figure(4, "warp schedulers / SM", "published: Hopper SM, one instruction a cycle each"),
    "tile_stall": Figure(6.0, "cycles per issued instruction", "calibrated: persistent LSTM "
                                                                "(256,1024,1024,100), 102.7 ms less bulk and fixed costs"),
    "cublas_efficiency": Figure(0.6, "of fp32 peak", "estimate: cuBLAS sgemm at these shapes"),
    "launch_host": Figure(25.0, "us", "calibrated: per-step path, LSTM (32,128,128,1000) elementwise, "
                                      "112.8 ms for 2000 steps of two launches each"),
    "launch_device": Figure(4.0, "us", "estimate: a kernel launch's latency on the device"),
    "fixed": Figure(2.6, "ms", "calibrated: LSTM rows (32,64,128,50) and (32,128,128,1000), the "
                               "intercept of time against T: host work of a training step"),
}

DESIGNS = ("cluster", "persistent", "elementwise")


def figure(name):
    return H200[name].value


def cycles_to_us(cycles):
    return cycles / (figure("clock") * 1e3)


def issued_cycles(instructions, threads):
    """Cycles for `threads` threads to issue `instructions` each: a scheduler issues for its warps in
    turn, each instruction stalled as the register tiles' are."""
    warps = -(-threads // 32)
    per_scheduler = -(-warps // figure("schedulers"))
    return instructions * per_scheduler * figure("tile_stall")


def register_tile_cycles(iterations, rows, cols, threads):
    """Cycles of `threads` threads each summing a register tile of rows x cols outputs over
    `iterations` k: per k, rows x cols multiply-adds and rows + cols shared loads (A's, W's)."""
    return issued_cycles(iterations * (rows * cols + rows + cols), threads)


def _tile_cycles(plan, K):
    """Issue-bound cycles of the block's register tiles: every worker thread runs its slice of each
    tile's k, then the slices' sums are added."""
    iterations = -(-K // plan.TK) * -(-plan.TK // plan.KS)
    return register_tile_cycles(iterations, PK.PERSISTENT_ROWS, PK.PERSISTENT_COLS, plan.workers) + \
        plan.KS * figure("block_sync")


def step_terms(design, plan, K, itemsize):
    """{term: microseconds} of one step of a persistent or cluster kernel running `plan`.

    K: length of the product's sums. Forward and backward steps of a cell have the same terms
    (K x G x U multiply-adds per row either way)."""
    rows = -(-plan.Bb // 4) * 4
    tiles = -(-K // plan.TK)
    cluster = design == "cluster"
    latency, rate = ("dsmem_latency", "dsmem_bytes") if cluster else ("l2_latency", "l2_bytes")
    operand = tiles * figure(latency) + rows * K * itemsize / figure(rate)
    product = _tile_cycles(plan, K)
    pointwise = figure("hbm_latency") + figure("math") + 4 * figure("block_sync")
    barrier = figure("cluster_barrier" if cluster else "grid_barrier")
    return {name: cycles_to_us(c) for name, c in
            (("barrier", barrier), ("operand", operand), ("product", product), ("pointwise", pointwise))}


def compiled_step_terms(phases, plan, itemsize, rows, column_blocks, barrier="cluster_barrier"):
    """{term: microseconds} of one step of a compiled cell's persistent or cluster kernel
    (compile/persistent_program, compile/cluster_program) running `plan`, whose blocks split each
    product's columns `column_blocks` ways over `rows` batch rows (and the rows phases' rows as
    many ways): phases in order, ("product", K, N, on_chip, tiling) or ("rows", items), a barrier
    ("cluster_barrier" or "grid_barrier") after each.

    operand    A's tiles staged from the cluster's shared memory (on_chip: DSMEM) or from L2, again
               in every round where K takes several tiles
    product    each thread sums its register tile (tiling: rows x cols outputs) over its slice of
               each tile's k, in as many rounds as the tiles x slices need of the block's threads;
               the slices' sums added in order, each output by one thread; a block sync for each
               staged tile and the sums, and the weights' tiles from L2 where they are not resident
    pointwise  each item of a rows phase reads what the one before wrote (L2) and syncs the block,
               for each of the block's rows in turn, then the step body's math
    """
    block_rows = -(-rows // column_blocks)
    operand = product = pointwise = 0.0
    for phase in phases:
        if phase[0] == "rows":
            pointwise += block_rows * phase[1] * (figure("l2_latency") + figure("block_sync")) + figure("math")
            continue
        _, K, N, on_chip, tiling = phase
        columns = -(-N // column_blocks)
        workers = -(-rows // tiling.rows) * -(-columns // tiling.cols) * tiling.slices
        rounds, tiles = -(-workers // plan.threads), -(-K // plan.TK)
        stagings = tiles * rounds if tiles > 1 else 1
        latency, rate = ("dsmem_latency", "dsmem_bytes") if on_chip else ("l2_latency", "l2_bytes")
        operand += stagings * figure(latency) + stagings // tiles * rows * K * itemsize / figure(rate)
        chunk = -(-min(plan.TK, K) // tiling.slices)   # k a slice takes of a tile
        product += register_tile_cycles(rounds * tiles * chunk, tiling.rows, tiling.cols, min(workers, plan.threads))
        if tiling.slices > 1:
            outputs = rows * columns
            product += issued_cycles(-(-outputs // plan.threads) * tiling.slices * 2, min(outputs, plan.threads)) + \
                figure("block_sync")
        product += 2 * stagings * figure("block_sync") + (0 if plan.resident else stagings * figure("l2_latency"))
    return {name: cycles_to_us(c) for name, c in
            (("barrier", len(phases) * figure(barrier)), ("operand", operand), ("product", product),
             ("pointwise", pointwise))}


def per_step_terms(gates, batch, hidden):
    """{term: microseconds} of one step of the per-step path: launch-bound below cuBLAS's time."""
    macs = batch * gates * hidden * hidden
    device = macs / (figure("multiprocessors") * figure("fma") * figure("cublas_efficiency"))
    return {"launch": 2 * figure("launch_host"), "product": cycles_to_us(device)}


def step_us(design, gates, batch, hidden, itemsize, plans):
    """Estimated microseconds of one step (forward and backward alike), or None where the design
    has no plan. plans: (forward plan, backward plan) of the design, or None."""
    if design == "elementwise":
        terms = per_step_terms(gates, batch, hidden)
        return max(terms.values())  # the host launches while the device runs: the longer one counts
    if plans is None:
        return None
    forward, backward = plans
    f = sum(step_terms(design, forward, hidden, itemsize).values())
    b = sum(step_terms(design, backward, gates * hidden, itemsize).values())
    return (f + b) / 2


def bulk_ms(gates, batch, inputs, hidden, steps):
    """The products outside the chain (input projection; dX, dW_ih, dW_hh) at cuBLAS's rate."""
    macs = steps * batch * gates * hidden * (2 * inputs + 2 * hidden)
    peak = figure("multiprocessors") * figure("fma") * figure("clock") * 1e9 * figure("cublas_efficiency")
    return macs / peak * 1e3


def pass_ms(design, gates, batch, inputs, hidden, steps, itemsize, plans):
    """Estimated milliseconds of forward + backward of one layer: fixed + bulk + 2T steps + launches."""
    step = step_us(design, gates, batch, hidden, itemsize, plans)
    if step is None:
        return None
    return layer_ms(step, gates, batch, inputs, hidden, steps, launches=0 if design == "elementwise" else 3)


def layer_ms(step, gates, batch, inputs, hidden, steps, launches=3):
    """Estimated milliseconds of forward + backward of one layer whose steps take `step` us each
    (forward and backward alike) in this many kernel launches on the device."""
    return figure("fixed") + bulk_ms(gates, batch, inputs, hidden, steps) + \
        (2 * steps * step + launches * figure("launch_device")) / 1e3
