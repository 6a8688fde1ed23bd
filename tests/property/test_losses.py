"""Losses and activations of nn.functional and their modules against torch: every layout of input and
target, class weights, ignore_index, label smoothing, reductions (legacy ones too), wrong shapes,
dtypes and values, NaN and Inf."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tr

from .contract import Arg, cases, same
from .strategies import FLOATS, arrays, tensors

REDUCTIONS = st.sampled_from(["mean", "sum", "none", "average"])


@st.composite
def classification(draw):
    """(input, target, weight) for nll_loss / cross_entropy: usually well formed, sometimes not."""
    n, c, d = draw(st.integers(0, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 2))
    layout = draw(st.sampled_from(["(N, C)", "(C,)", "(N, C, d)", "wrong"]))
    shape, target_shape = {"(N, C)": ((n, c), (n,)), "(C,)": ((c,), ()), "(N, C, d)": ((n, c, d), (n, d)),
                           "wrong": (draw(st.sampled_from([(n, c), (), (c,)])), draw(st.sampled_from([(n + 1,), (1, 1)])))}[layout]
    x = draw(tensors(FLOATS, shape=shape, special=draw(st.integers(0, 5)) == 0))
    kind = draw(st.sampled_from(["indices", "indices", "probabilities", "floats of another shape", "bools"]))
    if kind == "indices":
        target = Arg(draw(arrays(("int64",), shape=target_shape, special=False, low=-1, high=c)))
    elif kind == "probabilities":
        probs = draw(arrays((str(x.array.dtype),), shape=shape, special=False, low=0, high=1))
        target = Arg(probs)
    elif kind == "floats of another shape":
        target = Arg(draw(arrays(FLOATS, shape=target_shape, special=False)))
    else:
        target = Arg(draw(arrays(("bool",), shape=target_shape)))
    weight = draw(st.one_of(st.none(), arrays((str(x.array.dtype),), shape=st.sampled_from([(c,), (c + 1,)]),
                                              special=False, low=0, high=2).map(lambda w: Arg(w, differentiable=False))))
    return x, target, weight


@cases(50)
@given(case=classification(), reduction=REDUCTIONS, ignore_index=st.sampled_from([-100, -1, 0]),
       label_smoothing=st.sampled_from([0.0, 0.0, 0.25, 1.0, 1.5]))
def test_cross_entropy(case, reduction, ignore_index, label_smoothing):
    x, target, weight = case
    # torch checks an empty batch less: ours refuses the same options with or without rows
    same(lambda m, x, t, w: m.nn.functional.cross_entropy(x, t, weight=w, ignore_index=ignore_index,
                                                          reduction=reduction, label_smoothing=label_smoothing),
         x, target, weight, names=("cross_entropy", "target", "weight", "reduction", "label_smoothing", "input"),
         may_refuse=x.array.size == 0, grad=no_zero_weight(weight))


def no_zero_weight(weight):
    """Where every row weighs 0 the mean is 0 / 0: NaN, with gradient 0 in ours (torch gives 0 for ignored
    rows but NaN for rows of weight 0); gradients are compared where no class weighs 0."""
    return weight is None or bool((weight.array != 0).all())


@cases(40)
@given(case=classification(), reduction=REDUCTIONS, ignore_index=st.sampled_from([-100, -1, 0]))
def test_nll_loss(case, reduction, ignore_index):
    x, target, weight = case
    # torch also takes a target of shape (1,) for an input of shape (C,); ours wants () there, as documented
    one = x.array.ndim == 1 and target.array.shape == (1,)
    same(lambda m, x, t, w: m.nn.functional.nll_loss(x, t, weight=w, ignore_index=ignore_index, reduction=reduction),
         x, target, weight, names=("nll_loss", "target", "weight", "reduction", "input"), grad=no_zero_weight(weight),
         may_refuse=one)


@st.composite
def regression(draw):
    shape = draw(st.sampled_from([(), (0,), (3,), (2, 3)]))
    x = draw(tensors(FLOATS, shape=shape))
    other = draw(st.sampled_from([shape, shape, (1,) + shape, (2,)]))
    target = draw(st.one_of(tensors(FLOATS + ("int64",), shape=other), st.floats(-2, 2)))
    return x, target


@cases(50)
@given(case=regression(), reduction=REDUCTIONS)
def test_mse_loss(case, reduction):
    x, target = case
    # torch broadcasts a target of another shape (with a warning); ours refuses it by name
    shaped = isinstance(target, Arg) and target.array.shape != x.array.shape
    same(lambda m, x, t: m.nn.functional.mse_loss(x, t, reduction=reduction), x, target,
         names=("mse_loss", "target", "reduction", "shape"), may_refuse=shaped, may_accept=not isinstance(target, Arg))


@pytest.mark.parametrize("legacy", [(None, False), (True, None), (False, True), (None, None)])
def test_legacy_reductions(legacy):
    size_average, reduce = legacy
    x, target = Arg(np.arange(6.0).reshape(2, 3)), Arg(np.array([0, 2]))
    same(lambda m, x, t: m.nn.functional.cross_entropy(x, t, size_average=size_average, reduce=reduce), x, target,
         names=("cross_entropy",))


MODULES = {"CrossEntropyLoss": classification, "NLLLoss": classification, "MSELoss": regression}


@pytest.mark.parametrize("name", sorted(MODULES))
@cases(25)
@given(data=st.data(), reduction=REDUCTIONS)
def test_loss_module(name, data, reduction):
    x, target, *rest = data.draw(MODULES[name]())
    if name == "MSELoss" and not (isinstance(target, Arg) and target.array.shape == x.array.shape):
        return
    weight = rest[0] if rest else None

    def call(m, x, t, w):
        module = getattr(m.nn, name)(reduction=reduction, **({"weight": w} if w is not None else {}))
        return module(x, t)
    same(call, x, target, weight, names=(name, "reduction", "target", "weight", "input", "loss"),
         grad=no_zero_weight(weight))


ACTIVATIONS = {"relu": (), "tanh": (), "sigmoid": (), "softmax": (-1,), "log_softmax": (0,)}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@cases(15)
@given(x=tensors())
def test_functional_activation(name, x):
    integers = x.array.dtype.kind != "f" and name in ("softmax", "log_softmax")
    same(lambda m, x: getattr(m.nn.functional, name)(x, *ACTIVATIONS[name]), x, names=(name, "dim", "input"),
         may_refuse=integers)


@cases(30)
@given(x=tensors(FLOATS), p=st.sampled_from([0.0, 1.0, 0.5, -0.1, 1.5, float("nan")]), training=st.booleans())
def test_dropout(x, p, training):
    """The generators are not seeded alike here (seeded masks: test_torch_draws.py): compare the
    deterministic cases and the refusals."""
    def call(m, x):
        out = m.nn.functional.dropout(x, p, training)
        return out if p in (0.0, 1.0) or not training else (tuple(out.shape), out.dtype)
    def reference(m, x):
        out = torch.nn.functional.dropout(x, p, training)
        return out if p in (0.0, 1.0) or not training else (tuple(out.shape), tr.dtypes.DTYPES[str(out.dtype)[6:]])
    same(call, x, names=("dropout", "probability", "p"), grad=p in (0.0, 1.0) or not training, reference=reference)


def test_dropout_modules_compare_shapes_and_scale():
    x = tr.ones(1000)
    out = tr.nn.Dropout(0.25)(x).numpy()
    assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.75)}
