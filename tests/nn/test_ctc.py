"""ctc_loss and CTCLoss against torch: values and gradients in float64 (every reduction, both ends of the
class range as the blank, repeated labels, padded and concatenated targets, lengths that no alignment fits,
zero_infinity, one unbatched sequence), float32, torch's argument errors, first derivatives only, and one
LSTM training step."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np

REDUCTIONS = ["mean", "sum", "none"]
T, C = 8, 5

# name -> (padded targets, input lengths, target lengths, blank): labels avoid the blank
CASES = {
    "blank 0": ([[1, 2, 3, 4], [2, 3, 0, 0], [4, 0, 0, 0]], [8, 6, 5], [4, 2, 1], 0),
    "blank C-1": ([[0, 1, 2, 3], [3, 2, 0, 0], [1, 1, 1, 1]], [8, 7, 8], [4, 2, 0], 4),
    "repeated labels need a blank between": ([[1, 1, 1, 2], [3, 3, 4, 4], [2, 2, 2, 2]], [8, 8, 7], [4, 4, 4], 0),
    "too few steps for the repeats": ([[1, 1, 1, 1], [2, 3, 0, 0], [4, 4, 0, 0]], [6, 2, 3], [4, 2, 2], 0),
    "no steps, no labels": ([[1, 2, 0, 0], [3, 0, 0, 0], [2, 4, 4, 1]], [0, 0, 8], [0, 1, 0], 0),
}


def log_probs(rng, shape, dtype="float64"):
    """Random log-softmax outputs, as a CTC loss is given them."""
    x = rng.standard_normal(shape)
    return (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(dtype)


def concatenated(targets, target_lengths):
    return np.concatenate([row[:n] for row, n in zip(np.asarray(targets), target_lengths)])


def both(torch, array, device, requires_grad=True):
    dtype = array.dtype if array.dtype.kind == "f" else None  # float32 is the default, as torch.Tensor's
    return (tr.tensor(array, dtype=dtype, device=device, requires_grad=requires_grad),
            torch.tensor(array, requires_grad=requires_grad))


def assert_matches(ours, theirs, what, rtol=1e-13):
    theirs = theirs.detach().numpy()
    assert to_np(ours).shape == theirs.shape, what
    np.testing.assert_allclose(to_np(ours), theirs, rtol=rtol, atol=0, err_msg=what)  # NaN and inf equal too


def loss_and_gradient(torch, rng, device, lp, targets, lengths, **options):
    """Our and torch's loss and its gradient with respect to log_probs, from the same output gradient."""
    (x, y), (t_ours, t_theirs) = both(torch, lp, device), both(torch, targets, device, requires_grad=False)
    ours = tr.nn.functional.ctc_loss(x, t_ours, *lengths, **options)
    theirs = torch.nn.functional.ctc_loss(y, t_theirs, *lengths, **options)
    g = rng.standard_normal(tuple(theirs.shape))
    ours.backward(tr.tensor(g, dtype=ours.dtype, device=device))
    theirs.backward(torch.tensor(g, dtype=theirs.dtype))
    return (ours, x.grad), (theirs, y.grad)


