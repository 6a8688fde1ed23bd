"""tr.func against torch.func in float64: vjp, jvp, grad, jacrev, jacfwd, hessian, functional_call."""
import numpy as np
import pytest

import tinygrad_rnn as tr

RNG = np.random.default_rng(7)
X = RNG.standard_normal((3, 4))
W = RNG.standard_normal((4, 2))


def ours(a, requires_grad=False):
    return tr.Tensor(a, dtype="float64", requires_grad=requires_grad)


def close(a, b, tol=1e-10):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            close(x, y, tol)
        return
    assert a.shape == tuple(b.shape)
    np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=tol, atol=tol)


def scalar(lib):
    return lambda x, w: ((x @ w).tanh() ** 2).sum() + (x * x).sum() * w.sum()


def vector(lib, w):
    return lambda x: ((x @ w).sigmoid() * 3 - x.sum()).exp()


@pytest.fixture
def pair(torch):
    return (ours(X), ours(W)), (torch.tensor(X), torch.tensor(W))


def test_grad_over_argnums(torch, pair):
    (x, w), (xt, wt) = pair
    for argnums in (0, 1, (0, 1)):
        close(tr.func.grad(scalar(tr), argnums=argnums)(x, w), torch.func.grad(scalar(torch), argnums=argnums)(xt, wt))


def test_grad_with_aux_and_grad_and_value(torch, pair):
    (x, w), (xt, wt) = pair
    g, aux = tr.func.grad(lambda x, w: (scalar(tr)(x, w), x.sum()), has_aux=True)(x, w)
    gt, auxt = torch.func.grad(lambda x, w: (scalar(torch)(x, w), x.sum()), has_aux=True)(xt, wt)
    close(g, gt)
    close(aux, auxt)
    g, value = tr.func.grad_and_value(scalar(tr))(x, w)
    close(value, scalar(torch)(xt, wt))


def test_vjp_and_jvp(torch, pair):
    (x, w), (xt, wt) = pair
    u, v = RNG.standard_normal((3, 2)), RNG.standard_normal((3, 4))
    out, vjp_fn = tr.func.vjp(vector(tr, w), x)
    out_t, vjp_t = torch.func.vjp(vector(torch, wt), xt)
    close(out, out_t)
    close(vjp_fn(ours(u)), vjp_t(torch.tensor(u)))
    primal, tangent = tr.func.jvp(vector(tr, w), (x,), (ours(v),))
    primal_t, tangent_t = torch.func.jvp(vector(torch, wt), (xt,), (torch.tensor(v),))
    close(primal, primal_t)
    close(tangent, tangent_t)


def test_jvp_is_one_forward_pass_without_backward(monkeypatch, pair):
    (x, w), _ = pair
    from tinygrad_rnn import autograd
    monkeypatch.setattr(autograd, "_run", lambda *a, **k: pytest.fail("jvp ran a backward pass"))
    tr.func.jvp(vector(tr, w), (x,), (ours(np.ones((3, 4))),))


def test_jacobians_and_hessian(torch, pair):
    (x, w), (xt, wt) = pair
    close(tr.func.jacrev(vector(tr, w))(x), torch.func.jacrev(vector(torch, wt))(xt))
    close(tr.func.jacfwd(vector(tr, w))(x), torch.func.jacfwd(vector(torch, wt))(xt))
    close(tr.func.jacrev(scalar(tr), argnums=(0, 1))(x, w), torch.func.jacrev(scalar(torch), argnums=(0, 1))(xt, wt))
    close(tr.func.hessian(scalar(tr))(x, w), torch.func.hessian(scalar(torch))(xt, wt), 1e-9)
    close(tr.func.hessian(scalar(tr), argnums=1)(x, w), torch.func.hessian(scalar(torch), argnums=1)(xt, wt), 1e-9)


def test_grad_of_grad(torch, pair):
    (x, w), (xt, wt) = pair
    ours_gg = tr.func.grad(lambda x: (tr.func.grad(scalar(tr))(x, w) ** 2).sum())(x)
    theirs_gg = torch.func.grad(lambda x: (torch.func.grad(scalar(torch))(x, wt) ** 2).sum())(xt)
    close(ours_gg, theirs_gg, 1e-9)


def test_nested_forward_mode_is_refused(pair):
    (x, _), _ = pair
    with pytest.raises(NotImplementedError, match="hessian"):
        tr.func.jacfwd(tr.func.jacfwd(lambda x: (x * x).sum()))(x)


def test_bad_arguments_name_them(pair):
    (x, _), _ = pair
    with pytest.raises(ValueError, match=r"tangents\[0\].*\(3, 4\)"):
        tr.func.jvp(lambda x: x, (x,), (ours(np.ones(2)),))
    with pytest.raises(RuntimeError, match="scalar"):
        tr.func.grad(lambda x: x * 2)(x)
    with pytest.raises(TypeError, match=r"primals\[0\]"):
        tr.func.vjp(lambda x: x, np.ones(3))


