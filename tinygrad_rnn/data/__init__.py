"""Built-in data: a character corpus shipped with Python and synthetic long-memory tasks."""
from .corpus import CharCorpus, batchify, bptt_batches, load_default_text, random_batches
from .tasks import adding_baseline_mse, adding_problem, copy_baseline_loss, copy_task

__all__ = [
    "CharCorpus", "batchify", "bptt_batches", "load_default_text", "random_batches",
    "adding_baseline_mse", "adding_problem", "copy_baseline_loss", "copy_task",
]