@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("layout", ["padded", "concatenated"])
@pytest.mark.parametrize("case", CASES)
def test_values_and_gradients_match_torch(torch, device, rng, case, layout, reduction, zero_infinity):
    targets, input_lengths, target_lengths, blank = CASES[case]
    if layout == "concatenated":
        targets = concatenated(targets, target_lengths)
    lp = log_probs(rng, (T, len(input_lengths), C))
    (ours, grad), (theirs, their_grad) = loss_and_gradient(
        torch, rng, device, lp, np.asarray(targets), (input_lengths, target_lengths), blank=blank,
        reduction=reduction, zero_infinity=zero_infinity)
    assert_matches(ours, theirs, "loss")
    assert_matches(grad, their_grad, "gradient", rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_one_unbatched_sequence(torch, rng, reduction):
    lp = log_probs(rng, (T, C))
    for lengths in [([7], [3]), ((7,), (3,)), (torch.tensor(7), torch.tensor(3))]:
        ours_lengths = [tr.tensor(n.item()) if hasattr(n, "item") else n for n in lengths]
        x, y = both(torch, lp, "cpu")
        ours = tr.nn.functional.ctc_loss(x, tr.tensor([2, 2, 1]), *ours_lengths, reduction=reduction)
        theirs = torch.nn.functional.ctc_loss(y, torch.tensor([2, 2, 1]), *lengths, reduction=reduction)
        ours.backward()
        theirs.backward()
        assert_matches(ours, theirs, f"loss, lengths {lengths}")
        assert_matches(x.grad, y.grad, f"gradient, lengths {lengths}", rtol=1e-12)


def test_lengths_as_tensors_lists_and_tuples(torch, rng):
    lp, targets = log_probs(rng, (T, 3, C)), np.array([[1, 2, 2], [3, 1, 0], [4, 0, 0]])
    expected = torch.nn.functional.ctc_loss(torch.tensor(lp), torch.tensor(targets), [8, 7, 5], [3, 2, 1],
                                            reduction="none")
    for lengths in [([8, 7, 5], [3, 2, 1]), ((8, 7, 5), (3, 2, 1)),
                    (tr.tensor([8, 7, 5]), tr.tensor([3, 2, 1], dtype="int32")),
                    (tr.tensor([[8, 7, 5]]), tr.tensor([3, 2, 1]))]:
        ours = tr.nn.functional.ctc_loss(tr.tensor(lp, dtype="float64"), tr.tensor(targets), *lengths, reduction="none")
        assert_matches(ours, expected, f"lengths {lengths}")
    float_targets = tr.nn.functional.ctc_loss(tr.tensor(lp, dtype="float64"), tr.tensor(targets, dtype="float64"), [8, 7, 5],
                                              [3, 2, 1], reduction="none")
    assert_matches(float_targets, expected, "targets as floats, as torch takes them")


def test_float32_close_to_torch(torch, rng):
    targets, input_lengths, target_lengths, _ = CASES["blank 0"]
    lp = log_probs(rng, (T, 3, C), "float32")
    for reduction in REDUCTIONS:
        (ours, grad), (theirs, their_grad) = loss_and_gradient(
            torch, rng, "cpu", lp, np.asarray(targets), (input_lengths, target_lengths), reduction=reduction)
        assert ours.dtype == grad.dtype == np.float32
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-5)
        np.testing.assert_allclose(grad.numpy(), their_grad.numpy(), rtol=1e-4, atol=1e-6)


def test_module_matches_function(torch, rng):
    targets, input_lengths, target_lengths, _ = CASES["blank C-1"]
    lp = log_probs(rng, (T, 3, C))
    module = tr.nn.CTCLoss(blank=4, reduction="sum", zero_infinity=True)
    assert repr(module) == "CTCLoss(blank=4, reduction='sum', zero_infinity=True)"
    assert repr(tr.nn.CTCLoss()) == "CTCLoss()"
    ours = module(tr.tensor(lp, dtype="float64"), tr.tensor(targets), input_lengths, target_lengths)
    theirs = torch.nn.CTCLoss(blank=4, reduction="sum", zero_infinity=True)(
        torch.tensor(lp), torch.tensor(targets), input_lengths, target_lengths)
    assert_matches(ours, theirs, "CTCLoss")
    with pytest.raises(ValueError, match="reduction"):
        tr.nn.CTCLoss(reduction="batchmean")


