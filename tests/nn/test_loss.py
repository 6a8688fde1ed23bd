"""Losses (functions and modules) against torch in float64: weight, ignore_index, label_smoothing, reductions,
probability targets and the legacy size_average/reduce pair, values and input gradients."""
import itertools
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.nn.parity import assert_close, pair

# (input shape, target shape): (N, C), (C,), (N, C, d1), (N, C, d1, d2)
SHAPES = [((6, 5), (6,)), ((5,), ()), ((3, 5, 4), (3, 4)), ((2, 5, 3, 2), (2, 3, 2))]
OPTIONS = [
    {},
    {"weight": True},
    {"ignore": True},
    {"label_smoothing": 0.2},
    {"label_smoothing": 0.3, "ignore": True},
    {"label_smoothing": 0.1, "weight": True, "ignore": True},
    {"label_smoothing": 1.0, "weight": True},
]
REDUCTIONS = ["mean", "sum", "none"]
IGNORED_CLASS = 3


def cases(shapes, options):
    """Every option with every reduction on the first shape; on the others, the reductions take turns."""
    full = [(shapes[0], o, r) for o in options for r in REDUCTIONS]
    return full + [(s, o, REDUCTIONS[k % 3]) for k, (s, o) in enumerate(itertools.product(shapes[1:], options))]


def class_targets(rng, input_shape, target_shape, ignore):
    n_classes = input_shape[1 if len(input_shape) > 1 else 0]
    target = rng.integers(0, n_classes, size=target_shape)
    if ignore and target.ndim:
        target.flat[::3] = IGNORED_CLASS  # a real class too: ignored only by ignore_index
    return target


def arguments(torch, rng, n_classes, options, device):
    """(ours, theirs) keyword arguments for the options of one case."""
    ours, theirs = {}, {}
    if options.get("weight"):
        w = rng.uniform(0.2, 2.0, n_classes)
        ours["weight"], theirs["weight"] = tr.Tensor(w, dtype="float64", device=device), torch.tensor(w)
    if options.get("ignore"):
        ours["ignore_index"] = theirs["ignore_index"] = IGNORED_CLASS
    if "label_smoothing" in options:
        ours["label_smoothing"] = theirs["label_smoothing"] = options["label_smoothing"]
    return ours, theirs


def check_value_and_input_gradient(torch, rng, ours, theirs, x, y, what):
    assert ours.shape == tuple(theirs.shape), what
    assert_close(ours, theirs, what)
    g = rng.standard_normal(ours.shape)
    ours.backward(tr.Tensor(g, dtype="float64", device=x.device))
    theirs.backward(torch.tensor(g))
    assert_close(x.grad, y.grad, f"input gradient of {what}")


@pytest.mark.parametrize("shapes,options,reduction", cases(SHAPES, OPTIONS), ids=str)
def test_cross_entropy_with_class_indices_matches_torch(torch, device, rng, shapes, options, reduction):
    input_shape, target_shape = shapes
    n_classes = input_shape[1 if len(input_shape) > 1 else 0]
    target = class_targets(rng, input_shape, target_shape, options.get("ignore"))
    ours_kw, their_kw = arguments(torch, rng, n_classes, options, device)
    x, y = pair(torch, 3 * rng.standard_normal(input_shape), device)
    ours = tr.nn.functional.cross_entropy(x, tr.Tensor(target, device=device), reduction=reduction, **ours_kw)
    theirs = torch.nn.functional.cross_entropy(y, torch.from_numpy(target), reduction=reduction, **their_kw)
    check_value_and_input_gradient(torch, rng, ours, theirs, x, y, f"cross_entropy {shapes} {options}")


@pytest.mark.parametrize("shapes,options,reduction", cases(SHAPES[::-1], [
    {}, {"weight": True}, {"label_smoothing": 0.25}, {"label_smoothing": 0.1, "weight": True}]), ids=str)
def test_cross_entropy_with_class_probabilities_matches_torch(torch, device, rng, shapes, options, reduction):
    input_shape = shapes[0]
    class_dim = 1 if len(input_shape) > 1 else 0
    probabilities = rng.dirichlet(np.ones(input_shape[class_dim]), size=shapes[1])
    probabilities = np.moveaxis(probabilities, -1, class_dim) if len(input_shape) > 1 else probabilities
    ours_kw, their_kw = arguments(torch, rng, input_shape[class_dim], options, device)
    x, y = pair(torch, rng.standard_normal(input_shape), device)
    t, u = pair(torch, probabilities, device)
    ours = tr.nn.functional.cross_entropy(x, t, reduction=reduction, **ours_kw)
    theirs = torch.nn.functional.cross_entropy(y, u, reduction=reduction, **their_kw)
    check_value_and_input_gradient(torch, rng, ours, theirs, x, y, f"cross_entropy probabilities {options}")
    assert_close(t.grad, u.grad, "target gradient")


