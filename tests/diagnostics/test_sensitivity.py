import numpy as np
import pytest

from tinygrad_rnn import diagnostics as D
from tinygrad_rnn.tensor import forward_mode_active

from . import reference
from .elman import Elman


def test_jacobian_norms_equal_finite_differences(rng):
    model = Elman(3, 4, rng)
    x = rng.standard_normal((6, 2, 3))
    expected = reference.jacobian_norms(model, x)
    for method in ("batched", "loop"):
        for mode in ("forward", "reverse"):
            np.testing.assert_allclose(D.jacobian_norms(model, x, method=method, mode=mode), expected,
                                       rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(D.sensitivity(model, x, source=2, method=method, mode=mode), expected[:, 2],
                                       rtol=1e-6, atol=1e-9)
    assert np.all(np.triu(expected, 1) == 0) and np.all(np.diag(expected) > 0)  # causal


def test_batched_passes_of_any_size_agree(rng):
    model = Elman(2, 3, rng)
    x = rng.standard_normal((5, 2, 2))
    whole = D.jacobian_norms(model, x)
    np.testing.assert_allclose(D.jacobian_norms(model, x, max_copies=1), whole, rtol=1e-12)
    np.testing.assert_allclose(D.jacobian_norms(model, x, targets=[4, 1]), whole[[4, 1]], rtol=1e-12)
    np.testing.assert_allclose(D.sensitivity(model, x, source=1, targets=[-1]), whole[4:, 1], rtol=1e-12)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_loop_method_needs_no_independent_batch_rows(rng, mode):
    model = Elman(2, 3, rng, mix_batch=True)
    x = rng.standard_normal((4, 2, 2))
    np.testing.assert_allclose(D.jacobian_norms(model, x, method="loop", mode=mode),
                               reference.jacobian_norms(model, x), rtol=1e-6, atol=1e-9)


def test_the_sensitivity_curve_is_one_forward_pass(rng):
    model = Elman(3, 4, rng)
    calls = []

    def counted(x):
        calls.append((forward_mode_active(), x.shape))
        return model(x)
    x = rng.standard_normal((30, 2, 3))
    curve = D.sensitivity(counted, x)
    # one call to read the output's shape, then one forward-mode pass with a copy per input feature
    assert calls == [(False, (30, 2, 3)), (True, (30, 6, 3))]
    np.testing.assert_allclose(curve, D.sensitivity(model, x, mode="reverse"), rtol=1e-12)


def test_batched_forward_passes_of_any_size_agree(rng):
    model = Elman(2, 3, rng)
    x = rng.standard_normal((5, 2, 2))
    whole = D.jacobian_norms(model, x, mode="forward")
    np.testing.assert_allclose(D.jacobian_norms(model, x, mode="forward", max_copies=3), whole, rtol=1e-12)
    np.testing.assert_allclose(D.jacobian_norms(model, x, mode="reverse"), whole, rtol=1e-12)


def test_diagnostics_leave_parameter_grads_alone(rng):
    model = Elman(2, 3, rng)
    model.weight_hh_l0.grad = np.ones((3, 3))
    D.sensitivity(model, rng.standard_normal((4, 1, 2)))
    D.sensitivity(model, rng.standard_normal((4, 1, 2)), method="loop")
    np.testing.assert_array_equal(model.weight_hh_l0.grad, np.ones((3, 3)))
    assert model.weight_ih_l0.grad is None and all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_tanh_rnn_sensitivity_decays_at_the_spectral_radius(rng, rho):
    # near h = 0 the step Jacobian is W_hh itself, so d h(t) / d x(0) ~ W_hh^t W_ih shrinks like rho^t
    model = Elman(3, 8, rng)
    w = rng.standard_normal((8, 8))
    model.weight_hh_l0.array = rho / D.spectral_radius(w) * w
    model.bias_l0.array[:] = 0
    s = D.sensitivity(model, 1e-3 * rng.standard_normal((40, 2, 3)))
    assert D.spectral_radius(model.weight_hh_l0) == pytest.approx(rho)
    assert D.decay_rate(s, start=10) == pytest.approx(rho, rel=0.02)
    assert s[39] / s[0] < 2 * rho ** 30


def test_decay_rate_of_a_geometric_sequence():
    assert D.decay_rate(3 * 0.7 ** np.arange(20)) == pytest.approx(0.7)
    assert D.decay_rate([0.0, 2.0, 4.0, np.nan, 16.0]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="two positive"):
        D.decay_rate([0.0, 1.0])


def test_bad_inputs_are_named(rng):
    model = Elman(2, 3, rng)
    with pytest.raises(TypeError, match="floating point.*int64"):
        D.sensitivity(model, np.zeros((3, 1, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"3 dims.*\(3, 2\)"):
        D.sensitivity(model, np.zeros((3, 2)))
    with pytest.raises(IndexError, match="step 5 is out of range for a sequence of 3 steps"):
        D.sensitivity(model, np.zeros((3, 1, 2)), source=5)
    with pytest.raises(ValueError, match="method"):
        D.jacobian_norms(model, np.zeros((3, 1, 2)), method="forward")
    with pytest.raises(ValueError, match="mode must be one of"):
        D.sensitivity(model, np.zeros((3, 1, 2)), mode="sideways")
