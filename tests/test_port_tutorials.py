"""PyTorch tutorial programs run on tinygrad_rnn after changing only their import lines.

Each program below is written once, against `torch`, in the manner of a well-known tutorial:
REGRESSION fits an MLP with a DataLoader over a TensorDataset and SGD with momentum (seeding as
tutorials do, cudnn flags included); NAMES is the character-level RNN that classifies names
("NLP From Scratch"), with a Dataset, random_split and the hand-written SGD step; TAGGER is the
LSTM part-of-speech tagger ("Sequence Models and LSTM Networks") over pretrained, frozen embeddings;
SINE is pytorch/examples' time_sequence_prediction, two LSTMCells trained with LBFGS. Each test runs
a program with torch and with its import lines changed, from the same initial weights (a torch
model's, copied), and compares every loss to 1e-10 in float64.
"""
import re

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.porting import ported, run_both

REGRESSION = '''
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset, random_split


def set_seed(seed):
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def make_model():
    return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))


def fit(x, y, init, epochs=4, seed=0):
    set_seed(seed)
    torch.set_default_dtype(torch.float64)
    dataset = TensorDataset(torch.tensor(x), torch.tensor(y).unsqueeze(1))
    train_set, val_set = random_split(dataset, [0.8, 0.2], generator=torch.Generator().manual_seed(seed))
    train_loader = DataLoader(train_set, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(seed))
    val_loader = DataLoader(val_set, batch_size=16)
    model = make_model()
    model.load_state_dict(init)
    loss_fn = nn.MSELoss()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses, val_losses = [], []
    for epoch in range(epochs):
        model.train()
        for xb, yb in train_loader:
            pred = model(xb)
            loss = loss_fn(pred, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            total = sum(loss_fn(model(xb), yb).item() * len(xb) for xb, yb in val_loader)
        val_losses.append(total / len(val_set))
    return losses, val_losses, model.state_dict()
'''

NAMES = '''
import random
import string
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Variable
from torch.utils.data import Dataset

all_letters = string.ascii_letters + " .,;'"
n_letters = len(all_letters)


def letterToIndex(letter):
    return all_letters.find(letter)


def lineToTensor(line):
    tensor = torch.zeros(len(line), 1, n_letters)
    for li, letter in enumerate(line):
        tensor[li][0][letterToIndex(letter)] = 1
    return tensor


class NamesDataset(Dataset):
    def __init__(self, names_by_language):
        self.labels_uniq = sorted(names_by_language)
        self.data, self.data_tensors, self.labels, self.labels_tensors = [], [], [], []
        for label in self.labels_uniq:
            for name in names_by_language[label]:
                self.data.append(name)
                self.data_tensors.append(lineToTensor(name))
                self.labels.append(label)
        for label in self.labels:
            self.labels_tensors.append(torch.tensor([self.labels_uniq.index(label)], dtype=torch.long))

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        return self.labels_tensors[idx], self.data_tensors[idx], self.labels[idx], self.data[idx]


class RNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(RNN, self).__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input, hidden):
        combined = torch.cat((input, hidden), 1)
        hidden = F.tanh(self.i2h(combined))
        output = self.h2o(hidden)
        output = self.softmax(output)
        return output, hidden

    def initHidden(self):
        return Variable(torch.zeros(1, self.hidden_size))


def categoryFromOutput(output, labels_uniq):
    top_n, top_i = output.topk(1)
    category_i = top_i[0].item()
    return labels_uniq[category_i], category_i


def train(names_by_language, init, n_hidden=12, epochs=3, learning_rate=0.01, seed=2024):
    torch.set_default_dtype(torch.float64)
    random.seed(seed)
    dataset = NamesDataset(names_by_language)
    train_set, test_set = torch.utils.data.random_split(dataset, [0.75, 0.25],
                                                        generator=torch.Generator().manual_seed(seed))
    rnn = RNN(n_letters, n_hidden, len(dataset.labels_uniq))
    rnn.load_state_dict(init)
    criterion = nn.NLLLoss()
    losses = []
    for epoch in range(epochs):
        order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(seed + epoch))
        for i in order.tolist():
            category_tensor, line_tensor, _, _ = train_set[i]
            hidden = rnn.initHidden()
            rnn.zero_grad()
            for t in range(line_tensor.size()[0]):
                output, hidden = rnn(line_tensor[t], hidden)
            loss = criterion(output, category_tensor)
            loss.backward()
            for p in rnn.parameters():
                p.data.add_(p.grad.data, alpha=-learning_rate)
            losses.append(loss.item())
    correct = 0
    with torch.no_grad():
        for category_tensor, line_tensor, label, name in test_set:
            hidden = rnn.initHidden()
            for t in range(line_tensor.size()[0]):
                output, hidden = rnn(line_tensor[t], hidden)
            guess, _ = categoryFromOutput(output, dataset.labels_uniq)
            correct += guess == label
    return losses, correct / len(test_set)
'''

