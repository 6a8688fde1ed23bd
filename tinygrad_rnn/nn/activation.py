"""Activations as modules, as in torch.nn: ReLU, Tanh, Sigmoid, Identity, Softmax, LogSoftmax, Softmin, GLU,
Threshold, PReLU (learned slopes), and those of `_ACTIVATIONS` (GELU, ELU, SiLU, Softplus, LeakyReLU, Hardtanh,
LogSigmoid, ReLU6, SELU, CELU, Mish, Softsign, Tanhshrink, Hardsigmoid, Hardswish), Hardshrink, Softshrink,
RReLU and Softmax2d."""
import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init as _init
from .module import Module


class Identity(Module):
    """Returns its input; any constructor arguments are ignored, as in PyTorch."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class ReLU(Module):
    """max(0, x). `inplace` is kept for torch's signature; the output is always a new tensor."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Tanh(Module):
    def forward(self, input):
        return F.tanh(input)


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)


class _AlongDim(Module):
    """An activation along `dim` (torch's legacy choice, with a warning, when dim is None)."""
    function = None

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return self.function(input, self.dim, _stacklevel=5)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_AlongDim):
    function = staticmethod(F.softmax)


class LogSoftmax(_AlongDim):
    function = staticmethod(F.log_softmax)


class Softmin(_AlongDim):
    function = staticmethod(F.softmin)


class GLU(Module):
    """a * sigmoid(b), a and b the input's halves along `dim`."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.glu(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Threshold(Module):
    """x where x > threshold, `value` elsewhere. `inplace` is kept for torch's signature."""

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}" + (", inplace=True" if self.inplace else "")


def _activation_module(name, function, arguments, doc):
    """A module calling `function(input, **its arguments)`; `arguments` lists (name, torch's default) in
    torch's order. Its repr shows them as torch's does (inplace only when set)."""
    names = [key for key, _ in arguments]

    def __init__(self, *args, **kwargs):
        Module.__init__(self)
        if len(args) > len(names):
            raise TypeError(f"{name}() takes at most {len(names)} arguments ({len(args)} given)")
        values = dict(arguments)
        values.update(zip(names, args))
        for key, value in kwargs.items():
            if key not in values or key in names[:len(args)]:
                raise TypeError(f"{name}() got an unexpected keyword argument or a second value for {key!r}")
            values[key] = value
        function(_PROBE, **values)  # bad arguments fail here, as torch's constructors check them
        self.__dict__.update(values)

    def forward(self, input):
        return function(input, **{key: getattr(self, key) for key in names})

    def extra_repr(self):
        shown = [f"{key}={getattr(self, key)!r}" if isinstance(getattr(self, key), str) else
                 f"{key}={getattr(self, key)}" for key in names if key != "inplace"]
        return ", ".join(shown + (["inplace=True"] if getattr(self, "inplace", False) else []))

    return type(name, (Module,), {"__init__": __init__, "forward": forward, "extra_repr": extra_repr,
                                  "__doc__": doc, "__module__": __name__})


_PROBE = Tensor(np.zeros(1), dtype=np.float64)  # what a constructor tries its arguments on

_ACTIVATIONS = (
    ("GELU", F.gelu, (("approximate", "none"),), "x * Phi(x); approximate='tanh' for torch's tanh form."),
    ("ELU", F.elu, (("alpha", 1.0), ("inplace", False)), "x where x > 0, else alpha * (exp(x) - 1)."),
    ("SiLU", F.silu, (("inplace", False),), "x * sigmoid(x)."),
    ("Softplus", F.softplus, (("beta", 1.0), ("threshold", 20.0)), "log(1 + exp(beta * x)) / beta."),
    ("LeakyReLU", F.leaky_relu, (("negative_slope", 0.01), ("inplace", False)), "x where x > 0, else slope * x."),
    ("Hardtanh", F.hardtanh, (("min_val", -1.0), ("max_val", 1.0), ("inplace", False)),
     "x clamped to [min_val, max_val]."),
    ("LogSigmoid", F.logsigmoid, (), "log(sigmoid(x))."),
    ("ReLU6", F.relu6, (("inplace", False),), "min(max(x, 0), 6)."),
    ("SELU", F.selu, (("inplace", False),), "scale * elu(x, alpha), the self-normalising constants."),
    ("CELU", F.celu, (("alpha", 1.0), ("inplace", False)), "x where x > 0, else alpha * (exp(x / alpha) - 1)."),
    ("Mish", F.mish, (("inplace", False),), "x * tanh(softplus(x))."),
    ("Softsign", F.softsign, (), "x / (1 + |x|)."),
    ("Tanhshrink", F.tanhshrink, (), "x - tanh(x)."),
    ("Hardsigmoid", F.hardsigmoid, (("inplace", False),), "min(max(x + 3, 0), 6) / 6."),
    ("Hardswish", F.hardswish, (("inplace", False),), "x * min(max(x + 3, 0), 6) / 6."),
)
(GELU, ELU, SiLU, Softplus, LeakyReLU, Hardtanh, LogSigmoid, ReLU6, SELU, CELU, Mish, Softsign, Tanhshrink,
 Hardsigmoid, Hardswish) = (_activation_module(name, fn, arguments, doc) for name, fn, arguments, doc in _ACTIVATIONS)


class PReLU(Module):
    """x where x > 0, a * x elsewhere, with the slope a learned: one for all channels, or one per channel
    (num_parameters = C, the input's dim 1), each starting at `init`."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = _init.parameter(num_parameters, dtype=dtype, device=device)
        self.reset_parameters()

    def reset_parameters(self):
        _init.constant_(self.weight, self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class _Shrink(Module):
    """An activation of one threshold `lambd`, shown alone in the repr, as torch's."""
    function = None

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):
        return self.function(input, self.lambd)

    def extra_repr(self):
        return f"{self.lambd}"


class Hardshrink(_Shrink):
    """x where |x| > lambd, 0 elsewhere."""
    function = staticmethod(F.hardshrink)


class Softshrink(_Shrink):
    """x moved lambd towards 0, and 0 within lambd of it."""
    function = staticmethod(F.softshrink)


class RReLU(Module):
    """x where x > 0, a * x elsewhere: a drawn from U(lower, upper) per element in train(), the fixed
    (lower + upper) / 2 in eval()."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input):
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}" + (", inplace=True" if self.inplace else "")


class Softmax2d(Module):
    """Softmax over the channels (dim -3) of (N, C, H, W) or (C, H, W)."""

    def forward(self, input):
        if not isinstance(input, Tensor) or input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {getattr(input, 'ndim', None)}D instead")
        return F.softmax(input, -3)
