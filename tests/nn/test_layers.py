"""Linear, Embedding, LayerNorm and Dropout: PyTorch parity (float64), gradchecks, modes, bad input."""
import math

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np
from tests.nn.parity import assert_close, assert_same_gradients, backpropagate_both, copy_torch_weights, pair


@pytest.mark.parametrize("shape", [(5,), (4, 5), (3, 2, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(torch, device, shape, bias):
    torch.manual_seed(0)
    theirs = torch.nn.Linear(5, 3, bias=bias, dtype=torch.float64)
    ours = tr.nn.Linear(5, 3, bias=bias, dtype="float64", device=device)
    copy_torch_weights(ours, theirs)
    rng = np.random.default_rng(len(shape))
    x, tx = pair(torch, rng.standard_normal(shape), device)
    y, ty = ours(x), theirs(tx)
    assert_close(y, ty, "output")
    backpropagate_both(torch, [(y, ty)], rng)
    assert_close(x.grad, tx.grad, "input gradient")
    assert_same_gradients(ours, theirs)


@pytest.mark.parametrize("shape", [(5,), (4, 5), (3, 2, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch(torch, device, shape, affine):
    torch.manual_seed(1)
    normalized = shape[-1:] if len(shape) < 3 else shape[-2:]
    theirs = torch.nn.LayerNorm(normalized, elementwise_affine=affine, dtype=torch.float64)
    ours = tr.nn.LayerNorm(normalized, elementwise_affine=affine, dtype="float64", device=device)
    if affine:  # not PyTorch's ones and zeros, so that the scale and shift are really checked
        with torch.no_grad():
            for p in theirs.parameters():
                p.uniform_(-1, 1)
        copy_torch_weights(ours, theirs)
    rng = np.random.default_rng(len(shape))
    x, tx = pair(torch, 3 * rng.standard_normal(shape), device)
    y, ty = ours(x), theirs(tx)
    assert_close(y, ty, "output")
    backpropagate_both(torch, [(y, ty)], rng)
    assert_close(x.grad, tx.grad, "input gradient")
    if affine:
        assert_same_gradients(ours, theirs)


def test_embedding_matches_torch(torch, device):
    torch.manual_seed(2)
    theirs = torch.nn.Embedding(6, 3, padding_idx=1, dtype=torch.float64)
    ours = tr.nn.Embedding(6, 3, padding_idx=1, dtype="float64", device=device)
    np.testing.assert_array_equal(ours.weight.numpy()[1], 0)
    copy_torch_weights(ours, theirs)
    with torch.no_grad():  # a non-zero padding row: it must still get no gradient
        theirs.weight[1] = 1.0
    ours.load_state_dict({"weight": theirs.weight.detach().numpy()})
    index = np.array([[0, 1, 5], [1, 2, 5]])
    y, ty = ours(index), theirs(torch.tensor(index))
    assert_close(y, ty, "output")
    backpropagate_both(torch, [(y, ty)], np.random.default_rng(2))
    assert_same_gradients(ours, theirs)
    assert not to_np(ours.weight.grad)[1].any()


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf, 0.5])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_embedding_max_norm_renormalizes_the_rows_read_in_place_as_torch(torch, device, norm_type, dtype):
    table = 2 * np.random.default_rng(4).standard_normal((7, 4)).astype(dtype)
    theirs = torch.nn.Embedding.from_pretrained(torch.tensor(table), freeze=False, padding_idx=3, max_norm=1.5,
                                                norm_type=norm_type)
    ours = tr.nn.Embedding.from_pretrained(tr.tensor(table, device=device), freeze=False, padding_idx=3,
                                           max_norm=1.5, norm_type=norm_type)
    index = np.array([[0, 2, 2], [5, 0, 3]])   # rows 1, 4 and 6 are not read, so they keep their norms
    rtol = 0 if dtype == "float64" else 1e-6   # float32 norms may differ in the last bit
    for _ in range(2):   # a second lookup finds the rows already within max_norm
        y, ty = ours(tr.tensor(index, device=device)), theirs(torch.tensor(index))
        np.testing.assert_allclose(to_np(ours.weight), theirs.weight.detach().numpy(), rtol=rtol, atol=0)
        np.testing.assert_allclose(to_np(y), ty.detach().numpy(), rtol=rtol, atol=0)
    assert ours.weight._version == theirs.weight._version
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(to_np(ours.weight.grad), theirs.weight.grad.numpy())
    assert repr(ours) == repr(theirs)


def test_functional_embedding_max_norm_changes_only_rows_above_it(torch):
    table = np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]])
    ours, theirs = tr.tensor(table), torch.tensor(table)
    y = tr.nn.functional.embedding(tr.tensor([0, 1]), ours, max_norm=1.0)
    ty = torch.nn.functional.embedding(torch.tensor([0, 1]), theirs, max_norm=1.0)
    assert_close(y, ty, "rows looked up")
    assert_close(ours, theirs, "the table, row 2 untouched")
    assert ours.numpy()[2].tolist() == [6.0, 8.0]


def test_embedding_still_refuses_sparse():
    with pytest.raises(NotImplementedError, match="'sparse' is not supported"):
        tr.nn.Embedding(3, 2, sparse=True)
    with pytest.raises(NotImplementedError, match="'sparse' is not supported"):
        tr.nn.functional.embedding(tr.tensor([0]), tr.zeros(3, 2), sparse=True)


def test_composed_layers_gradcheck(device):
    tr.manual_seed(3)
    linear = tr.nn.Linear(3, 2, dtype="float64", device=device)
    norm = tr.nn.LayerNorm(3, dtype="float64", device=device)
    tr.nn.init.uniform_(norm.weight, 0.5, 1.5)
    x = tr.Tensor(np.random.default_rng(3).standard_normal((4, 3)), dtype="float64", device=device,
                  requires_grad=True)
    assert tr.gradcheck(lambda x, *params: linear(norm(x)), x, *norm.parameters(), *linear.parameters())


def test_dropout_module_follows_train_and_eval():
    tr.manual_seed(4)
    dropout = tr.nn.Dropout(0.5)
    x = tr.ones(1000)
    y = dropout(x).numpy()
    assert set(np.unique(y)) == {0.0, 2.0}
    assert 350 < (y == 0).sum() < 650
    dropout.eval()
    np.testing.assert_array_equal(dropout(x).numpy(), x.numpy())
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        tr.nn.Dropout(1.5)


def test_constructors_take_dtype_and_device(device):
    for module in (tr.nn.Linear(2, 3, dtype="float64", device=device),
                   tr.nn.Embedding(4, 3, dtype="float64", device=device),
                   tr.nn.LayerNorm(3, dtype="float64", device=device)):
        assert {(p.dtype, p.device) for p in module.parameters()} == {(np.dtype("float64"), device)}
    assert tr.nn.Linear(2, 3).weight.dtype == np.float32


def test_linear_init_is_pytorchs_bound():
    tr.manual_seed(5)
    linear = tr.nn.Linear(16, 400)
    bound = 1 / 4
    for p in linear.parameters():
        assert np.abs(p.numpy()).max() <= bound and np.abs(p.numpy()).max() > 0.9 * bound


def test_bad_input_is_reported_with_shapes():
    with pytest.raises(RuntimeError, match="in_features. Expected 4, got 3"):
        tr.nn.Linear(4, 2)(tr.zeros(5, 3))
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[4\].*\[\*, 4\].*\[2, 3\]"):
        tr.nn.LayerNorm(4)(tr.zeros(2, 3))
    with pytest.raises(IndexError, match="num_embeddings=3"):
        tr.nn.Embedding(3, 2)(np.array([0, 3]))
    with pytest.raises(ValueError, match="indices must be integers"):
        tr.nn.Embedding(3, 2)(tr.zeros(2))


@pytest.mark.parametrize("layer,options", [("LSTM", {}), ("GRU", {"num_layers": 2, "bidirectional": True}),
                                           ("LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 3}),
                                           ("RNN", {"num_layers": 12})])
def test_all_weights_lists_each_layer_and_direction_as_torch(torch, layer, options):
    ours, theirs = getattr(tr.nn, layer)(4, 6, **options), getattr(torch.nn, layer)(4, 6, **options)
    assert ours._all_weights == theirs._all_weights
    assert [[tuple(w.shape) for w in row] for row in ours.all_weights] == \
        [[tuple(w.shape) for w in row] for row in theirs.all_weights]
    assert ours.all_weights[0][0] is ours.weight_ih_l0
    ours.flatten_parameters()   # accepted, as code written for cuDNN calls it
