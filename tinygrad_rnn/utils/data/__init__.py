"""torch.utils.data: datasets, samplers, collation and the DataLoader, with torch's names and order.

Each module does one job: `dataset` (what is indexed), `sampler` (in which order), `collate` (how
samples become a batch) and `dataloader` (which puts them together). A shuffle that draws from a
`tr.Generator` visits the samples in the order torch's does for a torch.Generator with the same seed.
"""
from .collate import default_collate, default_convert
from .combined import ChainDataset, StackDataset
from .dataloader import DataLoader, get_worker_info
from .dataset import ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split
from .distributed import DistributedSampler
from .sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "StackDataset",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "random_split",
]
