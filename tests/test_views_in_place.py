"""Views, index assignment and in-place changes against torch (float64): values, gradients, what hooks and
retain_grad see after a view or its base changed in place, torch's index layout and torch's errors."""
import numpy as np
import pytest

import tinygrad_rnn as tr

torch = pytest.importorskip("torch")

F64 = {tr: "float64", torch: torch.float64}


def numpy_of(value):
    """A result as something NumPy compares: tensors as arrays, None and plain values as they are."""
    if hasattr(value, "detach"):
        return value.detach().numpy()
    if isinstance(value, tr.Tensor):
        return value.numpy()
    return value


def assert_as_torch(fn):
    """fn(lib) returns a list of results (tensors, None, lists of hook calls); both libraries give the same."""
    ours, theirs = ([numpy_of(r) for r in fn(lib)] for lib in (tr, torch))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray) and a.shape == b.shape, (a, b)
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        else:
            assert a == b


def leaf(lib, values):
    return lib.tensor(np.asarray(values, dtype=np.float64), dtype=F64[lib], requires_grad=True)


def weights(lib, shape):
    return lib.tensor(np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape), dtype=F64[lib])


def row_of_a_product(lib):
    """(w, x = w * 1, v = x[0]): a view v of a non-leaf x."""
    w = leaf(lib, np.arange(6.0).reshape(2, 3))
    x = w * 1
    return w, x, x[0]


# ----------------------------------------------------------------------------- retain_grad and hooks on views

BASE_CHANGES = {
    "mul_ of the base": lambda lib, x: x.mul_(2),
    "setitem of another row": lambda lib, x: x.__setitem__(1, 5.0),
    "two changes of the base": lambda lib, x: x.mul_(2).add_(1),
}


@pytest.mark.parametrize("change", BASE_CHANGES)
def test_retain_grad_on_a_view_survives_a_change_of_its_base(change):
    """v.retain_grad(), then its base changes in place, then v is used: torch's v.grad is the gradient of the
    view made again from the new base (before, .grad was None)."""
    def run(lib):
        w, x, v = row_of_a_product(lib)
        v.retain_grad()
        BASE_CHANGES[change](lib, x)
        (v * weights(lib, 3)).sum().backward()
        return [v.grad, w.grad]

    assert_as_torch(run)


def test_retain_grad_on_a_view_changed_in_place_itself():
    def run(lib):
        w, _, v = row_of_a_product(lib)
        v.retain_grad()
        v.mul_(2)
        (v * weights(lib, 3)).sum().backward()
        return [v.grad, w.grad]

    assert_as_torch(run)


def test_retain_grad_on_views_of_a_view_after_the_base_changed():
    def run(lib):
        w, x, v = row_of_a_product(lib)
        tail = v[1:]
        tail.retain_grad()
        v.retain_grad()
        x.mul_(2)
        (tail * 3).sum().backward()
        return [tail.grad, v.grad, w.grad]

    assert_as_torch(run)


def test_retain_grad_and_register_hook_after_the_base_changed_go_to_the_current_view():
    def run(lib):
        seen = []
        w, x, v = row_of_a_product(lib)
        x.mul_(2)
        v.retain_grad()
        v.register_hook(lambda g: seen.append(g.tolist()))
        (v * weights(lib, 3)).sum().backward()
        return [v.grad, w.grad, seen]

    assert_as_torch(run)


