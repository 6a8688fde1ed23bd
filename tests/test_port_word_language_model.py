"""Real PyTorch client code runs on tinygrad_rnn after changing only its import lines.

WORD_LANGUAGE_MODEL is a word-level language model of the kind pytorch/examples' `word_language_model`
trains: a corpus read from text files, an embedding encoder, dropout, an LSTM / GRU / tanh RNN chosen by
name, a linear decoder with optionally tied weights; batchify, get_batch, repackage_hidden, a training
loop with clipping and the hand-written SGD step, evaluation under no_grad, perplexity, saving the best
state_dict and annealing the learning rate, generation; and an Adam variant of its loop. LSTM_CLASSIFIER
is a plain nn.LSTM + nn.Linear + F.cross_entropy + optim.Adam loop. Both are written against `torch` and
held once, as text. Each test runs a source twice: as is, and with only its import lines replaced, on the
same float64 data from the same initial weights, and compares every loss, the logs and the final weights.
"""
import io
import re

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.porting import ported, run_both

WORD_LANGUAGE_MODEL = '''
import math
import os
import time
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class Dictionary:
    def __init__(self):
        self.word2idx = {}
        self.idx2word = []

    def add_word(self, word):
        if word not in self.word2idx:
            self.word2idx[word] = len(self.idx2word)
            self.idx2word.append(word)
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


class Corpus:
    # train.txt, valid.txt and test.txt of a folder as token ids, an <eos> closing each line

    def __init__(self, path):
        self.dictionary = Dictionary()
        self.train = self.tokenize(os.path.join(path, "train.txt"))
        self.valid = self.tokenize(os.path.join(path, "valid.txt"))
        self.test = self.tokenize(os.path.join(path, "test.txt"))

    def tokenize(self, path):
        assert os.path.exists(path)
        lines = []
        with open(path, "r", encoding="utf8") as f:
            for line in f:
                ids = [self.dictionary.add_word(word) for word in line.split() + ["<eos>"]]
                lines.append(torch.tensor(ids).type(torch.int64))
        return torch.cat(lines)


class RNNModel(nn.Module):
    # encoder, recurrent module, decoder

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ["LSTM", "GRU"]:
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        else:
            try:
                nonlinearity = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}[rnn_type]
            except KeyError as e:
                raise ValueError("rnn_type must be one of LSTM, GRU, RNN_TANH or RNN_RELU") from e
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            if nhid != ninp:
                raise ValueError("tied weights need nhid == ninp")
            self.decoder.weight = self.encoder.weight
        self.init_weights()
        self.rnn_type = rnn_type
        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == "LSTM":
            return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                    weight.new_zeros(self.nlayers, bsz, self.nhid))
        return weight.new_zeros(self.nlayers, bsz, self.nhid)


def batchify(data, bsz, device):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    data = data.view(bsz, -1).t().contiguous()
    return data.to(device)


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i:i + seq_len]
    target = source[i + 1:i + 1 + seq_len].view(-1)
    return data, target


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def train_epoch(model, train_data, criterion, lr, bptt, clip, batch_size, epoch, log, losses, log_interval=2):
    model.train()
    total_loss = 0.0
    start_time = time.time()
    hidden = model.init_hidden(batch_size)
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        data, targets = get_batch(train_data, i, bptt)
        model.zero_grad()
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        total_loss += loss.item()
        losses.append(loss.item())
        if batch % log_interval == 0 and batch > 0:
            cur_loss = total_loss / log_interval
            elapsed = time.time() - start_time
            print("| epoch {:3d} | {:5d}/{:5d} batches | lr {:02.2f} | ms/batch {:5.2f} | loss {:5.2f} | ppl {:8.2f}"
                  .format(epoch, batch, len(train_data) // bptt, lr, elapsed * 1000 / log_interval, cur_loss,
                          math.exp(cur_loss)), file=log)
            total_loss = 0.0
            start_time = time.time()


def evaluate(model, data_source, criterion, bptt, batch_size):
    model.eval()
    total_loss = 0.0
    hidden = model.init_hidden(batch_size)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i, bptt)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


def build(rnn_type, ntokens, tied, dropout=0.0, size=6):
    return RNNModel(rnn_type, ntokens, size, size, 2, dropout=dropout, tie_weights=tied).double()


def main(data_dir, init, rnn_type, tied, save, log, epochs=3, lr=5.0, clip=0.25, bptt=5, batch_size=3):
    torch.manual_seed(1111)
    device = torch.device("cuda" if torch.cuda.is_available() and False else "cpu")
    corpus = Corpus(data_dir)
    train_data = batchify(corpus.train, batch_size, device)
    val_data = batchify(corpus.valid, 2, device)
    test_data = batchify(corpus.test, 2, device)
    ntokens = len(corpus.dictionary)
    model = build(rnn_type, ntokens, tied).to(device)
    model.load_state_dict(init)
    criterion = nn.NLLLoss()
    losses, val_losses, best_val_loss = [], [], None
    for epoch in range(1, epochs + 1):
        epoch_start_time = time.time()
        train_epoch(model, train_data, criterion, lr, bptt, clip, batch_size, epoch, log, losses)
        val_loss = evaluate(model, val_data, criterion, bptt, 2)
        val_losses.append(val_loss)
        print("-" * 89, file=log)
        print("| end of epoch {:3d} | time: {:5.2f}s | valid loss {:5.2f} | valid ppl {:8.2f}"
              .format(epoch, (time.time() - epoch_start_time), val_loss, math.exp(val_loss)), file=log)
        print("-" * 89, file=log)
        if not best_val_loss or val_loss < best_val_loss:
            torch.save(model.state_dict(), save)
            best_val_loss = val_loss
        else:
            lr /= 4.0
    model = build(rnn_type, ntokens, tied).to(device)
    with open(save, "rb") as f:
        model.load_state_dict(torch.load(f))
    model.rnn.flatten_parameters()
    test_loss = evaluate(model, test_data, criterion, bptt, 2)
    print("| End of training | test loss {:5.2f} | test ppl {:8.2f}".format(test_loss, math.exp(test_loss)), file=log)
    return losses, val_losses, test_loss, model, corpus


def generate(model, corpus, words, temperature=1.0, start=None):
    # words drawn one at a time; the most likely one each time when temperature is 0
    ntokens = len(corpus.dictionary)
    model.eval()
    hidden = model.init_hidden(1)
    if start is None:
        input = torch.randint(ntokens, (1, 1), dtype=torch.long)
    else:
        input = torch.full((1, 1), corpus.dictionary.word2idx[start], dtype=torch.long)
    text = []
    with torch.no_grad():
        for i in range(words):
            output, hidden = model(input, hidden)
            if temperature == 0:
                word_idx = output.squeeze().argmax()
            else:
                word_weights = output.squeeze().div(temperature).exp().cpu()
                word_idx = torch.multinomial(word_weights, 1)[0]
            input.fill_(word_idx)
            text.append(corpus.dictionary.idx2word[word_idx])
    return text


def train_with_adam(data_dir, init, rnn_type, tied, steps=10, lr=0.01, clip=0.5, bptt=4, batch_size=2):
    corpus = Corpus(data_dir)
    train_data = batchify(corpus.train, batch_size, "cpu")
    model = build(rnn_type, int(train_data.max().item()) + 1, tied)
    model.load_state_dict(init)
    optimizer = optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    criterion = nn.CrossEntropyLoss()
    model.train()
    hidden = model.init_hidden(batch_size)
    losses = []
    for step, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        if step == steps:
            break
        data, targets = get_batch(train_data, i, bptt)
        hidden = repackage_hidden(hidden)
        optimizer.zero_grad()
        output, hidden = model(data, hidden)
        loss = criterion(output, targets) + 0.5 * F.nll_loss(output, targets)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=clip)
        optimizer.step()
        losses.append(loss.item())
    return losses, model.state_dict()
'''

