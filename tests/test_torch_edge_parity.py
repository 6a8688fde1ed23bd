"""Edge cases of tensor methods, nn.functional, losses, modules and schedulers, each run with torch and
with tinygrad_rnn on the same data: values, gradients, dtypes, and errors for bad input."""
import warnings

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


# ----------------------------------------------------------------------------- rounding: zero gradients

ROUNDS = np.array([[0.5, -1.5, 2.5, 0.0], [3.2, -1.7, 2.49, 1.0]])


@pytest.mark.parametrize("op", [lambda x: x.div(2, rounding_mode="floor"), lambda x: x.div(x + 3, rounding_mode="trunc"),
                                lambda x: x.round(), lambda x: x.round(decimals=1), lambda x: x.floor(),
                                lambda x: x.ceil(), lambda x: x.trunc(), lambda x: x.sign()],
                         ids=["div_floor", "div_trunc_tensor", "round", "round1", "floor", "ceil", "trunc", "sign"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_rounding_ops_require_grad_with_a_zero_gradient_as_torch(op, dtype, torch):
    results = []
    for lib in (torch, tr):
        x = lib.tensor(ROUNDS, dtype=getattr(lib, dtype), requires_grad=True)
        y = op(x)
        assert y.requires_grad
        y.sum().backward()
        results.append((_dtype_name(y.dtype), y.detach().numpy(), x.grad.numpy()))
    (their_dtype, theirs, their_grad), (our_dtype, ours, our_grad) = results
    assert our_dtype == their_dtype
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(our_grad, their_grad)


def test_floor_division_of_a_tensor_that_requires_grad_gives_a_zero_gradient():
    """torch records x // y and fails in backward; here the quotient's gradient is zero, as div(floor)'s."""
    x = tr.tensor(ROUNDS, requires_grad=True)
    y = tr.tensor(ROUNDS + 4, requires_grad=True)
    q = x // y
    assert q.requires_grad
    q.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros_like(ROUNDS))
    np.testing.assert_array_equal(y.grad.numpy(), np.zeros_like(ROUNDS))


@pytest.mark.parametrize("decimals", [-2, -1, 0, 1, 2, 3])
def test_round_of_float16_scales_without_overflow_as_torch(decimals, torch):
    values = [0.5, 1.5, -2.5, 1234.5, 65504.0, 0.375, 2049.0, 3.14159, 60000.0, -1e-3, np.nan, np.inf]
    theirs = torch.tensor(values, dtype=torch.float16).round(decimals=decimals).numpy()
    ours = tr.tensor(values, dtype=tr.float16).round(decimals=decimals)
    assert ours.dtype == tr.float16
    np.testing.assert_array_equal(ours.numpy(), theirs)


# ----------------------------------------------------------------------------- max and min with NaN

NANS = [np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, 0.0], [2.0, 5.0, 5.0]]), np.array([1.0, np.nan, 2.0, np.nan]),
        np.array([np.nan]), np.array([-np.inf, np.nan, np.inf]), np.array([[2.0, 2.0], [1.0, 3.0]])]


def _values_and_grads(lib, fn, *arrays):
    inputs = [lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays]
    out = fn(lib, *inputs)
    out.sum().backward()
    return [out.detach().numpy()] + [x.grad.numpy() for x in inputs]


@pytest.mark.parametrize("fn", [lambda lib, x: x.max(), lambda lib, x: x.min(), lambda lib, x: x.max(-1).values,
                                lambda lib, x: x.min(0).values, lambda lib, x: x.amax(-1),
                                lambda lib, x: lib.maximum(x, x.flip(-1)), lambda lib, x: lib.minimum(x, x.flip(0))],
                         ids=["max()", "min()", "max(-1)", "min(0)", "amax(-1)", "maximum", "minimum"])
@pytest.mark.parametrize("case", range(len(NANS)))
def test_max_and_min_with_nan_give_torch_values_and_gradients(fn, case, torch):
    """NaN propagates; max() over all elements shares the gradient among the NaNs, maximum sends it to both."""
    for ours, theirs in zip(_values_and_grads(tr, fn, NANS[case]), _values_and_grads(torch, fn, NANS[case])):
        np.testing.assert_array_equal(ours, theirs)


def test_maximum_and_minimum_of_two_tensors_with_nan_and_ties_as_torch(torch):
    a = np.array([1.0, np.nan, 2.0, np.nan, 3.0, -np.inf])
    b = np.array([np.nan, np.nan, 2.0, 1.0, 4.0, -np.inf])
    for name in ("maximum", "minimum"):
        fn = (lambda lib, x, y, name=name: getattr(lib, name)(x, y))
        for ours, theirs in zip(_values_and_grads(tr, fn, a, b), _values_and_grads(torch, fn, a, b)):
            np.testing.assert_array_equal(ours, theirs)


