"""The elementwise math a port from PyTorch reaches for: atan, asinh, acosh, atanh (and their arc- names),
hypot, logaddexp / logaddexp2, xlogy, copysign, heaviside, sgn, signbit, isposinf / isneginf, isreal,
deg2rad / rad2deg, sinc, erfc, float_power, absolute, true_divide, clamp_min / clamp_max. Each against torch in
float64 (values, gradients and second derivatives) over inputs that include 0, -0, +-1, large values, inf and
NaN, as methods, as `tr.` functions and in place, with torch's dtypes and refusals."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinygrad_rnn as tr

INF, NAN = np.inf, np.nan
# the domain edges of every op here, the kinks, tiny and huge values, the infinities and NaN
EDGES = np.array([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 1e-8, -3e-4, 25.0, -7.25, 1e200, -1e200, INF, -INF,
                  NAN])
F64 = {tr: tr.float64, torch: torch.float64}


pytestmark = pytest.mark.usefixtures("torch_default_float32")   # dtypes are compared


def _inside(low=-3.0, high=3.0, shape=(3, 4), seed=0):
    """Values strictly inside (low, high), where second derivatives are finite."""
    return np.random.default_rng(seed).uniform(low, high, shape)


def _numpy(t):
    return t.detach().numpy(force=True) if isinstance(t, torch.Tensor) else t.numpy()  # force: a ZeroTensor too


def _results(lib, fn, arrays, device, order):
    """fn's values, then the gradients of a weighted sum of them (then of the squared gradients, order 2)."""
    place = {"device": device} if lib is tr else {}
    leaves = [lib.tensor(a, dtype=F64[lib], requires_grad=True, **place) for a in arrays]
    out = fn(lib, *leaves)
    weight = np.random.default_rng(7).uniform(0.5, 1.5, tuple(out.shape))
    loss = (out * lib.tensor(weight, dtype=F64[lib], **place)).sum()
    grads = lib.autograd.grad(loss, leaves, create_graph=order == 2)
    results = [out, *grads]
    if order == 2:
        results += lib.autograd.grad(sum((g * g).sum() for g in grads), leaves)
    return [_numpy(r) for r in results]


def _against_torch(fn, *arrays, device="cpu", order=1):
    """fn(lib, *leaves) the same in both libraries: values to rtol 1e-13 (a zero's sign included), derivatives
    to 1e-12 (and 1e-14 absolute: torch's second derivatives of piecewise linear ops are rounding noise), NaN
    and inf where torch has them."""
    ours, theirs = (_results(lib, fn, arrays, device, order) for lib in (tr, torch))
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.shape == b.shape and a.dtype == b.dtype, (k, a, b)
        np.testing.assert_allclose(a, b, rtol=1e-13 if k == 0 else 1e-12, atol=0 if k == 0 else 1e-14,
                                   err_msg=f"result {k}")
        if k == 0:
            np.testing.assert_array_equal(np.signbit(a[a == 0]), np.signbit(b[a == 0]), err_msg="the sign of 0")


# ----------------------------------------------------------------------------- unary ops

# name -> the inputs its values and gradients are compared at (the edges, squeezed into the domain)
UNARY = ["atan", "arctan", "asinh", "arcsinh", "acosh", "arccosh", "atanh", "arctanh", "sinc", "erfc", "deg2rad",
         "rad2deg", "absolute", "sgn"]
LINEAR = ("deg2rad", "rad2deg", "absolute", "sgn")  # piecewise: no second derivative to compare
# where second derivatives exist
SECOND_ORDER_DOMAIN = {"acosh": (1.1, 4.0), "arccosh": (1.1, 4.0), "atanh": (-0.9, 0.9), "arctanh": (-0.9, 0.9)}


@pytest.mark.parametrize("name", UNARY)
def test_unary_values_and_gradients_match_torch_at_the_edges(name, device):
    _against_torch(lambda lib, x: getattr(lib, name)(x) + getattr(x, name)() * 0.5, EDGES, device=device)


@pytest.mark.parametrize("name", [name for name in UNARY if name not in LINEAR])
def test_unary_second_derivatives_match_torch(name, device):
    values = _inside(*SECOND_ORDER_DOMAIN.get(name, (-3.0, 3.0)))
    _against_torch(lambda lib, x: getattr(lib, name)(x), values, device=device, order=2)


def test_sinc_is_one_at_zero_with_a_zero_gradient_and_exact_near_zero():
    near_zero = np.array([0.0, -0.0, 1e-300, 1e-160, 1e-12, -1e-6, 1e-3, 3.0])
    _against_torch(lambda lib, x: lib.sinc(x), near_zero)
    # NaN where pi x**2 is 0, as torch's (closer to 0 both lose digits to cancellation, in different places)
    _against_torch(lambda lib, x: lib.sinc(x), np.array([0.0, -0.0, 1e-300, 1e-160, 0.25, 3.0]), order=2)
    x = tr.tensor([0.0], dtype=tr.float64, requires_grad=True)
    x.sinc().sum().backward()
    assert x.sinc().item() == 1.0 and x.grad.item() == 0.0


