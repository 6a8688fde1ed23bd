"""In-place changes recorded in the graph, as torch records them (CopySlices, rebased grad_fn): x[index] = v,
the augmented assignments and the in-place methods on tensors that gradients flow through, against torch
in float64 (values, gradients, gradients of gradients and errors)."""
import numpy as np
import pytest

import tinygrad_rnn as tr

torch = pytest.importorskip("torch")

F64 = {tr: "float64", torch: torch.float64}


def leaves(lib, arrays):
    return [lib.tensor(a, dtype=F64[lib], requires_grad=True) for a in arrays]


def grads(lib, outputs, inputs, create_graph=False):
    """Gradients of outputs (summed) for inputs, zeros where none reached."""
    found = lib.autograd.grad(outputs, inputs, create_graph=create_graph, allow_unused=True)
    return [g if g is not None else lib.zeros(t.shape, dtype=F64[lib]) for g, t in zip(found, inputs)]


def numpy_of(t):
    return t.detach().numpy() if hasattr(t, "detach") else t.numpy()


def check_against_torch(fn, *arrays, second_order=True, seed=0):
    """fn(lib, *leaves) -> a tensor, in both libraries: the value, the gradients of a random projection of
    it, and (second_order) the gradients of a projection of those gradients agree to 1e-12."""
    results = {}
    for lib in (tr, torch):
        inputs = leaves(lib, arrays)
        out = fn(lib, *inputs)
        direction = np.random.default_rng(seed + 1).standard_normal(out.shape)
        loss = (out * lib.tensor(direction, dtype=F64[lib])).sum()
        first = grads(lib, loss, inputs, create_graph=second_order)
        second = []
        if second_order:
            weights = [lib.tensor(np.random.default_rng(seed + 2 + k).standard_normal(t.shape), dtype=F64[lib])
                       for k, t in enumerate(inputs)]
            projected = sum((g * w).sum() for g, w in zip(first, weights) if g.requires_grad)
            second = grads(lib, projected, inputs) if isinstance(projected, lib.Tensor) else []
        results[lib] = [numpy_of(out)] + [numpy_of(g) for g in first + second]
    assert len(results[tr]) == len(results[torch])
    for ours, theirs in zip(results[tr], results[torch]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- setitem


def test_rnn_outputs_written_step_by_step_into_a_zeros_buffer():
    """outputs[t] = h over T steps, then a loss through another parameter: every gradient reaches h0, W, U
    and the readout (before, h got none, silently)."""
    T, B, H, F = 5, 2, 3, 4
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((T, B, F))

    def unrolled(lib, h0, W, U, readout):
        outputs = lib.zeros((T, B, H), dtype=F64[lib])
        h = h0
        for t in range(T):
            h = lib.tanh(lib.tensor(xs[t], dtype=F64[lib]) @ W + h @ U)
            outputs[t] = h
        return (outputs * readout).sum(-1)

    check_against_torch(unrolled, rng.standard_normal((B, H)), rng.standard_normal((F, H)) * 0.5,
                        rng.standard_normal((H, H)) * 0.5, rng.standard_normal((T, 1, H)))


def test_the_buffer_becomes_part_of_the_graph():
    h = tr.tensor(np.ones((2, 3)), dtype="float64", requires_grad=True)
    out = tr.zeros(4, 2, 3, dtype="float64")
    buffer = out.array
    out[1] = h * 2
    assert out.requires_grad and not out.is_leaf and out.grad_fn.op == "indexput"
    assert out.array is buffer  # written into its own memory
    w = tr.tensor(np.arange(24.).reshape(4, 2, 3), dtype="float64", requires_grad=True)
    (out * w).sum().backward()
    np.testing.assert_array_equal(h.grad.numpy(), 2 * np.arange(6., 12.).reshape(2, 3))
    np.testing.assert_array_equal(w.grad.numpy(), out.numpy())


INDEXES = {
    "int": lambda lib: 2,
    "negative int and slice": lambda lib: (-1, slice(1, 3)),
    "slices with a step": lambda lib: (slice(None), slice(None, None, 2)),
    "ellipsis and None": lambda lib: (Ellipsis, None, 1),
    "integer arrays": lambda lib: (lib.tensor([0, 2, 3]), lib.tensor([1, 0, 3])),
    "a list": lambda lib: [3, 1],
    "boolean mask": lambda lib: lib.tensor(np.array([[True, False, True, False]] * 4)),
    "row mask": lambda lib: lib.tensor(np.array([True, False, False, True])),
}


@pytest.mark.parametrize("name", INDEXES)
def test_setitem_into_zeros_from_a_tensor_that_requires_grad(name):
    def written(lib, v, w):
        out = lib.zeros((4, 4), dtype=F64[lib])
        index = INDEXES[name](lib)
        shape = lib.zeros((4, 4))[index].shape
        out[index] = (v.sum() * v[:1] if shape == () else v.reshape(-1)[:1].expand(*shape)) * 3
        return out * w

    check_against_torch(written, np.random.default_rng(3).standard_normal((2, 3)),
                        np.random.default_rng(4).standard_normal((4, 4)))


@pytest.mark.parametrize("name", INDEXES)
def test_setitem_into_a_non_leaf(name):
    """The overwritten part gets no gradient, the value broadcast to the slice gets the slice's, summed."""
    def written(lib, x, v):
        y = x.tanh() * 2
        index = INDEXES[name](lib)
        shape = lib.zeros((4, 4))[index].shape
        # whole rows: one row broadcast to them; else as many of v's elements as the slice has
        y[index] = v[0] if name in ("a list", "row mask") else v.reshape(-1)[:int(np.prod(shape))].reshape(shape)
        return y * y

    check_against_torch(written, np.random.default_rng(5).standard_normal((4, 4)),
                        np.random.default_rng(6).standard_normal((2, 4)))


def test_setitem_of_numbers_and_arrays_into_a_non_leaf():
    def written(lib, x):
        y = x * 3
        y[:, :3] = 0
        y[1] = lib.tensor(np.arange(5.))  # a constant
        y[y > 2] = -1.5  # a mask computed from the values
        return y.exp()

    check_against_torch(written, np.random.default_rng(7).standard_normal((3, 5)))


def test_setitem_with_a_value_of_another_dtype_keeps_the_tensors():
    x = tr.tensor(np.ones(3), dtype="float32", requires_grad=True)
    y = x * 2
    v = tr.tensor([5.0], dtype="float64", requires_grad=True)
    y[1:2] = v
    assert y.dtype == np.float32
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 0, 2])
    assert v.grad.dtype == np.float64 and v.grad.numpy().tolist() == [1.0]


