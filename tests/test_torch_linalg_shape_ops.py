"""Products, shape ops, flat picking, extremes, distances and counts a port from PyTorch reaches for:
matmul, inner, addmv / baddbmm / addbmm, kron, diagonal, rot90, tile, take, take_along_dim,
masked_scatter, where (the method), msort, aminmax, dist, renorm, logcumsumexp, bincount and histc.
Each against torch in float64 (values and gradients), and refusing bad input by name."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinygrad_rnn as tr

pytestmark = pytest.mark.usefixtures("torch_default_float32")   # dtypes are compared


def _both(values, device="cpu"):
    return (tr.tensor(values, dtype=tr.float64, device=device, requires_grad=True),
            torch.tensor(values, dtype=torch.float64, requires_grad=True))


def _same(ours, theirs, ours_in, theirs_in, weight):
    """Values and gradients (of a weighted sum) equal to torch's in float64."""
    assert ours.shape == tuple(theirs.shape) and ours.dtype == theirs.detach().numpy().dtype
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-13, atol=1e-14)
    (ours * tr.tensor(weight, dtype=tr.float64, device=ours.device)).sum().backward()
    (theirs * torch.tensor(weight)).sum().backward()
    for a, b in zip(ours_in, theirs_in):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-14)


def _check(call, shapes, device, seed=0, values=None):
    """call(lib, *tensors) on random float64 inputs of `shapes`, ours against torch's."""
    rng = np.random.default_rng(seed)
    arrays = values if values is not None else [rng.standard_normal(s) for s in shapes]
    ours, theirs = zip(*[_both(a, device) for a in arrays])
    out, expected = call(tr, *ours), call(torch, *theirs)
    _same(out, expected, ours, theirs, rng.standard_normal(tuple(expected.shape)))


def _index(lib, values, device="cpu"):
    return tr.tensor(values, device=device) if lib is tr else torch.tensor(values)


# ----------------------------------------------------------------------------- products

PRODUCTS = {
    "matmul batched": (lambda lib, a, b: a.matmul(b), [(2, 1, 3, 4), (5, 4, 2)]),
    "matmul vector": (lambda lib, a, b: lib.matmul(a, b), [(4,), (2, 4, 3)]),
    "matmul vectors": (lambda lib, a, b: a.matmul(b), [(4,), (4,)]),
    "inner": (lambda lib, a, b: a.inner(b), [(2, 3, 4), (5, 4)]),
    "inner vectors": (lambda lib, a, b: lib.inner(a, b), [(4,), (4,)]),
    "inner 0-d": (lambda lib, a, b: a.inner(b), [(), (2, 3)]),
    "inner empty": (lambda lib, a, b: a.inner(b), [(2, 0), (3, 0)]),
    "addmv": (lambda lib, c, a, b: c.addmv(a, b), [(3,), (3, 4), (4,)]),
    "addmv beta alpha": (lambda lib, c, a, b: lib.addmv(c, a, b, beta=0.5, alpha=-2.0), [(1,), (3, 4), (4,)]),
    "addmv 0-d": (lambda lib, c, a, b: c.addmv(a, b, alpha=3), [(), (3, 4), (4,)]),
    "baddbmm": (lambda lib, c, a, b: c.baddbmm(a, b), [(2, 3, 5), (2, 3, 4), (2, 4, 5)]),
    "baddbmm beta alpha": (lambda lib, c, a, b: lib.baddbmm(c, a, b, beta=-1.5, alpha=0.25),
                           [(3, 1), (2, 3, 4), (2, 4, 5)]),
    "addbmm": (lambda lib, c, a, b: c.addbmm(a, b), [(3, 5), (2, 3, 4), (2, 4, 5)]),
    "addbmm beta alpha": (lambda lib, c, a, b: lib.addbmm(c, a, b, beta=2.0, alpha=-0.5), [(5,), (4, 3, 2), (4, 2, 5)]),
    "addbmm no batches": (lambda lib, c, a, b: c.addbmm(a, b), [(3, 5), (0, 3, 4), (0, 4, 5)]),
    "addmm": (lambda lib, c, a, b: c.addmm(a, b, beta=0.5, alpha=2.0), [(1, 5), (3, 4), (4, 5)]),
    "kron": (lambda lib, a, b: a.kron(b), [(2, 3), (4, 2, 2)]),
    "kron vectors": (lambda lib, a, b: lib.kron(a, b), [(3,), (2,)]),
    "kron 0-d": (lambda lib, a, b: a.kron(b), [(), ()]),
    "kron empty": (lambda lib, a, b: a.kron(b), [(0, 2), (3,)]),
}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_products_match_torch(name, device):
    call, shapes = PRODUCTS[name]
    _check(call, shapes, device)