HOOKED = {
    # a hook on v before v changes in place stays on v's old node, which the base's new graph does not reach
    "hook, v.mul_, use the base": lambda lib, x, v, hook: (v.register_hook(hook), v.mul_(2), x),
    "hook returning g * 10, v.mul_, use the base":
        lambda lib, x, v, hook: (v.register_hook(lambda g: g * 10), v.mul_(2), x),
    # ... but fires where v's old value is used
    "hook, y = v * 5, v.mul_, use the base and y":
        lambda lib, x, v, hook: (v.register_hook(hook), (y := v * 5), v.mul_(2), x.sum(0) + y),
    "hook, base.mul_, use v": lambda lib, x, v, hook: (v.register_hook(hook), x.mul_(2), v),
    "hook, y = v * 5, base.mul_, use v and y":
        lambda lib, x, v, hook: (v.register_hook(hook), (y := v * 5), x.mul_(2), v + y),
    "v.mul_, hook, use the base": lambda lib, x, v, hook: (v.mul_(2), v.register_hook(hook), x),
    "v.mul_, hook, use v": lambda lib, x, v, hook: (v.mul_(2), v.register_hook(hook), v),
    "hook on the base, v[1] = 7, hook on the base, use the base":
        lambda lib, x, v, hook: (x.register_hook(hook), v.__setitem__(1, 7.0), x.register_hook(hook), x),
    "hook on the base, v[1] = 7, use v": lambda lib, x, v, hook: (x.register_hook(hook), v.__setitem__(1, 7.0), v),
    # a view of v changed in place writes into the root (x) as torch's: v's node is not on the way
    "hook on v, v[1:].mul_, use v": lambda lib, x, v, hook: (v.register_hook(hook), v[1:].mul_(3), v),
    "hook on v, v[1:].mul_, use the base": lambda lib, x, v, hook: (v.register_hook(hook), v[1:].mul_(3), x),
}


@pytest.mark.parametrize("name", HOOKED)
def test_hooks_on_views_changed_in_place_fire_as_in_torch(name):
    """Hooks stay on the node the tensor had when they were registered (torch's rule): the same calls with the
    same gradients, and the same gradient for the leaf (before, a hook on a view changed in place fired with the
    old value's gradient and a value it returned changed the base's gradient)."""
    def run(lib):
        seen = []
        w, x, v = row_of_a_product(lib)
        out = HOOKED[name](lib, x, v, lambda g: seen.append(g.tolist()))[-1]
        (out * weights(lib, out.shape)).sum().backward()
        return [w.grad, seen]

    assert_as_torch(run)


# ----------------------------------------------------------------------------- index assignment: torch's layout

INDEXES = {  # on a (3, 4, 5) tensor: the index, and the shape torch gives x[index]
    "0, [1, 2]": lambda lib: (0, [1, 2]),
    "[0, 1], :, 0": lambda lib: ([0, 1], slice(None), 0),
    ":, [0, 2], 1": lambda lib: (slice(None), [0, 2], 1),
    "0, :, [1, 3]": lambda lib: (0, slice(None), [1, 3]),
    "1, :, [0]": lambda lib: (1, slice(None), [0]),
    "0, None, [1, 2]": lambda lib: (0, None, [1, 2]),
    "[[0], [2]], 1, [1, 3]": lambda lib: ([[0], [2]], 1, [1, 3]),
    "..., [0, 1], 2": lambda lib: (Ellipsis, [0, 1], 2),
    "2, ..., [4, 0, 1]": lambda lib: (2, Ellipsis, [4, 0, 1]),
    "tensor 0, :, tensor [1, 3]": lambda lib: (lib.tensor(0), slice(None), lib.tensor([1, 3])),
    "tensor [[0], [1]], :, 2": lambda lib: (lib.tensor([[0], [1]]), slice(None), 2),
    "[0, 2], :, [1, 3]": lambda lib: ([0, 2], slice(None), [1, 3]),
}


def setitem_run(index, value_shape=None):
    """x = w * 1, x[index] = v * 1 (v of x[index]'s shape in torch unless given), a loss through all of x."""
    x0 = np.random.default_rng(3).standard_normal((3, 4, 5))

    def run(lib):
        w = leaf(lib, x0)
        x = w * 1
        shape = value_shape or tuple(torch.zeros(3, 4, 5)[INDEXES[index](torch)].shape)
        v = leaf(lib, np.random.default_rng(4).standard_normal(shape))
        x[INDEXES[index](lib)] = v * 1
        (x * weights(lib, (3, 4, 5))).sum().backward()
        return [x, w.grad, v.grad]

    return run