# ----------------------------------------------------------------------------- losses

_rng = np.random.default_rng(0)
LOSS_X, LOSS_Y = _rng.standard_normal((3, 4)), _rng.standard_normal((3, 4))
LOSS_W = np.abs(_rng.standard_normal((3, 4)))
LOSS_P = 1 / (1 + np.exp(-LOSS_Y))


def _loss_and_grad(lib, fn):
    functional = lib.nn.functional
    x = lib.tensor(LOSS_X, dtype=lib.float64, requires_grad=True)
    out = fn(functional, x, lambda a: lib.tensor(a, dtype=lib.float64))
    out.sum().backward()
    return out.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("fn", [lambda F, x, t, r: F.l1_loss(x, t(LOSS_Y), reduction=r, weight=t(LOSS_W)),
                                lambda F, x, t, r: F.mse_loss(x, t(LOSS_Y), reduction=r, weight=t(LOSS_W)),
                                lambda F, x, t, r: F.huber_loss(x, t(LOSS_Y), reduction=r, delta=0.7, weight=t(LOSS_W)),
                                lambda F, x, t, r: F.kl_div(x, t(LOSS_Y), reduction=r),
                                lambda F, x, t, r: F.kl_div(x, t(LOSS_P * (LOSS_Y > 0)), reduction=r)],
                         ids=["l1_weight", "mse_weight", "huber_weight", "kl_div_negative_target", "kl_div_zeros"])
def test_losses_with_weights_and_odd_targets_as_torch(fn, reduction, torch):
    """l1's weighted mean divides by the weights' sum, huber's by the count; a negative KL target gives NaN."""
    for ours, theirs in zip(_loss_and_grad(tr, lambda F, x, t: fn(F, x, t, reduction)),
                            _loss_and_grad(torch, lambda F, x, t: fn(F, x, t, reduction))):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("fn", [lambda F, x, t: F.l1_loss(x, t(LOSS_Y), weight=t(LOSS_W[0])),
                                lambda F, x, t: F.huber_loss(x, t(LOSS_Y), weight=t(LOSS_W[:, :1]))],
                         ids=["l1", "huber"])
def test_l1_and_huber_weights_must_have_the_input_size_as_torch(fn, torch):
    with pytest.raises(ValueError, match="Weights and input must have the same size"):
        _loss_and_grad(torch, fn)
    with pytest.raises(ValueError, match=r"weights and input must have the same size; got weight \("):
        _loss_and_grad(tr, fn)


@pytest.mark.parametrize("input,target,what", [(np.array([0.5, np.nan]), np.array([1.0, 0.0]), "input"),
                                               (np.array([0.5, 1.5]), np.array([1.0, 0.0]), "input"),
                                               (np.array([0.5, 0.2]), np.array([1.0, -0.5]), "target"),
                                               (np.array([0.5, 0.2]), np.array([1.0, np.nan]), "target")],
                         ids=["nan_input", "input_above_1", "negative_target", "nan_target"])
def test_binary_cross_entropy_refuses_values_outside_0_1_as_torch(input, target, what, torch):
    with pytest.raises(RuntimeError, match=f"all elements of {what} should be between 0 and 1"):
        torch.nn.functional.binary_cross_entropy(torch.tensor(input), torch.tensor(target))
    with pytest.raises(ValueError, match=f"binary_cross_entropy: all elements of {what} should be between 0 and 1"):
        tr.nn.functional.binary_cross_entropy(tr.tensor(input), tr.tensor(target))


# ----------------------------------------------------------------------------- pad and normalize

PAD_X = np.random.default_rng(1).standard_normal((2, 3, 5))


def _weighted_sum_and_grad(lib, fn, array):
    """fn's output and the gradient of a weighted sum of it (the weights tell the positions apart)."""
    x = lib.tensor(array, dtype=lib.float64, requires_grad=True)
    out = fn(lib.nn.functional, x)
    weights = lib.tensor(np.arange(out.numel(), dtype=np.float64).reshape(tuple(out.shape)))
    (out * weights).sum().backward()
    return out.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pads", [(-1, -1), (-1, 2), (2, -1), (-2, 0, 1, -1), (0, 0, -1, -1)])
def test_pad_with_negative_pads_crops_as_torch(pads, mode, torch):
    fn = (lambda F, x: F.pad(x, pads, mode=mode))
    for ours, theirs in zip(_weighted_sum_and_grad(tr, fn, PAD_X), _weighted_sum_and_grad(torch, fn, PAD_X)):
        np.testing.assert_array_equal(ours, theirs)


