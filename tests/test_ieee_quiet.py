"""Values outside an op's domain, and overflow, give torch's IEEE results (inf, -inf, NaN) and, as in
torch, no warning: forward, backward and gradients that meet 0 * inf. (Arithmetic that makes NaN of
infinities in the forward, inf - inf or 0 * inf, still warns as NumPy does.)"""
import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinygrad_rnn as tr

inf = math.inf

def _minus_inf_at_zero(x):
    rows = x.reshape(2, 2)
    return rows.masked_fill(rows == 0, -inf)


# name -> (function of an input and the library (tinygrad_rnn or torch), the input's values)
CASES = {
    "log of 0 and -1": (lambda x, lib: x.log(), [0.0, -1.0, 2.0]),
    "log2 and log10 of 0": (lambda x, lib: x.log2() + x.log10(), [0.0, 3.0]),
    "log1p of -1 and -2": (lambda x, lib: x.log1p(), [-1.0, -2.0, 0.5]),
    "division by 0": (lambda x, lib: 1 / x + x / x, [0.0, 2.0]),
    "reciprocal of 0": (lambda x, lib: x.reciprocal(), [0.0, -0.0, 4.0]),
    "exp overflow": (lambda x, lib: x.exp(), [1000.0, 1.0]),
    "expm1 overflow": (lambda x, lib: x.expm1(), [1000.0, 1.0]),
    "cosh overflow": (lambda x, lib: x.cosh(), [1000.0, 1.0]),
    "sqrt of -1": (lambda x, lib: x.sqrt(), [-1.0, 0.0, 4.0]),
    "rsqrt of 0 and -1": (lambda x, lib: x.rsqrt(), [0.0, -1.0, 4.0]),
    "pow at 0 and of a negative base": (lambda x, lib: x ** -1.0 + x.abs() ** 0.5 + (x - 1) ** 0.5, [0.0, 4.0]),
    "asin and acos past 1": (lambda x, lib: x.asin() + x.acos(), [2.0, 0.5]),
    "atanh at 1 and past, acosh below 1": (lambda x, lib: x.atanh() + x.acosh(), [1.0, 2.0, 0.5]),
    "xlogy and remainder at 0": (lambda x, lib: lib.xlogy(x, x) + x.remainder(x), [0.0, 2.0]),
    "softmax of a row of -inf": (lambda x, lib: lib.nn.functional.softmax(_minus_inf_at_zero(x), dim=1), [0.0, 0.0, 1.0, 2.0]),
    "log_softmax of a row of -inf": (lambda x, lib: lib.nn.functional.log_softmax(_minus_inf_at_zero(x), dim=1), [0.0, 0.0, 1.0, 2.0]),
    "a log masked by where": (lambda x, lib: lib.where(x > 0, x.log(), x * 0), [0.0, 1.0, 3.0]),
}


def _run(library, name):
    fn, values = CASES[name]
    x = library.tensor(values, dtype=library.float64, requires_grad=True)
    out = fn(x, library)
    out.backward(library.ones_like(out))
    return np.asarray(out.detach().numpy()), np.asarray(x.grad.numpy())


@pytest.mark.parametrize("name", sorted(CASES))
def test_special_values_are_torch_s_and_silent(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # any warning fails the test
        ours = _run(tr, name)
    theirs = _run(torch, name)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=0)


def test_numpy_itself_still_warns_outside_the_library():
    tr.tensor([0.0]).log()
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        np.log(np.zeros(1))


def test_a_float_too_large_for_float32_becomes_inf_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = tr.tensor([1e200, -1e200, 1.5], dtype=tr.float32)
    theirs = torch.tensor([1e200, -1e200, 1.5], dtype=torch.float32)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