@pytest.mark.parametrize("index", INDEXES)
def test_setitem_with_integers_and_index_arrays_places_values_as_torch(index):
    """Integers mixed with index arrays: torch applies the integers first, NumPy moves the broadcast dims of
    separated indices to the front; x[index] = v lays v out as torch does (before: refused, or misplaced when the
    sizes happened to fit), and the gradients of x and v are torch's."""
    assert_as_torch(setitem_run(index))


@pytest.mark.parametrize("index", ["0, :, [1, 3]", "0, None, [1, 2]", "[[0], [2]], 1, [1, 3]"])
def test_setitem_with_a_broadcast_value_in_torch_s_layout(index):
    shape = tuple(torch.zeros(3, 4, 5)[INDEXES[index](torch)].shape)
    assert_as_torch(setitem_run(index, (1,) * (len(shape) - 1) + shape[-1:]))


@pytest.mark.parametrize("index", ["0, :, [1, 3]", "1, :, [0]"])
def test_setitem_with_integers_and_index_arrays_without_gradients(index):
    def run(lib):
        x = lib.zeros((3, 4, 5), dtype=F64[lib])
        shape = tuple(torch.zeros(3, 4, 5)[INDEXES[index](torch)].shape)
        x[INDEXES[index](lib)] = lib.tensor(np.arange(np.prod(shape), dtype=np.float64).reshape(shape))
        return [x]

    assert_as_torch(run)


# ----------------------------------------------------------------------------- values with leading 1s, 0-d indices

@pytest.mark.parametrize("index, value_shape", [
    (0, (1, 4)), (0, (1, 1, 4)), (0, (1, 1)), ((slice(None), slice(1, 3)), (1, 3, 2)),
    ((slice(None), slice(1, 3)), (1, 1, 1, 2)), ([0, 2], (1, 2, 4)), ((1, [0, 3]), (1, 1, 2)),
])
def test_a_value_with_leading_size_one_dims_is_assigned_as_in_torch(index, value_shape):
    """torch drops a value's leading 1s that x[index] has not: x[0] = v of shape (1, H) (before, the gradient of v
    could not be summed back to its shape)."""
    v0 = np.random.default_rng(5).standard_normal(value_shape)

    def run(lib):
        w = leaf(lib, np.random.default_rng(6).standard_normal((3, 4)))
        v = leaf(lib, v0)
        x = w * 1
        x[index] = v
        (x * weights(lib, (3, 4))).sum().backward()
        with lib.no_grad():
            plain = lib.zeros((3, 4), dtype=F64[lib])
            plain[index] = v
        return [x, w.grad, v.grad, plain]

    assert_as_torch(run)


@pytest.mark.parametrize("value_shape", [(2, 4), (4, 1), (1, 2, 4)])
@pytest.mark.parametrize("recorded", [True, False])
def test_a_value_that_does_not_fit_is_refused_naming_both_shapes(value_shape, recorded):
    for lib in (tr, torch):
        x = lib.zeros((3, 4), dtype=F64[lib], requires_grad=recorded) * 1
        with pytest.raises(RuntimeError) as refused:
            x[0] = lib.ones(value_shape, dtype=F64[lib])
        if lib is tr:
            message = str(refused.value).replace(" ", "")
            assert "(4,)" in message and str(value_shape).replace(" ", "")[1:] in message


@pytest.mark.parametrize("index", [
    lambda lib: lib.tensor(1), lambda lib: (lib.tensor(1), lib.tensor(2)), lambda lib: (slice(None), lib.tensor(0)),
    lambda lib: np.array(2), lambda lib: (lib.tensor(0), [1, 3]),
])
def test_a_0_d_integer_tensor_indexes_as_an_int(index):
    """As torch: its dim dropped, x[i] a view (writes through it reach x, and x's later changes reach it), and the
    same gradients (before, a copy: writes were lost)."""
    def run(lib):
        w = leaf(lib, np.random.default_rng(7).standard_normal((3, 4)))
        x = w * 1
        picked = x[index(lib)]
        seen = x.detach()[index(lib)]
        picked.mul_(3)
        with lib.no_grad():
            x.add_(1)
        (x * weights(lib, (3, 4))).sum().backward()
        return [x, picked, seen, w.grad]

    assert_as_torch(run)