def test_pad_circular_cropping_to_nothing_is_empty_as_torch(torch):
    ours, theirs = tr.nn.functional.pad(tr.tensor(PAD_X), (-5, 0), mode="circular"), \
        torch.nn.functional.pad(torch.tensor(PAD_X), (-5, 0), mode="circular")
    assert tuple(ours.shape) == tuple(theirs.shape)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_refuses_pads_that_leave_too_little_as_torch(mode, torch):
    with pytest.raises(RuntimeError):
        torch.nn.functional.pad(torch.tensor(PAD_X), (-6, 0), mode=mode)
    with pytest.raises(ValueError, match=rf"pad: input \(size 5 of dim 2\) is too small for {mode} padding \(-6, 0\)"):
        tr.nn.functional.pad(tr.tensor(PAD_X), (-6, 0), mode=mode)


@pytest.mark.parametrize("array", [np.array(3.0), np.array(-2.0), np.array(0.0), np.array([3.0, -4.0])])
@pytest.mark.parametrize("kwargs", [{"dim": 0}, {"dim": -1}, {"p": 1.0, "dim": 0}, {"p": float("inf"), "dim": -1}])
def test_normalize_of_0d_and_1d_input_as_torch(array, kwargs, torch):
    fn = (lambda F, x: F.normalize(x, **kwargs))
    for ours, theirs in zip(_weighted_sum_and_grad(tr, fn, array), _weighted_sum_and_grad(torch, fn, array)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_normalize_of_1d_input_along_its_missing_dim_1_is_an_index_error_as_torch(torch):
    with pytest.raises(IndexError):
        torch.nn.functional.normalize(torch.tensor([3.0, 4.0]))
    with pytest.raises(IndexError, match="Dimension out of range"):
        tr.nn.functional.normalize(tr.tensor([3.0, 4.0]))


# ----------------------------------------------------------------------------- dims of a 0-d tensor

ZERO_D_OPS = {
    "sum": lambda lib, x, d: x.sum(d), "softmax": lambda lib, x, d: lib.nn.functional.softmax(x, d),
    "cumsum": lambda lib, x, d: x.cumsum(d), "cumprod": lambda lib, x, d: x.cumprod(d),
    "max": lambda lib, x, d: tuple(x.max(d)), "min": lambda lib, x, d: tuple(x.min(d)),
    "argmax": lambda lib, x, d: x.argmax(d), "median": lambda lib, x, d: tuple(x.median(d)),
    "sort": lambda lib, x, d: tuple(x.sort(d)), "argsort": lambda lib, x, d: x.argsort(d),
    "topk": lambda lib, x, d: tuple(x.topk(1, d)), "flatten": lambda lib, x, d: x.flatten(d),
    "gather": lambda lib, x, d: x.gather(d, lib.tensor(0)), "index_select": lambda lib, x, d: x.index_select(d, lib.tensor([0])),
    "logsumexp": lambda lib, x, d: x.logsumexp(d), "var": lambda lib, x, d: x.var(d, correction=0),
}


@pytest.mark.parametrize("dim", [0, -1, 1, -2])
@pytest.mark.parametrize("name", sorted(ZERO_D_OPS))
def test_dims_of_a_0d_tensor_as_torch(name, dim, torch):
    """A 0-d tensor takes dim 0 and -1; any other dim is an IndexError naming it, as torch."""
    def run(lib):
        out = ZERO_D_OPS[name](lib, lib.tensor(2.5, dtype=lib.float64), dim)
        return [(_dtype_name(t.dtype), tuple(t.shape), t.numpy().tolist()) for t in (out if isinstance(out, tuple) else (out,))]
    if dim in (0, -1):
        assert run(tr) == run(torch)
        return
    with pytest.raises(IndexError):
        run(torch)
    with pytest.raises(IndexError, match=rf"Dimension out of range \(expected to be in range of \[-1, 0\], but got {dim}\)"):
        run(tr)


def test_cat_of_0d_tensors_is_refused_as_torch(torch):
    with pytest.raises(RuntimeError, match=r"zero-dimensional tensor \(at position 1\) cannot be concatenated"):
        torch.cat([torch.tensor([1.0]), torch.tensor(2.0)])
    with pytest.raises(RuntimeError, match=r"cat: zero-dimensional tensor \(at position 1\) cannot be concatenated"):
        tr.cat([tr.tensor([1.0]), tr.tensor(2.0)])


# ----------------------------------------------------------------------------- sort, median, prod, cumprod

def _results_and_grad(lib, fn, array, dtype="float64"):
    """fn's outputs (dtype, shape, values) and, for a float input, the gradient of a weighted sum of the first."""
    x = lib.tensor(array, dtype=getattr(lib, dtype), requires_grad=dtype.startswith("float"))
    out = fn(x)
    outs = out if isinstance(out, tuple) else (out,)
    results = [(_dtype_name(t.dtype), tuple(t.shape), t.detach().numpy().tolist()) for t in outs]
    if not outs[0].requires_grad:  # compared: where torch's requires grad, ours must too
        return results, None
    weights = lib.tensor(np.arange(1, outs[0].numel() + 1, dtype=np.float64).reshape(tuple(outs[0].shape)))
    (outs[0] * weights).sum().backward()
    return results, x.grad.numpy().tolist()


BOOLS = np.array([[True, False, True], [False, False, True]])


@pytest.mark.parametrize("fn,array,dtype", [
    (lambda x: tuple(x.sort()), BOOLS, "bool"), (lambda x: tuple(x.sort(0, descending=True)), BOOLS, "bool"),
    (lambda x: x.argsort(descending=True, stable=True), BOOLS, "bool"),
    (lambda x: tuple(x.median(0)), np.array([2.0, 1.0, 2.0, 1.0]), "float64"),
    (lambda x: tuple(x.median(1)), np.array([[2.0, 1.0, 2.0, 1.0, 3.0], [5.0, 5.0, 5.0, 1.0, 1.0]]), "float64"),
    (lambda x: x.median(), np.array([2.0, 1.0, 2.0, 1.0]), "float64"),
    (lambda x: x.median(), np.array([[2.0, 2.0], [1.0, 3.0]]), "float64"),
    (lambda x: x.median(), np.array([3.0, 3.0, 3.0]), "float64"),
    (lambda x: x.median(), np.array([3.0, np.nan, 1.0, np.nan]), "float64"),
    (lambda x: x.median(), np.array([-np.inf, -np.inf, 1.0]), "float64"),
    (lambda x: x.median(), np.zeros(0), "float64"),
    (lambda x: x.prod(), np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.0]]), "float64"),
    (lambda x: x.prod(1), np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.0], [1.0, 2.0, 3.0]]), "float64"),
    (lambda x: x.prod(), np.zeros(0), "float64"), (lambda x: x.prod(1), np.zeros((2, 0)), "float64"),
    (lambda x: x.prod(1, keepdim=True), np.zeros((2, 0)), "float64"), (lambda x: x.prod(1), np.zeros((2, 0)), "int64"),
    (lambda x: x.prod(0), np.array([[2.0, 3.0]]), "float64"),
    (lambda x: x.cumprod(0), np.array([2.0, 0.0, 3.0, 0.0, 4.0]), "float64"),
    (lambda x: x.cumprod(1), np.array([[0.0, 3.0, 5.0, 4.0], [1.0, 2.0, 0.0, 0.0]]), "float64"),
    (lambda x: x.cumprod(0), np.zeros(0), "float64"), (lambda x: x.cumprod(0), np.array([1.5]), "float64"),
], ids=["sort_bool", "sort_bool_descending", "argsort_bool", "median_dim_ties", "median_dim_ties_2d", "median_ties",
        "median_ties_2d", "median_all_equal", "median_nan", "median_-inf", "median_empty", "prod_zeros",
        "prod_dim_zeros", "prod_empty", "prod_empty_dim", "prod_empty_dim_keepdim", "prod_empty_int", "prod_one",
        "cumprod_zeros", "cumprod_zeros_2d", "cumprod_empty", "cumprod_one"])
