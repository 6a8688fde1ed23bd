"""torch.autograd.forward_ad: dual tensors for forward-mode AD, on the primitives' own JVP rules.

Inside a dual level every op pushes its inputs' tangents forward through its `jvp` (the rule
tr.func.jvp uses), so `unpack_dual(f(make_dual(x, v))).tangent` is J(x) v from one forward pass.
When the level exits, every tensor that got a tangent inside it loses it. As torch, one level at a
time: nested levels, or a level inside tr.func.jvp, are refused.
"""
from typing import NamedTuple

from . import ops
from .tensor import Tensor, _state, note_dual

__all__ = ["UnpackedDualTensor", "dual_level", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual"]

_current_level = -1


def enter_dual_level():
    """Open a new forward-mode level (the only one) and return its index."""
    global _current_level
    if _current_level >= 0 or _state.forward_ad:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    _state.forward_ad, _state.duals = True, []
    _current_level = 0
    return _current_level


def exit_dual_level(*, level=None):
    """Close the level: every tangent given inside it is dropped."""
    global _current_level
    level = _current_level if level is None else level
    if level < 0:
        raise RuntimeError("Dual level must be a positive number.")
    if level != _current_level:
        raise RuntimeError("Trying to exit a forward AD level that was not the last one that was created. This is "
                           "not supported.")
    for ref in _state.duals:
        t = ref()
        if t is not None:
            t._tangent = None
    _state.forward_ad, _state.duals = False, None
    _current_level = level - 1


def _level(level):
    level = _current_level if level is None else level
    if level >= 0 and level != _current_level:
        raise RuntimeError(f"forward AD level {level} does not exist; the current level is {_current_level}")
    return level


def _alias(tensor):
    """A new tensor sharing `tensor`'s memory and its place in the graph, with no tangent."""
    _state.forward_ad = False
    try:
        return ops.Reshape.apply(tensor, shape=tensor.shape)
    finally:
        _state.forward_ad = True


def make_dual(tensor, tangent, *, level=None):
    """A new tensor aliasing `tensor` that carries `tangent` forward through the ops applied to it."""
    if _level(level) < 0:
        raise RuntimeError("Trying to create a dual Tensor for forward AD but no level exists, make sure to "
                           "enter_dual_level() first.")
    for what, t in (("primal", tensor), ("tangent", tangent)):
        if not isinstance(t, Tensor):
            raise TypeError(f"make_dual: the {what} must be a Tensor; got {type(t).__name__}")
        if t.dtype.kind not in "fc":
            raise ValueError(f"Expected {what} to be floating point or complex, but got: {t.dtype}")
    if tangent.shape != tensor.shape:
        raise RuntimeError(f"Trying to set a forward gradient that has a different size than that of the original "
                           f"Tensor, this is not supported. Tensor is of size {list(tensor.shape)} while the given "
                           f"forward gradient is of size {list(tangent.shape)}.")
    dual = _alias(tensor)
    dual._tangent = tangent if tangent.dtype == tensor.dtype else tangent.to(dtype=tensor.dtype)
    note_dual(dual)
    return dual


class UnpackedDualTensor(NamedTuple):
    """What unpack_dual returns: the primal (a view without tangent) and the tangent (or None)."""
    primal: Tensor
    tangent: Tensor | None


def unpack_dual(tensor, *, level=None):
    """(primal, tangent) of a dual tensor; outside a level, (tensor, None)."""
    if _level(level) < 0:
        return UnpackedDualTensor(tensor, None)
    return UnpackedDualTensor(_alias(tensor), tensor._tangent)


class dual_level:
    """`with dual_level():` forward-mode AD inside the block (also a decorator)."""

    def __enter__(self):
        return enter_dual_level()

    def __exit__(self, *exc):
        exit_dual_level()

    def __call__(self, fn):
        def wrapped(*args, **kwargs):
            with dual_level():
                return fn(*args, **kwargs)
        return wrapped