# ----------------------------------------------------------------------------- memory that overlaps, as torch

def outcome(fn, lib):
    """fn(lib)'s results, or the error torch's kind of check gives: (type name, message up to the first '.')."""
    try:
        return [numpy_of(r) for r in fn(lib)]
    except (RuntimeError, ValueError) as e:
        return (type(e).__name__, str(e).split("unsupported operation: ")[-1].split(".")[0]
                if "unsupported operation" in str(e) else "another error")


def assert_same_outcome(fn):
    ours, theirs = outcome(fn, tr), outcome(fn, torch)
    if isinstance(theirs, tuple) or isinstance(ours, tuple):
        assert isinstance(ours, tuple) and ours == theirs, (ours, theirs)
    else:
        assert_as_torch(fn)


EXPANDED_WRITES = {  # on x.expand(3, 4) of a (4,) tensor
    "add_": lambda lib, y: y.add_(1),
    "mul_ by a tensor": lambda lib, y: y.mul_(lib.ones(4, dtype=F64[lib])),
    "copy_": lambda lib, y: y.copy_(lib.ones((3, 4), dtype=F64[lib])),
    "clamp_": lambda lib, y: y.clamp_(0, 1),
    "uniform_": lambda lib, y: y.uniform_(),
    "setitem of a column": lambda lib, y: y.__setitem__((slice(None), 1), 7.0),
    "setitem of all": lambda lib, y: y.__setitem__(Ellipsis, 7.0),
    "transposed add_": lambda lib, y: y.T.add_(1),
    # torch writes these: no element of what is written is reached twice, or the op does not check
    "setitem of a row": lambda lib, y: y.__setitem__(0, 7.0),
    "add_ on a row": lambda lib, y: y[1].add_(1),
    "fill_": lambda lib, y: y.fill_(2.0),
    "zero_": lambda lib, y: y.zero_(),
}


@pytest.mark.parametrize("name", EXPANDED_WRITES)
def test_writes_into_an_expanded_tensor_as_torch(name):
    """An in-place change that would write one element of memory twice is refused with torch's error (before, a
    message about a read-only array given to from_numpy); one that does not reaches the tensor expanded."""
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64[lib])
        EXPANDED_WRITES[name](lib, x.expand(3, 4))
        return [x]

    assert_same_outcome(run)


def test_a_row_of_an_expanded_strided_tensor_is_written_as_in_torch():
    """(before: refused as a read-only array given to from_numpy)"""
    def run(lib):
        base = lib.tensor(np.arange(6.0), dtype=F64[lib])
        base[::2].expand(3, 3)[1] = lib.tensor([7.0, 8.0, 9.0], dtype=F64[lib])
        return [base]

    assert_same_outcome(run)


OVERLAPPING = {
    "x[1:] = x[:-1]": lambda lib, x: x.__setitem__(slice(1, None), x[:-1]),
    "x[:-1] = x[1:]": lambda lib, x: x.__setitem__(slice(None, -1), x[1:]),
    "x[1:].copy_(x[:-1])": lambda lib, x: x[1:].copy_(x[:-1]),
    "x[1:] += x[:-1]": lambda lib, x: x[1:].__iadd__(x[:-1]),
    "x.copy_(x.flip)": lambda lib, x: x.reshape(2, 3).copy_(x.reshape(3, 2).T),
    "x[[1, 2]] = x[:2]": lambda lib, x: x.__setitem__([1, 2], x[:2]),
    # no partial overlap: allowed
    "x.add_(x)": lambda lib, x: x.add_(x),
    "x[:3] = x[3:]": lambda lib, x: x.__setitem__(slice(None, 3), x[3:]),
    "x.mul_(x.detach())": lambda lib, x: x.mul_(x.detach()),
}