LSTM_CLASSIFIER = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class Classifier(nn.Module):
    def __init__(self, input_size, hidden_size, num_classes, num_layers=2):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x, state=None):
        output, (h_n, c_n) = self.lstm(x, state)
        return self.head(output[:, -1, :])


def train(x, y, init, steps=8, log=None):
    model = Classifier(x.shape[-1], 5, 3).double()
    model.load_state_dict(init)
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    h0 = torch.zeros(2, inputs.size(0), 5, dtype=torch.float64)
    losses = []
    for step in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs, (h0, torch.zeros_like(h0))), targets)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        print(f"step {step} loss {loss:.4f} lr {optimizer.param_groups[0]['lr']:.4f}", file=log)
    with torch.no_grad():
        predicted = model(inputs).argmax(dim=1)
    accuracy = (predicted == targets).float().mean().item()
    return losses, accuracy, model.state_dict()
'''

@pytest.fixture
def both(torch):
    """(the source run by torch, the same source run by tinygrad_rnn) as namespaces."""
    return run_both


def test_the_port_changes_only_import_lines():
    for source in (WORD_LANGUAGE_MODEL, LSTM_CLASSIFIER):
        original, port = source.splitlines(), ported(source).splitlines()
        changed = [(a, b) for a, b in zip(original, port) if a != b]
        assert len(original) == len(port) and len(changed) == 4
        assert all(a.startswith("import torch") and b.startswith("import tinygrad_rnn") for a, b in changed)


SENTENCES = [
    "the cat sat on the mat", "the dog sat on the log", "a cat saw the dog", "the dog saw a cat",
    "a dog sat on a mat", "the cat ran", "a dog ran on the log",
]


@pytest.fixture
def data_dir(tmp_path):
    """A small corpus in the example's layout: train.txt, valid.txt, test.txt, one sentence a line."""
    rng = np.random.default_rng(0)
    for name, lines in (("train", 14), ("valid", 5), ("test", 5)):
        text = "\n".join(SENTENCES[k] for k in rng.integers(0, len(SENTENCES), lines))
        (tmp_path / f"{name}.txt").write_text(text + "\n", encoding="utf8")
    return str(tmp_path)


def initial_state(model, scale=0.3):
    """Fixed weights (NumPy arrays) for every entry of a torch model's state_dict."""
    rng = np.random.default_rng(1)
    return {k: rng.uniform(-scale, scale, tuple(v.shape)) for k, v in model.state_dict().items()}


def as_state(lib, arrays):
    return {k: lib.from_numpy(v.copy()) for k, v in arrays.items()}


def start_of(theirs, rnn_type, tied, data_dir):
    ntokens = len(theirs["Corpus"](data_dir).dictionary)
    init = initial_state(theirs["build"](rnn_type, ntokens, tied))
    if tied:  # one tensor under two names: give both the same start
        init["decoder.weight"] = init["encoder.weight"]
    return init


def assert_same_state(theirs, ours):
    assert list(theirs) == list(ours)
    for key in theirs:
        np.testing.assert_allclose(np.asarray(ours[key]), theirs[key].numpy(), rtol=0, atol=1e-10, err_msg=key)


@pytest.mark.parametrize("rnn_type,tied,lr,annealed", [("LSTM", False, 5.0, True), ("GRU", True, 20.0, True),
                                                       ("RNN_TANH", False, 5.0, False)])
def test_word_language_model_trains_as_in_pytorch(both, torch, data_dir, tmp_path, rnn_type, tied, lr, annealed):
    theirs, ours = both(WORD_LANGUAGE_MODEL)
    init = start_of(theirs, rnn_type, tied, data_dir)
    want_log, log = io.StringIO(), io.StringIO()
    (tmp_path / "torch").mkdir()
    (tmp_path / "ours").mkdir()
    want = theirs["main"](data_dir, as_state(torch, init), rnn_type, tied, str(tmp_path / "torch/model.pt"), want_log,
                          lr=lr)
    got = ours["main"](data_dir, as_state(tr, init), rnn_type, tied, str(tmp_path / "ours/model.pt"), log, lr=lr)
    losses, val_losses, test_loss, model, corpus = got
    np.testing.assert_allclose(losses, want[0], rtol=0, atol=1e-10, err_msg="training losses, step by step")
    np.testing.assert_allclose(val_losses, want[1], rtol=0, atol=1e-10, err_msg="validation losses")
    assert test_loss == pytest.approx(want[2], abs=1e-10)
    assert_same_state(want[3].state_dict(), model.state_dict())
    assert len(losses) == 3 * 6  # three epochs of six batches
    assert (f"| lr {lr / 4:02.2f} |" in log.getvalue()) == annealed  # a validation loss that did not improve
    assert model.decoder.weight is model.encoder.weight if tied else model.decoder.weight is not model.encoder.weight
    assert _without_times(log.getvalue()) == _without_times(want_log.getvalue())
    greedy = ours["generate"](model, corpus, 8, temperature=0, start="the")
    assert greedy == theirs["generate"](want[3], want[4], 8, temperature=0, start="the")


def _without_times(log):
    return re.sub(r"(ms/batch|time:) +[0-9.]+", r"\1", log)


def test_generation_samples_words_of_the_corpus(both, data_dir):
    _, ours = both(WORD_LANGUAGE_MODEL)
    corpus = ours["Corpus"](data_dir)
    model = ours["build"]("LSTM", len(corpus.dictionary), tied=True)
    words = ours["generate"](model, corpus, 12, temperature=0.7)
    assert len(words) == 12 and set(words) <= set(corpus.dictionary.idx2word)


@pytest.mark.parametrize("rnn_type,tied", [("LSTM", True), ("GRU", False)])
def test_word_language_model_with_adam_as_in_pytorch(both, torch, data_dir, rnn_type, tied):
    theirs, ours = both(WORD_LANGUAGE_MODEL)
    init = start_of(theirs, rnn_type, tied, data_dir)
    want_losses, want_state = theirs["train_with_adam"](data_dir, as_state(torch, init), rnn_type, tied)
    losses, state = ours["train_with_adam"](data_dir, as_state(tr, init), rnn_type, tied)
    np.testing.assert_allclose(losses, want_losses, rtol=0, atol=1e-10)
    assert len(losses) == 10
    assert_same_state(want_state, state)


def test_evaluation_with_dropout_matches_pytorch(both, torch, data_dir):
    theirs, ours = both(WORD_LANGUAGE_MODEL)
    init = start_of(theirs, "LSTM", False, data_dir)
    results = []
    for lib, source in ((torch, theirs), (tr, ours)):
        corpus = source["Corpus"](data_dir)
        model = source["build"]("LSTM", len(corpus.dictionary), False, dropout=0.5)
        model.load_state_dict(as_state(lib, init))
        test_data = source["batchify"](corpus.test, 2, "cpu")
        results.append(source["evaluate"](model, test_data, lib.nn.NLLLoss(), 5, 2))  # eval(): no dropout
    assert results[1] == pytest.approx(results[0], abs=1e-10)


def test_relu_variant_runs_and_unknown_types_are_refused(both):
    _, ours = both(WORD_LANGUAGE_MODEL)
    model = ours["RNNModel"]("RNN_RELU", 7, 4, 4, 2, dropout=0.5)
    output, hidden = model(tr.randint(0, 7, (5, 3)), model.init_hidden(3))
    assert tuple(output.shape) == (15, 7) and tuple(hidden.shape) == (2, 3, 4)
    with pytest.raises(ValueError, match="rnn_type"):
        ours["RNNModel"]("RNN_SIGMOID", 7, 4, 4, 2)


def test_lstm_classifier_trains_as_in_pytorch(both, torch):
    theirs, ours = both(LSTM_CLASSIFIER)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((6, 4, 3)), rng.integers(0, 3, 6)
    init = initial_state(theirs["Classifier"](3, 5, 3))
    want_log, log = io.StringIO(), io.StringIO()
    want_losses, want_accuracy, want_state = theirs["train"](x, y, as_state(torch, init), log=want_log)
    losses, accuracy, state = ours["train"](x, y, as_state(tr, init), log=log)
    np.testing.assert_allclose(losses, want_losses, rtol=0, atol=1e-10)
    assert accuracy == want_accuracy
    assert log.getvalue() == want_log.getvalue()
    assert_same_state(want_state, state)
