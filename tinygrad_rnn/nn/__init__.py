"""Layers, their building blocks and helpers, named as in torch.nn."""
from . import functional
from .module import Module, Parameter
