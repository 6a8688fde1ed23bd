"""Layers PyTorch programs around a recurrent core often use (more activations, PReLU, Bilinear, distances,
Flatten, RMSNorm, GroupNorm, BatchNorm1d) against torch in float64: values, input and parameter gradients,
and the kinks of piecewise activations."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np
from tests.nn.parity import assert_close, assert_same_gradients, copy_torch_weights, pair

# on the kinks of the piecewise activations (0, -3, 3, 6) as well as around them
KINKS = np.array([-4.0, -3.0, -1.5, 0.0, 0.5, 3.0, 4.5, 6.0, 7.0])


def activations():
    return {
        "relu6": lambda lib, x: lib.nn.functional.relu6(x),
        "selu": lambda lib, x: lib.nn.functional.selu(x),
        # an alpha a float32 holds exactly: torch's celu gradient reads alpha as a float32
        "celu": lambda lib, x: lib.nn.functional.celu(x, alpha=0.75),
        "mish": lambda lib, x: lib.nn.functional.mish(x),
        "softsign": lambda lib, x: lib.nn.functional.softsign(x),
        "tanhshrink": lambda lib, x: lib.nn.functional.tanhshrink(x),
        "hardsigmoid": lambda lib, x: lib.nn.functional.hardsigmoid(x),
        "hardswish": lambda lib, x: lib.nn.functional.hardswish(x),
        "nn.ReLU6": lambda lib, x: lib.nn.ReLU6()(x),
        "nn.SELU": lambda lib, x: lib.nn.SELU()(x),
        "nn.CELU": lambda lib, x: lib.nn.CELU(2.0)(x),
        "nn.Mish": lambda lib, x: lib.nn.Mish()(x),
        "nn.Softsign": lambda lib, x: lib.nn.Softsign()(x),
        "nn.Tanhshrink": lambda lib, x: lib.nn.Tanhshrink()(x),
        "nn.Hardsigmoid": lambda lib, x: lib.nn.Hardsigmoid()(x),
        "nn.Hardswish": lambda lib, x: lib.nn.Hardswish()(x),
    }


@pytest.mark.parametrize("name", list(activations()))
def test_activations_match_torch_on_and_off_their_kinks(torch, device, rng, name):
    fn = activations()[name]
    values = np.concatenate([KINKS, 4 * rng.standard_normal(11)])
    ours_x, their_x = pair(torch, values, device)
    ours, theirs = fn(tr, ours_x), fn(torch, their_x)
    assert_close(ours, theirs, name)
    weights = rng.standard_normal(values.shape)
    (ours * tr.Tensor(weights, dtype="float64", device=device)).sum().backward()
    (theirs * torch.tensor(weights)).sum().backward()
    if "ardsigmoid" in name:   # torch's gradient multiplies by 1/6 rounded to float32
        np.testing.assert_allclose(ours_x.grad.numpy(), their_x.grad.numpy(), rtol=1e-7, atol=1e-15)
    else:
        assert_close(ours_x.grad, their_x.grad, f"gradient of {name}")


@pytest.mark.parametrize("num_parameters,shape", [(1, (9,)), (1, (3, 9)), (4, (2, 4)), (4, (2, 4, 5)), (1, (3,))])
def test_prelu_matches_torch(torch, rng, num_parameters, shape):
    theirs = torch.nn.PReLU(num_parameters, init=0.1).double()
    ours = tr.nn.PReLU(num_parameters, init=0.1, dtype="float64")
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(rng.uniform(-0.5, 0.5, num_parameters)))
    copy_torch_weights(ours, theirs)
    values = rng.standard_normal(shape)
    values.flat[0] = 0.0   # the kink: torch gives the input the slope there, the weight nothing
    ours_x, their_x = pair(torch, values, "cpu")
    y, their_y = ours(ours_x), theirs(their_x)
    assert_close(y, their_y, "prelu")
    weights = rng.standard_normal(shape)
    (y * tr.tensor(weights)).sum().backward()
    (their_y * torch.tensor(weights)).sum().backward()
    assert_close(ours_x.grad, their_x.grad, "input gradient")
    assert_same_gradients(ours, theirs)
    assert repr(ours) == repr(theirs)


def test_prelu_names_a_channel_mismatch():
    with pytest.raises(ValueError, match=r"weight of shape \(3,\) for input of shape \(2, 4\)"):
        tr.nn.PReLU(3)(tr.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\(1 channels\)"):   # as torch: a 1-d input has one channel
        tr.nn.PReLU(3)(tr.zeros(3))


def test_bilinear_matches_torch(torch, rng):
    theirs = torch.nn.Bilinear(3, 4, 5).double()
    ours = tr.nn.Bilinear(3, 4, 5, dtype="float64")
    copy_torch_weights(ours, theirs)
    (x1, t1), (x2, t2) = pair(torch, rng.standard_normal((2, 6, 3)), "cpu"), pair(torch, rng.standard_normal((2, 6, 4)), "cpu")
    y, their_y = ours(x1, x2), theirs(t1, t2)
    assert_close(y, their_y, "bilinear")
    weights = rng.standard_normal(y.shape)
    (y * tr.tensor(weights)).sum().backward()
    (their_y * torch.tensor(weights)).sum().backward()
    assert_close(x1.grad, t1.grad, "input1 gradient")
    assert_close(x2.grad, t2.grad, "input2 gradient")
    assert_same_gradients(ours, theirs)
    assert repr(ours) == repr(theirs)
    assert tr.nn.Bilinear(3, 4, 5, bias=False).bias is None
    with pytest.raises(ValueError, match=r"input2 of shape \(6, 3\) must end in 4"):
        ours(x1[0], x1[0])


@pytest.mark.parametrize("case", ["rows", "broadcast", "dim 0", "tiny norms"])
def test_cosine_similarity_matches_torch(torch, rng, case):
    shapes, dim = {"rows": ((5, 4), (5, 4)), "broadcast": ((5, 4), (1, 4)), "dim 0": ((3, 6), (3, 6)),
                   "tiny norms": ((4, 3), (4, 3))}[case], (0 if case == "dim 0" else 1)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    if case == "tiny norms":   # norms below eps: the value divides by eps, the gradient is the norm's
        a[:2] *= 1e-10
        b[1] = 0.0
    (x1, t1), (x2, t2) = pair(torch, a, "cpu"), pair(torch, b, "cpu")
    eps = 1e-8
    y, their_y = tr.nn.CosineSimilarity(dim, eps)(x1, x2), torch.nn.CosineSimilarity(dim, eps)(t1, t2)
    assert_close(y, their_y, "cosine similarity")
    weights = rng.standard_normal(y.shape)
    (y * tr.tensor(weights)).sum().backward()
    (their_y * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x1.grad.numpy(), t1.grad.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(x2.grad.numpy(), t2.grad.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("p,keepdim,shape", [(2.0, False, (5, 4)), (1.0, True, (5, 4)), (3.0, False, (4,))])
def test_pairwise_distance_matches_torch(torch, rng, p, keepdim, shape):
    (x1, t1), (x2, t2) = pair(torch, rng.standard_normal(shape), "cpu"), pair(torch, rng.standard_normal(shape), "cpu")
    y = tr.nn.PairwiseDistance(p, keepdim=keepdim)(x1, x2)
    their_y = torch.nn.PairwiseDistance(p, keepdim=keepdim)(t1, t2)
    assert_close(y, their_y, "pairwise distance")
    y.sum().backward()
    their_y.sum().backward()
    assert_close(x1.grad, t1.grad, "x1 gradient")
    assert_close(x2.grad, t2.grad, "x2 gradient")


@pytest.mark.parametrize("module,shape,sizes", [("Flatten()", (2, 3, 4), None), ("Flatten(0, 1)", (2, 3, 4), None),
                                                ("Unflatten", (2, 12), (1, (3, -1)))])
def test_flatten_and_unflatten_match_torch(torch, module, shape, sizes):
    def make(lib):
        return (lib.nn.Unflatten(*sizes) if sizes else
                lib.nn.Flatten(*(() if module == "Flatten()" else (0, 1))))
    x = np.arange(np.prod(shape), dtype=float).reshape(shape)
    assert make(tr)(tr.tensor(x)).shape == tuple(make(torch)(torch.tensor(x)).shape)
    assert repr(make(tr)) == repr(make(torch))


def test_unflatten_names_sizes_that_do_not_fit():
    with pytest.raises(ValueError, match=r"Provided sizes \[5, -1\] don't multiply up to the size of dim 1 \(12\)"):
        tr.zeros(2, 12).unflatten(1, (5, -1))


def _normalisation_pair(torch, name, dtype="float64"):
    make = {"RMSNorm": lambda lib, **kw: lib.nn.RMSNorm([3, 4], **kw),
            "RMSNorm eps": lambda lib, **kw: lib.nn.RMSNorm(4, eps=1e-3, **kw),
            "GroupNorm": lambda lib, **kw: lib.nn.GroupNorm(2, 6, **kw),
            "GroupNorm one group": lambda lib, **kw: lib.nn.GroupNorm(1, 6, **kw),
            "BatchNorm1d": lambda lib, **kw: lib.nn.BatchNorm1d(6, **kw),
            "BatchNorm1d momentum None": lambda lib, **kw: lib.nn.BatchNorm1d(6, momentum=None, **kw),
            "BatchNorm1d no running stats": lambda lib, **kw: lib.nn.BatchNorm1d(6, track_running_stats=False, **kw),
            "BatchNorm1d no bias": lambda lib, **kw: lib.nn.BatchNorm1d(6, bias=False, **kw),
            "GroupNorm no bias": lambda lib, **kw: lib.nn.GroupNorm(3, 6, bias=False, **kw)}
    theirs = make[name](torch, dtype=torch.float64)
    ours = make[name](tr, dtype=dtype)
    return ours, theirs


@pytest.mark.parametrize("name", ["RMSNorm", "RMSNorm eps", "GroupNorm", "GroupNorm one group", "BatchNorm1d",
                                  "BatchNorm1d momentum None", "BatchNorm1d no running stats",
                                  "BatchNorm1d no bias", "GroupNorm no bias"])
def test_normalisation_layers_match_torch_in_training_and_eval(torch, rng, name):
    ours, theirs = _normalisation_pair(torch, name)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.tensor(rng.standard_normal(p.shape)))
    copy_torch_weights(ours, theirs)
    shapes = [(5, 3, 4)] * 3 if name.startswith("RMSNorm") else [(5, 6), (4, 6, 3), (5, 6)]
    for mode in ("train", "train", "eval"):
        for shape in shapes[:2] if mode == "train" else shapes[2:]:
            ours.train(mode == "train")
            theirs.train(mode == "train")
            x, t = pair(torch, 2 + 3 * rng.standard_normal(shape), "cpu")
            y, their_y = ours(x), theirs(t)
            assert_close(y, their_y, f"{name} {mode} {shape}")
            weights = rng.standard_normal(shape)
            (y * tr.tensor(weights)).sum().backward()
            (their_y * torch.tensor(weights)).sum().backward()
            assert_close(x.grad, t.grad, f"{name} {mode} input gradient")
    assert_same_gradients(ours, theirs)
    state = ours.state_dict()
    their_state = theirs.state_dict()
    assert list(state) == list(their_state)
    for key, value in their_state.items():
        np.testing.assert_allclose(to_np(state[key]), value.numpy(), rtol=1e-12, err_msg=key)
    assert repr(ours) == repr(theirs)


def test_batch_norm_refuses_one_value_per_channel_in_training():
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        tr.nn.BatchNorm1d(3)(tr.zeros(1, 3))
    tr.nn.BatchNorm1d(3).eval()(tr.zeros(1, 3))   # eval reads the running statistics: fine
