"""Layers, their building blocks and helpers, named as in torch.nn."""
from . import functional, init, utils
from .activation import Identity, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .cells import GRUCell, LayerNormLSTMCell, LSTMCell, RecurrentCell, RNNCell
from .checks import InputError
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .dropout import Dropout
from .elman import ElmanRNN
from .linear import Embedding, Linear
from .loss import CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, Parameter, StateDictError
from .normalization import LayerNorm
from .recurrent import GRU, LSTM, RNN, Recurrent, register_fused

__all__ = ["GRU", "LSTM", "RNN", "CrossEntropyLoss", "Dropout", "ElmanRNN", "Embedding", "GRUCell", "Identity",
           "InputError", "LSTMCell", "LayerNorm", "LayerNormLSTMCell", "Linear", "LogSoftmax", "MSELoss", "Module",
           "ModuleDict", "ModuleList", "NLLLoss", "Parameter", "ParameterDict", "ParameterList", "RNNCell", "ReLU",
           "Recurrent", "RecurrentCell", "Sequential", "Sigmoid", "Softmax", "StateDictError", "Tanh",
           "functional", "init", "register_fused", "utils"]
