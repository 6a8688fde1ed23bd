"""Elementwise Tensor methods and operators against PyTorch: every dtype, shape, layout and operand kind."""
import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .contract import Arg, cases, same
from .strategies import DTYPES, FLOATS, foreign, scalars, shapes, tensors

# name -> how to call it on a tensor of either library
UNARY = {
    "neg": operator.neg, "abs": abs, "invert": operator.invert,
    "exp": lambda x: x.exp(), "log": lambda x: x.log(), "tanh": lambda x: x.tanh(),
    "sigmoid": lambda x: x.sigmoid(), "relu": lambda x: x.relu(), "sqrt": lambda x: x.sqrt(),
    "rsqrt": lambda x: x.rsqrt(), "reciprocal": lambda x: x.reciprocal(), "square": lambda x: x.square(),
    "sign": lambda x: x.sign(), "clone": lambda x: x.clone(), "detach": lambda x: x.detach(),
    "contiguous": lambda x: x.contiguous(), "isnan": lambda x: x.isnan(), "isinf": lambda x: x.isinf(),
    "isfinite": lambda x: x.isfinite(), "float": lambda x: x.float(), "double": lambda x: x.double(),
    "half": lambda x: x.half(), "long": lambda x: x.long(), "int": lambda x: x.int(), "bool": lambda x: x.bool(),
    "flatten": lambda x: x.flatten(), "t": lambda x: x.t(), "T": lambda x: x.T, "mT": lambda x: x.mT,
    "numel": lambda x: x.numel(), "nelement": lambda x: x.nelement(), "dim": lambda x: x.dim(),
    "ndimension": lambda x: x.ndimension(), "size": lambda x: tuple(x.size()), "shape": lambda x: tuple(x.shape),
    "ndim": lambda x: x.ndim, "len": len, "tolist": lambda x: x.tolist(), "item": lambda x: x.item(),
    "float()": float, "int()": int, "bool()": bool, "index": operator.index, "is_leaf": lambda x: x.is_leaf,
    "element_size": lambda x: x.element_size(), "requires_grad": lambda x: x.requires_grad,
}

OPERATORS = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "**": operator.pow,
    "@": operator.matmul, "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge, "&": operator.and_, "|": operator.or_, "^": operator.xor,
}
# methods with another operand: the tensor comes first; True where torch takes tensors only
METHODS = {
    "maximum": (lambda a, b: a.maximum(b), True), "minimum": (lambda a, b: a.minimum(b), True),
    "max(other)": (lambda a, b: a.max(b), True), "min(other)": (lambda a, b: a.min(b), True),
    "pow": (lambda a, b: a.pow(b), False), "eq": (lambda a, b: a.eq(b), False),
    "lt": (lambda a, b: a.lt(b), False), "ge": (lambda a, b: a.ge(b), False),
    "add": (lambda a, b: a.add(b), False), "sub(alpha)": (lambda a, b: a.sub(b, alpha=2), False),
    "multiply": (lambda a, b: a.multiply(b), False), "true_divide": (lambda a, b: a.true_divide(b), False),
    "div(trunc)": (lambda a, b: a.div(b, rounding_mode="trunc"), False),
    "div(floor)": (lambda a, b: a.div(b, rounding_mode="floor"), False),
}

# the names an error message of each op may use
NAMES = {"+": ("add",), "-": ("sub",), "*": ("mul",), "/": ("div",), "**": ("pow",), "@": ("matmul",),
         "invert": ("~",), "float()": ("item", "float"), "int()": ("item", "int"), "bool()": ("truth", "bool"),
         "index": ("index",), "max(other)": ("max", "maximum"), "min(other)": ("min", "minimum"),
         "len": ("len",), "T": ("T", "permute"), "neg": ("neg", "-")}


def names(op):
    return NAMES.get(op, ()) + (op, "operand")


@pytest.mark.parametrize("op", sorted(UNARY))
@cases(8)
@given(x=tensors())
def test_unary(op, x):
    same(lambda m, x: UNARY[op](x), x, names=names(op))