def test_sort_median_prod_and_cumprod_edges_as_torch(fn, array, dtype, torch):
    """median() shares its gradient among equal elements, as max(); an empty product is 1 on the graph."""
    assert repr(_results_and_grad(tr, fn, array, dtype)) == repr(_results_and_grad(torch, fn, array, dtype))  # NaN too


def test_median_of_an_empty_dim_is_refused_as_torch(torch):
    with pytest.raises(IndexError, match="Expected reduction dim 1 to have non-zero size"):
        torch.zeros((2, 0)).median(1)
    with pytest.raises(IndexError, match=r"median: Expected reduction dim 1 to have non-zero size"):
        tr.zeros((2, 0)).median(1)


# ----------------------------------------------------------------------------- new tensors, not views

@pytest.mark.parametrize("fn", [lambda lib, x: x.flip(0), lambda lib, x: x.flip(dims=(0, 1)), lambda lib, x: x[:1].flip(0),
                                lambda lib, x: lib.flip(x, dims=(1,)), lambda lib, x: x.repeat(1, 1),
                                lambda lib, x: x.roll(0, 0), lambda lib, x: x[:1].prod(0),
                                lambda lib, x: x[:1].prod(0, keepdim=True), lambda lib, x: x[:1].cumprod(0),
                                lambda lib, x: x.repeat_interleave(1, dim=0)],
                         ids=["flip", "flip_dims_keyword", "flip_one_row", "torch.flip_dims", "repeat_ones", "roll_0",
                              "prod_one", "prod_one_keepdim", "cumprod_one", "repeat_interleave_1"])
