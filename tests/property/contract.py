"""The contract every property test checks, in one place.

A call is run on tinygrad_rnn and on PyTorch (or a NumPy reference) with the same inputs. Then
either both return the same thing (values, shapes, dtypes, and gradients where differentiable),
or ours raised an error of a documented type, from our own code, whose message names the op or the
argument. An error from inside NumPy, an exception of an undocumented type (AttributeError,
ZeroDivisionError, numpy's AxisError ...) or a result where PyTorch refuses (or the reverse) fails
the test, unless the call says that this difference is deliberate (`may_refuse`, `may_accept`).
"""
import dataclasses
import os
import traceback
import warnings

import numpy as np
import torch
from hypothesis import HealthCheck, event, settings
from hypothesis.control import currently_in_test_context

import tinygrad_rnn as tr

PACKAGE = os.path.dirname(os.path.abspath(tr.__file__)) + os.sep
# Every error a user may be told about: DeviceError, InputError, StateDictError, CheckpointError and
# GradcheckError derive from these.
DOCUMENTED = (ValueError, TypeError, IndexError, RuntimeError)
TOLERANCE = {np.dtype(np.float16): (1e-2, 1e-3), np.dtype(np.float32): (1e-4, 1e-5),
             np.dtype(np.float64): (1e-9, 1e-12)}