@pytest.mark.parametrize("op", ["addmv", "baddbmm", "addbmm", "addmm"])
def test_beta_zero_ignores_nan_in_input_and_gives_it_a_zero_gradient(op, device):
    shapes = {"addmv": [(3,), (3, 4), (4,)], "baddbmm": [(2, 3, 5), (2, 3, 4), (2, 4, 5)],
              "addbmm": [(3, 5), (2, 3, 4), (2, 4, 5)], "addmm": [(3, 5), (3, 4), (4, 5)]}[op]
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for s in shapes]
    arrays[0][...] = np.nan
    _check(lambda lib, c, a, b: getattr(c, op)(a, b, beta=0, alpha=1.5), shapes, device, values=arrays)


# ----------------------------------------------------------------------------- shapes

SHAPES = {
    "diagonal": (lambda lib, a: a.diagonal(), [(3, 4)]),
    "diagonal offset dims": (lambda lib, a: a.diagonal(1, -1, 0), [(3, 4, 5)]),
    "diagonal below": (lambda lib, a: lib.diagonal(a, offset=-2, dim1=2, dim2=1), [(3, 4, 5)]),
    "diagonal past the end": (lambda lib, a: a.diagonal(7), [(3, 4)]),
    "rot90": (lambda lib, a: a.rot90(), [(2, 3)]),
    "rot90 twice": (lambda lib, a: lib.rot90(a, 2, [1, 2]), [(2, 3, 4)]),
    "rot90 back": (lambda lib, a: a.rot90(-1, (2, 0)), [(2, 3, 4)]),
    "rot90 three": (lambda lib, a: a.rot90(3, [-1, -2]), [(2, 3, 4)]),
    "rot90 none": (lambda lib, a: a.rot90(4), [(2, 3)]),
    "tile": (lambda lib, a: a.tile(2, 1, 3), [(3, 2)]),
    "tile tuple": (lambda lib, a: lib.tile(a, (2,)), [(3, 2)]),
    "tile empty dims": (lambda lib, a: a.tile(()), [(3, 2)]),
    "tile zero": (lambda lib, a: a.tile((0, 2)), [(3, 2)]),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shape_ops_match_torch(name, device):
    call, shapes = SHAPES[name]
    _check(call, shapes, device)


# ----------------------------------------------------------------------------- picking and placing

MASK = [[True, False, True], [False, False, True]]
PICKS = {
    "take": (lambda lib, a: a.take(_index(lib, [[0, -1], [5, 3], [3, 3]])), [(2, 3)]),
    "take 0-d": (lambda lib, a: lib.take(a, _index(lib, [0, 0])), [()]),
    "take empty": (lambda lib, a: a.take(_index(lib, np.zeros((0, 2), np.int64))), [(2, 3)]),
    "take_along_dim": (lambda lib, a: a.take_along_dim(_index(lib, [[0, 2, 2, 1]]), 1), [(2, 3)]),
    "take_along_dim broadcast": (lambda lib, a: lib.take_along_dim(a, _index(lib, [[[1], [0], [1]]]), dim=0),
                                 [(2, 1, 4)]),
    "take_along_dim flat": (lambda lib, a: a.take_along_dim(_index(lib, [[0, 5], [2, 2]])), [(2, 3)]),
    "take_along_dim negative dim": (lambda lib, a: a.take_along_dim(a.argsort(-1), dim=-1), [(3, 4)]),
    "masked_scatter": (lambda lib, a, s: a.masked_scatter(_index(lib, MASK), s), [(2, 3), (5,)]),
    "masked_scatter broadcast": (lambda lib, a, s: lib.masked_scatter(a, _index(lib, MASK), s), [(3,), (2, 2)]),
    "masked_scatter none": (lambda lib, a, s: a.masked_scatter(_index(lib, [False, False, False]), s),
                            [(2, 3), (2,)]),
    "where": (lambda lib, a, b: a.where(_index(lib, MASK), b), [(2, 3), (3,)]),
    "where number": (lambda lib, a: a.where(_index(lib, MASK), 2.5), [(2, 3)]),
}


@pytest.mark.parametrize("name", sorted(PICKS))
def test_picking_and_placing_match_torch(name, device):
    call, shapes = PICKS[name]
    _check(call, shapes, device)


def test_masked_scatter_in_place_matches_torch(device):
    values, source = np.arange(6.0).reshape(2, 3), np.arange(10.0, 15.0)
    x, X = _both(values, device)
    s, S = _both(source, device)
    y, Y = x * 1, X * 1
    assert y.masked_scatter_(tr.tensor(MASK, device=device), s) is y
    Y.masked_scatter_(torch.tensor(MASK), S)
    _same(y, Y, [x, s], [X, S], np.random.default_rng(2).standard_normal((2, 3)))


# ----------------------------------------------------------------------------- order, extremes, distances

TIES = np.array([[1.0, 3.0, 3.0], [-2.0, -2.0, 0.5], [0.0, 4.0, -1.0], [2.0, 2.0, 2.0]])
REDUCTIONS = {
    "msort": (lambda lib, a: a.msort(), [(4, 3)]),
    "msort 1-d": (lambda lib, a: lib.msort(a), [(5,)]),
    "aminmax": (lambda lib, a: sum_of(a.aminmax()), [(4, 3)]),
    "aminmax dim": (lambda lib, a: sum_of(lib.aminmax(a, dim=-1)), [(4, 3)]),
    "aminmax keepdim": (lambda lib, a: sum_of(a.aminmax(dim=0, keepdim=True)), [(4, 3)]),
    "aminmax all keepdim": (lambda lib, a: sum_of(a.aminmax(keepdim=True)), [(4, 3)]),
    "aminmax ties": (lambda lib, a: sum_of(a.aminmax(dim=1)), None),
    "aminmax ties all": (lambda lib, a: sum_of(a.aminmax()), None),
    "dist": (lambda lib, a, b: a.dist(b), [(4, 3), (3,)]),
    "dist 1": (lambda lib, a, b: lib.dist(a, b, 1), [(4, 3), (4, 1)]),
    "dist 3": (lambda lib, a, b: a.dist(b, p=3), [(4, 3), (4, 3)]),
    "dist 0.5": (lambda lib, a, b: a.dist(b, 0.5), [(4, 3), (4, 3)]),
    "dist inf": (lambda lib, a, b: a.dist(b, float("inf")), [(4, 3), (4, 3)]),
    "renorm": (lambda lib, a: a.renorm(2, 1, 1.5), [(4, 3)]),
    "renorm rows": (lambda lib, a: lib.renorm(a, 1, 0, 2.0), [(4, 3)]),
    "renorm 3-d": (lambda lib, a: a.renorm(3, -1, 0.8), [(2, 3, 4)]),
    "renorm inf": (lambda lib, a: a.renorm(float("inf"), 0, 1.0), [(4, 3)]),
    "logcumsumexp": (lambda lib, a: a.logcumsumexp(0), [(7, 3)]),
    "logcumsumexp last": (lambda lib, a: lib.logcumsumexp(a * 20, dim=-1), [(3, 9)]),
    "logcumsumexp 0-d": (lambda lib, a: a.logcumsumexp(0), [()]),
    "logcumsumexp empty": (lambda lib, a: a.logcumsumexp(1), [(3, 0)]),
}


def sum_of(pair):
    return pair.min * 2 + pair.max


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_order_extremes_and_distances_match_torch(name, device):
    call, shapes = REDUCTIONS[name]
    _check(call, shapes, device, values=None if shapes else [TIES])


def test_aminmax_is_a_named_pair():
    pair = tr.tensor([[1, 5], [3, 0]]).aminmax(dim=0)
    assert type(pair).__name__ == "aminmax" and pair._fields == ("min", "max")
    assert pair.min.tolist() == [1, 0] and pair.max.tolist() == [3, 5] and pair.min.dtype == np.int64
    assert tr.tensor([True, False]).aminmax().max.dtype == np.bool_


def test_logcumsumexp_handles_infinities_and_far_apart_values():
    values = [-np.inf, -np.inf, 1.0, -1000.0, np.inf, 2.0]
    ours = tr.tensor(values, dtype=tr.float64).logcumsumexp(0)
    np.testing.assert_array_equal(ours.numpy(), torch.tensor(values, dtype=torch.float64).logcumsumexp(0).numpy())
    far = [-1000.0, 0.0, -745.0]
    np.testing.assert_allclose(tr.tensor(far, dtype=tr.float64).logcumsumexp(0).numpy(),
                               torch.tensor(far, dtype=torch.float64).logcumsumexp(0).numpy(), rtol=1e-15)


def test_dist_of_order_zero_counts_the_differences():
    a, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 0.0])
    assert tr.tensor(a).dist(tr.tensor(b), 0).item() == torch.tensor(a).dist(torch.tensor(b), 0).item() == 3


