"""The functional ops PyTorch code calls as torch.X rather than torch.nn.functional.X, and the window
functions (torch.hann_window ...).

Each torch.X takes ATen's positional signature, which differs from F.X in places: torch.dropout(input, p,
train) has no defaults, torch.embedding(weight, indices) puts the table first, torch.batch_norm takes the
affine weights before the running statistics, and the losses take `reduction` as ATen's integer (0 none,
1 mean, 2 sum). Where the signatures agree, the name is F.X itself.
"""
import math
import numbers

import numpy as np

from . import backend, dtypes
from .factory import tensor
from .nn import functional as F
from .nn.functional import (  # torch.X is F.X for these
    adaptive_avg_pool1d,
    celu_,
    conv1d,
    conv2d,
    cosine_similarity,
    hardshrink,
    pairwise_distance,
    pixel_shuffle,
    pixel_unshuffle,
    prelu,
    relu_,
    selu_,
    threshold_,
)

__all__ = [
    "adaptive_avg_pool1d", "adaptive_max_pool1d", "alpha_dropout", "avg_pool1d", "bartlett_window", "batch_norm",
    "binary_cross_entropy_with_logits", "blackman_window", "celu", "celu_", "conv1d", "conv2d",
    "cosine_embedding_loss", "cosine_similarity", "ctc_loss", "dropout", "embedding", "feature_alpha_dropout",
    "feature_dropout", "group_norm", "gru_cell", "hamming_window", "hann_window", "hardshrink",
    "hinge_embedding_loss", "instance_norm", "kaiser_window", "kl_div", "layer_norm", "lstm_cell",
    "margin_ranking_loss", "max_pool1d", "max_pool2d", "pairwise_distance", "pdist", "pixel_shuffle",
    "pixel_unshuffle", "poisson_nll_loss", "prelu", "relu_", "rnn_relu_cell", "rnn_tanh_cell", "rrelu", "rrelu_",
    "selu", "selu_", "threshold", "threshold_", "triplet_margin_loss",
]

# ----------------------------------------------------------------------------- dropout, normalisation, lookup


def dropout(input, p, train):
    return F.dropout(input, p, train)


def alpha_dropout(input, p, train):
    return F.alpha_dropout(input, p, train)


def feature_dropout(input, p, train):
    """Whole channels (dim 1) of an input of 2 or more dims zeroed with probability p, the rest scaled by
    1/(1-p)."""
    return F._dropout_noise(input, p, train, feature=True, alpha=False)


def feature_alpha_dropout(input, p, train):
    return F.feature_alpha_dropout(input, p, train)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True):
    return F.group_norm(input, num_groups, weight, bias, eps)


def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled):
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps, cudnn_enabled):
    return F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """weight[indices]; a padding_idx of 0 or more gets no gradient (ATen's -1: none)."""
    return F.embedding(indices, weight, None if padding_idx < 0 else padding_idx,
                       scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


# ----------------------------------------------------------------------------- pooling (ATen's stride=(): the kernel)


def _stride(stride):
    return None if isinstance(stride, (tuple, list)) and not stride else stride


def max_pool1d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return F.max_pool1d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool2d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return F.max_pool2d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def avg_pool1d(input, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True):
    return F.avg_pool1d(input, kernel_size, _stride(stride), padding, ceil_mode, count_include_pad)


def adaptive_max_pool1d(input, output_size):
    """(values, indices), as ATen returns both."""
    return F.adaptive_max_pool1d(input, output_size, return_indices=True)


# ----------------------------------------------------------------------------- activations


def selu(input):
    return F.selu(input)


def celu(input, alpha=1.0):
    return F.celu(input, alpha)


def threshold(input, threshold, value):
    return F.threshold(input, threshold, value)


def _no_generator(fn, generator):
    if generator is not None:
        raise NotImplementedError(f"{fn}: generator= is not supported; the slopes are drawn from the default "
                                  f"generator (seed it with tr.manual_seed)")


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    _no_generator("rrelu", generator)
    return F.rrelu(input, lower, upper, training)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    _no_generator("rrelu_", generator)
    return F.rrelu_(input, lower, upper, training)


# ----------------------------------------------------------------------------- distances


def pdist(input, p=2.0):
    """The p-norm distance between each pair of rows i < j of a 2-D input, in the order (0, 1), (0, 2) ...,
    (1, 2) ..., as torch.pdist (gradient 0 where two rows are equal)."""
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    if p < 0:
        raise RuntimeError("pdist only supports non-negative p values")
    first, second = np.triu_indices(input.shape[0], 1)
    return (input[first] - input[second]).norm(p, dim=1)


# ----------------------------------------------------------------------------- losses (ATen's integer reduction)

REDUCTIONS = ("none", "mean", "sum")  # ATen's Reduction enum: 0, 1, 2


def _reduction(fn, reduction):
    if isinstance(reduction, bool) or not isinstance(reduction, numbers.Integral):
        raise TypeError(f"{fn}(): argument 'reduction' must be int, not {type(reduction).__name__}")
    if not 0 <= reduction < len(REDUCTIONS):
        raise ValueError(f"{fn}(): {reduction} is not a valid value for reduction (0 none, 1 mean, 2 sum)")
    return REDUCTIONS[reduction]


def kl_div(input, target, reduction=1, *, log_target=False):
    """Mean (1) is over every element, as ATen's (F.kl_div's 'batchmean' divides by the batch only)."""
    losses = F.kl_div(input, target, reduction="none", log_target=log_target)
    name = _reduction("kl_div", reduction)
    return losses if name == "none" else losses.mean() if name == "mean" else losses.sum()


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=1):
    return F.binary_cross_entropy_with_logits(input, target, weight, pos_weight=pos_weight,
                                              reduction=_reduction("binary_cross_entropy_with_logits", reduction))


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=1):
    return F.cosine_embedding_loss(input1, input2, target, margin,
                                   reduction=_reduction("cosine_embedding_loss", reduction))


