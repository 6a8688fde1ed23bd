"""Ops a port from PyTorch reaches for: the activations of torch.nn.functional and their modules,
F.linear, unbind, cumsum, remainder / fmod / %, log1p, expm1, erf, asin / acos / atan2, index_add /
index_copy / index_fill, scatter_reduce, cummax / cummin, kthvalue. Each against torch in float64
(values and gradients), gradchecked and gradgradchecked, and refusing bad input by name."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F


def _values(shape=(4, 5), seed=0, scale=3.0):
    values = np.random.default_rng(seed).standard_normal(shape) * scale
    values.flat[:4] = [0.0, -1.0, 1.0, 25.0][:values.size]  # the kinks, the bounds, past softplus's threshold
    return values


def _both(values, device="cpu"):
    return (tr.tensor(values, dtype=tr.float64, device=device, requires_grad=True),
            torch.tensor(values, dtype=torch.float64, requires_grad=True))


def _same(ours, theirs, ours_in, theirs_in, weight):
    """Values and gradients (of a weighted sum) equal to torch's in float64."""
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-13, atol=1e-14)
    (ours * tr.tensor(weight, dtype=tr.float64, device=ours.device)).sum().backward()
    (theirs * torch.tensor(weight)).sum().backward()
    for a, b in zip(ours_in, theirs_in):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-14)