@st.composite
def operand_pairs(draw, swap=True):
    """Two tensors that broadcast (usually), or a tensor and a number or foreign data, in either order."""
    kind = draw(st.sampled_from(["broadcast", "broadcast", "any shapes", "scalar", "foreign"]))
    if kind == "scalar":
        pair = [draw(tensors()), draw(scalars())]
    elif kind == "foreign":
        x = draw(tensors(FLOATS))
        pair = [x, draw(foreign(x.array.shape, x.array.dtype))]
    else:
        if kind == "broadcast":
            a, b = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3)).input_shapes
        else:
            a, b = draw(shapes()), draw(shapes())
        same_dtype = draw(st.booleans())
        first = draw(tensors(shape=a))
        pair = [first, draw(tensors(dtypes=(str(first.array.dtype),) if same_dtype else DTYPES, shape=b))]
    return pair[::-1] if swap and draw(st.booleans()) else pair


def integer_power(op, pair):
    """Integers to negative integer powers are refused, as NumPy refuses them (torch gives 0 for a
    tensor exponent but refuses a Python number one)."""
    kinds = {p.array.dtype.kind if isinstance(p, Arg) else {int: "i", bool: "b"}.get(type(p), "x") for p in pair}
    # torch also raises bool tensors to a Python bool power, not to a bool tensor's; ours to neither
    return op in ("**", "pow") and kinds <= {"i", "b"}


@pytest.mark.parametrize("op", sorted(OPERATORS))
@cases(15)
@given(pair=operand_pairs())
def test_operator(op, pair):
    # both refuse @ of two dtypes, except that torch computes an empty product anyway
    mixed = op == "@" and len({p.array.dtype for p in pair if isinstance(p, Arg)}) > 1
    same(lambda m, a, b: OPERATORS[op](a, b), *pair, names=names(op), may_refuse=integer_power(op, pair) or mixed)


@pytest.mark.parametrize("op", sorted(METHODS))
@cases(12)
@given(pair=operand_pairs(swap=False))
def test_method_with_operand(op, pair):
    method, tensors_only = METHODS[op]
    other_is_tensor = isinstance(pair[1], Arg)
    foreign_ok = tensors_only and not other_is_tensor  # torch wants a tensor: ours may take it or refuse
    name = op.split("(")[0]
    rounded = op.startswith("div(")
    if rounded and not all(np.isfinite(p.array).all() for p in pair if isinstance(p, Arg)):
        return  # rounding an infinite quotient: torch's floor and trunc differ from IEEE's here; not compared
    # a rounded quotient has no gradient in ours (torch's is 0 almost everywhere, NaN at 0 / 0); a bool
    # exponent gives torch a NaN gradient at 0 where ours, as torch's for a float exponent, gives 0
    bool_exponent = name == "pow" and any(isinstance(p, bool) or (isinstance(p, Arg) and p.array.dtype == bool)
                                          for p in pair[1:])
    same(lambda m, a, b: method(a, b), *pair, names=names(op) + (name, "div"), may_accept=foreign_ok,
         may_refuse=foreign_ok or integer_power(op, pair), grad=not (rounded or bool_exponent))


@pytest.mark.parametrize("name", ["clamp", "clip"])
@cases(25)
@given(x=tensors(), low=st.one_of(st.none(), scalars()), high=st.one_of(st.none(), scalars()))
def test_clamp(name, x, low, high):
    same(lambda m, x: getattr(x, name)(low, high), x, names=(name, "min", "max"))


@cases(25)
@given(condition=tensors(("bool", "float32")), x=st.one_of(tensors(), scalars()), y=st.one_of(tensors(), scalars()))
def test_where(condition, x, y):
    same(lambda m, c, x, y: m.where(c, x, y), condition, x, y, names=("where",))


@cases(25)
@given(x=tensors(), mask=tensors(("bool", "int64")), value=scalars())
def test_masked_fill(x, mask, value):
    same(lambda m, x, mask: x.masked_fill(mask, value), x, mask, names=("masked_fill", "mask", "value"))
