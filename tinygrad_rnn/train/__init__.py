"""Training: models for the built-in tasks, the loop shared by the CLI and the demo, sampling."""
from .config import ARCHITECTURE, KEPT_ON_RESUME, OPTIMIZERS, SCHEDULES, ConfigError, NumberRange, TrainConfig
from .loop import (
    TrainingInterrupted,
    TrainResult,
    build,
    checkpoint_device,
    config_from_checkpoint,
    load_model,
    make_optimizer,
    make_scheduler,
    read_run,
    resume_conflicts,
    save_training_state,
    train,
)
from .models import CELLS, CharLM, SequenceRegressor, build_model, recurrent_layer, sequence_cross_entropy
from .report import LOSS_MEANING, metrics_rows, plot_losses, throughput, window_losses, write_metrics
from .sampling import generate
from .tasks import TASKS, AddingTask, CopyTask, LanguageModelTask, make_task

__all__ = [
    "ARCHITECTURE", "CELLS", "KEPT_ON_RESUME", "LOSS_MEANING", "OPTIMIZERS", "SCHEDULES", "TASKS", "AddingTask",
    "CharLM", "ConfigError", "CopyTask", "LanguageModelTask", "NumberRange", "SequenceRegressor", "TrainConfig",
    "TrainResult", "TrainingInterrupted", "build", "build_model", "checkpoint_device", "config_from_checkpoint",
    "generate", "load_model", "make_optimizer", "make_scheduler", "make_task", "metrics_rows", "plot_losses",
    "read_run", "recurrent_layer", "resume_conflicts", "save_training_state", "sequence_cross_entropy",
    "throughput", "train", "window_losses", "write_metrics",
]
