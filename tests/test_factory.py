"""Tensor constructors and dtypes against torch: each idiom run with both libraries, results compared."""
import numpy as np
import pytest

import tinygrad_rnn as tr

from .conftest import to_np

DTYPE_NAMES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool",
               "half", "float", "double", "short", "int", "long"]

# idiom -> a function of the library (torch or tinygrad_rnn) that builds a tensor
DETERMINISTIC = {
    "tensor(float list)": lambda lib: lib.tensor([[1.5, 2.0], [3.0, -4.25]]),
    "tensor(int list)": lambda lib: lib.tensor([1, 2, 3]),
    "tensor(bool list)": lambda lib: lib.tensor([True, False]),
    "tensor(scalar)": lambda lib: lib.tensor(3.5),
    "tensor(int scalar)": lambda lib: lib.tensor(7),
    "tensor(float64 array)": lambda lib: lib.tensor(np.arange(6.0).reshape(2, 3)),
    "tensor(int32 array)": lambda lib: lib.tensor(np.arange(4, dtype=np.int32)),
    "tensor(list, dtype=float64)": lambda lib: lib.tensor([1, 2], dtype=lib.float64),
    "tensor(list, dtype=long)": lambda lib: lib.tensor([1.7, -2.2], dtype=lib.long),
    "tensor(nested empty)": lambda lib: lib.tensor([]),
    "tensor(list of float64 0-d tensors)": lambda lib: lib.tensor([lib.tensor(0.1, dtype=lib.float64), lib.tensor(2.0)]),
    "tensor(list of int32 0-d tensors and ints)": lambda lib: lib.tensor([lib.tensor(3, dtype=lib.int32), 4]),
    "tensor(list of np.float64)": lambda lib: lib.tensor([np.float64(0.1), np.float64(1 / 3)]),
    "tensor(nested np.float64 and float)": lambda lib: lib.tensor([[np.float64(0.1)], [0.2]]),
    "tensor(np.float16 and float)": lambda lib: lib.tensor([np.float16(0.5), 1.5]),
    "tensor(bool and np.int16)": lambda lib: lib.tensor([True, np.int16(3)]),
    "tensor(np.int8 and float)": lambda lib: lib.tensor([np.int8(1), 2.5]),
    "from_numpy(float64)": lambda lib: lib.from_numpy(np.linspace(0, 1, 5)),
    "from_numpy(uint8)": lambda lib: lib.from_numpy(np.arange(3, dtype=np.uint8)),
    "zeros(2, 3)": lambda lib: lib.zeros(2, 3),
    "zeros((2, 3))": lambda lib: lib.zeros((2, 3)),
    "zeros([4])": lambda lib: lib.zeros([4]),
    "zeros(size=(1, 2))": lambda lib: lib.zeros(size=(1, 2)),
    "zeros()": lambda lib: lib.zeros(()),
    "ones(3, dtype=int64)": lambda lib: lib.ones(3, dtype=lib.int64),
    "ones(2, 2, dtype=bool)": lambda lib: lib.ones(2, 2, dtype=lib.bool),
    "empty(2, 3).shape": lambda lib: lib.empty(2, 3).fill_(0) if lib.__name__ == "torch" else lib.zeros(2, 3),
    "full((2, 2), 1.5)": lambda lib: lib.full((2, 2), 1.5),
    "full((3,), 7)": lambda lib: lib.full((3,), 7),
    "full((2,), True)": lambda lib: lib.full((2,), True),
    "full((2,), 2, dtype=float64)": lambda lib: lib.full((2,), 2, dtype=lib.float64),
    "zeros_like(int)": lambda lib: lib.zeros_like(lib.tensor([1, 2])),
    "ones_like(float64)": lambda lib: lib.ones_like(lib.tensor(np.zeros((2, 2)))),
    "ones_like(dtype=)": lambda lib: lib.ones_like(lib.tensor([1, 2]), dtype=lib.float32),
    "full_like": lambda lib: lib.full_like(lib.tensor(np.zeros(3)), 2.5),
    "empty_like.shape": lambda lib: lib.zeros_like(lib.empty_like(lib.tensor([[1, 2]]))),
    "arange(5)": lambda lib: lib.arange(5),
    "arange(1, 4)": lambda lib: lib.arange(1, 4),
    "arange(0, 10, 3)": lambda lib: lib.arange(0, 10, 3),
    "arange(5, 0, -2)": lambda lib: lib.arange(5, 0, -2),
    "arange(0.0, 1.0, 0.1)": lambda lib: lib.arange(0.0, 1.0, 0.1),
    "arange(2.5)": lambda lib: lib.arange(2.5),
    "arange(1, 2, 0.25, dtype=float64)": lambda lib: lib.arange(1, 2, 0.25, dtype=lib.float64),
    "arange(end=4)": lambda lib: lib.arange(end=4),
    "arange(3, dtype=float32)": lambda lib: lib.arange(3, dtype=lib.float32),
    "linspace(0, 1, 5)": lambda lib: lib.linspace(0, 1, 5),
    "linspace(-3, 7, 11, float64)": lambda lib: lib.linspace(-3, 7, 11, dtype=lib.float64),
    "linspace(0.1, 0.7, 7, float64)": lambda lib: lib.linspace(0.1, 0.7, 7, dtype=lib.float64),
    "linspace(2, 3, 1)": lambda lib: lib.linspace(2, 3, 1),
    "linspace(2, 3, 0)": lambda lib: lib.linspace(2, 3, 0),
    "linspace(0, 10, 4, int64)": lambda lib: lib.linspace(0, 10, 4, dtype=lib.int64),
}