def test_erfc_keeps_its_tail_where_one_minus_erf_is_zero():
    _against_torch(lambda lib, x: lib.erfc(x), np.array([5.0, 10.0, 26.0, 27.5, -10.0]))
    assert 0 < tr.erfc(tr.tensor(10.0, dtype=tr.float64)).item() < 1e-40


@pytest.mark.parametrize("name", UNARY)
def test_unary_dtypes_as_torch(name):
    """Integers and bools compute in the default float (sgn and absolute keep integers); float32 stays."""
    for values, dtype in (([0, 1, -2, 3], "int64"), ([True, False], "bool"), ([0.5, -1.0], "float32")):
        if name == "absolute" and dtype == "bool":
            continue  # refused by both (below)
        ours = getattr(tr, name)(tr.tensor(values, dtype=getattr(tr, dtype)))
        theirs = getattr(torch, name)(torch.tensor(values, dtype=getattr(torch, dtype)))
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), (name, dtype)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_absolute_refuses_bools_and_sgn_keeps_them_as_torch():
    for lib in (tr, torch):
        with pytest.raises((TypeError, RuntimeError)):
            lib.absolute(lib.tensor([True]))
    assert tr.sgn(tr.tensor([True, False])).numpy().tolist() == [True, False]


# ----------------------------------------------------------------------------- binary ops

BINARY = {
    "hypot": lambda lib, x, y: lib.hypot(x, y) + x.hypot(y * 2),
    "logaddexp": lambda lib, x, y: lib.logaddexp(x, y) + x.logaddexp(y * 2),
    "logaddexp2": lambda lib, x, y: lib.logaddexp2(x, y) + x.logaddexp2(y * 2),
    "xlogy": lambda lib, x, y: lib.xlogy(x, y) + x.xlogy(y * 2),
    "copysign": lambda lib, x, y: lib.copysign(x, y) + x.copysign(y * 2),
    "float_power": lambda lib, x, y: lib.float_power(x, y) + x.float_power(y * 2),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_values_and_gradients_match_torch_on_every_pair_of_edges(name, device):
    """Every pair of EDGES, by broadcasting a column against a row."""
    _against_torch(BINARY[name], EDGES[:, None], EDGES[None, :], device=device)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_second_derivatives_match_torch(name, device):
    low = 0.1 if name in ("xlogy", "float_power") else -3.0  # the logarithm's domain
    _against_torch(BINARY[name], _inside(seed=1), _inside(low, 3.0, (4,), seed=2), device=device, order=2)


def test_xlogy_is_zero_where_x_is_zero_unless_y_is_nan():
    ours = tr.xlogy(tr.zeros(4, dtype=tr.float64), tr.tensor([0.0, INF, -1.0, NAN], dtype=tr.float64))
    np.testing.assert_array_equal(ours.numpy(), [0.0, 0.0, 0.0, NAN])


def test_copysign_sends_a_zero_gradient_to_the_sign_as_torch():
    for lib in (tr, torch):
        x, y = (lib.tensor([1.0, -2.0], dtype=F64[lib], requires_grad=True) for _ in range(2))
        lib.copysign(x, y).sum().backward()
        assert y.grad.tolist() == [0.0, 0.0]


def _same_dtype_and_values(fn):
    ours, theirs = fn(tr), fn(torch)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), (ours.dtype, theirs.dtype)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


PROMOTIONS = {
    "xlogy_ints": lambda lib: lib.xlogy(lib.tensor([1, 2, 0]), lib.tensor([3, 4, 0])),
    "xlogy_bools": lambda lib: lib.xlogy(lib.tensor([True, False]), lib.tensor([True, True])),
    "xlogy_number": lambda lib: lib.xlogy(lib.tensor([1, 2]), 3.5),
    "xlogy_number_first": lambda lib: lib.xlogy(2, lib.tensor([1.0, 3.0])),
    "xlogy_float_number_first_of_ints": lambda lib: lib.xlogy(2.5, lib.tensor([1, 3])),
    "xlogy_mixed_floats": lambda lib: lib.xlogy(lib.tensor([1.0]), lib.tensor([2.0, 3.0], dtype=lib.float64)),
    "copysign_ints": lambda lib: lib.copysign(lib.tensor([1, 2]), lib.tensor([-3, 4])),
    "copysign_number": lambda lib: lib.tensor([1, 2]).copysign(-1),
    "copysign_float32_by_ints": lambda lib: lib.copysign(lib.tensor([1.0, -2.0]), lib.tensor([-1, 0])),
    "hypot_mixed_floats": lambda lib: lib.hypot(lib.tensor([3.0]), lib.tensor([4.0], dtype=lib.float64)),
    "hypot_int_and_float": lambda lib: lib.hypot(lib.tensor([3]), lib.tensor([4.0])),
    "logaddexp_0d": lambda lib: lib.logaddexp(lib.tensor([1.0, 2.0]), lib.tensor(0.5, dtype=lib.float64)),
    "float_power_ints": lambda lib: lib.float_power(lib.tensor([2, 3]), 2),
    "float_power_negative": lambda lib: lib.float_power(lib.tensor([2, 4]), -1),
    "float_power_number_first": lambda lib: lib.float_power(2, lib.tensor([2.0, 0.5])),
    "float_power_float32": lambda lib: lib.tensor([2.0]).float_power(lib.tensor([0.5])),
}


