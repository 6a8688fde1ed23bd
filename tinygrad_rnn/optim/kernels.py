"""One elementwise CUDA kernel per update rule, so that a flat step on CuPy is one launch per group.

A rule in optimizers.py carries its kernel as a `FusedUpdate`: a loop body for element `i` that
repeats the rule's NumPy operations in the same order, each rounded to T as NumPy rounds it, with
the step-dependent scalars (learning rate, bias corrections, ...) computed on the host in float64
as the NumPy rule computes them and passed as T. The module is compiled with --fmad=false, so no
multiply and add are fused into one rounding that NumPy would round twice: with sqrt and division
correctly rounded (CUDA's defaults), each element ends as the NumPy rule leaves it, bit for bit.

The same source is built as C++ (`source(ctype, "cpp")`, a loop over i) to test it on the CPU.
"""
import numpy as np

from .. import backend

CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
BLOCK = 256


class FusedUpdate:
    """A rule's kernel: its arrays (pointers to T, all of the flat buffer's size; "p" the parameters,
    "g" the gradient), its T scalars, its int flags, and the body for element i."""

    def __init__(self, name, arrays, scalars, flags, body, preamble=""):
        self.name, self.body, self.preamble = name, body, preamble
        self.arrays, self.scalars = ["p", "g", *arrays.split()], scalars.split()
        self.flags = ["maximize", *flags.split()]

    def params(self, ctype):
        return ([f"{ctype}* {name}" for name in self.arrays] + [f"const {ctype} {name}" for name in self.scalars]
                + [f"const int {name}" for name in self.flags])

    def source(self, ctype, target):
        """The kernel for one element type, as CUDA ("cuda", a grid-stride loop) or C++ ("cpp", a plain loop)."""
        name, params = f"tinygrad_rnn_{self.name}_{ctype}", ", ".join(self.params(ctype))
        if target == "cuda":
            prefix = ""
            loop = ("for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
                    "       i += (long long)blockDim.x * gridDim.x)")
        else:
            prefix = "#include <cmath>\nusing std::sqrt;\n#define __device__\n#define __global__\n"
            loop = "for (long long i = 0; i < n; ++i)"
        return (f"{prefix}typedef {ctype} T;\n{self.preamble}\n"
                f'extern "C" __global__ void {name}(const long long n, {params}) {{\n  {loop} {{\n{self.body}\n  }}\n}}\n')

    def arguments(self, values, flat):
        """The kernel's arguments in order from {name: value}: arrays the options leave unused (None
        or missing) point at the parameters and are never read; None where some array does not fit."""
        arrays = [flat if values.get(name) is None else values[name] for name in self.arrays]
        if any(a.dtype != flat.dtype or a.size != flat.size or not a.flags.c_contiguous for a in arrays):
            return None
        scalar = flat.dtype.type
        return arrays + [scalar(values[name]) for name in self.scalars] + [np.int32(bool(values[name]))
                                                                           for name in self.flags]


def launcher(array):
    """launch(kernel, arguments, size) for a flat buffer, or None where no kernel applies (NumPy arrays,
    element types other than float32 and float64)."""
    if not backend.is_cupy_array(array) or array.dtype not in CTYPES:
        return None
    return launch_cuda


_compiled = {}


def launch_cuda(kernel, arguments, size):
    ctype = CTYPES[arguments[0].dtype]
    key = (kernel.name, ctype)
    if key not in _compiled:
        cupy = backend.xp_for("cuda")
        _compiled[key] = cupy.RawKernel(kernel.source(ctype, "cuda"), f"tinygrad_rnn_{kernel.name}_{ctype}",
                                        options=("--fmad=false",))
    grid = max(1, min((size + BLOCK - 1) // BLOCK, 65535))
    _compiled[key]((grid,), (BLOCK,), (np.int64(size), *arguments))
