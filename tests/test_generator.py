"""tr.Generator draws torch's numbers: randperm and randint from a generator seeded as a torch.Generator
(uniform, normal and dropout draws: test_torch_draws.py)."""
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
    with pytest.raises(TypeError, match="randn: generator must be a tr.Generator; got int"):
        tr.randn(2, generator=3)


def test_manual_seed_returns_the_default_generator_a_dataloader_takes(torch):
    g = tr.manual_seed(0)
    assert g is tr.default_generator and isinstance(g, tr.Generator) and tr.initial_seed() == 0
    data = list(range(23))
    ours = [b.tolist() for b in tr.utils.data.DataLoader(data, batch_size=5, shuffle=True, generator=tr.manual_seed(0))]
    theirs = [b.tolist() for b in torch.utils.data.DataLoader(data, batch_size=5, shuffle=True,
                                                               generator=torch.manual_seed(0))]
    assert ours == theirs


def test_draws_given_no_generator_follow_torchs_default_generator(torch):
    """randperm, randint and a shuffled DataLoader's order (its sampler seeds a Generator from the default
    one, after the loader's base seed) are torch's after the same manual_seed."""
    tr.manual_seed(5), torch.manual_seed(5)
    assert tr.randperm(9).tolist() == torch.randperm(9).tolist()
    assert tr.randint(0, 7, (4,)).tolist() == torch.randint(0, 7, (4,)).tolist()
    for _ in range(2):
        ours = [b.tolist() for b in tr.utils.data.DataLoader(range(11), batch_size=4, shuffle=True)]
        assert ours == [b.tolist() for b in torch.utils.data.DataLoader(range(11), batch_size=4, shuffle=True)]


@pytest.mark.parametrize("draws", [0, 1, 9, 623, 624, 1000, 1248])
def test_state_is_torchs_bytes_and_moves_both_ways(torch, draws):
    ours, theirs = tr.Generator().manual_seed(2 ** 40 + 9), torch.Generator().manual_seed(2 ** 40 + 9)
    tr.randint(0, 5, (draws,), generator=ours), torch.randint(0, 5, (draws,), generator=theirs)
    state = ours.get_state()
    assert state.dtype == tr.uint8 and state.shape == (5056,)
    assert state.tolist() == theirs.get_state().tolist()
    from_torch = tr.Generator().set_state(tr.tensor(theirs.get_state().numpy()))
    to_torch = torch.Generator().set_state(torch.from_numpy(state.numpy()))
    want = torch.randperm(50, generator=theirs).tolist()
    assert tr.randperm(50, generator=ours).tolist() == want
    assert tr.randperm(50, generator=from_torch).tolist() == want
    assert torch.randperm(50, generator=to_torch).tolist() == want
    assert from_torch.initial_seed() == 2 ** 40 + 9


def test_a_saved_state_replays_every_kind_of_draw():
    tr.manual_seed(1)
    tr.randn(3)
    state = tr.get_rng_state()
    first = tr.randn(4).tolist(), tr.rand(2).tolist(), tr.randperm(8).tolist(), tr.nn.Linear(2, 2).weight.tolist()
    tr.set_rng_state(state)
    assert (tr.randn(4).tolist(), tr.rand(2).tolist(), tr.randperm(8).tolist(),
            tr.nn.Linear(2, 2).weight.tolist()) == first
    g = tr.Generator()
    seed = g.seed()
    assert g.initial_seed() == seed and 0 <= seed < 2 ** 64
    seed = tr.seed()
    assert tr.initial_seed() == seed and tr.default_generator.initial_seed() == seed


def test_a_bad_state_is_refused_as_torch_refuses_it(torch):
    g = tr.Generator().manual_seed(3)
    before = g.get_state().tolist()
    for bad, error, message in ((tr.zeros(10, dtype=tr.uint8), RuntimeError, "size 5056 but found the input RNG state size to be 10"),
                                (tr.zeros(5056), TypeError, "RNG state must be a uint8 tensor"),
                                ([1, 2], TypeError, "expected a tr.Tensor of uint8.*got list")):
        with pytest.raises(error, match=message):
            g.set_state(bad)
        with pytest.raises(error):
            torch.Generator().set_state(torch.tensor(bad.numpy()) if isinstance(bad, tr.Tensor) else bad)
    assert g.get_state().tolist() == before