# what to change in a good call -> (error type, words the message holds)
BAD_ARGUMENTS = [
    ({"target_lengths": [4, 2, 1]}, RuntimeError, "max\\(target_lengths\\) = 4"),
    ({"input_lengths": [9, 5, 5]}, RuntimeError, "input_lengths must be at most"),
    ({"input_lengths": [-1, 5, 5]}, RuntimeError, "input_lengths must be at least 0"),
    ({"target_lengths": [3, -2, 1]}, RuntimeError, "target_lengths must be at least 0"),
    ({"input_lengths": [5, 5]}, RuntimeError, "input_lengths must be of size batch_size"),
    ({"target_lengths": tr.tensor([3, 2, 1, 1])}, RuntimeError, "target_lengths must be of size batch_size"),
    ({"input_lengths": tr.tensor([5.0, 5.0, 5.0])}, RuntimeError, "input_lengths must be integral"),
    ({"input_lengths": 5}, TypeError, "input_lengths must be a Tensor, a list or a tuple"),
    ({"target_lengths": [3, 2.0, 1]}, TypeError, "target_lengths must hold ints"),
    ({"blank": 5}, RuntimeError, "blank must be in label range"),
    ({"blank": -1}, RuntimeError, "blank must be in label range"),
    ({"targets": tr.tensor([[1, 2, 2], [1, 1, 3]])}, RuntimeError, "targets must have batch_size, 3, rows"),
    ({"targets": tr.tensor([1, 2, 2, 1, 1, 3, 1])}, RuntimeError, "sum\\(target_lengths\\) = 6"),
    ({"targets": tr.tensor([[[1, 2, 2]]])}, RuntimeError, "targets must be 1-D"),
    ({"targets": tr.tensor([[1, 2, 7], [1, 1, 0], [3, 0, 0]])}, IndexError, "targets must lie in \\[0, 5\\)"),
    ({"log_probs": tr.zeros(8, 3, 5, dtype="int64")}, TypeError, "log_probs must be floating point"),
    ({"log_probs": tr.zeros(1, 8, 3, 5)}, RuntimeError, "log_probs of shape \\(T, N, C\\) or \\(T, C\\)"),
    ({"log_probs": tr.zeros(0, 3, 5)}, RuntimeError, "log_probs tensor must not be empty"),
    ({"reduction": "batchmean"}, ValueError, "reduction must be one of"),
]


@pytest.mark.parametrize("change, error, words", BAD_ARGUMENTS, ids=lambda v: str(v)[:40])
def test_bad_arguments_are_refused_naming_them(change, error, words):
    call = {"log_probs": tr.zeros(8, 3, 5), "targets": tr.tensor([[1, 2, 2], [1, 1, 0], [3, 0, 0]]),
            "input_lengths": [5, 5, 5], "target_lengths": [3, 2, 1]} | change
    with pytest.raises(error, match=words):
        tr.nn.functional.ctc_loss(**call)


def test_only_first_derivatives_as_torch():
    lp = tr.tensor(log_probs(np.random.default_rng(1), (T, 1, C)), requires_grad=True)
    loss = tr.nn.functional.ctc_loss(lp, tr.tensor([[1, 2]]), [T], [2])
    with pytest.raises(RuntimeError, match="not differentiable"):
        tr.autograd.grad(loss, lp, create_graph=True)
    (grad,) = tr.autograd.grad(loss, lp)
    assert grad.grad_fn is None


def test_lstm_training_step_matches_torch(torch, rng):
    """LSTM, Linear, log_softmax and CTCLoss: the loss, every parameter's gradient and the SGD step."""
    torch.manual_seed(0)
    theirs = torch.nn.ModuleDict({"lstm": torch.nn.LSTM(3, 6), "proj": torch.nn.Linear(6, C)}).double()
    ours = tr.nn.ModuleDict({"lstm": tr.nn.LSTM(3, 6), "proj": tr.nn.Linear(6, C)}).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((T, 3, 3))
    targets, input_lengths, target_lengths, _ = CASES["repeated labels need a blank between"]

    def step(lib, model, optimizer):
        hidden, _ = model["lstm"](lib.tensor(x, dtype=lib.float64))
        lp = lib.nn.functional.log_softmax(model["proj"](hidden), dim=-1)
        loss = lib.nn.CTCLoss()(lp, lib.tensor(targets), input_lengths, target_lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    loss = step(tr, ours, tr.optim.SGD(ours.parameters(), lr=0.5))
    their_loss = step(torch, theirs, torch.optim.SGD(theirs.parameters(), lr=0.5))
    assert_matches(loss, their_loss, "loss")
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(mine[name].grad.numpy(), p.grad.numpy(), rtol=1e-12, atol=0, err_msg=name)
        np.testing.assert_allclose(mine[name].detach().numpy(), p.detach().numpy(), rtol=1e-12, err_msg=name)