def test_results_are_new_tensors_not_views_of_the_input(fn, torch):
    """A later in-place change of the result leaves the input as it was, as in torch."""
    for lib in (torch, tr):
        x = lib.tensor(np.arange(6.0).reshape(2, 3))
        out = fn(lib, x)
        out.add_(100)
        np.testing.assert_array_equal(x.numpy(), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(fn(tr, tr.tensor(PAD_X[0])).numpy(), fn(torch, torch.tensor(PAD_X[0])).numpy())


@pytest.mark.parametrize("fn", [
    lambda lib, x: x.repeat_interleave(2), lambda lib, x: x.repeat_interleave(2, dim=1),
    lambda lib, x: x.repeat_interleave(lib.tensor([1, 0, 2]), dim=1), lambda lib, x: x.repeat_interleave(lib.tensor([2])),
    lambda lib, x: x.repeat_interleave(lib.tensor([2]), dim=1), lambda lib, x: x.repeat_interleave(lib.tensor(2), dim=0),
    lambda lib, x: x.repeat_interleave(lib.tensor([1, 0, 2, 1, 1, 3])),
    lambda lib, x: x.repeat_interleave(lib.tensor([1, 2]), dim=0, output_size=3),
    lambda lib, x: lib.repeat_interleave(x, repeats=2, dim=-1),
    lambda lib, x: lib.repeat_interleave(lib.tensor([1, 2, 3])),
    lambda lib, x: lib.repeat_interleave(lib.tensor([1, 2, 3]), output_size=6)],
    ids=["int_flat", "int_dim", "tensor_dim", "one_count_flat", "one_count_dim", "0d_count", "tensor_flat",
         "output_size", "torch.repeat_interleave", "counts_alone", "counts_alone_output_size"])
def test_repeat_interleave_in_all_torch_forms(fn, torch):
    assert repr(_results_and_grad(tr, lambda x: fn(tr, x), A2)) == repr(_results_and_grad(torch, lambda x: fn(torch, x), A2))


A2 = np.arange(6.0).reshape(2, 3)


def test_repeat_interleave_refuses_a_wrong_output_size_or_count_of_repeats(torch):
    with pytest.raises(RuntimeError):
        torch.tensor(A2).repeat_interleave(torch.tensor([1, 2]), dim=0, output_size=5)
    with pytest.raises(RuntimeError, match="repeat_interleave: output_size 5 does not match the repeated size 3"):
        tr.tensor(A2).repeat_interleave(tr.tensor([1, 2]), dim=0, output_size=5)
    with pytest.raises(ValueError, match="repeats must have the same size as input along dim 0, but got 3 repeats"):
        tr.tensor(A2).repeat_interleave(tr.tensor([1, 2, 3]), dim=0)


# ----------------------------------------------------------------------------- var and std

@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("call", [
    lambda lib, x, f: getattr(x, f)(True), lambda lib, x, f: getattr(x, f)(False),
    lambda lib, x, f: getattr(x, f)(unbiased=False), lambda lib, x, f: getattr(x, f)(1, False),
    lambda lib, x, f: getattr(x, f)(1, True, True), lambda lib, x, f: getattr(x, f)(1, unbiased=False, keepdim=True),
    lambda lib, x, f: getattr(x, f)(correction=2), lambda lib, x, f: getattr(x, f)(dim=(0, 1), correction=0),
    lambda lib, x, f: getattr(lib, f)(x, False), lambda lib, x, f: getattr(lib, f)(x, 0, False),
    lambda lib, x, f: getattr(lib, f + "_mean")(x, False), lambda lib, x, f: getattr(lib, f + "_mean")(x, 1, True),
    lambda lib, x, f: getattr(lib, f + "_mean")(x, 1, correction=0, keepdim=True)],
    ids=["bool_true", "bool_false", "unbiased_keyword", "dim_bool", "dim_bool_keepdim", "keywords", "correction",
         "dims_correction", "torch.f_bool", "torch.f_dim_bool", "f_mean_bool", "f_mean_dim_bool", "f_mean_correction"])
def test_var_and_std_take_unbiased_and_correction_as_torch(call, name, torch):
    def run(lib):
        out = call(lib, lib.tensor(A2 ** 2 - A2[::-1] * 3, dtype=lib.float64), name)
        return [t.numpy().tolist() for t in (out if isinstance(out, tuple) else (out,))]
    ours, theirs = run(tr), run(torch)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_var_refuses_an_unbiased_that_is_not_a_bool(torch):
    with pytest.raises(TypeError):
        torch.tensor(A2).var(0, 1)
    with pytest.raises(TypeError, match="var: argument 'unbiased' must be a bool, not int"):
        tr.tensor(A2).var(0, 1)


# ----------------------------------------------------------------------------- isclose and allclose

@pytest.mark.parametrize("name", ["isclose", "allclose"])
@pytest.mark.parametrize("kwargs,message", [({"rtol": -1e-5}, "rtol must be greater than or equal to zero"),
                                            ({"atol": -1e-8}, "atol must be greater than or equal to zero")],
                         ids=["rtol", "atol"])
def test_isclose_and_allclose_refuse_negative_tolerances_as_torch(name, kwargs, message, torch):
    with pytest.raises(RuntimeError, match=message):
        getattr(torch, name)(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]), **kwargs)
    with pytest.raises(RuntimeError, match=f"{name}: {message}, but got"):
        getattr(tr, name)(tr.tensor([1.0, 2.0]), tr.tensor([1.0, 2.5]), **kwargs)


