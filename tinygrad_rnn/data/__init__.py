"""Built-in data: a character corpus shipped with Python and synthetic long-memory tasks."""

from .corpus import CharCorpus, batchify, bptt_batches, load_default_text, random_batches
from .tasks import adding_baseline_mse, adding_problem, copy_baseline_loss, copy_task

__all__ = [
    "CharCorpus",
    "adding_baseline_mse",
    "adding_problem",
    "batchify",
    "bptt_batches",
    "copy_baseline_loss",
    "copy_task",
    "load_default_text",
    "random_batches",
]
