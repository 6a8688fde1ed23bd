"""`tr.utils`, as torch.utils: `data` holds datasets, samplers and the DataLoader; `checkpoint` trades
compute for memory."""
from . import checkpoint, data

__all__ = ["checkpoint", "data"]
