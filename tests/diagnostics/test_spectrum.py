import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import diagnostics as D
from tinygrad_rnn.diagnostics.spectrum import GATES


def orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def test_eigenvalues_largest_modulus_first_and_spectral_radius(rng):
    w = rng.standard_normal((6, 6))
    values = D.eigenvalues(tr.Tensor(w, dtype="float64"))
    assert np.all(np.diff(np.abs(values)) <= 1e-12)
    np.testing.assert_allclose(np.sort_complex(values), np.sort_complex(np.linalg.eigvals(w)), atol=1e-10)
    assert D.spectral_radius(np.diag([0.5, -2.0, 1.0])) == pytest.approx(2.0)


def test_linear_recurrence_scales_by_the_radius_for_a_scaled_rotation(rng):
    # W = rho * Q with Q orthogonal: every eigenvalue has modulus rho and ||W^t h|| = rho^t ||h||
    rho, h0 = 0.8, rng.standard_normal((3, 5))
    w = rho * orthogonal(rng, 5)
    assert D.spectral_radius(w) == pytest.approx(rho)
    norms = D.linear_recurrence_norms(w, h0, 30)
    np.testing.assert_allclose(norms, rho ** np.arange(31) * np.linalg.norm(h0), rtol=1e-10)


def test_linear_recurrence_follows_the_eigenvalue_above_one(rng):
    w = np.diag([1.5, 0.5])
    norms = D.linear_recurrence_norms(w, np.array([1e-3, 1.0]), 40)
    assert D.decay_rate(norms, 30) == pytest.approx(1.5, rel=1e-3)  # the growing part wins
    assert norms[5] < norms[0]  # after the shrinking part first dominates


def test_linear_recurrence_checks_shapes():
    with pytest.raises(ValueError, match=r"h0 must have shape \(H,\) or \(B, H\) with H = 3"):
        D.linear_recurrence_norms(np.eye(3), np.ones(4), 2)
    with pytest.raises(ValueError, match="square"):
        D.spectral_radius(np.ones((2, 3)))


def test_recurrent_weights_splits_a_stacked_weight_by_gate(rng):
    class Stacked(tr.nn.Module):
        def __init__(self, gates, hidden):
            super().__init__()
            self.weight_hh_l0 = tr.nn.Parameter(rng.standard_normal((gates * hidden, hidden)))

    for count, names in GATES.items():
        model = Stacked(count, 4)
        blocks = D.recurrent_weights(model)
        assert tuple(blocks) == names
        np.testing.assert_array_equal(np.concatenate(list(blocks.values())), model.weight_hh_l0.numpy())
        assert D.content_block(blocks) is blocks[{1: "h", 3: "n", 4: "g"}[count]]


def test_recurrent_weights_names_the_candidates_when_ambiguous(rng):
    outer = tr.nn.Module()
    for name in ("encoder", "decoder"):
        inner = tr.nn.Module()
        inner.weight_hh_l0 = tr.nn.Parameter(rng.standard_normal((3, 3)))
        setattr(outer, name, inner)
    with pytest.raises(ValueError, match="encoder.weight_hh_l0.*decoder.weight_hh_l0"):
        D.recurrent_weights(outer)
    assert set(D.recurrent_weights(outer, name="decoder.weight_hh_l0")) == {"h"}
    with pytest.raises(ValueError, match="weight_hh_l1"):
        D.recurrent_weights(outer, layer=1)
