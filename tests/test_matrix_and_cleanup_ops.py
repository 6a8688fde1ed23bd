"""eye, as_tensor, trace, addmm, lerp, nan_to_num and neg against torch in float64: values, gradients (and
gradients of gradients through the graph), torch's corner cases."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.nn.parity import assert_close, pair


def test_eye_matches_torch(torch):
    for args in [(3,), (2, 4), (4, 2), (0,)]:
        assert_close(tr.eye(*args), torch.eye(*args), f"eye{args}")
    assert tr.eye(2, dtype=tr.int64).dtype == tr.int64 and tr.eye(2).dtype == tr.float32
    assert tr.eye(2, requires_grad=True).requires_grad
    with pytest.raises(ValueError):
        tr.eye(-1)


def test_as_tensor_shares_memory_where_torch_does():
    array = np.zeros(3)
    shared = tr.as_tensor(array)
    array[0] = 5.0
    assert shared.dtype == tr.float64 and shared.numpy()[0] == 5.0      # a NumPy array is wrapped
    copied = tr.as_tensor(array, dtype=tr.float32)
    array[1] = 7.0
    assert copied.numpy()[1] == 0.0                                    # another dtype is a copy
    t = tr.ones(2)
    assert tr.as_tensor(t) is t and tr.as_tensor(t, dtype=tr.float64).dtype == tr.float64
    assert tr.as_tensor([1.0, 2.0]).dtype == tr.float32 and tr.as_tensor([1, 2]).dtype == tr.int64


IDIOMS = {
    "trace": (lambda lib, a, b: a.trace(), (3, 3)),
    "trace of a wide matrix": (lambda lib, a, b: lib.trace(a[:2]), (3, 3)),
    "addmm": (lambda lib, a, b: lib.addmm(a, b, b.T), (3, 3)),
    "addmm beta alpha": (lambda lib, a, b: a.addmm(b, b.T, beta=0.5, alpha=-2.0), (3, 3)),
    "lerp number near start": (lambda lib, a, b: a.lerp(b, 0.25), (2, 3)),
    "lerp number near end": (lambda lib, a, b: lib.lerp(a, b, 0.75), (2, 3)),
    "lerp tensor weight": (lambda lib, a, b: a.lerp(b, (b * 0.3).sigmoid()), (2, 3)),
    "neg": (lambda lib, a, b: lib.neg(a) * b.negative(), (2, 3)),
}


def run_both(torch, rng, idiom, fn, shape):
    """fn on two random float64 inputs with each library, the values compared; the inputs, the results and
    weights for a loss of the results' shape."""
    (a, ta), (b, tb) = pair(torch, rng.standard_normal(shape), "cpu"), pair(torch, rng.standard_normal(shape), "cpu")
    y, ty = fn(tr, a, b), fn(torch, ta, tb)
    assert_close(y, ty, idiom)
    return (a, ta), (b, tb), y, ty, rng.standard_normal(ty.shape)


@pytest.mark.parametrize("idiom", list(IDIOMS))
def test_ops_match_torch_with_gradients_of_gradients(torch, rng, idiom):
    (a, ta), (b, tb), y, ty, weights = run_both(torch, rng, idiom, *IDIOMS[idiom])
    grads = tr.autograd.grad((y * tr.tensor(weights)).sum(), [a, b], create_graph=True, allow_unused=True)
    their_grads = torch.autograd.grad((ty * torch.tensor(weights)).sum(), [ta, tb], create_graph=True,
                                      allow_unused=True)
    for mine, theirs, name in zip(grads, their_grads, "ab"):
        assert (mine is None) == (theirs is None), f"{idiom}: gradient of {name}"
        if theirs is not None:
            assert_close(mine, theirs, f"{idiom}: gradient of {name}")
    their_used = [g for g in their_grads if g is not None and g.requires_grad]
    if not their_used:   # linear in its inputs: constant gradients, no graph on either side
        assert not any(g is not None and g.requires_grad for g in grads)
        return
    second = tr.autograd.grad(sum((g * g).sum() for g in grads if g is not None and g.requires_grad), [a, b],
                              allow_unused=True)
    their_second = torch.autograd.grad(sum((g * g).sum() for g in their_used), [ta, tb], allow_unused=True)
    for mine, theirs, name in zip(second, their_second, "ab"):
        if theirs is None:
            assert mine is None or not np.any(mine.numpy()), f"{idiom}: second gradient of {name}"
        else:
            assert_close(mine, theirs, f"{idiom}: second gradient of {name}")


def test_addmm_with_beta_zero_does_not_read_self(torch):
    nan = np.full((2, 2), np.nan)
    eye = np.eye(2)
    assert_close(tr.addmm(tr.tensor(nan), tr.tensor(eye), tr.tensor(eye), beta=0),
                 torch.addmm(torch.tensor(nan), torch.tensor(eye), torch.tensor(eye), beta=0), "beta=0")