# ----------------------------------------------------------------------------- augmented assignment and methods


def test_augmented_assignment_on_non_leaves_changes_them_in_place():
    def chain(lib, x, b):
        y = x * 2
        alias = y
        y += b
        y -= x * b
        y *= b
        y /= x.exp()
        assert y is alias  # the same tensor, changed, as in torch
        return y

    check_against_torch(chain, np.random.default_rng(8).standard_normal((3, 4)),
                        np.random.default_rng(9).standard_normal(4))


METHODS = {
    "mul_ number": lambda lib, y, v: y.mul_(3),
    "mul_ tensor": lambda lib, y, v: y.mul_(v),
    "add_ alpha": lambda lib, y, v: y.add_(v, alpha=-0.5),
    "sub_ alpha": lambda lib, y, v: y.sub_(v * v, alpha=2),
    "div_": lambda lib, y, v: y.div_(v.exp()),
    "clamp_": lambda lib, y, v: y.clamp_(-0.5, 0.7),
    "clamp_ min": lambda lib, y, v: y.clamp_(min=0),
    "masked_fill_ number": lambda lib, y, v: y.masked_fill_(y > 0.3, 2.5),
    "masked_fill_ tensor": lambda lib, y, v: y.masked_fill_(y > 0.3, v.sum()),
    "zero_": lambda lib, y, v: y.zero_(),
    "fill_ number": lambda lib, y, v: y.fill_(1.25),
    "fill_ tensor": lambda lib, y, v: y.fill_(v[0] * 2),
    "copy_ broadcast": lambda lib, y, v: y.copy_(v * 3),
}


