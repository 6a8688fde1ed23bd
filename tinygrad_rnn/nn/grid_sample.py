"""F.affine_grid and F.grid_sample (bilinear and nearest; zeros, border and reflection padding), as in
torch.nn.functional, over 2-D (N, C, H, W) and 3-D (N, C, D, H, W) inputs, composed from primitives.

A sample's place is unnormalised from [-1, 1] to pixels, folded into the input by the padding mode
(its gradient that of the clamps, absolute values and fmods doing it), then read from the 2^dims
pixels around it by gather (nearest: the one pixel nearest, the grid then getting no gradient), those
outside the input counting zero. The weights (x0 + 1 - x, x - x0) have x0 detached, so the grid's
gradient is torch's.
"""
import itertools
import math
import warnings

import numpy as np

from ..ops import where_tensor
from ..tensor import Tensor
from .checks import check_tensor

MODES = ("bilinear", "nearest")
PADDING_MODES = ("zeros", "border", "reflection")


def _align_corners(align_corners):
    if align_corners is None:
        warnings.warn("Default grid_sample and affine_grid behavior has changed to align_corners=False since "
                      "1.3.0. Please specify align_corners=True if the old behavior is desired. See the "
                      "documentation of grid_sample for details.", stacklevel=3)
        return False
    return bool(align_corners)


def _steps(count, align_corners):
    """torch's linspace_from_neg_one: the centres (or, with align_corners, the corners) of `count` pixels."""
    if count <= 1:
        return np.zeros(count)
    steps = np.linspace(-1.0, 1.0, count)
    return steps if align_corners else steps * (count - 1) / count


def affine_grid(theta, size, align_corners=None):
    """The sampling grid (N, H, W, 2) (or (N, D, H, W, 3)) of the affine maps theta (N, 2, 3) (or (N, 3, 4))
    applied to the normalised pixel positions of an output of `size` (N, C, H, W) (or (N, C, D, H, W))."""
    align_corners = _align_corners(align_corners)
    check_tensor("affine_grid", "theta", theta)
    if theta.dtype.kind != "f":
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    size = [int(n) for n in size]
    if len(size) not in (4, 5):
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {size}.")
    dims = len(size) - 2
    if theta.ndim != 3 or theta.shape[-2:] != (dims, dims + 1):
        raise ValueError(f"Expected a batch of {dims}D affine matrices of shape Nx{dims}x{dims + 1} for size "
                         f"{size}. Got {theta.shape}.")
    spatial = size[2:]
    if align_corners and min(spatial) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the "
                      "documentation of affine_grid for details.", stacklevel=2)
    elif min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")
    # (*spatial, dims + 1): x (the last dim's position) first, then y (and z), then 1
    axes = np.meshgrid(*[_steps(n, align_corners) for n in spatial], indexing="ij")
    base = np.stack([*reversed(axes), np.ones(spatial)], axis=-1).reshape(1, -1, dims + 1)
    base = Tensor._make(theta.xp.asarray(base.astype(theta.dtype)), None)
    return (base @ theta.transpose(1, 2)).reshape((size[0], *spatial, dims))


def _unnormalized(coordinate, size, align_corners):
    if align_corners:
        return (coordinate + 1) / 2 * (size - 1)
    return ((coordinate + 1) * size - 1) / 2


def _reflected(coordinate, twice_low, twice_high):
    """torch's reflect_coordinates: folded into [low, high] by reflections at its ends."""
    if twice_low == twice_high:
        return coordinate * 0.0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    distance = (coordinate - low).abs()
    extra = distance.fmod(span)
    flips = np.floor(distance.array / span)
    return where_tensor(distance.xp.asarray(flips % 2 == 0), extra + low, span - extra + low)


def _source_place(coordinate, size, padding_mode, align_corners):
    """The pixel position a normalised coordinate reads, as torch's grid_sampler_compute_source_index."""
    x = _unnormalized(coordinate, size, align_corners)
    if padding_mode == "reflection":
        x = _reflected(x, 0, 2 * (size - 1)) if align_corners else _reflected(x, -1, 2 * size - 1)
    if padding_mode != "zeros":
        x = x.clamp(0, size - 1)
    return x


def _read(flat, places, sizes):
    """flat (N, C, prod(sizes)) at integer places (one (N, *out) array per dim), zero outside the input."""
    xp = flat.xp
    inside = xp.ones(places[0].shape, dtype=bool)
    index = xp.zeros(places[0].shape, dtype=np.int64)
    for place, n in zip(places, sizes):
        inside &= (place >= 0) & (place < n)
        index = index * n + xp.clip(place, 0, n - 1).astype(np.int64)
    batch, channels = flat.shape[:2]
    gathered = flat.gather(2, Tensor._make(xp.broadcast_to(index.reshape(batch, 1, -1),
                                                           (batch, channels, index[0].size)), None))
    mask = Tensor._make(inside.reshape(batch, 1, -1).astype(flat.dtype), None)
    return gathered * mask


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """input (N, C, H, W) (or (N, C, D, H, W)) read at the grid's (N, H_out, W_out, 2) (or (..., 3))
    normalised places (x, y(, z)) in [-1, 1]: (N, C, H_out, W_out) (or (N, C, D_out, H_out, W_out))."""
    check_tensor("grid_sample", "input", input)
    check_tensor("grid_sample", "grid", grid)
    if mode not in MODES:
        raise (NotImplementedError if mode == "bicubic" else ValueError)(
            f"nn.functional.grid_sample(): expected mode to be 'bilinear' or 'nearest', but got: '{mode}'")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    align_corners = _align_corners(align_corners)
    dims = input.ndim - 2
    if dims not in (2, 3) or grid.ndim != input.ndim or grid.shape[-1] != dims or grid.shape[0] != input.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected a 4-D or 5-D input and a grid of the same dims with its "
                           f"last of size 2 or 3 (the input's spatial dims) and the same batch, but got input "
                           f"{list(input.shape)} and grid {list(grid.shape)}")
    if input.dtype != grid.dtype:
        raise RuntimeError(f"grid_sampler(): expected input and grid to have the same dtype, but input has "
                           f"{input.dtype} and grid has {grid.dtype}")
    sizes = input.shape[2:]
    out = grid.shape[1:-1]
    # the grid's coordinates come x (the last dim) first
    places = [_source_place(grid[..., dims - 1 - j], sizes[j], padding_mode, align_corners) for j in range(dims)]
    flat = input.reshape(input.shape[0], input.shape[1], math.prod(sizes))
    if mode == "nearest":
        y = _read(flat, [grid.xp.round(p.array).astype(np.int64) for p in places], sizes)
    else:
        floors = [grid.xp.floor(p.array) for p in places]
        y = None
        for corner in itertools.product((0, 1), repeat=dims):
            weight = math.prod((p - f) if c else (1 + f - p)   # f is a constant: the grid's gradient is torch's
                               for p, f, c in zip(places, floors, corner))
            value = _read(flat, [(f + c).astype(np.int64) for f, c in zip(floors, corner)], sizes)
            term = value * weight.reshape(weight.shape[0], 1, -1)
            y = term if y is None else y + term
    return y.reshape((input.shape[0], input.shape[1], *out))
