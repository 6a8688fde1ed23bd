"""The loss around the current weights, and training with and without gradient clipping.

An RNN's loss can hold cliffs: next to a flat region a thin wall where the gradient is huge,
because a small change of weight flips where the recurrence settles (Pascanu et al. 2013). A
plain gradient step that lands on the wall is thrown far away; clipping the gradient's norm to
`max_norm` bounds the step, so training steps over the cliff instead.

Directions and weight vectors are host numpy arrays, one per parameter, in the order of
`params`. `loss_fn` is a function of no arguments that computes the loss with the parameters'
current values and returns a scalar Tensor (or a number when only evaluated).
"""
import numpy as np

from .. import backend
from ..nn.utils import clip_grad_norm_
from ..tensor import Tensor, no_grad
from .progress import progress

# --------------------------------------------------------------------------- directions

def random_direction(params, rng=None, scale="parameter"):
    """A Gaussian direction in parameter space.

    scale="parameter": each parameter's part has that parameter's norm (so a step of 1 changes
    every weight matrix by about its own size; Li et al. 2018 do the same per filter);
    scale="unit": the whole direction has norm 1.
    """
    params = _params(params)
    rng = np.random.default_rng(rng)
    direction = [rng.standard_normal(p.shape) for p in params]
    if scale == "parameter":
        return [d * (np.linalg.norm(_host(p)) / max(np.linalg.norm(d), 1e-12))
                for d, p in zip(direction, params)]
    if scale == "unit":
        return _unit(direction)
    raise ValueError(f"scale must be 'parameter' or 'unit'; got {scale!r}")


def gradient_direction(loss_fn, params):
    """The steepest-descent direction -dL/dparams at the current weights, scaled to norm 1."""
    params = _params(params)
    saved = [p.grad for p in params]
    try:
        for p in params:
            p.grad = None
        _scalar(loss_fn()).backward()
        grads = [np.zeros(p.shape) if p.grad is None else -_host(p.grad.array) for p in params]
    finally:
        for p, g in zip(params, saved):
            p.grad = g
    return _unit(grads)


def axis_direction(params, index, entry=None):
    """The direction that moves one parameter (`params[index]`), or one entry of it, alone; norm 1."""
    params = _params(params)
    direction = [np.zeros(p.shape) for p in params]
    if entry is None:
        direction[index][...] = 1.0
    else:
        direction[index][entry] = 1.0
    return _unit(direction)


# --------------------------------------------------------------------------- slices of the loss

def loss_along_line(loss_fn, params, direction, alphas):
    """L(weights + alpha * direction) for each alpha; the weights are restored afterwards."""
    params, alphas = _params(params), list(alphas)
    origin = weights_of(params)
    try:
        with progress(len(alphas), "loss along a line") as bar:
            return np.array([_evaluate(loss_fn, params, _moved(origin, [(a, direction)]), bar) for a in alphas])
    finally:
        set_weights(params, origin)


def loss_on_plane(loss_fn, params, directions, alphas, betas):
    """L(weights + a * d1 + b * d2) on the grid, shape (len(betas), len(alphas)) (rows follow b,
    as matplotlib's contour expects); the weights are restored afterwards."""
    params = _params(params)
    d1, d2 = directions
    alphas, betas = list(alphas), list(betas)
    origin = weights_of(params)
    try:
        with progress(len(alphas) * len(betas), "loss on a plane") as bar:
            return np.array([[_evaluate(loss_fn, params, _moved(origin, [(a, d1), (b, d2)]), bar)
                              for a in alphas] for b in betas])
    finally:
        set_weights(params, origin)


def plane_coordinates(weights, origin, directions):
    """The (a, b) with origin + a * d1 + b * d2 closest to each weight vector (least squares).

    `weights` is one list of arrays or a sequence of them (a trajectory's "weights"); returns an
    array (N, 2).
    """
    basis = np.stack([flatten(d) for d in directions], axis=1)
    points = np.atleast_2d(np.stack([flatten(w) for w in weights]) if _is_sequence_of_lists(weights)
                           else flatten(weights))
    coords, *_ = np.linalg.lstsq(basis, (points - flatten(origin)).T, rcond=None)
    return coords.T


# --------------------------------------------------------------------------- training runs

