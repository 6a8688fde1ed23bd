"""The margin, embedding and likelihood losses (functions and modules) against torch in float64: values and
the gradients of every floating operand, every reduction, the legacy size_average/reduce pair, and torch's
errors for bad shapes."""
import math
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.nn.parity import assert_close

REDUCTIONS = ["mean", "sum", "none"]


def signs(rng, shape):
    return rng.choice([-1.0, 1.0], size=shape)


def labels(rng, shape):
    """Targets of 1 and -1, with a 0 now and then: a value neither, which torch's formulas still define."""
    values = signs(rng, shape)
    values.flat[::5] = 0.0
    return values


# case -> (operands: rng -> {name: (array, differentiable)}, call: (library, operands, reduction) -> loss)
CASES = {
    "gaussian_nll_loss": (
        lambda rng: {"input": (rng.standard_normal((4, 3)), True), "target": (rng.standard_normal((4, 3)), True),
                     "var": (rng.uniform(0.2, 2.0, (4, 3)), True)},
        lambda lib, o, r: lib.nn.functional.gaussian_nll_loss(o["input"], o["target"], o["var"], reduction=r)),
    "gaussian_nll_loss full, var per row": (
        lambda rng: {"input": (rng.standard_normal((4, 3)), True), "target": (rng.standard_normal((4, 3)), True),
                     "var": (rng.uniform(0.2, 2.0, (4,)), True)},
        lambda lib, o, r: lib.nn.functional.gaussian_nll_loss(o["input"], o["target"], o["var"], full=True,
                                                              reduction=r)),
    "gaussian_nll_loss var (4, 1), some below eps": (
        lambda rng: {"input": (rng.standard_normal((4, 3)), True), "target": (rng.standard_normal((4, 3)), True),
                     "var": (np.array([[0.5], [1e-9], [0.0], [2.0]]), True)},
        lambda lib, o, r: lib.nn.functional.gaussian_nll_loss(o["input"], o["target"], o["var"], eps=1e-3,
                                                              reduction=r)),
    "gaussian_nll_loss var (1, 3, 1) of (2, 3, 4), target broadcast": (
        lambda rng: {"input": (rng.standard_normal((2, 3, 4)), True), "target": (rng.standard_normal((4,)), True),
                     "var": (rng.uniform(0.2, 2.0, (2, 1, 4)), True)},
        lambda lib, o, r: lib.nn.functional.gaussian_nll_loss(o["input"], o["target"], o["var"], reduction=r)),
    "gaussian_nll_loss var a float": (
        lambda rng: {"input": (rng.standard_normal((4, 3)), True), "target": (rng.standard_normal((4, 3)), True)},
        lambda lib, o, r: lib.nn.functional.gaussian_nll_loss(o["input"], o["target"], 0.7, reduction=r)),
    "poisson_nll_loss": (
        lambda rng: {"input": (rng.standard_normal((4, 3)), True), "target": (rng.poisson(2.0, (4, 3)) * 1.0, True)},
        lambda lib, o, r: lib.nn.functional.poisson_nll_loss(o["input"], o["target"], reduction=r)),
    "poisson_nll_loss full": (
        lambda rng: {"input": (rng.standard_normal((4, 3)), True),
                     "target": (np.array([0.0, 1.0, 1.5, 3.0, 7.0, 0.5] * 2).reshape(4, 3), False)},
        lambda lib, o, r: lib.nn.functional.poisson_nll_loss(o["input"], o["target"], full=True, reduction=r)),
    "poisson_nll_loss rates, eps, full, target broadcast": (
        lambda rng: {"input": (rng.uniform(0.1, 3.0, (4, 3)), True), "target": (rng.poisson(3.0, (3,)) * 1.0, False)},
        lambda lib, o, r: lib.nn.functional.poisson_nll_loss(o["input"], o["target"], log_input=False, full=True,
                                                             eps=1e-3, reduction=r)),
    "margin_ranking_loss": (
        lambda rng: {"input1": (rng.standard_normal(6), True), "input2": (rng.standard_normal(6), True),
                     "target": (signs(rng, 6), False)},
        lambda lib, o, r: lib.nn.functional.margin_ranking_loss(o["input1"], o["input2"], o["target"], margin=0.3,
                                                                reduction=r)),
    "margin_ranking_loss broadcast": (
        lambda rng: {"input1": (rng.standard_normal((3, 1)), True), "input2": (rng.standard_normal((3, 4)), True),
                     "target": (signs(rng, (1, 4)), False)},
        lambda lib, o, r: lib.nn.functional.margin_ranking_loss(o["input1"], o["input2"], o["target"], reduction=r)),
    "soft_margin_loss": (
        lambda rng: {"input": (3 * rng.standard_normal((4, 3)), True), "target": (signs(rng, (4, 3)), False)},
        lambda lib, o, r: lib.nn.functional.soft_margin_loss(o["input"], o["target"], reduction=r)),
    "hinge_embedding_loss": (
        lambda rng: {"input": (rng.uniform(0, 2, (4, 5)), True), "target": (labels(rng, (4, 5)), False)},
        lambda lib, o, r: lib.nn.functional.hinge_embedding_loss(o["input"], o["target"], margin=1.3, reduction=r)),
    "hinge_embedding_loss broadcast": (
        lambda rng: {"input": (rng.uniform(-1, 2, (4, 5)), True), "target": (signs(rng, (5,)), False)},
        lambda lib, o, r: lib.nn.functional.hinge_embedding_loss(o["input"], o["target"], reduction=r)),
    "cosine_embedding_loss": (
        lambda rng: {"input1": (rng.standard_normal((5, 4)), True), "input2": (rng.standard_normal((5, 4)), True),
                     "target": (labels(rng, 5), False)},
        lambda lib, o, r: lib.nn.functional.cosine_embedding_loss(o["input1"], o["input2"], o["target"],
                                                                  margin=-0.2, reduction=r)),
    "cosine_embedding_loss of a zero row": (
        lambda rng: {"input1": (np.vstack([np.zeros(4), rng.standard_normal((2, 4))]), True),
                     "input2": (rng.standard_normal((3, 4)), True), "target": (np.array([1.0, -1.0, 1.0]), False)},
        lambda lib, o, r: lib.nn.functional.cosine_embedding_loss(o["input1"], o["input2"], o["target"], reduction=r)),
    "cosine_embedding_loss 1-D, target 0-d": (
        lambda rng: {"input1": (rng.standard_normal(4), True), "input2": (rng.standard_normal(4), True),
                     "target": (np.array(-1.0), False)},
        lambda lib, o, r: lib.nn.functional.cosine_embedding_loss(o["input1"], o["input2"], o["target"], reduction=r)),
    "triplet_margin_loss": (
        lambda rng: {name: (rng.standard_normal((5, 4)), True) for name in ("anchor", "positive", "negative")},
        lambda lib, o, r: lib.nn.functional.triplet_margin_loss(o["anchor"], o["positive"], o["negative"],
                                                                margin=2.0, reduction=r)),
    "triplet_margin_loss p=1, eps, swap": (
        lambda rng: {name: (rng.standard_normal((5, 4)), True) for name in ("anchor", "positive", "negative")},
        lambda lib, o, r: lib.nn.functional.triplet_margin_loss(o["anchor"], o["positive"], o["negative"], p=1,
                                                                eps=1e-3, swap=True, reduction=r)),
    "triplet_margin_loss 1-D, p=3": (
        lambda rng: {name: (rng.standard_normal(4), True) for name in ("anchor", "positive", "negative")},
        lambda lib, o, r: lib.nn.functional.triplet_margin_loss(o["anchor"], o["positive"], o["negative"], p=3,
                                                                margin=3.0, reduction=r)),
    "multilabel_soft_margin_loss": (
        lambda rng: {"input": (3 * rng.standard_normal((4, 5)), True),
                     "target": (rng.integers(0, 2, (4, 5)) * 1.0, True)},
        lambda lib, o, r: lib.nn.functional.multilabel_soft_margin_loss(o["input"], o["target"], reduction=r)),
    "multilabel_soft_margin_loss weight": (
        lambda rng: {"input": (3 * rng.standard_normal((4, 5)), True),
                     "target": (rng.integers(0, 2, (4, 5)) * 1.0, False), "weight": (rng.uniform(0.1, 2, 5), True)},
        lambda lib, o, r: lib.nn.functional.multilabel_soft_margin_loss(o["input"], o["target"], weight=o["weight"],
                                                                        reduction=r)),
    "multi_margin_loss": (
        lambda rng: {"input": (rng.standard_normal((6, 4)), True), "target": (rng.integers(0, 4, 6), False)},
        lambda lib, o, r: lib.nn.functional.multi_margin_loss(o["input"], o["target"], reduction=r)),
    "multi_margin_loss p=2, margin, weight": (
        lambda rng: {"input": (rng.standard_normal((6, 4)), True), "target": (rng.integers(0, 4, 6), False),
                     "weight": (rng.uniform(0.1, 2, 4), False)},  # torch has no gradient for it
        lambda lib, o, r: lib.nn.functional.multi_margin_loss(o["input"], o["target"], p=2, margin=0.7,
                                                              weight=o["weight"], reduction=r)),
    "multi_margin_loss 1-D": (
        lambda rng: {"input": (rng.standard_normal(5), True), "target": (np.array(2), False)},
        lambda lib, o, r: lib.nn.functional.multi_margin_loss(o["input"], o["target"], reduction=r)),
    "multi_margin_loss 1-D, target (1,)": (
        lambda rng: {"input": (rng.standard_normal(5), True), "target": (np.array([4]), False)},
        lambda lib, o, r: lib.nn.functional.multi_margin_loss(o["input"], o["target"], p=2, reduction=r)),
    # the modules, with their options
    "nn.GaussianNLLLoss(full=True, eps=1e-2)": (
        lambda rng: {"input": (rng.standard_normal((4, 3)), True), "target": (rng.standard_normal((4, 3)), True),
                     "var": (rng.uniform(0.0, 0.1, (4, 1)), True)},
        lambda lib, o, r: lib.nn.GaussianNLLLoss(full=True, eps=1e-2, reduction=r)(o["input"], o["target"], o["var"])),
    "nn.PoissonNLLLoss(log_input=False, full=True)": (
        lambda rng: {"input": (rng.uniform(0.1, 3.0, (4, 3)), True), "target": (rng.poisson(3.0, (4, 3)) * 1.0, False)},
        lambda lib, o, r: lib.nn.PoissonNLLLoss(log_input=False, full=True, reduction=r)(o["input"], o["target"])),
    "nn.MarginRankingLoss(margin=0.5)": (
        lambda rng: {"input1": (rng.standard_normal(6), True), "input2": (rng.standard_normal(6), True),
                     "target": (signs(rng, 6), False)},
        lambda lib, o, r: lib.nn.MarginRankingLoss(margin=0.5, reduction=r)(o["input1"], o["input2"], o["target"])),
    "nn.SoftMarginLoss()": (
        lambda rng: {"input": (rng.standard_normal((4, 3)), True), "target": (signs(rng, (4, 3)), False)},
        lambda lib, o, r: lib.nn.SoftMarginLoss(reduction=r)(o["input"], o["target"])),
    "nn.HingeEmbeddingLoss(margin=0.5)": (
        lambda rng: {"input": (rng.uniform(0, 1, (4, 5)), True), "target": (labels(rng, (4, 5)), False)},
        lambda lib, o, r: lib.nn.HingeEmbeddingLoss(margin=0.5, reduction=r)(o["input"], o["target"])),
    "nn.CosineEmbeddingLoss(margin=0.1)": (
        lambda rng: {"input1": (rng.standard_normal((5, 4)), True), "input2": (rng.standard_normal((5, 4)), True),
                     "target": (signs(rng, 5), False)},
        lambda lib, o, r: lib.nn.CosineEmbeddingLoss(margin=0.1, reduction=r)(o["input1"], o["input2"], o["target"])),
    "nn.TripletMarginLoss(margin=1.5, p=1.5, swap=True)": (
        lambda rng: {name: (rng.standard_normal((5, 4)), True) for name in ("anchor", "positive", "negative")},
        lambda lib, o, r: lib.nn.TripletMarginLoss(margin=1.5, p=1.5, swap=True, reduction=r)(
            o["anchor"], o["positive"], o["negative"])),
    "nn.MultiLabelSoftMarginLoss(weight)": (
        lambda rng: {"input": (rng.standard_normal((4, 5)), True), "target": (rng.integers(0, 2, (4, 5)) * 1.0, False),
                     "weight": (rng.uniform(0.1, 2, 5), False)},
        lambda lib, o, r: lib.nn.MultiLabelSoftMarginLoss(weight=o["weight"], reduction=r)(o["input"], o["target"])),
    "nn.MultiMarginLoss(p=2, margin=2.0, weight)": (
        lambda rng: {"input": (rng.standard_normal((6, 4)), True), "target": (rng.integers(0, 4, 6), False),
                     "weight": (rng.uniform(0.1, 2, 4), False)},
        lambda lib, o, r: lib.nn.MultiMarginLoss(p=2, margin=2.0, weight=o["weight"], reduction=r)(
            o["input"], o["target"])),
}


