"""F.one_hot, F.pad, F.normalize, F.layer_norm and F.embedding against torch.nn.functional in float64."""
import numpy as np
import pytest

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F

X = np.random.default_rng(5).standard_normal((2, 3, 4))
X[0, 1] = 0.0  # a row of zeros: normalize's eps and gradient there


def both(torch, fn, array=X):
    """fn(lib, F, x) with each library on the same float64 values: (value, gradient of a weighted sum)."""
    weights = None
    results = []
    for lib, functional in ((tr, F), (torch, torch.nn.functional)):
        x = lib.tensor(array, dtype=lib.float64, requires_grad=True)
        y = fn(lib, functional, x)
        if weights is None:
            weights = np.random.default_rng(1).standard_normal(tuple(y.shape))
        (y * lib.tensor(weights, dtype=lib.float64)).sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy()))
    (ours, our_grad), (theirs, their_grad) = results
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(our_grad, their_grad, rtol=1e-12, atol=1e-12)


DIFFERENTIABLE = {
    "pad constant": lambda lib, F, x: F.pad(x, (1, 2)),
    "pad constant value, two dims": lambda lib, F, x: F.pad(x, (0, 1, 2, 0), value=-1.5),
    "pad negative crops": lambda lib, F, x: F.pad(x, (-1, 2, 1, -2)),
    "pad all dims": lambda lib, F, x: F.pad(x, (1, 1, 0, 1, 1, 0)),
    "pad reflect": lambda lib, F, x: F.pad(x, (3, 2), mode="reflect"),
    "pad reflect 2-D": lambda lib, F, x: F.pad(x, (1, 2, 2, 1), mode="reflect"),
    "pad replicate": lambda lib, F, x: F.pad(x, (2, 3, 1, 0), mode="replicate"),
    "pad circular": lambda lib, F, x: F.pad(x, (2, 4), mode="circular"),
    "normalize": lambda lib, F, x: F.normalize(x),
    "normalize p=1 dim=-1": lambda lib, F, x: F.normalize(x, p=1.0, dim=-1),
    "normalize eps": lambda lib, F, x: F.normalize(x * 1e-3, dim=2, eps=1e-2),
    "layer_norm": lambda lib, F, x: F.layer_norm(x, (4,)),
    "layer_norm two dims, affine": lambda lib, F, x: F.layer_norm(
        x, [3, 4], lib.tensor(X[0] + 1, dtype=lib.float64), lib.tensor(X[1], dtype=lib.float64), eps=1e-3),
    "embedding": lambda lib, F, x: F.embedding(lib.tensor([[0, 2], [2, 1]]), x[0]),
    "embedding padding_idx": lambda lib, F, x: F.embedding(lib.tensor([[0, 2], [2, 1]]), x[1], padding_idx=-1),
}


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
def test_matches_torch(name, torch):
    both(torch, DIFFERENTIABLE[name])


# the padding row's gradient is 0 by design (torch's), not the derivative
@pytest.mark.parametrize("name", sorted(set(DIFFERENTIABLE) - {"embedding padding_idx"}))
def test_gradcheck_and_gradgradcheck(name):
    def f(x):
        return DIFFERENTIABLE[name](tr, F, x)
    x = tr.tensor(X + 0.1, dtype=tr.float64, requires_grad=True)  # no exact zero rows: normalize is smooth
    assert tr.gradcheck(f, x)
    assert tr.gradgradcheck(f, x)


def test_layer_norm_is_what_the_module_computes():
    norm = tr.nn.LayerNorm(4, dtype=tr.float64)
    with tr.no_grad():
        norm.weight.copy_(tr.tensor(X[0, 0]))
    x = tr.tensor(X)
    np.testing.assert_array_equal(norm(x).detach().numpy(),
                                  F.layer_norm(x, (4,), norm.weight, norm.bias).detach().numpy())


@pytest.mark.parametrize("num_classes", [-1, 6])
def test_one_hot_matches_torch(torch, num_classes):
    labels = np.array([[0, 3, 1], [4, 4, 2]])
    ours = F.one_hot(tr.tensor(labels), num_classes)
    theirs = torch.nn.functional.one_hot(torch.tensor(labels), num_classes)
    assert ours.dtype == np.int64 and not ours.requires_grad
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_integer_pad_keeps_its_dtype(torch):
    a = np.arange(6).reshape(2, 3)
    ours, theirs = F.pad(tr.tensor(a), (1, 1), value=7), torch.nn.functional.pad(torch.tensor(a), (1, 1), value=7)
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_bad_input_is_refused_by_name():
    with pytest.raises(TypeError, match="one_hot is only applicable to index tensor of type LongTensor"):
        F.one_hot(tr.tensor([0.0, 1.0]))
    with pytest.raises(RuntimeError, match="class values must be smaller than num_classes \\(3\\)"):
        F.one_hot(tr.tensor([0, 3]), 3)
    with pytest.raises(RuntimeError, match="class values must be non-negative"):
        F.one_hot(tr.tensor([0, -1]))
    with pytest.raises(RuntimeError, match="can not infer total number of classes from empty tensor"):
        F.one_hot(tr.tensor(np.zeros(0, dtype=np.int64)))
    x = tr.tensor(X)
    with pytest.raises(ValueError, match="pad: padding length must be even"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match="pad: mode must be one of"):
        F.pad(x, (1, 1), mode="mirror")
    with pytest.raises(ValueError, match="padding size should be less than the corresponding input dimension"):
        F.pad(x, (4, 0), mode="reflect")
    with pytest.raises(ValueError, match="padding mode 'replicate' doesn't take in value argument"):
        F.pad(x, (1, 1), mode="replicate", value=2.0)
    with pytest.raises(TypeError, match="normalize: only floating point input"):
        F.normalize(tr.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"layer_norm: given normalized_shape=\[3\], expected input with shape "
                                         r"\[\*, 3\], but got input of size \[2, 3, 4\]"):
        F.layer_norm(x, 3)
    with pytest.raises(ValueError, match=r"layer_norm: weight of shape \(3,\) must have normalized_shape \(4,\)"):
        F.layer_norm(x, 4, weight=tr.ones(3))
    with pytest.raises(IndexError, match="Embedding: index out of range"):
        F.embedding(tr.tensor([5]), x[0])
    with pytest.raises(NotImplementedError, match="embedding: argument 'sparse' is not supported"):
        F.embedding(tr.tensor([0]), x[0], sparse=True)