def hinge_embedding_loss(input, target, margin=1.0, reduction=1):
    return F.hinge_embedding_loss(input, target, margin, reduction=_reduction("hinge_embedding_loss", reduction))


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=1):
    return F.margin_ranking_loss(input1, input2, target, margin,
                                 reduction=_reduction("margin_ranking_loss", reduction))


def poisson_nll_loss(input, target, log_input, full, eps, reduction):
    return F.poisson_nll_loss(input, target, log_input, full, eps=eps,
                              reduction=_reduction("poisson_nll_loss", reduction))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction=1):
    return F.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                 reduction=_reduction("triplet_margin_loss", reduction))


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction=1, zero_infinity=False):
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, _reduction("ctc_loss", reduction),
                      zero_infinity)


# ----------------------------------------------------------------------------- one step of a recurrent cell


def _gates(input, hx, w_ih, w_hh, b_ih, b_hh):
    return F.linear(input, w_ih, b_ih) + F.linear(hx, w_hh, b_hh)


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """tanh(input W_ih^T + b_ih + hx W_hh^T + b_hh)."""
    return _gates(input, hx, w_ih, w_hh, b_ih, b_hh).tanh()


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    return _gates(input, hx, w_ih, w_hh, b_ih, b_hh).relu()


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """(h', c') from hx = (h, c), gates i, f, g, o as torch.nn.LSTMCell."""
    if len(hx) != 2:
        raise RuntimeError(f"lstm_cell: expected hx to hold 2 tensors (h, c); got {len(hx)}")
    h, c = hx
    i, f, g, o = _gates(input, h, w_ih, w_hh, b_ih, b_hh).chunk(4, 1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """h' = n + z * (hx - n), gates r, z, n as torch.nn.GRUCell (the reset gate applied after W_hn)."""
    x_r, x_z, x_n = F.linear(input, w_ih, b_ih).chunk(3, 1)
    h_r, h_z, h_n = F.linear(hx, w_hh, b_hh).chunk(3, 1)
    r, z = (h_r + x_r).sigmoid(), (h_z + x_z).sigmoid()
    n = (x_n + h_n * r).tanh()
    return (hx - n) * z + n


# ----------------------------------------------------------------------------- window functions


def _cosine_sum(coefficients):
    """The window sum_k (-1)^k a_k cos(2 pi k n / (N - 1)), as ATen composes it."""
    def values(n, length):
        angle = n * (math.pi / (length - 1))
        return sum((-1) ** k * a * np.cos(2 * k * angle) for k, a in enumerate(coefficients))
    return values


def _bartlett(n, length):
    ramp = n * (2.0 / (length - 1))
    half = ((length - 1) >> 1) + 1
    ramp[half:] = 2 - ramp[half:]
    return ramp


def _kaiser(beta):
    def values(n, length):
        middle = (length - 1) / 2.0
        return np.i0(beta * np.sqrt(1 - ((n - middle) / middle) ** 2)) / np.i0(beta)
    return values


def _window(name, values, window_length, periodic, dtype, device, requires_grad):
    """A window of `window_length` points; periodic: the first window_length of one point longer (for
    spectral analysis). Computed in float64, then cast to dtype (the default float when None)."""
    dtype = dtypes.get_default_dtype() if dtype is None else dtypes.check(dtype, name)
    if dtype.kind != "f":
        raise RuntimeError(f"{name} expects floating point dtypes, got: {dtype}")
    if window_length < 0:
        raise RuntimeError(f"{name} requires non-negative window_length, got window_length={window_length}")
    if window_length <= 1:
        window = np.ones(window_length)
    else:
        length = window_length + 1 if periodic else window_length
        window = values(np.arange(length, dtype=np.float64), length)[:window_length]
    return tensor(window, dtype=dtype, device=backend.check_device(device), requires_grad=requires_grad)


def hann_window(window_length, periodic=True, *, dtype=None, device=None, requires_grad=False):
    """0.5 - 0.5 cos(2 pi n / (N - 1))."""
    return _window("hann_window", _cosine_sum((0.5, 0.5)), window_length, periodic, dtype, device, requires_grad)


def hamming_window(window_length, periodic=True, alpha=0.54, beta=0.46, *, dtype=None, device=None,
                   requires_grad=False):
    """alpha - beta cos(2 pi n / (N - 1))."""
    return _window("hamming_window", _cosine_sum((alpha, beta)), window_length, periodic, dtype, device,
                   requires_grad)


def blackman_window(window_length, periodic=True, *, dtype=None, device=None, requires_grad=False):
    """0.42 - 0.5 cos(2 pi n / (N - 1)) + 0.08 cos(4 pi n / (N - 1))."""
    return _window("blackman_window", _cosine_sum((0.42, 0.5, 0.08)), window_length, periodic, dtype, device,
                   requires_grad)


def bartlett_window(window_length, periodic=True, *, dtype=None, device=None, requires_grad=False):
    """The triangle 1 - |2n / (N - 1) - 1|."""
    return _window("bartlett_window", _bartlett, window_length, periodic, dtype, device, requires_grad)


def kaiser_window(window_length, periodic=True, beta=12.0, *, dtype=None, device=None, requires_grad=False):
    """I0(beta sqrt(1 - ((n - m) / m)^2)) / I0(beta), m = (N - 1) / 2."""
    return _window("kaiser_window", _kaiser(beta), window_length, periodic, dtype, device, requires_grad)