@pytest.mark.parametrize("name", METHODS)
def test_in_place_methods_on_non_leaves(name):
    def changed(lib, x, v):
        y = x.tanh() * 1.5
        returned = METHODS[name](lib, y, v)
        assert returned is y
        return y * x

    check_against_torch(changed, np.random.default_rng(10).standard_normal((3, 4)),
                        np.random.default_rng(11).standard_normal(4))


@pytest.mark.parametrize("value", ["number", "0-d tensor"])
def test_assignment_through_a_mask_of_the_tensor_s_shape(value):
    """y[y > 0.3] = value: masked positions take the value (and pass their gradient to it, not to y)."""
    def changed(lib, x, v):
        y = x.tanh() * 1.5
        y[y > 0.3] = 2.5 if value == "number" else v.sum()
        return y * x

    check_against_torch(changed, np.random.default_rng(10).standard_normal((3, 4)),
                        np.random.default_rng(11).standard_normal(4))


def test_in_place_on_a_tensor_that_does_not_require_grad_with_an_operand_that_does():
    def changed(lib, v):
        y = lib.ones((2, 3), dtype=F64[lib])
        y.add_(v)
        y.mul_(v)
        return y

    check_against_torch(changed, np.random.default_rng(12).standard_normal(3))


def test_a_float32_tensor_stays_float32():
    x = tr.tensor(np.ones(3), dtype="float32", requires_grad=True)
    y = x * 1
    b = tr.tensor(np.full(3, 0.5), dtype="float64", requires_grad=True)
    y.add_(b)
    assert y.dtype == np.float32 and y.grad_fn.op == "cast"
    y.sum().backward()
    assert x.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_named_tensors_keep_their_name_on_the_new_node():
    y = (tr.tensor(np.ones(2), dtype="float64", requires_grad=True) * 2).named("h")
    y[0] = 5.0
    assert y.grad_fn.name == "h"


# ----------------------------------------------------------------------------- errors, as torch's