def same_dtype(torch, ours, theirs):
    return np.dtype(str(theirs.dtype).replace("torch.", "")) == ours.dtype


@pytest.mark.parametrize("idiom", list(DETERMINISTIC))
def test_deterministic_factories_match_torch(torch, idiom):
    torch.set_default_dtype(torch.float32)  # the default both libraries start from
    try:
        theirs = DETERMINISTIC[idiom](torch)
        ours = DETERMINISTIC[idiom](tr)
    finally:
        torch.set_default_dtype(torch.float64)
    assert isinstance(ours, tr.Tensor)
    assert ours.shape == tuple(theirs.shape)
    assert same_dtype(torch, ours, theirs), f"{idiom}: {ours.dtype} vs {theirs.dtype}"
    np.testing.assert_array_equal(to_np(ours), theirs.numpy())
    assert ours.requires_grad is False and ours.is_leaf


RANDOM = {
    "rand(2, 3)": (lambda lib: lib.rand(2, 3), (0, 1)),
    "rand((4,), dtype=float64)": (lambda lib: lib.rand((4,), dtype=lib.float64), (0, 1)),
    "randn(3, 2)": (lambda lib: lib.randn(3, 2), None),
    "randn(size=(5,))": (lambda lib: lib.randn(size=(5,)), None),
    "randint(10, (3, 4))": (lambda lib: lib.randint(10, (3, 4)), (0, 10)),
    "randint(3, 7, (50,))": (lambda lib: lib.randint(3, 7, (50,)), (3, 7)),
    "randint(low=-2, high=2, size=(6,))": (lambda lib: lib.randint(low=-2, high=2, size=(6,)), (-2, 2)),
    "randint(5, size=(2,))": (lambda lib: lib.randint(5, size=(2,)), (0, 5)),
    "randint(0, 3, (4,), dtype=int32)": (lambda lib: lib.randint(0, 3, (4,), dtype=lib.int32), (0, 3)),
    "rand_like": (lambda lib: lib.rand_like(lib.zeros(2, 2)), (0, 1)),
    "randn_like(float64)": (lambda lib: lib.randn_like(lib.zeros(3, dtype=lib.float64)), None),
}


