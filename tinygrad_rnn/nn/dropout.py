"""Dropout as a module: active in train(), the identity in eval()."""
from . import functional as F
from .module import Module


class Dropout(Module):
    """Zero each element with probability p while training and scale the rest by 1/(1-p)."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"
