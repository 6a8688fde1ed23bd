"""PyTorch idioms, each run with torch and with tinygrad_rnn on the same data, results compared.

Every entry is `(name, fn)`: fn(lib, t) gets the library module and a constructor of float64 tensors
(requires_grad where the idiom differentiates) and returns what is compared: tensors, tuples of tensors,
Python numbers, bools or strings. Where an idiom returns a tensor that requires grad, the gradient of its
sum is compared as well.
"""
import math

import numpy as np
import pytest

import tinygrad_rnn as tr

A = np.array([[0.5, -1.5, 2.0, 0.0], [3.0, 1.0, -2.5, 1.0], [-0.5, 4.0, 1.5, -1.0]])
B = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 2.5], [1.5, 0.0, -2.0], [-1.0, 1.0, 0.5]])
A3 = np.random.default_rng(3).standard_normal((2, 3, 4))
IDX3 = np.random.default_rng(4).integers(0, 4, (2, 2, 5))
ZEROS = np.array([[0.5, -1.5, 2.0, 0.0], [3.0, 0.0, -2.5, 0.0], [-0.5, 4.0, 1.5, -1.0]])  # one, two and no zeros
DISTINCT = np.argsort(A3, axis=2)[:, :2, :3]
SCATTER = np.array([[0, 3], [2, 1], [1, 1]])
LOW = np.array([[0.5, -1.0, 2.5, -0.5], [1.0, 1.0, -3.0, 1.5], [0.0, 0.0, 0.0, -2.0]])
HIGH = np.array([2.0, 1.0, 1.0, 0.5])
TIES = np.array([[1.0, 2.0, 2.0, np.nan, 2.0, -np.inf], [0.0, 0.0, 1.0, 1.0, 0.0, 5.0]])


