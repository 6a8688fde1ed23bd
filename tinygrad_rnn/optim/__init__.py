"""Optimizers and learning-rate schedules with PyTorch's update rules and state_dict layout."""
from . import lr_scheduler
from .adafactor import Adafactor
from .lbfgs import LBFGS
from .more_optimizers import ASGD, Adadelta, Adamax, NAdam, RAdam, Rprop
from .optimizer import Optimizer
from .optimizers import SGD, Adagrad, Adam, AdamW, RMSprop

__all__ = ["ASGD", "LBFGS", "SGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam",
           "Optimizer", "RAdam", "RMSprop", "Rprop", "lr_scheduler"]