# ----------------------------------------------------------------------------- counts

COUNTS = [
    ("bincount", lambda lib: _index(lib, [1, 2, 2, 5]).bincount()),
    ("bincount minlength", lambda lib: lib.bincount(_index(lib, [1, 2, 2, 5]), minlength=8)),
    ("bincount int32", lambda lib: _index(lib, np.array([0, 3, 3], np.int32)).bincount()),
    ("bincount float64 weights", lambda lib: _index(lib, [1, 2, 2, 5]).bincount(_index(lib, [0.5, 1.0, 1.25, 2.0]))),
    ("bincount float32 weights", lambda lib: _index(lib, [1, 2, 2, 5]).bincount(
        _index(lib, np.array([0.5, 1.0, 1.25, 2.0], np.float32)))),
    ("bincount int weights", lambda lib: _index(lib, [1, 2, 2]).bincount(_index(lib, [3, 1, 1]))),
    ("bincount empty", lambda lib: _index(lib, np.zeros(0, np.int64)).bincount(minlength=3)),
    ("bincount empty weights", lambda lib: _index(lib, np.zeros(0, np.int64)).bincount(
        _index(lib, np.zeros(0)))),
    ("histc", lambda lib: _index(lib, [1.0, 2.0, 1.0, 4.0, 0.5, 7.0]).histc(4)),
    ("histc range", lambda lib: _index(lib, [1.0, 2.0, 1.0, 4.0, 0.5, 7.0, np.nan]).histc(bins=4, min=0, max=3)),
    ("histc edges", lambda lib: lib.histc(_index(lib, [[1.0, 1.5], [2.5, 4.0]]), 3, 1, 4)),
    ("histc one value", lambda lib: _index(lib, [2.0, 2.0]).histc(4)),
    ("histc empty", lambda lib: _index(lib, np.zeros(0)).histc(5)),
    ("histc float32", lambda lib: _index(lib, np.linspace(-3, 3, 50, dtype=np.float32)).histc(7)),
]


