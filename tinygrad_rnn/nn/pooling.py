"""Pooling as in torch.nn: MaxPool1d/2d/3d, AvgPool1d/2d/3d, AdaptiveMaxPool1d/2d/3d,
AdaptiveAvgPool1d/2d/3d and their F. functions (and F.*_with_indices), composed from primitives.

Evenly spaced windows are copied out as the convolutions' are (`windows_of`, strided copies), from
the input padded with -inf (maximum) or 0 (average) where they reach past it: into the padding, or
past the end with ceil_mode. Adaptive windows run from floor(o * n / out) to ceil((o + 1) * n / out),
as torch's; unless n is a multiple of out they are uneven, gathered by index at positions clamped into
the window, and the places past a window's end set to that same -inf or 0. The gradient of a maximum
goes to the first maximal element inside the window (a window of -infs included), as torch's (for a
window with NaNs, torch picks its last NaN and this its first).
"""
import collections
import math
import numbers

import numpy as np

from .. import backend
from ..methods import _computed
from ..ops import where_tensor
from ..tensor import Tensor
from . import functional
from .checks import InputError, check_flag
from .conv import ntuple, on_own_axes, spatial_input, window_positions, windows_of
from .module import Module

# one dim's windows: positions (kernel, out) clamped into the input, which of them lie inside it, how
# many of each window's places lie inside the input and its padding (count_include_pad's divisor), and
# for evenly spaced windows (else None) their Grid
Windows = collections.namedtuple("Windows", ["positions", "inside", "padded_count", "grid"])
# kernel, stride and dilation of evenly spaced windows over the input with `before` places added
# before it and `after` after it
Grid = collections.namedtuple("Grid", ["kernel", "stride", "dilation", "before", "after"])
SHORT_WINDOW = 16   # up to here NumPy finds each window's first maximum faster in a loop over its places


def _strided(size, kernel, stride, padding, dilation, out):
    raw = window_positions(kernel, stride, dilation, out, offset=padding)
    inside = (raw >= 0) & (raw < size)
    first = np.clip(raw[inside.argmax(axis=0), np.arange(out)], 0, max(size - 1, 0))
    padded_count = ((raw >= -padding) & (raw < size + padding)).sum(axis=0)
    # what the last window reaches past the end; where it stops short, by less than a stride, the
    # elements it leaves make no further window
    after = max((out - 1) * stride + (kernel - 1) * dilation - padding + 1 - size, 0)
    return Windows(np.where(inside, raw, first), inside, padded_count, Grid(kernel, stride, dilation, padding, after))


