"""The persistent kernels of a compiled cell built as C++ (blocks and threads as loops) and called
on NumPy arrays, as the GPU calls the CUDA ones."""
import ctypes
import hashlib
import subprocess

import numpy as np

from tinygrad_rnn.compile import persistent_program as P


def cpp_build(directory, barrier=True):
    """build(source, names) for persistent_program.PersistentProgram, with g++ (cached by source);
    barrier=False: kernels without the grid barrier's arrays (cluster_program.ClusterProgram)."""
    built = {}

    def build(source, names):
        text = source(True)
        key = hashlib.sha1(text.encode()).hexdigest()[:16]
        if key not in built:
            path, library = directory / f"persistent_{key}.cpp", directory / f"persistent_{key}.so"
            path.write_text(text)
            subprocess.run(["g++", "-O1", "-std=c++14", "-Wall", "-Werror", "-Wno-unused-variable",
                            "-Wno-unknown-pragmas", "-shared", "-fPIC", str(path), "-o", str(library)],
                           check=True, capture_output=True, text=True)
            built[key] = ctypes.CDLL(str(library))
        return {name: _caller(getattr(built[key], name), barrier) for name in names}
    return build


def _caller(function, barrier):
    def call(*args, plan):
        converted = []
        for arg in list(args) + list(plan.ints()):
            if isinstance(arg, np.ndarray):
                assert arg.flags.c_contiguous, "a persistent kernel's arrays are C-contiguous"
                converted.append(ctypes.c_void_p(arg.ctypes.data))
            else:
                converted.append(ctypes.c_int(int(arg)))
        counter, failed = np.zeros(1, np.uint32), np.zeros(1, np.uint32)
        if barrier:
            converted += [ctypes.c_void_p(counter.ctypes.data), ctypes.c_void_p(failed.ctypes.data)]
        function(*converted)
    return call


def small_plan(blocks=3, threads=5, tile=3, resident=True, min_chunk=1):
    """plan_for(products, batch, itemsize) giving few blocks and threads and short tiles, so that every
    distribution is ragged (blocks without columns, threads with several elements or none, register
    tiles past the rows and columns, slices of k shorter than the unrolled loop or empty)."""
    def plan_for(products, batch, itemsize):
        elements = P.shared_elements(products, batch, blocks, tile, resident, threads, min_chunk)
        return P.Plan(blocks, threads, tile, resident, elements, itemsize, min_chunk)
    return plan_for


class Product:
    """One product of a kernel as its plan tiles it: K, N, the block's rows and columns, the tile
    of A (TK), the threads and the register tiles and slices (kernel.tilings())."""

    def __init__(self, kernel, q):
        op, _ = kernel.products[q]
        plan, (self.rows, blocks) = kernel.plan, kernel.share(kernel.plan)
        self.K, self.N, self.TK, self.threads = op.inputs[0].shape[1], op.out.shape[1], plan.TK, plan.threads
        self.columns, self.tiling = -(-self.N // blocks), kernel.tilings()[q]
        tiles = -(-self.rows // self.tiling.rows) * -(-self.columns // self.tiling.cols)
        self.rounds = -(-tiles * self.tiling.slices // self.threads)
        self.chunk = -(-min(self.K, self.TK) // self.tiling.slices)   # k of a slice in the first tile

    @property
    def ragged(self):
        """Register tiles past the block's rows and columns, slices of k the unrolled loop does not divide."""
        return self.rows % self.tiling.rows and self.columns % self.tiling.cols and self.tiling.slices > 1 and \
            self.chunk > P.PK.PERSISTENT_UNROLL and self.chunk % P.PK.PERSISTENT_UNROLL


def products(programs):
    """Every product of the programs' kernels (Product)."""
    return [Product(kernel, q) for program in programs for kernel, _ in program.kernels
            for q in range(len(kernel.products))]


# The tiled product at its edges: (batch, hidden, plan options, what the plan must make of the
# products) for cells whose products are (B x H) @ (H x 4H) and back (lecture LSTM) or (B x H) @ (H x H)
# (RowNormCell)
EDGE_SHAPES = {
    # 6 rows in tiles of 4, 6 and 5 columns a block in tiles of 4, K = 11 and 44 in tiles of 10 and
    # 1 or 4, each split in 2 slices (5 k: the unrolled loop once and 1 more; 1 k: one slice empty)
    "ragged tiles and slices": (6, 11, {"blocks": 2, "threads": 64, "tile": 10, "min_chunk": 5},
                                lambda ps: any(p.ragged for p in ps)),
    # one thread: tiles beyond the threads take rounds, A staged again in each where K takes several tiles
    "rounds": (6, 5, {"threads": 1, "tile": 3}, lambda ps: any(p.rounds > 1 and p.K > p.TK for p in ps)),
    "rounds in one tile": (6, 5, {"threads": 1, "tile": 32}, lambda ps: any(p.rounds > 1 and p.K <= p.TK for p in ps)),
    # one column (hidden 1: the backward's N), blocks without columns
    "a tiny N": (2, 1, {"threads": 8, "tile": 4}, lambda ps: any(p.N == 1 for p in ps)),
}
