"""multilabel_margin_loss and triplet_margin_with_distance_loss (functions and modules) against torch in
float64: values and gradients for every reduction, torch's gradient at the hinge's kink, and its errors."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.nn.parity import assert_close

REDUCTIONS = ["mean", "sum", "none"]
# rows of class indices: -1 ends a row's targets, a repeated target counts again, all classes or none
MULTILABEL_TARGETS = np.array([[3, 0, -1, 1, 2], [3, 3, -1, 4, 4], [-1, 0, 0, 0, 0], [0, 1, 2, 3, 4]])


def check_against_torch(torch, rng, call, arrays):
    """call(library, *tensors) on both sides: the values and the gradient of every array."""
    ours = [tr.tensor(a, dtype="float64", requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    loss, their_loss = call(tr, *ours), call(torch, *theirs)
    np.testing.assert_allclose(loss.numpy(), their_loss.detach().numpy(), rtol=1e-13, atol=1e-15)
    g = rng.standard_normal(tuple(their_loss.shape))
    loss.backward(tr.tensor(g))
    their_loss.backward(torch.tensor(g))
    for k, (mine, other) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(mine.grad.numpy(), other.grad.numpy(), rtol=1e-12, atol=1e-15, err_msg=f"input {k}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("rows", [slice(None), 0, 3])
def test_multilabel_margin_loss_matches_torch(torch, rng, reduction, rows):
    x, y = rng.standard_normal((4, 5))[rows], MULTILABEL_TARGETS[rows]
    check_against_torch(torch, rng, lambda lib, x: lib.nn.functional.multilabel_margin_loss(
        x, lib.tensor(y), reduction=reduction), [x])
    module = tr.nn.MultiLabelMarginLoss(reduction=reduction)
    assert_close(module(tr.tensor(x), tr.tensor(y)),
                 torch.nn.MultiLabelMarginLoss(reduction=reduction)(torch.tensor(x), torch.tensor(y)), "module")


def test_multilabel_margin_gradient_at_the_kink_is_zero(torch):
    x = tr.tensor([[0.0, 1.0, 0.5]], dtype="float64", requires_grad=True)  # 1 - x[1] + x[0] is exactly 0
    tr.nn.functional.multilabel_margin_loss(x, tr.tensor([[1, -1, 0]]), reduction="sum").backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, -1 / 3, 1 / 3]])


@pytest.mark.parametrize("input, target, error, words", [
    (tr.zeros(2, 4), tr.tensor([[1, 0, -1]]), RuntimeError, "inconsistent target size: \\[1, 3\\]"),
    (tr.zeros(1, 4), tr.tensor([[4, 0, -1, 1]]), RuntimeError, "'target' is out of range"),
    (tr.zeros(1, 4), tr.tensor([[-2, 0, -1, 1]]), RuntimeError, "'target' is out of range"),
    (tr.zeros(1, 4), tr.tensor([[1, 0, -1, 1]], dtype="int32"), RuntimeError, "int64"),
    (tr.zeros(1, 1, 4), tr.tensor([[[1, 0, -1, 1]]]), RuntimeError, "vector or matrix"),
])
def test_multilabel_margin_loss_refuses_bad_targets(input, target, error, words):
    with pytest.raises(error, match=words):
        tr.nn.functional.multilabel_margin_loss(input, target)


DISTANCES = {
    "pairwise (default)": None,
    "cosine": lambda lib: lambda a, b: 1 - lib.nn.functional.cosine_similarity(a, b),
    "L1 module": lambda lib: lib.nn.PairwiseDistance(p=1.0),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("distance", DISTANCES)
def test_triplet_margin_with_distance_loss_matches_torch(torch, rng, distance, swap, reduction):
    make = DISTANCES[distance]

    def call(lib, anchor, positive, negative):
        return lib.nn.functional.triplet_margin_with_distance_loss(
            anchor, positive, negative, distance_function=make and make(lib), margin=1.5, swap=swap,
            reduction=reduction)

    check_against_torch(torch, rng, call, [rng.standard_normal((4, 3)) for _ in range(3)])


def test_triplet_margin_with_distance_loss_module_and_unbatched(torch, rng):
    default = "TripletMarginWithDistanceLoss(\n  (distance_function): PairwiseDistance()\n)"
    assert repr(tr.nn.TripletMarginWithDistanceLoss()) == default  # the distance a submodule, as torch's
    module = tr.nn.TripletMarginWithDistanceLoss(margin=2.0, swap=True, reduction="none")
    theirs = torch.nn.TripletMarginWithDistanceLoss(margin=2.0, swap=True, reduction="none")
    for shapes in [((3,), (3,), (3,)), ((4, 3), (1, 3), (4, 3))]:
        arrays = [rng.standard_normal(s) for s in shapes]
        assert_close(module(*map(tr.tensor, arrays)), theirs(*map(torch.tensor, arrays)), f"shapes {shapes}")


def test_triplet_margin_with_distance_loss_errors():
    a = tr.zeros(3, 4)
    with pytest.raises(ValueError, match="margin must be greater than 0, got 0"):
        tr.nn.functional.triplet_margin_with_distance_loss(a, a, a, margin=0)
    with pytest.raises(ValueError, match="TripletMarginWithDistanceLoss: expected margin to be greater than 0"):
        tr.nn.TripletMarginWithDistanceLoss(margin=-1)
    with pytest.raises(RuntimeError, match="anchor 2D, positive 1D, and negative 2D"):
        tr.nn.functional.triplet_margin_with_distance_loss(a, a[0], a)
    with pytest.raises(ValueError, match="reduction"):
        tr.nn.functional.triplet_margin_with_distance_loss(a, a, a, reduction="batchmean")
    with pytest.raises(TypeError):
        tr.nn.functional.triplet_margin_with_distance_loss(a, a, a, None)  # the options are keyword-only