def _adaptive(size, out):
    starts = np.arange(out) * size // out
    ends = -(-(np.arange(out) + 1) * size // out)
    kernel = int((ends - starts).max()) if out else 0
    raw = starts + np.arange(kernel)[:, None]
    inside = raw < ends
    even = out and size % out == 0
    grid = Grid(size // out, size // out, 1, 0, 0) if even else None
    return Windows(np.minimum(raw, ends - 1), inside, inside.sum(axis=0), grid)


def _constant(x, array):
    """A constant tensor of x's dtype on x's device."""
    return Tensor._make(x.xp.asarray(np.asarray(array, dtype=x.dtype)), None)


def _inside(windows):
    """(*kernel, *out): whether each place of each window lies inside the input (and adaptive window)."""
    return math.prod(on_own_axes([w.inside for w in windows])).astype(bool)


def _window_values(x, windows, fill):
    """x's windows (N, C, *kernel, *out), the places outside the input (or the adaptive window) `fill`."""
    if any(w.grid is None for w in windows):
        gathered = x[(slice(None), slice(None)) + tuple(on_own_axes([w.positions for w in windows]))]
        inside = _inside(windows)
        return gathered if np.all(inside) else where_tensor(x.xp.asarray(inside), gathered, fill)
    grids = [w.grid for w in windows]
    pads = tuple(p for g in reversed(grids) for p in (g.before, g.after))
    if any(pads):
        x = functional.pad(x, pads, value=fill)
    return windows_of(x, *zip(*[(g.kernel, g.stride, g.dilation) for g in grids]))


# ----------------------------------------------------------------------------- the two reductions

def _first_maximum(flat, inside):
    """Where each window's (axis 2's) first maximal element inside the input lies (a NaN first)."""
    xp = backend.xp_of(flat)
    hit = (flat == flat.max(axis=2, keepdims=True)) | xp.isnan(flat)
    if not np.all(inside):   # outside places hold -inf: a maximum only in a window of -infs
        hit &= xp.asarray(inside)
    kernel = flat.shape[2]
    if xp is not np or kernel > SHORT_WINDOW:
        return hit.argmax(axis=2)
    picked = np.zeros(hit.shape[:2] + hit.shape[3:], dtype=np.int64)
    for k in reversed(range(kernel)):   # the first hit written last
        np.copyto(picked, k, where=hit[:, :, k])
    return picked


def _maximum(x, windows, return_indices, unbatched):
    """The maximum of each window (gradient to its first maximal element), and where it lies in the
    flattened spatial input (torch's indices) if return_indices."""
    batch, channels, sizes = x.shape[0], x.shape[1], x.shape[2:]
    kernel = math.prod(w.positions.shape[0] for w in windows)
    out = tuple(w.positions.shape[1] for w in windows)
    flat = _window_values(x, windows, -np.inf).reshape((batch, channels, kernel, *out))
    if flat.numel() == 0:   # nothing to take a maximum of: an empty result of the right shape
        values, picked = flat.sum(dim=2), x.xp.zeros((batch, channels, *out), dtype=np.int64)
    else:
        inside = _inside(windows).reshape((kernel, *out))
        picked = _first_maximum(flat.array, inside)
        chosen = x.xp.arange(kernel).reshape((kernel,) + (1,) * len(out)) == picked[:, :, None]
        values = where_tensor(chosen, flat, -0.0).sum(dim=2)   # the picked element and -0s: exact
    if unbatched:
        values = values.squeeze(0)
    if not return_indices:
        return values
    row = [math.prod(sizes[j + 1:]) for j in range(len(sizes))]
    places = sum(p * r for p, r in zip(on_own_axes([w.positions for w in windows]), row))
    table = x.xp.asarray(places.reshape(-1))   # (*kernel, *out) flattened: k * count + o
    count = math.prod(out)
    indices = table[picked.reshape(batch, channels, count) * count + x.xp.arange(count)]
    indices = indices.reshape(picked.shape).astype(np.int64)
    return values, _computed(indices[0] if unbatched else indices, "the indices of a max pooling")


def _average(x, windows, divisor, unbatched):
    """The sum of each window's places inside the input, over `divisor` ((*out,) per window)."""
    m = len(windows)
    y = _window_values(x, windows, 0.0).sum(dim=tuple(range(2, 2 + m))) / _constant(x, divisor)
    return y.squeeze(0) if unbatched else y


# ----------------------------------------------------------------------------- arguments

def _pool_geometry(owner, dims, kernel_size, stride, padding, dilation=1):
    """(kernel, stride, padding, dilation) as tuples of `dims` ints, checked as torch checks them."""
    kernel = ntuple(owner, "kernel_size", kernel_size, dims, minimum=1)
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and not stride) else \
        ntuple(owner, "stride", stride, dims, minimum=1)
    padding = ntuple(owner, "padding", padding, dims, minimum=0)
    dilation = ntuple(owner, "dilation", dilation, dims, minimum=1)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise InputError(f"{owner}: pad should be at most half of kernel size, but got padding={padding} and "
                         f"kernel_size={kernel}")
    return kernel, stride, padding, dilation


def _strided_windows(owner, x, kernel, stride, padding, dilation, ceil_mode):
    ceil_mode = check_flag("ceil_mode", ceil_mode)
    sizes, out = x.shape[2:], []
    for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation):
        o = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
        # with ceil_mode, the last window must start inside the input or its left padding
        out.append(o - 1 if ceil_mode and (o - 1) * s >= n + p else o)
    if any(o < 1 for o in out):
        raise InputError(f"{owner}: Given input size: {tuple(sizes)}. Calculated output size: {tuple(out)}. "
                         f"Output size is too small")
    return [_strided(*args) for args in zip(sizes, kernel, stride, padding, dilation, out)]