def both(torch, operands, device):
    """(ours, theirs): {name: tensor} of the same values; floating ones in float64, with grad if asked."""
    ours, theirs = {}, {}
    for name, (array, differentiable) in operands.items():
        array = np.asarray(array)
        floating = array.dtype.kind == "f"
        ours[name] = tr.tensor(array, dtype=tr.float64 if floating else tr.int64, device=device,
                               requires_grad=differentiable)
        theirs[name] = torch.tensor(array, dtype=torch.float64 if floating else torch.int64,
                                    requires_grad=differentiable)
    return ours, theirs


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", list(CASES))
def test_losses_match_torch(torch, device, case, reduction):
    make, call = CASES[case]
    rng = np.random.default_rng(len(case))
    ours, theirs = both(torch, make(rng), device)
    loss, their_loss = call(tr, ours, reduction), call(torch, theirs, reduction)
    assert_close(loss, their_loss, f"{case}, reduction {reduction}")
    weights = rng.standard_normal(tuple(their_loss.shape))
    (loss * tr.Tensor(weights, dtype="float64", device=device)).sum().backward()
    (their_loss * torch.tensor(weights)).sum().backward()
    for name, tensor in theirs.items():
        if tensor.requires_grad:   # relative too: a zero row's cosine has gradients of 1e5
            np.testing.assert_allclose(ours[name].grad.numpy(), tensor.grad.numpy(), rtol=1e-8, atol=1e-9,
                                       err_msg=f"gradient of {name} in {case}, reduction {reduction}")


