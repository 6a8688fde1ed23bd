"""Optimizers and learning-rate schedules with PyTorch's update rules and state_dict layout."""
from . import lr_scheduler
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .optimizers import SGD, Adagrad, Adam, AdamW, RMSprop

__all__ = ["LBFGS", "SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