ACTIVATIONS = {
    "elu": (lambda x: F.elu(x), lambda x: TF.elu(x)),
    "elu_alpha": (lambda x: F.elu(x, alpha=0.7), lambda x: TF.elu(x, alpha=0.7)),
    "leaky_relu": (lambda x: F.leaky_relu(x), lambda x: TF.leaky_relu(x)),
    "leaky_relu_slope": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "hardtanh": (lambda x: F.hardtanh(x), lambda x: TF.hardtanh(x)),
    "hardtanh_bounds": (lambda x: F.hardtanh(x, -2.0, 0.5), lambda x: TF.hardtanh(x, -2.0, 0.5)),
    "silu": (lambda x: F.silu(x), lambda x: TF.silu(x)),
    "logsigmoid": (lambda x: F.logsigmoid(x), lambda x: TF.logsigmoid(x)),
    "softplus": (lambda x: F.softplus(x), lambda x: TF.softplus(x)),
    "softplus_beta": (lambda x: F.softplus(x, beta=2.0, threshold=5.0),
                      lambda x: TF.softplus(x, beta=2.0, threshold=5.0)),
    "gelu": (lambda x: F.gelu(x), lambda x: TF.gelu(x)),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "log1p": (lambda x: (x * x).log1p(), lambda x: (x * x).log1p()),
    "expm1": (lambda x: x.expm1(), lambda x: x.expm1()),
    "erf": (lambda x: x.erf(), lambda x: x.erf()),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_torch(name, device):
    ours_fn, theirs_fn = ACTIVATIONS[name]
    values = _values()
    x, X = _both(values, device)
    _same(ours_fn(x), theirs_fn(X), [x], [X], _values(seed=1))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradcheck_and_gradgradcheck(name, device):
    ours_fn, _ = ACTIVATIONS[name]
    # away from the kinks, where finite differences hold
    values = np.random.default_rng(2).uniform(0.1, 1.5, (3, 4)) * np.sign(np.random.default_rng(3).standard_normal((3, 4)))
    x = tr.tensor(values, dtype=tr.float64, device=device, requires_grad=True)
    assert tr.gradcheck(ours_fn, x)
    assert tr.gradgradcheck(ours_fn, x)


def test_activations_keep_float32_and_give_finite_gradients_at_extremes():
    x = tr.tensor([-1000.0, -30.0, 0.0, 30.0, 1000.0], requires_grad=True)
    for name, (fn, _) in ACTIVATIONS.items():
        if name == "expm1":
            continue
        y = fn(x)
        assert y.dtype == np.float32, name
        x.grad = None
        y.sum().backward()
        assert np.isfinite(x.grad.numpy()).all(), name


MODULES = [
    (tr.nn.GELU(), torch.nn.GELU()), (tr.nn.GELU("tanh"), torch.nn.GELU("tanh")),
    (tr.nn.ELU(0.5), torch.nn.ELU(0.5)), (tr.nn.SiLU(), torch.nn.SiLU()),
    (tr.nn.Softplus(beta=3.0, threshold=4.0), torch.nn.Softplus(beta=3.0, threshold=4.0)),
    (tr.nn.LeakyReLU(0.3), torch.nn.LeakyReLU(0.3)), (tr.nn.Hardtanh(-0.5, 2.0), torch.nn.Hardtanh(-0.5, 2.0)),
    (tr.nn.LogSigmoid(), torch.nn.LogSigmoid()), (tr.nn.ELU(alpha=2.0, inplace=True), torch.nn.ELU(2.0, True)),
]


@pytest.mark.parametrize("k", range(len(MODULES)))
def test_activation_modules_match_torch_and_print_as_torch(k):
    ours, theirs = MODULES[k]
    assert repr(ours) == repr(theirs)
    x, X = _both(_values(seed=4))
    _same(ours(x), theirs(X.clone() if "inplace=True" in repr(theirs) else X), [x], [X], _values(seed=5))


def test_activations_refuse_bad_arguments():
    x = tr.zeros(3)
    with pytest.raises(TypeError, match="gelu.*int64"):
        F.gelu(tr.tensor([1, 2]))
    with pytest.raises(ValueError, match="approximate.*'tanh'.*'fast'"):
        F.gelu(x, approximate="fast")
    with pytest.raises(ValueError, match="approximate"):
        tr.nn.GELU("fast")
    with pytest.raises(ValueError, match=r"min_val \(1\) cannot be greater than max_val \(0\)"):
        F.hardtanh(x, 1, 0)
    with pytest.raises(TypeError, match="softplus: argument 'beta' must be a number, not str"):
        F.softplus(x, beta="2")
    with pytest.raises(TypeError, match="elu: argument 'input' must be a Tensor, not list"):
        F.elu([1.0])
    with pytest.raises(TypeError, match="unexpected keyword argument.*'slope'"):
        tr.nn.LeakyReLU(slope=0.1)


# ----------------------------------------------------------------------------- F.linear

@pytest.mark.parametrize("shapes", [((5, 3), (4, 3), (4,)), ((2, 5, 3), (4, 3), None), ((3,), (4, 3), (4,)),
                                    ((2, 5, 3), (3,), ()), ((6, 3), (4, 3), None), ((0, 3), (4, 3), (4,))])
def test_linear_matches_torch(shapes, device):
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(s) if s is not None else None for s in shapes]
    ours = [None if a is None else tr.tensor(a, dtype=tr.float64, device=device, requires_grad=True) for a in arrays]
    theirs = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    out, OUT = F.linear(*ours), TF.linear(*theirs)
    assert out.shape == tuple(OUT.shape)
    weight = rng.standard_normal(out.shape)
    _same(out, OUT, [t for t in ours if t is not None], [t for t in theirs if t is not None], weight)
    present = [t for t in ours if t is not None]
    assert tr.gradgradcheck(lambda *ts: F.linear(*(ts + (None,) * (3 - len(ts)))), *present)


def test_linear_refuses_mismatches_by_name():
    x, w = tr.zeros(2, 3), tr.zeros(4, 5)
    with pytest.raises(ValueError, match=r"input \(2, 3\), weight \(4, 5\)"):
        F.linear(x, w)
    with pytest.raises(ValueError, match=r"bias of shape \(3,\).*\(2, 4\)"):
        F.linear(x, tr.zeros(4, 3), tr.zeros(3))
    with pytest.raises(TypeError, match="input float32, weight float64"):
        F.linear(x, tr.zeros(4, 3, dtype=tr.float64))
    with pytest.raises(TypeError, match="argument 'weight' must be a Tensor"):
        F.linear(x, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="weight must have 1 or 2 dims"):
        F.linear(x, tr.zeros(1, 4, 3))


# ----------------------------------------------------------------------------- unbind, cumsum