def idioms():
    return {
        "eq is elementwise": lambda lib, t: t(A) == t(A.T).T,
        "mm, bmm, mv, dot": lambda lib, t: (lib.mm(t(A, grad=True), t(B)), t(A).mm(t(B, grad=True)),
                                           lib.bmm(t(A3, grad=True), t(A3.transpose(0, 2, 1))),
                                           lib.mv(t(A, grad=True), t(B[:, 0])), t(B.T).mv(t(A[0], grad=True)),
                                           lib.dot(t(A[0], grad=True), t(B[:, 1])), t(A[1]).dot(t(A[2]))),
        "new_full, new_empty, new_zeros": lambda lib, t: (t(A).new_full((2, 3), 5.5), t(A).new_full((2,), 5),
                                                         tuple(t(A).new_empty(3, 2).shape),
                                                         t(A).new_zeros(2, 1, requires_grad=True),
                                                         t(A).new_ones((2,), dtype=lib.int32)),
        "detach_": lambda lib, t: _detach_in_place(t),
        "autograd.Variable": lambda lib, t: _variable(lib, t),
        "legacy tensor types": lambda lib, t: (lib.LongTensor([1, 2]), tuple(lib.FloatTensor(2, 3).shape),
                                               lib.FloatTensor([[0.5, 2.0]]), tuple(lib.DoubleTensor().shape),
                                               isinstance(lib.ones(2, dtype=lib.float32), lib.FloatTensor),
                                               isinstance(t(A), lib.FloatTensor), isinstance(t(A), lib.DoubleTensor)),
        "ne": lambda lib, t: t(A) != 1.0,
        "comparisons": lambda lib, t: ((t(A) > 0), (t(A) <= 1.0), (t(A) >= t(A) * 0.5)),
        "max(dim) unpacks": lambda lib, t: tuple(t(A, grad=True).max(dim=-1)),
        "max(dim).indices": lambda lib, t: t(A).max(dim=0).indices,
        "min(dim, keepdim)": lambda lib, t: tuple(t(A, grad=True).min(dim=1, keepdim=True)),
        "max() all": lambda lib, t: t(A, grad=True).max(),
        "max(a, b)": lambda lib, t: lib.max(t(A), t(A * -1)),
        "argmax/argmin": lambda lib, t: (t(A).argmax(), t(A).argmax(dim=1), t(A).argmin(dim=0, keepdim=True)),
        "size(dim), dim(), numel()": lambda lib, t: (tuple(t(A).size()), t(A).size(1), t(A).size(-1), t(A).dim(),
                                                    t(A).numel()),
        "t()": lambda lib, t: t(A, grad=True).t() * t(B),
        "contiguous": lambda lib, t: t(A, grad=True).t().contiguous() * 2,
        "expand": lambda lib, t: t(A[:1], grad=True).expand(3, -1) * t(A),
        "repeat": lambda lib, t: t(A[:2, :2], grad=True).repeat(2, 3) * 1.5,
        "repeat with new dims": lambda lib, t: t(A[0], grad=True).repeat(2, 1, 2),
        "narrow": lambda lib, t: t(A, grad=True).narrow(1, 1, 2) * 3,
        "masked_fill": lambda lib, t: t(A, grad=True).masked_fill(t(A) > 1, -7.0) * 2,
        "abs at zero": lambda lib, t: t(A, grad=True).abs(),
        "pow": lambda lib, t: t(np.abs(A) + 0.5, grad=True).pow(1.5),
        "norm": lambda lib, t: (t(A, grad=True).norm(), t(A, grad=True).norm(dim=1), t(A, grad=True).norm(p=1)),
        "norm of zeros has zero gradient": lambda lib, t: t(np.zeros(3), grad=True).norm(),
        "var and std": lambda lib, t: (t(A, grad=True).var(), t(A, grad=True).std(dim=0),
                                       t(A, grad=True).var(dim=1, unbiased=False, keepdim=True)),
        "softmax method": lambda lib, t: t(A, grad=True).softmax(dim=1) * t(A),
        "log_softmax method": lambda lib, t: t(A, grad=True).log_softmax(-1) * t(A),
        "float(t), int(t)": lambda lib, t: (float(t(A)[1, 2]), int(t(A)[1, 0]), float(t(A).sum())),
        "format": lambda lib, t: f"{t(A).sum():.3f} {t(A)[0, 0]:>8.2f}",
        "item": lambda lib, t: t(A)[2, 1].item(),
        "clone keeps the graph": lambda lib, t: t(A, grad=True).clone() * 3,
        "unsqueeze/squeeze": lambda lib, t: (t(A, grad=True).unsqueeze(0).unsqueeze(-1).squeeze(),
                                             t(A).unsqueeze(1).squeeze(0).shape == (3, 1, 4)),
        "squeeze(dim) that is not 1 is a no-op": lambda lib, t: t(A).squeeze(0),
        "transpose": lambda lib, t: t(A, grad=True).transpose(0, 1) * t(B),
        "split and chunk": lambda lib, t: (t(A, grad=True).split(2, dim=1) + t(A, grad=True).chunk(2, dim=0)),
        "split sizes": lambda lib, t: t(A, grad=True).split([1, 3], dim=1),
        "roll": lambda lib, t: (t(A, grad=True).roll(1, 1), t(A, grad=True).roll((1, -2), (0, 1)),
                                t(A, grad=True).roll(5)),
        "tr.* functions": lambda lib, t: (lib.tanh(t(A, grad=True)), lib.sigmoid(t(A)), lib.exp(t(A)),
                                          lib.matmul(t(A, grad=True), t(B)), lib.sum(t(A), dim=1),
                                          lib.mean(t(A, grad=True)), lib.abs(t(A)), lib.sqrt(t(np.abs(A)))),
        "einsum": lambda lib, t: lib.einsum("ij,jk->ik", t(A, grad=True), t(B, grad=True)),
        "einsum batched with ellipsis": lambda lib, t: lib.einsum("...i,i->...", t(A, grad=True), t(B[:, 0])),
        "cat with dim": lambda lib, t: lib.cat([t(A, grad=True), t(A)], dim=1),
        "stack": lambda lib, t: lib.stack([t(A[0], grad=True), t(A[1])], dim=1),
        "where with numbers": lambda lib, t: lib.where(t(A) > 0, t(A, grad=True), 0.0),
        "clamp": lambda lib, t: t(A, grad=True).clamp(min=-1.0, max=1.5),
        # ties with x, bounds equal, min above max: the gradient reaches the bounds as torch sends it
        "clamp by tensors": lambda lib, t: t(A, grad=True).clamp(min=t(LOW, grad=True), max=t(HIGH, grad=True)),
        "clamp by a tensor min": lambda lib, t: lib.clamp(t(A, grad=True), min=t(LOW, grad=True)),
        "clip by a tensor max": lambda lib, t: t(A, grad=True).clip(max=t(HIGH, grad=True)),
        "sum(dim, keepdim)": lambda lib, t: t(A, grad=True).sum(dim=(0, 1), keepdim=True),
        "mean over a dim": lambda lib, t: t(A, grad=True).mean(dim=-1),
        "view": lambda lib, t: t(A, grad=True).view(2, 6) * 2,
        "flatten": lambda lib, t: t(A, grad=True).flatten(),
        "in-place under no_grad": lambda lib, t: _in_place_step(lib, t),
        "data.add_ is the hand-written SGD step": lambda lib, t: _sgd_step(lib, t),
        "grad is a tensor": lambda lib, t: _grad_kind(lib, t),
        "equal and allclose": lambda lib, t: (t(A).equal(t(A)), t(A).allclose(t(A) + 1e-12),
                                              t(A).equal(t(A) + 1)),
        "isnan/isfinite": lambda lib, t: (t(np.array([1.0, np.nan, np.inf])).isnan(),
                                          t(np.array([1.0, np.nan, np.inf])).isfinite()),
        "any/all": lambda lib, t: ((t(A) > 3).any(), (t(A) > -3).all(), (t(A) > 0).any(dim=1)),
        "bool ops": lambda lib, t: ((t(A) > 0) & (t(A) < 2), (t(A) > 0) | (t(A) < -1), ~(t(A) > 0)),
        "set_grad_enabled": lambda lib, t: _grad_modes(lib, t),
        "is_tensor": lambda lib, t: (lib.is_tensor(t(A)), lib.is_tensor(A)),
        "maximum/minimum": lambda lib, t: (lib.maximum(t(A, grad=True), t(A[::-1].copy() * 0.1)),
                                           lib.minimum(t(A), t(A) * 0.5)),
        "max and min of integers": lambda lib, t: (lib.tensor([[3, 1, 2], [0, 5, 5]]).max(),
                                                   lib.tensor([[3, 1, 2], [0, 5, 5]]).max(dim=1).values,
                                                   lib.tensor([[3, 1, 2], [0, 5, 4]]).max(dim=1).indices,
                                                   lib.tensor([[3, 1, 2], [0, 5, 5]]).amin(dim=0),
                                                   int(lib.tensor([4, 9, 2]).max().item())),
        "add, sub, mul, div by name": lambda lib, t: (t(A, grad=True).add(t(B.T.copy()), alpha=2),
                                                      t(A, grad=True).sub(1.5, alpha=-2), t(A, grad=True).mul(t(A)),
                                                      t(A, grad=True).div(t(np.abs(A) + 1)), lib.add(t(A), 1.0),
                                                      lib.sub(t(A), t(A), alpha=0.5), lib.mul(t(A), 3.0),
                                                      lib.div(t(A, grad=True), 4.0)),
        "div with rounding_mode": lambda lib, t: (lib.tensor([7, -7, 6, -1]).div(2, rounding_mode="floor"),
                                                  lib.tensor([7, -7, 6, -1]).div(2, rounding_mode="trunc"),
                                                  lib.tensor([7, -7]).div(lib.tensor([-2, -2]), rounding_mode="trunc"),
                                                  t(A).div(0.7, rounding_mode="floor"),
                                                  t(A).div(-0.7, rounding_mode="trunc")),
        # floor division is the quotient of remainder: 1 // 0.1 is 9 (1 = 9 * 0.1 + 0.0999...), not floor(1 / 0.1)
        "floor division //": lambda lib, t: (t([1.0, -1.0, 0.3, 7.5, -7.5]) // 0.1,
                                             t([1.0, -1.0, 0.3, 7.5]).div(0.1, rounding_mode="floor"),
                                             lib.floor_divide(t([1.0, 0.7]), t([0.1, -0.1])), 3 // t([0.3, -0.7]),
                                             lib.tensor([7, -7, 6]) // 2, 7 // lib.tensor([2, -2]),
                                             t(A) // t(B.T.copy() + 3)),
        "type(dtype) and type()": lambda lib, t: (t(A, grad=True).type(lib.float32), t(A).type(lib.int64),
                                                  t(A).type("torch.LongTensor"), lib.tensor([1, 2]).type(lib.float64),
                                                  t(A).type().rpartition(".")[2],
                                                  lib.tensor([1]).type().rpartition(".")[2]),
        "to(dtype), to(device, dtype), to(other)": lambda lib, t: (t(A, grad=True).to(lib.float32),
                                                                   t(A).to("cpu", lib.float32),
                                                                   t(A).to(lib.tensor([1, 2])),
                                                                   t(A).to(lib.device("cpu")),
                                                                   t(A).to(dtype=lib.int32, copy=True)),
        "to(copy=True) copies": lambda lib, t: _copy_is_fresh(lib, t),
        "multinomial where the draw is forced": lambda lib, t: (
            lib.multinomial(t([0.0, 0.0, 2.5, 0.0]), 3, replacement=True),
            t([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]]).multinomial(1),
            lib.multinomial(t([0.0, 3.0, 0.0, 1.0]), 2).sum(),
            tuple(lib.multinomial(t([0.2, 0.3, 0.5]), 4, replacement=True).shape),
            lib.multinomial(t(np.ones((2, 5))), 5).sum(dim=1)),
        "flatten_parameters": lambda lib, t: lib.nn.LSTM(2, 3).flatten_parameters(),
        "axis= and keepdims= wherever dim= and keepdim=": lambda lib, t: (
            t(A, grad=True).amax(axis=1, keepdims=True), t(A).amin(axis=0), t(A).argmax(axis=1, keepdims=True),
            t(A).argmin(axis=0), t(A, grad=True).var(axis=0, keepdims=True), t(A).std(axis=1),
            (t(A) > 0).any(axis=1), (t(A) > 0).all(axis=0, keepdims=True), t(A, grad=True).softmax(axis=1),
            t(A).log_softmax(axis=0), t(A).max(axis=1, keepdims=True).values, t(A).min(axis=0).indices,
            t(A).unsqueeze(axis=0), t(A[:1]).squeeze(axis=0), t(A).narrow(axis=1, start=1, length=2),
            t(A).chunk(2, axis=1)[1], t(A).sum(axis=1, keepdims=True), lib.amax(t(A), axis=0)),
        # selecting by index tensors and sorting: values, indices and the gradients that flow back
        "gather": lambda lib, t: (t(A, grad=True).gather(1, lib.tensor([[3, 0], [1, 1], [2, 3]])),
                                  lib.gather(t(A, grad=True), 0, lib.tensor([[2, 2, 0, 1]])),
                                  t(A3, grad=True).gather(-1, lib.tensor(IDX3))),
        "index_select": lambda lib, t: (t(A, grad=True).index_select(1, lib.tensor([3, 0, 3])),
                                        lib.index_select(t(A3, grad=True), -2, lib.tensor([1, 1])),
                                        t(A, grad=True).index_select(0, lib.tensor(2))),
        "masked_select": lambda lib, t: (t(A, grad=True).masked_select(t(A) > 0.5),
                                         t(A, grad=True).masked_select(lib.tensor([True, False, True, True]))),
        "sort, argsort (ties keep their order, NaN the largest)": lambda lib, t: (
            *t(A, grad=True).sort(), *t(A3, grad=True).sort(dim=1, descending=True),
            *t(TIES).sort(dim=1, descending=True, stable=True), *t(TIES).sort(stable=True),
            lib.argsort(t(TIES), descending=True), t(A).argsort(dim=0),
            *lib.tensor([3, 1, 2, 1]).sort(descending=True)),
        "topk": lambda lib, t: (*t(A, grad=True).topk(2), *t(A3, grad=True).topk(3, dim=1, largest=False),
                                *lib.topk(t(A), 1, 0), *t(A).topk(0)),
        "flip": lambda lib, t: (t(A3, grad=True).flip(0, 2) * t(A3), t(A, grad=True).flip([1]), lib.flip(t(A), (-1,))),
        "tril and triu": lambda lib, t: (t(A, grad=True).tril(), t(A3, grad=True).triu(1), t(A).tril(-1),
                                         lib.triu(t(A), -2), lib.ones(3, 3, dtype=lib.int64).tril(),
                                         lib.ones(2, 3, dtype=lib.bool).triu()),
        "outer": lambda lib, t: (t(A[0], grad=True).outer(t(B[:, 0], grad=True)), lib.outer(lib.arange(3), lib.arange(2))),
        "logsumexp": lambda lib, t: (t(A3, grad=True).logsumexp(1), t(A3, grad=True).logsumexp((0, 2), keepdim=True),
                                     lib.logsumexp(t([[-np.inf, -np.inf], [1000.0, 1000.0], [np.inf, 1.0]]), 1)),
        "isclose": lambda lib, t: (t(A).isclose(t(A) + 1e-6), lib.isclose(t(TIES), t(TIES), equal_nan=True),
                                   lib.isclose(t(A), t(A) * 1.01, rtol=0.02)),
        "repeat_interleave": lambda lib, t: (t(A, grad=True).repeat_interleave(2, dim=0),
                                             t(A, grad=True).repeat_interleave(3),
                                             t(A, grad=True).repeat_interleave(lib.tensor([1, 0, 3, 2]), dim=1),
                                             lib.repeat_interleave(t(A3), 2, dim=-1)),
        "flatten(start_dim, end_dim)": lambda lib, t: (t(A.reshape(3, 2, 2), grad=True).flatten(1),
                                                       t(A.reshape(3, 2, 2)).flatten(0, 1),
                                                       t(A.reshape(3, 2, 2)).flatten(-2, -1),
                                                       t(A.reshape(3, 2, 2)).flatten(start_dim=1, end_dim=1),
                                                       t(1.5).flatten(), lib.flatten(t(A))),
        "floor, ceil, trunc: zero gradient": lambda lib, t: (
            (t(A, grad=True) * 1.3).floor(), lib.ceil(t(A, grad=True) * 0.7), t(A, grad=True).trunc() * 1.7),
        "round half to even, decimals": lambda lib, t: (
            t([0.5, 1.5, 2.5, -0.5, -1.5], grad=True).round(), t(A * 0.77, grad=True).round(decimals=1),
            lib.round(t(A * 131.0), decimals=-1)),
        "frac keeps the sign": lambda lib, t: (t(A * 1.3, grad=True).frac(), lib.frac(t(A * -0.7))),
        "rounding integers": lambda lib, t: (lib.tensor([3, -2]).floor(), lib.tensor([3, -2]).round()),
        "prod": lambda lib, t: (t(A, grad=True).prod(), t(A, grad=True).prod(1), t(A3, grad=True).prod(0, keepdim=True),
                                lib.prod(lib.tensor([[2, 3], [4, 5]]), 1)),
        "prod with zeros": lambda lib, t: (t(ZEROS, grad=True).prod(1), t(ZEROS, grad=True).prod(0),
                                           t(ZEROS, grad=True).prod()),
        "cumprod": lambda lib, t: (t(A, grad=True).cumprod(1), t(ZEROS, grad=True).cumprod(1),
                                   lib.cumprod(t(A3, grad=True), dim=0), lib.tensor([1, 2, 3]).cumprod(0)),
        "diag": lambda lib, t: (t(A, grad=True).diag(), t(A, grad=True).diag(2), t(A, grad=True).diag(-1),
                                lib.diag(t(A[0], grad=True)), t(A[1], grad=True).diag(-2), t(A[2]).diag(3)),
        "nonzero": lambda lib, t: (t(ZEROS).nonzero(), *t(ZEROS).nonzero(as_tuple=True), lib.nonzero(t(A[0])),
                                   t(0.0).nonzero(), *t(2.0).nonzero(as_tuple=True)),
        "unique": lambda lib, t: (lib.unique(lib.tensor(IDX3)), *lib.tensor(IDX3).unique(return_inverse=True,
                                                                                         return_counts=True),
                                  *t(TIES).unique(return_inverse=True), *lib.unique(lib.tensor(IDX3[0]), dim=1,
                                                                                      return_counts=True)),
        "median": lambda lib, t: (t(A, grad=True).median(), *t(A, grad=True).median(1),
                                  *t(A3, grad=True).median(0, keepdim=True), *lib.median(t(TIES), dim=1),
                                  lib.median(lib.tensor([5, 1, 4, 2]))),
        "scatter": lambda lib, t: (t(A, grad=True).scatter(1, lib.tensor(SCATTER), t(A[:, :2], grad=True)),
                                   t(A, grad=True).scatter(0, lib.tensor([[0, 2, 1, 1]]), value=7.0),
                                   lib.scatter(t(A), 1, lib.tensor(SCATTER), 2.5)),
        "scatter_add": lambda lib, t: (t(A, grad=True).scatter_add(1, lib.tensor(SCATTER), t(B[:3, :2], grad=True)),
                                       lib.scatter_add(lib.zeros(2, 3, dtype=lib.int64), 0,
                                                       lib.tensor([[1, 1, 0]]), lib.tensor([[4, 5, 6]]))),
        "scatter_ and scatter_add_ recorded": lambda lib, t: (
            (t(A, grad=True) * 1).scatter_(1, lib.tensor(SCATTER), t(B[:3, :2], grad=True) * 3),
            (t(A, grad=True) * 1).scatter_add_(1, lib.tensor(SCATTER), t(B[:3, :2], grad=True) * 3),
            _scatter_under_no_grad(lib, t)),
        "var_mean and std_mean": lambda lib, t: (*lib.var_mean(t(A, grad=True), 1),
                                                 *lib.std_mean(t(A3, grad=True), dim=(0, 2), keepdim=True),
                                                 *lib.std_mean(t(A, grad=True), correction=0)),
    }


