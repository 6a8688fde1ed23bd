"""Tensor constructors with torch's names and signatures, and the random number generator.

Random numbers are drawn on the host from a `tr.Generator` (generator.py; `tr.default_generator` when
none is given) and then moved, so a seed gives the same weights on the CPU and on the GPU. What they
draw is what torch's CPU generator draws after the same seed: integers, uniform and normal numbers
(draws.py).

Default dtypes follow torch: floating values make the default float (`tr.get_default_dtype()`, float32
unless `tr.set_default_dtype` changed it), integers int64, booleans bool;
`tensor` and `from_numpy` keep the dtype of an array they are given.
"""
import functools
import math
import numbers

import numpy as np

from . import backend, draws, dtypes
from .generator import (
    Generator,
    check_generator,
    default_generator,
    manual_seed,  # noqa: F401 (factory.manual_seed, as callers know it)
    numpy_source,
)
from .methods import TENSOR_TYPE_NAMES
from .tensor import Tensor, _native, _python_data

_rng = None  # while set (the step compiler's own stream, compile/trace.py), stands in for the default generator


def rng():
    """The NumPy Generator that draws given no generator (over the default generator's bits)."""
    return default_generator.numpy if _rng is None else _rng


def generator_for(generator, fn):
    """The tr.Generator torch's numbers are drawn from: `generator`, else the default one (else, while a
    stand-in stream is set, a Generator seeded from that stream)."""
    if check_generator(generator, fn) is not None:
        return generator
    return default_generator if _rng is None else Generator().manual_seed(int(_rng.integers(2 ** 63)))


# ----------------------------------------------------------------------------- argument helpers

def _size(shape, fn, size=None):
    """A shape from `*size` ints, one tuple or list, or the `size=` keyword, checked."""
    if size is not None:
        if shape:
            raise TypeError(f"{fn}: give the size positionally or as size=, not both")
        shape = (size,)
    if not shape:
        raise TypeError(f"{fn}: missing the size argument (a tuple of ints; () for a 0-d tensor)")
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"{fn}: size must be a tuple of ints; got {shape!r}")
        if n < 0:
            raise ValueError(f"{fn}: trying to create a tensor with negative dimension {n} (size {shape})")
    if math.prod(max(int(n), 1) for n in shape) * 8 > np.iinfo(np.intp).max:  # NumPy's limit, even if empty
        raise ValueError(f"{fn}: a tensor of size {shape} is too big to address")
    return tuple(int(n) for n in shape)


def _allocated(fn, shape, make):
    """make(), with running out of memory reported as torch reports it (RuntimeError), naming the size."""
    try:
        return make()
    except MemoryError:
        raise RuntimeError(f"{fn}: not enough memory for a tensor of size {shape}") from None


def _dtype(dtype, fn, default=None):
    """`dtype` checked; when None, `default` (the default float when that is None too)."""
    if dtype is not None:
        return dtypes.check(dtype, fn)
    return dtypes.get_default_dtype() if default is None else np.dtype(default)


def _float_dtype(dtype, fn):
    dtype = _dtype(dtype, fn)
    if dtype.kind != "f":
        raise TypeError(f"{fn}: draws floating point numbers; got dtype {dtype}")
    return dtype


def _wrap(array, requires_grad):
    """A leaf tensor around `array` itself (no copy)."""
    t = Tensor._make(array, None)
    return t.requires_grad_(True) if requires_grad else t


def _place(host_array, dtype, device, requires_grad):
    """A host array cast to dtype and moved to device, as a leaf tensor."""
    device = backend.check_device(device)
    return _wrap(backend.to_device(np.asarray(host_array).astype(dtype, copy=False), device), requires_grad)


def _scalar_dtype(*values):
    """The dtype torch gives a tensor made from these Python numbers: bool, int64 or the default float."""
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return np.dtype(np.bool_)
    if all(isinstance(v, (numbers.Integral, np.bool_)) for v in values):
        return np.dtype(np.int64)
    return dtypes.get_default_dtype()


# ----------------------------------------------------------------------------- from data

