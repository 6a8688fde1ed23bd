"""Cluster programs: a compiled cell's persistent program on thread-block clusters (sm_90).

The persistent program (persistent_program) runs a segment in one launch whose blocks all wait at a
software grid barrier after every phase: every block must be resident at once, and a barrier that
waits too long sets a `failed` flag. Batch rows never exchange anything in a step the persistent
program accepts (its row phases refuse a value read by another row's work), so the launch splits
into independent groups of rows, as the built-in cells' cluster kernels (nn/cluster_kernels.py) do:

  group g  the batch rows [g * Bg, g * Bg + Bg), the last group maybe shorter, run by one cluster
           of `csize` blocks (csize in 1, 2, 4, 8: the portable cluster sizes);
  product  block `rank` of the cluster owns the columns [rank * Nb, (rank + 1) * Nb) of every
           product (Nb = N / csize, rounded up) and keeps that slice of every W in its shared
           memory for the whole launch, as a persistent block does, but sums only its group's rows;
  rows     the group's rows g * Bg + rank, + csize, ... (the same row items as the persistent kernel);
  barrier  the cluster's hardware barrier (barrier.cluster arrive.release / wait.acquire) after each
           phase, in place of the grid barrier: clusters never wait for each other, so they need
           not be resident together, and no barrier can time out.

  exchange what a product reads crosses the cluster on chip, as in the built-in cells' cluster
           kernels: block `rank` computes the same rows in every rows phase, so it holds those rows
           of the product's operand A (the state in forward, the pre-activations' gradient in
           backward) as it writes them. Each store of the rows phase before the product (the step
           before's last phase where the product comes first) that lands in A is mirrored into the
           block's buffer X in shared memory, and the product stages A's tiles from the cluster's
           buffers (distributed shared memory: mapa) instead of L2. One buffer per product is
           enough: a cluster barrier lies between its reads and the next step's writes. Where a
           product's operand is not all written by the rows before it (or the buffers do not fit
           beside the weights), that product reads global memory, and `exchange_reason` says why.

Other values stay where the persistent program keeps them (global memory, read past L1 where
another block of the cluster wrote them), so the kernels are the persistent program's Kernel with
another split of the work and the exchange's hooks (ClusterKernel below); nothing is copied from
it. The cluster size is a compile-time attribute on the GPU (__cluster_dims__, so a plain launch
works) and a plan int as well; the same source compiles as C++ (emulate=True) where clusters run
one after another, each through all of its steps, its blocks as a loop, the barrier the end of
that loop, a peer's shared memory that block's part of one array.

choose_program takes this program where TINYGRAD_RNN_CUDA_STEPS=cluster (or "auto" where
nn/launch_plan's measured table names the cluster design for compiled cells) and the step fits;
otherwise persistent_program.choose_program runs, and the program made says why in `cluster_reason`.
"""
import re

import numpy as np

from ..nn import cluster_kernels as CK
from ..nn import persistent_kernels as PK
from . import persistent_program as P
from .persistent_program import NotPersistent

CLUSTER_SIZES = CK.CLUSTER_SIZES
TABLE_KIND = "compiled"   # the cell name of compiled cells' entries in launch_plan's measured table

_CUDA = r"""
#define KERNEL_CLUSTER(C) extern "C" __global__ void __cluster_dims__(C, 1, 1) __launch_bounds__(MAX_THREADS)
#define FOR_CLUSTERS(g) for (int g = blockIdx.x / csize, g##_once = 1; g##_once; g##_once = 0)
#define FOR_RANKS(rank) for (int rank = blockIdx.x % csize, rank##_once = 1; rank##_once; rank##_once = 0)
""" + CK.DSMEM_CUDA

_EMULATED = r"""
#define KERNEL_CLUSTER(C) extern "C" void
// a cluster runs all of its steps before the next one starts: a cluster that read another's rows
// would find them not yet written (or written for a later step)
#define FOR_CLUSTERS(g) for (int g = 0; g < nblocks / csize; ++g)
#define FOR_RANKS(rank) for (int rank = 0; rank < csize; ++rank)
// the same shared variable in block `r` of the cluster: that block's part of the blocks' shared array
#define PEER(p, r) ((p) + ((long long)(r) - rank) * (long long)per_block)
#define CLUSTER_BARRIER()
"""