def _scatter_under_no_grad(lib, t):
    x = t(A)
    with lib.no_grad():
        x.scatter_(0, lib.tensor([[2, 0, 1, 0]]), value=-1.0).scatter_add_(1, lib.tensor(SCATTER), t(B[:3, :2]))
    return x


def _copy_is_fresh(lib, t):
    x = t(A.copy())
    y = x.to("cpu", copy=True)
    y.add_(1.0)
    return x, y, x.to("cpu") is x


def _in_place_step(lib, t):
    x = t(A.copy())
    x.mul_(2).add_(t(A), alpha=-0.5).clamp_(-2.0, 2.0)
    x[0, 1] = 9.0
    x.sub_(1.0)
    y = t(A.copy())
    y.zero_()
    return x, y.fill_(2.5), t(A.copy()).copy_(t(B.T.copy()))


def _detach_in_place(t):
    w = t(A, grad=True)
    y = w * 2
    same = y.detach_() is y
    return same, y.requires_grad, y.grad_fn is None, y.is_leaf, w * 3, y


def _variable(lib, t):
    x = t(A)
    v = lib.autograd.Variable(x, requires_grad=True)
    return v is x, v.requires_grad, x.requires_grad, v.is_leaf, lib.autograd.Variable(x).requires_grad, v * 2


