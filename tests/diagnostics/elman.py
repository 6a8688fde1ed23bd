"""A minimal Elman RNN (PyTorch's calling convention) from primitives, recording its steps the way the library's layers do.

It checks that the diagnostics need nothing but the naming conventions (each step's state named
"h" inside tr.scope("t", t)), and gives a model whose batch rows can be made to interact.
"""
import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn.nn import Module, Parameter


class Elman(Module):
    def __init__(self, input_size, hidden_size, rng, mix_batch=False):
        super().__init__()
        scale = 1 / np.sqrt(hidden_size)
        self.weight_ih_l0 = Parameter(rng.uniform(-scale, scale, (hidden_size, input_size)), dtype="float64")
        self.weight_hh_l0 = Parameter(rng.uniform(-scale, scale, (hidden_size, hidden_size)), dtype="float64")
        self.bias_l0 = Parameter(rng.uniform(-scale, scale, hidden_size), dtype="float64")
        self.mix_batch = mix_batch  # add the batch mean to every row: rows no longer independent

    def forward(self, x, h0=None):
        steps, batch, _ = x.shape
        h = h0[0] if h0 is not None else tr.zeros(batch, self.weight_hh_l0.shape[0], dtype=x.dtype).named("h0")
        outputs = []
        with tr.scope("layer", 0), tr.scope("direction", "forward"):
            for t in range(steps):
                with tr.scope("t", t):
                    pre = x[t].named("x") @ self.weight_ih_l0.T + h @ self.weight_hh_l0.T + self.bias_l0
                    if self.mix_batch:
                        pre = pre + pre.mean(axis=0, keepdims=True)
                    h = pre.tanh().named("h")
                outputs.append(h)
        return tr.stack(outputs).named("output"), h.unsqueeze(0)