@pytest.mark.parametrize("name", ["isclose", "allclose"])
def test_isclose_and_allclose_refuse_two_dtypes_as_torch(name, torch):
    with pytest.raises(RuntimeError):
        getattr(torch, name)(torch.tensor([1, 2]), torch.tensor([1.0, 2.0]))
    with pytest.raises(RuntimeError, match=f"{name}: the dtypes of the two tensors must match; got int64 and float32"):
        getattr(tr, name)(tr.tensor([1, 2]), tr.tensor([1.0, 2.0]))


# ----------------------------------------------------------------------------- modules

def _layers(lib, container):
    layers = [lib.nn.Linear(1, 1, bias=False) for _ in range(3)]
    return lib.nn.Sequential(*layers) if container == "Sequential" else lib.nn.ModuleList(layers)


@pytest.mark.parametrize("container", ["Sequential", "ModuleList"])
@pytest.mark.parametrize("index", [0, 1, 3, -1, -3])
def test_insert_with_negative_indices_renumbers_as_torch_sequential(container, index, torch):
    """ModuleList follows Sequential's rule (torch's own ModuleList.insert fails on a negative index)."""
    def run(lib, container):
        layers = _layers(lib, container)
        layers.insert(index, lib.nn.Linear(5, 1, bias=False))
        return list(layers.state_dict()), [layer.in_features for layer in layers]
    assert run(tr, container) == run(torch, "Sequential")


@pytest.mark.parametrize("container", ["Sequential", "ModuleList"])
@pytest.mark.parametrize("index", [4, -4, 10])
def test_insert_out_of_range_is_an_index_error_as_torch(container, index, torch):
    with pytest.raises(IndexError, match=f"Index out of range: {index}"):
        _layers(torch, "Sequential").insert(index, torch.nn.Linear(5, 1))
    layers = _layers(tr, container)
    with pytest.raises(IndexError, match=rf"{container}.insert: Index out of range: {index} \(the container holds 3"):
        layers.insert(index, tr.nn.Linear(5, 1))
    assert len(layers) == 3


def test_get_parameter_of_a_missing_bias_raises_torch_attribute_error(torch):
    for lib in (torch, tr):
        net = lib.nn.Sequential(lib.nn.Linear(2, 2, bias=False))
        with pytest.raises(AttributeError, match="`bias` is not an nn.Parameter"):
            net.get_parameter("0.bias")


def test_load_state_dict_assign_refuses_an_integer_parameter_before_changing_anything(torch):
    """torch raises having assigned the weight already; here nothing changes."""
    for lib in (torch, tr):
        net = lib.nn.Linear(2, 3)
        weight = net.weight
        with pytest.raises(RuntimeError, match='parameter named "bias"'):
            net.load_state_dict({"weight": lib.ones(3, 2), "bias": lib.zeros(3, dtype=lib.int64)}, assign=True)
    assert net.weight is weight


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_load_state_dict_assign_takes_the_values_dtype_as_torch(dtype, torch):
    def run(lib):
        net = lib.nn.Linear(2, 3)
        net.load_state_dict({"weight": lib.ones(3, 2, dtype=getattr(lib, dtype)), "bias": lib.zeros(3, dtype=lib.float32)},
                            assign=True)
        return _dtype_name(net.weight.dtype), _dtype_name(net.bias.dtype), net.weight.requires_grad
    assert run(tr) == run(torch)


# ----------------------------------------------------------------------------- lr_scheduler.step(epoch)

SCHEDULES = {
    "StepLR": lambda S, opt: S.StepLR(opt, 2, 0.5), "MultiStepLR": lambda S, opt: S.MultiStepLR(opt, [2, 5], 0.5),
    "ExponentialLR": lambda S, opt: S.ExponentialLR(opt, 0.9), "LinearLR": lambda S, opt: S.LinearLR(opt, 0.2, 1.0, 4),
    "ConstantLR": lambda S, opt: S.ConstantLR(opt, 0.5, 3), "CosineAnnealingLR": lambda S, opt: S.CosineAnnealingLR(opt, 5, 0.01),
    "CosineAnnealingWarmRestarts": lambda S, opt: S.CosineAnnealingWarmRestarts(opt, 3, 2),
    "LambdaLR": lambda S, opt: S.LambdaLR(opt, lambda e: 0.9 ** e),
    "OneCycleLR": lambda S, opt: S.OneCycleLR(opt, 1.0, total_steps=20),
}