@pytest.mark.parametrize("shapes,options,reduction", cases(SHAPES[2:] + SHAPES[:2], [
    {}, {"weight": True}, {"ignore": True}, {"weight": True, "ignore": True}]), ids=str)
def test_nll_loss_matches_torch(torch, device, rng, shapes, options, reduction):
    input_shape, target_shape = shapes
    class_dim = 1 if len(input_shape) > 1 else 0
    target = class_targets(rng, input_shape, target_shape, options.get("ignore"))
    ours_kw, their_kw = arguments(torch, rng, input_shape[class_dim], options, device)
    log_probs = np.log(np.moveaxis(rng.dirichlet(np.ones(input_shape[class_dim]), size=target_shape), -1, class_dim))
    x, y = pair(torch, np.ascontiguousarray(log_probs), device)  # torch's nll_loss2d backward needs contiguous
    ours = tr.nn.functional.nll_loss(x, tr.Tensor(target, device=device), reduction=reduction, **ours_kw)
    theirs = torch.nn.functional.nll_loss(y, torch.from_numpy(target), reduction=reduction, **their_kw)
    check_value_and_input_gradient(torch, rng, ours, theirs, x, y, f"nll_loss {options}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_with_weight_matches_torch(torch, device, rng, reduction):
    x, y = pair(torch, rng.standard_normal((4, 3)), device)
    w = rng.uniform(0, 2, (4, 3))
    target = rng.standard_normal((4, 3))
    ours = tr.nn.functional.mse_loss(x, tr.Tensor(target, dtype="float64", device=device), reduction=reduction,
                                     weight=tr.Tensor(w, dtype="float64", device=device))
    theirs = torch.nn.functional.mse_loss(y, torch.tensor(target), reduction=reduction, weight=torch.tensor(w))
    check_value_and_input_gradient(torch, rng, ours, theirs, x, y, "weighted mse_loss")


# idiom: a loss module (or a call with legacy arguments) built the same way with both libraries
MODULES = {
    "CrossEntropyLoss()": lambda lib: lib.nn.CrossEntropyLoss(),
    "CrossEntropyLoss(reduction='sum')": lambda lib: lib.nn.CrossEntropyLoss(reduction="sum"),
    "CrossEntropyLoss(ignore_index=3, label_smoothing=0.2)":
        lambda lib: lib.nn.CrossEntropyLoss(ignore_index=3, label_smoothing=0.2),
    "CrossEntropyLoss(weight, ignore_index, label_smoothing, none)":
        lambda lib: lib.nn.CrossEntropyLoss(weight=lib.tensor(np.linspace(0.5, 1.5, 5)), ignore_index=3,
                                            reduction="none", label_smoothing=0.1),
    "CrossEntropyLoss(size_average=False)": lambda lib: lib.nn.CrossEntropyLoss(size_average=False),
    "CrossEntropyLoss(reduce=False)": lambda lib: lib.nn.CrossEntropyLoss(reduce=False),
    "NLLLoss()": lambda lib: (lambda x, t: lib.nn.NLLLoss()(lib.nn.functional.log_softmax(x, dim=1), t)),
    "NLLLoss(weight, ignore_index)":
        lambda lib: (lambda x, t: lib.nn.NLLLoss(weight=lib.tensor(np.arange(1.0, 6.0)), ignore_index=3)(
            lib.nn.LogSoftmax(dim=1)(x), t)),
    "F.cross_entropy(x, t, w, None, 3, None, 'sum', 0.1)":
        lambda lib: (lambda x, t: lib.nn.functional.cross_entropy(x, t, lib.tensor(np.ones(5) * 2), None, 3, None,
                                                                  "sum", 0.1)),
    "F.nll_loss(size_average=False, reduce=True)":
        lambda lib: (lambda x, t: lib.nn.functional.nll_loss(x, t, size_average=False, reduce=True)),
}


@pytest.mark.parametrize("idiom", list(MODULES))
def test_loss_module_idioms_match_torch(torch, rng, idiom):
    target = class_targets(rng, (8, 5), (8,), True)
    x, y = pair(torch, rng.standard_normal((8, 5)), "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch and we both warn about size_average / reduce
        ours = MODULES[idiom](tr)(x, tr.tensor(target))
        theirs = MODULES[idiom](torch)(y, torch.from_numpy(target))
    check_value_and_input_gradient(torch, rng, ours, theirs, x, y, idiom)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_module_matches_torch(torch, rng, reduction):
    x, y = pair(torch, rng.standard_normal((3, 4)), "cpu")
    target = rng.standard_normal((3, 4))
    ours = tr.nn.MSELoss(reduction=reduction)(x, tr.tensor(target))
    theirs = torch.nn.MSELoss(reduction=reduction)(y, torch.tensor(target))
    check_value_and_input_gradient(torch, rng, ours, theirs, x, y, "MSELoss")


def test_legacy_reduction_arguments_warn_as_torchs_do():
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        loss = tr.nn.MSELoss(size_average=False)
    assert loss.reduction == "sum"


def test_everything_ignored_gives_nan_as_torch(torch):
    x, y = pair(torch, np.zeros((2, 3)), "cpu")
    target = np.array([1, 1])
    with np.errstate(all="ignore"):
        ours = tr.nn.functional.cross_entropy(x, target, ignore_index=1, label_smoothing=0.1)
    theirs = torch.nn.functional.cross_entropy(y, torch.from_numpy(target), ignore_index=1, label_smoothing=0.1)
    assert np.isnan(ours.item()) and np.isnan(theirs.item())


def test_loss_argument_errors_name_the_problem():
    logits = tr.Tensor(np.zeros((4, 3)), requires_grad=True)
    target = np.zeros(4, dtype=np.int64)
    with pytest.raises(ValueError, match=r"weight tensor should be defined either for all 3 classes.*\(2,\)"):
        tr.nn.functional.cross_entropy(logits, target, weight=np.ones(2))
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0"):
        tr.nn.functional.cross_entropy(logits, target, label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0"):
        tr.nn.CrossEntropyLoss(label_smoothing=-0.1)
    with pytest.raises(TypeError, match=r"class probabilities of the input's shape \(4, 3\).*\(4, 2\)"):
        tr.nn.functional.cross_entropy(logits, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"expected logits \(N, C, d1, ...\) and target \(N, d1, ...\)"):
        tr.nn.functional.cross_entropy(tr.Tensor(np.zeros((2, 3, 4))), np.zeros((2, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="weights and input must have the same size"):
        tr.nn.functional.mse_loss(logits, np.zeros((4, 3)), weight=np.ones(3))
    with pytest.raises(ValueError, match="reduction must be one of"):
        tr.nn.NLLLoss(reduction="avg")


# ----------------------------------------------------------------------------- pointwise losses
# name -> (loss from (library, input, target, extra tensors), inputs made from a generator); the targets
# are differentiated too where torch differentiates them
def _regression(rng):
    x, y = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    y[0, 0], y[1, 1], y[1, 2] = x[0, 0], x[1, 1] + 0.5, x[1, 2] - 1.0  # on the kinks of l1, smooth_l1, huber
    return x, y, ()


def _probabilities(rng):
    return rng.uniform(0.01, 0.99, (4, 5)), rng.random((4, 5)), (rng.random(5),)


def _logits(rng):
    x = np.concatenate([3 * rng.standard_normal((3, 5)), [[0.0, 0.0, 40.0, -40.0, 800.0]]])
    return x, rng.random((4, 5)), (rng.random(5), 3 * rng.random(5))


def _distributions(rng):
    return np.log(rng.dirichlet(np.ones(5), 4)), rng.dirichlet(np.ones(5), 4), ()


POINTWISE = {
    "l1_loss": (lambda F, x, y, r: F.l1_loss(x, y, reduction=r), _regression),
    "smooth_l1_loss(beta=0.5)": (lambda F, x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.5), _regression),
    "smooth_l1_loss(beta=0)": (lambda F, x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.0), _regression),
    "smooth_l1_loss()": (lambda F, x, y, r: F.smooth_l1_loss(x, y, reduction=r), _regression),
    "huber_loss(delta=0.5)": (lambda F, x, y, r: F.huber_loss(x, y, reduction=r, delta=0.5), _regression),
    "huber_loss(delta=2)": (lambda F, x, y, r: F.huber_loss(x, y, reduction=r, delta=2.0), _regression),
    "binary_cross_entropy": (lambda F, x, y, r, w: F.binary_cross_entropy(x, y, reduction=r), _probabilities),
    "binary_cross_entropy(weight)":
        (lambda F, x, y, r, w: F.binary_cross_entropy(x, y, weight=w, reduction=r), _probabilities),
    "binary_cross_entropy_with_logits":
        (lambda F, x, y, r, w, pw: F.binary_cross_entropy_with_logits(x, y, reduction=r), _logits),
    "binary_cross_entropy_with_logits(weight, pos_weight)":
        (lambda F, x, y, r, w, pw: F.binary_cross_entropy_with_logits(x, y, weight=w, reduction=r, pos_weight=pw),
         _logits),
    "kl_div": (lambda F, x, y, r: F.kl_div(x, y, reduction=r), _distributions),
    "kl_div(log_target)": (lambda F, x, y, r: F.kl_div(x, y.log(), reduction=r, log_target=True), _distributions),
}


@pytest.mark.parametrize("name,reduction", [(name, r) for name in POINTWISE
                                             for r in REDUCTIONS + ["batchmean"] * name.startswith("kl_div")])
def test_pointwise_loss_matches_torch(torch, device, rng, name, reduction):
    loss, make = POINTWISE[name]
    x_values, y_values, extra = make(rng)
    x, tx = pair(torch, x_values, device)
    y, ty = pair(torch, y_values, device)
    extras = [pair(torch, e, device, requires_grad=False) for e in extra]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean' warns on both sides
        ours = loss(tr.nn.functional, x, y, reduction, *[e[0] for e in extras])
        theirs = loss(torch.nn.functional, tx, ty, reduction, *[e[1] for e in extras])
    check_value_and_input_gradient(torch, rng, ours, theirs, x, tx, name)
    assert_close(y.grad, ty.grad, f"target gradient of {name}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_at_probabilities_0_and_1_matches_torch(torch, device, reduction):
    """Where p is exactly 0 or 1 (a float32 sigmoid reaches 1.0 easily) the clamped logs alone would
    give the clamped term no gradient; torch's gradient is (p - t) / max(p (1 - p), eps), and
    -logit(p) (infinite there) for the target."""
    p_values, t_values = np.array([0.0, 1e-9, 0.3, 0.5, 1 - 1e-9, 1.0]), np.array([0.2, 0.0, 0.5, 1.0, 0.7, 0.3])
    p, tp = pair(torch, p_values, device)
    t, tt = pair(torch, t_values, device)
    ours = tr.nn.functional.binary_cross_entropy(p, t, reduction=reduction)
    theirs = torch.nn.functional.binary_cross_entropy(tp, tt, reduction=reduction)
    assert_close(ours, theirs, "value")
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)   # up to 7e11
    np.testing.assert_array_equal(np.isinf(t.grad.numpy()), np.isinf(tt.grad.numpy()))
    finite = np.isfinite(tt.grad.numpy())
    np.testing.assert_allclose(t.grad.numpy()[finite], tt.grad.numpy()[finite], rtol=1e-12)


LOSS_MODULES = {
    "L1Loss()": lambda lib: lib.nn.L1Loss(),
    "SmoothL1Loss(reduction='sum', beta=0.5)": lambda lib: lib.nn.SmoothL1Loss(reduction="sum", beta=0.5),
    "HuberLoss(reduction='none', delta=0.7)": lambda lib: lib.nn.HuberLoss(reduction="none", delta=0.7),
    "BCELoss(weight)": lambda lib: (lambda x, t: lib.nn.BCELoss(weight=lib.tensor(np.linspace(0.5, 1.5, 5)))(
        x.sigmoid(), t)),
    "BCEWithLogitsLoss(pos_weight, sum)": lambda lib: lib.nn.BCEWithLogitsLoss(
        pos_weight=lib.tensor(np.linspace(0.5, 3.0, 5)), reduction="sum"),
    "KLDivLoss(batchmean)": lambda lib: (lambda x, t: lib.nn.KLDivLoss(reduction="batchmean")(
        x.log_softmax(dim=1), t.softmax(dim=1))),
    "KLDivLoss(log_target, sum)": lambda lib: (lambda x, t: lib.nn.KLDivLoss(reduction="sum", log_target=True)(
        x.log_softmax(dim=1), t.log_softmax(dim=1))),
}


@pytest.mark.parametrize("idiom", list(LOSS_MODULES))
def test_pointwise_loss_modules_match_torch(torch, rng, idiom):
    x, tx = pair(torch, rng.standard_normal((8, 5)), "cpu")
    target = rng.random((8, 5))
    ours = LOSS_MODULES[idiom](tr)(x, tr.tensor(target))
    theirs = LOSS_MODULES[idiom](torch)(tx, torch.tensor(target))
    check_value_and_input_gradient(torch, rng, ours, theirs, x, tx, idiom)


def test_pointwise_losses_refuse_bad_arguments_by_name():
    F, x = tr.nn.functional, tr.tensor([[0.2, 0.7]], dtype=tr.float64)
    with pytest.raises(ValueError, match="binary_cross_entropy: all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(x * 2, x)
    with pytest.raises(ValueError, match=r"l1_loss: input \(1, 2\) and target \(2,\) must have the same shape"):
        F.l1_loss(x, x[0])
    with pytest.raises(ValueError, match="huber_loss: delta must be positive"):
        F.huber_loss(x, x, delta=0.0)
    with pytest.raises(ValueError, match="kl_div: reduction must be one of"):
        F.kl_div(x, x, reduction="batchsum")
    with pytest.raises(ValueError, match=r"pos_weight \(3,\) does not broadcast"):
        F.binary_cross_entropy_with_logits(x, x, pos_weight=tr.ones(3, dtype=tr.float64))