@pytest.mark.parametrize("name", sorted(PROMOTIONS))
def test_binary_dtypes_and_numbers_as_torch(name):
    _same_dtype_and_values(PROMOTIONS[name])


@pytest.mark.parametrize("name", ["hypot", "logaddexp", "logaddexp2"])
def test_floating_only_binaries_refuse_numbers_and_integers_by_name(name):
    x = tr.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match=f"{name}: argument 'other' must be a Tensor, not float"):
        getattr(tr, name)(x, 2.0)
    with pytest.raises(NotImplementedError, match=f"{name}: not implemented for int64"):
        getattr(x.long(), name)(tr.tensor([3, 4]))
    with pytest.raises(NotImplementedError):
        getattr(torch, name)(torch.tensor([1, 2]), torch.tensor([3, 4]))


def test_float_power_gradient_reaches_a_float32_input_in_float32():
    for lib in (tr, torch):
        x = lib.tensor([2.0, 3.0], requires_grad=True)
        out = lib.float_power(x, 2)
        out.sum().backward()
        assert out.dtype == lib.float64 and x.grad.dtype == lib.float32
        assert x.grad.tolist() == [4.0, 6.0]


# ----------------------------------------------------------------------------- masks and steps

MASKS = ["signbit", "isposinf", "isneginf", "isreal"]


@pytest.mark.parametrize("name", MASKS)
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "bool"])
def test_masks_match_torch_and_carry_no_gradient(name, dtype, device):
    values = np.concatenate([EDGES, -np.array([NAN])]) if dtype.startswith("float") else [0, 1, -3, 7]
    if dtype == "bool":
        values = [True, False]
    ours = getattr(tr, name)(tr.tensor(values, dtype=getattr(tr, dtype), device=device))
    theirs = getattr(torch.tensor(values, dtype=getattr(torch, dtype)), name)()
    assert ours.dtype == np.bool_ and not ours.requires_grad
    np.testing.assert_array_equal(tr.backend.to_numpy(ours.array), theirs.numpy())


@pytest.mark.parametrize("dtype", ["float64", "int64", "bool"])
def test_heaviside_matches_torch_broadcasting(dtype, device):
    if dtype == "bool":
        x, v = [[True], [False]], [True, False]
    else:
        x, v = (EDGES[:, None], [0.5, -2.0]) if dtype == "float64" else ([[3], [0], [-2]], [5, 7])
    ours = tr.heaviside(tr.tensor(x, dtype=getattr(tr, dtype), device=device),
                        tr.tensor(v, dtype=getattr(tr, dtype), device=device))
    theirs = torch.tensor(x, dtype=getattr(torch, dtype)).heaviside(torch.tensor(v, dtype=getattr(torch, dtype)))
    assert ours.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(tr.backend.to_numpy(ours.array), theirs.numpy())


def test_heaviside_refuses_numbers_and_mixed_dtypes_by_name():
    x = tr.tensor([1.0, 0.0])
    with pytest.raises(TypeError, match="heaviside: argument 'values' must be a Tensor, not float"):
        x.heaviside(0.5)
    with pytest.raises(RuntimeError, match="heaviside: .*different dtypes"):
        x.heaviside(tr.tensor([0.5], dtype=tr.float64))
    with pytest.raises(RuntimeError, match="different dtypes"):
        torch.tensor([1.0]).heaviside(torch.tensor([0.5], dtype=torch.float64))


# ----------------------------------------------------------------------------- aliases and in-place forms


