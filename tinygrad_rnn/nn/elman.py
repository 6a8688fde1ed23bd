"""The lecture's Elman network: a tanh RNN, an output layer, softmax and the summed negative log-likelihood."""
import numpy as np

from .. import backend
from ..tensor import Tensor
from . import functional as F
from .linear import Linear
from .module import Module
from .recurrent import RNN


class ElmanRNN(Module):
    """The lecture's model, step by step for t = 1..T:

        h_t = tanh(U x_t + W h_{t-1} + b)
        o_t = V h_t + c
        y_hat_t = softmax(o_t)
        L = -sum_t log y_hat_t[y_t]

    The lecture's names and the parameters that hold them:
        U  = rnn.weight_ih_l0   (hidden_size, input_size)
        W  = rnn.weight_hh_l0   (hidden_size, hidden_size)
        b  = rnn.bias_ih_l0 + rnn.bias_hh_l0   (PyTorch splits b in two; only the sum matters)
        V  = output.weight      (output_size, hidden_size)
        c  = output.bias        (output_size,)

    Input x is (T, B, input_size) floats, or (T, B) integer symbols read as one-hot vectors x_t.
    """

    def __init__(self, input_size, hidden_size, output_size, device=None, dtype=None):
        super().__init__()
        self.input_size = input_size
        self.rnn = RNN(input_size, hidden_size, device=device, dtype=dtype)
        self.output = Linear(hidden_size, output_size, device=device, dtype=dtype)

    def _vectors(self, x):
        if not isinstance(x, Tensor):
            x = Tensor(x)
        if x.dtype.kind in "iu":  # symbols: one-hot rows of the identity, constants of the model's dtype
            weight = self.rnn.weight_ih_l0
            symbols = backend.to_device(x.array, weight.device)
            x = Tensor._make(weight.xp.eye(self.input_size, dtype=weight.dtype)[symbols], None)
        return x

    def forward(self, x, h0=None, lengths=None):
        """(o, h_n): the output layer's scores o (T, B, output_size) and the last hidden state."""
        hidden, h_n = self.rnn(self._vectors(x), h0, lengths=lengths)
        return self.output(hidden).named("o"), h_n

    def probabilities(self, x, h0=None):
        """y_hat (T, B, output_size): the softmax of o at every step."""
        o, _ = self(x, h0)
        return F.softmax(o, dim=-1).named("y_hat")

    def loss(self, x, targets, h0=None, lengths=None):
        """(L, h_n): L the negative log-likelihood of targets (T, B) summed over steps and batch.

        log softmax is taken in one stable step (the same number as log of softmax). With lengths,
        padded steps add nothing.
        """
        o, h_n = self(x, h0, lengths)
        xp = o.xp
        targets = xp.asarray(targets.array if isinstance(targets, Tensor) else targets)
        if targets.shape != o.shape[:-1]:
            raise ValueError(f"ElmanRNN.loss: targets must have shape {o.shape[:-1]} (T, B) to match the "
                             f"input; got {targets.shape}")
        if lengths is not None:
            padded = xp.asarray(np.arange(o.shape[0])[:, None] >= np.asarray(lengths)[None, :])
            targets = xp.where(padded, -100, targets)
        total = F.cross_entropy(o.reshape(-1, o.shape[-1]), targets.reshape(-1), reduction="sum")
        return total.named("L"), h_n
