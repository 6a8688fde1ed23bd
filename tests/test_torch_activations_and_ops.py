"""Ops a port from PyTorch reaches for: the activations of torch.nn.functional and their modules,
F.linear, unbind, cumsum, remainder / fmod / %, log1p, expm1, erf. Each against torch in float64
(values and gradients), gradchecked and gradgradchecked, and refusing bad input by name."""
import numpy as np
import pytest
import torch
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
