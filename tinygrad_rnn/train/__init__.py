"""Training: models for the built-in tasks, the loop shared by the CLI and the demo, sampling."""
from .loop import (
    ARCHITECTURE,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    TrainResult,
    build,
    config_from_checkpoint,
    load_model,
    make_optimizer,
    make_scheduler,
    plot_losses,
    save_training_state,
    throughput,
    train,
)
from .models import CELLS, CharLM, SequenceRegressor, build_model, recurrent_layer, sequence_cross_entropy
from .sampling import generate
from .tasks import TASKS, AddingTask, CopyTask, LanguageModelTask, make_task

__all__ = [
    "ARCHITECTURE", "CELLS", "OPTIMIZERS", "SCHEDULES", "TASKS", "AddingTask", "CharLM", "CopyTask",
    "LanguageModelTask", "SequenceRegressor", "TrainConfig", "TrainResult", "build", "build_model", "config_from_checkpoint",
    "generate", "load_model", "make_optimizer", "make_scheduler", "make_task", "plot_losses", "recurrent_layer",
    "save_training_state", "sequence_cross_entropy", "throughput", "train",
]
