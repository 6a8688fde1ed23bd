import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import diagnostics as D
from tinygrad_rnn.optim import SGD


@pytest.fixture
def quadratic(rng):
    """Parameters p and a loss ||p - c||^2 whose slices are known in closed form."""
    params = [tr.Tensor(rng.standard_normal(s), requires_grad=True, dtype="float64") for s in [(2, 3), (4,)]]
    centre = [rng.standard_normal(p.shape) for p in params]

    def loss_fn():
        return sum(((p - c) ** 2).sum() for p, c in zip(params, centre))
    offset = D.landscape.flatten([p.numpy() - c for p, c in zip(params, centre)])
    return params, loss_fn, offset


def test_loss_along_line_and_on_plane_match_the_closed_form(quadratic, rng):
    params, loss_fn, offset = quadratic
    before = [p.numpy() for p in params]
    d1 = D.random_direction(params, rng, scale="unit")
    d2 = D.random_direction(params, rng)
    v1, v2 = D.landscape.flatten(d1), D.landscape.flatten(d2)
    alphas, betas = np.linspace(-2, 2, 5), np.linspace(-1, 1, 3)
    line = D.loss_along_line(loss_fn, params, d1, alphas)
    np.testing.assert_allclose(line, [np.sum((offset + a * v1) ** 2) for a in alphas], rtol=1e-12)
    plane = D.loss_on_plane(loss_fn, params, (d1, d2), alphas, betas)
    assert plane.shape == (3, 5)
    np.testing.assert_allclose(plane, [[np.sum((offset + a * v1 + b * v2) ** 2) for a in alphas]
                                       for b in betas], rtol=1e-12)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.numpy(), b)  # the weights are back where they were


def test_random_direction_scales(quadratic, rng):
    params, _, _ = quadratic
    per_parameter = D.random_direction(params, rng)
    for d, p in zip(per_parameter, params):
        assert np.linalg.norm(d) == pytest.approx(np.linalg.norm(p.numpy()))
    assert np.linalg.norm(D.landscape.flatten(D.random_direction(params, rng, scale="unit"))) == pytest.approx(1)
    with pytest.raises(ValueError, match="scale"):
        D.random_direction(params, rng, scale="filter")


def test_gradient_direction_is_the_unit_descent_direction_and_keeps_grads(quadratic):
    params, loss_fn, offset = quadratic
    params[0].grad = np.ones((2, 3))
    direction = D.landscape.flatten(D.gradient_direction(loss_fn, params))
    np.testing.assert_allclose(direction, -offset / np.linalg.norm(offset), rtol=1e-12)
    np.testing.assert_array_equal(params[0].grad, np.ones((2, 3)))
    assert params[1].grad is None


def test_plane_coordinates_recover_the_offsets(quadratic, rng):
    params, _, _ = quadratic
    origin = D.landscape.weights_of(params)
    d1, d2 = D.random_direction(params, rng), D.random_direction(params, rng)
    points = [[w + a * x + b * y for w, x, y in zip(origin, d1, d2)] for a, b in [(0.5, -1), (2, 3)]]
    np.testing.assert_allclose(D.plane_coordinates(points, origin, (d1, d2)), [[0.5, -1], [2, 3]], atol=1e-10)
    np.testing.assert_allclose(D.plane_coordinates(points[1], origin, (d1, d2)), [[2, 3]], atol=1e-10)


def test_train_records_what_the_optimizer_did(quadratic):
    params, loss_fn, offset = quadratic
    run = D.train(loss_fn, params, SGD(params, lr=0.1), steps=3)
    # gradient 2 (p - c): each SGD step multiplies the offset by 0.8
    np.testing.assert_allclose(run["loss"], np.sum(offset ** 2) * 0.64 ** np.arange(3), rtol=1e-10)
    np.testing.assert_allclose(run["update_norm"], 0.2 * np.linalg.norm(offset) * 0.8 ** np.arange(3), rtol=1e-10)
    np.testing.assert_allclose(run["grad_norm"], run["clipped_norm"])
    assert len(run["weights"]) == 4


def cliff(steps=10, w=2.5, b=0.0):
    """A one-unit tanh RNN whose loss (h(T) - 0.7)^2 has a cliff across (weight_hh, bias_hh)."""
    rnn = tr.nn.RNN(1, 1, dtype="float64")
    with tr.no_grad():
        for name, value in (("weight_ih_l0", 0.5), ("bias_ih_l0", 0.0), ("weight_hh_l0", w), ("bias_hh_l0", b)):
            getattr(rnn, name).array[...] = value
    x = np.zeros((steps, 1, 1))
    x[0] = 1.0
    x = tr.Tensor(x, dtype="float64")

    def loss_fn():
        return ((rnn(x)[1] - 0.7) ** 2).sum()
    return [rnn.weight_hh_l0, rnn.bias_hh_l0], loss_fn


def test_the_cliff_is_a_jump_along_the_bias():
    params, loss_fn = cliff()
    line = D.loss_along_line(loss_fn, params, D.axis_direction(params, 1), np.linspace(-0.6, 0.2, 81))
    assert line[0] > 2.5 and line[-1] < 0.1  # the far attractor, then the near one
    assert np.abs(np.diff(line)).max() > 0.9 * (line.max() - line[-1])  # in a single grid step of 0.01


def test_clipping_keeps_every_update_at_or_below_max_norm():
    params, loss_fn = cliff()
    start = [p.numpy() for p in params]
    # SGD with lr = 1: an update is exactly the (clipped) gradient
    runs = D.clipping_runs(loss_fn, params, lambda p: SGD(p, lr=1.0), steps=60, max_norm=0.5)
    clipped, unclipped = runs["clipped"], runs["unclipped"]
    assert np.all(clipped["update_norm"] <= 0.5 * (1 + 1e-9))
    assert np.all(clipped["clipped_norm"] <= 0.5 * (1 + 1e-9))
    np.testing.assert_allclose(clipped["update_norm"], clipped["clipped_norm"], rtol=1e-9)
    assert clipped["grad_norm"].max() > 0.5  # clipping had work to do
    assert unclipped["update_norm"].max() > 5  # without it the cliff throws the weights far away
    for run in runs.values():
        np.testing.assert_array_equal(D.landscape.flatten(run["weights"][0]), D.landscape.flatten(start))
    for p, s in zip(params, start):
        np.testing.assert_array_equal(p.numpy(), s)
        assert p.grad is None
