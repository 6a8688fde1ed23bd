"""torch.autograd.Function (ctx-style custom ops), torch.autograd.functional and anomaly mode, each run the
same way with torch and with tinygrad_rnn in float64: gradients, gradients of gradients, torch's errors."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.nn.parity import assert_close


def define(lib):
    """The same custom Functions, written once against either library."""
    class Cube(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return 3 * x * x * g

    class ScaledPair(lib.autograd.Function):
        """Two inputs and a number in, two outputs out; saves an output and an attribute."""

        @staticmethod
        def forward(ctx, a, scale, b):
            ctx.scale = scale
            product = a * b
            ctx.save_for_backward(a, b, product)
            return product * scale, (a - b).tanh()

        @staticmethod
        def backward(ctx, g_product, g_tanh):
            a, b, _product = ctx.saved_tensors
            d_tanh = g_tanh * (1 - (a - b).tanh() ** 2)
            return g_product * b * ctx.scale + d_tanh, None, g_product * a * ctx.scale - d_tanh

    class StraightThroughSign(lib.autograd.Function):
        """torch 2's form: forward without ctx, setup_context after."""

        @staticmethod
        def forward(x, limit):
            return x.sign() * limit

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, limit = inputs
            ctx.save_for_backward(x)
            ctx.limit = limit

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return g * (x.abs() <= ctx.limit).to(g.dtype), None

    return Cube, ScaledPair, StraightThroughSign


def both(torch, rng, shape=(4,)):
    values = rng.standard_normal(shape)
    return tr.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)


def test_a_custom_function_gives_torchs_gradients_and_gradients_of_gradients(torch, rng):
    (x, tx), (w, tw) = both(torch, rng), both(torch, rng)
    grads = []
    for lib, a, b in ((tr, x, w), (torch, tx, tw)):
        cube, _, _ = define(lib)
        y = (cube.apply(a) * b).sum()
        ga, = lib.autograd.grad(y, a, create_graph=True)
        (ga * ga).sum().backward()
        grads.append((ga, a.grad, b.grad))
    for mine, theirs, what in zip(grads[0], grads[1], ["first", "second of x", "second of w"]):
        assert_close(mine, theirs, what)


def test_several_inputs_and_outputs_an_unused_output_and_a_number_argument(torch, rng):
    (a, ta), (b, tb) = both(torch, rng, (3, 2)), both(torch, rng, (3, 2))
    for lib, x, y in ((tr, a, b), (torch, ta, tb)):
        _, pair, _ = define(lib)
        product, squashed = pair.apply(x, 0.5, y)
        (product * 2).sum().backward()          # the second output gets no gradient: zeros arrive for it
        assert squashed.requires_grad and product.grad_fn is not None
    assert_close(a.grad, ta.grad, "a")
    assert_close(b.grad, tb.grad, "b")
    for lib, x, y in ((tr, a, b), (torch, ta, tb)):
        _, pair, _ = define(lib)
        product, squashed = pair.apply(x, 0.5, y)
        (product.sum() + (squashed ** 2).sum()).backward()
    assert_close(a.grad, ta.grad, "a after both outputs")
    assert_close(b.grad, tb.grad, "b after both outputs")


def test_setup_context_form_through_an_unrolled_recurrence(torch, rng):
    """A custom op inside a loop over time steps (BPTT through it), as a straight-through estimator is used."""
    values, weights = rng.standard_normal((5, 3)), rng.standard_normal((3, 3)) * 0.5
    results = []
    for lib in (tr, torch):
        _, _, sign = define(lib)
        xs, w = lib.tensor(values, requires_grad=True), lib.tensor(weights, requires_grad=True)
        h = lib.zeros(3, dtype=lib.float64)
        loss = 0
        for t in range(5):
            h = sign.apply(xs[t] + h @ w, 1.5) * 0.5 + h.tanh() * 0.5
            loss = loss + (h * h).sum()
        loss.backward()
        results.append((loss, xs.grad, w.grad))
    for mine, theirs, what in zip(results[0], results[1], ["loss", "x", "w"]):
        assert_close(mine, theirs, what)


def test_context_flags_as_torchs(torch):
    seen = {}

    class Probe(tr.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, n):
            seen["needs"] = ctx.needs_input_grad
            ctx.set_materialize_grads(False)
            indices = a.argmax()
            ctx.mark_non_differentiable(indices)
            return a * 2, indices

        @staticmethod
        def backward(ctx, g, g_indices):
            seen["g_indices"] = g_indices
            return g * 2, None, None

    a = tr.ones(3, requires_grad=True)
    doubled, indices = Probe.apply(a, tr.ones(3), 7)
    assert seen["needs"] == (True, False, False)
    assert not indices.requires_grad and doubled.requires_grad
    doubled.sum().backward()
    assert seen["g_indices"] is None and a.grad.tolist() == [2.0, 2.0, 2.0]
    with tr.no_grad():
        assert not Probe.apply(a, a, 1)[0].requires_grad


