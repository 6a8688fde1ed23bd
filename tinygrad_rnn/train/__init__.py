"""Training: models for the built-in tasks, the loop shared by the CLI and the demo, sampling."""
from .config import ARCHITECTURE, KEPT_ON_RESUME, OPTIMIZERS, SCHEDULES, ConfigError, NumberRange, TrainConfig
from .loop import (
    TrainResult,
    build,
    config_from_checkpoint,
    load_model,
    make_optimizer,
    make_scheduler,
    plot_losses,
    read_run,
    resume_conflicts,
    save_training_state,
    throughput,
    train,
)
from .models import CELLS, CharLM, SequenceRegressor, build_model, recurrent_layer, sequence_cross_entropy
from .sampling import generate
from .tasks import TASKS, AddingTask, CopyTask, LanguageModelTask, make_task

__all__ = [
    "ARCHITECTURE", "CELLS", "KEPT_ON_RESUME", "OPTIMIZERS", "SCHEDULES", "TASKS", "AddingTask", "CharLM",
    "ConfigError", "CopyTask", "LanguageModelTask", "NumberRange", "SequenceRegressor", "TrainConfig", "TrainResult",
    "build", "build_model", "config_from_checkpoint", "generate", "load_model", "make_optimizer", "make_scheduler",
    "make_task", "plot_losses", "read_run", "recurrent_layer", "resume_conflicts", "save_training_state",
    "sequence_cross_entropy", "throughput", "train",
]