@pytest.mark.parametrize("change", [lambda x: x.mul_(2), lambda x: x.__setitem__(0, 1.0), lambda x: x.zero_()])
def test_a_leaf_that_requires_grad_is_refused(change):
    for lib in (tr, torch):
        x = lib.tensor(np.ones(3), dtype=F64[lib], requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            change(x)


def test_augmented_assignment_on_a_leaf_that_requires_grad_is_refused():
    x = tr.tensor(np.ones(3), dtype="float64", requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        x += 1


def test_a_saved_value_changed_afterwards_is_refused_naming_the_tensor():
    for lib in (tr, torch):
        x = lib.tensor(np.ones(3), dtype=F64[lib], requires_grad=True)
        w = lib.tensor(np.ones(3), dtype=F64[lib], requires_grad=True)
        a = x * 2
        if lib is tr:
            a.named("a")
        product = a * w  # keeps a for w's gradient
        a.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation") as error:
            product.sum().backward()
        if lib is tr:
            assert "tensor 'a' of shape (3,)" in str(error.value)


def test_a_tensor_multiplied_by_itself_in_place_is_refused_in_backward():
    for lib in (tr, torch):
        x = lib.tensor(np.ones(3), dtype=F64[lib], requires_grad=True)
        y = x * 2
        y.mul_(y)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_an_output_its_backward_reads_changed_in_place_is_refused():
    for lib in (tr, torch):
        x = lib.tensor(np.ones(3), dtype=F64[lib], requires_grad=True)
        s = x.sigmoid()
        s[0] = 0.0
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            s.sum().backward()


# ----------------------------------------------------------------------------- views, as torch's


T, B, I, H = 5, 2, 3, 4
SEQ = np.random.default_rng(20).standard_normal((T, B, I))
RNN_PARAMETERS = (np.random.default_rng(21).standard_normal((H, H)) * 0.5,
                  np.random.default_rng(22).standard_normal((H, I)) * 0.5)


def naive_rnn(lib, W, U, clone=False):
    """The recurrence as a learner writes it: each step reads h[t], a view of h, and writes h[t + 1]."""
    x = lib.tensor(SEQ, dtype=F64[lib])
    h = lib.zeros((T + 1, B, H), dtype=F64[lib])
    for t in range(T):
        previous = h[t].clone() if clone else h[t]
        h[t + 1] = (previous @ W.T + x[t] @ U.T).tanh()
    return h[1:]


def naive_lstm(lib, W, U, clone=False):
    """An LSTM-style recurrence writing h[t + 1] and c[t + 1] into buffers."""
    x = lib.tensor(SEQ, dtype=F64[lib])
    h, c = lib.zeros((T + 1, B, H), dtype=F64[lib]), lib.zeros((T + 1, B, H), dtype=F64[lib])
    for t in range(T):
        h_t, c_t = (h[t].clone(), c[t].clone()) if clone else (h[t], c[t])
        gates = h_t @ W.T + (x[t] @ U.T).repeat(1, 1)
        f, g = gates.sigmoid(), gates.tanh()
        c[t + 1] = f * c_t + (1 - f) * g
        h[t + 1] = c[t + 1].tanh() * f
    return h[1:] + c[1:]


@pytest.mark.parametrize("recurrence", [naive_rnn, naive_lstm])
def test_a_recurrence_that_saves_a_view_of_the_buffer_is_refused_in_backward_as_in_torch(recurrence):
    """h[t] @ W.T keeps h[t] for W's gradient; writing h[t + 1] moves the version counter h[t] shares with h,
    so torch's backward refuses, and so does this one (the forward runs: the buffer's graph is recorded)."""
    for lib in (tr, torch):
        W, U = leaves(lib, RNN_PARAMETERS)
        out = recurrence(lib, W, U)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.sum().backward()


@pytest.mark.parametrize("recurrence", [naive_rnn, naive_lstm])
def test_a_recurrence_writing_into_a_buffer_reading_clones_of_its_views(recurrence):
    check_against_torch(lambda lib, W, U: recurrence(lib, W, U, clone=True), *RNN_PARAMETERS)


def decaying_sum(lib, x):
    """out[t] = out[t - 1] * 0.9 + x[t]: a product by a number keeps nothing, so torch runs it as written."""
    out = lib.zeros(x.shape, dtype=F64[lib])
    out[0] = x[0]
    for t in range(1, len(x)):
        out[t] = out[t - 1] * 0.9 + x[t]
    return out


def test_a_decaying_sum_written_into_a_buffer_step_by_step():
    check_against_torch(decaying_sum, np.random.default_rng(23).standard_normal((6, 3)))


def test_tr_func_grad_over_recurrences_in_a_buffer():
    x = np.random.default_rng(24).standard_normal((6, 3))
    W, U = RNN_PARAMETERS
    pairs = [(tr.func.grad(lambda v: (decaying_sum(tr, v) ** 2).sum())(tr.tensor(x, dtype="float64")),
              torch.func.grad(lambda v: (decaying_sum(torch, v) ** 2).sum())(torch.tensor(x))),
             (tr.func.grad(lambda w: naive_rnn(tr, w, tr.tensor(U, dtype="float64"), clone=True).sum())(
                 tr.tensor(W, dtype="float64")),
              torch.func.grad(lambda w: naive_rnn(torch, w, torch.tensor(U), clone=True).sum())(torch.tensor(W)))]
    for a, b in pairs:
        np.testing.assert_allclose(numpy_of(a), numpy_of(b), rtol=1e-12, atol=1e-12)


def test_a_view_taken_before_the_change_gets_the_new_graph():
    """torch regenerates the view's grad_fn from its base's new one; so does this engine, when the view is used."""
    def used_after(lib, x, v):
        y = x * 2
        row, column, block = y[0], y[:, 1], y.reshape(12)[2:6]  # views of y taken before y changes
        buffer = lib.zeros((3, 4), dtype=F64[lib])
        first = buffer[1]  # a view of a tensor no gradient reaches yet
        y.mul_(v)
        buffer[1] = v * 3
        assert first.requires_grad or lib is tr  # (here: once it is used)
        return lib.cat([row * 2, column.exp(), block, first * first, buffer[1:].sum(0)])

    check_against_torch(used_after, np.random.default_rng(25).standard_normal((3, 4)),
                        np.random.default_rng(26).standard_normal(4))


def test_a_view_used_after_its_base_changed_has_the_base_s_graph():
    h = tr.zeros(3, 2, dtype="float64")
    first = h[0]
    assert not first.requires_grad
    v = tr.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    h[0] = v * 3
    assert first.grad_fn.op == "getitem" and first.requires_grad  # grad_fn regenerates it, as torch's
    (first * first).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), [18.0, 36.0])