def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of `data` (a number, nested list, array or tensor), as torch.tensor.

    Python floats give the default float, ints int64, bools bool; arrays and tensors keep their dtype and
    device (foreign arrays, torch's included, are read through `__array__`). The result is always a
    leaf: a tensor passed in is copied and cut from its graph.
    """
    python_data = _python_data(data)
    array = _native(data, "tensor", None if dtype is None else _dtype(dtype, "tensor").kind)
    if python_data and dtype is None:
        array = array.astype(_sequence_dtype(data, array), copy=False)
    dtype = _dtype(dtype if dtype is not None else array.dtype, "tensor")
    if python_data:
        dtypes.check_fits(array, dtype, "tensor")
    device = backend.check_device(device if device is not None else backend.device_of(array))
    xp = backend.xp_for(device)
    with backend.ieee_quiet(xp):   # a float too large for a narrower float type becomes inf, as in torch
        array = xp.array(backend.to_device(array, device), dtype=dtype, copy=True)
    return _wrap(array, requires_grad)


def _default_dtype(array):
    """torch's dtype for values read from Python data."""
    kinds = {"f": dtypes.get_default_dtype(), "i": np.int64, "u": np.int64, "b": np.bool_}
    if array.dtype.kind not in kinds:
        raise TypeError(f"tensor: cannot make a tensor from data of dtype {array.dtype} "
                        f"(numbers, booleans or nested lists of them)")
    return kinds[array.dtype.kind]


_SEQUENCES = (list, tuple)


def _sequence_dtype(data, array):
    """torch's dtype for Python data: each element's own (a Python number its default one), promoted
    together; so tensors and NumPy scalars inside a list keep their width (float64 stays float64)."""
    if not isinstance(data, _SEQUENCES):
        return _default_dtype(array)
    kinds, pending = set(), [data]
    while pending:  # the types seen, cheaply: a long list of Python numbers adds three at most
        items = pending.pop()
        kinds.update(map(type, items))
        pending.extend(item for item in items if isinstance(item, _SEQUENCES))
    carriers = kinds - {list, tuple, bool, int, float}  # exact types: np.float64 subclasses float
    if not carriers:
        return _default_dtype(array)
    found = {_scalar_dtype(kind()) for kind in kinds & {bool, int, float}}
    found.update(np.dtype(str(item.dtype).removeprefix("torch.")) for item in _leaves_of(data, carriers))
    return functools.reduce(dtypes.promote_types, found)


def _leaves_of(data, kinds):
    """The elements of a nested sequence whose type is one of `kinds`."""
    for item in data:
        if isinstance(item, _SEQUENCES):
            yield from _leaves_of(item, kinds)
        elif type(item) in kinds:
            yield item


def from_numpy(ndarray):
    """A tensor sharing memory with a NumPy array (a change to one shows in the other), dtype kept."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(ndarray).__name__})")
    if ndarray.dtype.kind not in "biuf":
        raise TypeError(f"from_numpy: can't convert np.ndarray of type {ndarray.dtype}; the supported types "
                        f"are booleans, integers and floats")
    return _wrap(ndarray, False)


def as_tensor(data, dtype=None, device=None):
    """`data` as a tensor, sharing its memory where it can, as torch.as_tensor: a tensor of the dtype and
    device asked is returned itself, a NumPy array of that dtype on the CPU is wrapped (from_numpy);
    anything else is copied (tensor())."""
    wanted = None if dtype is None else _dtype(dtype, "as_tensor")
    if isinstance(data, Tensor):
        if (wanted is None or data.dtype == wanted) and (device is None or data.device == backend.check_device(device)):
            return data
        return data.to(device=device, dtype=wanted)
    if (isinstance(data, np.ndarray) and data.dtype.kind in "biuf" and (wanted is None or data.dtype == wanted)
            and backend.check_device(device or "cpu") == "cpu"):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


# ----------------------------------------------------------------------------- filled

def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """A tensor of `size` filled with `fill_value`; dtype from the value (bool, int64, the default float) by default."""
    size = _size((size,), "full")
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    values = _native(fill_value, "full")
    if values.ndim:
        raise TypeError(f"full: fill_value must be a number; got an array of shape {values.shape}")
    dtype = _dtype(dtype, "full", default=_scalar_dtype(fill_value))
    dtypes.check_fits(values, dtype, "full")
    device = backend.check_device(device)
    return _wrap(_allocated("full", size, lambda: backend.xp_for(device).full(size, fill_value, dtype=dtype)),
                 requires_grad)


def zeros(*shape, size=None, dtype=None, device=None, requires_grad=False):
    return full(_size(shape, "zeros", size), 0, dtype=_dtype(dtype, "zeros"), device=device,
                requires_grad=requires_grad)


def ones(*shape, size=None, dtype=None, device=None, requires_grad=False):
    return full(_size(shape, "ones", size), 1, dtype=_dtype(dtype, "ones"), device=device,
                requires_grad=requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    """The n x m (n x n) identity matrix, as torch.eye."""
    rows = _size((n,), "eye")[0]
    columns = rows if m is None else _size((m,), "eye")[0]
    dtype, device = _dtype(dtype, "eye"), backend.check_device(device)
    return _wrap(_allocated("eye", (rows, columns), lambda: backend.xp_for(device).eye(rows, columns, dtype=dtype)),
                 requires_grad)


def empty(*shape, size=None, dtype=None, device=None, requires_grad=False):
    """A tensor whose values are whatever the memory held (fill it before reading)."""
    dtype, device, shape = _dtype(dtype, "empty"), backend.check_device(device), _size(shape, "empty", size)
    return _wrap(_allocated("empty", shape, lambda: backend.xp_for(device).empty(shape, dtype=dtype)), requires_grad)


def _like(fn, input, dtype, device):
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}: input must be a Tensor; got {type(input).__name__}")
    return input.shape, (dtype if dtype is not None else input.dtype), (device if device is not None
                                                                          else input.device)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
    shape, dtype, device = _like("full_like", input, dtype, device)
    return full(shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def zeros_like(input, dtype=None, *, device=None, requires_grad=False):
    shape, dtype, device = _like("zeros_like", input, dtype, device)
    return zeros(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(input, dtype=None, *, device=None, requires_grad=False):
    shape, dtype, device = _like("ones_like", input, dtype, device)
    return ones(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def empty_like(input, dtype=None, *, device=None, requires_grad=False):
    shape, dtype, device = _like("empty_like", input, dtype, device)
    return empty(shape, dtype=dtype, device=device, requires_grad=requires_grad)


# ----------------------------------------------------------------------------- random

def randn(*shape, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal numbers (from `generator` when given)."""
    dtype, shape = _float_dtype(dtype, "randn"), _size(shape, "randn", size)
    source = generator_for(generator, "randn")
    return _place(_allocated("randn", shape, lambda: draws.normal(source, shape, dtype)), dtype, device,
                  requires_grad)


def rand(*shape, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform numbers in [0, 1) (from `generator` when given)."""
    dtype, shape = _float_dtype(dtype, "rand"), _size(shape, "rand", size)
    source = generator_for(generator, "rand")
    return _place(_allocated("rand", shape, lambda: draws.uniform(source, shape, dtype)), dtype, device,
                  requires_grad)


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """Integers drawn uniformly from [low, high): randint(high, size) or randint(low, high, size); int64.
    From a tr.Generator, the numbers torch draws from a torch.Generator seeded the same."""
    if size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high  # randint(high, size)
    elif high is None:
        low, high = 0, low              # randint(high, size=...)
    if size is None:
        raise TypeError("randint: missing the size argument, a tuple of ints: randint(low, high, size)")
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"randint: {name} must be an integer; got {value!r}")
    if low >= high:
        raise ValueError(f"randint: expects low < high to draw from [low, high); got low={low}, high={high}")
    size = _size((size,), "randint")
    dtype = _dtype(dtype, "randint", default=np.int64)
    if dtype.kind == "b" and (low < 0 or high > 2):
        raise ValueError(f"randint: values in [{low}, {high}) are out of bounds for bool")
    dtypes.check_fits(np.asarray([low, high - 1]), dtype, "randint")
    return _place(_torch_integers(generator_for(generator, "randint"), low, high, size), dtype, device, requires_grad)


def _torch_integers(generator, low, high, size):
    """torch's uniform_int_from_to: one word (two past 2**32 values) modulo the range, plus low."""
    span, count = high - low, math.prod(size)
    words = generator.random32(count) if span < 2 ** 32 else generator.random64(count)
    return (words % np.uint64(span)).astype(np.int64).reshape(size) + low


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False):
    """0 .. n-1 in random order, int64 by default: torch's permutation for a torch.Generator seeded the
    same (its Fisher-Yates swaps, one 32-bit word each)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"randperm(): argument 'n' must be int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"randperm: trying to create a tensor with negative dimension {n}: [{n}]")
    dtype = _dtype(dtype, "randperm", default=np.int64)
    order = np.arange(n, dtype=np.int64)
    words = generator_for(generator, "randperm").random32(max(n - 1, 0))
    for i, word in enumerate(words.tolist()):
        j = i + word % (n - i)
        order[i], order[j] = order[j], order[i]
    return _place(order, dtype, device, requires_grad)


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """Indices drawn from each row of `input`, read as weights (non-negative, any positive sum), as
    torch.multinomial: shape (num_samples,) for a vector, (rows, num_samples) for a matrix; int64.

    From float32 or float64 weights, the indices torch draws from a generator in the same state (float16
    weights: the same distribution, drawn by NumPy's algorithm over the generator's bits)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial: input must be a Tensor; got {type(input).__name__}")
    check_generator(generator, "multinomial")
    if input.ndim not in (1, 2) or input.dtype.kind != "f":
        raise ValueError(f"multinomial: input must be a 1-D or 2-D floating point tensor of weights; got shape "
                         f"{input.shape} {input.dtype}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral) or num_samples <= 0:
        raise ValueError(f"multinomial: num_samples must be a positive integer; got {num_samples!r}")
    weights = np.atleast_2d(backend.to_numpy(input.array)).astype(np.float64)
    if not replacement and num_samples > weights.shape[1]:
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement from "
                         f"{weights.shape[1]} categories (shape {input.shape})")
    if not len(weights):  # no rows: nothing to draw from, nothing drawn (as torch)
        return _place(np.zeros((0, num_samples), np.int64), np.int64, input.device, False)
    if weights.shape[1] == 0:
        raise ValueError(f"multinomial: a row of weights must have at least one category (shape {input.shape})")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError(f"multinomial: weights must be finite and non-negative (shape {input.shape})")
    nonzero = (weights > 0).sum(axis=1)
    if (nonzero == 0).any():
        raise ValueError(f"multinomial: a row of weights sums to zero (shape {input.shape})")
    if not replacement and num_samples > nonzero.min():
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement from a row with "
                         f"{nonzero.min()} non-zero weights (shape {input.shape})")
    if input.dtype in (np.float32, np.float64):
        rows, source = np.atleast_2d(backend.to_numpy(input.array)), generator_for(generator, "multinomial")
        if replacement and num_samples > 1:
            drawn = np.stack([_torch_inverse_cdf(source, row, num_samples) for row in rows])
        else:
            drawn = _torch_exponential_race(source, rows, num_samples)
    else:
        source = numpy_source(generator, "multinomial", rng())
        drawn = np.stack([source.choice(len(row), size=num_samples, replace=replacement, p=row / row.sum())
                          for row in weights])
    return _place(drawn if input.ndim == 2 else drawn[0], np.int64, input.device, False)


