"""Dropout as a module: active in train(), the identity in eval()."""
import numbers

from . import functional as F
from .checks import check_tensor
from .module import Module


class Dropout(Module):
    """Zero each element with probability p while training and scale the rest by 1/(1-p)."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        if inplace:
            raise ValueError("Dropout(inplace=True) is not supported: layers here never change their input "
                             "in place (a tensor saved for backward would change under it)")
        self.p, self.inplace = float(p), False

    def forward(self, x):
        check_tensor("Dropout", "input", x)
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