@pytest.mark.parametrize("dim", [0, 1, -1])
def test_unbind_matches_torch(dim, device):
    values = _values((3, 4, 2))
    x, X = _both(values, device)
    ours, theirs = x.unbind(dim), X.unbind(dim)
    assert len(ours) == len(theirs) and tr.unbind(x, dim)[0].shape == tuple(theirs[0].shape)
    _same(tr.stack([p * (k + 1) for k, p in enumerate(ours)]), torch.stack([p * (k + 1) for k, p in enumerate(theirs)]),
          [x], [X], _values((len(ours),) + tuple(theirs[0].shape), seed=7))
    assert tr.gradgradcheck(lambda t: tr.stack(t.unbind(dim)) ** 2, x)


def test_unbind_refuses_a_0d_tensor_and_a_bad_dim():
    with pytest.raises(IndexError, match="no dimensions"):
        tr.tensor(1.0).unbind()
    with pytest.raises(IndexError, match=r"range of \[-2, 1\], but got 2"):
        tr.zeros(2, 3).unbind(2)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum_matches_torch(dim, device):
    x, X = _both(_values((3, 4)), device)
    _same(x.cumsum(dim), X.cumsum(dim), [x], [X], _values((3, 4), seed=8))
    assert tr.gradgradcheck(lambda t: tr.cumsum(t, dim) ** 2, x)


def test_cumsum_dtypes_as_torch():
    for values in ([1, 2, 3], [True, False, True]):
        for dtype in (None, tr.float64, tr.int32):
            ours = tr.tensor(values).cumsum(0, dtype=dtype)
            theirs = torch.tensor(values).cumsum(0, dtype=None if dtype is None else getattr(torch, str(np.dtype(dtype))))
            assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert tr.tensor(2.5).cumsum(0).item() == 2.5
    assert tr.tensor([1.0, 2.0]).cumsum(axis=0).tolist() == [1.0, 3.0]


# ----------------------------------------------------------------------------- remainder, fmod, %

@pytest.mark.parametrize("op", ["remainder", "fmod", "%", "r%"])
def test_remainder_and_fmod_match_torch(op, device):
    a, b = _values((3, 4), seed=9) * 2, _values((4,), seed=10) + 0.25
    x, X = _both(a, device)
    y, Y = _both(b, device)
    fn = {"remainder": lambda p, q: p.remainder(q), "fmod": lambda p, q: p.fmod(q), "%": lambda p, q: p % q,
          "r%": lambda p, q: (p * 0 + 7.5) % q}[op]
    _same(fn(x, y), fn(X, Y), [x, y], [X, Y], _values((3, 4), seed=11))
    rng = np.random.default_rng(12)  # away from the jumps, where finite differences hold
    x = tr.tensor(rng.uniform(0.1, 0.4, (3, 4)) + rng.integers(-3, 3, (3, 4)), dtype=tr.float64, device=device,
                  requires_grad=True)
    y = tr.tensor([1.0, -1.0, 1.0, -1.0], dtype=tr.float64, device=device, requires_grad=True)
    assert tr.gradcheck(fn, x, y)
    assert tr.gradgradcheck(fn, x, y)


@pytest.mark.parametrize("a,b", [([5, -5, 7, -7], [3, 3, -3, -3]), ([5.5, -5.5, 0.0, 3.0], [2.0, 2.0, -1.5, 0.0]),
                                 ([5, -5], 3), ([5, -5], -2.5), ([2.0, -3.0], 4)])
def test_remainder_values_and_dtypes_as_torch(a, b):
    default = torch.get_default_dtype()  # torch's default float is ours, float32, whatever other tests set
    torch.set_default_dtype(torch.float32)
    try:
        _remainder_values_and_dtypes(a, b)
    finally:
        torch.set_default_dtype(default)


def _remainder_values_and_dtypes(a, b):
    for name in ("remainder", "fmod"):
        x, y = tr.tensor(a), tr.tensor(b) if isinstance(b, list) else b
        ours = getattr(x, name)(y)
        theirs = getattr(torch.from_numpy(x.numpy()), name)(torch.from_numpy(y.numpy()) if isinstance(b, list) else b)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), name
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal((7 % tr.tensor([3, -3])).numpy(), (7 % torch.tensor([3, -3])).numpy())


def test_remainder_refuses_integer_zero_and_bools():
    with pytest.raises(RuntimeError, match="remainder: ZeroDivisionError"):
        tr.tensor([1, 2]) % 0
    with pytest.raises(RuntimeError, match="fmod.*ZeroDivisionError"):
        tr.tensor([1, 2]).fmod(tr.tensor([1, 0]))
    with pytest.raises(TypeError, match="remainder: not implemented for bool"):
        tr.tensor([True]) % tr.tensor([True])