def _sgd_step(lib, t):
    w = t(A.copy(), grad=True)
    (w * w).sum().backward()
    w.data.add_(w.grad, alpha=-0.1)
    with lib.no_grad():
        w.sub_(w.grad * 0.1)
    return w.detach()


def _grad_kind(lib, t):
    w = t(A.copy(), grad=True)
    (w.tanh() * 2).sum().backward()
    return (type(w.grad).__name__, w.grad.requires_grad, w.grad)


def _grad_modes(lib, t):
    x = t(A, grad=True)
    with lib.set_grad_enabled(False):
        off = (x * 2).requires_grad
    with lib.inference_mode():
        inference = (x * 2).requires_grad
    return (off, inference, (x * 2).requires_grad)


def _run(lib, name):
    dtype = lib.float64 if lib is not tr else "float64"

    def t(a, grad=False):
        return lib.tensor(np.array(a), dtype=dtype, requires_grad=grad) if lib is not tr else \
            tr.Tensor(np.array(a), dtype=dtype, requires_grad=grad)
    leaves = []

    def tracked(a, grad=False):
        x = t(a, grad)
        if grad:
            leaves.append(x)
        return x
    out = idioms()[name](lib, tracked)
    results = list(out) if isinstance(out, tuple) else [out]
    differentiable = [r for r in results if hasattr(r, "requires_grad") and r.requires_grad]
    if differentiable and leaves:
        sum(r.sum() for r in differentiable).backward()
    grads = [x.grad for x in leaves]
    return results, grads


