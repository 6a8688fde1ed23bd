"""The `tr.*` functions against torch's: factories (sizes, dtypes, devices, fill values, ranges) and
the function forms of Tensor methods (the same result, and a clean refusal of what is not a tensor)."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tr
from tinygrad_rnn.functions import METHODS

from .contract import Each, assert_clean_error, attempt, cases, same
from .strategies import FLOATS, scalars, shapes, tensors

SIZE_ITEMS = st.one_of(st.integers(-1, 3), st.sampled_from([2.5, None, True, np.int64(2), 2 ** 62]))
DTYPES = [(None, None), (tr.float32, torch.float32), (tr.float64, torch.float64), (tr.int64, torch.int64),
          (tr.bool, torch.bool), (tr.float16, torch.float16)]
DEVICES = [None, "cpu", tr.device("cpu"), "tpu", "cuda:x"]


def sizes():
    """A size as *ints, as one tuple, or as junk."""
    return st.one_of(st.lists(SIZE_ITEMS, max_size=3).map(tuple), st.lists(SIZE_ITEMS, max_size=3).map(lambda s: (s,)))


def shape_and_dtype(t):
    return tuple(t.shape), str(t.dtype).replace("torch.", "")


def described(t):
    """What a random tensor must match: its shape, dtype and whether it lies in range."""
    if isinstance(t, torch.Tensor):
        return tuple(t.shape), str(t.dtype).replace("torch.", "")
    return tuple(t.shape), str(t.dtype)


FACTORIES = {
    "zeros": lambda m, s, d, dev: m.zeros(*s, dtype=d, device=dev),
    "ones": lambda m, s, d, dev: m.ones(*s, dtype=d, device=dev),
    "empty": lambda m, s, d, dev: described(m.empty(*s, dtype=d, device=dev)),
    "randn": lambda m, s, d, dev: described(m.randn(*s, dtype=d, device=dev)),
    "rand": lambda m, s, d, dev: described(m.rand(*s, dtype=d, device=dev)),
    "full": lambda m, s, d, dev: m.full(s[0] if len(s) == 1 else s, 1.5, dtype=d, device=dev),
    "randint": lambda m, s, d, dev: described(m.randint(0, 3, s[0] if len(s) == 1 else s, dtype=d, device=dev)),
}


def devices_differ(device):
    """"cuda" here: torch (a CPU build) says "not compiled with CUDA", ours "needs CuPy": both refuse."""
    return device not in (None, "cpu")


@pytest.mark.parametrize("name", sorted(FACTORIES))
@cases(30)
@given(size=sizes(), dtypes=st.sampled_from(DTYPES), device=st.sampled_from(DEVICES))
def test_factory(name, size, dtypes, device):
    ours, theirs = dtypes
    dev = Each(device, "cpu" if device is not None and str(device) == "cpu" else device)
    # torch takes a bare int size nowhere in full and randint, True as a size in randint alone: ours
    # takes the int everywhere and refuses bools everywhere
    bare_int = name in ("full", "randint") and len(size) == 1 and isinstance(size[0], (int, np.integer))
    bools = any(v is True for v in (size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size))
    floats_only = name in ("randn", "rand") and ours is not None and np.dtype(ours).kind != "f"
    # NumPy addresses no array with a dim of 2 ** 62, even an empty one (torch makes an empty one)
    huge = any(v == 2 ** 62 for v in (size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size))
    same(lambda m, d, dev: FACTORIES[name](m, size, d, dev), Each(ours, theirs), dev,
         names=(name, "size", "dtype", "device", "dimension", "allocate"), grad=False,
         may_refuse=floats_only or bools or huge, may_accept=bare_int)


def test_factory_refuses_cuda_cleanly_without_a_gpu():
    if tr.cuda_available():
        pytest.skip("a GPU answers here")
    _, error = attempt(lambda: tr.zeros(2, device="cuda"))
    assert_clean_error(error, ("cuda", "CuPy"))


@cases(40)
@given(fill=st.one_of(scalars(), st.just(2 ** 70), st.just(-1.5)), dtypes=st.sampled_from(DTYPES),
       shape=shapes(max_dims=2))
def test_full(fill, dtypes, shape):
    ours, theirs = dtypes
    # torch cannot read a Python int past int64 even for a float tensor; ours can
    same(lambda m, d: m.full(shape, fill, dtype=d), Each(ours, theirs), names=("full", "fill_value", "overflow"),
         grad=False, may_accept=fill == 2 ** 70)


@cases(60)
@given(start=st.one_of(st.integers(-3, 3), st.floats(-3, 3), st.sampled_from([float("nan"), float("inf")])),
       end=st.one_of(st.none(), st.integers(-3, 5), st.floats(-3, 5)),
       step=st.one_of(st.integers(-2, 2), st.sampled_from([0.5, -0.25, 0.1])), dtypes=st.sampled_from(DTYPES[:5]))
def test_arange(start, end, step, dtypes):
    ours, theirs = dtypes
    args = (start,) if end is None else (start, end, step)
    same(lambda m, d: m.arange(*args, dtype=d), Each(ours, theirs), names=("arange", "start", "end", "step", "bound"),
         grad=False, may_accept=theirs is torch.bool)


@cases(40)
@given(start=st.floats(-3, 3), end=st.floats(-3, 3), steps=st.one_of(st.integers(-1, 5), st.just(2.5)),
       dtypes=st.sampled_from(DTYPES[:4]))
def test_linspace(start, end, steps, dtypes):
    ours, theirs = dtypes
    same(lambda m, d: m.linspace(start, end, steps, dtype=d), Each(ours, theirs), names=("linspace", "steps"),
         grad=False)


LIKE = ["zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"]


@pytest.mark.parametrize("name", LIKE)
@cases(15)
@given(x=tensors(), dtypes=st.sampled_from(DTYPES))
def test_like(name, x, dtypes):
    ours, theirs = dtypes
    random = name in ("empty_like", "rand_like", "randn_like")
    float_only = name in ("rand_like", "randn_like") and (ours is None and x.array.dtype.kind != "f" or
                                                           ours is not None and np.dtype(ours).kind != "f")
    same(lambda m, x, d: (described if random else lambda t: t)(getattr(m, name)(x, dtype=d)), x, Each(ours, theirs),
         names=(name, "dtype", "draws"), grad=False, may_refuse=float_only)


@cases(20)
@given(seed=st.one_of(st.integers(-2 ** 64, 2 ** 65), st.sampled_from([1.5, None, "1", True])))
def test_manual_seed(seed):
    # torch truncates a float seed and reads True and "1" as 1; ours wants an int
    same(lambda m, s: m.manual_seed(s) and "seeded", Each(seed, seed), names=("manual_seed", "seed"), grad=False,
         may_refuse=isinstance(seed, (bool, float, str)))


# ----------------------------------------------------------------------------- tr.NAME(x, ...) is x.NAME(...)

# the arguments of one ordinary call of each function (besides the tensor)
CALLS = {"allclose": lambda x: (x,), "chunk": lambda x: (2, -1), "clamp": lambda x: (-1.0, 1.0),
         "clip": lambda x: (-1.0,), "eq": lambda x: (0.5,), "equal": lambda x: (x,), "expand": lambda x: ((2,) + x.shape,),
         "ge": lambda x: (0.5,), "gt": lambda x: (x,), "le": lambda x: (0,), "lt": lambda x: (1,),
         "log_softmax": lambda x: (-1,), "masked_fill": lambda x: (x > 0, 2.0), "maximum": lambda x: (x * 0,),
         "minimum": lambda x: (x * 0,), "narrow": lambda x: (-1, 0, 1), "ne": lambda x: (x,),
         "permute": lambda x: (tuple(reversed(range(x.ndim))),), "pow": lambda x: (2,),
         "repeat": lambda x: ((2,) * x.ndim,), "reshape": lambda x: ((-1,),), "roll": lambda x: (1, 0),
         "softmax": lambda x: (0,), "split": lambda x: (1, -1), "swapaxes": lambda x: (0, -1),
         "transpose": lambda x: (0, -1), "unsqueeze": lambda x: (-1,), "amax": lambda x: (-1,),
         "amin": lambda x: (0,), "argmax": lambda x: (-1,), "std": lambda x: (-1,), "clamp_min": lambda x: (0.5,),
         "clamp_max": lambda x: (0.5,), "copysign": lambda x: (-1.0,), "float_power": lambda x: (2,),
         "heaviside": lambda x: (x,), "hypot": lambda x: (x,), "logaddexp": lambda x: (x,),
         "logaddexp2": lambda x: (x * 2,), "true_divide": lambda x: (2.0,), "xlogy": lambda x: (x,),
         "divide": lambda x: (2.0,), "multiply": lambda x: (x,), "subtract": lambda x: (x,), "greater": lambda x: (x,),
         "greater_equal": lambda x: (0.5,), "less": lambda x: (x,), "less_equal": lambda x: (0,),
         "not_equal": lambda x: (x,), "fmax": lambda x: (x * 0,), "fmin": lambda x: (x * 0,), "ldexp": lambda x: (x,),
         "nextafter": lambda x: (x * 0,), "logical_and": lambda x: (x,), "logical_or": lambda x: (x,),
         "logical_xor": lambda x: (x,), "bitwise_and": lambda x: (x,), "bitwise_or": lambda x: (x,),
         "bitwise_xor": lambda x: (x,), "bitwise_left_shift": lambda x: (x,), "bitwise_right_shift": lambda x: (x,),
         "gcd": lambda x: (x,), "lcm": lambda x: (x,)}
NOT_IN_TORCH = ("expand", "repeat")  # methods only, in torch
# factors whose signs are LAPACK's choice, compared through what does not depend on them
GAUGE_INVARIANT = {"svd": lambda out: (out.S, out.U @ out.V.mT)}


@pytest.mark.parametrize("name", METHODS)
@cases(3)
@given(x=tensors(FLOATS, shape=shapes(min_dims=1, min_side=1, max_side=2)))
def test_function_is_the_method(name, x):
    args = CALLS.get(name, lambda x: ())

    def call(m, x):
        if m is torch and name in NOT_IN_TORCH:
            return getattr(x, name)(*args(x))
        return GAUGE_INVARIANT.get(name, lambda out: out)(getattr(m, name)(x, *args(x)))
    same(call, x, names=(name,), grad=name not in ("equal", "allclose"))


@pytest.mark.parametrize("name", METHODS)
@given(value=st.sampled_from([[1.0, 2.0], None]))
@cases(2)
def test_function_refuses_what_is_not_a_tensor(name, value):
    _, error = attempt(lambda: getattr(tr, name)(value))
    assert error is not None, f"tr.{name}({value!r}) returned instead of refusing"
    assert_clean_error(error, (name,))
    assert isinstance(error, TypeError) and "input" in str(error)


@cases(30)
@given(data=st.data())
def test_matmul_and_einsum(data):
    n, k, m = (data.draw(st.integers(0, 3)) for _ in range(3))
    a = data.draw(tensors(FLOATS, shape=data.draw(st.sampled_from([(n, k), (k,), (2, n, k)]))))
    b = data.draw(tensors(FLOATS, shape=data.draw(st.sampled_from([(k, m), (k,), (m, k), (2, k, m)]))))
    # both refuse operands of two dtypes, except that torch computes an empty product anyway
    mixed = a.array.dtype != b.array.dtype
    # einsum here does not broadcast size-1 dims, as torch's does: it refuses them by name
    ones = 1 in a.array.shape or 1 in b.array.shape
    same(lambda m_, a, b: m_.matmul(a, b), a, b, names=("matmul", "shapes"), may_refuse=mixed)
    equation = data.draw(st.sampled_from(["ij,jk->ik", "ij,jk", "i,i->", "...j,j...->...", "ij,kj->ik", "ii,i"]))
    same(lambda m_, a, b: m_.einsum(equation, a, b), a, b, names=("einsum", "subscripts", "operand", "equation"),
         may_refuse=equation == "ii,i" or mixed or ones)


@cases(20)
@given(x=st.one_of(tensors(), scalars(), st.just([1.0])))
def test_is_tensor(x):
    same(lambda m, x: m.is_tensor(x), x, names=("is_tensor",), grad=False)


@cases(30)
@given(weights=tensors(FLOATS + ("int64",), shape=shapes(min_dims=0, max_dims=3), special=True, low=0),
       count=st.sampled_from([1, 2, 5, 0, -1, 1.5]), replacement=st.booleans())
def test_multinomial(weights, count, replacement):
    """Draws differ from torch's: shapes, dtypes and which inputs are refused must not."""
    same(lambda m, w: shape_and_dtype(m.multinomial(w, count, replacement)), weights,
         names=("multinomial", "num_samples", "weights", "input"), grad=False)


@cases(20)
@given(x=tensors(), fill=scalars(), dtypes=st.sampled_from(DTYPES))
def test_full_like(x, fill, dtypes):
    ours, theirs = dtypes
    same(lambda m, x, d: m.full_like(x, fill, dtype=d), x, Each(ours, theirs), names=("full_like", "full", "fill_value"),
         grad=False)


@cases(20)
@given(shape=st.one_of(shapes(), st.just((-1,))), low=st.sampled_from([0.0, -1.0, 2.0]),
       high=st.sampled_from([1.0, 3.0, float("nan")]))
def test_uniform(shape, low, high):
    """tr.uniform(shape, low, high) (torch has no such function: compared with empty(shape).uniform_)."""
    same(lambda m, s: shape_and_dtype(m.uniform(s, low, high) if m is tr else m.empty(s).uniform_(low, high)),
         Each(shape, shape),
         names=("uniform", "size", "low", "high", "negative"), grad=False, may_accept=True)