@pytest.mark.parametrize("epochs", [[3, 4, 7, 1], [1, 2, 3], [0, 5, 5, 2]])
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_scheduler_step_to_an_explicit_epoch_gives_torch_lr(name, epochs, torch):
    """torch's deprecated step(epoch) still works: the lr of that epoch, by the closed form, with a warning."""
    def run(lib):
        opt = lib.optim.SGD([lib.nn.Parameter(lib.zeros(2))], lr=0.1, momentum=0.9)
        schedule = SCHEDULES[name](lib.optim.lr_scheduler, opt)
        lrs = []
        for epoch in epochs:
            opt.step()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's deprecation warning; checked below
                schedule.step(epoch)
            lrs.append((opt.param_groups[0]["lr"], schedule.get_last_lr()[0], schedule.last_epoch))
        return lrs
    np.testing.assert_allclose(run(tr), run(torch), rtol=1e-12)


def test_scheduler_step_to_an_explicit_epoch_warns_as_torch(torch):
    for lib in (torch, tr):
        opt = lib.optim.SGD([lib.nn.Parameter(lib.zeros(2))], lr=0.1)
        schedule = lib.optim.lr_scheduler.StepLR(opt, 2)
        with pytest.warns(UserWarning, match="The epoch parameter in `scheduler.step\\(\\)` was not necessary"):
            schedule.step(3)


def test_reduce_lr_on_plateau_step_takes_an_epoch_as_torch(torch):
    def run(lib):
        opt = lib.optim.SGD([lib.nn.Parameter(lib.zeros(2))], lr=0.1)
        schedule = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
        out = []
        for epoch, metric in [(5, 1.0), (6, 2.0), (2, 3.0)]:
            with pytest.warns(UserWarning):
                schedule.step(metric, epoch)
            out.append((schedule.last_epoch, opt.param_groups[0]["lr"]))
        return out
    assert run(tr) == run(torch)


# ----------------------------------------------------------------------------- in-place forms

IN_PLACE = {  # name: (change, whether torch can differentiate it: it records x //= y and fails in backward)
    "div_floor": (lambda x: x.div_(2.5, rounding_mode="floor"), True),
    "div_trunc": (lambda x: x.div_(-2.5, rounding_mode="trunc"), True),
    "floor_divide_": (lambda x: x.floor_divide_(1.5), False), "//=": (lambda x: x.__ifloordiv__(2.0), False),
    "pow_": (lambda x: x.pow_(2), True), "**=": (lambda x: x.__ipow__(3), True),
    "remainder_": (lambda x: x.remainder_(1.5), True), "%=": (lambda x: x.__imod__(2.0), True),
    "neg_": (lambda x: x.neg_(), True), "abs_": (lambda x: x.abs_(), True),
}


@pytest.mark.parametrize("name", sorted(IN_PLACE))
@pytest.mark.parametrize("dtype", ["float64", "int64"])
def test_in_place_arithmetic_as_torch(name, dtype, torch):
    """Values, dtype and (through a non-leaf) gradient of torch's in-place forms."""
    change, differentiable = IN_PLACE[name]

    def run(lib):
        values = np.array([[1.5, -2.0, 3.25], [-4.5, 5.0, 0.5]]) if dtype == "float64" else np.array([[1, -2, 3], [-4, 5, 7]])
        leaf = lib.tensor(values, dtype=getattr(lib, dtype), requires_grad=dtype == "float64" and differentiable)
        x = leaf * 1
        try:
            out = change(x)
        except RuntimeError as e:
            return type(e).__name__
        assert out is x
        if leaf.requires_grad:
            (x * lib.tensor(np.arange(1.0, 7.0).reshape(2, 3))).sum().backward()
        return _dtype_name(x.dtype), x.detach().numpy().tolist(), None if leaf.grad is None else leaf.grad.numpy().tolist()
    assert run(tr) == run(torch)


@pytest.mark.parametrize("combine", [lambda a, b: a + b, lambda a, b: a * 2, lambda a, b: 3 * b],
                         ids=["add", "mul", "rmul"])
def test_sequential_add_and_mul_as_torch(combine, torch):
    """The same module objects, numbered 0..n-1 in the new Sequential."""
    def run(lib):
        a = lib.nn.Sequential(lib.nn.Linear(1, 1, bias=False), lib.nn.Linear(2, 1, bias=False))
        b = lib.nn.Sequential(lib.nn.Linear(3, 1, bias=False))
        combined = combine(a, b)
        assert all(any(m is n for n in list(a) + list(b)) for m in combined)
        return list(combined.state_dict()), [m.in_features for m in combined]
    assert run(tr) == run(torch)


