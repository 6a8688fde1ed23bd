"""The whole training step of bench_train.py against PyTorch for 30 steps in float64, GRU and RNN
(tests/test_train.py does the LSTM, through the training loop).

The step as the benchmark and the training loop run it: Embedding -> recurrent layer -> Linear,
cross-entropy (one node), backward (the embedding's gradient added by rows), global-norm clipping
(on the device), Adam over a flat buffer. The losses agree to 1e-8 at every step and the weights
at the end.
"""
import numpy as np
import pytest

from tinygrad_rnn.data import CharCorpus
from tinygrad_rnn.nn.utils import clip_grad_norm_
from tinygrad_rnn.train import TrainConfig, build, make_task

from .test_train import TEXT

STEPS = 30


def torch_model(torch, cell, vocab_size, embed_size, hidden_size):
    layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]

    class CharLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(vocab_size, embed_size)
            self.rnn = layer(embed_size, hidden_size)
            self.head = torch.nn.Linear(hidden_size, vocab_size)

        def forward(self, ids):
            return self.head(self.rnn(self.embedding(ids))[0])

    return CharLM().double()


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_thirty_training_steps_match_torch(torch, cell):
    corpus = CharCorpus(TEXT)
    config = TrainConfig(cell=cell, hidden_size=10, embed_size=6, batch_size=5, seq_len=12, lr=0.03, clip=0.3,
                         dtype="float64")
    task, model, opt, _ = build(config, corpus)
    theirs = torch_model(torch, cell, corpus.vocab_size, 6, 10)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    their_opt = torch.optim.Adam(theirs.parameters(), lr=0.03)
    params = list(model.parameters())
    batches = make_task(config, corpus)  # the same seed: the same batches
    ours_losses, their_losses, norms = [], [], []
    for _ in range(STEPS):
        batch = task.batch()
        loss = task.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        norms.append(clip_grad_norm_(params, config.clip).item())
        opt.step()
        ours_losses.append(loss.item())

        x, y = (torch.from_numpy(a) for a in batches.batch())
        their_loss = torch.nn.functional.cross_entropy(theirs(x).reshape(-1, corpus.vocab_size), y.reshape(-1))
        their_opt.zero_grad()
        their_loss.backward()
        expected_norm = torch.nn.utils.clip_grad_norm_(theirs.parameters(), config.clip).item()
        their_opt.step()
        their_losses.append(their_loss.item())
        assert norms[-1] == pytest.approx(expected_norm, rel=1e-8)
    np.testing.assert_allclose(ours_losses, their_losses, rtol=1e-8)
    assert max(norms) > config.clip  # clipping did act
    assert ours_losses[-1] < ours_losses[0] - 0.3  # it learned: not a comparison of flat lines
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name], value.numpy(), rtol=1e-7, atol=1e-10)