def _host(value):
    if hasattr(value, "detach"):
        return value.detach().numpy()
    if isinstance(value, tr.Tensor):
        return value.numpy()
    return value


@pytest.mark.parametrize("name", sorted(idioms()))
def test_idiom_matches_torch(name, torch):
    ours, our_grads = _run(tr, name)
    theirs, their_grads = _run(torch, name)
    assert len(ours) == len(theirs)
    for a, b in zip(ours + our_grads, theirs + their_grads):
        if b is None:
            assert a is None
            continue
        if isinstance(b, str):
            assert a in (b, "Tensor") if b == "Tensor" else a == b
            continue
        a, b = _host(a), _host(b)
        if isinstance(b, (bool, int, float, tuple)):
            assert a == b or (isinstance(b, float) and math.isnan(b) and math.isnan(a))
            continue
        assert np.shape(a) == np.shape(b)
        if np.asarray(b).dtype == np.bool_:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                                       rtol=1e-12, atol=1e-12)


SELECTIONS = {
    "gather": lambda x: x.gather(2, tr.tensor(IDX3)),
    "index_select": lambda x: x.index_select(1, tr.tensor([2, 0, 2])),
    "masked_select": lambda x: x.masked_select(x > 0),
    "sort": lambda x: x.sort(dim=1, descending=True).values,
    "topk": lambda x: x.topk(2).values,
    "flip": lambda x: x.flip(0, 2),
    "tril": lambda x: x.tril(1),
    "logsumexp": lambda x: x.logsumexp((0, 2)),
    "repeat_interleave": lambda x: x.repeat_interleave(tr.tensor([2, 0, 1, 3]), dim=2),
    "outer": lambda x: x[0, 0].outer(x[1, 2]),
    "prod": lambda x: (x.prod(1), x.prod()),
    "cumprod": lambda x: x.cumprod(2),
    "diag": lambda x: (x[0].diag(1), x[1, 0].diag(-1)),
    "median": lambda x: x.median(2).values,
    "frac": lambda x: (x * 3).frac(),
    "scatter": lambda x: x.scatter(2, tr.tensor(DISTINCT), x[:, :2, :3] * 2),  # repeated indices: any write wins
    "scatter_add": lambda x: x.scatter_add(2, tr.tensor(IDX3), x[:, :2, :1].expand(2, 2, 5) ** 2),
    "scatter_add_ recorded": lambda x: (x * 1).scatter_add_(2, tr.tensor(IDX3), x[:, :2, :1].expand(2, 2, 5) ** 2),
    "std_mean": lambda x: tr.std_mean(x, 1),
}