def cases(n):
    """Hypothesis settings of a property test: n examples, deterministic, no per-example deadline.

    Derandomized runs repeat themselves for the same set of imported modules (Hypothesis also draws
    constants it finds in local source files), so a run of the whole suite, as CI runs it, is the
    same every time; a run of one file may try other examples. PROPERTY_SCALE=k runs k times as
    many examples, drawn at random: the search to run by hand before a release.
    """
    scale = float(os.environ.get("PROPERTY_SCALE", "1"))  # PROPERTY_SCALE=20: a longer, random search
    return settings(max_examples=max(1, round(n * scale)), deadline=None, derandomize=scale == 1, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# ----------------------------------------------------------------------------- inputs

LAYOUTS = ("copy", "shared", "noncontiguous", "readonly")


@dataclasses.dataclass(frozen=True)
class Arg:
    """A NumPy array given to both libraries as a tensor.

    layout "copy": tr.tensor(array); "shared": tr.from_numpy(array); "noncontiguous": from_numpy of
    a strided view holding the same values; "readonly": from_numpy of a read-only array. PyTorch
    always gets its own contiguous copy.
    """
    array: np.ndarray
    layout: str = "copy"
    differentiable: bool = True  # False: never requires grad (a class weight, a target)

    def ours(self, requires_grad):
        a = self.array
        if self.layout == "copy":
            t = tr.tensor(a)
        else:
            if self.layout == "noncontiguous":
                a = _strided_copy(a)
            elif self.layout == "readonly":
                a = a.copy()
                a.flags.writeable = False
            else:
                a = a.copy()
            t = tr.from_numpy(a)
        return t.requires_grad_(True) if requires_grad else t

    def theirs(self, requires_grad):
        t = torch.tensor(self.array.copy())
        return t.requires_grad_(True) if requires_grad else t

    def __repr__(self):
        body = np.array2string(self.array, separator=", ", threshold=50)
        return f"Arg({body}, dtype={self.array.dtype}, shape={self.array.shape}, layout={self.layout!r})"


def _strided_copy(a):
    """The values of `a` in a view that is not C-contiguous (every other element of a wider array)."""
    if a.ndim == 0:
        return a.copy()
    wide = np.repeat(a, 2, axis=-1)
    return wide[..., ::2]


@dataclasses.dataclass(frozen=True)
class Each:
    """A value that differs between the libraries: `ours` goes to tinygrad_rnn, `theirs` to torch."""
    ours: object
    theirs: object


def _convert(value, side, requires_grad):
    if isinstance(value, Arg):
        grad = requires_grad and value.differentiable and value.array.dtype.kind == "f"
        return value.ours(grad) if side == "ours" else value.theirs(grad)
    if isinstance(value, Each):
        return value.ours if side == "ours" else value.theirs
    if isinstance(value, list):
        return [_convert(v, side, requires_grad) for v in value]
    if isinstance(value, tuple):
        return tuple(_convert(v, side, requires_grad) for v in value)
    return value


# ----------------------------------------------------------------------------- errors

# Python's own operator protocol: `0 & tensor` when neither operand knows how (PyTorch says the same)
PROTOCOL = ("unsupported operand type(s)", "not supported between instances of")


def assert_clean_error(error, names, call=""):
    """A documented type, raised in tinygrad_rnn's code, with a message naming the op or argument."""
    where = f" (from {call})" if call else ""
    trace = "".join(traceback.format_exception(error))
    frames = traceback.extract_tb(error.__traceback__)
    ours_or_numpy = any(f.filename.startswith(PACKAGE) or "numpy" in f.filename for f in frames)
    if type(error) is TypeError and str(error).startswith(PROTOCOL) and not ours_or_numpy:
        return  # raised by the interpreter at the call itself, no code of ours or NumPy's ran
    assert isinstance(error, DOCUMENTED), f"undocumented exception type{where}:\n{trace}"
    assert not type(error).__module__.startswith(("numpy", "torch")), f"{type(error)} escaped{where}:\n{trace}"
    last = traceback.extract_tb(error.__traceback__)[-1]
    assert os.path.abspath(last.filename).startswith(PACKAGE), \
        f"raised outside tinygrad_rnn ({last.filename}:{last.lineno}){where}:\n{trace}"
    message = str(error)
    assert any(name in message for name in names), \
        f"the message names none of {names}{where}: {type(error).__name__}: {message}"


def attempt(fn):
    """(result, None) or (None, the exception)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(), None
    except Exception as e:  # noqa: BLE001 - the contract sorts them
        return None, e


# ----------------------------------------------------------------------------- results

def torch_dtype_as_numpy(dtype):
    return torch.empty(0, dtype=dtype).numpy().dtype


def assert_same(ours, theirs, what="result"):
    """Same structure, shapes, dtypes and values (NaN where NaN), with a tolerance set by dtype."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, tr.Tensor), f"{what}: expected a Tensor, got {type(ours).__name__} {ours!r}"
        expected = theirs.detach().numpy()
        assert ours.shape == expected.shape, f"{what}: shape {ours.shape} != torch's {expected.shape}"
        assert ours.dtype == expected.dtype, f"{what}: dtype {ours.dtype} != torch's {expected.dtype}"
        assert_values(ours.numpy(), expected, what)
    elif isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray), f"{what}: expected a NumPy array, got {type(ours).__name__}"
        assert (ours.shape, ours.dtype) == (theirs.shape, theirs.dtype), \
            f"{what}: {ours.shape} {ours.dtype} != torch's {theirs.shape} {theirs.dtype}"
        assert_values(ours, theirs, what)
    elif isinstance(theirs, (tuple, list)) and not isinstance(theirs, torch.Size):
        assert isinstance(ours, (tuple, list)), f"{what}: expected a sequence, got {type(ours).__name__}"
        assert len(ours) == len(theirs), f"{what}: {len(ours)} items, torch gives {len(theirs)}"
        for k, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{what}[{k}]")
    elif isinstance(theirs, (bool, int, float, np.generic)):
        assert type(ours) is type(theirs), f"{what}: {type(ours).__name__} {ours!r} != torch's {theirs!r}"
        assert_values(np.asarray(ours), np.asarray(theirs), what)
    else:
        assert tuple(ours) == tuple(theirs) if isinstance(theirs, torch.Size) else ours == theirs, \
            f"{what}: {ours!r} != {theirs!r}"


