"""The step compiler: a cell's step, written once from primitives, run as a fused whole-sequence pass.

    trace         run the step once, record its primitives; trace its VJP the same way
    plan          split the work: once (statics), over all steps at once (input-only work, the
                  gradients' products), step by step (what depends on the state)
    numpy_program the plan as generated in-place NumPy code over preallocated buffers
    drive         the pass as one graph node (`compiled_run`), cached by the step's structure

`Recurrent` takes this path for any cell without a hand-written pass of its own (the built-in RNN,
LSTM and GRU keep theirs): see `register`.
"""
from .drive import accepts, cache_info, compiled_run, register
from .trace import NotTraceable

__all__ = ["NotTraceable", "accepts", "cache_info", "compiled_run", "register"]