TAGGER = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

training_data = [
    ("The dog ate the apple".split(), ["DET", "NN", "V", "DET", "NN"]),
    ("Everybody read that book".split(), ["NN", "V", "DET", "NN"]),
    ("The apple read the dog".split(), ["DET", "NN", "V", "DET", "NN"]),
]
word_to_ix = {}
for sent, tags in training_data:
    for word in sent:
        if word not in word_to_ix:
            word_to_ix[word] = len(word_to_ix)
tag_to_ix = {"DET": 0, "NN": 1, "V": 2}


def prepare_sequence(seq, to_ix):
    idxs = [to_ix[w] for w in seq]
    return torch.tensor(idxs, dtype=torch.long)


class LSTMTagger(nn.Module):
    def __init__(self, pretrained, hidden_dim, tagset_size):
        super(LSTMTagger, self).__init__()
        self.hidden_dim = hidden_dim
        self.word_embeddings = nn.Embedding.from_pretrained(pretrained, freeze=True)
        self.lstm = nn.LSTM(pretrained.shape[1], hidden_dim)
        self.hidden2tag = nn.Linear(hidden_dim, tagset_size)

    def forward(self, sentence):
        embeds = self.word_embeddings(sentence)
        lstm_out, _ = self.lstm(embeds.view(len(sentence), 1, -1))
        tag_space = self.hidden2tag(lstm_out.view(len(sentence), -1))
        tag_scores = F.log_softmax(tag_space, dim=1)
        return tag_scores


def train(pretrained, init, hidden_dim=6, epochs=30):
    torch.set_default_dtype(torch.float64)
    model = LSTMTagger(torch.tensor(pretrained), hidden_dim, len(tag_to_ix))
    model.load_state_dict(init, strict=False)
    loss_function = nn.NLLLoss()
    optimizer = optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1)
    losses = []
    for epoch in range(epochs):
        for sentence, tags in training_data:
            model.zero_grad()
            sentence_in = prepare_sequence(sentence, word_to_ix)
            targets = prepare_sequence(tags, tag_to_ix)
            tag_scores = model(sentence_in)
            loss = loss_function(tag_scores, targets)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    with torch.no_grad():
        inputs = prepare_sequence(training_data[0][0], word_to_ix)
        tag_scores = model(inputs)
    return losses, tag_scores.argmax(dim=1).tolist(), model.word_embeddings.weight.detach().numpy()
'''

SINE = '''
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim


class Sequence(nn.Module):
    def __init__(self, hidden=8):
        super(Sequence, self).__init__()
        self.hidden = hidden
        self.lstm1 = nn.LSTMCell(1, hidden)
        self.lstm2 = nn.LSTMCell(hidden, hidden)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, input, future=0):
        outputs = []
        h_t = torch.zeros(input.size(0), self.hidden, dtype=torch.double)
        c_t = torch.zeros(input.size(0), self.hidden, dtype=torch.double)
        h_t2 = torch.zeros(input.size(0), self.hidden, dtype=torch.double)
        c_t2 = torch.zeros(input.size(0), self.hidden, dtype=torch.double)
        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for i in range(future):
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        outputs = torch.cat(outputs, dim=1)
        return outputs


def make_data(T=16, L=16, N=6):
    x = np.empty((N, L), "int64")
    x[:] = np.array(range(L)) + np.random.randint(-4 * T, 4 * T, N).reshape(N, 1)
    return np.sin(x / 1.0 / T).astype("float64")


def main(init, steps=2, line_search_fn=None):
    np.random.seed(0)
    torch.manual_seed(0)
    data = make_data()
    input = torch.from_numpy(data[3:, :-1])
    target = torch.from_numpy(data[3:, 1:])
    test_input = torch.from_numpy(data[:3, :-1])
    test_target = torch.from_numpy(data[:3, 1:])
    seq = Sequence()
    seq.double()
    seq.load_state_dict(init)
    criterion = nn.MSELoss()
    optimizer = optim.LBFGS(seq.parameters(), lr=0.8, max_iter=8, line_search_fn=line_search_fn)
    losses, test_losses = [], []
    for i in range(steps):
        def closure():
            optimizer.zero_grad()
            out = seq(input)
            loss = criterion(out, target)
            losses.append(loss.item())
            loss.backward()
            return loss
        optimizer.step(closure)
        with torch.no_grad():
            future = 3
            pred = seq(test_input, future=future)
            loss = criterion(pred[:, :-future], test_target)
            test_losses.append(loss.item())
            y = pred.detach().numpy()
    return losses, test_losses, y