# ----------------------------------------------------------------------------- selection and scattering by index

def _parity(fn, *arrays, integer_inputs=()):
    """fn(lib, *leaves) against torch: values (and indices), the gradients of a weighted sum of the
    floating outputs, and the gradients of the squared gradients (second order), all in float64."""
    results = {}
    for lib in (tr, torch):
        leaves = [lib.tensor(a, dtype=F64[lib], requires_grad=True) for a in arrays]
        out = fn(lib, *leaves)
        out = list(out) if isinstance(out, tuple) else [out]
        floating = [o for o in out if o.dtype in (tr.float64, torch.float64)]
        loss = sum((o * lib.tensor(_values(tuple(o.shape), seed=30 + k), dtype=F64[lib])).sum()
                   for k, o in enumerate(floating))
        wanting = [t for t in leaves if t.requires_grad]
        grads = lib.autograd.grad(loss, wanting, create_graph=True, allow_unused=True)
        used = [g for g in grads if g is not None and g.requires_grad]
        second = (lib.autograd.grad(sum((g * g).sum() for g in used), wanting, allow_unused=True) if used else
                  [None] * len(wanting))
        results[lib] = [np.asarray(o.detach().numpy() if lib is torch else o.numpy()) for o in out] + [
            None if g is None else (g.detach().numpy() if lib is torch else g.numpy()) for g in (*grads, *second)]
    for ours, theirs in zip(results[tr], results[torch], strict=True):
        if ours is None or theirs is None:  # no gradient: None, or zeros
            assert not np.any(ours) and not np.any(theirs)
        else:
            assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (ours, theirs)
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


F64 = {tr: tr.float64, torch: torch.float64}


def _index(lib, values):
    return lib.tensor(values, dtype=lib.int64)


@pytest.mark.parametrize("name", ["asin", "acos", "arcsin", "arccos"])
def test_asin_and_acos_match_torch(name):
    _parity(lambda lib, x: getattr(lib, name)(x) * getattr(x, name)(), np.tanh(_values((3, 4))))


def test_atan2_matches_torch_broadcasting_and_promoting():
    y, x = _values((3, 4)), _values((4,), seed=2)
    x[0] = 0.5  # away from the origin, where torch's second derivatives are NaN
    _parity(lambda lib, y, x: lib.atan2(y, x) + y.arctan2(x * 2), y, x)
    for lib in (tr, torch):  # at the origin the gradient is 0
        y, x = (lib.zeros(1, dtype=F64[lib], requires_grad=True) for _ in range(2))
        y.atan2(x).sum().backward()
        assert y.grad.item() == 0 and x.grad.item() == 0
    _parity(lambda lib, y: y.atan2(lib.tensor(-2.0, dtype=F64[lib])) + lib.arctan2(y, y * 0 - 1), _values((5,)))
    for lib in (tr, torch):  # integers give the default float
        assert lib.tensor([1, 2]).atan2(lib.tensor([3, -4])).dtype == lib.get_default_dtype()
    np.testing.assert_allclose(tr.tensor([1, 2]).atan2(tr.tensor([3, -4])).numpy(),
                               torch.tensor([1, 2]).atan2(torch.tensor([3, -4])).numpy(), rtol=1e-7)


def test_asin_acos_atan2_in_place_as_torch():
    def fn(lib, x, y):
        a, b, c = x * 0.25, x * 0.25, x * 1
        a.asin_(), b.acos_(), c.atan2_(y)
        return a + b + c
    _parity(fn, np.tanh(_values((3, 4))), _values((3, 4), seed=3) + 0.1)  # never atan2(0, 0)
    for lib in (tr, torch):
        with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
            lib.tensor([1, 0]).asin_()


