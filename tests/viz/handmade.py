"""Recurrent graphs recorded by hand with the layers' scope and naming conventions.

They let the drawings be tested without the nn layers: each step runs inside
scope("layer", k) / scope("direction", d) / scope("t", t) and names x, h, c and the gates as the
layers do; parameters carry PyTorch's names.
"""
import numpy as np

import tinygrad_rnn as tr

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def make_params(kind, input_size, hidden_size, num_layers=1, bidirectional=False, seed=0, device=None):
    rng = np.random.default_rng(seed)
    params = {}
    gates = GATES[kind]
    for layer in range(num_layers):
        for suffix in ("", "_reverse")[: 1 + bidirectional]:
            width = input_size if layer == 0 else hidden_size * (1 + bidirectional)
            shapes = {"weight_ih": (gates * hidden_size, width), "weight_hh": (gates * hidden_size, hidden_size),
                      "bias_ih": (gates * hidden_size,), "bias_hh": (gates * hidden_size,)}
            for base, shape in shapes.items():
                name = f"{base}_l{layer}{suffix}"
                params[name] = tr.Tensor(rng.uniform(-0.5, 0.5, shape), requires_grad=True,
                                         device=device).named(name)
    return params


def rnn_step(p, sfx, x, h, c):
    return (x @ p["weight_ih" + sfx].T + p["bias_ih" + sfx] + h @ p["weight_hh" + sfx].T
            + p["bias_hh" + sfx]).tanh().named("h"), None


def lstm_step(p, sfx, x, h, c):
    gates = x @ p["weight_ih" + sfx].T + p["bias_ih" + sfx] + h @ p["weight_hh" + sfx].T + p["bias_hh" + sfx]
    i, f, g, o = gates.chunk(4, 1)
    i, f, g, o = i.sigmoid().named("i"), f.sigmoid().named("f"), g.tanh().named("g"), o.sigmoid().named("o")
    c = (f * c + i * g).named("c")
    return (o * c.tanh()).named("h"), c


def gru_step(p, sfx, x, h, c):
    gi = x @ p["weight_ih" + sfx].T + p["bias_ih" + sfx]
    gh = h @ p["weight_hh" + sfx].T + p["bias_hh" + sfx]
    i_r, i_z, i_n = gi.chunk(3, 1)
    h_r, h_z, h_n = gh.chunk(3, 1)
    r = (i_r + h_r).sigmoid().named("r")
    z = (i_z + h_z).sigmoid().named("z")
    n = (i_n + r * h_n).tanh().named("n")
    return ((1 - z) * n + z * h).named("h"), None


STEPS = {"rnn": rnn_step, "lstm": lstm_step, "gru": gru_step}


def record(kind="rnn", steps=3, batch=2, input_size=3, hidden_size=4, num_layers=1, bidirectional=False,
           seed=0, loss="last", x_requires_grad=False, device=None):
    """Run a hand-written recurrent net over a random sequence; returns (loss, params, output).

    loss="last": the mean of the last output step (the vanishing-gradient setting);
    loss="all": the mean of every output.
    """
    rng = np.random.default_rng(seed + 1)
    params = make_params(kind, input_size, hidden_size, num_layers, bidirectional, seed, device)
    x = tr.Tensor(rng.standard_normal((steps, batch, input_size)), requires_grad=x_requires_grad,
                  device=device).named("input")
    step = STEPS[kind]
    seq = x
    for layer in range(num_layers):
        outs = []
        with tr.scope("layer", layer):
            for direction, sfx in (("forward", ""), ("reverse", "_reverse"))[: 1 + bidirectional]:
                h = tr.zeros(batch, hidden_size, device=device).named("h0")
                c = tr.zeros(batch, hidden_size, device=device).named("c0") if kind == "lstm" else None
                hs = [None] * steps
                order = range(steps) if direction == "forward" else reversed(range(steps))
                with tr.scope("direction", direction):
                    for t in order:
                        with tr.scope("t", t):
                            h, c = step(params, f"_l{layer}{sfx}", seq[t].named("x"), h, c)
                        hs[t] = h
                outs.append(hs)
            if bidirectional:
                seq = tr.stack([tr.cat([a, b], 1) for a, b in zip(*outs)])
            else:
                seq = tr.stack(outs[0])
            seq.named("output")
    out = seq
    value = out[-1].mean() if loss == "last" else out.mean()
    return value.named("loss"), params, out
