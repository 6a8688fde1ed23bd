"""Finite-difference references for the diagnostics, computed through the models' public calls."""
import numpy as np

import tinygrad_rnn as tr


def output_of(model, x, state=None):
    with tr.no_grad():
        result = model(tr.Tensor(x, dtype="float64"), state)
    return result[0].numpy()


def jacobian_norms(model, x, eps=1e-6):
    """||d output(t) / d x(s)||_F by central differences, shape (T_out, T_in)."""
    steps = x.shape[0]
    squares = np.zeros((steps, steps))
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += eps
        down[index] -= eps
        column = (output_of(model, up) - output_of(model, down)) / (2 * eps)  # (T, B, K)
        squares[:, index[0]] += (column ** 2).sum(axis=(1, 2))
    return np.sqrt(squares)


def state_gradient_norms(model, x, loss_of_output, t, lstm=False, eps=1e-6):
    """||dL/dh(t)|| (and ||dL/dc(t)|| for an LSTM) by central differences.

    The loss as a function of the state at step t: earlier outputs fixed, output(t) = h(t) (one
    layer), later outputs from running the layer on x[t+1:] from that state. For an LSTM, h(t) =
    o(t) * tanh(c(t)) depends on c(t), so moving c(t) moves h(t) with it, as in the graph.
    """
    xt = tr.Tensor(x, dtype="float64")
    with tr.no_grad():
        prefix = model(xt[:t])[0].numpy() if t > 0 else None
        final = model(xt[:t + 1])[1]
    states = [s.numpy() for s in (final if lstm else (final,))]

    def loss_at(h, c=None):
        pieces = ([prefix] if t > 0 else []) + [h]
        if t + 1 < x.shape[0]:
            state = (tr.Tensor(h, dtype="float64"), tr.Tensor(c, dtype="float64")) if lstm else \
                tr.Tensor(h, dtype="float64")
            pieces.append(output_of(model, x[t + 1:], state))
        with tr.no_grad():
            return loss_of_output(tr.Tensor(np.concatenate(pieces), dtype="float64")).item()

    norms = [_central_difference_norm(lambda h: loss_at(h, *states[1:]), states[0], eps)]
    if lstm:
        o = _output_gate(model, x, prefix, t)
        norms.append(_central_difference_norm(lambda c: loss_at(o * np.tanh(c), c), states[1], eps))
    return norms


def _output_gate(lstm, x, prefix, t):
    """o(t) of a one-layer LSTM, from its weights, x(t) and h(t-1)."""
    hidden = lstm.hidden_size
    w = {name: p.numpy()[3 * hidden:] for name, p in lstm.named_parameters()}
    h_prev = prefix[-1] if prefix is not None else np.zeros((x.shape[1], hidden))
    pre = x[t] @ w["weight_ih_l0"].T + w["bias_ih_l0"] + h_prev @ w["weight_hh_l0"].T + w["bias_hh_l0"]
    return 1 / (1 + np.exp(-pre))


def _central_difference_norm(f, point, eps):
    grad = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        up, down = point.copy(), point.copy()
        up[index] += eps
        down[index] -= eps
        grad[index] = (f(up) - f(down)) / (2 * eps)
    return np.linalg.norm(grad)