@pytest.mark.parametrize("k", range(len(COUNTS)))
def test_counts_match_torch(k):
    _, call = COUNTS[k]
    ours, theirs = call(tr), call(torch)
    assert ours.shape == tuple(theirs.shape) and ours.dtype == theirs.numpy().dtype
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


# ----------------------------------------------------------------------------- bad input

def test_refuses_bad_input_by_name():
    a, v = tr.zeros(2, 3), tr.zeros(3)
    cases = [
        (TypeError, "matmul: argument 'other' must be a Tensor, not list", lambda: a.matmul([1.0])),
        (RuntimeError, r"inner\(\) the last dimension must match.*\[2, 3\] and \[4\]", lambda: a.inner(tr.zeros(4))),
        (RuntimeError, "inner: input tensors must have the same dtype", lambda: a.inner(tr.zeros(3, dtype=tr.float64))),
        (RuntimeError, "addmv: vector \\+ matrix @ vector expected, got 2, 2, 1", lambda: a.addmv(a, v)),
        (RuntimeError, r"addmv: size mismatch, got input \(3\), mat \(2x3\), vec \(3\)", lambda: v.addmv(a, v)),
        (RuntimeError, "baddbmm: batch1 must be a 3D tensor", lambda: a.baddbmm(a, tr.zeros(1, 3, 2))),
        (RuntimeError, r"baddbmm: Expected size for first two dimensions of batch2 tensor to be: \[2, 3\]",
         lambda: a.baddbmm(tr.zeros(2, 2, 3), tr.zeros(2, 4, 3))),
        (RuntimeError, "addbmm: batch1 and batch2 must have same number of batches, got 3 and 2",
         lambda: a.addbmm(tr.zeros(3, 2, 3), tr.zeros(2, 3, 3))),
        (RuntimeError, r"addbmm: Incompatible matrix sizes for bmm \(2x3 and 4x3\)",
         lambda: a.addbmm(tr.zeros(2, 2, 3), tr.zeros(2, 4, 3))),
        (RuntimeError, r"addbmm: input of shape \(2, 2, 3\) does not broadcast",
         lambda: tr.zeros(2, 2, 3).addbmm(tr.zeros(1, 2, 3), tr.zeros(1, 3, 3))),
        (RuntimeError, "addmm: input tensors must have the same dtype",
         lambda: tr.zeros(2, 2, dtype=tr.float64).addmm(a, a.T)),
        (TypeError, "kron: argument 'other' must be a Tensor", lambda: a.kron(2.0)),
        (RuntimeError, "diagonal dimensions cannot be identical 0, -2", lambda: a.diagonal(0, 0, -2)),
        (IndexError, r"diagonal: Dimension out of range \(expected to be in range of \[-1, 0\], but got 1\)",
         lambda: v.diagonal()),
        (RuntimeError, "rot90: expected total rotation dims == 2, but got dims = 1", lambda: a.rot90(1, [0])),
        (RuntimeError, "rot90: expected total dims >= 2, but got total dims = 1", lambda: v.rot90()),
        (RuntimeError, "rot90: expected rotation dims to be different, but got dim0 = 0 and dim1 = -2",
         lambda: a.rot90(1, [0, -2])),
        (TypeError, "rot90\\(\\): argument 'k' must be int, not float", lambda: a.rot90(1.5)),
        (RuntimeError, "tile: dims must be non-negative", lambda: a.tile(-1)),
        (RuntimeError, "take\\(\\): Expected a long tensor for index, but got int32",
         lambda: a.take(tr.tensor([1], dtype=tr.int32))),
        (IndexError, "take\\(\\): out of range: tried to access index -7 on a tensor of 6 elements",
         lambda: a.take(tr.tensor([0, -7]))),
        (RuntimeError, "take_along_dim\\(\\): dtype of indices should be Long but got float32",
         lambda: a.take_along_dim(tr.zeros(1), 0)),
        (RuntimeError, (r"take_along_dim\(\): input and indices should have the same number of dimensions, "
                        r"but got 2 dimensions for input, and 1 dimensions for indices"),
         lambda: a.take_along_dim(tr.tensor([0]), 1)),
        (IndexError, "gather: index out of range", lambda: a.take_along_dim(tr.tensor([[3]]), 1)),
        (RuntimeError, "masked_scatter_ only supports boolean masks, but got mask with dtype int64",
         lambda: a.masked_scatter(tr.tensor([1, 0, 1]), v)),
        (RuntimeError, "masked_scatter: expected self and source to have same dtypes but got float32 and int64",
         lambda: a.masked_scatter(tr.tensor([True, False, True]), tr.tensor([1, 2, 3, 4]))),
        (RuntimeError, r"masked_scatter: Number of elements of source \(3\) < number of ones in mask \(4\)",
         lambda: a.masked_scatter(tr.tensor([True, False, True]), v)),
        (TypeError, "masked_scatter: argument 'source' must be a Tensor, not float",
         lambda: a.masked_scatter(tr.tensor([True, False, True]), 1.0)),
        (RuntimeError, "masked_scatter_: output with shape \\(3,\\) doesn't match the broadcast shape \\(2, 3\\)",
         lambda: tr.zeros(3).masked_scatter_(tr.ones(2, 3).bool(), tr.zeros(6))),
        (TypeError, "where: condition must be a bool tensor", lambda: a.where(tr.ones(2, 3), 0.0)),
        (TypeError, "aminmax\\(\\) takes 1 positional argument but 2 were given", lambda: a.aminmax(1)),
        (RuntimeError, "aminmax\\(\\): cannot compute aminmax over an empty dimension",
         lambda: tr.zeros(0, 3).aminmax()),
        (IndexError, "aminmax: Expected reduction dim 0 to have non-zero size", lambda: tr.zeros(0, 3).aminmax(dim=0)),
        (TypeError, "dist: argument 'other' must be a Tensor, not float", lambda: a.dist(2.0)),
        (RuntimeError, "dist: input dtype should be either floating point or complex. Got int64",
         lambda: tr.tensor([1, 2]).dist(tr.tensor([1, 2]))),
        (RuntimeError, r"dist: the shapes \(2, 3\) and \(4,\) do not broadcast", lambda: a.dist(tr.zeros(4))),
        (RuntimeError, "renorm: non-positive-norm not supported", lambda: a.renorm(0, 1, 5)),
        (RuntimeError, "renorm: expected maxnorm to be >= 0 but got -5", lambda: a.renorm(2, 1, -5)),
        (RuntimeError, "renorm: input needs at least 2 dimensions, got 1 dimensions", lambda: v.renorm(2, 0, 5)),
        (RuntimeError, "renorm: Expected a floating point tensor as input. Got int64",
         lambda: tr.tensor([[1, 2]]).renorm(2, 0, 5)),
        (NotImplementedError, "logcumsumexp: not implemented for int64", lambda: tr.tensor([1, 2]).logcumsumexp(0)),
        (IndexError, "logcumsumexp: Dimension out of range", lambda: a.logcumsumexp(2)),
        (RuntimeError, "bincount only supports 1-d non-negative integral inputs", lambda: tr.tensor([1, -2]).bincount()),
        (RuntimeError, "bincount only supports 1-d non-negative integral inputs", lambda: tr.tensor([[1]]).bincount()),
        (NotImplementedError, "bincount: not implemented for float32", lambda: v.bincount()),
        (RuntimeError, "bincount: minlength should be >= 0", lambda: tr.tensor([1]).bincount(minlength=-1)),
        (RuntimeError, "bincount: weights should be 1-d and have the same length as input",
         lambda: tr.tensor([1, 2]).bincount(tr.zeros(3))),
        (RuntimeError, "histc: bins must be > 0, but got 0", lambda: v.histc(0)),
        (TypeError, "histc\\(\\): argument 'bins' must be int, not float", lambda: v.histc(2.5)),
        (RuntimeError, "torch.histc: max must be larger than min", lambda: v.histc(4, 3, 1)),
        (RuntimeError, r"torch.histc: range of \[1.0, inf\] is not finite", lambda: tr.tensor([1.0, np.inf]).histc()),
        (NotImplementedError, "histc: not implemented for int64", lambda: tr.tensor([1, 2]).histc(4)),
        (TypeError, r"bincount\(\): argument 'input' must be a Tensor, not list", lambda: tr.bincount([1, 2])),
    ]
    for kind, message, call in cases:
        with pytest.raises(kind, match=message):
            call()


SECOND_ORDER = {
    "logcumsumexp": (lambda x: x.logcumsumexp(1), (3, 5)),
    "renorm": (lambda x: x.renorm(2, 0, 1.0), (3, 4)),
    "addbmm": (lambda x: x[0].addbmm(x.reshape(1, 3, 3) * x, x.reshape(1, 3, 3)), (3, 3)),
    "kron": (lambda x: x.kron(x * x), (2, 2)),
    "masked_scatter": (lambda x: x.masked_scatter(x > 0, x * x), (3, 3)),
    "take_along_dim": (lambda x: (x * x).take_along_dim(tr.tensor([[2, 0, 0]]), 1), (3, 3)),
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_composites_have_gradients_of_gradients(name, device):
    fn, shape = SECOND_ORDER[name]
    rng = np.random.default_rng(3)
    values = rng.uniform(0.2, 1.5, shape) * rng.choice([-1.0, 1.0], shape)  # away from 0, where the masks switch
    x = tr.tensor(values, dtype=tr.float64, device=device, requires_grad=True)
    assert tr.gradcheck(fn, x)
    assert tr.gradgradcheck(fn, x)
