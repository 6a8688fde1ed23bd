"""interpolate and the Upsample modules, as torch.nn: F.interpolate (F.upsample, F.upsample_nearest,
F.upsample_bilinear), Upsample, UpsamplingNearest2d and UpsamplingBilinear2d.

Every mode is separable, so each spatial dim is resampled in turn: output place o along a dim is a
sum of a few input places (its taps), gathered by index (a Getitem, whose VJP adds back) and weighted
by constants, so gradients of any order come from those primitives'. The taps are torch's CPU
kernels' (aten/src/ATen/native/UpSample.h and cpu/UpSampleKernel.cpp): the scale and the source
positions in the input's "opmath" type (float64 for float64 input, float32 below it), 1 / scale_factor
as the scale when a scale factor is given, and each source position rounded to float32 before its
floor (torch calls floorf), which decides the index at a boundary. 'area' is adaptive average pooling:
the windows of pooling's adaptive pools, averaged along each dim in turn.
"""
import collections
import numbers
import warnings

import numpy as np

from ..ops import where_tensor
from ..tensor import Tensor
from .checks import InputError
from .module import Module
from .pooling import _adaptive

# which input rank each interpolating mode (those that take align_corners) needs
INTERPOLATING = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
NEAREST = ("nearest", "nearest-exact", "area")
SPATIAL_NAMES = {1: "W", 2: "HW", 3: "DHW"}
CUBIC_A = -0.75   # torch's bicubic convolution constant
SMALL_2D = 128    # see _nearest_small_2d

# one dim's resampling: output place o is sum_k weight[k, o] * input[index[k, o]] (index and weight
# (taps, out)); weight None: the one tap itself (nearest); weight boolean: the mean of the taps it marks
Taps = collections.namedtuple("Taps", ["index", "weight"])


# ----------------------------------------------------------------------------- source positions

def _scale(n, out, align_corners, scale_factor, opmath):
    """Input places per output place, as torch's area_pixel_compute_scale."""
    if align_corners:
        return opmath(n - 1) / opmath(out - 1) if out > 1 else opmath(0)
    if scale_factor is not None and scale_factor > 0:
        return opmath(1.0 / scale_factor)
    return opmath(n) / opmath(out)


def _source(n, out, align_corners, scale_factor, opmath, cubic=False):
    """Where each output place lies in the input, as torch's area_pixel_compute_source_index: pixel
    centres unless align_corners, clamped at 0 except for cubic."""
    scale, o = _scale(n, out, align_corners, scale_factor, opmath), np.arange(out, dtype=opmath)
    if align_corners:
        return scale * o
    source = scale * (o + opmath(0.5)) - opmath(0.5)
    return source if cubic else np.maximum(source, opmath(0))


def _floorf(x):
    """floorf(x) as torch calls it: x rounded to float32 first."""
    return np.floor(x.astype(np.float32)).astype(np.int64)


def _index_and_fraction(n, source, opmath):
    """torch's guard_index_and_lambda: the place at or before each source position and how far past it."""
    index = np.minimum(_floorf(source), n - 1)
    return index, np.clip(source - index.astype(opmath), opmath(0), opmath(1))


# ----------------------------------------------------------------------------- taps of each mode

def _nearest(n, out, align_corners, scale_factor, opmath):
    source = _scale(n, out, False, scale_factor, opmath) * np.arange(out, dtype=opmath)
    return Taps(np.minimum(_floorf(source), n - 1)[None], None)


def _nearest_exact(n, out, align_corners, scale_factor, opmath):
    source = _source(n, out, False, scale_factor, opmath).astype(np.float64) + 0.5   # torch adds a double
    return Taps(np.minimum(_floorf(source), n - 1)[None], None)


def _linear(n, out, align_corners, scale_factor, opmath):
    if out == n:   # torch copies, whatever the scale factor
        index = np.arange(n)
        return Taps(np.stack([index, index]), np.stack([np.ones(n, opmath), np.zeros(n, opmath)]))
    index, fraction = _index_and_fraction(n, _source(n, out, align_corners, scale_factor, opmath), opmath)
    return Taps(np.stack([index, index + (index < n - 1)]), np.stack([opmath(1) - fraction, fraction]))


