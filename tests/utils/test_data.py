"""tr.utils.data against torch.utils.data: the same batches in the same order, collated alike.

Each pipeline is built twice, with `lib` torch or tinygrad_rnn, from the same NumPy data; what it yields is
brought to plain Python (tensors as their dtype's name and values) and compared.
"""
import collections

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.utils import data as our_data

X = np.arange(22.0).reshape(11, 2)
Y = np.arange(11) % 3
Point = collections.namedtuple("Point", "x y")


@pytest.fixture
def libs(torch):
    import torch.utils.data
    return torch, tr


def plain(value):
    """Tensors as (dtype name, nested list); containers kept as their type, recursively."""
    if hasattr(value, "dtype") and hasattr(value, "tolist") and not isinstance(value, np.ndarray):
        return (str(value.dtype).removeprefix("torch."), value.tolist())
    if isinstance(value, dict):
        return (type(value).__name__, {k: plain(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [plain(v) for v in value])
    return value


def tensor_dataset(lib):
    return lib.utils.data.TensorDataset(lib.tensor(X), lib.tensor(Y))


def passes(lib, make_loader, epochs=3):
    loader = make_loader(lib)
    return [plain(list(loader)) for _ in range(epochs)], len(loader)


LOADERS = {
    "in order": lambda lib: lib.utils.data.DataLoader(tensor_dataset(lib), batch_size=4),
    "in order, drop_last": lambda lib: lib.utils.data.DataLoader(tensor_dataset(lib), batch_size=4, drop_last=True),
    "shuffled by a generator": lambda lib: lib.utils.data.DataLoader(
        tensor_dataset(lib), batch_size=3, shuffle=True, generator=lib.Generator().manual_seed(5)),
    "shuffled, drop_last": lambda lib: lib.utils.data.DataLoader(
        tensor_dataset(lib), batch_size=5, shuffle=True, drop_last=True, generator=lib.Generator().manual_seed(1)),
    "one sample at a time": lambda lib: lib.utils.data.DataLoader(tensor_dataset(lib), batch_size=None),
    "a sampler": lambda lib: lib.utils.data.DataLoader(
        tensor_dataset(lib), batch_size=2,
        sampler=lib.utils.data.SubsetRandomSampler([1, 4, 5, 9, 10], generator=lib.Generator().manual_seed(3))),
    "a batch sampler": lambda lib: lib.utils.data.DataLoader(
        tensor_dataset(lib), batch_sampler=lib.utils.data.BatchSampler(
            lib.utils.data.RandomSampler(tensor_dataset(lib), generator=lib.Generator().manual_seed(4)), 3, False)),
    "with replacement": lambda lib: lib.utils.data.DataLoader(
        tensor_dataset(lib), batch_size=8, sampler=lib.utils.data.RandomSampler(
            tensor_dataset(lib), replacement=True, num_samples=70, generator=lib.Generator().manual_seed(2))),
    "more samples than the dataset": lambda lib: lib.utils.data.DataLoader(
        tensor_dataset(lib), batch_size=6, sampler=lib.utils.data.RandomSampler(
            tensor_dataset(lib), num_samples=25, generator=lib.Generator().manual_seed(2))),
    "a collate_fn": lambda lib: lib.utils.data.DataLoader(
        tensor_dataset(lib), batch_size=4, collate_fn=lambda batch: [int(y) for _, y in batch]),
    "workers load in order": lambda lib: lib.utils.data.DataLoader(tensor_dataset(lib), batch_size=4, num_workers=2),
    "a subset and a concatenation": lambda lib: lib.utils.data.DataLoader(
        lib.utils.data.Subset(tensor_dataset(lib), [3, 1, 2]) + tensor_dataset(lib), batch_size=5),
}


@pytest.mark.parametrize("name", LOADERS)
def test_loader_yields_torchs_batches(libs, name):
    torch, _ = libs
    assert passes(tr, LOADERS[name]) == passes(torch, LOADERS[name])


class Squares:
    """A map-style dataset that is not a Dataset subclass, of mixed samples."""

    def __init__(self, kind):
        self.kind = kind

    def __len__(self):
        return 5

    def __getitem__(self, i):
        samples = {
            "numbers": (float(i) / 2, i, i % 2 == 0),
            "numpy": (np.full((2,), i, np.float32), np.int32(i), np.float64(i) / 3),
            "dict": {"x": [i, i + 1], "name": f"s{i}", "pair": (i, float(i))},
            "named tuple": Point(i, [float(i), 2.0]),
            "strings": f"word{i}",
        }
        return samples[self.kind]


@pytest.mark.parametrize("kind", ["numbers", "numpy", "dict", "named tuple", "strings"])
def test_default_collate_is_torchs(libs, kind):
    torch, _ = libs

    def batches(lib):
        return plain(list(lib.utils.data.DataLoader(Squares(kind), batch_size=3)))
    assert batches(tr) == batches(torch)


def test_default_convert_without_batching(libs):
    torch, _ = libs

    def samples(lib):
        return plain(list(lib.utils.data.DataLoader(Squares("numpy"), batch_size=None)))
    assert samples(tr) == samples(torch)


def test_random_split_is_torchs(libs, recwarn):
    torch, _ = libs
    for lengths in ([3, 8], [0.3, 0.3, 0.4], [0.5, 0.5], [1.0, 0.0]):
        def split(lib, lengths=lengths):
            parts = lib.utils.data.random_split(range(11), lengths, generator=lib.Generator().manual_seed(9))
            return [list(part) for part in parts]
        assert split(tr) == split(torch), lengths
    assert any("Length of split at index 1 is 0" in str(w.message) for w in recwarn)


def test_iterable_dataset_is_batched_as_it_streams(libs):
    torch, _ = libs

    def stream(lib, **options):
        class Count(lib.utils.data.IterableDataset):
            def __iter__(self):
                return iter(range(7))

            def __len__(self):
                return 7
        loader = lib.utils.data.DataLoader(Count(), **options)
        return plain(list(loader)), len(loader)
    for options in ({"batch_size": 3}, {"batch_size": 3, "drop_last": True}, {"batch_size": None}):
        assert stream(tr, **options) == stream(torch, **options), options


def test_concat_and_subset_index_as_torch(libs):
    torch, _ = libs

    def pick(lib):
        both = lib.utils.data.ConcatDataset([range(3), range(10, 14)])
        subset = lib.utils.data.Subset(range(20, 30), [4, 0, 2])
        return both.cumulative_sizes, [both[i] for i in (-7, -1, 0, 2, 3, 6)], len(both), subset[1], len(subset)
    assert pick(tr) == pick(torch)


def test_shuffle_without_a_generator_follows_manual_seed():
    def order():
        tr.manual_seed(0)
        return [index for batch in our_data.DataLoader(range(9), batch_size=4, shuffle=True) for index in batch.tolist()]
    first = order()
    assert order() == first and sorted(first) == list(range(9))


@pytest.mark.parametrize("options,message", [
    ({"shuffle": True, "sampler": [0, 1]}, "sampler option is mutually exclusive with shuffle"),
    ({"batch_sampler": [[0]], "batch_size": 2}, "batch_sampler option is mutually exclusive"),
    ({"batch_size": None, "drop_last": True}, "batch_size=None option disables auto-batching"),
    ({"num_workers": -1}, "num_workers option should be non-negative"),
    ({"batch_size": 0}, "batch_size should be a positive integer value, but got batch_size=0"),
])
def test_loader_refuses_what_torch_refuses(libs, options, message):
    torch, _ = libs
    with pytest.raises(ValueError, match=message):
        our_data.DataLoader(range(4), **options)
    with pytest.raises(ValueError):
        torch.utils.data.DataLoader(range(4), **options)


def test_bad_datasets_and_samples_are_named():
    with pytest.raises(ValueError, match=r"size mismatch between tensors.*\(3,\), \(4,\)"):
        our_data.TensorDataset(tr.zeros(3), tr.zeros(4))
    with pytest.raises(ValueError, match="sum of input lengths \\(5\\) does not equal the length of the input "
                                         "dataset \\(4\\)"):
        our_data.random_split(range(4), [2, 3])
    with pytest.raises(TypeError, match="ConcatDataset does not support IterableDataset"):
        our_data.ConcatDataset([our_data.IterableDataset()])
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        our_data.default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate: batch must contain tensors.*found object"):
        our_data.default_collate([object()])
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        our_data.DataLoader(our_data.IterableDataset(), shuffle=True)
    assert our_data.get_worker_info() is None
    assert tr.utils.data is our_data


@pytest.mark.parametrize("seed", [0, 7, 2 ** 40 + 1])
def test_weighted_random_sampler_draws_torchs_indices(libs, seed):
    torch, _ = libs
    weights = np.random.default_rng(seed % 1000).random(13)
    weights[[2, 9]] = 0.0  # never drawn
    for weight_list in (weights.tolist(), weights[:3].tolist()):
        ours = our_data.WeightedRandomSampler(weight_list, 40, generator=tr.Generator().manual_seed(seed))
        theirs = torch.utils.data.WeightedRandomSampler(weight_list, 40, generator=torch.Generator().manual_seed(seed))
        assert len(ours) == 40 and list(ours) == list(theirs)
        assert list(ours) == list(theirs)  # the generator goes on: a second pass draws anew, as torch's
    loader = our_data.DataLoader(range(13), batch_size=5, sampler=our_data.WeightedRandomSampler(weights, 12))
    tr.manual_seed(seed), torch.manual_seed(seed)
    theirs = torch.utils.data.DataLoader(range(13), batch_size=5,
                                         sampler=torch.utils.data.WeightedRandomSampler(weights, 12))
    assert [b.tolist() for b in loader] == [b.tolist() for b in theirs]


@pytest.mark.parametrize("num_samples,replacement", [(500, True), (1, True), (1, False), (12, False), (48, False)])
def test_multinomial_draws_torchs_indices(libs, num_samples, replacement):
    torch, _ = libs
    rows = np.random.default_rng(3).random((3, 50)) ** 4
    rows[0, [3, 7]] = 0.0
    for ours_dtype, their_dtype in ((tr.float64, torch.float64), (tr.float32, torch.float32)):
        ours, theirs = tr.Generator().manual_seed(11), torch.Generator().manual_seed(11)
        for take in (slice(None), 1):  # a matrix, then a vector, from the one stream
            got = tr.multinomial(tr.tensor(rows[take], dtype=ours_dtype), num_samples, replacement, generator=ours)
            want = torch.multinomial(torch.tensor(rows[take], dtype=their_dtype), num_samples, replacement,
                                     generator=theirs)
            assert got.tolist() == want.tolist()


def test_weighted_random_sampler_without_replacement_is_torchs(libs):
    torch, _ = libs
    weights = [1.0, 0.0, 3.0, 6.0, 0.5]
    ours = our_data.WeightedRandomSampler(weights, 4, replacement=False, generator=tr.Generator().manual_seed(0))
    theirs = torch.utils.data.WeightedRandomSampler(weights, 4, replacement=False,
                                                    generator=torch.Generator().manual_seed(0))
    assert [list(ours) for _ in range(5)] == [list(theirs) for _ in range(5)]


@pytest.mark.parametrize("args,message", [
    (([1.0, 2.0], 0), "num_samples should be a positive integer value, but got num_samples=0"),
    (([1.0, 2.0], True), "num_samples should be a positive integer value, but got num_samples=True"),
    (([1.0, 2.0], 3, 1), "replacement should be a boolean value, but got replacement=1"),
    (([[1.0, 2.0]], 3), r"weights should be a 1d sequence but given weights have shape \(1, 2\)"),
])
def test_weighted_random_sampler_refuses_what_torch_refuses(libs, args, message):
    torch, _ = libs
    for lib_data in (our_data, torch.utils.data):
        with pytest.raises(ValueError, match=message):
            lib_data.WeightedRandomSampler(*args)
