"""LBFGS against torch.optim.LBFGS: 20 closure steps in float64, every loss and the final parameters."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.optim import LBFGS

RNG = np.random.default_rng(0)
X, Y = RNG.standard_normal((16, 3)), RNG.standard_normal((16, 2))
W0, B0 = RNG.standard_normal((3, 2)) * 0.5, RNG.standard_normal(2) * 0.1

CONFIGS = {
    "defaults": {},
    "short history, small steps": {"lr": 0.5, "max_iter": 4, "history_size": 3},
    "strong wolfe": {"line_search_fn": "strong_wolfe"},
    "strong wolfe, one iteration a step": {"line_search_fn": "strong_wolfe", "max_iter": 1, "history_size": 2},
    "strong wolfe, few evaluations": {"line_search_fn": "strong_wolfe", "max_iter": 6, "max_eval": 7, "lr": 2.0},
    "stops on a small change": {"tolerance_change": 1e-4, "max_iter": 8},
}


def losses_and_params(lib, options, device=None, steps=20):
    to = {} if device is None else {"device": device}
    w = lib.tensor(W0, dtype=lib.float64, requires_grad=True, **to)
    b = lib.tensor(B0, dtype=lib.float64, requires_grad=True, **to)
    x, y = lib.tensor(X, dtype=lib.float64, **to), lib.tensor(Y, dtype=lib.float64, **to)
    opt = (LBFGS if lib is tr else lib.optim.LBFGS)([w, b], **options)

    def closure():
        opt.zero_grad()
        loss = ((lib.tanh(x @ w + b) - y) ** 2).mean() + 0.05 * (w ** 4).sum()
        loss.backward()
        return loss
    losses = [opt.step(closure).item() for _ in range(steps)]
    state = opt.state[w]
    return losses, w.detach().numpy(), b.detach().numpy(), state["func_evals"], state["n_iter"]


@pytest.mark.parametrize("name", CONFIGS)
def test_lbfgs_matches_torch_over_20_steps(torch, device, name):
    losses, w, b, evals, iters = losses_and_params(tr, CONFIGS[name], device)
    want_losses, want_w, want_b, want_evals, want_iters = losses_and_params(torch, CONFIGS[name])
    np.testing.assert_allclose(losses, want_losses, rtol=0, atol=1e-10)
    np.testing.assert_allclose(w, want_w, rtol=0, atol=1e-10)
    np.testing.assert_allclose(b, want_b, rtol=0, atol=1e-10)
    assert (evals, iters) == (want_evals, want_iters)
    assert losses[-1] < losses[0]


def test_lbfgs_refuses_what_torch_refuses():
    w = tr.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="only line_search_fn='strong_wolfe'"):
        LBFGS([w], line_search_fn="backtracking")
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        LBFGS([{"params": [w]}, {"params": [tr.zeros(2, requires_grad=True)]}])
    with pytest.raises(TypeError, match="closure that re-evaluates the loss is required"):
        LBFGS([w]).step(None)
