"""Linear, Bilinear and Embedding: the layers around a recurrent core (input lookup, output projection)."""
import math

import numpy as np

from .. import backend
from ..ops import Getitem, IndexAdd, Permute, Reshape
from ..tensor import Function, Tensor
from . import functional, init
from .checks import check_flag, check_int, check_last_dim, check_matches_parameters, check_tensor
from .module import Module, Parameter


def _uniform_by_fan_in(module, fan_in):
    """PyTorch's start for a layer's weight and bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
    for p in (module.weight, module.bias):
        if p is not None:
            init.uniform_(p, -bound, bound)


class Linear(Module):
    """y = x @ weight.T + bias, weight (out_features, in_features), PyTorch's U(-1/sqrt(in), 1/sqrt(in))."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features = check_int("in_features", in_features, minimum=0)
        self.out_features = check_int("out_features", out_features, minimum=0)
        bias = check_flag("bias", bias)
        self.weight = init.parameter(out_features, in_features, dtype=dtype, device=device)
        self.register_parameter("bias", init.parameter(out_features, dtype=dtype, device=device)
                                if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight.numel():  # torch's kaiming_uniform_(a=sqrt(5)): 1/sqrt(in) as it rounds that bound
            init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        check_tensor("Linear", "input", x)
        weight = self.weight   # read once: a parametrized weight (spectral_norm) changes state on each read
        check_matches_parameters("Linear", x, weight)
        check_last_dim("Linear", x, self.in_features, "in_features")
        lead = x.shape[:-1]
        # one 2-D product, not a batch (rows counted, not inferred: -1 is ambiguous for an empty input)
        flat = x.reshape(math.prod(lead), self.in_features) if x.ndim > 2 else x
        y = flat @ weight.T
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features) if x.ndim > 2 else y

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Bilinear(Module):
    """y[o] = x1^T weight[o] x2 + bias[o], weight (out_features, in1_features, in2_features), PyTorch's
    U(-1/sqrt(in1), 1/sqrt(in1))."""

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in1_features = check_int("in1_features", in1_features, minimum=0)
        self.in2_features = check_int("in2_features", in2_features, minimum=0)
        self.out_features = check_int("out_features", out_features, minimum=0)
        self.weight = init.parameter(out_features, in1_features, in2_features, dtype=dtype, device=device)
        self.register_parameter("bias", init.parameter(out_features, dtype=dtype, device=device)
                                if check_flag("bias", bias) else None)
        self.reset_parameters()

    def reset_parameters(self):
        _uniform_by_fan_in(self, self.in1_features)

    def forward(self, input1, input2):
        weight = self.weight   # read once, as Linear
        for name, x in (("input1", input1), ("input2", input2)):
            check_tensor("Bilinear", name, x)
            check_matches_parameters("Bilinear", x, weight)
        return functional.bilinear(input1, input2, weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class Embedding(Module):
    """Rows of weight (num_embeddings, embedding_dim) looked up by integer index, N(0, 1) at start.

    The padding_idx row starts at zero and receives no gradient, as in PyTorch: the lookup reads a
    table whose padding row is cut from the graph (V rows selected, not T * B looked-up ones), so the
    output is always a Lookup of a table, which the recurrent layers can project (see `looked_up`).
    With max_norm, each row a lookup reads is first scaled in place to a norm_type-norm of at most
    max_norm, as torch's; with scale_grad_by_freq each row's gradient is divided by how often the batch
    names it (the lookup is then not projected by a recurrent layer); sparse is refused.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None):
        super().__init__()
        functional.refuse_embedding_options("Embedding", sparse=sparse)
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        num_embeddings = check_int("num_embeddings", num_embeddings, minimum=0)
        embedding_dim = check_int("embedding_dim", embedding_dim, minimum=0)
        if padding_idx is not None:
            padding_idx = check_int("padding_idx", padding_idx, minimum=-num_embeddings)
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx must be within num_embeddings={num_embeddings}; got {padding_idx}")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        if _weight is None:
            self.weight = init.parameter(num_embeddings, embedding_dim, dtype=dtype, device=device)
            self.reset_parameters()
            self.weight.requires_grad_(not _freeze)
            return
        check_tensor("Embedding", "_weight", _weight)
        if _weight.shape != (num_embeddings, embedding_dim):
            raise ValueError(f"Embedding: shape of weight {_weight.shape} does not match num_embeddings and "
                             f"embedding_dim ({num_embeddings}, {embedding_dim})")
        self.weight = Parameter(_weight, requires_grad=not _freeze)  # the given table itself, as in torch

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding over the rows of `embeddings` (a 2-D tensor, used as it is: a padding row keeps its
        values and only gets no gradient), trained only if not `freeze`, as torch's from_pretrained."""
        check_tensor("Embedding.from_pretrained", "embeddings", embeddings)
        if embeddings.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings are expected to be 2-dimensional; got shape "
                             f"{embeddings.shape}")
        return cls(*embeddings.shape, padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse, _weight=embeddings, _freeze=freeze)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            init.zeros_(Tensor._make(self.weight.array[self.padding_idx], None))

    def forward(self, indices):
        return functional.embedding(indices, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                                    self.scale_grad_by_freq)

    def extra_repr(self):
        shown = [f"{self.num_embeddings}, {self.embedding_dim}"]
        if self.padding_idx is not None:
            shown.append(f"padding_idx={self.padding_idx}")
        if self.max_norm is not None:
            shown.append(f"max_norm={self.max_norm}")
        if self.norm_type != 2:
            shown.append(f"norm_type={self.norm_type}")
        if self.scale_grad_by_freq is not False:
            shown.append(f"scale_grad_by_freq={self.scale_grad_by_freq}")
        return ", ".join(shown)