def test_true_divide_clamp_min_and_clamp_max_functions_as_torch():
    for fn in (lambda lib: lib.true_divide(lib.tensor([1, 3]), 2),
               lambda lib: lib.clamp_min(lib.tensor([1.0, 2.0]), 1.5),
               lambda lib: lib.clamp_max(lib.tensor([1, 2]), 1.5),
               lambda lib: lib.clamp_min(lib.tensor([1.0, 2.0]), lib.tensor([1.5, 0.0])),
               lambda lib: lib.clamp_max(lib.tensor([1.0, 2.0]), lib.tensor([1.5, 0.0])),
               lambda lib: lib.tensor([3.0, 4.0]).true_divide_(lib.tensor([2.0, 8.0]))):
        _same_dtype_and_values(fn)
    _against_torch(lambda lib, x, y: lib.clamp_min(x, 0.5) + lib.clamp_max(x, y) + lib.true_divide(x, y),
                   EDGES[:, None], EDGES[None, :8])


UNARY_IN_PLACE = UNARY  # each has its name_ form
BINARY_IN_PLACE = ["hypot", "xlogy", "copysign"]
# torch 2.13 raises "the derivative for 'inplace version of asinh' is not implemented"; here they have the
# out-of-place form's, which they are compared with
NO_TORCH_DERIVATIVE = ("asinh", "arcsinh", "acosh", "arccosh", "atanh", "arctanh")


@pytest.mark.parametrize("name", UNARY_IN_PLACE + BINARY_IN_PLACE + ["float_power", "clamp_min", "clamp_max"])
def test_in_place_forms_match_torch(name, device):
    def fn(lib, x, y):
        z = x * 1
        if lib is torch and name in NO_TORCH_DERIVATIVE:
            z = returned = getattr(z, name)()
        elif name in UNARY_IN_PLACE:
            returned = getattr(z, f"{name}_")()
        elif name in ("clamp_min", "clamp_max"):
            returned = getattr(z, f"{name}_")(0.25)
        else:
            returned = getattr(z, f"{name}_")(y)
        assert returned is z
        return z * y
    x, y = _inside(0.1, 0.9, seed=3), _inside(0.1, 3.0, seed=4)  # in every op's domain (acosh: below)
    if name in ("acosh", "arccosh"):
        x = x + 1.5
    _against_torch(fn, x, y, device=device)


def test_heaviside_in_place_as_torch():
    for lib in (tr, torch):
        x = lib.tensor([-1.0, 0.0, 2.0])
        assert x.heaviside_(lib.tensor([0.5])) is x and x.tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("call", [lambda x: x.atan_(), lambda x: x.sinc_(), lambda x: x.xlogy_(2),
                                  lambda x: x.copysign_(-1), lambda x: x.deg2rad_()])
def test_in_place_refuses_a_float_result_in_an_integer_tensor(call):
    for lib in (tr, torch):
        with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
            call(lib.tensor([1, 2]))


def test_float_power_in_place_needs_a_float64_base():
    with pytest.raises(RuntimeError, match="float_power_: the base given to float_power_ has dtype float32"):
        tr.tensor([2.0]).float_power_(2)
    x = tr.tensor([2.0], dtype=tr.float64)
    assert x.float_power_(3).tolist() == [8.0]


# ----------------------------------------------------------------------------- forward mode

# each primitive, its inputs (inside (-3, 3)) moved into its domain
FORWARD_MODE = {
    "atan": lambda lib, x, y: lib.atan(x),
    "asinh": lambda lib, x, y: lib.asinh(x),
    "acosh": lambda lib, x, y: lib.acosh(x + 3.5),
    "atanh": lambda lib, x, y: lib.atanh(x / 4),
    "sinc": lambda lib, x, y: lib.sinc(x),
    "erfc": lambda lib, x, y: lib.erfc(x),
    "hypot": lambda lib, x, y: lib.hypot(x, y),
    "logaddexp": lambda lib, x, y: lib.logaddexp(x, y),
    "logaddexp2": lambda lib, x, y: lib.logaddexp2(x, y),
    "xlogy": lambda lib, x, y: lib.xlogy(x, y.abs() + 0.1),
    "copysign": lambda lib, x, y: lib.copysign(x, y),
}


@pytest.mark.parametrize("name", sorted(FORWARD_MODE))
def test_forward_mode_matches_torch(name):
    """Each primitive's JVP against torch.func.jvp, both inputs carrying tangents."""
    primals = (_inside(seed=5), _inside(seed=6))
    tangents = (_inside(seed=7), _inside(seed=8))
    results = {}
    for lib in (tr, torch):
        as_tensors = [lib.tensor(a, dtype=F64[lib]) for a in (*primals, *tangents)]
        out, tangent = lib.func.jvp(lambda x, y, lib=lib: FORWARD_MODE[name](lib, x, y), tuple(as_tensors[:2]),
                                    tuple(as_tensors[2:]))
        results[lib] = [_numpy(out), _numpy(tangent)]
    for ours, theirs in zip(results[tr], results[torch]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
