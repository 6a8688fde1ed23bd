"""Padding layers over F.pad, as in torch.nn: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad and
CircularPad, each in 1d (the last dim), 2d (the last two) and 3d (the last three)."""
import numbers

from . import functional as F
from .checks import check_tensor
from .module import Module


def _padding(name, padding, sides):
    """torch's _pair / _quadruple: one int for every side, or one int per side (left, right, top, bottom)."""
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        return (int(padding),) * sides
    if isinstance(padding, (tuple, list)) and len(padding) == sides and all(
            isinstance(p, numbers.Integral) and not isinstance(p, bool) for p in padding):
        return tuple(int(p) for p in padding)
    raise TypeError(f"{name}: padding must be an int or a tuple of {sides} ints; got {padding!r}")


class _PadNd(Module):
    """F.pad(input, padding, mode) over the last `dims` dims: of a (dims + 1)- or (dims + 2)-D input, but for
    a constant, which pads any input of at least `dims` dims, as torch's."""
    mode, dims = None, None

    def __init__(self, padding):
        super().__init__()
        self.padding = _padding(type(self).__name__, padding, 2 * self.dims)

    def forward(self, input):
        check_tensor(type(self).__name__, "input", input)
        if self.mode != "constant" and input.ndim not in (self.dims + 1, self.dims + 2):
            raise ValueError(f"expected {self.dims + 1}D or {self.dims + 2}D input (got {input.ndim}D input)")
        return F.pad(input, self.padding, self.mode, *self._value())

    def _value(self):
        return ()

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    mode = "constant"

    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def _value(self):
        return (self.value,)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class _ZeroPadNd(_ConstantPadNd):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


def _padding_layer(name, base, mode, dims, doc):
    return type(name, (base,), {"mode": mode, "dims": dims, "__doc__": doc, "__module__": __name__})


_LAYERS = tuple(
    _padding_layer(f"{kind}Pad{dims}d", base, mode, dims, f"{what}, around the last {dims} dim(s).")
    for kind, base, mode, what in (
        ("Zero", _ZeroPadNd, "constant", "Zeros"),
        ("Constant", _ConstantPadNd, "constant", "`value`"),
        ("Reflection", _PadNd, "reflect", "The input reflected at its edges (the edge itself not repeated)"),
        ("Replication", _PadNd, "replicate", "The input's edge repeated"),
        ("Circular", _PadNd, "circular", "The input wrapped around"))
    for dims in (1, 2, 3))
(ZeroPad1d, ZeroPad2d, ZeroPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d, ReflectionPad1d, ReflectionPad2d,
 ReflectionPad3d, ReplicationPad1d, ReplicationPad2d, ReplicationPad3d, CircularPad1d, CircularPad2d,
 CircularPad3d) = _LAYERS
