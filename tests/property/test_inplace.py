"""In-place methods against PyTorch: the tensor afterwards, what they return, dtype casting rules,
read-only and non-contiguous storage, and leaves that require grad."""
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_rnn as tr

from .contract import Arg, cases, same
from .strategies import DTYPES, scalars, tensors

# name -> call(x, other); other is a tensor broadcastable to x, or a number
IN_PLACE = {
    "add_": lambda x, o: x.add_(o), "sub_": lambda x, o: x.sub_(o), "mul_": lambda x, o: x.mul_(o),
    "div_": lambda x, o: x.div_(o), "fill_": lambda x, o: x.fill_(o), "copy_": lambda x, o: x.copy_(o),
    "add_(alpha)": lambda x, o: x.add_(o, alpha=2), "clamp_": lambda x, o: x.clamp_(min=o),
    "clip_": lambda x, o: x.clip_(max=o), "zero_": lambda x, o: x.zero_(),
    "masked_fill_": lambda x, o: x.masked_fill_(x.isnan(), o),
}


def with_result(call):
    """What the call returns and the tensor afterwards (an in-place method changes and returns it)."""
    def run(m, x, other):
        before = x
        out = call(x, other)
        return out is before, before
    return run


@st.composite
def targets_and_operands(draw):
    shape, operand_shape = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3)).input_shapes
    if draw(st.booleans()):
        shape = operand_shape = draw(st.sampled_from([shape, operand_shape]))
    x = draw(tensors(special=False, shape=shape))
    dtypes = (str(x.array.dtype),) if draw(st.booleans()) else DTYPES
    other = draw(st.one_of(scalars(), tensors(dtypes, shape=operand_shape, special=False)))
    return x, other


@pytest.mark.parametrize("op", sorted(IN_PLACE))
@cases(12)
@given(pair=targets_and_operands())
def test_in_place(op, pair):
    x, other = pair
    if op == "fill_" and isinstance(other, Arg) and other.array.ndim:
        other = Arg(other.array.reshape(-1)[:1].reshape(()), other.layout) if other.array.size else 1
    readonly = x.layout == "readonly"  # ours shares the read-only array; torch has its own copy
    # torch clamps bools by a bool tensor but not by a bool number; ours clamps no bools
    bools = op in ("clamp_", "clip_") and x.array.dtype.kind == "b"
    same(with_result(IN_PLACE[op]), x, other, names=(op.split("(")[0], "clamp_", "in-place", "read-only"),
         grad=False, may_refuse=readonly or bools)


@pytest.mark.parametrize("op", sorted(IN_PLACE))
def test_in_place_on_a_leaf_that_requires_grad(op):
    x = tr.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        IN_PLACE[op](x, 0.5)
    with tr.no_grad():
        IN_PLACE[op](x, 0.5)


@cases(40)
@given(x=tensors(special=False), index=st.sampled_from([0, -1, slice(None), (Ellipsis, 0), 5]),
       value=st.one_of(scalars(), tensors(special=False)))
def test_setitem(x, index, value):
    def call(m, x, v):
        x[index] = v
        return x
    same(call, x, value, names=("__setitem__", "setitem", "index", "read-only", "broadcast", "shape"),
         grad=False, may_refuse=x.layout == "readonly")


@pytest.mark.parametrize("name", ["normal_", "uniform_"])
@cases(15)
@given(x=tensors(special=False), a=st.sampled_from([0.0, -1.0, 2]), b=st.sampled_from([1.0, 0.5, 3]))
def test_random_in_place(name, x, a, b):
    """The generators are not seeded alike here (seeded draws: test_torch_draws.py): compare shapes, dtypes,
    ranges and refusals (integer tensors)."""
    def call(m, x):
        out = getattr(x, name)(a, b)
        inside = bool(((out >= a) & (out <= b)).all()) if name == "uniform_" and a <= b else True
        return out is x, tuple(out.shape), str(out.dtype).replace("torch.", ""), inside
    same(call, x, names=(name, "in-place", "read-only", "floating", "from", "to"), grad=False,
         may_refuse=x.layout == "readonly" or x.array.dtype.kind != "f", may_accept=name == "uniform_" and a > b)