@pytest.mark.parametrize("dim,index", [(0, [2, 0, 2]), (1, [3, 1]), (-1, [0]), (1, [])])
def test_index_add_copy_and_fill_match_torch(dim, index):
    base = _values((3, 4))
    source_shape = list(base.shape)
    source_shape[dim] = len(index)
    source = _values(tuple(source_shape), seed=4)

    def fn(lib, x, s, v):
        i = _index(lib, index)
        return (x.index_add(dim, i, s), lib.index_add(x, dim, i, s, alpha=-2.5), x.index_fill(dim, i, 1.5),
                x.index_fill(dim, i, v), lib.index_fill(x, dim, i, v * v))
    _parity(fn, base, source, np.array(0.5))
    # index_copy where no index repeats (torch leaves the winner of a repeat unspecified)
    unique = list(dict.fromkeys(index))
    source_shape[dim] = len(unique)
    source = _values(tuple(source_shape), seed=5)
    _parity(lambda lib, x, s: (x.index_copy(dim, _index(lib, unique), s), lib.index_copy(x * 2, dim, _index(lib, unique), s)),
            base, source)


def test_index_add_copy_fill_in_place_as_torch():
    def fn(lib, x, s):
        a, b, c = x * 1, x * 2, x * 3
        i = _index(lib, [2, 0])
        versions = [t._version for t in (a, b, c)]
        assert a.index_add_(1, i, s, alpha=2) is a
        b.index_copy_(1, i, s)
        c.index_fill_(1, _index(lib, [-1, 1, 3]), 7.0)
        assert [t._version for t in (a, b, c)] == [v + 1 for v in versions]
        return a, b, c
    _parity(fn, _values((3, 4)), _values((3, 2), seed=6))
    for lib in (tr, torch):
        x = lib.zeros(3, dtype=lib.int64)
        x.index_add_(0, lib.tensor([1, 1, 2]), lib.tensor([5, 6, 7]))
        assert x.tolist() == [0, 11, 7] and lib.zeros(()).index_fill(0, _index(lib, [0]), 2.0).item() == 2.0
        kept = lib.ones(3, dtype=F64[lib], requires_grad=True).exp()  # exp's backward reads its output
        kept.index_fill_(0, _index(lib, [1]), 0.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            kept.sum().backward()


def _ones(lib, *shape):
    return lib.ones(*shape, dtype=F64[lib])


INDEX_REFUSALS = [  # (lib, x, the index [0, 2], source) -> the call; what torch raises
    (lambda lib, x, i, s: x.index_add(1, i.float(), s), RuntimeError, r"index_add_\(\): Expected dtype int32/int64"),
    (lambda lib, x, i, s: x.index_add(1, _index(lib, [0, 5]), s), RuntimeError,
     "index 5 is out of bounds for dimension 1 with size 4"),
    (lambda lib, x, i, s: x.index_add(1, _index(lib, [0, -1]), s), RuntimeError, "index -1 is out of bounds"),
    (lambda lib, x, i, s: x.index_add(1, i, s.float()), RuntimeError, "must have the same scalar type"),
    (lambda lib, x, i, s: x.index_add(1, i, _ones(lib, 3, 3)), RuntimeError,
     r"Number of indices \(2\) should be equal to source.size\(dim\)"),
    (lambda lib, x, i, s: x.index_add(1, i, _ones(lib, 2, 2)), RuntimeError,
     "source tensor shape must match self tensor shape"),
    (lambda lib, x, i, s: x.index_add(1, i.view(2, 1), s), IndexError, "Index is supposed to be a vector"),
    (lambda lib, x, i, s: x.index_add(2, i, s), IndexError, "Dimension out of range"),
    (lambda lib, x, i, s: x.index_copy(1, _index(lib, [0, -1]), s), IndexError, "index -1 is out of bounds"),
    (lambda lib, x, i, s: x.index_copy(1, i.int(), s), RuntimeError, r"index_copy_\(\): Expected"),
    (lambda lib, x, i, s: x.index_fill(1, _index(lib, [5]), 1.0), IndexError, "index 5 is out of bounds"),
    (lambda lib, x, i, s: x.index_fill(1, i.int(), 1.0), IndexError, r"index_fill_\(\): Expected dtype int64"),
    (lambda lib, x, i, s: x.index_fill(1, i, _ones(lib, 2)), RuntimeError,
     "only supports a 0-dimensional value tensor"),
]


@pytest.mark.parametrize("lib", [tr, torch], ids=["tr", "torch"])
@pytest.mark.parametrize("k", range(len(INDEX_REFUSALS)))
def test_index_add_copy_fill_refuse_what_torch_refuses(lib, k):
    call, error, message = INDEX_REFUSALS[k]
    x = lib.zeros(3, 4, dtype=F64[lib])
    with pytest.raises(error, match=message):
        call(lib, x, _index(lib, [0, 2]), _ones(lib, 3, 2))
    assert not x.any()


SCATTER_INDEX = [[0, 1, 0, 0], [2, 2, 1, 0]]  # along dim 0 of a (3, 4) tensor: repeats, a row left alone


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_matches_torch(reduce, include_self):
    src = _values((2, 4), seed=7)
    base = _values((3, 4))
    if reduce in ("amax", "amin"):  # ties: self and src equal to the result share its gradient
        src[1, 1] = src[0, 1] = 9.0 if reduce == "amax" else -9.0
        base[0, 3] = src[0, 3] = src[1, 3] = 9.5 if reduce == "amax" else -9.5
    if reduce == "prod":
        src[0, 2] = 0.0  # a zero among the factors

    def fn(lib, x, s):
        return x.scatter_reduce(0, _index(lib, SCATTER_INDEX), s, reduce, include_self=include_self)
    _parity(fn, base, src)
    _parity(lambda lib, x, s: lib.scatter_reduce(x.t(), 1, _index(lib, SCATTER_INDEX).t(), s.t(), reduce,
                                                 include_self=include_self), base, src)


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
def test_scatter_reduce_of_integers_and_in_place_as_torch(reduce):
    results = []
    for lib in (tr, torch):
        x, s = lib.tensor([[5, -3, 7], [2, 8, -6]]), lib.tensor([[4, 9, -2], [3, 3, 3]])
        index = lib.tensor([[1, 0, 1], [1, 1, 1]])
        y = x.clone()
        assert y.scatter_reduce_(0, index, s, reduce, include_self=False) is y
        results.append([x.scatter_reduce(0, index, s, reduce).tolist(), y.tolist()])
    assert results[0] == results[1]
    for lib in (tr, torch):
        with pytest.raises(RuntimeError, match="reduce argument must be either sum, prod, mean, amax or amin"):
            lib.zeros(3).scatter_reduce(0, lib.tensor([0]), lib.ones(1), "maximum")


@pytest.mark.parametrize("name", ["cummax", "cummin"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cummax_and_cummin_match_torch(name, dim):
    values = np.round(_values((4, 5), seed=8))  # ties: the last of equal values gives the index, as torch
    _parity(lambda lib, x: getattr(lib, name)(x, dim), values)
    _parity(lambda lib, x: getattr(x * 2, name)(dim=dim).values, values)


def test_cummax_of_nans_integers_and_0d_as_torch():
    for values in ([1.0, float("nan"), 3.0, float("nan"), 0.0], [3, 1, 4, 1, 5, 9, 2, 6], 2.5):
        for name in ("cummax", "cummin"):
            ours, theirs = getattr(tr.tensor(values), name)(0), getattr(torch.tensor(values), name)(0)
            np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
            assert ours.indices.tolist() == theirs.indices.tolist() and ours.indices.dtype == tr.int64


@pytest.mark.parametrize("k,dim,keepdim", [(1, 1, False), (3, -1, True), (2, 0, False), (4, 0, True)])
def test_kthvalue_matches_torch(k, dim, keepdim):
    _parity(lambda lib, x: lib.kthvalue(x, k, dim, keepdim), _values((4, 5), seed=9))
    _parity(lambda lib, x: x.kthvalue(k, dim=dim, keepdim=keepdim)[0] ** 2, _values((4, 5), seed=10))


def test_kthvalue_refuses_what_torch_refuses():
    for lib in (tr, torch):
        x = lib.zeros(2, 3)
        for k in (0, 4):
            with pytest.raises(RuntimeError, match="selected number k out of range for dimension 1"):
                x.kthvalue(k)
        with pytest.raises(IndexError, match="Dimension out of range"):
            x.kthvalue(1, 2)
        with pytest.raises(IndexError, match="Expected reduction dim 1 to have non-zero size"):
            lib.zeros(2, 0).kthvalue(1)
        assert lib.tensor(3.5).kthvalue(1).values.item() == 3.5
