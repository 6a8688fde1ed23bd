"""The recurrence as powers of W: eigenvalues, spectral radius, ||W^t h(0)||.

Around h = 0, tanh(a) ~ a, so a plain RNN without input runs h(t) = W h(t-1) = W^t h(0). With
W = Q diag(lambda) Q^-1 that is Q diag(lambda^t) Q^-1 h(0): the parts of h(0) along eigenvalues
with |lambda| < 1 shrink geometrically, the parts along |lambda| > 1 grow. The largest |lambda|,
the spectral radius, sets the long-run rate, and since |tanh'| <= 1 the nonlinearity can only
shrink things further: the same rate bounds how fast a plain RNN forgets.
"""
import numpy as np

from .. import backend
from ..tensor import Tensor

# rows of weight_hh, in PyTorch's gate order, by how many H x H blocks it stacks
GATES = {1: ("h",), 3: ("r", "z", "n"), 4: ("i", "f", "g", "o")}
# the block through which the state feeds its own new content (the cell candidate for gated cells)
CONTENT_GATE = {1: "h", 3: "n", 4: "g"}


def eigenvalues(weight):
    """Eigenvalues of a square matrix (array or Tensor), largest modulus first, as complex numbers."""
    w = _square(weight)
    values = np.linalg.eigvals(w).astype(np.complex128)
    return values[np.argsort(-np.abs(values), kind="stable")]


def spectral_radius(weight):
    """max |eigenvalue|: the factor per step at which W^t h(0) eventually grows or shrinks."""
    return float(np.abs(eigenvalues(weight)).max())


def linear_recurrence_norms(weight, h0, steps):
    """||W^t h(0)|| for t = 0 .. steps, the state norms of the linearised recurrence without input.

    `h0` is a vector (H,) or a batch (B, H); for a batch the Frobenius norm over it is returned.
    """
    w = _square(weight)
    h = _host(h0)
    if h.shape[-1] != w.shape[0] or h.ndim > 2:
        raise ValueError(f"h0 must have shape (H,) or (B, H) with H = {w.shape[0]} to match the "
                         f"weight {w.shape}; got {h.shape}")
    norms = [np.linalg.norm(h)]
    for _ in range(steps):
        h = h @ w.T  # a row of states, as the layers hold them: h W^T
        norms.append(np.linalg.norm(h))
    return np.array(norms)


def recurrent_weights(model, layer=0, direction="forward", name=None):
    """The H x H blocks of a recurrent layer's weight_hh, by gate: {"h": W} for an RNN,
    {"i", "f", "g", "o"} for an LSTM, {"r", "z", "n"} for a GRU (host numpy arrays).

    The parameter is found by its name in `model.named_parameters()`: the one ending in
    `weight_hh_l{layer}` (plus `_reverse`); `name` gives the full dotted name where a model holds
    several recurrent layers.
    """
    params = dict(model.named_parameters())
    suffix = f"weight_hh_l{layer}" + ("_reverse" if direction == "reverse" else "")
    if name is None:
        matches = [n for n in params if n == suffix or n.endswith("." + suffix)]
        if len(matches) != 1:
            raise ValueError(f"expected one parameter named like {suffix!r}, found {matches or 'none'} "
                             f"among {list(params)}; pass name= to choose")
        name = matches[0]
    elif name not in params:
        raise KeyError(f"no parameter {name!r}; the model has {list(params)}")
    weight = _host(params[name])
    rows, hidden = weight.shape
    if rows % hidden or rows // hidden not in GATES:
        raise ValueError(f"{name} has shape {weight.shape}: not 1, 3 or 4 stacked square blocks")
    gates = GATES[rows // hidden]
    return {gate: weight[i * hidden:(i + 1) * hidden] for i, gate in enumerate(gates)}


def content_block(blocks):
    """From `recurrent_weights`' result, the block the state feeds its own next content through."""
    return blocks[CONTENT_GATE[len(blocks)]]


def _host(array):
    data = array.array if isinstance(array, Tensor) else array
    return np.asarray(backend.to_numpy(data) if hasattr(data, "dtype") else data, dtype=np.float64)


def _square(weight):
    w = _host(weight)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"expected a square matrix; got shape {w.shape}")
    return w