@pytest.mark.parametrize("idiom", list(RANDOM))
def test_random_factories_match_torch_in_shape_dtype_and_range(torch, idiom):
    build, bounds = RANDOM[idiom]
    torch.set_default_dtype(torch.float32)
    try:
        theirs = build(torch)
        ours = build(tr)
    finally:
        torch.set_default_dtype(torch.float64)
    assert ours.shape == tuple(theirs.shape) and same_dtype(torch, ours, theirs)
    if bounds is not None:
        values = to_np(ours)
        assert values.min() >= bounds[0] and values.max() < bounds[1]


def test_manual_seed_repeats_every_random_factory():
    def draw():
        return [to_np(t) for t in (tr.rand(3), tr.randn(2, 2), tr.randint(0, 100, (5,)))]
    tr.manual_seed(123)
    first = draw()
    tr.manual_seed(123)
    for a, b in zip(first, draw()):
        np.testing.assert_array_equal(a, b)
    tr.manual_seed(-1)  # torch accepts negative seeds
    with pytest.raises(TypeError, match="seed must be an integer"):
        tr.manual_seed(1.5)


def test_from_numpy_shares_memory_both_ways(torch):
    array = np.zeros(4)
    ours, theirs = tr.from_numpy(array), torch.from_numpy(array.copy())
    assert ours.dtype == tr.float64 and same_dtype(torch, ours, theirs)
    array[1] = 5.0
    assert ours.numpy()[1] == 5.0
    ours.array[2] = 7.0
    assert array[2] == 7.0
    with pytest.raises(TypeError, match=r"expected np.ndarray \(got list\)"):
        tr.from_numpy([1.0, 2.0])
    with pytest.raises(TypeError, match="can't convert np.ndarray of type object"):
        tr.from_numpy(np.array([None]))


def test_tensor_always_copies_and_makes_a_leaf():
    array = np.ones(3, dtype=np.float32)
    t = tr.tensor(array)
    array[0] = 9.0
    assert t.numpy()[0] == 1.0
    x = tr.tensor([1.0, 2.0], requires_grad=True)
    y = tr.tensor(x * 2)  # like torch.tensor(y): a new leaf, no graph
    assert y.is_leaf and not y.requires_grad and y.tolist() == [2.0, 4.0]
    assert tr.tensor(x, dtype=tr.float64).dtype == tr.float64


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_dtype_names_are_torchs_and_compare_with_tensor_dtypes(torch, name):
    ours = getattr(tr, name)
    theirs = getattr(torch, name)
    t = tr.zeros(2, dtype=ours)
    assert t.dtype == ours and t.dtype is ours
    assert same_dtype(torch, t, torch.zeros(2, dtype=theirs))
    assert np.zeros(1, dtype=ours).dtype == ours  # NumPy takes them as they are
    assert ours == str(theirs).replace("torch.", "") or name in ("half", "float", "double", "short", "int", "long")


def test_dtype_names_do_not_leak_over_builtins():
    assert not {"float", "int", "bool"} & set(tr.__all__)  # what `from tinygrad_rnn import *` takes
    assert tr.float is tr.float32 and tr.long is tr.int64 and tr.double is tr.float64


def test_requires_grad_and_device_arguments():
    assert tr.zeros(2, requires_grad=True).requires_grad
    assert tr.randn(2, device=tr.device("cpu")).device == "cpu"
    assert tr.linspace(0, 1, 3, requires_grad=True).requires_grad
    assert tr.arange(3.0, requires_grad=True).requires_grad
    with pytest.raises(TypeError, match="only floating point tensors can require gradients"):
        tr.arange(3, requires_grad=True)