def assert_values(ours, expected, what, precision=None):
    if ours.dtype.kind == "f":
        precision = ours.dtype if precision is None or precision.itemsize > ours.dtype.itemsize else precision
        rtol, atol = TOLERANCE[np.dtype(precision)]
        scale = np.nanmax(np.abs(expected[np.isfinite(expected)]), initial=1.0)
        np.testing.assert_allclose(ours, expected, rtol=rtol, atol=atol * scale, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(ours, expected, err_msg=what)


# ----------------------------------------------------------------------------- the check

def same(call, *args, names, reference=None, grad=True, may_refuse=False, may_accept=False, **kwargs):
    """Run `call(lib, *args, **kwargs)` with lib = tinygrad_rnn and torch and apply the contract.

    `reference(torch, ...)` replaces `call` on PyTorch's side where the spelling differs. `names`:
    what an error message must mention (the op, the argument). `may_refuse`: ours may raise a clean
    error where torch computes (a feature left out on purpose); `may_accept`: ours may compute
    where torch refuses (then nothing is compared). Returns our result (None if it refused).
    Gradients flow from a random weighting of every floating output to every floating input.
    """
    torch.set_default_dtype(torch.float32)  # torch's own default (other tests set float64): as ours
    inputs = (args, kwargs)
    ours_in = _convert(inputs, "ours", grad)
    theirs_in = _convert(inputs, "theirs", grad)
    ours, error = attempt(lambda: call(tr, *ours_in[0], **ours_in[1]))
    theirs, their_error = attempt(lambda: (reference or call)(torch, *theirs_in[0], **theirs_in[1]))
    shown = f"{names[0]} with {args!r} {kwargs!r}"
    if currently_in_test_context():  # what --hypothesis-show-statistics reports per test
        event("refused by both" if error is not None and their_error is not None else "refused by ours" if error
              is not None else "refused by torch" if their_error is not None else "computed by both")
    if error is not None:
        assert_clean_error(error, names, shown)
        assert their_error is not None or may_refuse, \
            f"{shown}: ours refuses ({type(error).__name__}: {error}) where torch gives {theirs!r}"
        return None
    if their_error is not None:
        assert may_accept, (f"{shown}: torch refuses ({type(their_error).__name__}: {their_error}) but ours "
                            f"returns {ours!r}")
        return ours
    assert_same(ours, theirs, shown)
    if grad:
        assert_same_gradients(ours, theirs, ours_in, theirs_in, shown)
    return ours


def _tensors(value, cls):
    if isinstance(value, cls):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v, cls)]
    return []


def assert_same_gradients(ours, theirs, ours_in, theirs_in, shown):
    """Backward from sum(w * output) on both sides, the same w; every input's gradient compared.

    Skipped when an input holds NaN or Inf: which of 0 * NaN or a selected-away NaN a VJP keeps is
    not part of the contract.
    """
    leaves_ours = [t for t in _tensors(ours_in, tr.Tensor) if t.requires_grad and t.is_leaf]
    leaves_theirs = [t for t in _tensors(theirs_in, torch.Tensor) if t.requires_grad and t.is_leaf]
    if not leaves_theirs or any(not torch.isfinite(t).all() for t in leaves_theirs):
        return
    outs_ours, outs_theirs = _tensors(ours, tr.Tensor), _tensors(theirs, torch.Tensor)
    rng = np.random.default_rng(0)
    total_ours, total_theirs = [], []
    for o, t in zip(outs_ours, outs_theirs):
        if not (t.requires_grad and t.dtype.is_floating_point):
            continue
        w = rng.standard_normal(tuple(t.shape))
        total_theirs.append((t * torch.tensor(w, dtype=t.dtype)).sum())
        if o.requires_grad:
            total_ours.append((o * tr.tensor(w, dtype=o.dtype)).sum())
    if not total_theirs:
        return
    try:
        sum(total_theirs).backward()
    except RuntimeError:
        return  # torch has no gradient here (a bool exponent, say): nothing to compare with
    if total_ours:
        loss = total_ours[0]
        for term in total_ours[1:]:
            loss = loss + term
        loss.backward()
    for k, (a, b) in enumerate(zip(leaves_ours, leaves_theirs)):
        # force: torch's sgn gives its gradient as a ZeroTensor
        expected = np.zeros(tuple(b.shape), b.detach().numpy().dtype) if b.grad is None else b.grad.numpy(force=True)
        got = np.zeros(a.shape, a.dtype) if a.grad is None else a.grad.numpy()
        assert got.shape == expected.shape, f"{shown}: gradient {k} has shape {got.shape}, torch's {expected.shape}"
        assert got.dtype == expected.dtype, f"{shown}: gradient {k} has dtype {got.dtype}, torch's {expected.dtype}"
        # a gradient is as precise as the computation it went through: float32 if any output was
        precision = min((o.dtype for o in outs_ours if o.dtype.kind == "f"), key=lambda d: d.itemsize, default=None)
        assert_values(got, expected, f"{shown}: gradient of input {k}", precision)