VIEW_CHANGES = {
    "mul_ of a row": lambda lib, y, v: y[1].mul_(v),
    "+= on a slice": lambda lib, y, v: y[:, :2].__iadd__(v[:2]),
    "y[i] += v (getitem, add_, setitem)": lambda lib, y, v: y.__setitem__(2, y[2].__iadd__(v)),
    "setitem into a view": lambda lib, y, v: y[:, 1:].__setitem__((slice(None), 0), v[:3] * 2),
    "zero_ of a column": lambda lib, y, v: y[:, 3].zero_(),
    "clamp_ of a block": lambda lib, y, v: y[1:, 1:3].clamp_(-0.3, 0.4),
    "copy_ into a row": lambda lib, y, v: y[0].copy_(v.exp()),
    "masked_fill_ of a strided view": lambda lib, y, v: y[::2].masked_fill_(y[::2] > 0.2, v[0]),
    "chain of views": lambda lib, y, v: y[1:][:, ::2][0].mul_(v[1:3]),
    "reshape view": lambda lib, y, v: y.reshape(2, 6).add_(v[:1]),
    "transpose view": lambda lib, y, v: y.T.mul_(v[:3]),
    "row of a transpose": lambda lib, y, v: y.T[2].sub_(v[:3], alpha=2),
    # one element is a 0-d view too (before, a copy: the change never reached y)
    "fill_ of an element": lambda lib, y, v: y[1, 2].fill_(v[0]),
    "mul_ of an element of a row": lambda lib, y, v: y[0][3].mul_(v[2]),
    "copy_ into an element": lambda lib, y, v: y[2, -1].copy_(v[1] * v[3]),
}


@pytest.mark.parametrize("name", VIEW_CHANGES)
def test_an_in_place_change_of_a_view_of_a_non_leaf(name):
    """Written into the base as torch's CopySlices: the base and its other views see the change in their graph."""
    def changed(lib, x, v):
        y = x.tanh() * 1.5
        rows = y[:2]  # another view, taken before
        VIEW_CHANGES[name](lib, y, v)
        return lib.cat([(y * x).reshape(-1), rows.reshape(-1) ** 2])

    check_against_torch(changed, np.random.default_rng(27).standard_normal((3, 4)),
                        np.random.default_rng(28).standard_normal(4))


def test_the_changed_view_and_its_base_share_the_new_graph():
    x = tr.tensor(np.ones((2, 3)), dtype="float64", requires_grad=True)
    y = x * 2
    row = y[0]
    array = y.array
    returned = row.mul_(x[1] + 1)
    assert returned is row and row.grad_fn.op == "getitem" and y.grad_fn.op == "indexput"
    assert y.array is array and y.numpy().tolist() == [[4.0] * 3, [2.0] * 3]


def test_a_saved_view_changed_afterwards_is_refused_as_in_torch():
    """h[t] * w keeps h[t]: changing it, or another slice of h (the version counter is h's, as torch's), refuses."""
    for change in (lambda h, w: h[0].add_(1), lambda h, w: h.__setitem__(1, w * 3)):
        for lib in (tr, torch):
            w = lib.tensor(np.ones(3), dtype=F64[lib], requires_grad=True)
            h = lib.zeros((4, 3), dtype=F64[lib])
            h[0] = w * 1
            product = h[0] * w
            change(h, w)
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                product.sum().backward()