@pytest.mark.parametrize("name", sorted(SELECTIONS))
def test_selection_and_sorting_gradcheck_and_gradgradcheck(name):
    x = tr.tensor(A3, dtype=tr.float64, requires_grad=True)
    assert tr.gradcheck(SELECTIONS[name], x)
    assert tr.gradgradcheck(SELECTIONS[name], x)


def test_gradient_of_a_product_over_zeros_differentiates_again():
    x = tr.tensor(ZEROS, dtype=tr.float64, requires_grad=True)
    assert tr.gradcheck(lambda x: x.prod(1), x)
    assert tr.gradgradcheck(lambda x: (x.prod(0), x.cumprod(1)), x)


def test_new_functions_give_torch_dtypes(torch):
    for name, fn in (("one_hot-free indices", lambda lib: lib.tensor([[0.0, 1.0], [2.0, 0.0]]).nonzero()),
                     ("unique inverse", lambda lib: lib.tensor([2.0, 1.0]).unique(return_inverse=True)[1]),
                     ("median indices", lambda lib: lib.tensor([[2.0, 1.0]]).median(1).indices),
                     ("integer prod", lambda lib: lib.tensor([2, 3], dtype=lib.int32).prod()),
                     ("bool cumprod", lambda lib: lib.tensor([True, False]).cumprod(0)),
                     ("integer floor", lambda lib: lib.tensor([2, 3]).floor()),
                     ("LongTensor", lambda lib: lib.LongTensor([1, 2])),
                     ("FloatTensor of ints", lambda lib: lib.FloatTensor([1, 2])),
                     ("IntTensor sizes", lambda lib: lib.IntTensor(2)),
                     ("new_full keeps the dtype", lambda lib: lib.ones(2, dtype=lib.float32).new_full((2,), 5)),
                     ("new_empty with a dtype", lambda lib: lib.ones(2).new_empty((2,), dtype=lib.int64)),
                     ("int64 matrix product", lambda lib: lib.mm(lib.ones(2, 2, dtype=lib.int64), lib.ones(2, 1,
                                                                                          dtype=lib.int64)))):
        assert str(fn(tr).dtype) == str(fn(torch).dtype).replace("torch.", ""), name