class Exchange:
    """Product q's operand A (K columns) published on chip: the rows phase `phase` writes it (for
    the next step where `next_step`), and each store there of an element of A also goes to the
    writing block's buffer X{q} (its rows of the group, K columns each); A's element k lies at
    offset + k * stride within its batch row."""

    def __init__(self, q, K, operand, phase, next_step):
        self.q, self.K, self.operand, self.phase, self.next_step = q, K, operand, phase, next_step
        self.offset = operand.offset
        self.stride = operand.steps[1] if K > 1 else 1

    def offsets(self):
        return self.offset + self.stride * np.arange(self.K)


def _row_offsets(operand, shape):
    """The element offsets within a batch row at which operand, over shape, lies."""
    if len(shape) == 1:
        return np.array([operand.offset], np.int64)
    steps = operand.over(shape)
    where = np.indices(shape[1:], dtype=np.int64).reshape(len(shape) - 1, -1)
    return operand.offset + np.asarray(steps[1:], np.int64) @ where


class ClusterKernel(P.Kernel):
    """A persistent Kernel whose work is split per cluster (see the module's docstring), the
    products' operands exchanged through the cluster's shared memory where they can be (exchanges)."""

    SYNC_PARAMS = ()            # no grid barrier: no counter, no `failed` flag
    COLUMN_BLOCKS = "csize"

    @property
    def QUALIFIER(self):
        # the cluster size: a macro the CUDA module defines (cluster_module_source), unread in C++
        return f"KERNEL_CLUSTER({cluster_macro(self.name)})"

    @property
    def plan_ints(self):
        return P.PLAN_INTS + ("csize", "Bg", "exchange")

    def share(self, plan):
        return plan.rows, plan.cluster

    def launch(self, lines):
        B = self.B
        return ["FOR_CLUSTERS(g) {", f"  const int row0 = g * Bg, rows = {B} - row0 < Bg ? {B} - row0 : Bg;"] + \
            ["  " + line for line in lines] + \
            ["  CLUSTER_BARRIER();  // no block leaves while another may read its shared memory", "}"]

    def blocks(self, lines):
        exchanged = [f"  T* const X{q} = shared + x_at{q};" for q in self.exchanges()[0]]
        return ["FOR_RANKS(rank) {", "  const int blk = g * csize + rank, cb = rank;",
                "  T* const shared = BLOCK_SHARED(T, blk, per_block);"] + exchanged + \
            ["  " + line for line in lines] + ["}"]

    def barrier(self):
        return "CLUSTER_BARRIER();"

    BARRIER_FIGURE = "cluster_barrier"

    # --- the operands' exchange through distributed shared memory
    def exchanges(self):
        """({q: Exchange}, {q: why product q reads its operand from global memory}), once every
        phase is known. Block `rank` of a cluster computes the group's rows rank, rank + csize, ...
        in every rows phase, so it holds exactly those rows of whatever the rows phases write; a
        product's operand A can come from the blocks' shared memory where the rows phase before the
        product (the step before's last one where the product comes first) writes all of A,
        unconditionally, and every store there to A's memory is mirrored into X (published)."""
        if getattr(self, "_exchanges", None) is None:
            self._exchanges = ({}, {})
            for q, (op, _) in enumerate(self.products):
                made = self._exchange(q, op)
                self._exchanges[isinstance(made, str)][q] = made
        return self._exchanges

    def _exchange(self, q, op):
        a, K = self.places.of(op.inputs[0]), op.inputs[0].shape[1]
        if not self.places.written(a):
            return f"{op.name} reads a value made before the launch"
        n = p = next(n for n, (kind, content) in enumerate(self.phases) if content is op)
        next_step = False
        while True:
            p -= 1
            if p < 0:
                p, next_step = len(self.phases) - 1, True
            kind, content = self.phases[p]
            if p == n or kind == "rows":
                break
            if self.places.of(content.out).name == a.name:
                return f"{op.name} reads the output of {content.name}"
        if p == n:
            return f"no rows phase writes the operand of {op.name}"
        exchange = Exchange(q, K, a, p, next_step)
        covered = set()
        for store in self.stores[p]:
            if not store.conditional and self._addresses(exchange, store.operand):
                covered.update(_row_offsets(store.operand, store.shape).tolist())
        if not covered.issuperset(exchange.offsets().tolist()):
            return f"the rows before {op.name} do not write all of its operand"
        return exchange

    def _addresses(self, exchange, operand):
        """Whether operand, written in exchange.phase, is in the memory the product reads as A."""
        name, slot = operand.name, operand.slot
        if exchange.next_step:  # this step's memory as the next step names it
            if re.fullmatch(r"[CD]\d+", name) and f"{name}_" in self.places.params:   # carries swap
                name = ("D" if name[0] == "C" else "C") + name[1:]
            slot = {None: None, **({"j + 1": "j"} if self.direction == "forward" else {"j": "j + 1"})}.get(slot, "")
        return (name, slot) == (exchange.operand.name, exchange.operand.slot)

    def published(self, operand, shape):
        publish = []
        for exchange in self.exchanges()[0].values():
            if exchange.phase != self._phase or not self._addresses(exchange, operand):
                continue
            at = _row_offsets(operand, shape) - exchange.offset
            hit = (at >= 0) & (at < exchange.K * exchange.stride) & (at % exchange.stride == 0)
            if hit.any():
                publish.append(self._publisher(exchange, operand, shape, None if hit.all() else exchange.stride))
        return publish

    def _publisher(self, exchange, operand, shape, check):
        steps = operand.over(shape)

        def publish(dims, value):
            at = " + ".join([str(operand.offset - exchange.offset)] +
                            [f"c{k} * {steps[k]}" for k in dims if k and steps[k]])
            K, stride = exchange.K, exchange.stride
            where = f"(long long)((b - row0) / csize) * {K} + " + (f"x / {stride}" if stride != 1 else "x")
            store = f"X{exchange.q}[{where}] = {value};"
            if check is not None:
                store = f"if (x >= 0 && x < {K * stride}" + (f" && x % {stride} == 0" if stride != 1 else "") + \
                    f") {store}"
            return f"if (exchange) {{ const long long x = {at}; {store} }}"
        return publish

    def operand_load(self, q, K, load):
        exchange = self.exchanges()[0].get(q)
        if exchange is None:
            return load
        on_chip = "exchange && s > 0" if exchange.next_step else "exchange"   # the first step's A: from global
        return f"({on_chip} ? PEER(X{q}, r % csize)[(long long)(r / csize) * {K} + k0 + kk] : {load})"

    def shared_layout(self):
        # the exchange buffers last: rows / csize rows (rounded up) of each exchanged operand
        lines, at = ["const long long x_rows = (Bg + csize - 1) / csize;"], "per_block"
        for q, exchange in reversed(list(self.exchanges()[0].items())):
            lines.append(f"const long long x_at{q} = exchange ? {at} - x_rows * {exchange.K} : 0;")
            at = f"x_at{q}"
        return lines

    def plan_needs(self):
        return {"exchanges": tuple(exchange.K for exchange in self.exchanges()[0].values())}

    def on_chip(self):
        return self.exchanges()[0] if self.plan.exchange else {}