@pytest.mark.parametrize("options", [{}, {"nan": 1.5}, {"posinf": 9.0, "neginf": -9.0}])
def test_nan_to_num_matches_torch_and_gives_replaced_values_no_gradient(torch, options):
    values = np.array([1.0, np.nan, np.inf, -np.inf, -2.0])
    x, t = pair(torch, values, "cpu")
    y, ty = x.nan_to_num(**options), torch.nan_to_num(t, **options)
    assert_close(y, ty, f"nan_to_num {options}")
    weights = np.array([1.0, 0.5, 0.25, 0.5, 1.0])   # the largest double, kept finite in the sum
    (y * tr.tensor(weights)).sum().backward()
    (ty * torch.tensor(weights)).sum().backward()
    assert_close(x.grad, t.grad, "gradient")
    assert tr.nan_to_num(tr.tensor([1, 2])).tolist() == [1, 2]


MORE = {
    "view_as": (lambda lib, a, b: a.view_as(b.reshape(6, 2)) * 2, (3, 4)),
    "reshape_as": (lambda lib, a, b: a.reshape_as(b.T) * b.T, (3, 4)),
    "movedim": (lambda lib, a, b: lib.movedim(a.reshape(2, 3, 2), 0, -1) * 2, (3, 4)),
    "movedim lists": (lambda lib, a, b: a.reshape(2, 3, 2).movedim([0, 2], [2, 0]) * 2, (3, 4)),
    "moveaxis": (lambda lib, a, b: lib.moveaxis(a, 1, 0) * b.T, (3, 4)),
    "swapdims": (lambda lib, a, b: a.swapdims(0, 1) * b.T, (3, 4)),
    "addcmul": (lambda lib, a, b: lib.addcmul(a, b, a * b, value=0.5), (3, 4)),
    "addcdiv": (lambda lib, a, b: a.addcdiv(b, a * a + 1, value=-2), (3, 4)),
    "log2": (lambda lib, a, b: (a * a + 0.5).log2() * b, (3, 4)),
    "log10": (lambda lib, a, b: lib.log10(a * a + 0.5) * b, (3, 4)),
    "exp2": (lambda lib, a, b: a.exp2() * b, (3, 4)),
    "sinh": (lambda lib, a, b: a.sinh() * b, (3, 4)),
    "cosh": (lambda lib, a, b: lib.cosh(a) * b, (3, 4)),
    "tan": (lambda lib, a, b: (a * 0.5).tan() * b, (3, 4)),
    "logit": (lambda lib, a, b: a.sigmoid().logit() * b, (3, 4)),
    "logit eps": (lambda lib, a, b: (a * 3).sigmoid().logit(eps=0.2) * b, (3, 4)),
    "nansum": (lambda lib, a, b: lib.where(a > 0.5, a * 0 + float("nan"), a).nansum(1) * b[:, 0], (3, 4)),
    "nanmean": (lambda lib, a, b: lib.where(a > 0.5, a * 0 + float("nan"), a).nanmean() * b, (3, 4)),
    "diff": (lambda lib, a, b: a.diff() * b[:, :3], (3, 4)),
    "diff n=2 dim 0 prepend": (lambda lib, a, b: lib.diff(a, 2, 0, prepend=b) * 2, (3, 4)),
    "sigmoid_": (lambda lib, a, b: (a * 1).sigmoid_() * b, (3, 4)),
    "tanh_": (lambda lib, a, b: (a * 1).tanh_() * b, (3, 4)),
    "relu_": (lambda lib, a, b: (a * 1).relu_() * b, (3, 4)),
}


@pytest.mark.parametrize("idiom", list(MORE))
def test_more_methods_match_torch(torch, rng, idiom):
    (a, ta), (b, tb), y, ty, weights = run_both(torch, rng, idiom, *MORE[idiom])
    (y * tr.tensor(weights)).sum().backward()
    (ty * torch.tensor(weights)).sum().backward()
    for mine, theirs, name in ((a, ta, "a"), (b, tb, "b")):
        if theirs.grad is None:
            assert mine.grad is None or not np.any(mine.grad.numpy()), f"{idiom}: gradient of {name}"
        else:
            assert_close(mine.grad, theirs.grad, f"{idiom}: gradient of {name}")


def test_dtype_questions_and_small_casts_match_torch(torch):
    for values in (np.array([1.5, -2.0], np.float32), np.array([1, -2]), np.array([True, False])):
        mine, theirs = tr.tensor(values), torch.tensor(values)
        assert (mine.is_floating_point(), mine.is_complex(), mine.is_signed(), mine.element_size(), mine.itemsize,
                mine.nbytes) == (theirs.is_floating_point(), theirs.is_complex(), theirs.is_signed(),
                                 theirs.element_size(), theirs.itemsize, theirs.nbytes)
        assert tr.is_floating_point(mine) == torch.is_floating_point(theirs)
        for cast in ("short", "char", "byte"):
            assert getattr(mine, cast)().tolist() == getattr(theirs, cast)().tolist()
            assert str(getattr(mine, cast)().dtype) == str(getattr(theirs, cast)().dtype).replace("torch.", "")
    counts = tr.tensor([[0, 1, 2], [0, 0, 3]])
    assert tr.count_nonzero(counts).item() == 3 and counts.count_nonzero(dim=1).tolist() == [2, 1]
    with pytest.raises(ValueError, match="should contain the same number of dims"):
        tr.ones(2, 3).movedim([0, 1], [0])
