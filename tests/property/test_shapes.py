"""Shape methods, indexing, cat and stack against PyTorch: dims in and out of range, negative and
non-int, sizes of 0 and below, empty and 0-d tensors, every dtype and layout."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from .contract import Each, cases, same
from .strategies import DTYPES, dims, shapes, tensors


def sizes():
    return st.one_of(st.integers(-2, 4), st.sampled_from([1.5, None, "2", True]))


def dim_pairs(ndim):
    return st.tuples(dims(ndim), dims(ndim))


# name -> (strategy of extra arguments given the tensor's ndim and shape, call(x, *arguments))
SHAPE_OPS = {
    "unsqueeze": (lambda n, s: st.tuples(dims(n, new_axis=True)), lambda x, d: x.unsqueeze(d)),
    "squeeze()": (lambda n, s: st.just(()), lambda x: x.squeeze()),
    "squeeze": (lambda n, s: st.tuples(dims(n)), lambda x, d: x.squeeze(d)),
    "squeeze(tuple)": (lambda n, s: st.tuples(st.lists(dims(n, wrong=False), max_size=2).map(tuple)),
                       lambda x, d: x.squeeze(d)),
    "transpose": (lambda n, s: dim_pairs(n), lambda x, a, b: x.transpose(a, b)),
    "swapaxes": (lambda n, s: dim_pairs(n), lambda x, a, b: x.swapaxes(a, b)),
    "permute": (lambda n, s: st.tuples(st.one_of(st.permutations(range(n)).map(tuple),
                                                 st.lists(dims(n, wrong=False), max_size=n + 1).map(tuple))),
                lambda x, p: x.permute(*p)),
    "reshape": (lambda n, s: st.tuples(st.one_of(st.just((-1,)), st.just(s[::-1]),
                                                 st.lists(st.integers(-1, 4), max_size=3).map(tuple))),
                lambda x, shape: x.reshape(shape)),
    "view": (lambda n, s: st.tuples(st.one_of(st.just((-1,)), st.lists(st.integers(-2, 4), max_size=3).map(tuple))),
             lambda x, shape: x.view(*shape)),
    "flatten": (lambda n, s: st.just(()), lambda x: x.flatten()),
    "expand": (lambda n, s: st.tuples(st.one_of(st.just((2,) + s), st.just(tuple(-1 for _ in s)),
                                                st.lists(st.integers(-2, 3), max_size=4).map(tuple))),
               lambda x, shape: x.expand(*shape)),
    "repeat": (lambda n, s: st.tuples(st.lists(st.integers(-1, 3), min_size=max(n - 1, 0), max_size=n + 1).map(tuple)),
               lambda x, r: x.repeat(*r)),
    "split": (lambda n, s: st.tuples(sizes(), dims(n)), lambda x, k, d: x.split(k, d)),
    "split(sizes)": (lambda n, s: st.tuples(st.lists(st.integers(-1, 3), max_size=3), dims(n)),
                     lambda x, k, d: x.split(k, d)),
    "chunk": (lambda n, s: st.tuples(sizes(), dims(n)), lambda x, k, d: x.chunk(k, d)),
    "narrow": (lambda n, s: st.tuples(dims(n), st.integers(-4, 4), st.integers(-1, 4)),
               lambda x, d, start, length: x.narrow(d, start, length)),
    "roll": (lambda n, s: st.tuples(st.integers(-5, 5), st.one_of(st.none(), dims(n))),
             lambda x, k, d: x.roll(k, d)),
    "size(dim)": (lambda n, s: st.tuples(dims(n)), lambda x, d: x.size(d)),
    "t": (lambda n, s: st.just(()), lambda x: x.t()),
}


@pytest.mark.parametrize("op", sorted(SHAPE_OPS))
@cases(15)
@given(data=st.data())
def test_shape_op(op, data):
    arguments, call = SHAPE_OPS[op]
    x = data.draw(tensors(special=False))
    args = data.draw(arguments(x.array.ndim, x.array.shape), label="arguments")
    name = op.split("(")[0]
    same(lambda m, x: call(x, *args), x, names=(name, "dim", "size", "shape", "Dimension"),
         may_refuse=torch_is_lenient(op, x.array, args), may_accept=op == "squeeze" and args == (None,))


def torch_is_lenient(op, array, args):
    """Where torch computes what ours refuses on purpose: a new leading dim of -1 in expand (torch makes
    a negative size), negative repeats and any dim of roll on an empty tensor (torch skips its checks)."""
    if op == "expand":
        return any(n < 0 for n in args[0][:max(len(args[0]) - array.ndim, 0)] if isinstance(n, int))
    if op == "repeat":
        return any(n < 0 for n in args[0])
    return op == "roll" and array.size == 0


def index_items(shape):
    """One index item per dim (an int, in range or not; a slice; None; Ellipsis; an integer array or list)."""
    items = []
    for n in shape:
        items.append(st.one_of(st.integers(-n - 1, n), st.builds(slice, st.integers(-4, 4) | st.none(),
                                                                  st.integers(-4, 4) | st.none(),
                                                                  st.sampled_from([None, 1, 2, -1])),
                               st.lists(st.integers(-n, max(n - 1, -n)), min_size=1, max_size=3) if n else st.none()))
    return st.tuples(*items, st.sampled_from([(), (None,), (Ellipsis,)])).map(lambda t: t[:-1] + t[-1])


@cases(40)
@given(data=st.data())
def test_getitem(data):
    x = data.draw(tensors(special=False, shape=shapes(min_dims=1)))
    index = data.draw(index_items(x.array.shape), label="index")
    if data.draw(st.booleans()) and index:
        index = index[: data.draw(st.integers(0, len(index)))]
    theirs = tuple(np.asarray(i) if isinstance(i, list) else i for i in index)
    # a negative step is NumPy's, not torch's: torch refuses it, ours may give NumPy's answer
    negative_step = any(isinstance(i, slice) and (i.step or 1) < 0 for i in index)
    same(lambda m, x, i: x[i], x, Each(index, tuple(torch_index(i) for i in theirs)),
         names=("getitem", "index", "indices"), may_accept=negative_step)


def torch_index(item):
    import torch
    return torch.as_tensor(item) if isinstance(item, np.ndarray) else item


@st.composite
def tensor_lists(draw, new_dim):
    """Tensors of one shape (or differing in one dim, or in rank), of one dtype or several."""
    shape = draw(shapes(min_dims=0 if new_dim else 1))
    count = draw(st.integers(0, 3))
    mixed = draw(st.booleans())
    dtype = draw(st.sampled_from(DTYPES))
    out = []
    for _ in range(count):
        s = shape
        if draw(st.integers(0, 4)) == 0 and s:
            k = draw(st.integers(0, len(s) - 1))
            s = s[:k] + (draw(st.integers(0, 3)),) + s[k + 1:]
        elif draw(st.integers(0, 6)) == 0:
            s = s + (1,)
        out.append(draw(tensors(DTYPES if mixed else (dtype,), shape=s, special=False)))
    return out, draw(dims(len(shape), new_axis=new_dim))


@pytest.mark.parametrize("name", ["cat", "stack"])
@cases(35)
@given(data=st.data())
def test_cat_and_stack(name, data):
    parts, dim = data.draw(tensor_lists(name == "stack"))
    # torch's cat skips 1-D empty tensors in its shape checks (a legacy rule); ours need not
    legacy = name == "cat" and any(p.array.shape == (0,) for p in parts)
    same(lambda m, *t: getattr(m, name)(list(t), dim), *parts, names=(name, "dim", "Dimension", "tensors"),
         may_refuse=legacy)


@cases(10)
@given(x=tensors())
def test_cat_of_a_tensor_is_refused(x):
    same(lambda m, x: m.cat(x), x, names=("cat", "sequence", "tensors"))
    same(lambda m, x: m.stack(x), x, names=("stack", "sequence", "tensors"))