@pytest.mark.parametrize("recorded", [False, True])
@pytest.mark.parametrize("name", OVERLAPPING)
def test_a_change_that_reads_memory_it_writes_is_refused_as_in_torch(name, recorded):
    """Where a tensor written in place and its operand partly share memory, torch refuses; so does this engine
    (before, NumPy's copy semantics gave a value torch never gives, and a gradient)."""
    def run(lib):
        w = lib.tensor(np.arange(1.0, 7.0), dtype=F64[lib], requires_grad=recorded)
        x = w * 1 if recorded else w
        OVERLAPPING[name](lib, x)
        if recorded:
            (x * weights(lib, 6)).sum().backward()
        return [x, w.grad]

    assert_same_outcome(run)


# ----------------------------------------------------------------------------- .data and detach()

def test_setting_data_takes_the_new_tensor_s_memory_shape_and_dtype_as_torch():
    """As torch's set_data: another shape or floating dtype is taken (before: refused), the memory is the new
    tensor's, and the version counter stays the old one's (shared with a detached copy taken before)."""
    def run(lib):
        w = leaf(lib, [1.0, 2.0])
        before = w.detach()
        new = lib.zeros(3, dtype=lib.float32)
        w.data = new
        new.add_(1)  # w sees it
        before.add_(1)  # w's version moves on, not new's
        (w * 2).sum().backward()
        return [w, w.grad, str(w.dtype).split(".")[-1], w._version, new._version, before]

    assert_as_torch(run)


def test_setting_data_refuses_what_torch_refuses():
    for lib in (tr, torch):
        with pytest.raises(TypeError, match="data"):
            lib.zeros(2, 3).data = [1, 2]
        with pytest.raises(RuntimeError, match="floating point"):
            leaf(lib, [1.0, 2.0]).data = lib.tensor([1, 2])


# ----------------------------------------------------------------------------- torch's other in-place methods

IN_PLACE_METHODS = {
    **dict.fromkeys((  # called with no arguments
        "exp_", "log_", "tanh_", "sigmoid_", "relu_", "neg_", "sqrt_", "abs_", "floor_", "ceil_", "round_",
        "trunc_", "reciprocal_", "rsqrt_", "square_", "erf_", "expm1_", "log1p_", "tril_", "triu_", "detach_")),
    "clamp_min_": lambda lib, x, y: x.clamp_min_(1.2),
    "clamp_max_": lambda lib, x, y: x.clamp_max_(1.2),
    "pow_ of a number": lambda lib, x, y: x.pow_(3),
    "pow_ of a tensor": lambda lib, x, y: x.pow_(y),
    "remainder_": lambda lib, x, y: x.remainder_(y),
    "fmod_": lambda lib, x, y: x.fmod_(y),
    "lerp_": lambda lib, x, y: x.lerp_(y, 0.3),
    "addcmul_": lambda lib, x, y: x.addcmul_(y, y.exp(), value=0.5),
    "addcdiv_": lambda lib, x, y: x.addcdiv_(y, y + 3),
}


@pytest.mark.parametrize("name", IN_PLACE_METHODS)
@pytest.mark.parametrize("who_requires_grad", ["tensor", "operand"])
def test_in_place_methods_of_torch(name, who_requires_grad):
    """torch's in-place forms of elementwise methods exist (before: AttributeError) and give torch's values and
    gradients, on a non-leaf or with an operand that requires grad."""
    def run(lib):
        a = leaf(lib, np.linspace(0.3, 2.1, 6).reshape(2, 3))
        b = leaf(lib, np.linspace(-1.5, 1.7, 6).reshape(2, 3) + 0.05)
        if who_requires_grad == "operand":
            a = a.detach()
        x = a * 1
        call = IN_PLACE_METHODS[name]
        returned = call(lib, x, b) if call else getattr(x, name)()
        if x.requires_grad:
            (x * weights(lib, (2, 3))).sum().backward()
        return [returned is x, x, a.grad, b.grad, x.requires_grad]

    assert_as_torch(run)


def test_in_place_methods_refuse_what_torch_refuses():
    for lib in (tr, torch):
        with pytest.raises(RuntimeError):
            lib.tensor([1, 2]).exp_()  # a float result into an integer tensor
        with pytest.raises(RuntimeError, match="leaf Variable"):
            leaf(lib, [1.0]).tanh_()
        with pytest.raises(RuntimeError, match="detach"):
            (leaf(lib, [1.0, 2.0]) * 1)[:1].detach_()


