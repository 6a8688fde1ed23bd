"""The rest of the Tensor interface against torch: to(), iteration, len, `in`, format, hooks, .grad and
.data assignment, and methods that take another tensor, given junk as well as good arguments."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tr

from .contract import Each, assert_clean_error, attempt, cases, same
from .strategies import FLOATS, scalars, tensors

JUNK = [None, "a", [1.0], 3, object()]
TO = [Each("cpu", "cpu"), Each(tr.float64, torch.float64), Each("float64", "float64"),
      Each(tr.int64, torch.int64), Each("tpu", "tpu"), Each(np.complex64, torch.complex64)]


@cases(30)
@given(x=tensors(), target=st.sampled_from(TO), as_keyword=st.booleans())
def test_to(x, target, as_keyword):
    """to(device) / to(dtype), positional or named; complex and unknown targets refused."""
    def call(m, x, t):
        if as_keyword:
            key = "device" if t in ("cpu", "tpu") else "dtype"
            return x.to(**{key: t})
        return x.to(t)
    names = ("to", "device", "dtype")
    # torch names dtypes as torch.float64 only, never as strings; it has complex numbers, ours has none
    strings = target.ours in ("float64",)
    same(call, x, target, names=names, may_accept=strings, may_refuse=target.ours is np.complex64)


@cases(25)
@given(x=tensors(), other=st.one_of(tensors(), st.sampled_from(JUNK)))
def test_methods_taking_a_tensor(x, other):
    for name in ("expand_as", "type_as", "equal", "allclose"):
        # torch's allclose wants one dtype; ours compares any two as NumPy does
        same(lambda m, x, o, name=name: getattr(x, name)(o), x, other, names=(name, "other", "expand"), grad=False,
             may_accept=name == "allclose")


@cases(25)
@given(x=tensors(), element=st.one_of(scalars(), tensors(shape=st.just(())), st.sampled_from(JUNK)))
def test_iteration_len_and_in(x, element):
    same(lambda m, x: [t for t in x], x, names=("iteration", "0-d"), grad=False)
    same(lambda m, x: len(x), x, names=("len",), grad=False)
    same(lambda m, x, e: e in x, x, element, names=("__contains__", "Tensor or scalar"), grad=False)


@cases(20)
@given(x=tensors(), spec=st.sampled_from(["", ".2f", "d", "10", "!r"]))
def test_format(x, spec):
    def call(m, x):
        return f"{x:{spec}}" if spec != "!r" else None
    # the text itself differs (our repr is NumPy's); compare whether each formats or refuses
    same(lambda m, x: isinstance(call(m, x), (str, type(None))), x, names=("format", "Unknown format code"),
         grad=False, may_refuse=True)


@pytest.mark.parametrize("hook", [3, None, "f"])
def test_register_hook_refuses_what_cannot_be_called(hook):
    x = tr.ones(2, requires_grad=True)
    _, error = attempt(lambda: x.register_hook(hook))
    assert_clean_error(error, ("register_hook", "callable"))
    (x * 2).sum().backward()  # nothing half-registered stays behind
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2])


@cases(25)
@given(value=st.one_of(tensors(FLOATS), st.sampled_from(JUNK + [np.ones((2, 3))])))
def test_grad_and_data_assignment(value):
    for attribute in ("grad", "data"):
        def call(m, x, v, attribute=attribute):
            setattr(x, attribute, v)
            return getattr(x, attribute)
        x = Each(tr.ones(2, 3, requires_grad=True), torch.ones(2, 3, requires_grad=True))
        # torch takes only tensors here, and lets .data change shape and dtype; ours reads arrays too, and
        # keeps a tensor's shape and dtype
        same(call, x, value, names=(attribute, "assigned", "operand"), grad=False, may_accept=True,
             may_refuse=attribute == "data")


@cases(20)
@given(x=tensors(), op=st.sampled_from(["retain_grad", "is_leaf", "grad_fn", "zero_grad", "is_contiguous", "is_cuda",
                                        "requires_grad_", "detach_requires_grad", "retains_grad"]))
def test_autograd_attributes(x, op):
    def call(m, x):
        floating = x.dtype.is_floating_point if m is torch else x.dtype.kind == "f"
        y = x * 1 if floating else x
        if op == "retain_grad":
            return y.retain_grad() is None, y.retains_grad
        if op == "grad_fn":
            return y.grad_fn is None
        if op == "zero_grad":
            return None if m is torch else x.zero_grad()
        if op == "requires_grad_":
            return x.requires_grad_().requires_grad
        if op == "detach_requires_grad":
            return x.detach().requires_grad
        if op == "is_contiguous":
            return True if m is torch else isinstance(x.is_contiguous(), bool)
        return getattr(y, op)
    # torch lets an integer tensor that cannot require grad call retain_grad() ... and refuses; so do we
    same(call, x, names=(op, "grad", "floating point", "leaf", "retain_grad"), grad=True,
         may_refuse=op == "retain_grad" and x.array.dtype.kind != "f")
