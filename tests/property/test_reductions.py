"""Reductions, statistics, norms and softmax against PyTorch: every dim (negative, out of range,
repeated, tuples), keepdim, empty and 0-d tensors, every dtype, NaN and Inf."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from .contract import cases, same
from .strategies import dim_lists, dims, tensors

# name -> (call(x, dim, keepdim), whether dim may be a tuple)
REDUCTIONS = {
    "sum": (lambda x, d, k: x.sum(d, keepdim=k), True),
    "mean": (lambda x, d, k: x.mean(d, keepdim=k), True),
    "amax": (lambda x, d, k: x.amax(() if d is None else d, keepdim=k), True),
    "amin": (lambda x, d, k: x.amin(() if d is None else d, keepdim=k), True),
    "max": (lambda x, d, k: x.max() if d is None else x.max(d, keepdim=k), False),
    "min": (lambda x, d, k: x.min() if d is None else x.min(d, keepdim=k), False),
    "argmax": (lambda x, d, k: x.argmax(d, keepdim=k), False),
    "argmin": (lambda x, d, k: x.argmin(d, keepdim=k), False),
    "any": (lambda x, d, k: x.any() if d is None else x.any(d, keepdim=k), True),
    "all": (lambda x, d, k: x.all() if d is None else x.all(d, keepdim=k), True),
    "var": (lambda x, d, k: x.var(d, keepdim=k), True),
    "std": (lambda x, d, k: x.std(d, keepdim=k), True),
    "softmax": (lambda x, d, k: x.softmax(d), False),
    "log_softmax": (lambda x, d, k: x.log_softmax(d), False),
}


FLOATING_ONLY = ("mean", "var", "std", "softmax", "log_softmax", "norm")


@st.composite
def reduction_args(draw, tuples):
    x = draw(tensors())
    ndim = x.array.ndim
    dim = draw(dim_lists(ndim) if tuples else st.one_of(st.none(), dims(ndim)))
    return x, dim, draw(st.booleans())


@pytest.mark.parametrize("op", sorted(REDUCTIONS))
@cases(18)
@given(data=st.data())
def test_reduction(op, data):
    call, tuples = REDUCTIONS[op]
    x, dim, keepdim = data.draw(reduction_args(tuples))
    # torch refuses integers in these, but not when the tensor is empty (no kernel runs): ours always does
    integers = op in FLOATING_ONLY and x.array.dtype.kind != "f"
    # torch's var and std over dim=() reduce everything but their gradients divide by zero (NaN)
    torch_quirk = op in ("var", "std") and isinstance(dim, tuple) and not dim
    same(lambda m, x: call(x, dim, keepdim), x, names=(op, "dim", "Dimension"), may_refuse=integers,
         grad=not torch_quirk)


@cases(30)
@given(data=st.data(), correction=st.sampled_from([None, 0, 1, 2]), unbiased=st.sampled_from([None, True, False]))
def test_var_corrections(data, correction, unbiased):
    x, dim, keepdim = data.draw(reduction_args(True))
    kwargs = {k: v for k, v in (("correction", correction), ("unbiased", unbiased)) if v is not None}
    same(lambda m, x: x.var(dim, keepdim=keepdim, **kwargs), x, names=("var", "dim", "correction", "unbiased"),
         may_refuse=x.array.dtype.kind != "f", grad=not (isinstance(dim, tuple) and not dim))


@cases(40)
@given(data=st.data(), p=st.sampled_from(["fro", 2, 1, 0, 3, 0.5, float("inf"), float("-inf")]))
def test_norm(data, p):
    x, dim, keepdim = data.draw(reduction_args(True))
    same(lambda m, x: x.norm(p, dim, keepdim), x, names=("norm", "dim", "Dimension"),
         may_refuse=x.array.dtype.kind != "f", may_accept=isinstance(dim, np.integer))  # torch: no NumPy ints