def _adaptive_windows(owner, x, output_size, dims):
    given = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * dims
    if len(given) != dims:
        raise InputError(f"{owner}: output_size must be an int or a tuple of {dims}; got {output_size!r}")
    sizes = x.shape[2:]
    # None keeps that dim's input size, as torch's adaptive 2-D pooling
    out = ntuple(owner, "output_size", [n if o is None else o for o, n in zip(given, sizes)], dims, minimum=0)
    if 0 in sizes:
        raise InputError(f"{owner}: expected input to have non-zero size for non-batch dimensions; got "
                         f"shape {x.shape}")
    return [_adaptive(n, o) for n, o in zip(sizes, out)]


# ----------------------------------------------------------------------------- functional

def _max_pool(owner, dims, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, unbatched = spatial_input(owner, input, dims)
    geometry = _pool_geometry(owner, dims, kernel_size, stride, padding, dilation)
    windows = _strided_windows(owner, x, *geometry, ceil_mode)
    return _maximum(x, windows, check_flag("return_indices", return_indices), unbatched)


def _avg_pool(owner, dims, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override=None):
    x, unbatched = spatial_input(owner, input, dims)
    windows = _strided_windows(owner, x, *_pool_geometry(owner, dims, kernel_size, stride, padding), ceil_mode)
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, numbers.Integral):
            raise TypeError(f"{owner}: divisor_override must be an int or None; got {divisor_override!r}")
        if divisor_override == 0:
            raise InputError(f"{owner}: divisor must be not zero (divisor_override=0)")
        divisor = np.full([w.positions.shape[1] for w in windows], divisor_override)
    else:
        counts = [w.padded_count if check_flag("count_include_pad", count_include_pad) else w.inside.sum(axis=0)
                  for w in windows]
        divisor = math.prod(on_own_axes(counts, kernel_axes=False))
    return _average(x, windows, divisor, unbatched)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """The maximum of each window of (N, C, L) or (C, L); with return_indices, also where it lies."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """The maximum of each window of (N, C, H, W) or (C, H, W); with return_indices, also where it lies
    (h * W + w)."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """The maximum of each window of (N, C, D, H, W) or (C, D, H, W); with return_indices, also where it
    lies (d * H * W + h * W + w)."""
    return _max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """The mean of each window of (N, C, L) or (C, L), zero padding counted if count_include_pad."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """The mean of each window of (N, C, H, W) or (C, H, W), zero padding counted if count_include_pad;
    divisor_override divides each window's sum by itself instead."""
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """The mean of each window of (N, C, D, H, W) or (C, D, H, W), as avg_pool2d."""
    return _avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _adaptive_max_pool(owner, dims, input, output_size, return_indices):
    x, unbatched = spatial_input(owner, input, dims)
    windows = _adaptive_windows(owner, x, output_size, dims)
    return _maximum(x, windows, check_flag("return_indices", return_indices), unbatched)