def _cubic_weights(t, a):
    """Keys' cubic convolution weights of the four places around a point t past the second one."""
    near = lambda x: ((a + 2) * x - (a + 3)) * x * x + 1   # |x| <= 1
    far = lambda x: ((a * x - 5 * a) * x + 8 * a) * x - 4 * a   # 1 < |x| < 2
    one = t.dtype.type(1)
    return np.stack([far(t + one), near(t), near(one - t), far(one - t + one)])


def _cubic(n, out, align_corners, scale_factor, opmath):
    source = _source(n, out, align_corners, scale_factor, opmath, cubic=True)
    index, fraction = _index_and_fraction(n, source, opmath)
    places = np.clip(index + np.arange(-1, 3)[:, None], 0, n - 1)
    return Taps(places, _cubic_weights(fraction, opmath(CUBIC_A)))


def _area(n, out, align_corners, scale_factor, opmath):
    windows = _adaptive(n, out)
    return Taps(windows.positions, windows.inside)


def _nearest_small_2d(n, out, scale_factor, exact):
    """torch's other nearest indices (nearest_idx, nearest_exact_idx), which its 2-D kernel takes for
    outputs of up to SMALL_2D places along H and W together: a float32 scale, and for 'nearest', an
    output of n or 2n places read as exactly 1 or 2 per input place."""
    scale, o = _scale(n, out, False, scale_factor, np.float32), np.arange(out)
    if exact:
        source = (o + 0.5) * np.float64(scale)   # a double product, floored as a float
    elif out in (n, 2 * n):
        return Taps((o * n // out)[None], None)
    else:
        source = o.astype(np.float32) * scale
    return Taps(np.minimum(_floorf(source), n - 1)[None], None)


TAPS = {"nearest": _nearest, "nearest-exact": _nearest_exact, "linear": _linear, "bilinear": _linear,
        "trilinear": _linear, "bicubic": _cubic, "area": _area}


def _resampled(x, dim, taps):
    """x with dim resampled by `taps`."""
    xp, trailing = x.xp, (1,) * (x.ndim - dim - 1)
    gathered = x[(slice(None),) * dim + (xp.asarray(taps.index),)]   # (..., taps, out, ...)
    if taps.weight is None:
        return gathered.squeeze(dim)
    weight = taps.weight.reshape(taps.weight.shape + trailing)
    if taps.weight.dtype == bool:
        count = taps.weight.sum(axis=0).reshape((-1,) + trailing)
        kept = where_tensor(xp.asarray(weight), gathered, 0.0)
        return kept.sum(dim=dim) / Tensor._make(xp.asarray(count.astype(x.dtype)), None)
    return (gathered * Tensor._make(xp.asarray(weight.astype(x.dtype)), None)).sum(dim=dim)


# ----------------------------------------------------------------------------- arguments

def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _output_size(input, dims, size, scale_factor):
    """(output sizes, scale factors or None), as torch's interpolate works them out."""
    spatial = list(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        if not isinstance(size, (list, tuple)):
            size = [size] * dims
        elif len(size) != dims:
            raise ValueError("Input and output must have the same number of spatial dimensions, but got input with "
                             f"spatial dimensions of {spatial} and output size of {size}. Please provide input "
                             "tensor in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, ...,oK) format.")
        if not all(_is_integer(s) for s in size):
            raise TypeError("expected size to be one of int or Tuple[int] or Tuple[int, int] or Tuple[int, int, "
                            f"int], but got size with types {[type(s) for s in size]}")
        return [int(s) for s in size], None
    if scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    if not isinstance(scale_factor, (list, tuple)):
        scale_factor = [scale_factor] * dims
    elif len(scale_factor) != dims:
        raise ValueError("Input and scale_factor must have the same number of spatial dimensions, but got input "
                         f"with spatial dimensions of {spatial} and scale_factor of shape {scale_factor}. Please "
                         "provide input tensor in (N, C, d1, d2, ...,dK) format and scale_factor in (s1, s2, "
                         "...,sK) format.")
    if any(isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Real) for s in scale_factor):
        raise TypeError(f"scale_factor must be a float or a tuple of {dims} floats; got {scale_factor!r}")
    products = [n * float(s) for n, s in zip(spatial, scale_factor)]
    if not all(np.isfinite(products)):
        raise InputError("value cannot be converted to type int64_t without overflow")
    return [int(p) for p in products], [float(s) for s in scale_factor]


def _check_sizes(input, out, mode):
    """torch's upsample checks: every input and output size positive, and no empty channel dim."""
    spatial, names = input.shape[2:], SPATIAL_NAMES[len(out)]
    if mode == "area":   # adaptive pooling: any output size, a non-empty input
        if 0 in spatial or any(o < 0 for o in out):
            raise InputError(f"adaptive_avg_pool{len(out)}d(): expected input to have non-zero size for "
                             f"non-batch dimensions and a non-negative output size; got input {tuple(input.shape)} "
                             f"and output size {tuple(out)}")
        return
    if min(spatial) <= 0 or min(out) <= 0:
        sizes = lambda values: ", ".join(f"{k}: {v}" for k, v in zip(names, values))
        joint = " and" if len(out) == 1 else ""
        raise InputError(f"Input and output sizes should be greater than 0, but got input ({sizes(spatial)}){joint} "
                         f"output ({sizes(out)})")
    if input.numel() == 0 and input.shape[1] == 0:
        raise InputError(f"Non-empty {input.ndim}D data tensor expected but got a tensor with sizes "
                         f"{list(input.shape)}")


def _check_mode(input, mode, align_corners, antialias):
    """The mode against the input's rank, as torch's interpolate refuses them."""
    if antialias and not (mode in ("bilinear", "bicubic") and input.ndim == 4):
        raise ValueError("Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and requires a 4-D "
                         "tensor as input")
    known = mode in TAPS and 3 <= input.ndim <= 5
    if known and mode in INTERPOLATING and INTERPOLATING[mode] != input.ndim:
        if mode == "bicubic":
            known = False
        else:
            needs = INTERPOLATING[mode]
            raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs {needs}D input")
    if not known:
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for "
                                  "the modes: nearest | linear | bilinear | bicubic | trilinear | lanczos | area | "
                                  f"nearest-exact (got {mode})")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported here")
    if mode not in ("nearest", "nearest-exact") and input.dtype.kind != "f":
        raise NotImplementedError(f"interpolate: mode {mode!r} needs floating point input; got {input.dtype}")


# ----------------------------------------------------------------------------- functional

def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None,
                antialias=False):
    """input (N, C, *spatial) resampled to `size`, or to floor(spatial * scale_factor), by `mode`:
    'nearest', 'nearest-exact', 'linear' (3-D), 'bilinear' and 'bicubic' (4-D), 'trilinear' (5-D) or
    'area' (adaptive average pooling), as torch.nn.functional.interpolate."""
    if not isinstance(input, Tensor):
        raise TypeError(f"interpolate: argument 'input' must be a Tensor, not {type(input).__name__}")
    if mode in NEAREST:
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: linear | bilinear | "
                             "bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    elif not isinstance(align_corners, (bool, np.bool_)):
        raise TypeError(f"interpolate: align_corners must be a bool; got {type(align_corners).__name__}")
    dims = input.ndim - 2
    out, scale_factors = _output_size(input, dims, size, scale_factor)
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if recompute_scale_factor or mode == "area":   # the kernels then see only the output size
        scale_factors = None
    _check_mode(input, mode, align_corners, antialias)
    _check_sizes(input, out, mode)
    opmath = np.float64 if input.dtype == np.float64 else np.float32
    small_2d = input.ndim == 4 and mode in ("nearest", "nearest-exact") and sum(out) <= SMALL_2D
    x = input
    for d, (n, o) in enumerate(zip(input.shape[2:], out)):
        factor = None if scale_factors is None else scale_factors[d]
        if small_2d:
            taps = _nearest_small_2d(n, o, factor, exact=mode == "nearest-exact")
        else:
            taps = TAPS[mode](n, o, bool(align_corners), factor, opmath)
        x = _resampled(x, 2 + d, taps)
    return x


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated in torch for interpolate, with the same warning here."""
    warnings.warn("`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """Deprecated in torch for interpolate(mode='nearest'), with the same warning here."""
    warnings.warn("`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """Deprecated in torch for interpolate(mode='bilinear', align_corners=True), with the same warning here."""
    warnings.warn("`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ----------------------------------------------------------------------------- modules

class Upsample(Module):
    """F.interpolate as a layer, its arguments fixed at construction."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self):
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return f"{info}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