def _torch_inverse_cdf(generator, row, count):
    """torch's CPU multinomial with replacement: the running sum of the weights in their dtype, divided by
    the total, its last value set to 1; for each sample a uniform double, and the first category whose
    running sum reaches it."""
    cumulative = np.cumsum(row, dtype=row.dtype)
    cumulative = cumulative / cumulative[-1]
    cumulative[-1] = 1
    return np.searchsorted(cumulative.astype(np.float64), generator.uniform(count), side="left").astype(np.int64)


def _torch_exponential_race(generator, rows, count):
    """torch's CPU multinomial without replacement (or of one sample): weight / q for an exponential q per
    weight (-log1p(-u) of a uniform double, in the weights' dtype, all rows in order), and the `count`
    largest ratios of each row, largest first."""
    q = (-np.log1p(-generator.uniform(rows.size))).astype(rows.dtype).reshape(rows.shape)
    with np.errstate(divide="ignore"):  # q is 0 once in 2**53 draws: that weight wins, as in torch
        ratio = rows / q
    if count == 1:
        return ratio.argmax(axis=1, keepdims=True).astype(np.int64)
    return np.argsort(-ratio, axis=1, kind="stable")[:, :count].astype(np.int64)


def rand_like(input, dtype=None, *, device=None, requires_grad=False):
    shape, dtype, device = _like("rand_like", input, dtype, device)
    return rand(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def randn_like(input, dtype=None, *, device=None, requires_grad=False):
    shape, dtype, device = _like("randn_like", input, dtype, device)
    return randn(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def uniform(shape, low, high, dtype=None, device=None, requires_grad=False):
    """Numbers drawn uniformly from [low, high)."""
    from .methods import _check_range
    shape, dtype = _size((shape,), "uniform"), _float_dtype(dtype, "uniform")
    _check_range("uniform", low, high)
    source = generator_for(None, "uniform")
    return _place(_allocated("uniform", shape, lambda: draws.uniform(source, shape, dtype, low, high)), dtype,
                  device, requires_grad)


# ----------------------------------------------------------------------------- ranges

def arange(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    """start, start + step, ... up to (not including) end: arange(end) or arange(start, end, step).

    int64 when all three are integers, else the default float, as torch; values start + i * step in float64.
    """
    if end is None:
        start, end = 0, start
    for name, value in (("start", start), ("end", end), ("step", step)):
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"arange: {name} must be a finite number; got {value!r}")
    dtype = _dtype(dtype, "arange", default=_scalar_dtype(start, end, step))
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: upper bound and larger bound inconsistent with step sign "
                         f"(start={start}, end={end}, step={step})")
    if dtype.kind in "iub":  # as torch: an integer dtype takes the arguments as integers, once checked
        start, end, step = int(start), int(end), int(step)
        if step == 0:
            raise ValueError("arange: step must be nonzero (it is 0 as an integer)")
    count = math.ceil((end - start) / step)
    if all(isinstance(v, numbers.Integral) for v in (start, end, step)):
        values = start + np.arange(count, dtype=np.int64) * step
    else:
        values = float(start) + np.arange(count, dtype=np.float64) * float(step)
    return _place(values, dtype, device, requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    """`steps` evenly spaced values from start to end inclusive, computed from both ends as torch does."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"linspace: number of steps must be a non-negative integer; got {steps!r}")
    dtype = _dtype(dtype, "linspace")
    if dtype.kind in "iub":  # as torch: an integer dtype takes its ends as integers
        start, end = int(start), int(end)
    index = np.arange(steps, dtype=np.float64)
    if steps > 1:
        step = (float(end) - float(start)) / (steps - 1)
        halfway = steps // 2  # the second half counts back from end, so both ends are exact
        values = np.where(index < halfway, float(start) + step * index, float(end) - step * (steps - 1 - index))
    else:
        values = np.full(steps, float(start))
    return _place(values, dtype, device, requires_grad)


# ----------------------------------------------------------------------------- torch's legacy tensor types

class _LegacyTensorType(type):
    """isinstance(t, tr.FloatTensor) holds for a Tensor of that dtype, as in torch."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype


def _legacy_type(name, dtype):
    """tr.FloatTensor, tr.LongTensor ...: NAME(data) is tensor(data, dtype), NAME(*sizes) uninitialised memory."""
    def new(cls, *args, device=None):
        if all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in args):
            return empty(args or (0,), dtype=dtype, device=device)
        data = args[0]
        if len(args) > 1 or isinstance(data, numbers.Number):
            raise TypeError(f"{name}(): takes data (a sequence, array or tensor) or sizes (ints); got "
                            f"{', '.join(type(a).__name__ for a in args)}")
        if isinstance(data, Tensor) and data.dtype != dtype:
            raise TypeError(f"{name}(): expected a tensor of dtype {dtype}; got {data.dtype} (use .to(dtype))")
        return tensor(data, dtype=dtype, device=device)
    return _LegacyTensorType(name, (), {"__new__": new, "dtype": dtype, "__doc__": new.__doc__})


LEGACY_TENSOR_TYPES = {name: _legacy_type(name, dtype) for dtype, name in TENSOR_TYPE_NAMES.items()}
