"""The step compiler: a cell's step, written once from primitives, run as a fused whole-sequence pass.

    trace          run the step once and record its primitives; trace its VJP the same way
    rewrite        drop no-op views and repeated ops, assemble chunk gradients in one buffer
    plan           split the work: once (statics), over all steps at once (input-only work, the
                   gradients' products), step by step (what depends on the state)
    numpy_program  the plan as generated in-place NumPy code over preallocated buffers
    blocks         a loop's column blocks of a matrix worked on in a contiguous gate-major scratch
    cuda_program   on a GPU, each step's elementwise runs fused into generated CUDA kernels
    workspace      buffers reused from one pass to the next
    drive          the pass as one graph node (`compiled_run`), cached by the step's structure

`Recurrent` takes this path for any cell without a hand-written pass of its own (the built-in RNN,
LSTM and GRU keep theirs): see `register`.
"""
from .drive import accepts, cache_info, compiled_run, register
from .trace import NotTraceable

__all__ = ["NotTraceable", "accepts", "cache_info", "compiled_run", "register"]
