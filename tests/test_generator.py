"""tr.Generator draws torch's numbers: randperm and randint from a generator seeded as a torch.Generator."""
import numpy as np
import pytest

import tinygrad_rnn as tr


@pytest.mark.parametrize("seed", [0, 1, 42, 2 ** 40 + 3, -1])
def test_randperm_from_a_generator_is_torchs(torch, seed):
    ours, theirs = tr.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    for n in (0, 1, 2, 5, 10, 257):  # one stream: each permutation goes on from where the last one stopped
        got, want = tr.randperm(n, generator=ours), torch.randperm(n, generator=theirs)
        assert got.dtype == tr.int64 and got.tolist() == want.tolist(), n
    assert ours.initial_seed() == theirs.initial_seed()


@pytest.mark.parametrize("low,high,size", [(0, 10, (7,)), (-3, 4, (2, 3)), (0, 2 ** 40, (5,)), (5, 6, (3,))])
def test_randint_from_a_generator_is_torchs(torch, low, high, size):
    ours, theirs = tr.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for _ in range(2):
        got = tr.randint(low, high, size, generator=ours)
        assert got.tolist() == torch.randint(low, high, size, generator=theirs).tolist()


def test_a_new_generator_has_torchs_default_seed(torch):
    assert tr.Generator().initial_seed() == torch.Generator().initial_seed()
    assert tr.randperm(6, generator=tr.Generator()).tolist() == torch.randperm(6, generator=torch.Generator()).tolist()


def test_randperm_without_a_generator_follows_manual_seed():
    tr.manual_seed(3)
    first = tr.randperm(20)
    tr.manual_seed(3)
    assert tr.randperm(20).tolist() == first.tolist()
    assert sorted(first.tolist()) == list(range(20)) and tr.randperm(4, dtype=tr.float64).dtype == tr.float64


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="negative dimension -1"):
        tr.randperm(-1)
    with pytest.raises(TypeError, match="'n' must be int, not float"):
        tr.randperm(3.0)
    with pytest.raises(TypeError, match="generator must be a tr.Generator; got Generator"):
        tr.randperm(3, generator=np.random.default_rng())
    with pytest.raises(TypeError, match="seed must be an integer"):
        tr.Generator().manual_seed(1.5)
    with pytest.raises(ValueError, match="only a CPU generator"):
        tr.Generator("cuda")


def test_a_generator_feeds_every_random_draw_repeatably():
    """randn, rand, multinomial and nn.init take generator= as torch's do; the same seed draws the same,
    and the draws advance the generator (a second call differs)."""
    g = tr.Generator()

    def draws():
        g.manual_seed(11)
        weight = tr.empty(3, 4)
        tr.nn.init.uniform_(weight, -1, 1, generator=g)
        return (tr.randn(5, generator=g).tolist(), tr.rand(2, 2, generator=g).tolist(),
                tr.multinomial(tr.tensor([0.2, 0.3, 0.5]), 6, replacement=True, generator=g).tolist(),
                weight.tolist(), tr.randn(5, generator=g).tolist())
    first, again = draws(), draws()
    assert first == again
    assert first[0] != first[4]
    with pytest.raises(TypeError, match="randn: argument 'generator' must be a tr.Generator"):
        tr.randn(2, generator=3)
