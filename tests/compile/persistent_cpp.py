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


def small_plan(blocks=3, threads=5, tile=3, resident=True):
    """plan_for(products, batch, itemsize) giving few blocks and threads and short tiles, so that every
    distribution is ragged (blocks without columns, threads with several elements or none)."""
    def plan_for(products, batch, itemsize):
        elements = P.shared_elements(products, batch, blocks, tile, resident)
        return P.Plan(blocks, threads, tile, resident, elements, itemsize)
    return plan_for