def test_new_functions_refuse_bad_input_by_name():
    x = tr.tensor(A)
    with pytest.raises(RuntimeError, match=r"diag\(\): Supports 1D or 2D tensors. Got 3D"):
        tr.tensor(A3).diag()
    with pytest.raises(NotImplementedError, match="frac: not implemented for int64"):
        tr.tensor([1, 2]).frac()
    with pytest.raises(TypeError, match="round: argument 'decimals' must be an int"):
        x.round(decimals=1.5)
    with pytest.raises(RuntimeError, match=r"scatter\(\): Expected self.dtype to be equal to src.dtype \(self "
                                           r"float64, src float32\)"):
        x.scatter(1, tr.tensor(SCATTER), x.float())
    with pytest.raises(RuntimeError, match=r"scatter_add\(\): Expected index \[3, 5\] to be no larger than self "
                                           r"\[3, 4\] apart from dimension 1 and to be no larger size than src"):
        x.scatter_add(1, tr.tensor(np.zeros((3, 5), dtype=np.int64)), x)
    with pytest.raises(RuntimeError, match="scatter\\(\\): Index tensor must have the same number of dimensions"):
        x.scatter(1, tr.tensor([0, 1]), x)
    with pytest.raises(IndexError, match=r"scatter\(\): index out of range for dimension 1 of size 4: the indices "
                                         r"span \[-1, 2\]"):
        x.scatter(1, tr.tensor(SCATTER - 1), 0.0)
    with pytest.raises(TypeError, match="scatter: pass exactly one of src"):
        x.scatter(1, tr.tensor(SCATTER))
    with pytest.raises(TypeError, match="scatter_add: argument 'src' must be a Tensor, not float"):
        x.scatter_add(1, tr.tensor(SCATTER), 1.0)
    with pytest.raises(RuntimeError, match="median: median\\(\\) input tensor cannot be empty"):
        tr.zeros(0, dtype=tr.int64).median()
    with pytest.raises(TypeError, match="std_mean\\(\\): argument 'input' must be a Tensor"):
        tr.std_mean(A)