# --- a layer's forward, on the default (fused) and the op-by-op path

T, B, I, H = 4, 2, 3, 5


def lstm_pair(torch, fused, seed):
    """An LSTM of ours (fused or not) and torch's with the same weights, float64."""
    tr.manual_seed(seed)
    lstm = tr.nn.LSTM(I, H, dtype="float64", fused=fused)
    theirs = torch.nn.LSTM(I, H)
    theirs.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in lstm.state_dict().items()})
    return lstm, theirs


@pytest.mark.parametrize("fused", [None, False], ids=["default", "composed"])
def test_lstm_loss_double_backward_matches_torch(torch, fused):
    lstm, theirs = lstm_pair(torch, fused, seed=3)
    xs = RNG.standard_normal((T, B, I))
    vs = [RNG.standard_normal(p.shape) for p in lstm.parameters()]
    x, xt = ours(xs, True), torch.tensor(xs, requires_grad=True)
    out, (h, c) = lstm(x)
    leaves = [x] + list(lstm.parameters())
    first = tr.autograd.grad((out * out).sum() + (h * c).sum(), leaves, create_graph=True)
    second = tr.autograd.grad(sum((g * ours(v)).sum() for g, v in zip(first[1:], vs)), leaves)
    out_t, (h_t, c_t) = theirs(xt)
    leaves_t = [xt] + list(theirs.parameters())
    first_t = torch.autograd.grad((out_t * out_t).sum() + (h_t * c_t).sum(), leaves_t, create_graph=True)
    second_t = torch.autograd.grad(sum((g * torch.tensor(v)).sum() for g, v in zip(first_t[1:], vs)), leaves_t)
    close(tuple(first), tuple(first_t), 1e-10)
    close(tuple(second), tuple(second_t), 1e-8)


@pytest.mark.parametrize("fused", [None, False], ids=["default", "composed"])
def test_lstm_hessian_vector_product_by_forward_over_reverse_matches_torch(torch, fused):
    lstm, theirs = lstm_pair(torch, fused, seed=4)
    names = [n for n, _ in lstm.named_parameters()]
    vs = {n: RNG.standard_normal(p.shape) for n, p in lstm.named_parameters()}
    xs = RNG.standard_normal((T, B, I))

    def loss(lib, module, x):
        def of(*params):
            out, (h, c) = lib.func.functional_call(module, dict(zip(names, params)), (x,))
            return (out * out).sum() + (h * c).sum()
        return of

    grads = tr.func.grad(loss(tr, lstm, ours(xs)), argnums=tuple(range(len(names))))
    _, hvp = tr.func.jvp(grads, [ours(p.numpy()) for p in lstm.parameters()], [ours(vs[n]) for n in names])
    grads_t = torch.func.grad(loss(torch, theirs, torch.tensor(xs)), argnums=tuple(range(len(names))))
    _, hvp_t = torch.func.jvp(grads_t, tuple(p.detach() for p in theirs.parameters()),
                              tuple(torch.tensor(vs[n]) for n in names))
    close(tuple(hvp), tuple(hvp_t), 1e-8)


# ----------------------------------------------------------------------------- vmap

VMAPS = {
    "rows": (lambda lib: lib.func.vmap(lambda v: (v * v).sum()), [(4, 3)]),
    "in_dims 1, out_dims 1": (lambda lib: lib.func.vmap(lambda v, w: v * w.sum(), in_dims=(1, None), out_dims=1),
                              [(3, 4), (2,)]),
    "per-example gradients": (lambda lib: lib.func.vmap(lib.func.grad(lambda w, x: ((x @ w).tanh() ** 2).sum()),
                                                        in_dims=(None, 0)), [(3, 2), (5, 3)]),
    "tuple output": (lambda lib: lib.func.vmap(lambda v: (v.exp(), v.sum())), [(2, 3)]),
}


@pytest.mark.parametrize("name", list(VMAPS))
def test_vmap_matches_torch_with_gradients(torch, rng, name):
    make, shapes = VMAPS[name]
    values = [rng.standard_normal(s) for s in shapes]
    mine_in = [tr.tensor(v, requires_grad=True) for v in values]
    their_in = [torch.tensor(v, requires_grad=True) for v in values]
    mine, theirs = make(tr)(*mine_in), make(torch)(*their_in)
    mine, theirs = (mine, theirs) if isinstance(theirs, tuple) else ((mine,), (theirs,))
    for m, t in zip(mine, theirs):
        np.testing.assert_allclose(m.detach().numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-14)
    sum(m.sum() for m in mine).backward()
    sum(t.sum() for t in theirs).backward()
    for m, t in zip(mine_in, their_in):
        if t.grad is not None:
            np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_vmap_names_mismatched_batch_sizes():
    with pytest.raises(ValueError, match=r"one batch size; got \[2, 3\]"):
        tr.func.vmap(lambda a, b: a + b)(tr.ones(2), tr.ones(3))
