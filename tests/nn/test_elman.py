"""The lecture's Elman model: its equations by hand, PyTorch parity of the loss and gradients, gradcheck."""
import numpy as np

import tinygrad_rnn as tr
from tests.nn.parity import assert_close


def lecture_loss(model, symbols, targets):
    """h_t = tanh(U x_t + W h_{t-1} + b), o_t = V h_t + c, L = -sum_t log softmax(o_t)[y_t], by hand."""
    U, W = model.rnn.weight_ih_l0.numpy(), model.rnn.weight_hh_l0.numpy()
    b = model.rnn.bias_ih_l0.numpy() + model.rnn.bias_hh_l0.numpy()
    V, c = model.output.weight.numpy(), model.output.bias.numpy()
    h = np.zeros((symbols.shape[1], W.shape[0]))
    total = 0.0
    for x_t, y_t in zip(np.eye(U.shape[1])[symbols], targets):
        h = np.tanh(x_t @ U.T + h @ W.T + b)
        o = h @ V.T + c
        y_hat = np.exp(o) / np.exp(o).sum(axis=-1, keepdims=True)
        total -= np.log(y_hat[np.arange(len(y_t)), y_t]).sum()
    return total


def test_elman_model_computes_the_lecture_equations():
    tr.manual_seed(0)
    model = tr.nn.ElmanRNN(5, 4, 5, dtype="float64")
    rng = np.random.default_rng(0)
    symbols, targets = rng.integers(0, 5, (6, 3)), rng.integers(0, 5, (6, 3))
    loss, h_n = model.loss(symbols, targets)
    np.testing.assert_allclose(loss.item(), lecture_loss(model, symbols, targets), rtol=1e-12)
    assert loss.name == "L" and h_n.shape == (1, 3, 4)
    one_hot = tr.Tensor(np.eye(5)[symbols], dtype="float64")
    np.testing.assert_array_equal(model(one_hot)[0].numpy(), model(symbols)[0].numpy())
    np.testing.assert_allclose(model.probabilities(symbols).numpy().sum(axis=-1), 1.0, rtol=1e-12)


def test_elman_loss_and_gradients_match_torch(torch):
    tr.manual_seed(1)
    model = tr.nn.ElmanRNN(4, 3, 6, dtype="float64")
    rnn, out = torch.nn.RNN(4, 3, dtype=torch.float64), torch.nn.Linear(3, 6, dtype=torch.float64)
    for name, p in model.named_parameters():
        module, key = (rnn, name[4:]) if name.startswith("rnn.") else (out, name[7:])
        getattr(module, key).data = torch.tensor(p.numpy())
    rng = np.random.default_rng(1)
    x, targets = rng.standard_normal((5, 2, 4)), rng.integers(0, 6, (5, 2))
    loss, _ = model.loss(tr.Tensor(x, dtype="float64"), targets)
    hidden, _ = rnn(torch.tensor(x))
    tloss = torch.nn.functional.cross_entropy(out(hidden).reshape(-1, 6), torch.tensor(targets).reshape(-1),
                                              reduction="sum")
    assert_close(loss, tloss, "summed negative log-likelihood")
    loss.backward()
    tloss.backward()
    theirs = {**{"rnn." + n: p for n, p in rnn.named_parameters()},
              **{"output." + n: p for n, p in out.named_parameters()}}
    for name, p in model.named_parameters():
        assert_close(p.grad, theirs[name].grad, f"gradient of {name}")


def test_elman_loss_ignores_padded_steps_and_gradchecks():
    tr.manual_seed(2)
    model = tr.nn.ElmanRNN(3, 2, 3, dtype="float64")
    symbols, targets = np.array([[0, 1], [2, 2], [1, 0]]), np.array([[1, 2], [0, 1], [2, 0]])
    padded, _ = model.loss(symbols, targets, lengths=[3, 1])
    first, _ = model.loss(symbols[:, :1], targets[:, :1])
    second, _ = model.loss(symbols[:1, 1:], targets[:1, 1:])
    np.testing.assert_allclose(padded.item(), first.item() + second.item(), rtol=1e-12)
    assert tr.gradcheck(lambda *params: model.loss(symbols, targets, lengths=[3, 1])[0], *model.parameters())
