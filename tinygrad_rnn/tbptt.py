"""Truncated backpropagation through time: a long sequence trained in chunks of k steps.

The recurrent state flows from one chunk into the next (stateful training), but detached: each
backward pass stops at the chunk's first step, so memory and time per update stay bounded and the
graph of an earlier chunk is never walked twice. Example, a language model over a long text::

    from tinygrad_rnn.data import CharCorpus, batchify
    from tinygrad_rnn.optim import Adam
    from tinygrad_rnn.tbptt import truncated_bptt
    from tinygrad_rnn.train import CharLM, sequence_cross_entropy

    corpus = CharCorpus.default()
    model = CharLM(corpus.vocab_size, hidden_size=128)       # forward(ids, state) -> (logits, state)
    opt = Adam(model.parameters(), lr=3e-3)
    data = batchify(corpus.train_ids, batch_size=32)[:2001]  # (T, B): 32 streams of 2000 steps
    losses, state = truncated_bptt(model, data[:-1], data[1:], k=50, loss_fn=sequence_cross_entropy,
                                   optimizer=opt, clip_norm=1.0)  # 40 updates of 50 steps each

Without `detach_state`, the second chunk's backward would run into the first chunk's graph,
whose saved arrays are already freed ("backward through the graph a second time").
"""
import math
import warnings

from .nn.utils import clip_grad_norm_
from .tensor import Tensor


def detach_state(state):
    """The state cut from the graph: a Tensor, None, or tuples/lists of them nested as in LSTM's (h, c)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    raise TypeError(f"detach_state: expected a Tensor, None or a tuple/list of them; got {type(state).__name__}")


def chunk_bounds(length, k):
    """(start, stop) of consecutive chunks of at most k steps covering range(length)."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"truncation length k must be a positive integer, got {k!r}")
    return [(start, min(start + k, length)) for start in range(0, length, k)]


def truncated_bptt(forward, inputs, targets, k, loss_fn, optimizer, state=None, clip_norm=None):
    """One pass over time-major `inputs` / `targets` (T, B, ...), one optimizer step per chunk of k steps.

    `forward(x_chunk, state) -> (output, new_state)` (a model, or a layer like tr.nn.LSTM);
    `loss_fn(output, y_chunk) -> scalar Tensor`. With `clip_norm`, the gradients of the optimizer's
    parameters are clipped to that global norm before each step. A chunk whose loss or gradient norm
    is not finite changes nothing (a RuntimeWarning says so). Returns the list of chunk losses
    (floats) and the final state, detached, ready to continue with the next part of the sequence.
    """
    if len(inputs) != len(targets):
        raise ValueError(f"truncated_bptt: inputs have {len(inputs)} steps but targets {len(targets)}")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    losses = []
    for start, stop in chunk_bounds(len(inputs), k):
        output, state = forward(inputs[start:stop], state)
        loss = loss_fn(output, targets[start:stop])
        optimizer.zero_grad()
        loss.backward()
        norm = float(clip_grad_norm_(params, math.inf if clip_norm is None else clip_norm))  # inf: the norm alone
        value = loss.item()
        if math.isfinite(value) and math.isfinite(norm):
            optimizer.step()
        else:
            warnings.warn(f"truncated_bptt: the chunk of steps {start} to {stop - 1} has a loss of {value} and a "
                          f"gradient norm of {norm}; its update was skipped", RuntimeWarning, stacklevel=2)
        state = detach_state(state)
        losses.append(value)
    return losses, state
