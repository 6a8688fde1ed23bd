"""Generated CUDA kernels built as C++ and called on NumPy arrays (each 'thread' an iteration of a
loop over i), so the GPU program's driver and kernel bodies run in the tests on any machine."""
import ctypes
import hashlib
import subprocess

import numpy as np

from tinygrad_rnn.compile import cuda_program


def cpp_launcher(directory):
    """A `launcher(groups, dtype)` for numpy_program.NumpyProgram that builds the groups' kernels
    with g++ (cached by source) and calls them through ctypes."""
    built = {}

    def call(function, args, size):
        function(*[ctypes.c_longlong(int(a)) if isinstance(a, (int, np.integer)) else ctypes.c_void_p(a.ctypes.data)
                   for a in args])

    def launcher(groups, dtype):
        source = cuda_program.module_source(groups, cuda_program.CTYPES[np.dtype(dtype)], "cpp")
        key = hashlib.sha1(source.encode()).hexdigest()[:16]
        if key not in built:
            path, library = directory / f"kernels_{key}.cpp", directory / f"kernels_{key}.so"
            path.write_text(source)
            subprocess.run(["g++", "-O1", "-std=c++14", "-Wall", "-Werror", "-Wno-unused-variable", "-shared",
                            "-fPIC", str(path), "-o", str(library)], check=True, capture_output=True, text=True)
            built[key] = ctypes.CDLL(str(library))
        return {group.name: cuda_program.Launch(group, getattr(built[key], group.name), call) for group in groups}
    return launcher