@pytest.mark.parametrize("call,error,message", [
    (lambda: tr.zeros(-1, 2), ValueError, "negative dimension -1"),
    (lambda: tr.ones(2.5), TypeError, "size must be a tuple of ints"),
    (lambda: tr.zeros((2,), size=(2,)), TypeError, "not both"),
    (lambda: tr.randint(5, 5, (2,)), ValueError, "low < high"),
    (lambda: tr.randint(0, 3), TypeError, "missing the size"),
    (lambda: tr.randint(0.5, 3, (2,)), TypeError, "low must be an integer"),
    (lambda: tr.rand(2, dtype=tr.int64), TypeError, "floating point"),
    (lambda: tr.arange(0, 5, 0), ValueError, "step must be nonzero"),
    (lambda: tr.arange(5, 0, 1), ValueError, "inconsistent with step sign"),
    (lambda: tr.arange(float("nan")), ValueError, "finite"),
    (lambda: tr.linspace(0, 1, -1), ValueError, "non-negative"),
    (lambda: tr.tensor([[1, 2], [3]]), ValueError, "rectangular"),
    (lambda: tr.tensor(["a"]), TypeError, "cannot make a tensor"),
    (lambda: tr.zeros(2, dtype="nope"), TypeError, "not a data type"),
    (lambda: tr.zeros(2, dtype=np.complex64), TypeError, "booleans, integers or floats"),
    (lambda: tr.zeros_like(np.zeros(2)), TypeError, "input must be a Tensor"),
    (lambda: tr.zeros(2, device="tpu"), tr.DeviceError, "unknown device"),
    (lambda: tr.multinomial(np.ones(3), 1), TypeError, "input must be a Tensor"),
    (lambda: tr.multinomial(tr.ones(2, 2, 2), 1), ValueError, r"1-D or 2-D.*\(2, 2, 2\)"),
    (lambda: tr.multinomial(tr.tensor([1, 2]), 1), ValueError, "floating point.*int64"),
    (lambda: tr.multinomial(tr.ones(3), 0), ValueError, "num_samples must be a positive integer"),
    (lambda: tr.multinomial(tr.tensor([1.0, -1.0]), 1), ValueError, "non-negative"),
    (lambda: tr.multinomial(tr.tensor([1.0, float("nan")]), 1), ValueError, "finite"),
    (lambda: tr.multinomial(tr.zeros(2, 3), 1), ValueError, "sums to zero"),
    (lambda: tr.multinomial(tr.tensor([1.0, 0.0, 1.0]), 3), ValueError, "without replacement.*2 non-zero"),
    (lambda: tr.multinomial(tr.ones(3), 1, generator=object()), TypeError, "generator must be a tr.Generator"),
])
def test_bad_arguments_get_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_multinomial_draws_by_weight_and_repeats_with_the_seed():
    weights = tr.tensor([[1.0, 0.0, 3.0], [0.0, 1.0, 1.0]])
    tr.manual_seed(5)
    drawn = tr.multinomial(weights, 4000, replacement=True)
    assert drawn.dtype == tr.int64 and drawn.shape == (2, 4000)
    counts = [np.bincount(row, minlength=3) / 4000 for row in drawn.numpy()]
    np.testing.assert_allclose(counts, [[0.25, 0.0, 0.75], [0.0, 0.5, 0.5]], atol=0.03)
    tr.manual_seed(5)
    assert tr.multinomial(weights, 4000, replacement=True).equal(drawn)
    without = tr.multinomial(tr.ones(6), 6).numpy()
    assert sorted(without) == list(range(6))  # without replacement: each index once


def test_factories_on_the_gpu(device):
    for t in (tr.tensor([1.0, 2.0], device=device), tr.zeros(2, device=tr.device(device)),
              tr.randint(0, 4, (3,), device=device), tr.linspace(0, 1, 3, device=device),
              tr.arange(4, device=device), tr.rand(2, device=device), tr.full((2,), 3, device=device)):
        assert t.device == device
    on_device = tr.tensor([1, 2], device=device)
    assert tr.tensor(on_device).device == device and tr.zeros_like(on_device).device == device
    assert tr.zeros_like(on_device, device="cpu").device == "cpu"