def train(loss_fn, params, optimizer, steps, max_norm=None):
    """`steps` updates of `optimizer` on `loss_fn`, optionally clipping the gradient norm first.

    Returns a dict of arrays: "loss" (before each update), "grad_norm" (the gradient's norm before
    clipping), "clipped_norm" (the norm of the gradient the optimizer used), "update_norm"
    (||weights after - weights before|| of each update) and "weights" (a list of the steps + 1
    weight vectors, as lists of arrays). The parameters keep their trained values.
    """
    params = _params(params)
    history = {key: [] for key in ("loss", "grad_norm", "clipped_norm", "update_norm")}
    weights = [weights_of(params)]
    with progress(steps, "training" if max_norm is None else "training, clipped") as bar:
        for _ in range(steps):
            optimizer.zero_grad()
            loss = _scalar(loss_fn())
            loss.backward()
            before = gradient_norm(params)
            if max_norm is not None:
                clip_grad_norm_(params, max_norm)
            history["grad_norm"].append(before)
            history["clipped_norm"].append(gradient_norm(params))
            history["loss"].append(loss.item())
            optimizer.step()
            weights.append(weights_of(params))
            history["update_norm"].append(float(np.linalg.norm(flatten(weights[-1]) - flatten(weights[-2]))))
            bar.update(1)
    result = {key: np.array(values) for key, values in history.items()}
    result["weights"] = weights
    return result


def clipping_runs(loss_fn, params, make_optimizer, steps, max_norm):
    """One run without and one with clipping at `max_norm`, both from the current weights.

    `make_optimizer(params)` builds a fresh optimizer for each run. Returns
    {"unclipped": train(...), "clipped": train(...)}; the weights are restored afterwards.
    """
    params = _params(params)
    start = weights_of(params)
    runs = {}
    try:
        for label, clip in (("unclipped", None), ("clipped", max_norm)):
            set_weights(params, start)
            runs[label] = train(loss_fn, params, make_optimizer(params), steps, max_norm=clip)
    finally:
        set_weights(params, start)
        for p in params:
            p.grad = None
    return runs


# --------------------------------------------------------------------------- weight vectors

def weights_of(params):
    """Host float64 copies of the parameters' values."""
    return [_host(p).copy() for p in _params(params)]


def set_weights(params, weights):
    """Copy host arrays into the parameters, keeping each parameter's dtype and device."""
    for p, w in zip(_params(params), weights):
        if tuple(w.shape) != p.shape:
            raise ValueError(f"a weight of shape {tuple(w.shape)} cannot go into a parameter of shape {p.shape}")
        p.array = backend.to_device(np.asarray(w, dtype=p.dtype).copy(), p.device)


def flatten(arrays):
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])


def gradient_norm(params):
    """The 2-norm of all parameter gradients taken together (what clip_grad_norm_ clips)."""
    return float(np.sqrt(sum((_host(p.grad.array) ** 2).sum() for p in params if p.grad is not None)))


# --------------------------------------------------------------------------- helpers

def _params(params):
    params = list(params.parameters()) if hasattr(params, "parameters") else list(params)
    if not params or not all(isinstance(p, Tensor) for p in params):
        raise TypeError("params must be a Module or a non-empty list of Tensors")
    return params


def _host(array):
    data = array.array if isinstance(array, Tensor) else array
    return np.asarray(backend.to_numpy(data), dtype=np.float64)


def _unit(direction):
    norm = np.linalg.norm(flatten(direction))
    if norm == 0:
        raise ValueError("the direction is zero (a zero gradient?): it cannot be scaled to norm 1")
    return [d / norm for d in direction]


def _moved(origin, steps):
    return [w + sum(a * d[i] for a, d in steps) for i, w in enumerate(origin)]


def _evaluate(loss_fn, params, weights, bar):
    set_weights(params, weights)
    with no_grad():
        loss = loss_fn()
    bar.update(1)
    return float(loss.item() if isinstance(loss, Tensor) else loss)


def _scalar(loss):
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar Tensor; got "
                         f"{getattr(loss, 'shape', type(loss).__name__)}")
    return loss


def _is_sequence_of_lists(weights):
    return len(weights) > 0 and isinstance(weights[0], (list, tuple))