def cluster_macro(name):
    return f"CLUSTER_SIZE_{name}"


class ClusterPlan(P.Plan):
    """A Plan for clusters of `cluster` blocks, each cluster on `rows` batch rows (Bg), `groups`
    clusters in all (blocks = groups * cluster); `exchange`: the products' operands that can go
    through the blocks' shared memory (ClusterKernel.exchanges), their buffers counted in `shared`."""

    def __init__(self, cluster, rows, groups, threads, TK, resident, exchange, elements, itemsize,
                 min_chunk=PK.PERSISTENT_MIN_CHUNK):
        super().__init__(groups * cluster, threads, TK, resident, elements, itemsize, min_chunk)
        self.cluster, self.rows, self.groups, self.exchange = cluster, rows, groups, exchange

    def ints(self):
        return super().ints() + (self.cluster, self.rows, int(self.exchange))

    def __repr__(self):
        return (f"ClusterPlan(cluster={self.cluster}, rows={self.rows}, groups={self.groups}, "
                f"threads={self.threads}, tile={self.TK}, resident={self.resident}, exchange={self.exchange}, "
                f"shared={self.shared})")


def exchange_elements(exchanges, rows, cluster):
    """A block's exchange buffers in elements: its rows of the group's (rows / cluster, rounded up)
    of each exchanged operand (exchanges: their columns K)."""
    return -(-rows // cluster) * sum(exchanges)


def cluster_plan(products, batch, itemsize, cluster, rows, threads=P.THREADS, TK=P.MAX_TILE, resident=True,
                 exchanges=(), exchange=True, min_chunk=PK.PERSISTENT_MIN_CHUNK):
    """The plan for clusters of `cluster` blocks on groups of `rows` batch rows (the last group gets
    what is left), tiles of TK columns of A at most, slices of min_chunk k of a tile at least; the
    operands of `exchanges` (their K) through shared memory if `exchange`."""
    rows = max(1, min(rows, batch))
    TK = max(1, min(TK, max([K for K, _ in products], default=1)))
    exchange = bool(exchange and exchanges)
    elements = P.shared_elements(products, rows, cluster, TK, resident, threads, min_chunk) + \
        (exchange_elements(exchanges, rows, cluster) if exchange else 0)
    return ClusterPlan(cluster, rows, -(-batch // rows), threads, TK, resident, exchange, elements, itemsize,
                       min_chunk)


def make_cluster_plan(products, batch, itemsize, multiprocessors, shared_limit, threads=P.THREADS,
                      sizes=CLUSTER_SIZES, exchanges=()):
    """The plan for products [(K, N)] over `batch` rows on a GPU with this many multiprocessors and
    bytes of shared memory per block, the operands of `exchanges` (their K) through shared memory
    where they fit; None where no cluster's share fits.

    Among the splits whose blocks all run at once (groups x cluster <= multiprocessors: a second wave
    would double the pass), the weights resident in shared memory if any split keeps them there, the
    operands exchanged on chip if any such split can, the least multiply-adds per block and step
    (rows of the group x the block's columns x K), the fewest rows per block in the row phases, then
    the fewest blocks and the smallest clusters (a cheaper barrier). An estimate: the measured table
    (nn/launch_plan) decides whether the cluster design runs at all.
    """
    best = None
    for cluster in sizes:
        groups = 1
        while groups <= batch and groups * cluster <= multiprocessors:
            rows = -(-batch // groups)
            tile = min(P.MAX_TILE, max([K for K, _ in products], default=1))
            for resident, exchange in ((True, True), (True, False), (False, True), (False, False)):
                TK = tile
                while TK >= 1 and cluster_plan(products, batch, itemsize, cluster, rows, threads, TK, resident,
                                               exchanges, exchange).shared > shared_limit:
                    TK //= 2
                if TK >= 1:
                    plan = cluster_plan(products, batch, itemsize, cluster, rows, threads, TK, resident, exchanges,
                                        exchange)
                    work = rows * sum(K * -(-N // cluster) for K, N in products)
                    key = (not resident, not plan.exchange, work, -(-plan.rows // cluster), plan.blocks, cluster)
                    if best is None or key < best[0]:
                        best = (key, plan)
                    break
            groups *= 2
    return None if best is None else best[1]


def device_cluster_plan(products, batch, itemsize, exchanges=()):
    """The cluster plan for the current GPU; refused where it has no thread-block clusters."""
    if not CK.clusters_supported():
        raise NotPersistent("this GPU has no thread-block clusters (compute capability 9.0 or later)")
    return make_cluster_plan(products, batch, itemsize, PK.multiprocessor_count(), PK.shared_memory_limit(),
                             exchanges=exchanges)


class ClusterProgram(P.PersistentProgram):
    """A NumpyProgram's forward and backwards with each loop one launch of cluster kernels: the
    persistent program's arguments, plan_for(products, batch, itemsize) -> ClusterPlan or None, and
    kernels built from cluster_module_source (called kernel(*args, plan=), no barrier arrays)."""

    kernel_type = ClusterKernel

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.exchange_reason = exchange_reason(kernel for kernel, _ in self.kernels)

    def module_source(self, ctype, emulate):
        return cluster_module_source(self.kernels, ctype, emulate)

    @property
    def source(self):
        return f"{self.forward_source}\n{self.backward_source}\n/* cluster kernels */\n{self.kernel_source}"


def exchange_reason(kernels):
    """None where every product of the kernels reads its operand through the cluster's shared
    memory, else why some read it from global memory (each kernel's reasons)."""
    reasons = []
    for kernel in kernels:
        exchanged, refused = kernel.exchanges()
        why = list(refused.values())
        if exchanged and not kernel.plan.exchange:
            why.append(f"the exchange buffers ({kernel.plan.rows} rows / {kernel.plan.cluster} blocks x "
                       f"{sum(e.K for e in exchanged.values())} columns) do not fit in a block's shared memory "
                       f"beside the rest ({kernel.plan})")
        reasons += [f"{kernel.name}: {reason}" for reason in why]
    return "; ".join(reasons) or None


def cluster_module_source(kernels, ctype, emulate):
    """The cluster kernels in one source: CUDA (each kernel's cluster size its plan's), or C++ with
    clusters, blocks and threads as loops (emulate=True; the same text for every plan)."""
    head = "#include <cmath>\nusing namespace std;" if emulate else \
        "\n".join(f"#define {cluster_macro(k.name)} {k.plan.cluster}" for k, _ in kernels)
    return "\n".join([head, PK.persistent_preamble(emulate), _EMULATED if emulate else _CUDA,
                      f"typedef {ctype} T;"] + [k.source(d) for k, d in kernels])


def cupy_build(source, names):
    """{name: kernel(*args, plan=)} for CuPy: one RawModule of the CUDA source(emulate=False); a
    module that does not build on this GPU is refused (the persistent program runs instead)."""
    from .. import backend
    cupy = backend.xp_for("cuda")
    try:
        module = cupy.RawModule(code=source(False))
        functions = {name: module.get_function(name) for name in names}
    except (cupy.cuda.compiler.CompileException, cupy.cuda.driver.CUDADriverError) as error:
        raise NotPersistent(f"its cluster kernels did not build on this GPU ({type(error).__name__}: "
                            f"{str(error)[:300]})") from error

    return {name: PK.PlanLaunch(function) for name, function in functions.items()}


def cluster_wanted(graph, entries=None):
    """None where the cluster program is to be tried for this step, else why not: asked for with
    TINYGRAD_RNN_CUDA_STEPS=cluster, or "auto" where the measured table's nearest entry for compiled
    cells (cell "compiled", matched on batch and the first state's width; a program serves every
    sequence length) names the cluster design."""
    from ..nn import fused
    from ..nn import launch_plan as LP
    mode = fused.CUDA_STEPS
    if mode == "cluster":
        return None
    if mode != "auto":
        return f"TINYGRAD_RNN_CUDA_STEPS={mode}"
    state = graph.states[0]
    batch, width = state.shape[0], int(np.prod(state.shape[1:], dtype=np.int64))
    if LP.measured_choice(LP.TABLE if entries is None else entries, TABLE_KIND, batch, width, None,
                          state.dtype) == "cluster":
        return None
    return (f"TINYGRAD_RNN_CUDA_STEPS=auto and no measured entry for compiled cells near batch {batch}, "
            f"width {width} names the cluster design")


def choose_program(fplan, bplans, xp, launcher, build, cluster_build, plan_for=P.device_plan,
                   cluster_plan_for=device_cluster_plan, entries=None):
    """On a GPU: the cluster program where it is wanted (cluster_wanted) and the step fits one,
    else persistent_program.choose_program (the persistent program, or the per-step one). The
    program made when it is not the cluster program says why in `cluster_reason`."""
    reason = cluster_wanted(fplan.graph, entries)
    if reason is None:
        try:
            return ClusterProgram(fplan, bplans, xp, cluster_build, cluster_plan_for)
        except NotPersistent as refused:
            reason = refused.reason
    program = P.choose_program(fplan, bplans, xp, launcher, build, plan_for)
    program.cluster_reason = reason
    return program
