"""`tr.backends`, as torch.backends: the switches tutorials set, accepted so that their code runs.

`cudnn.deterministic`, `cudnn.benchmark` and `cudnn.enabled` change nothing here: no cuDNN is used
(the recurrent layers run their own kernels, deterministic on every device). `mps.is_available()`
is False: there is no Apple GPU backend.
"""
from . import cudnn, mps

__all__ = ["cudnn", "mps"]
