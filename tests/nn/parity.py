"""Helpers for comparing tinygrad_rnn with PyTorch in float64: weights across, results back."""
import numpy as np

import tinygrad_rnn as tr
from tests.conftest import to_np

ATOL = 1e-9


def copy_torch_weights(ours, theirs):
    """Load a PyTorch module's state_dict, converted to numpy, into ours."""
    ours.load_state_dict({k: v.detach().cpu().numpy() for k, v in theirs.state_dict().items()})


def export_weights(torch, ours, theirs):
    """Load our state_dict into a PyTorch module."""
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})


def pair(torch, array, device, requires_grad=True):
    """The same float64 values as (ours, theirs) leaf tensors."""
    return (tr.Tensor(array, dtype="float64", device=device, requires_grad=requires_grad),
            torch.tensor(array, requires_grad=requires_grad))


def assert_close(ours, theirs, what):
    theirs = theirs.detach().cpu().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert to_np(ours).shape == theirs.shape, f"{what}: shape {to_np(ours).shape} != {theirs.shape}"
    np.testing.assert_allclose(to_np(ours), theirs, rtol=0, atol=ATOL, err_msg=what)


def assert_same_gradients(ours, theirs):
    """Every parameter's gradient, by PyTorch's name."""
    mine = dict(ours.named_parameters())
    assert set(mine) == {n for n, _ in theirs.named_parameters()}
    for name, p in theirs.named_parameters():
        assert mine[name].grad is not None, f"no gradient for {name}"
        assert_close(mine[name].grad, p.grad, f"gradient of {name}")


def weighted_sum(torch, tensors, rng):
    """sum_k <w_k, tensors_k> with the same random weights w_k on both sides: (ours, theirs) losses."""
    ours_total, theirs_total = None, None
    for mine, theirs in tensors:
        w = rng.standard_normal(tuple(theirs.shape))
        a = (mine * tr.Tensor(w, dtype="float64", device=mine.device)).sum()
        b = (theirs * torch.tensor(w)).sum()
        ours_total = a if ours_total is None else ours_total + a
        theirs_total = b if theirs_total is None else theirs_total + b
    return ours_total, theirs_total


def backpropagate_both(torch, tensors, rng):
    """Backward on both sides from the same weighted sum of the (ours, theirs) pairs."""
    loss, tloss = weighted_sum(torch, tensors, rng)
    loss.backward()
    tloss.backward()


VALUES, GRADIENTS = {"rtol": 1e-13, "atol": 1e-14}, {"rtol": 1e-12, "atol": 1e-13}


def assert_values(ours, theirs, what, tolerance=VALUES):
    """ours has torch's tensor's shape and values, to a relative tolerance."""
    theirs = theirs.detach().numpy()
    assert to_np(ours).shape == theirs.shape, f"{what}: shape {to_np(ours).shape} != {theirs.shape}"
    np.testing.assert_allclose(to_np(ours), theirs, err_msg=what, **tolerance)


def backward_both(torch, ours, theirs, rng):
    """Backward on both sides from the same random projection of the two outputs."""
    weights = rng.standard_normal(tuple(theirs.shape))
    (ours * tr.tensor(weights, device=ours.device)).sum().backward()
    (theirs * torch.tensor(weights)).sum().backward()