class Lookup(Getitem):
    """weight[index] for an integer index array: the embedding's gather, whose gradient adds rows.

    The backward accumulates into the weight's gradient one distinct row at a time (NumPy, add_rows),
    not one looked-up element at a time through np.add.at, which took 2.4 of a 36 ms training step
    at H = 128; CuPy adds with atomics (cupyx.scatter_add). Gradients of gradients take Getitem's
    recorded backward.
    """

    def forward(self, weight, index):
        self.in_shape, self.index = weight.shape, backend.xp_of(weight).asarray(index)
        self.table = weight  # a reference: `looked_up` hands the table on to a recurrent layer
        return weight[self.index]

    def backward_into(self, g, gw):
        sum_rows_into(gw, self.index, g)


class FrequencyScaledLookup(Getitem):
    """weight[index] whose gradient to each looked-up row is divided by how often `index` names that row
    (torch's scale_grad_by_freq); forward mode sees the plain gather, as torch's. Not a Lookup: a recurrent
    layer that projected the table would add the unscaled rows, so it reads these rows as they are."""

    def forward(self, weight, index):
        xp = backend.xp_of(weight)
        self.in_shape, self.index = weight.shape, xp.asarray(index)
        counts = xp.bincount(self.index.reshape(-1), minlength=weight.shape[0])
        self.scale = (1.0 / counts[self.index]).astype(weight.dtype)[..., None]
        return weight[self.index]

    def backward(self, g):
        return (ScaledIndexAdd.apply(g, index=self.index, shape=self.in_shape, scale=self.scale),)

    def backward_into(self, g, gw):
        sum_rows_into(gw, self.index, g * self.scale)


class ScaledIndexAdd(IndexAdd):
    """zeros(shape) with g * scale added at `index`: FrequencyScaledLookup's backward. Its own VJP is the
    unscaled gather, as torch's embedding_dense_double_backward."""

    def forward(self, g, index, shape, scale):
        self.scale = scale
        return super().forward(g * scale, index, shape)

    def jvp(self, inputs, tangents):
        return IndexAdd.apply(tangents[0] * Tensor._make(self.scale, None), index=self.index, shape=self.out_shape)


def looked_up(x):
    """(table, index) when x is table[index], the output of a recorded Lookup, else None.

    x may be seen through views that keep each looked-up row whole (a transpose of the leading axes,
    batch_first's; a reshape of them, an unbatched input's unsqueeze): the index is viewed the same
    way. None as well where anything reads x's own gradient (a hook, retain_grad), since a recurrent
    layer that projects the table instead of x's rows (P = table @ W_ih^T, then P[index]) leaves x
    out of the backward.
    """
    node = x._ctx
    views = []
    while isinstance(node, Function) and not node.hooks and not node.keep_grad:
        if isinstance(node, Lookup):
            index = node.index
            for view in reversed(views):
                index = view(index)
            table = node.parents[0]
            return (table if isinstance(table, Tensor) else Tensor._make(node.table, table)), index
        rank = len(node.shape)
        if isinstance(node, Permute) and tuple(node.axes)[-1] == rank - 1:
            views.append(lambda index, axes=tuple(node.axes)[:-1]: index.transpose(axes))
        elif isinstance(node, Reshape) and rank and node.shapes[0] and node.shape[-1] == node.shapes[0][-1]:
            views.append(lambda index, shape=tuple(node.shape)[:-1]: index.reshape(shape))
        else:
            return None
        node = node.parents[0]
    return None


RUN_LOOP_MAX_RUNS, RUN_LOOP_MIN_WIDTH = 256, 64


def sum_rows_into(target, index, values):
    """target[index[k]] += values[k] for every k, repeated rows summed (the backward of a row gather):
    add_rows on NumPy, atomics on CuPy (cupyx.scatter_add). values (*index.shape, width) or
    (index.size, width)."""
    if isinstance(target, np.ndarray):
        return add_rows(target, index, values)
    flat = index.reshape(-1)
    return backend.scatter_add(target, flat, values.reshape(flat.size, target.shape[1]))


def add_rows(target, index, values):
    """target[index[k]] += values[k] for every k, repeated rows summed: NumPy, target (rows, width).

    A stable sort puts each row's contributions next to each other, and each run is summed at once:
    with np.add.reduceat, or, for a few wide rows, one product with a row of ones per run (reduceat
    walks wide runs column by column and is then several times slower; a BLAS product is about
    twice as fast as `sum(axis=0)` there).
    """
    flat = index.reshape(-1)
    if flat.size == 0:
        return target
    values = values.reshape(flat.size, target.shape[1])
    order = np.argsort(flat, kind="stable")
    rows = flat[order]
    starts = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
    grouped = values[order]
    if len(starts) <= RUN_LOOP_MAX_RUNS and values.shape[1] >= RUN_LOOP_MIN_WIDTH:
        bounds = starts.tolist() + [flat.size]
        ones, run_sum = np.ones(flat.size, values.dtype), np.empty(values.shape[1], values.dtype)
        for row, lo, hi in zip(rows[starts].tolist(), bounds, bounds[1:]):
            np.matmul(ones[:hi - lo], grouped[lo:hi], out=run_sum)
            target[row] += run_sum
    else:
        target[rows[starts]] += np.add.reduceat(grouped, starts, axis=0)
    return target