def test_gradients_of_gradients_come_from_the_ops(torch):
    """Each loss is made of ops, so its gradient is differentiable too: one check, of one with a kink."""
    rng = np.random.default_rng(5)
    ours, theirs = both(torch, {name: (rng.standard_normal((6, 4)), True)
                                for name in ("anchor", "positive", "negative")}, "cpu")
    results = []
    for lib, o in ((tr, ours), (torch, theirs)):
        loss = lib.nn.functional.triplet_margin_loss(o["anchor"], o["positive"], o["negative"], swap=True)
        (g,) = lib.autograd.grad(loss, o["anchor"], create_graph=True)
        (g * g).sum().backward()
        results.append(o["positive"].grad)
    assert_close(*results, "gradient of the squared gradient")


LEGACY = {
    "PoissonNLLLoss": lambda lib, **kw: lib.nn.PoissonNLLLoss(**kw)(lib.tensor([0.5, -1.0, 2.0]),
                                                                   lib.tensor([1.0, 0.0, 3.0])),
    "MarginRankingLoss": lambda lib, **kw: lib.nn.MarginRankingLoss(**kw)(
        lib.tensor([0.5, -1.0]), lib.tensor([0.1, 0.2]), lib.tensor([1.0, 1.0])),
    "SoftMarginLoss": lambda lib, **kw: lib.nn.SoftMarginLoss(**kw)(lib.tensor([0.5, -1.0]), lib.tensor([1.0, -1.0])),
    "HingeEmbeddingLoss": lambda lib, **kw: lib.nn.HingeEmbeddingLoss(**kw)(lib.tensor([0.5, 0.2]),
                                                                           lib.tensor([1.0, -1.0])),
    "CosineEmbeddingLoss": lambda lib, **kw: lib.nn.CosineEmbeddingLoss(**kw)(
        lib.tensor([[1.0, 2.0], [0.5, -1.0]]), lib.tensor([[0.3, 2.0], [1.0, 1.0]]), lib.tensor([1.0, -1.0])),
    "TripletMarginLoss": lambda lib, **kw: lib.nn.TripletMarginLoss(**kw)(
        lib.tensor([[1.0, 2.0], [0.5, -1.0]]), lib.tensor([[0.3, 2.0], [1.0, 1.0]]), lib.tensor([[0.0, 1.0], [2.0, 1.0]])),
    "MultiLabelSoftMarginLoss": lambda lib, **kw: lib.nn.MultiLabelSoftMarginLoss(**kw)(
        lib.tensor([[1.0, 2.0], [0.5, -1.0]]), lib.tensor([[0.0, 1.0], [1.0, 1.0]])),
    "MultiMarginLoss": lambda lib, **kw: lib.nn.MultiMarginLoss(**kw)(lib.tensor([[1.0, 2.0], [0.5, -1.0]]),
                                                                     lib.tensor([0, 1])),
}


