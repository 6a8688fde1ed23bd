"""Helpers named as in torch.nn.utils: gradient clipping here, variable-length batches in `rnn`."""
from . import rnn
from .clip import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_", "rnn"]