@pytest.mark.parametrize("select", [lambda lib, x: x.gather(1, lib.tensor([[0], [-1], [1]])),
                                    lambda lib, x: x.index_select(1, lib.tensor([0, -1]))],
                         ids=["gather", "index_select"])
def test_gather_and_index_select_refuse_a_negative_index_as_torch(select, torch):
    """torch counts no index of gather or index_select from the end (before, -1 read the last entry silently)."""
    with pytest.raises(RuntimeError):
        select(torch, torch.tensor(A))
    with pytest.raises(IndexError, match=r"index out of range for a dim of size 4: the indices span \[-1, "):
        select(tr, tr.tensor(A))


def test_selections_refuse_bad_indices_by_name():
    x = tr.tensor(A)
    with pytest.raises(TypeError, match="gather: the index must hold integers"):
        x.gather(1, tr.tensor([[0.0]]))
    with pytest.raises(ValueError, match="gather: index .* same number of dims"):
        x.gather(1, tr.tensor([0]))
    with pytest.raises(ValueError, match="index_select: the index must have at most 1 dim"):
        x.index_select(0, tr.tensor([[0]]))
    with pytest.raises(TypeError, match="masked_select: the index must hold a bool mask"):
        x.masked_select(tr.tensor([1, 0, 1, 1]))
    with pytest.raises(ValueError, match=r"topk: k \(5\) must lie in \[0, 4\]"):
        x.topk(5)
    with pytest.raises(ValueError, match="tril: input tensor must have at least 2 dimensions"):
        x[0].tril()


def test_fixed_rank_products_refuse_bad_shapes_naming_them():
    a, b = tr.ones(2, 3, dtype=tr.float64), tr.ones(4, 5, dtype=tr.float64)
    for call, message in (
            (lambda: tr.mm(a, b), r"mm: mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"),
            (lambda: tr.mm(a[0], b), r"mm: expects two matrices; got shapes \(3,\) and \(4, 5\)"),
            (lambda: tr.bmm(a, b), r"bmm: input must be a 3-D tensor; got shape \(2, 3\)"),
            (lambda: tr.bmm(tr.ones(2, 3, 4), tr.ones(3, 4, 5)),
             r"first two dimensions of mat2 tensor to be: \[2, 4\] but got: \[3, 4\]"),
            (lambda: tr.mv(a, tr.ones(4, dtype=tr.float64)), r"mv: size mismatch, got mat \(2x3\), vec \(4\)"),
            (lambda: tr.mv(a, a), r"mv: expects a matrix and a vector; got shapes \(2, 3\) and \(2, 3\)"),
            (lambda: tr.dot(a, a), r"dot: 1D tensors expected, but got 2D and 2D tensors"),
            (lambda: tr.dot(a[0], b[0]), r"expected tensor \[3\] and src \[5\]")):
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError, match="mm: expected both operands to have the same dtype, but got float64 and "
                                        "float32"):
        tr.mm(a, tr.ones(3, 2))
    with pytest.raises(TypeError, match="dot: expected both operands to have the same dtype"):
        tr.dot(a[0], tr.ones(3))


def test_detach_in_place_refuses_a_view():
    y = tr.ones(2, 3, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"detach_: can't detach a view \(shape \(3,\)\) in place"):
        y[0].detach_()


def test_legacy_constructors_and_variable_refuse_what_torch_refuses():
    with pytest.raises(TypeError, match=r"FloatTensor\(\): takes data .* got float"):
        tr.FloatTensor(2.5)
    with pytest.raises(TypeError, match="FloatTensor.*dtype float32; got float64"):
        tr.FloatTensor(tr.ones(2, dtype=tr.float64))
    with pytest.raises(TypeError, match="Variable data has to be a tensor, but got list"):
        tr.autograd.Variable([1.0])


def test_tutorial_switches_are_accepted(torch):
    import tinygrad_rnn.backends.cudnn as cudnn  # noqa: PLR0402 (the line tutorials write)
    cudnn.deterministic, cudnn.benchmark = True, False
    tr.cuda.manual_seed(0)
    tr.cuda.manual_seed_all(0)
    assert tr.backends.mps.is_available() == torch.backends.mps.is_available()
    with pytest.raises(TypeError, match="cuda.manual_seed: seed must be an integer"):
        tr.cuda.manual_seed("0")