def test_a_view_of_a_leaf_that_requires_grad_is_refused():
    for lib in (tr, torch):
        x = lib.tensor(np.ones((2, 3)), dtype=F64[lib], requires_grad=True)
        with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is being used in an "
                                               "in-place operation"):
            x[0].mul_(2)


def test_a_view_made_under_no_grad_is_refused_after_a_recorded_change_as_in_torch():
    for lib in (tr, torch):
        x = lib.tensor(np.ones(3), dtype=F64[lib], requires_grad=True)
        h = lib.zeros((2, 3), dtype=F64[lib])
        with lib.no_grad():
            row = h[0]
        with pytest.raises(RuntimeError, match="created in no_grad mode"):
            row.mul_(x)
        h[1] = x * 2
        with pytest.raises(RuntimeError, match="created in no_grad mode"):
            row.grad_fn if lib is torch else row * x


def test_a_view_among_several_outputs_that_is_stale_is_refused():
    """(no op of several outputs gives a view today; should one, its graph cannot be made again)"""
    from tinygrad_rnn.tensor import regenerate_view
    y = tr.tensor(np.ones(3), dtype="float64", requires_grad=True) * 1
    with pytest.raises(RuntimeError, match="among several outputs"):
        regenerate_view(y, (_TwoViews, (y,), None, y, 0, 1))


class _TwoViews:
    multiple_outputs = True
    __name__ = "twoviews"


def test_a_detached_copy_shares_the_change_as_in_torch():
    for lib in (tr, torch):
        x = lib.tensor(np.ones(3), dtype=F64[lib], requires_grad=True)
        y = x * 2
        seen = y.detach()
        y.mul_(x)
        assert numpy_of(seen).tolist() == [2.0, 2.0, 2.0]
        y.sum().backward()
        assert numpy_of(x.grad).tolist() == [4.0, 4.0, 4.0]


