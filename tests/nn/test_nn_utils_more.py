"""torch.nn.utils' parameter vectors (parameters_to_vector, vector_to_parameters) and the two halves of
clip_grad_norm_ (get_total_norm, clip_grads_with_norm_) against torch in float64."""
import math

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.nn.parity import assert_close, pair
from tinygrad_rnn.nn import Parameter
from tinygrad_rnn.nn.utils import (
    clip_grad_norm_,
    clip_grads_with_norm_,
    get_total_norm,
    parameters_to_vector,
    vector_to_parameters,
)

SHAPES = [(2, 3), (4,), (2, 1, 2)]


def parameters(torch, device, seed=0):
    rng = np.random.default_rng(seed)
    return [pair(torch, rng.standard_normal(shape), device) for shape in SHAPES]


def test_parameters_to_vector_matches_torch_and_carries_gradients(torch, device):
    params = parameters(torch, device)
    ours, theirs = parameters_to_vector(p for p, _ in params), torch.nn.utils.parameters_to_vector(
        t for _, t in params)
    assert_close(ours, theirs, "vector")
    weights = np.random.default_rng(1).standard_normal(tuple(theirs.shape))
    (ours * tr.Tensor(weights, dtype="float64", device=device)).sum().backward()
    (theirs * torch.tensor(weights)).sum().backward()
    for p, t in params:
        assert_close(p.grad, t.grad, "gradient through parameters_to_vector")


def test_vector_to_parameters_matches_torch_and_shares_the_vector(torch, device):
    params = parameters(torch, device)
    size = sum(math.prod(shape) for shape in SHAPES)
    values = np.arange(size + 3, dtype=np.float64)   # extra entries are left unused, as torch leaves them
    ours, theirs = tr.Tensor(values, dtype="float64", device=device), torch.tensor(values)
    vector_to_parameters(ours, [p for p, _ in params])
    torch.nn.utils.vector_to_parameters(theirs, [t for _, t in params])
    ours[0], theirs[0] = 99.0, 99.0   # the parameters hold vec's memory, in both
    for p, t in params:
        assert isinstance(p, tr.Tensor) and p.requires_grad
        assert_close(p, t, "parameter after vector_to_parameters")


def test_the_vector_round_trips_through_a_module():
    model = tr.nn.Linear(3, 2)
    vector = parameters_to_vector(model.parameters()).detach() * 2
    vector_to_parameters(vector, model.parameters())
    np.testing.assert_array_equal(parameters_to_vector(model.parameters()).numpy(), vector.numpy())


@pytest.mark.parametrize("bad", ["list", "short", "rows"])
def test_vector_to_parameters_refuses_what_torch_refuses(torch, bad):
    params = parameters(torch, "cpu")
    vec = {"list": [0.0] * 12, "short": np.zeros(5), "rows": np.zeros((2, 6))}[bad]
    make = (lambda lib: vec) if bad == "list" else (lambda lib: lib.tensor(vec, dtype=lib.float64))
    with pytest.raises(Exception) as theirs:
        torch.nn.utils.vector_to_parameters(make(torch), [t for _, t in params])
    with pytest.raises(type(theirs.value)) as ours:
        vector_to_parameters(make(tr), [p for p, _ in params])
    assert str(theirs.value).split(":")[0] in str(ours.value)


def test_parameters_to_vector_refuses_no_parameters(torch):
    with pytest.raises(ValueError, match="non-empty"):
        torch.nn.utils.parameters_to_vector([])
    with pytest.raises(ValueError, match="non-empty"):
        parameters_to_vector([])


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, "inf", 0, -math.inf])
def test_get_total_norm_matches_torch(torch, device, norm_type):
    params = parameters(torch, device, seed=2)
    ours = get_total_norm([p for p, _ in params], norm_type)
    theirs = torch.nn.utils.get_total_norm([t for _, t in params], norm_type)
    assert ours.shape == () and not ours.requires_grad and ours.device == params[0][0].device
    assert_close(ours, theirs, f"total norm of order {norm_type}")
    assert_close(get_total_norm(params[0][0], norm_type), torch.nn.utils.get_total_norm(params[0][1], norm_type),
                 "the norm of one tensor")


def test_get_total_norm_of_nothing_is_zero_and_a_nonfinite_norm_raises_on_request(torch):
    assert float(get_total_norm([])) == float(torch.nn.utils.get_total_norm([])) == 0.0
    message = "is non-finite, so it cannot be clipped"
    with pytest.raises(RuntimeError, match=message):
        torch.nn.utils.get_total_norm([torch.tensor([1.0, math.inf])], error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="is non-finite"):
        get_total_norm([tr.tensor([1.0, math.inf])], error_if_nonfinite=True)
    assert math.isinf(float(get_total_norm([tr.tensor([1.0, math.inf])])))


@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grads_with_norm_matches_torch_and_clip_grad_norm_is_both_halves(torch, device, max_norm):
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(shape) * 2 for shape in SHAPES]
    ours, theirs, whole = [], [], []
    for g in grads:
        ours.append(Parameter(np.zeros(g.shape), dtype="float64", device=device))
        ours[-1].grad = tr.Tensor(g.copy(), dtype="float64", device=device)
        whole.append(Parameter(np.zeros(g.shape), dtype="float64", device=device))
        whole[-1].grad = tr.Tensor(g.copy(), dtype="float64", device=device)
        theirs.append(torch.zeros(g.shape, dtype=torch.float64, requires_grad=True))
        theirs[-1].grad = torch.tensor(g)
    total = get_total_norm([p.grad for p in ours])
    assert clip_grads_with_norm_(ours, max_norm, total) is None
    torch.nn.utils.clip_grads_with_norm_(theirs, max_norm, torch.nn.utils.get_total_norm([t.grad for t in theirs]))
    returned = clip_grad_norm_(whole, max_norm)
    assert_close(returned, total, "clip_grad_norm_'s total")
    for p, w, t in zip(ours, whole, theirs):
        assert_close(p.grad, t.grad, "clipped gradient")
        assert_close(w.grad, t.grad, "clip_grad_norm_'s clipped gradient")


def test_clip_grads_with_norm_wants_the_total_as_a_tensor(torch):
    p = Parameter(np.zeros(2))
    p.grad = tr.ones(2)
    theirs = torch.zeros(2, requires_grad=True)
    theirs.grad = torch.ones(2)
    with pytest.raises(TypeError):
        torch.nn.utils.clip_grads_with_norm_([theirs], 1.0, 5.0)
    with pytest.raises(TypeError, match="'total_norm' must be a Tensor"):
        clip_grads_with_norm_([p], 1.0, 5.0)
