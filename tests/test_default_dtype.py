"""tr.set_default_dtype / tr.get_default_dtype: factories, Python floats and new layers follow it, as in torch."""
import numpy as np
import pytest

import tinygrad_rnn as tr


@pytest.fixture
def float64_default(torch):
    """Both libraries with float64 as the default float for one test, float32 again after it."""
    tr.set_default_dtype(tr.float64)
    torch.set_default_dtype(torch.float64)
    yield torch
    tr.set_default_dtype(tr.float32)
    torch.set_default_dtype(torch.float64)  # what the torch fixture sets for every parity test


def dtype_name(dtype):
    return str(dtype).removeprefix("torch.")


MADE = {
    "tensor of floats": lambda lib: lib.tensor([1.5, 2.0]),
    "tensor of a float": lambda lib: lib.tensor(0.5),
    "tensor of ints stays int64": lambda lib: lib.tensor([1, 2]),
    "tensor of a float32 array keeps it": lambda lib: lib.tensor(np.zeros(2, np.float32)),
    "zeros": lambda lib: lib.zeros(2, 3),
    "ones": lambda lib: lib.ones(2),
    "empty": lambda lib: lib.empty(2),
    "full with a float": lambda lib: lib.full((2,), 1.5),
    "full with an int": lambda lib: lib.full((2,), 1),
    "randn": lambda lib: lib.randn(2),
    "rand": lambda lib: lib.rand(2),
    "arange of floats": lambda lib: lib.arange(0, 1, 0.25),
    "linspace": lambda lib: lib.linspace(0, 1, 5),
    "int tensor times a float": lambda lib: lib.tensor([1, 2]) * 1.5,
    "int tensor divided": lambda lib: lib.tensor([1, 2]) / 2,
    "Linear weight": lambda lib: lib.nn.Linear(2, 3).weight,
    "LSTM weight": lambda lib: lib.nn.LSTM(2, 3).weight_hh_l0,
    "Embedding weight": lambda lib: lib.nn.Embedding(4, 3).weight,
}


@pytest.mark.parametrize("name", MADE)
def test_made_tensors_follow_the_default_dtype(float64_default, name):
    torch = float64_default
    for default in ("float64", "float32"):
        tr.set_default_dtype(getattr(tr, default))
        torch.set_default_dtype(getattr(torch, default))
        assert tr.get_default_dtype() == getattr(tr, default)
        assert dtype_name(MADE[name](tr).dtype) == dtype_name(MADE[name](torch).dtype), default


def test_the_default_is_float32_and_only_floats_are_accepted():
    assert tr.get_default_dtype() == tr.float32
    with pytest.raises(TypeError, match="only floating-point types"):
        tr.set_default_dtype(tr.int64)
    assert tr.get_default_dtype() == tr.float32


def test_repr_names_the_dtype_unless_it_is_the_default(float64_default):
    assert repr(tr.tensor([1.5])) == "tensor([1.5])"
    assert repr(tr.tensor([1.5], dtype=tr.float32)) == "tensor([1.5], dtype=float32)"
    assert repr(tr.tensor([1, 2])) == "tensor([1, 2])" and "dtype" not in repr(tr.tensor([True]))
    assert repr(tr.tensor([1], dtype=tr.int32)) == "tensor([1], dtype=int32)"