def test_retain_grad_follows_the_tensor_through_an_in_place_change_as_in_torch():
    """x.retain_grad() then x.mul_(3): .grad is the gradient of x's new value, as torch moves the retains_grad
    hook onto the new grad_fn (before, .grad stayed None after backward)."""
    kept = {}
    for lib in (tr, torch):
        (a,) = leaves(lib, [np.array([1.0, 2.0, 3.0])])
        x = a * 2
        x.retain_grad()
        x.mul_(3)
        (x * lib.tensor([1.0, 2.0, 3.0], dtype=F64[lib])).sum().backward()
        assert x.retains_grad
        kept[lib] = (numpy_of(x.grad), numpy_of(a.grad))
    for ours, theirs in zip(kept[tr], kept[torch]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- no_grad, as before


def test_under_no_grad_nothing_is_recorded():
    x = tr.tensor(np.ones(3), dtype="float64", requires_grad=True)
    y = x * 2
    node, array, version = y.grad_fn, y.array, y._version
    with tr.no_grad():
        y.mul_(3)
        y[0] = 1.0
        y += 1
        x.add_(1)  # a leaf, as an optimizer changes it
    assert y.grad_fn is node and y.array is array and y._version == version + 3
    assert y.numpy().tolist() == [2.0, 7.0, 7.0] and x.numpy().tolist() == [2.0, 2.0, 2.0] and x.is_leaf


def test_views_under_no_grad_change_on_their_arrays():
    x = tr.tensor(np.ones((2, 3)), dtype="float64", requires_grad=True)
    y = x * 2
    node, array = y.grad_fn, y.array
    with tr.no_grad():
        row = y[0]
        row.mul_(3)
        y[:, 1] += 1
        y.T[2] = 0.5
    assert y.grad_fn is node and y.array is array and row.grad_fn is None
    assert y.numpy().tolist() == [[6.0, 7.0, 0.5], [2.0, 3.0, 0.5]] and row.numpy().tolist() == [6.0, 7.0, 0.5]


def test_tensors_that_no_gradient_reaches_change_on_their_arrays():
    y = tr.zeros(2, 3)
    array = y.array
    y[0] = tr.ones(3)
    y += 1
    assert y.array is array and y.grad_fn is None and not y.requires_grad
    assert y.numpy().tolist() == [[2.0] * 3, [1.0] * 3]


def test_an_element_changed_in_place_changes_its_tensor_as_in_torch():
    """x[i].zero_(), x[i, j].fill_(v), x[i][j].add_(v): an element is a view of its tensor, with or without
    gradients (before, an element was a copy and the change was lost, silently)."""
    for lib in (tr, torch):
        x = lib.tensor(np.arange(6.0).reshape(2, 3), dtype=F64[lib])
        x[0, 0].zero_()
        x[1][2].add_(10.0)
        x[0, 1].fill_(-1.0)
        x[1, 0].mul_(x[1, 1])
        assert numpy_of(x).tolist() == [[0.0, -1.0, 2.0], [12.0, 4.0, 15.0]], lib


# ----------------------------------------------------------------------------- transforms


def _scatter_rows(lib, x):
    out = lib.zeros((3, 2), dtype=x.dtype)
    out[0] = x[:2] * x[2]
    out[2] = x[1:].tanh()
    out[1, 1] = x[0] ** 2
    return out


def test_func_transforms_through_setitem():
    x_np = np.array([0.3, -1.2, 0.7])
    ours, theirs = tr.tensor(x_np, dtype="float64"), torch.tensor(x_np, dtype=torch.float64)
    tangent = np.array([1.0, 0.5, -2.0])
    pairs = [
        (tr.func.jacrev(_scatter_rows_tr)(ours), torch.func.jacrev(_scatter_rows_torch)(theirs)),
        (tr.func.jacfwd(_scatter_rows_tr)(ours), torch.func.jacfwd(_scatter_rows_torch)(theirs)),
        (tr.func.grad(lambda x: _scatter_rows_tr(x).sum())(ours),
         torch.func.grad(lambda x: _scatter_rows_torch(x).sum())(theirs)),
        (tr.func.jvp(_scatter_rows_tr, (ours,), (tr.tensor(tangent, dtype="float64"),))[1],
         torch.func.jvp(_scatter_rows_torch, (theirs,), (torch.tensor(tangent, dtype=torch.float64),))[1]),
        (tr.func.hessian(lambda x: (_scatter_rows_tr(x) ** 2).sum())(ours),
         torch.func.hessian(lambda x: (_scatter_rows_torch(x) ** 2).sum())(theirs)),
    ]
    value, pullback = tr.func.vjp(_scatter_rows_tr, ours)
    value_t, pullback_t = torch.func.vjp(_scatter_rows_torch, theirs)
    cotangent = np.arange(6.).reshape(3, 2)
    pairs += [(value, value_t), (pullback(tr.tensor(cotangent, dtype="float64"))[0],
                                 pullback_t(torch.tensor(cotangent, dtype=torch.float64))[0])]
    for a, b in pairs:
        np.testing.assert_allclose(numpy_of(a), numpy_of(b), rtol=1e-12, atol=1e-12)


def _scatter_rows_tr(x):
    return _scatter_rows(tr, x)


def _scatter_rows_torch(x):
    return _scatter_rows(torch, x)


@pytest.mark.parametrize("name", VIEW_CHANGES)
def test_forward_mode_through_an_in_place_change_of_a_view(name):
    x, v = np.random.default_rng(29).standard_normal((3, 4)), np.random.default_rng(30).standard_normal(4)
    tangents = np.random.default_rng(31).standard_normal((3, 4)), np.random.default_rng(32).standard_normal(4)
    found = []
    for lib in (tr, torch):
        def changed(a, b, lib=lib):
            y = a.tanh() * 1.5
            rows = y[:2]
            VIEW_CHANGES[name](lib, y, b)
            return lib.cat([(y * a).reshape(-1), rows.reshape(-1) ** 2])

        def as_tensor(a, lib=lib):
            return lib.tensor(a, dtype=F64[lib])
        value, tangent = lib.func.jvp(changed, (as_tensor(x), as_tensor(v)), tuple(map(as_tensor, tangents)))
        found.append([numpy_of(value), numpy_of(tangent)])
    for ours, theirs in zip(*found):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