'''

PROGRAMS = {"regression": REGRESSION, "names": NAMES, "tagger": TAGGER, "sine": SINE}


@pytest.fixture
def both(torch):
    """(a program run by torch, the same program run by tinygrad_rnn); the default float is reset after."""
    yield run_both
    tr.set_default_dtype(tr.float32)
    torch.set_default_dtype(torch.float64)


def initial_state(module):
    """A torch module's own initial weights, as NumPy arrays to load into both."""
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def as_state(lib, arrays):
    return {k: lib.from_numpy(v.copy()) for k, v in arrays.items()}


def assert_close(ours, theirs):
    np.testing.assert_allclose(np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64),
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", PROGRAMS)
def test_only_import_lines_change(name):
    original, port = PROGRAMS[name].splitlines(), ported(PROGRAMS[name]).splitlines()
    changed = [(a, b) for a, b in zip(original, port) if a != b]
    assert len(original) == len(port) and changed
    assert all(re.match(r"(import|from) torch", a) and "tinygrad_rnn" in b for a, b in changed)


def test_regression_with_a_dataloader_and_sgd(both, torch):
    theirs, ours = both(REGRESSION)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3))
    y = np.sin(x @ np.array([1.0, -2.0, 0.5])) + 0.1 * rng.standard_normal(50)
    torch.manual_seed(0)
    init = initial_state(theirs["make_model"]().double())
    want_losses, want_val, want_state = theirs["fit"](x, y, as_state(torch, init))
    losses, val, state = ours["fit"](x, y, as_state(tr, init))
    assert len(losses) == len(want_losses) == 4 * 5  # 40 training samples in batches of 8
    assert_close(losses, want_losses)
    assert_close(val, want_val)
    for key in want_state:
        assert_close(np.asarray(state[key]), want_state[key].numpy())
    assert val[-1] < val[0]


NAMES_BY_LANGUAGE = {
    "English": ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans"],
    "Italian": ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano"],
    "Japanese": ["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito"],
}


def test_char_rnn_name_classifier(both, torch):
    theirs, ours = both(NAMES)
    torch.manual_seed(0)
    init = initial_state(theirs["RNN"](theirs["n_letters"], 12, len(NAMES_BY_LANGUAGE)).double())
    want_losses, want_accuracy = theirs["train"](NAMES_BY_LANGUAGE, as_state(torch, init))
    losses, accuracy = ours["train"](NAMES_BY_LANGUAGE, as_state(tr, init))
    assert len(losses) == 3 * 14  # 18 names: 14 to train on, 4 to test
    assert_close(losses, want_losses)
    assert accuracy == want_accuracy


def test_lstm_tagger_over_frozen_pretrained_embeddings(both, torch):
    theirs, ours = both(TAGGER)
    pretrained = np.random.default_rng(1).standard_normal((len(theirs["word_to_ix"]), 5))
    torch.manual_seed(0)
    model = theirs["LSTMTagger"](torch.tensor(pretrained), 6, 3).double()
    init = {k: v for k, v in initial_state(model).items() if not k.startswith("word_embeddings")}
    want_losses, want_tags, want_table = theirs["train"](pretrained, as_state(torch, init))
    losses, tags, table = ours["train"](pretrained, as_state(tr, init))
    assert_close(losses, want_losses)
    assert tags == want_tags
    np.testing.assert_array_equal(table, pretrained)  # frozen: the optimizer never saw it
    np.testing.assert_array_equal(want_table, pretrained)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_sine_waves_with_lstm_cells_and_lbfgs(both, torch, line_search_fn):
    theirs, ours = both(SINE)
    torch.manual_seed(0)
    init = initial_state(theirs["Sequence"]().double())
    want_losses, want_test, want_pred = theirs["main"](as_state(torch, init), line_search_fn=line_search_fn)
    losses, test, pred = ours["main"](as_state(tr, init), line_search_fn=line_search_fn)
    assert len(losses) == len(want_losses) > 3
    assert_close(losses, want_losses)
    assert_close(test, want_test)
    assert_close(pred, want_pred)
    assert losses[-1] < losses[0]
