"""Hessian-vector products and the Hessian's dominant eigenvalue: against PyTorch, against the full
Hessian, and on the cliff, where the curvature explodes."""
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import diagnostics as D
from tinygrad_rnn.diagnostics import curvature

METHODS = curvature.METHODS


def small_rnn(rng, fused=None):
    tr.manual_seed(0)
    rnn = tr.nn.RNN(2, 3, dtype="float64", fused=fused)
    x = rng.standard_normal((5, 2, 2))
    target = rng.standard_normal((5, 2, 3))

    def loss_fn():
        output, _ = rnn(tr.Tensor(x, dtype="float64"))
        return ((output - tr.Tensor(target, dtype="float64")) ** 2).mean()
    return rnn, x, target, loss_fn


def detached(module):
    return [p.detach() for p in module.parameters()]


def full_hessian(f, inputs):
    """The Hessian over all inputs as one (n, n) matrix, from tr.func.hessian's blocks."""
    count = len(inputs)
    blocks = tr.func.hessian(f, argnums=tuple(range(count)))(*inputs)
    sizes = [p.numel() for p in inputs]
    return np.block([[blocks[i][j].numpy().reshape(sizes[i], sizes[j]) for j in range(count)] for i in range(count)])


@pytest.mark.parametrize("method", METHODS)
def test_hvp_equals_torch_in_float64(rng, method):
    torch = pytest.importorskip("torch")
    rnn, x, target, loss_fn = small_rnn(rng)
    f = D.parameter_function(rnn, loss_fn)
    v = [rng.standard_normal(p.shape) for p in rnn.parameters()]
    value, product = D.hvp(f, tuple(detached(rnn)), tuple(tr.Tensor(a, dtype="float64") for a in v), method=method)

    reference = torch.nn.RNN(2, 3, dtype=torch.float64)
    names = [name for name, _ in reference.named_parameters()]

    def torch_loss(*params):
        output, _ = torch.func.functional_call(reference, dict(zip(names, params)), (torch.from_numpy(x),))
        return ((output - torch.from_numpy(target)) ** 2).mean()
    params = tuple(torch.tensor(rnn.state_dict()[name]) for name in names)
    expected_value, expected = torch.autograd.functional.hvp(torch_loss, params, tuple(map(torch.from_numpy, v)))
    assert value.item() == pytest.approx(expected_value.item(), rel=1e-12)
    for mine, theirs in zip(product, expected):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-8, atol=1e-12)


