"""Layers, their building blocks and helpers, named as in torch.nn."""
from . import functional, init, utils
from .cells import GRUCell, LayerNormLSTMCell, LSTMCell, RecurrentCell, RNNCell
from .checks import InputError
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .dropout import Dropout
from .elman import ElmanRNN
from .linear import Embedding, Linear
from .module import Module, Parameter, StateDictError
from .normalization import LayerNorm
from .recurrent import GRU, LSTM, RNN, Recurrent, register_fused

__all__ = ["GRU", "LSTM", "RNN", "Dropout", "ElmanRNN", "Embedding", "GRUCell", "InputError", "LSTMCell",
           "LayerNorm", "LayerNormLSTMCell", "Linear", "Module", "ModuleDict", "ModuleList", "Parameter",
           "ParameterDict", "ParameterList", "RNNCell", "Recurrent", "RecurrentCell",
           "Sequential", "StateDictError", "functional", "init", "register_fused", "utils"]
