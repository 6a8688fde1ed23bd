"""Edge cases of tensor methods, nn.functional, losses, modules and schedulers, each run with torch and
with tinygrad_rnn on the same data: values, gradients, dtypes, and errors for bad input."""
import numpy as np
import pytest

import tinygrad_rnn as tr


@pytest.fixture
def torch32(torch):
    """torch with its own default float, float32, which is ours (the `torch` fixture sets float64)."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield torch
    torch.set_default_dtype(default)


def _dtype_name(dtype):
    return str(dtype).replace("torch.", "")


# ----------------------------------------------------------------------------- type promotion of numbers

@pytest.mark.parametrize("number", [0.5, np.float64(0.5), np.float32(0.5), np.float16(0.5), np.int32(2)],
                         ids=["float", "np.float64", "np.float32", "np.float16", "np.int32"])
@pytest.mark.parametrize("op", [lambda lib, x, s: x * s, lambda lib, x, s: s * x, lambda lib, x, s: x + s,
                                lambda lib, x, s: s - x, lambda lib, x, s: x / s, lambda lib, x, s: x // s,
                                lambda lib, x, s: s // x, lambda lib, x, s: x % s, lambda lib, x, s: s % x,
                                lambda lib, x, s: x ** s, lambda lib, x, s: x.add(s),
                                lambda lib, x, s: x.div(s, rounding_mode="floor"),
                                lambda lib, x, s: x.clamp(min=s), lambda lib, x, s: lib.where(x > 1, x, s),
                                lambda lib, x, s: lib.where(x > 1, s, x), lambda lib, x, s: (x > 1) * s],
                         ids=["mul", "rmul", "add", "rsub", "div", "floordiv", "rfloordiv", "mod", "rmod", "pow",
                              "add()", "div(floor)", "clamp", "where", "where_y", "bool_mul"])
def test_a_number_beside_an_integer_tensor_promotes_as_torch(op, number, torch32):
    """A Python or NumPy number is weak: an int tensor with a float number is float32, never float64."""
    theirs = op(torch32, torch32.tensor([1, 2, 3]), number)
    ours = op(tr, tr.tensor([1, 2, 3]), number)
    assert _dtype_name(ours.dtype) == _dtype_name(theirs.dtype)
    np.testing.assert_allclose(ours.numpy().astype(np.float64), theirs.numpy().astype(np.float64), rtol=1e-6)
