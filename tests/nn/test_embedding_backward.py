"""The embedding's gradient: rows added once per distinct row (add_rows), the same sums as np.add.at."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.nn.linear import RUN_LOOP_MAX_RUNS, RUN_LOOP_MIN_WIDTH, add_rows


@pytest.mark.parametrize("rows,width,count", [
    (7, RUN_LOOP_MIN_WIDTH, 300),          # a few wide rows: one sum per run
    (7, 3, 300),                           # narrow rows: reduceat
    (RUN_LOOP_MAX_RUNS * 4, 80, 600),      # many distinct rows: reduceat
    (50, 4, 1),                            # one lookup
    (50, 4, 0),                            # none
])
def test_add_rows_equals_add_at(rows, width, count):
    rng = np.random.default_rng(rows + width + count)
    index = rng.integers(0, rows, size=(count // 2, 2) if count > 1 else (count,))
    values = rng.standard_normal(index.shape + (width,))
    start = rng.standard_normal((rows, width))
    expected = start.copy()
    np.add.at(expected, index, values)
    got = add_rows(start.copy(), index, values)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


def test_embedding_gradient_accumulates_and_keeps_the_padding_row_at_zero():
    tr.manual_seed(0)
    emb = tr.nn.Embedding(10, 70, padding_idx=2, dtype="float64")
    index = np.array([[1, 2, 1, 9], [2, 9, 9, 0]])
    g = np.random.default_rng(1).standard_normal(index.shape + (70,))
    expected = np.zeros((10, 70))
    np.add.at(expected, index, g)
    expected[2] = 0
    for times in (1, 2):  # the second backward adds into the gradient the first one left
        emb(index).backward(tr.Tensor(g, dtype="float64"))
        np.testing.assert_allclose(emb.weight.grad.numpy(), times * expected, rtol=1e-13)
    assert emb(index).grad_fn is not None


def test_embedding_gradient_of_gradient():
    """create_graph: the lookup's backward is recorded (a scatter), so it differentiates again."""
    tr.manual_seed(0)
    emb = tr.nn.Embedding(5, 3, dtype="float64")
    index = np.array([0, 3, 3, 1])
    (gw,) = tr.autograd.grad((emb(index) ** 2).sum(), emb.weight, create_graph=True)
    counts = np.bincount(index, minlength=5)[:, None]
    np.testing.assert_allclose(gw.numpy(), 2 * counts * emb.weight.numpy() * (counts > 0), rtol=1e-13)
    gw.sum().backward()
    np.testing.assert_allclose(emb.weight.grad.numpy(), np.broadcast_to(2 * counts, (5, 3)), rtol=1e-13)


@pytest.mark.parametrize("bad", [-1, 10])
def test_an_index_out_of_range_is_named(bad):
    emb = tr.nn.Embedding(10, 3)
    with pytest.raises(IndexError, match=rf"indices span \[{min(bad, 0)}, {max(bad, 2)}\] but num_embeddings=10"):
        emb(np.array([0, bad, 2]))
