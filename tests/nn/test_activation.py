"""Activations (functions and modules) against torch in float64: each idiom run with both, values and gradients."""
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.nn.parity import assert_close, pair

# idiom -> (function of (library, x), input shape)
IDIOMS = {
    "F.relu": (lambda lib, x: lib.nn.functional.relu(x), (3, 4)),
    "F.relu(inplace=False)": (lambda lib, x: lib.nn.functional.relu(x, inplace=False), (5,)),
    "F.tanh": (lambda lib, x: lib.nn.functional.tanh(x), (2, 3)),
    "F.sigmoid": (lambda lib, x: lib.nn.functional.sigmoid(x), (2, 3)),
    "F.softmax(dim=-1)": (lambda lib, x: lib.nn.functional.softmax(x, dim=-1), (3, 5)),
    "F.softmax(x, 0)": (lambda lib, x: lib.nn.functional.softmax(x, 0), (3, 5)),
    "F.softmax(dim=1) 3-D": (lambda lib, x: lib.nn.functional.softmax(x, dim=1), (2, 3, 4)),
    "F.log_softmax(dim=-1)": (lambda lib, x: lib.nn.functional.log_softmax(x, dim=-1), (4, 6)),
    "F.log_softmax(dim=0)": (lambda lib, x: lib.nn.functional.log_softmax(x, dim=0), (4, 6)),
    "nn.ReLU()": (lambda lib, x: lib.nn.ReLU()(x), (3, 4)),
    "nn.ReLU(inplace=True)": (lambda lib, x: lib.nn.ReLU(inplace=True)(x * 1.0), (3, 4)),
    "nn.Tanh()": (lambda lib, x: lib.nn.Tanh()(x), (3, 4)),
    "nn.Sigmoid()": (lambda lib, x: lib.nn.Sigmoid()(x), (3, 4)),
    "nn.Identity()": (lambda lib, x: lib.nn.Identity()(x) * 2.0, (3, 4)),
    "nn.Identity(54, unused=1)": (lambda lib, x: lib.nn.Identity(54, unused=1)(x) * 2.0, (3,)),
    "nn.Softmax(dim=1)": (lambda lib, x: lib.nn.Softmax(dim=1)(x), (2, 5)),
    "nn.Softmax(-1) 3-D": (lambda lib, x: lib.nn.Softmax(-1)(x), (2, 3, 5)),
    "nn.LogSoftmax(dim=1)": (lambda lib, x: lib.nn.LogSoftmax(dim=1)(x), (2, 5)),
    "F.glu": (lambda lib, x: lib.nn.functional.glu(x), (3, 4)),
    "F.glu(x, 0) 3-D": (lambda lib, x: lib.nn.functional.glu(x, 0), (4, 3, 2)),
    "F.softmin(dim=1)": (lambda lib, x: lib.nn.functional.softmin(x, dim=1), (3, 5)),
    "F.softmin(x, 0, dtype=float64)": (lambda lib, x: lib.nn.functional.softmin(x, 0, dtype=lib.float64), (3, 5)),
    "F.threshold(x, 0.3, -2.0)": (lambda lib, x: lib.nn.functional.threshold(x, 0.3, -2.0), (4, 5)),
    "F.threshold at the threshold": (lambda lib, x: lib.nn.functional.threshold(x.round(), 1, 20), (4, 5)),
    "nn.GLU()": (lambda lib, x: lib.nn.GLU()(x), (2, 6)),
    "nn.GLU(dim=1)": (lambda lib, x: lib.nn.GLU(dim=1)(x), (2, 4, 3)),
    "nn.Softmin(dim=-1)": (lambda lib, x: lib.nn.Softmin(dim=-1)(x), (2, 5)),
    "nn.Threshold(0.1, 20)": (lambda lib, x: lib.nn.Threshold(0.1, 20)(x), (3, 4)),
    "nn.Sequential-free chain": (lambda lib, x: lib.nn.Tanh()(lib.nn.ReLU()(x) - 0.5), (4, 4)),
}


