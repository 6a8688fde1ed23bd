"""EmbeddingBag and F.embedding_bag, as in torch.nn: the rows of bags of indices looked up and reduced
(sum, mean or max) in one call, built on index_select, index_add and scatter_reduce."""
import numbers
import warnings

import numpy as np

from .. import backend, factory
from ..tensor import Tensor, index_used
from . import init
from .checks import check_int, check_tensor
from .module import Module, Parameter

BAG_MODES = ("sum", "mean", "max")


def _index_array(name, value):
    if not isinstance(value, Tensor) or value.dtype.kind not in "iu":
        raise TypeError(f"embedding_bag: argument '{name}' must be an integer Tensor; got "
                        f"{getattr(value, 'dtype', type(value).__name__)}")
    return index_used(value, "embedding_bag").array


def _bags(input, offsets, per_sample_weights, include_last_offset):
    """(indices (n,), the bag of each (n,), number of bags, per-sample weights (n,) or None), as torch reads a
    2-D input (B bags of equal length) or a 1-D one cut at `offsets`."""
    index = _index_array("input", input)
    if index.ndim == 2:
        if offsets is not None:
            raise ValueError(f"if input is 2D, then offsets has to be None, as input is treated is a mini-batch of "
                             f"fixed length sequences. However, found offsets of type {type(offsets)}")
        count, length = index.shape
        bag = np.repeat(np.arange(count), length)
        weights = None if per_sample_weights is None else per_sample_weights.reshape(-1)
        return index.reshape(-1), bag, count, weights
    if index.ndim != 1:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {index.ndim}")
    if offsets is None:
        raise ValueError("offsets has to be a 1D Tensor but got None")
    starts = np.asarray(backend.to_numpy(_index_array("offsets", offsets)), dtype=np.int64)
    if starts.ndim != 1:
        raise ValueError("offsets has to be a 1D Tensor")
    if starts.size and starts[0] != 0:
        raise RuntimeError(f"offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from "
                           f"position 0. However, got {starts[0]}")
    if starts.size and (np.any(np.diff(starts) < 0) or starts[-1] > index.size):
        raise RuntimeError(f"embedding_bag: offsets must be non-decreasing and at most the input's length "
                           f"({index.size}); got {starts.tolist()}")
    count = starts.size - 1 if include_last_offset else starts.size
    bag = np.searchsorted(starts, np.arange(index.size), side="right") - 1
    if include_last_offset and starts.size:
        bag = np.minimum(bag, max(count - 1, 0))   # (the last offset is the input's end)
    return index, bag, max(count, 0), per_sample_weights


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """(bags, embedding_dim): each bag's rows of weight summed (times per_sample_weights), averaged or
    maximised; indices equal to padding_idx are left out (an empty bag gives zeros), as torch's."""
    from .functional import check_rows_exist, refuse_embedding_options, renormalize_rows_
    check_tensor("embedding_bag", "weight", weight)
    if weight.dtype.kind in "iu" and isinstance(input, Tensor) and input.dtype.kind == "f":
        warnings.warn("Argument order of nn.functional.embedding_bag was changed. Usage `embedding_bag(weight, "
                      "input, ...)` is deprecated, and should now be `embedding_bag(input, weight, ...)`.",
                      stacklevel=2)
        weight, input = input, weight
    if per_sample_weights is not None and tuple(input.shape) != tuple(per_sample_weights.shape):
        raise ValueError(f"embedding_bag: If per_sample_weights ({per_sample_weights.shape}) is not None, then it "
                         f"must have the same shape as the input ({input.shape})")
    if weight.ndim != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension {weight.ndim}")
    if mode not in BAG_MODES:
        raise ValueError("mode has to be one of sum, mean or max")
    refuse_embedding_options("embedding_bag", scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                  f"supported for mode='sum' (got mode='{mode}'). Please open a feature request "
                                  f"on GitHub.")
    index, bag, count, weights = _bags(input, offsets, per_sample_weights, include_last_offset)
    rows = weight.shape[0]
    check_rows_exist("embedding_bag", index, rows)
    if max_norm is not None:
        renormalize_rows_(weight, index, max_norm, norm_type)
    xp = weight.xp
    kept = np.ones(index.size, bool)
    if padding_idx is not None:
        if not -rows <= padding_idx < rows:
            raise AssertionError("padding_idx must be within num_embeddings")
        kept = backend.to_numpy(index != padding_idx % rows).astype(bool)
    index, bag = index[xp.asarray(kept)], bag[kept]
    looked_up = weight.index_select(0, Tensor._make(xp.asarray(index, dtype=np.int64), None))
    if weights is not None:
        looked_up = looked_up * weights.index_select(0, Tensor._make(xp.asarray(np.flatnonzero(kept)), None)).unsqueeze(1)
    out = factory.zeros(count, weight.shape[1], dtype=weight.dtype, device=weight.device)
    at = Tensor._make(xp.asarray(bag, dtype=np.int64), None)
    if mode == "max":
        return out.scatter_reduce(0, at.unsqueeze(1).expand(looked_up.shape), looked_up, "amax", include_self=False)
    total = out.index_add(0, at, looked_up)
    if mode == "sum":
        return total
    sizes = np.maximum(np.bincount(bag, minlength=count), 1).astype(weight.dtype)
    return total / Tensor._make(xp.asarray(sizes[:, None]), None)


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of rows of weight (num_embeddings, embedding_dim), N(0, 1) at start
    (the padding_idx row zero), as torch's; scale_grad_by_freq and sparse are refused."""

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 mode="mean", sparse=False, _weight=None, include_last_offset=False, padding_idx=None, device=None,
                 dtype=None):
        from .functional import refuse_embedding_options
        super().__init__()
        refuse_embedding_options("EmbeddingBag", scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)
        if mode not in BAG_MODES:
            raise ValueError(f"EmbeddingBag: mode has to be one of sum, mean or max; got {mode!r}")
        self.num_embeddings = check_int("num_embeddings", num_embeddings, minimum=0)
        self.embedding_dim = check_int("embedding_dim", embedding_dim, minimum=0)
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, scale_grad_by_freq
        if padding_idx is not None:
            if not isinstance(padding_idx, numbers.Integral) or not -num_embeddings <= padding_idx < num_embeddings:
                raise AssertionError(f"padding_idx must be within num_embeddings; got {padding_idx!r}")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        if _weight is None:
            self.weight = init.parameter(num_embeddings, embedding_dim, dtype=dtype, device=device)
            self.reset_parameters()
        else:
            check_tensor("EmbeddingBag", "_weight", _weight)
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise AssertionError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(_weight)
        self.mode, self.sparse, self.include_last_offset = mode, sparse, include_last_offset

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            init.zeros_(Tensor._make(self.weight.array[self.padding_idx], None))

    def forward(self, input, offsets=None, per_sample_weights=None):
        return embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                             self.mode, self.sparse, per_sample_weights, self.include_last_offset, self.padding_idx)

    def extra_repr(self):
        shown = [f"{self.num_embeddings}, {self.embedding_dim}"]
        shown += [f"max_norm={self.max_norm}"] if self.max_norm is not None else []
        shown += [f"norm_type={self.norm_type}"] if self.norm_type != 2 else []
        shown += [f"scale_grad_by_freq={self.scale_grad_by_freq}"] if self.scale_grad_by_freq is not False else []
        shown += [f"mode={self.mode!r}"]
        shown += [f"padding_idx={self.padding_idx}"] if self.padding_idx is not None else []
        return ", ".join(shown)