@pytest.mark.parametrize("legacy", [{"size_average": False}, {"reduce": False}, {"size_average": True, "reduce": True}])
@pytest.mark.parametrize("module", list(LEGACY))
def test_legacy_size_average_and_reduce_choose_the_reduction_as_torch(torch, module, legacy):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = LEGACY[module](torch, **legacy)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        ours = LEGACY[module](tr, **legacy)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, err_msg=f"{module} {legacy}")


def f64(*shape):
    return np.zeros(shape)


def i64(*values):
    return np.array(values, dtype=np.int64)


# case -> (function of (library, its tensors)), arrays): each raises in torch, and in ours with the same type
BAD = {
    "gaussian var of a wrong size": ("gaussian_nll_loss", (f64(3, 4), f64(3, 4), np.ones((2, 4)))),
    "gaussian var (1, 1) of (3, 4)": ("gaussian_nll_loss", (f64(3, 4), f64(3, 4), np.ones((1, 1)))),
    "gaussian negative var": ("gaussian_nll_loss", (f64(3, 4), f64(3, 4), -np.ones((3, 4)))),
    "poisson shapes": ("poisson_nll_loss", (f64(3, 4), f64(3))),
    "margin ranking dims": ("margin_ranking_loss", (f64(3), f64(3), f64(3, 1))),
    "margin ranking shapes": ("margin_ranking_loss", (f64(3), f64(4), f64(3))),
    "soft margin shapes": ("soft_margin_loss", (f64(3, 4), f64(3))),
    "hinge embedding shapes": ("hinge_embedding_loss", (f64(3, 4), f64(3))),
    "cosine embedding 2-D target": ("cosine_embedding_loss", (f64(3, 4), f64(3, 4), f64(3, 1))),
    "cosine embedding 1-D inputs, 1-D target": ("cosine_embedding_loss", (f64(4), f64(4), f64(3))),
    "cosine embedding rows": ("cosine_embedding_loss", (f64(3, 4), f64(3, 4), f64(2))),
    "triplet dims": ("triplet_margin_loss", (f64(3, 4), f64(3, 4), f64(4))),
    "triplet shapes": ("triplet_margin_loss", (f64(3, 4), f64(3, 4), f64(3, 5))),
    "multilabel shapes": ("multilabel_soft_margin_loss", (f64(3, 4), f64(3, 3))),
    "multi margin target size": ("multi_margin_loss", (f64(3, 4), i64(0, 1))),
    "multi margin target out of range": ("multi_margin_loss", (f64(3, 4), i64(0, 4, 1))),
    "multi margin 3-D input": ("multi_margin_loss", (f64(2, 3, 4), i64(0, 1))),
    "multi margin float target": ("multi_margin_loss", (f64(3, 4), f64(3))),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_shapes_are_refused_as_torch_refuses_them(torch, case):
    name, arrays = BAD[case]
    with pytest.raises(Exception) as theirs:
        getattr(torch.nn.functional, name)(*(torch.tensor(a) for a in arrays))
    with pytest.raises(type(theirs.value)):
        getattr(tr.nn.functional, name)(*(tr.tensor(a) for a in arrays))


@pytest.mark.parametrize("call", [
    lambda lib: lib.nn.functional.triplet_margin_loss(*[lib.zeros(2, 3)] * 3, margin=0),
    lambda lib: lib.nn.TripletMarginLoss(margin=-1.0),
    lambda lib: lib.nn.functional.multi_margin_loss(lib.zeros(2, 3), lib.tensor([0, 1]), p=3),
    lambda lib: lib.nn.MultiMarginLoss(p=3),
    lambda lib: lib.nn.functional.multi_margin_loss(lib.zeros(2, 3), lib.tensor([0, 1]), weight=lib.ones(1, 3)),
    lambda lib: lib.nn.functional.multi_margin_loss(lib.zeros(2, 3), lib.tensor([0, 1]), weight=lib.ones(2)),
    lambda lib: lib.nn.functional.gaussian_nll_loss(lib.zeros(2), lib.zeros(2), -1.0),
    lambda lib: lib.nn.functional.soft_margin_loss(lib.zeros(2), lib.zeros(2), reduction="average"),
    lambda lib: lib.nn.functional.gaussian_nll_loss(lib.zeros(2), lib.zeros(2), lib.ones(2), reduction="average"),
], ids=["triplet margin 0", "TripletMarginLoss margin", "multi margin p", "MultiMarginLoss p", "multi margin 2-D weight",
        "multi margin weight size", "gaussian negative float var", "a bad reduction", "gaussian bad reduction"])
def test_bad_arguments_are_refused_as_torch_refuses_them(torch, call):
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(type(theirs.value)):
        call(tr)


def test_module_options_and_reprs():
    loss = tr.nn.TripletMarginLoss(margin=0.5, p=1, swap=True)
    assert (loss.margin, loss.p, loss.swap, loss.reduction) == (0.5, 1, True, "mean")
    assert repr(tr.nn.SoftMarginLoss()) == "SoftMarginLoss()"
    assert repr(tr.nn.HingeEmbeddingLoss(reduction="sum")) == "HingeEmbeddingLoss(reduction='sum')"
    assert math.isclose(float(tr.nn.GaussianNLLLoss()(tr.zeros(2), tr.zeros(2), tr.ones(2))), 0.0)