def test_bad_backward_results_and_changed_saved_tensors_raise_as_torch():
    class TooFew(tr.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g

    class WrongShape(tr.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return tr.ones(5)

    a = tr.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"incorrect number of gradients \(expected 2, got 1\)"):
        TooFew.apply(a, a).sum().backward()
    with pytest.raises(RuntimeError, match=r"invalid gradient at index 0 - got \[5\] but expected shape compatible "
                                           r"with \[3\]"):
        WrongShape.apply(a).sum().backward()
    x = tr.ones(3, requires_grad=True)
    y = x * 1
    cube, _, _ = define(tr)
    out = cube.apply(y)
    with tr.no_grad():
        y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_once_differentiable_gives_no_graph_under_create_graph():
    class Square(tr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @tr.autograd.once_differentiable
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return 2 * x * g

    x = tr.tensor([1.0, 2.0], requires_grad=True)
    g, = tr.autograd.grad(Square.apply(x).sum(), x, create_graph=True)
    assert g.tolist() == [2.0, 4.0] and not g.requires_grad


# ----------------------------------------------------------------------------- autograd.functional

def leaves(tree):
    """The tensors of a result nested in tuples, in order."""
    return [tree] if hasattr(tree, "shape") else [leaf for t in tree for leaf in leaves(t)]


def f_single(lib):
    return lambda x: (x.tanh() * x.sum()).exp()


def f_pair(lib):
    return lambda x, y: (x * y.sum() + y[:2] ** 2, (x * x).sum() * y)


def f_scalar(lib):
    return lambda x, y: (x.sin() * y[:2]).sum() * (x ** 2).sum() + (y ** 3).sum()


@pytest.mark.parametrize("what", ["jacobian", "jacobian forward", "jacobian pair", "hessian", "hessian pair"])
def test_jacobian_and_hessian_match_torch(torch, rng, what):
    x, y = rng.standard_normal(2), rng.standard_normal(3)

    def run(lib):
        F = lib.autograd.functional
        tx, ty = lib.tensor(x), lib.tensor(y)
        if what == "jacobian":
            return F.jacobian(f_single(lib), tx)
        if what == "jacobian forward":
            return F.jacobian(f_single(lib), tx, strategy="forward-mode", vectorize=True)
        if what == "jacobian pair":
            return F.jacobian(f_pair(lib), (tx, ty))
        if what == "hessian":
            return F.hessian(lambda v: f_scalar(lib)(v, ty), tx)
        return F.hessian(f_scalar(lib), (tx, ty))

    mine, theirs = leaves(run(tr)), leaves(run(torch))
    assert len(mine) == len(theirs)
    for k, (m, t) in enumerate(zip(mine, theirs)):
        assert_close(m, t, f"{what} block {k}")
        assert not m.requires_grad


@pytest.mark.parametrize("what", ["vjp", "vjp no v", "jvp", "jvp no v", "hvp", "vhp"])
def test_vector_products_match_torch(torch, rng, what):
    x, y, v2, v3 = (rng.standard_normal(n) for n in (2, 3, 2, 3))

    def run(lib):
        F = lib.autograd.functional
        tx, ty = lib.tensor(x), lib.tensor(y)
        if what == "vjp":
            return F.vjp(f_pair(lib), (tx, ty), (lib.tensor(v2), lib.tensor(v3)))
        if what == "vjp no v":
            return F.vjp(f_scalar(lib), (tx, ty))
        if what == "jvp":
            return F.jvp(f_pair(lib), (tx, ty), (lib.tensor(v2), lib.tensor(v3)))
        if what == "jvp no v":
            return F.jvp(lambda s: s * lib.tensor(y), lib.tensor([0.7], dtype=lib.float64))
        return getattr(F, what)(f_scalar(lib), (tx, ty), (lib.tensor(v2), lib.tensor(v3)))

    mine, theirs = leaves(run(tr)), leaves(run(torch))
    assert len(mine) == len(theirs)
    for k, (m, t) in enumerate(zip(mine, theirs)):
        assert_close(m, t, f"{what} result {k}")
    with pytest.raises(RuntimeError, match="v must be given"):
        tr.autograd.functional.vjp(f_single(tr), tr.tensor(x))


# ----------------------------------------------------------------------------- anomaly mode

def test_anomaly_mode_names_the_op_whose_backward_gave_nan():
    x = tr.tensor([0.0, 1.0], requires_grad=True)
    with tr.autograd.detect_anomaly():
        y = (x.sqrt() * 0).sum()   # sqrt's gradient at 0 is inf, and inf * 0 is NaN
        with pytest.raises(RuntimeError, match=r"returned nan values in its 0th output"):
            y.backward()
    assert not tr.autograd.is_anomaly_enabled()
    (x.sqrt() * 0).sum().backward()             # off: the NaN goes through, as torch
    assert np.isnan(x.grad.numpy()[0])
    with tr.autograd.set_detect_anomaly(True):
        assert tr.autograd.is_anomaly_enabled()
    assert not tr.autograd.is_anomaly_enabled()
