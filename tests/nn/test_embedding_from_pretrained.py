"""nn.Embedding.from_pretrained against torch's: the table used as given, frozen or trained, padding row kept."""
import numpy as np
import pytest

import tinygrad_rnn as tr

TABLE = np.random.default_rng(0).standard_normal((6, 3))
INDEX = np.array([[1, 2, 5], [2, 0, 2]])


def lookup(lib, **options):
    embedding = lib.nn.Embedding.from_pretrained(lib.tensor(TABLE, dtype=lib.float64), **options)
    out = embedding(lib.tensor(INDEX))
    grad = None
    if out.requires_grad:
        (out * lib.tensor(np.arange(18.0).reshape(2, 3, 3))).sum().backward()
        grad = embedding.weight.grad.numpy()
    return (out.detach().numpy(), embedding.weight.requires_grad, embedding.padding_idx, grad,
            tuple(embedding.weight.shape), (embedding.num_embeddings, embedding.embedding_dim))


@pytest.mark.parametrize("options", [{}, {"freeze": False}, {"freeze": False, "padding_idx": 2},
                                     {"padding_idx": -1}])
def test_from_pretrained_is_torchs(torch, options):
    ours, theirs = lookup(tr, **options), lookup(torch, **options)
    for a, b in zip(ours, theirs):
        if isinstance(b, np.ndarray):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        else:
            assert a == b


def test_from_pretrained_uses_the_table_itself_and_trains_it():
    table = tr.tensor(TABLE, dtype=tr.float64)
    embedding = tr.nn.Embedding.from_pretrained(table, freeze=False)
    assert [name for name, _ in embedding.named_parameters()] == ["weight"]
    with tr.no_grad():
        table[0] = 7.0
    assert embedding(tr.tensor([0])).sum().item() == 21.0


def test_from_pretrained_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match=r"expected to be 2-dimensional; got shape \(6,\)"):
        tr.nn.Embedding.from_pretrained(tr.zeros(6))
    with pytest.raises(TypeError, match="embeddings must be a Tensor"):
        tr.nn.Embedding.from_pretrained(TABLE)
    with pytest.raises(NotImplementedError, match="'sparse' is not supported"):
        tr.nn.Embedding.from_pretrained(tr.zeros(2, 2), sparse=True)
    with pytest.raises(ValueError, match=r"shape of weight \(2, 2\) does not match .* \(3, 2\)"):
        tr.nn.Embedding(3, 2, _weight=tr.zeros(2, 2))