def test_both_methods_agree_and_take_single_tensors(rng):
    rnn, _, _, loss_fn = small_rnn(rng)
    f = D.parameter_function(rnn, loss_fn, params=[rnn.weight_hh_l0])
    w = rnn.weight_hh_l0.detach()
    v = tr.Tensor(rng.standard_normal(w.shape), dtype="float64")
    products = [D.hvp(f, w, v, method=method)[1] for method in METHODS]
    assert all(isinstance(p, tr.Tensor) and p.shape == w.shape for p in products)
    np.testing.assert_allclose(products[0].numpy(), products[1].numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(products[0].numpy(), (full_hessian(f, [w]) @ v.numpy().ravel()).reshape(3, 3),
                               rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("layer", [tr.nn.LSTM, tr.nn.GRU])
def test_both_methods_agree_on_gated_layers(rng, layer):
    tr.manual_seed(0)
    model = layer(2, 2, dtype="float64")
    x = tr.Tensor(rng.standard_normal((3, 1, 2)), dtype="float64")
    f = D.parameter_function(model, lambda: (model(x)[0] ** 2).sum())
    params = tuple(detached(model))
    v = tuple(tr.Tensor(rng.standard_normal(p.shape), dtype="float64") for p in params)
    forward, reverse = (D.hvp(f, params, v, method=method)[1] for method in METHODS)
    for a, b in zip(forward, reverse):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("method", METHODS)
def test_power_iteration_finds_the_dominant_eigenvalue_of_the_full_hessian(rng, method):
    rnn, _, _, loss_fn = small_rnn(rng)
    f = D.parameter_function(rnn, loss_fn)
    params = detached(rnn)
    eigenvalues = np.linalg.eigvalsh(full_hessian(f, params))
    dominant = eigenvalues[np.argmax(np.abs(eigenvalues))]
    value, vector = D.top_eigenvalue(f, params, method=method)
    assert value == pytest.approx(dominant, rel=1e-6)
    assert [v.shape for v in vector] == [p.shape for p in params]
    flat = np.concatenate([v.ravel() for v in vector])
    assert np.linalg.norm(flat) == pytest.approx(1.0)


def test_tied_weights_are_swapped_under_every_name(rng):
    first, second = tr.nn.Linear(2, 2, dtype="float64"), tr.nn.Linear(2, 2, dtype="float64")
    second.weight = first.weight
    model = tr.nn.Sequential(first, second)
    x = tr.Tensor(rng.standard_normal((3, 2)), dtype="float64")
    f = D.parameter_function(model, lambda: (model(x) ** 2).sum(), params=[first.weight])
    w = tr.Tensor(rng.standard_normal((2, 2)), dtype="float64")
    expected = ((x.numpy() @ w.numpy().T + first.bias.numpy()) @ w.numpy().T + second.bias.numpy()) ** 2
    assert f(w).item() == pytest.approx(expected.sum(), rel=1e-12)


def test_the_model_keeps_its_weights_and_gradients(rng):
    rnn, _, _, loss_fn = small_rnn(rng, fused=True)
    before = {name: p.numpy().copy() for name, p in rnn.named_parameters()}
    f = D.parameter_function(rnn, loss_fn)
    params = detached(rnn)
    assert f(*params).item() == pytest.approx(loss_fn().item(), rel=1e-14)
    moved = [p * 0 for p in params]  # every weight zero: the output is 0, the loss the target's mean square
    assert f(*moved).item() != pytest.approx(loss_fn().item())
    D.top_eigenvalue(f, params)
    assert rnn.fused is True and all(p.grad is None for p in rnn.parameters())
    for name, p in rnn.named_parameters():
        np.testing.assert_array_equal(p.numpy(), before[name])


def cliff(w=2.5, b=0.0, steps=10):
    """The one-unit tanh RNN of examples/vanishing_gradients.py: loss (h(T) - 0.7)^2 over (w, b)."""
    rnn = tr.nn.RNN(1, 1, dtype="float64")
    with tr.no_grad():
        for name, value in (("weight_ih_l0", 0.5), ("bias_ih_l0", 0.0), ("weight_hh_l0", w), ("bias_hh_l0", b)):
            getattr(rnn, name).array[...] = value
    x = np.zeros((steps, 1, 1))
    x[0] = 1.0

    def loss_fn():
        _, h_n = rnn(tr.Tensor(x, dtype="float64"))
        return ((h_n - 0.7) ** 2).sum()
    return D.parameter_function(rnn, loss_fn, params=[rnn.weight_hh_l0, rnn.bias_hh_l0])


def test_the_curvature_explodes_on_the_cliff():
    f = cliff()
    biases = np.linspace(-0.6, 0.2, 41)
    points = [[np.array([[2.5]]), np.array([b])] for b in biases]
    curvatures = np.abs(D.curvature_along(f, points))
    gradients = [np.linalg.norm(np.concatenate([g.numpy().ravel() for g in tr.func.grad(f, argnums=(0, 1))(
        *[tr.Tensor(a, dtype="float64") for a in point])])) for point in points]
    wall = int(np.argmax(gradients))
    assert abs(int(np.argmax(curvatures)) - wall) <= 1  # the sharpest bend is where the gradient jumps
    assert curvatures.max() > 1e3 * min(curvatures[0], curvatures[-1])  # and it dwarfs either side's


def test_curvature_along_starts_each_point_from_the_last_vector():
    f = cliff()
    point = [np.array([[2.5]]), np.array([0.0])]
    value, vector = D.top_eigenvalue(f, [tr.Tensor(a, dtype="float64") for a in point])
    np.testing.assert_allclose(D.curvature_along(f, [point, point], start=vector), [value, value], rtol=1e-9)


def test_a_saddle_of_equal_magnitudes_warns():
    def saddle(p):
        return (p[0] ** 2 - p[1] ** 2).sum() / 2  # eigenvalues 1 and -1: power iteration cannot choose

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        D.top_eigenvalue(lambda p: saddle(p.reshape(2, 1)), [tr.Tensor([1.0, 2.0], dtype="float64")],
                         max_iter=20, method="reverse-over-reverse")
    assert any("power iteration stopped after 20" in str(w.message) for w in caught)


def test_bad_input_is_named(rng):
    rnn, _, _, loss_fn = small_rnn(rng)
    f = D.parameter_function(rnn, loss_fn)
    params = tuple(detached(rnn))
    with pytest.raises(ValueError, match="method must be one of"):
        D.hvp(f, params, params, method="sideways")
    with pytest.raises(ValueError, match="v must match inputs"):
        D.hvp(f, params, params[:2])
    with pytest.raises(TypeError, match=r"inputs\[0\] must be a Tensor"):
        D.hvp(f, (np.zeros(3),), (np.zeros(3),))
    with pytest.raises(ValueError, match="not held by the Linear"):
        D.parameter_function(tr.nn.Linear(2, 2), loss_fn, params=[rnn.weight_hh_l0])
    with pytest.raises(RuntimeError, match="scalar"):
        D.hvp(lambda p: p * 2, params[0], params[0], method="reverse-over-reverse")
