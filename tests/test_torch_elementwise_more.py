"""Bitwise and logical ops, shifts, torch's aliases and in-place forms, fmax / fmin, ldexp, nextafter, gcd / lcm,
frexp, isin, searchsorted / bucketize, erfinv / lgamma / digamma / polygamma / i0 and tr.special against torch:
values, dtypes, gradients (float64; second derivatives for the new primitives) and error types."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinygrad_rnn as tr

pytestmark = pytest.mark.usefixtures("torch_default_float32")   # dtypes are compared
INF, NAN = np.inf, np.nan
LIBS = (tr, torch)
DTYPES = {"bool": (tr.bool, torch.bool), "uint8": (tr.uint8, torch.uint8), "int8": (tr.int8, torch.int8),
          "int32": (tr.int32, torch.int32), "int64": (tr.int64, torch.int64), "float32": (tr.float32, torch.float32),
          "float64": (tr.float64, torch.float64)}


def _make(lib, values, dtype, requires_grad=False):
    return lib.tensor(values, dtype=DTYPES[dtype][lib is torch], requires_grad=requires_grad)


def _numpy(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.numpy()


def _same(ours, theirs, rtol=1e-13):
    if isinstance(theirs, (tuple, list)):
        for a, b in zip(ours, theirs, strict=True):
            _same(a, b, rtol)
        return
    a, b = _numpy(ours), _numpy(theirs)
    assert a.shape == b.shape and a.dtype == b.dtype, (a, b)
    if a.dtype.kind == "f":
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0)
    else:
        np.testing.assert_array_equal(a, b)


def _both(fn, *arrays, dtypes=("float64",), grad=False, rtol=1e-13):
    """fn(lib, *tensors) in both libraries, the same values and dtypes; and with grad, the same gradients."""
    results = []
    for lib in LIBS:
        leaves = [_make(lib, a, d, grad) for a, d in zip(arrays, dtypes * len(arrays))]
        out = fn(lib, *leaves)
        grads = []
        if grad:
            weight = lib.tensor(np.random.default_rng(1).uniform(0.5, 1.5, tuple(out.shape)), dtype=out.dtype)
            grads = lib.autograd.grad((out * weight).sum(), leaves, allow_unused=True)
        results.append((out, [g for g in grads if g is not None]))
    (ours, our_grads), (theirs, their_grads) = results
    _same(ours, theirs, rtol)
    _same(our_grads, their_grads, 1e-12)


def _same_error(fn):
    """Both libraries refuse fn with the same type of error."""
    errors = []
    for lib in LIBS:
        with pytest.raises(Exception) as caught:
            fn(lib)
        errors.append(caught.type)
    assert errors[0] is errors[1] or issubclass(errors[0], errors[1]), errors


INTS = [[0, 1, -2, 7, -128, 127], [3, 0, 5, -1, 2, 127]]
SHIFTS = [[1, -2, 5, -7, 3, -1], [0, 1, 63, 64, -1, 70]]


# ----------------------------------------------------------------------------- bitwise and logical

@pytest.mark.parametrize("name", ["bitwise_and", "bitwise_or", "bitwise_xor"])
@pytest.mark.parametrize("dtypes", [("int64", "int64"), ("int8", "int32"), ("bool", "bool"), ("bool", "int8"),
                                    ("uint8", "int8")])
def test_bitwise_binaries_match_torch_with_promotion(name, dtypes):
    a, b = (np.abs(v) % 100 if d in ("bool", "uint8") else v for v, d in zip(INTS, dtypes))
    _both(lambda lib, x, y: getattr(lib, name)(x, y), a, b, dtypes=dtypes)
    _both(lambda lib, x, y: getattr(x, name)(5), a, b, dtypes=dtypes)


@pytest.mark.parametrize("name,op", [("bitwise_left_shift", "__lshift__"), ("bitwise_right_shift", "__rshift__")])
@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8"])
def test_shifts_match_torch_past_the_width_and_for_negative_amounts(dtype, name, op):
    values = np.abs(SHIFTS[0]) if dtype == "uint8" else SHIFTS[0]
    amounts = np.abs(SHIFTS[1]) if dtype == "uint8" else SHIFTS[1]
    _both(lambda lib, x, s: getattr(lib, name)(x, s), values, amounts, dtypes=(dtype,))
    _both(lambda lib, x, s: getattr(x, op)(s), values, amounts, dtypes=(dtype,))
    _both(lambda lib, x, s: getattr(x, op)(3), values, amounts, dtypes=(dtype,))
    _both(lambda lib, x, s: 3 << s.abs(), values, amounts, dtypes=(dtype,))
    _both(lambda lib, x, s: lib.bitwise_left_shift(3, s.abs()), values, amounts, dtypes=(dtype,))


def test_bitwise_not_and_in_place_forms():
    _both(lambda lib, x: lib.bitwise_not(x), INTS[0], dtypes=("int8",))
    _both(lambda lib, x: x.clone().bitwise_not_(), [True, False], dtypes=("bool",))
    _both(lambda lib, x, y: x.clone().bitwise_and_(y), *INTS, dtypes=("int64",))
    _both(lambda lib, x, y: x.clone().bitwise_left_shift_(y.abs() % 8), *INTS, dtypes=("int32",))

    def augmented(lib, x, y):
        x = x.clone()
        x <<= 2
        x |= y
        return x
    _both(augmented, *INTS, dtypes=("int64",))


@pytest.mark.parametrize("call", [lambda lib, x: x.bitwise_and(x), lambda lib, x: x & 1, lambda lib, x: ~x,
                                  lambda lib, x: x << 1, lambda lib, x: lib.bitwise_not(x),
                                  lambda lib, x: x.bitwise_right_shift(x)])
def test_bitwise_ops_refuse_floats_as_torch(call):
    _same_error(lambda lib: call(lib, lib.tensor([1.0, 2.0])))


def test_shifts_refuse_bools_as_torch():
    _same_error(lambda lib: lib.tensor([True]) << lib.tensor([True]))


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor"])
@pytest.mark.parametrize("dtypes", [("float64", "int64"), ("bool", "float32"), ("int8", "int8")])
def test_logical_binaries_match_torch(name, dtypes):
    a, b = [0.0, 1.5, -2.0, NAN, 0.0, 3.0], [2, 0, 0, 0, 0, 1]
    if dtypes[0] != "float64":
        a = [0, 1, 1, 1, 0, 1]
    _both(lambda lib, x, y: getattr(lib, name)(x, y), a, b, dtypes=dtypes)
    _both(lambda lib, x, y: getattr(x.clone(), name + "_")(y), a, b, dtypes=dtypes)
    _same_error(lambda lib: getattr(_make(lib, a, dtypes[0]), name)(1))


def test_logical_not_matches_torch():
    _both(lambda lib, x: lib.logical_not(x), [0.0, -0.0, 2.0, NAN, INF])
    _both(lambda lib, x: x.clone().logical_not_(), [0.0, -0.0, 2.0, NAN, INF])
    _both(lambda lib, x: lib.logical_not(x), [0, 3, -1], dtypes=("int8",))


# ----------------------------------------------------------------------------- aliases and in-place forms

ALIASES = ["greater", "greater_equal", "less", "less_equal", "not_equal", "multiply", "divide", "subtract"]


@pytest.mark.parametrize("name", ALIASES)
def test_aliases_match_torch(name):
    a, b = [0.5, -1.0, 2.0, NAN], [0.5, 1.0, -3.0, 1.0]
    _both(lambda lib, x, y: getattr(lib, name)(x, y), a, b, grad=name in ("multiply", "divide", "subtract"))
    _both(lambda lib, x, y: getattr(x.clone(), name + "_")(y), a, b)
    _both(lambda lib, x, y: getattr(x, name)(2), [1, 2, 3], b, dtypes=("int64",))


def test_positive_matches_torch_and_refuses_bools():
    _both(lambda lib, x: lib.positive(x) * 2, [1.0, -2.0], grad=True)
    _same_error(lambda lib: lib.tensor([True]).positive())


UNARY_IN_PLACE = ["sin", "cos", "tan", "sinh", "cosh", "exp2", "log2", "log10", "frac", "fix", "negative", "erfinv",
                  "lgamma", "digamma", "i0"]


@pytest.mark.parametrize("name", UNARY_IN_PLACE)
def test_unary_in_place_forms_match_torch_with_gradients(name):
    values = [0.25, -0.5, 0.75, 0.1]
    _both(lambda lib, x: getattr(x * 1, name + "_")(), values, grad=True)


@pytest.mark.parametrize("name", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparisons_in_place_write_ones_and_zeros_in_the_tensors_dtype(name):
    _both(lambda lib, x, y: getattr(x.clone(), name + "_")(y), [1.0, 2.0, NAN], [1.0, 3.0, 1.0])
    _both(lambda lib, x, y: getattr(x.clone(), name + "_")(y), [1, 2, 3], [1, 3, 1], dtypes=("int64",))


@pytest.mark.parametrize("call", [lambda x: x.logit_(eps=0.1), lambda x: x.nan_to_num_(nan=2.0, posinf=7.0),
                                  lambda x: x.polygamma_(1), lambda x: x.cumsum_(0), lambda x: x.cumprod_(0)])
def test_in_place_forms_with_arguments_match_torch(call):
    _both(lambda lib, x: call(x * 1), [0.05, 0.5, 0.7, 0.99], grad=True)
    _both(lambda lib, x: call(x.clone()), [0.05, NAN, INF, 0.99])


def test_in_place_refuses_a_leaf_that_requires_grad_and_a_float_result_in_integers():
    _same_error(lambda lib: lib.tensor([0.5], requires_grad=True).sin_())
    _same_error(lambda lib: lib.tensor([1, 2]).sin_())
    _same_error(lambda lib: lib.tensor([1, 2]).logical_and_(lib.tensor([1.0, 0.0])).sin_())


# ----------------------------------------------------------------------------- fmax, fmin, ldexp, nextafter, gcd, lcm

@pytest.mark.parametrize("name", ["fmax", "fmin"])
def test_fmax_fmin_ignore_nan_and_send_ties_to_self_as_torch(name):
    a, b = [1.0, NAN, 2.0, NAN, 3.0, -INF], [NAN, 1.0, 2.0, NAN, 4.0, 0.0]
    _both(lambda lib, x, y: getattr(lib, name)(x, y), a, b, grad=True)
    _both(lambda lib, x, y: getattr(x, name)(y), [1, 5, 3], [2, 2, 3], dtypes=("int32", "int64"))
    _same_error(lambda lib: getattr(lib.tensor([1.0]), name)(1.0))


def test_ldexp_matches_torch_with_gradients_and_promotion():
    _both(lambda lib, x, e: lib.ldexp(x, e), [0.5, -3.0, 1e-300, 7.0], [3.0, -2.0, 10.0, 1e3], grad=True)
    _both(lambda lib, x, e: x.ldexp(e), [1, 2, 3], [3, -1, 0], dtypes=("int64",))
    _same_error(lambda lib: lib.tensor([1.0]).ldexp(2))


def test_nextafter_matches_torch():
    _both(lambda lib, x, y: lib.nextafter(x, y), [0.0, 1.0, -1.0, INF, NAN, 1.0], [1.0, 0.0, -INF, 0.0, 1.0, 1.0])
    _both(lambda lib, x, y: lib.nextafter(x, y), [0.0, 1.0], [1.0, 2.0], dtypes=("float32", "float64"))
    _same_error(lambda lib: lib.tensor([1]).nextafter(lib.tensor([2])))
    grads = []
    for lib in (tr, torch):
        x = lib.tensor([1.0, 3.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = lib.tensor([2.0], dtype=lib.float64, requires_grad=True)
        x.nextafter(y).backward(lib.tensor([0.25, -2.0, 5.0], dtype=lib.float64))
        grads.append((x.grad.tolist(), y.grad.tolist()))
    assert grads[0] == grads[1] == ([0.25, -2.0, 0.0], [0.0])   # self's passes through where self != other


@pytest.mark.parametrize("name", ["gcd", "lcm"])
def test_gcd_lcm_match_torch_on_integers_only(name):
    a, b = [-4, 0, -7, 12, 0, 9], [6, 0, 3, -18, 5, 6]
    _both(lambda lib, x, y: getattr(lib, name)(x, y), a, b, dtypes=("int64",))
    _both(lambda lib, x, y: getattr(x.clone(), name + "_")(y), a, b, dtypes=("int32", "int8"))
    _same_error(lambda lib: getattr(lib.tensor([1.0]), name)(lib.tensor([2.0])))


def test_frexp_matches_torch_with_the_mantissas_gradient():
    values = [0.3, -0.9, 0.0, -0.0, 1e-300, 8.0, 1e300, INF, NAN]
    # torch's gradient overflows past float32's exponents
    _both(lambda lib, x: lib.frexp(x)[0], [0.3, -0.9, 0.0, 1e-30, 8.0, 1e30], grad=True)
    _both(lambda lib, x: tuple(lib.frexp(x)), values)
    _both(lambda lib, x: tuple(x.frexp()), [0.75, -3.0], dtypes=("float32",))
    _same_error(lambda lib: lib.tensor([1, 2]).frexp())


# ----------------------------------------------------------------------------- isin, searchsorted, bucketize

def test_isin_matches_torch():
    _both(lambda lib, x, y: lib.isin(x, y), [1.0, 2.0, NAN, 4.0], [2.0, 4.0, NAN])
    _both(lambda lib, x, y: lib.isin(x, y, invert=True), [1, 2, 3, 4], [2, 4], dtypes=("int64",))
    _both(lambda lib, x, y: lib.isin(x, 2), [1, 2, 3, 2], [2], dtypes=("int64",))
    _both(lambda lib, x, y: lib.isin(3, x), [1, 2, 3, 2], [2], dtypes=("int64",))


@pytest.mark.parametrize("options", [{}, {"right": True}, {"side": "right"}, {"side": "left"}, {"out_int32": True}])
def test_searchsorted_and_bucketize_match_torch(options):
    boundaries, values = [1.0, 3.0, 3.0, 5.0, 9.0], [[0.0, 3.0, 4.0], [9.0, 10.0, NAN]]
    _both(lambda lib, s, v: lib.searchsorted(s, v, **options), boundaries, values)
    _both(lambda lib, s, v: lib.searchsorted(s, 3.0, **options), boundaries, values)
    rows = [[1.0, 3.0, 5.0], [0.0, 2.0, 2.0]]
    _both(lambda lib, s, v: lib.searchsorted(s, v, **options), rows, [[3.0, 6.0], [2.0, -1.0]])
    if "side" not in options:
        _both(lambda lib, s, v: lib.bucketize(v, s, **options), boundaries, values)


def test_searchsorted_with_a_sorter_and_its_refusals_match_torch():
    unsorted, sorter = [5.0, 1.0, 3.0], [1, 2, 0]
    ours = tr.searchsorted(tr.tensor(unsorted), tr.tensor([2.0, 4.0, 6.0]), sorter=tr.tensor(sorter))
    theirs = torch.searchsorted(torch.tensor(unsorted), torch.tensor([2.0, 4.0, 6.0]), sorter=torch.tensor(sorter))
    _same(ours, theirs)
    _same_error(lambda lib: lib.searchsorted(lib.tensor([1.0, 2.0]), lib.tensor([1.0]), side="left", right=True))
    _same_error(lambda lib: lib.searchsorted(lib.tensor([[1.0, 2.0]]), lib.tensor([1.0, 2.0])))
    _same_error(lambda lib: lib.bucketize(lib.tensor([1.0]), lib.tensor([[1.0, 2.0]])))


# ----------------------------------------------------------------------------- the new primitives

GRID = np.concatenate([np.linspace(-6.25, 6.25, 51), [0.0, -0.0, 1e-300, 1.0, 2.0, -1.0, -2.0, 1e10, 150.0, INF,
                                                      -INF, NAN]])
SPECIAL = {
    "erfinv": np.concatenate([np.linspace(-1, 1, 41), [0.99999, 1 - 1e-12, -(1 - 1e-16), -0.0, 1.5, INF, NAN]]),
    "lgamma": GRID, "digamma": GRID, "i0": np.concatenate([GRID * 5, [29.99, 30.0, 705.0, 710.0]]),
}


@pytest.mark.parametrize("name", list(SPECIAL))
def test_special_primitives_match_torch_on_a_wide_grid_with_poles(name):
    _both(lambda lib, x: getattr(lib, name)(x), SPECIAL[name])
    _both(lambda lib, x: getattr(x, name)(), [1, 3], dtypes=("int64",))


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_polygamma_matches_torch(n):
    _both(lambda lib, x: lib.polygamma(n, x), GRID[np.abs(GRID) < 1e3])
    _both(lambda lib, x: x.polygamma(n), [0.5, 3.0, -2.5], grad=True)


def test_polygamma_refuses_a_negative_order_as_torch():
    _same_error(lambda lib: lib.polygamma(-1, lib.tensor([1.0])))


@pytest.mark.parametrize("name", list(SPECIAL))
def test_special_primitives_gradients_match_torch_at_the_edges(name):
    values = {"erfinv": [-0.9, 0.0, 0.5, 1.0, -1.0, 0.99999]}.get(name, [0.5, 1.0, 0.0, -0.0, -1.0, -2.5, 12.0, 31.0])
    _both(lambda lib, x: getattr(lib, name)(x), values, grad=True)


def test_i1_gradient_at_zero_is_torchs_half():
    _both(lambda lib, x: lib.special.i1(x), [0.0, 1e-17, -2.5, 31.0], grad=True)


# ----------------------------------------------------------------------------- tr.special

POSITIVE = [0.05, 0.5, 0.95, 3.0]
INSIDE = [-2.0, -0.5, 0.0, 0.3, 1.7]
SPECIAL_CALLS = {
    "expit": (lambda s, x: s.expit(x), INSIDE), "logit": (lambda s, x: s.logit(x, eps=1e-3), POSITIVE[:3]),
    "erf": (lambda s, x: s.erf(x), INSIDE), "erfc": (lambda s, x: s.erfc(x), INSIDE),
    "erfinv": (lambda s, x: s.erfinv(x), POSITIVE[:3]), "xlogy": (lambda s, x: s.xlogy(x, x + 3), INSIDE),
    "xlog1py": (lambda s, x: s.xlog1py(x, x + 1), INSIDE), "log1p": (lambda s, x: s.log1p(x), POSITIVE),
    "expm1": (lambda s, x: s.expm1(x), INSIDE), "exp2": (lambda s, x: s.exp2(x), INSIDE),
    "log_softmax": (lambda s, x: s.log_softmax(x, 0), INSIDE), "softmax": (lambda s, x: s.softmax(x, dim=0), INSIDE),
    "logsumexp": (lambda s, x: s.logsumexp(x, 0), INSIDE), "gammaln": (lambda s, x: s.gammaln(x), POSITIVE),
    "digamma": (lambda s, x: s.digamma(x), POSITIVE), "psi": (lambda s, x: s.psi(x), POSITIVE),
    "polygamma": (lambda s, x: s.polygamma(2, x), POSITIVE), "i0": (lambda s, x: s.i0(x), INSIDE),
    "i1": (lambda s, x: s.i1(x), INSIDE), "sinc": (lambda s, x: s.sinc(x), INSIDE),
    "round": (lambda s, x: s.round(x * 10, decimals=1), INSIDE), "ndtr": (lambda s, x: s.ndtr(x), INSIDE),
    "ndtri": (lambda s, x: s.ndtri(x), POSITIVE[:3]), "log_ndtr": (lambda s, x: s.log_ndtr(x), INSIDE + [-20.0, 8.0]),
    "entr": (lambda s, x: s.entr(x), POSITIVE), "multigammaln": (lambda s, x: s.multigammaln(x + 2, 3), POSITIVE),
}


@pytest.mark.parametrize("name", list(SPECIAL_CALLS))
def test_special_module_matches_torch_special(name):
    call, values = SPECIAL_CALLS[name]
    _both(lambda lib, x: call(lib.special, x), values, grad=True)


def test_special_values_off_the_domain_match_torch():
    _both(lambda lib, x: lib.special.entr(x), [-1.0, 0.0, 2.0, INF, NAN])
    _both(lambda lib, x: lib.special.xlog1py(x, lib.tensor([NAN, 1.0, 0.5], dtype=x.dtype)), [0.0, 0.0, 2.0])
    _both(lambda lib, x: lib.special.multigammaln(x, 3), [0.5, 1.0, 2.5])
    _same_error(lambda lib: lib.special.multigammaln(lib.tensor([1.5]), 0))
