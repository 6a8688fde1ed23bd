"""The lecture's vanilla RNN built from primitives, against its hand-derived BPTT gradients.

    a(t) = b + W h(t-1) + U x(t),  h(t) = tanh(a(t)),  o(t) = c + V h(t),
    y_hat(t) = softmax(o(t)),      L = sum_t -log y_hat(t)[y(t)]
"""
import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn.nn import functional as F


def hand_bptt(U, W, V, b, c, xs, ys, h0):
    """Forward pass and the lecture's BPTT equations, written out in NumPy."""
    T = len(xs)
    hs, probs = [h0], []
    for t in range(T):
        h = np.tanh(b + W @ hs[-1] + U @ xs[t])
        o = c + V @ h
        p = np.exp(o - o.max())
        hs.append(h)
        probs.append(p / p.sum())
    grads = {k: np.zeros_like(v) for k, v in {"U": U, "W": W, "V": V, "b": b, "c": c}.items()}
    grad_h_next = np.zeros_like(h0)  # dL/dh(t+1), zero past the last step
    for t in reversed(range(T)):
        grad_o = probs[t].copy()
        grad_o[ys[t]] -= 1                                  # dL/do(t) = y_hat(t) - 1_y(t)
        h, h_prev, h_next = hs[t + 1], hs[t], hs[t + 2] if t + 1 < T else None
        grad_h = V.T @ grad_o                               # dL/dh(tau) = V^T dL/do(tau)
        if h_next is not None:                              # + W^T diag(1 - h(t+1)^2) dL/dh(t+1)
            grad_h += W.T @ ((1 - h_next ** 2) * grad_h_next)
        grad_a = (1 - h ** 2) * grad_h
        grads["c"] += grad_o
        grads["b"] += grad_a
        grads["V"] += np.outer(grad_o, h)
        grads["W"] += np.outer(grad_a, h_prev)
        grads["U"] += np.outer(grad_a, xs[t])
        grad_h_next = grad_h
    loss = -sum(np.log(probs[t][ys[t]]) for t in range(T))
    return loss, grads


def test_vanilla_rnn_gradients_equal_the_lecture_bptt_formulas():
    rng = np.random.default_rng(7)
    n_in, n_hidden, n_out, T = 4, 6, 5, 9
    values = {"U": rng.normal(0, 0.5, (n_hidden, n_in)), "W": rng.normal(0, 0.5, (n_hidden, n_hidden)),
              "V": rng.normal(0, 0.5, (n_out, n_hidden)), "b": rng.normal(0, 0.1, n_hidden),
              "c": rng.normal(0, 0.1, n_out)}
    xs = rng.normal(size=(T, n_in))
    ys = rng.integers(0, n_out, T)
    h0 = np.zeros(n_hidden)

    params = {k: tr.Tensor(v, dtype="float64", requires_grad=True) for k, v in values.items()}
    U, W, V, b, c = (params[k] for k in "UWVbc")
    h = tr.Tensor(h0, dtype="float64")
    loss = 0
    for t in range(T):
        h = (b + W @ h + U @ tr.Tensor(xs[t], dtype="float64")).tanh()
        o = c + V @ h
        loss = loss + F.cross_entropy(o, np.array(ys[t]), reduction="sum")
    loss.backward()

    expected_loss, expected = hand_bptt(*values.values(), xs, ys, h0)
    np.testing.assert_allclose(loss.item(), expected_loss, rtol=0, atol=1e-10)
    for name, grad in expected.items():
        np.testing.assert_allclose(params[name].grad, grad, rtol=0, atol=1e-10, err_msg=name)