def test_sequential_add_and_mul_refuse_what_torch_refuses(torch):
    for lib in (torch, tr):
        layers = lib.nn.Sequential(lib.nn.ReLU())
        with pytest.raises(ValueError, match="Non-positive multiplication factor 0"):
            layers * 0
        with pytest.raises(TypeError):
            layers * 1.5
        with pytest.raises(ValueError, match="add operator supports only objects of Sequential class"):
            layers + lib.nn.ModuleList()


# ----------------------------------------------------------------------------- half precision

HALF = [60000.0, 10000.0, -20000.0]


@pytest.mark.parametrize("fn", [lambda x: x.norm(), lambda x: x.norm(dim=0, keepdim=True), lambda x: x.std(),
                                lambda x: x.var(), lambda x: x.cumsum(0)], ids=["norm", "norm_dim", "std", "var", "cumsum"])
def test_half_precision_reductions_accumulate_in_float32_as_torch(fn, torch):
    """torch sums half in float32: a partial sum past half's range does not make the result inf."""
    theirs, ours = fn(torch.tensor(HALF, dtype=torch.float16)), fn(tr.tensor(HALF, dtype=tr.float16))
    assert ours.dtype == tr.float16
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_half_precision_norm_gradient_as_torch(torch):
    grads = []
    for lib in (torch, tr):
        x = lib.tensor(HALF, dtype=lib.float16, requires_grad=True)
        x.norm().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])


@pytest.mark.parametrize("fn", [lambda lib, x: x.sum(dtype=lib.float64), lambda lib, x: x.sum(1, dtype=lib.float64),
                                lambda lib, x: lib.sum(x, 0, dtype=lib.int32), lambda lib, x: x.mean(dtype=lib.float32),
                                lambda lib, x: lib.mean(x, dim=1, dtype=lib.float64),
                                lambda lib, x: x.float().sum(0, keepdim=True, dtype=lib.float16)],
                         ids=["sum_float64", "sum_dim_float64", "sum_int32", "mean_float32", "mean_dim", "sum_keepdim_half"])
def test_sum_and_mean_take_dtype_as_torch(fn, torch):
    def run(lib):
        out = fn(lib, lib.tensor([[1, 2], [3, 4]], dtype=lib.int32))
        return _dtype_name(out.dtype), out.numpy().tolist()
    assert run(tr) == run(torch)


# ----------------------------------------------------------------------------- integers out of a dtype's range

@pytest.mark.parametrize("fn", [lambda lib: lib.tensor([1, 2], dtype=lib.uint8) + 300,
                                lambda lib: 300 + lib.tensor([1, 2], dtype=lib.uint8),
                                lambda lib: lib.tensor([1, 2], dtype=lib.int8) * 200,
                                lambda lib: lib.tensor([1, 2], dtype=lib.int32) + 2 ** 40],
                         ids=["uint8_add", "uint8_radd", "int8_mul", "int32_add"])
def test_a_python_int_past_an_integer_tensors_range_wraps_in_arithmetic_as_torch(fn, torch):
    ours, theirs = fn(tr), fn(torch)
    assert (_dtype_name(ours.dtype), ours.tolist()) == (_dtype_name(theirs.dtype), theirs.tolist())


@pytest.mark.parametrize("fn,op", [(lambda lib, x: lib.where(x > 1, x, 300), "where"),
                                   (lambda lib, x: x.clamp(max=300), "clamp"),
                                   (lambda lib, x: x.masked_fill(x > 1, 300), "masked_fill"),
                                   (lambda lib, x: x.fill_(300), "fill_")], ids=["where", "clamp", "masked_fill", "fill_"])
def test_a_python_int_past_an_integer_tensors_range_is_refused_where_torch_refuses(fn, op, torch):
    with pytest.raises(RuntimeError, match="value cannot be converted to type uint8_t without overflow"):
        fn(torch, torch.tensor([1, 2], dtype=torch.uint8))
    with pytest.raises(ValueError, match=f"{op}: value 300 cannot be converted to type uint8 without overflow"):
        fn(tr, tr.tensor([1, 2], dtype=tr.uint8))


def test_mse_loss_refuses_integer_input_as_torch(torch):
    with pytest.raises(NotImplementedError):
        torch.nn.functional.mse_loss(torch.tensor([1, 2]), torch.tensor([1, 3]))
    with pytest.raises(TypeError, match="mse_loss: input must be floating point; got int64"):
        tr.nn.functional.mse_loss(tr.tensor([1, 2]), tr.tensor([1, 3]))
