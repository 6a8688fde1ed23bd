"""Hypothesis strategies for the property suite: shapes, dtypes, values, layouts, dims, foreign data."""
import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .contract import LAYOUTS, Arg, Each

DTYPES = ("float32", "float64", "int64", "bool")
FLOATS = ("float32", "float64")

# small exact values make ties, zeros and kinks (relu, abs, clamp, max) common; NaN and Inf now and then
_NICE = st.sampled_from([0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -3.0])
_SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf])


def shapes(min_dims=0, max_dims=3, min_side=0, max_side=3):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def elements(dtype, special=True, low=-4.0, high=4.0):
    if dtype == "bool":
        return st.booleans()
    if dtype.startswith("int"):
        return st.integers(int(low), int(high))
    width = 32 if dtype == "float32" else 64
    finite = st.floats(low, high, width=width, allow_nan=False, allow_infinity=False)
    options = [_NICE, finite] + ([_SPECIAL] if special else [])
    return st.one_of(*options) if not special else st.one_of(_NICE, finite, finite, _SPECIAL)


@st.composite
def arrays(draw, dtypes=DTYPES, shape=None, special=True, low=-4.0, high=4.0):
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(shapes()) if shape is None else shape
    if not isinstance(shape, tuple):
        shape = draw(shape)
    return draw(hnp.arrays(np.dtype(dtype), shape, elements=elements(dtype, special, low, high)))


@st.composite
def tensors(draw, dtypes=DTYPES, shape=None, special=True, layouts=LAYOUTS, low=-4.0, high=4.0):
    """An Arg: an array of one of `dtypes` and a storage layout."""
    array = draw(arrays(dtypes, shape, special, low, high))
    return Arg(array, draw(st.sampled_from(layouts)))


def dims(ndim, new_axis=False, wrong=True):
    """A dim for a tensor of `ndim` dims: in range, negative, out of range, or not an int."""
    top = ndim + 1 if new_axis else max(ndim, 1)
    good = st.integers(-top, top - 1)
    if not wrong:
        return good
    return st.one_of(good, good, good, st.integers(-top - 2, top + 2),
                     st.sampled_from([1.5, "0", None, True, np.int64(0)]))


def dim_lists(ndim):
    """None, one dim or a tuple of dims (repeats and out of range included)."""
    return st.one_of(st.none(), dims(ndim), st.lists(dims(ndim, wrong=False), max_size=3).map(tuple),
                     st.lists(st.integers(-ndim - 1, ndim), max_size=2).map(tuple))


def scalars():
    """A Python number (or bool), or a foreign value given the same to both libraries."""
    return st.one_of(st.sampled_from([0, 1, -2, 3]), st.sampled_from([0.0, 0.5, -1.5, 2.0]),
                     st.booleans(), st.sampled_from([np.nan, np.inf]))


@st.composite
def foreign(draw, shape, dtype):
    """Data of `shape` and `dtype` in another form: a Python list, a NumPy array or a torch tensor
    (ours only); torch's side gets the same values as a tensor."""
    array = draw(arrays((str(dtype),), shape=shape, special=False))
    kind = draw(st.sampled_from(["list", "numpy", "torch"]))
    theirs = torch.tensor(array)
    if kind == "list":
        data = array.tolist()
        return Each(data, torch.tensor(np.array(data, dtype=array.dtype)))  # [] loses a shape (0, 2)
    if kind == "numpy":
        return Each(array, theirs)
    return Each(torch.tensor(array), theirs)
