"""The models the training loop builds: a token-level language model and a sequence regressor."""
from ..nn import functional as F
from ..nn.linear import Embedding, Linear
from ..nn.module import Module
from ..nn.recurrent import GRU, LSTM, RNN
from ..tensor import Tensor

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def recurrent_layer(cell, input_size, hidden_size, num_layers=1, dropout=0.0, dtype=None, device=None,
                    fused=True):
    """tr.nn.RNN / LSTM / GRU by name, time-major, with PyTorch's arguments.

    fused=True runs each layer as one node with hand-written BPTT (faster, same numbers);
    fused=False records every gate op by op.
    """
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {sorted(CELLS)}")
    return CELLS[cell](input_size, hidden_size, num_layers=num_layers, dropout=dropout if num_layers > 1 else 0.0,
                       dtype=dtype, device=device, fused=fused)


class CharLM(Module):
    """Embedding -> recurrent layer -> Linear: next-token logits for every step of a (T, B) id batch.

    `forward(ids, state=None) -> (logits (T, B, vocab), state)`; the state is what the recurrent
    layer returns (h_n, or (h_n, c_n) for an LSTM), so it can be carried into the next chunk.
    """

    def __init__(self, vocab_size, hidden_size=128, embed_size=None, cell="lstm", num_layers=1, dropout=0.0,
                 dtype=None, device=None, fused=True):
        super().__init__()
        embed_size = embed_size or hidden_size
        self.cell = cell
        self.embedding = Embedding(vocab_size, embed_size, dtype=dtype, device=device)
        self.rnn = recurrent_layer(cell, embed_size, hidden_size, num_layers, dropout, dtype, device, fused)
        self.head = Linear(hidden_size, vocab_size, dtype=dtype, device=device)

    def forward(self, ids, state=None):
        if not isinstance(ids, Tensor):
            ids = Tensor(ids, device=self.head.weight.device)
        output, state = self.rnn(self.embedding(ids), state)
        return self.head(output), state


class SequenceRegressor(Module):
    """A recurrent layer read out by a Linear at the last step: (T, B, I) -> (B, out), for the adding problem."""

    def __init__(self, input_size, hidden_size, out_size=1, cell="lstm", num_layers=1, dtype=None, device=None,
                 fused=True):
        super().__init__()
        self.cell = cell
        self.rnn = recurrent_layer(cell, input_size, hidden_size, num_layers, 0.0, dtype, device, fused)
        self.head = Linear(hidden_size, out_size, dtype=dtype, device=device)

    def forward(self, x, state=None):
        output, state = self.rnn(x, state)
        return self.head(output[-1]), state


def build_model(config, vocab_size=None):
    """The model a TrainConfig describes: a SequenceRegressor for the adding problem, else a CharLM."""
    c = config
    if c.task == "adding":
        return SequenceRegressor(2, c.hidden_size, 1, c.cell, c.num_layers, dtype=c.dtype, device=c.device,
                                 fused=c.fused)
    if not vocab_size:
        raise ValueError(f"task {c.task!r} needs the vocabulary size to build its model")
    return CharLM(vocab_size, c.hidden_size, c.embed_size, c.cell, c.num_layers, c.dropout, dtype=c.dtype,
                  device=c.device, fused=c.fused)


def sequence_cross_entropy(logits, targets):
    """Mean cross-entropy over all T * B positions of (T, B, V) logits and (T, B) target ids."""
    targets = targets.array if isinstance(targets, Tensor) else targets
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
