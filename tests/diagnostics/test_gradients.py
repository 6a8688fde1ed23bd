import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import diagnostics as D

from . import reference
from .elman import Elman


def squared_last_plus_projection(v):
    """A loss reading every step (through v) and the last one (squared), as training losses do."""
    return lambda output: (output * tr.Tensor(v, dtype="float64")).sum() + (output[-1] ** 2).sum()


def test_hidden_gradient_norms_equal_finite_differences(rng):
    model = Elman(3, 4, rng)
    x = rng.standard_normal((6, 2, 3))
    loss_of_output = squared_last_plus_projection(rng.standard_normal((6, 2, 4)))
    norms = D.state_gradient_norms(model, x, lambda result: loss_of_output(result[0]))
    assert set(norms) == {"h"}
    expected = [reference.state_gradient_norms(model, x, loss_of_output, t)[0] for t in range(6)]
    np.testing.assert_allclose(norms["h"], expected, rtol=1e-6)


def test_step_gradient_norms_read_a_graph_recorded_by_hand(rng):
    model = Elman(2, 3, rng)
    x = tr.Tensor(rng.standard_normal((5, 1, 2)), dtype="float64")
    with tr.retain_grads():
        _, h_n = model(x)
        loss = (h_n ** 2).sum()
    loss.backward()
    norms = D.step_gradient_norms(loss)
    assert norms.shape == (5,) and np.all(norms > 0)
    assert norms[4] == pytest.approx(2 * np.linalg.norm(h_n.numpy()))  # dL/dh(T-1) = 2 h(T-1)
    assert model.weight_hh_l0.grad is not None  # an ordinary backward: its parameter grads stay


def test_step_gradient_norms_explain_what_is_missing(rng):
    model = Elman(2, 3, rng)
    x = tr.Tensor(rng.standard_normal((3, 1, 2)), dtype="float64")
    loss = model(x)[0].sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="retain_grads"):
        D.step_gradient_norms(loss)
    with pytest.raises(ValueError, match="no node named 'c'"):
        D.step_gradient_norms(loss, "c")
    with pytest.raises(ValueError, match=r"no 'h' nodes for layer 0, direction 'reverse'.*\(0, 'forward'\)"):
        D.step_gradient_norms(loss, direction="reverse")
    with pytest.raises(ValueError, match="none of the names"):
        D.state_gradient_norms(model, x, lambda result: result[0].sum(), names=("c",))
    with pytest.raises(ValueError, match="scalar"):
        D.state_gradient_norms(model, x, lambda result: result[0])
