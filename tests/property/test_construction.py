"""Tensors made from every kind of data (numbers, nested and ragged lists, NumPy arrays of any dtype and
layout, NumPy scalars, torch tensors, junk) and converted back (item, tolist, numpy, to, new_*)."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tr

from .contract import Each, cases, same
from .strategies import arrays, tensors

JUNK = [None, "1.5", ["1.5"], b"ab", {1: 2}, [[1, 2], [3]], [1, [2]], 2 ** 70, object()]


@st.composite
def data(draw):
    """Data a tensor may be made from, the same for both libraries (a torch tensor for torch's side
    where ours gets a foreign one)."""
    kind = draw(st.sampled_from(["number", "list", "array", "noncontiguous", "readonly", "numpy scalar",
                                 "torch", "list of tensors", "junk", "other dtype"]))
    if kind == "number":
        return draw(st.one_of(st.integers(-3, 3), st.floats(allow_nan=True), st.booleans()))
    if kind == "list":
        return draw(arrays(special=False)).tolist()
    array = draw(arrays())
    if kind == "array":
        return array
    if kind == "noncontiguous":
        return np.repeat(array[..., None], 2, axis=-1)[..., 0] if array.ndim else array
    if kind == "readonly":
        array.flags.writeable = False
        return array
    if kind == "numpy scalar":
        return array.reshape(-1)[0] if array.size else np.float64(draw(st.floats(-3, 3)))
    if kind == "torch":
        grad = array.dtype.kind == "f" and draw(st.booleans())
        return Each(torch.tensor(array, requires_grad=grad), torch.tensor(array, requires_grad=grad))
    if kind == "list of tensors":
        values = draw(st.lists(st.floats(-3, 3, width=32), max_size=3))
        return Each([tr.tensor(v) for v in values], [torch.tensor(v) for v in values])
    if kind == "other dtype":
        return array.astype(draw(st.sampled_from([np.float16, np.int32, np.uint8, np.uint16, np.complex64,
                                                  object, np.str_])))
    return draw(st.sampled_from(JUNK))


DTYPES = [(None, None), (tr.float32, torch.float32), (tr.float64, torch.float64), (tr.int64, torch.int64),
          (tr.bool, torch.bool), ("float64", torch.float64), (tr.uint8, torch.uint8)]
BAD_DTYPES = [("nonsense", torch.float32), (torch.float32, torch.float32), (np.complex64, torch.complex64),
              (object, torch.float32)]


def our_side_may_refuse(value):
    """Data ours leaves out on purpose: complex numbers and dtypes torch has no name for."""
    value = value.ours if isinstance(value, Each) else value
    return isinstance(value, complex) or (isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "cOU")


@cases(80)
@given(value=data(), dtypes=st.sampled_from(DTYPES + BAD_DTYPES), requires_grad=st.booleans())
def test_tensor(value, dtypes, requires_grad):
    ours, theirs = dtypes
    bad = (ours, theirs) in BAD_DTYPES
    # torch wraps a negative Python int into an unsigned dtype (-1 -> 255); ours refuses it as overflow
    wraps = ours is tr.uint8 and not isinstance(value, (Each, np.ndarray, np.generic))
    # torch refuses some NumPy scalars, and lists of float tensors, with an integer dtype; ours converts them
    same(lambda m, v, d: m.tensor(v, dtype=d, requires_grad=requires_grad), value, Each(ours, theirs),
         names=("tensor", "data", "dtype", "gradients"), may_refuse=bad or wraps or our_side_may_refuse(value),
         may_accept=isinstance(value, (np.generic, Each)), grad=False)


def legacy_reference(torch, value, dtype=None, requires_grad=False):
    """tr.Tensor's documented rule: torch.tensor's result, with floating data made float32."""
    t = torch.tensor(value, dtype=dtype)
    if dtype is None and t.dtype.is_floating_point:
        t = t.float()
    return t.requires_grad_(requires_grad) if requires_grad else t


@cases(80)
@given(value=data(), dtypes=st.sampled_from(DTYPES), requires_grad=st.booleans())
def test_tensor_class(value, dtypes, requires_grad):
    """tr.Tensor(data): floating data becomes float32 unless dtype says otherwise; integers and bools kept."""
    ours, theirs = dtypes
    wraps = ours is tr.uint8 and not isinstance(value, (Each, np.ndarray, np.generic))  # see test_tensor
    same(lambda m, v, d: tr.Tensor(v, dtype=d, requires_grad=requires_grad), value, Each(ours, theirs),
         reference=lambda m, v, d: legacy_reference(m, v, d, requires_grad),
         names=("Tensor", "data", "dtype", "gradients"), may_refuse=wraps or our_side_may_refuse(value), grad=False,
         may_accept=isinstance(value, (np.generic, Each)))  # see test_tensor


@cases(40)
@given(x=st.one_of(arrays(), st.builds(lambda a: a[::-1], arrays(shape=st.just((3,))))))
def test_from_numpy(x):
    # torch refuses negative strides; ours may take any array NumPy makes
    same(lambda m, a: m.from_numpy(a), Each(x, x), names=("from_numpy",), may_accept=True, grad=False)
    if x.flags.writeable:
        t = tr.from_numpy(x)
        x.reshape(-1)[:1] = 0 if x.size else x.reshape(-1)[:1]
        np.testing.assert_array_equal(t.numpy(), x)  # shared memory


CONVERSIONS = {
    "item": lambda x: x.item(), "tolist": lambda x: x.tolist(), "numpy": lambda x: x.detach().numpy(),
    "float64": lambda x: x.to(dtype=x.new_zeros(()).double().dtype), "type_as": lambda x: x.type_as(x.double()),
    "new_zeros": lambda x: x.new_zeros((2, 1)), "new_ones": lambda x: x.new_ones(2),
    "new_tensor": lambda x: x.new_tensor([1, 2]), "bool()": bool, "float()": float, "int()": int,
    "repr": lambda x: repr(x).startswith("tensor("), "len": len,
}


@pytest.mark.parametrize("name", sorted(CONVERSIONS))
@cases(10)
@given(x=tensors())
def test_conversion(name, x):
    same(lambda m, x: CONVERSIONS[name](x), x, names=(name.rstrip("()"), "item", "element", "ambiguous", "len"),
         grad=False)