def test_floor_divide_and_sign_in_place():
    """(torch has no gradient for floor_divide_; sign here is a constant, no node, where torch's gradient is 0)"""
    def run(lib):
        x = lib.tensor([7.0, -7.0, 5.5], dtype=F64[lib])
        y = lib.tensor([-2.0, 0.0, 3.0], dtype=F64[lib])
        return [x.floor_divide_(lib.tensor([2.0, 2.0, -1.5], dtype=F64[lib])), x, y.sign_(), y]

    assert_as_torch(run)


SHAPE_CHANGES = [("squeeze_", ()), ("squeeze_", (1,)), ("squeeze_", ((1, 3),)), ("unsqueeze_", (0,)),
                 ("unsqueeze_", (-1,)), ("transpose_", (0, 2)), ("swapdims_", (2, 0)), ("swapaxes_", (1, -1))]


@pytest.mark.parametrize("name,args", SHAPE_CHANGES)
def test_in_place_shape_changes_rebase_the_tensor_as_torch(name, args):
    """The tensor itself takes the new shape and the view's place in the graph; the version moves on."""
    def fn(lib):
        a = leaf(lib, np.arange(1.0, 7.0).reshape(2, 1, 3, 1))
        b = a * 2
        version = b._version
        assert getattr(b, name)(*args) is b
        out = (b.exp() * weights(lib, b.shape)).sum()
        (grad,) = lib.autograd.grad(out, a, create_graph=True)
        (second,) = lib.autograd.grad((grad * grad).sum(), a)
        return [b, b._version - version, tuple(b.shape), grad, second]
    assert_as_torch(fn)


@pytest.mark.parametrize("shape", [(2, 3), (3,), ()])
def test_t_in_place_as_torch(shape):
    def fn(lib):
        a = leaf(lib, np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape))
        b = a.sin()
        b.t_()
        b.sum().backward()
        return [b, a.grad]
    assert_as_torch(fn)


def test_a_shape_change_of_a_view_writes_through_to_its_base_as_torch():
    def fn(lib):
        a = leaf(lib, np.arange(1.0, 7.0).reshape(2, 3))
        b = a * 1
        row = b[1]
        row.unsqueeze_(0)
        row.mul_(leaf(lib, [[2.0, 3.0, 4.0]]))
        row.t_()
        (b * b).sum().backward()
        return [b, tuple(row.shape), a.grad]
    assert_as_torch(fn)


def test_a_shape_change_under_no_grad_keeps_a_leaf_a_leaf_and_refuses_one_with_grad():
    def fn(lib):
        a = leaf(lib, np.ones((3, 1)))
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            a.squeeze_()
        with lib.no_grad():
            a.squeeze_()
        (a * a).sum().backward()
        return [tuple(a.shape), a.is_leaf, a.grad]
    assert_as_torch(fn)


def test_shape_changes_refuse_what_torch_refuses():
    for lib in (tr, torch):
        x = lib.zeros(2, 3)
        for name, args, error, message in (("squeeze_", (5,), IndexError, "Dimension out of range"),
                                           ("unsqueeze_", (4,), IndexError, "Dimension out of range"),
                                           ("transpose_", (0, 3), IndexError, "Dimension out of range"),
                                           ("squeeze_", ((0, 0),), RuntimeError, "dim 0 appears multiple times")):
            with pytest.raises(error, match=message):
                getattr(x, name)(*args)
        with pytest.raises(RuntimeError, match=r"t_\(\) expects a tensor with <= 2 dimensions, but self is 3D"):
            lib.zeros(2, 3, 4).t_()
        assert x.shape == (2, 3) and x._version == 0


def test_a_value_saved_for_backward_refuses_after_a_shape_change_as_torch():
    for lib in (tr, torch):
        a = leaf(lib, np.ones((2, 3)))
        b = a.exp()
        b.t_()
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            b.sum().backward()