def _adaptive_avg_pool(owner, dims, input, output_size):
    x, unbatched = spatial_input(owner, input, dims)
    windows = _adaptive_windows(owner, x, output_size, dims)
    divisor = math.prod(on_own_axes([w.inside.sum(axis=0) for w in windows], kernel_axes=False))
    return _average(x, windows, divisor, unbatched)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    return _adaptive_max_pool("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    return _adaptive_max_pool("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    return _adaptive_max_pool("adaptive_max_pool3d", 3, input, output_size, return_indices)


def adaptive_avg_pool1d(input, output_size):
    return _adaptive_avg_pool("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input, output_size):
    return _adaptive_avg_pool("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool3d(input, output_size):
    return _adaptive_avg_pool("adaptive_avg_pool3d", 3, input, output_size)


def _max_pool_with_indices(dims):
    """torch's F.max_pool<dims>d_with_indices: (values, indices), whatever return_indices says."""
    name = f"max_pool{dims}d_with_indices"

    def max_pool_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                              return_indices=False):
        return _max_pool(name, dims, input, kernel_size, stride, padding, dilation, ceil_mode, True)
    max_pool_with_indices.__name__ = max_pool_with_indices.__qualname__ = name
    return max_pool_with_indices


def _adaptive_max_pool_with_indices(dims):
    """torch's F.adaptive_max_pool<dims>d_with_indices: (values, indices), whatever return_indices says."""
    name = f"adaptive_max_pool{dims}d_with_indices"

    def adaptive_max_pool_with_indices(input, output_size, return_indices=False):
        return _adaptive_max_pool(name, dims, input, output_size, True)
    adaptive_max_pool_with_indices.__name__ = adaptive_max_pool_with_indices.__qualname__ = name
    return adaptive_max_pool_with_indices


max_pool1d_with_indices, max_pool2d_with_indices, max_pool3d_with_indices = map(_max_pool_with_indices, (1, 2, 3))
adaptive_max_pool1d_with_indices, adaptive_max_pool2d_with_indices, adaptive_max_pool3d_with_indices = map(
    _adaptive_max_pool_with_indices, (1, 2, 3))


# ----------------------------------------------------------------------------- modules

class _MaxPoolNd(Module):
    dims = None

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        _pool_geometry(type(self).__name__, self.dims, kernel_size, stride, padding, dilation)  # checks early
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices = check_flag("return_indices", return_indices)
        self.ceil_mode = check_flag("ceil_mode", ceil_mode)

    def forward(self, input):
        return _max_pool(type(self).__name__, self.dims, input, self.kernel_size, self.stride, self.padding,
                         self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """The maximum of each window of (N, C, L) or (C, L), as torch.nn.MaxPool1d."""
    dims = 1


class MaxPool2d(_MaxPoolNd):
    """The maximum of each window of (N, C, H, W) or (C, H, W), as torch.nn.MaxPool2d."""
    dims = 2


class MaxPool3d(_MaxPoolNd):
    """The maximum of each window of (N, C, D, H, W) or (C, D, H, W), as torch.nn.MaxPool3d."""
    dims = 3


class AvgPool1d(Module):
    """The mean of each window of (N, C, L) or (C, L), as torch.nn.AvgPool1d (its sizes kept as 1-tuples)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size, self.stride, self.padding, _ = _pool_geometry("AvgPool1d", 1, kernel_size, stride,
                                                                        padding)
        self.ceil_mode = check_flag("ceil_mode", ceil_mode)
        self.count_include_pad = check_flag("count_include_pad", count_include_pad)

    def forward(self, input):
        return _avg_pool("AvgPool1d", 1, input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                         self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AvgPoolNd(Module):
    """torch's AvgPool2d / AvgPool3d: the mean of each window, the arguments kept as given."""
    dims = None

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        _pool_geometry(type(self).__name__, self.dims, kernel_size, stride, padding)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = check_flag("ceil_mode", ceil_mode)
        self.count_include_pad = check_flag("count_include_pad", count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, input):
        return _avg_pool(type(self).__name__, self.dims, input, self.kernel_size, self.stride, self.padding,
                         self.ceil_mode, self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPoolNd):
    """The mean of each window of (N, C, H, W) or (C, H, W), as torch.nn.AvgPool2d."""
    dims = 2


class AvgPool3d(_AvgPoolNd):
    """The mean of each window of (N, C, D, H, W) or (C, D, H, W), as torch.nn.AvgPool3d."""
    dims = 3


class _AdaptivePoolNd(Module):
    pool = None

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return self.pool(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        self.return_indices = check_flag("return_indices", return_indices)

    def forward(self, input):
        return self.pool(input, self.output_size, self.return_indices)


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    """The mean of each of output_size near-equal windows of (N, C, L) or (C, L)."""
    pool = staticmethod(adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    """The mean of each of output_size near-equal windows of (N, C, H, W) or (C, H, W) (None keeps a size)."""
    pool = staticmethod(adaptive_avg_pool2d)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """The maximum of each of output_size near-equal windows of (N, C, L) or (C, L)."""
    pool = staticmethod(adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """The maximum of each of output_size near-equal windows of (N, C, H, W) or (C, H, W)."""
    pool = staticmethod(adaptive_max_pool2d)


class AdaptiveAvgPool3d(_AdaptivePoolNd):
    """The mean of each of output_size near-equal windows of (N, C, D, H, W) or (C, D, H, W) (None keeps a size)."""
    pool = staticmethod(adaptive_avg_pool3d)


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """The maximum of each of output_size near-equal windows of (N, C, D, H, W) or (C, D, H, W)."""
    pool = staticmethod(adaptive_max_pool3d)