@pytest.mark.parametrize("idiom", list(IDIOMS))
def test_activation_idioms_match_torch(torch, device, rng, idiom):
    fn, shape = IDIOMS[idiom]
    ours_x, their_x = pair(torch, 3 * rng.standard_normal(shape), device)
    ours, theirs = fn(tr, ours_x), fn(torch, their_x)
    assert_close(ours, theirs, idiom)
    weights = rng.standard_normal(tuple(theirs.shape))
    (ours * tr.Tensor(weights, dtype="float64", device=device)).sum().backward()
    (theirs * torch.tensor(weights)).sum().backward()
    assert_close(ours_x.grad, their_x.grad, f"gradient of {idiom}")


@pytest.mark.parametrize("shape", [(5,), (2, 5), (2, 3, 4), (2, 3, 4, 2)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
def test_implicit_softmax_dim_is_torchs_legacy_choice_with_its_warning(torch, rng, shape, name):
    ours_x, their_x = pair(torch, rng.standard_normal(shape), "cpu", requires_grad=False)
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {name}") as ours_warning:
        ours = getattr(tr.nn.functional, name)(ours_x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(torch.nn.functional, name)(their_x)
    assert_close(ours, theirs, name)
    assert ours_warning[0].filename == __file__  # the warning points at the caller, as torch's does


def test_softmax_module_without_dim_warns_at_the_call(rng):
    x = tr.Tensor(rng.standard_normal((2, 3)))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax") as record:
        tr.nn.Softmax()(x)
    assert record[0].filename == __file__


def test_softmax_dtype_argument_casts_first(torch, rng):
    ours_x, their_x = pair(torch, rng.standard_normal((2, 3)), "cpu")
    ours = tr.nn.functional.softmax(ours_x.float(), dim=1, dtype=tr.float64)
    theirs = torch.nn.functional.softmax(their_x.float(), dim=1, dtype=torch.float64)
    assert ours.dtype == tr.float64 and theirs.dtype == torch.float64
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-6)


def test_module_reprs_read_like_torchs(torch):
    for ours, theirs in [(tr.nn.ReLU(), torch.nn.ReLU()), (tr.nn.ReLU(inplace=True), torch.nn.ReLU(inplace=True)),
                         (tr.nn.Softmax(dim=1), torch.nn.Softmax(dim=1)), (tr.nn.LogSoftmax(0), torch.nn.LogSoftmax(0)),
                         (tr.nn.Tanh(), torch.nn.Tanh()), (tr.nn.Identity(), torch.nn.Identity()),
                         (tr.nn.GLU(), torch.nn.GLU()), (tr.nn.GLU(1), torch.nn.GLU(1)),
                         (tr.nn.Softmin(), torch.nn.Softmin()), (tr.nn.Softmin(dim=1), torch.nn.Softmin(dim=1)),
                         (tr.nn.Threshold(0.1, 20), torch.nn.Threshold(0.1, 20)),
                         (tr.nn.Threshold(0.1, 20.0, True), torch.nn.Threshold(0.1, 20.0, True))]:
        assert repr(ours) == repr(theirs)
    assert list(tr.nn.Tanh().parameters()) == []


@pytest.mark.parametrize("shape, dim", [((), -1), ((3, 3), -1), ((2, 4), 2)])
def test_glu_refuses_what_torch_refuses(torch, shape, dim):
    with pytest.raises((RuntimeError, IndexError)) as theirs:
        torch.nn.functional.glu(torch.zeros(shape, dtype=torch.float64), dim)
    with pytest.raises(type(theirs.value)) as ours:
        tr.nn.functional.glu(tr.zeros(shape, dtype=tr.float64), dim)
    assert str(theirs.value) in str(ours.value)


def test_threshold_keeps_an_integer_input_integer(torch):
    ours = tr.nn.functional.threshold(tr.tensor([1, 2, 3]), 1, 7.0)
    theirs = torch.nn.functional.threshold(torch.tensor([1, 2, 3]), 1, 7.0)
    assert ours.dtype == tr.int64 and theirs.dtype == torch.int64
    assert ours.tolist() == theirs.tolist()
