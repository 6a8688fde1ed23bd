"""LazyLinear, as in torch.nn: a Linear whose in_features comes from its first input."""
from .. import tensor as _tensor
from . import init
from .checks import check_flag, check_int, check_tensor
from .linear import Linear
from .module import Module


class LazyLinear(Linear):
    """Linear(in_features, out_features) with in_features the last dim of the first input: the weight and
    bias are made and drawn (as Linear's, from the default generator) on that first call, which turns the
    module into a Linear, as torch's. Until then it has no parameters (torch's are uninitialized ones), so
    build it (call it once) before handing its parameters to an optimizer or loading a state_dict."""
    cls_to_become = Linear

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        Module.__init__(self)
        self.in_features = 0
        self.out_features = check_int("out_features", out_features, minimum=0)
        self._lazy_bias, self._lazy_options = check_flag("bias", bias), {"device": device, "dtype": dtype}
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)

    def initialize_parameters(self, input):
        """Make and draw the weight (out_features, input's last dim) and bias, and become a Linear."""
        check_tensor("LazyLinear", "input", input)
        if input.ndim == 0:
            raise ValueError("LazyLinear: the input needs at least one dim (its last is in_features)")
        self.in_features = input.shape[-1]
        with _tensor.no_grad():
            self.weight = init.parameter(self.out_features, self.in_features, **self._lazy_options)
            if self._lazy_bias:
                self.bias = init.parameter(self.out_features, **self._lazy_options)
            self.reset_parameters()
        del self._lazy_bias, self._lazy_options
        self.__class__ = self.cls_to_become

    def has_uninitialized_params(self):
        return self.weight is None

    def forward(self, x):
        self.initialize_parameters(x)
        return Linear.forward(self, x)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self._lazy_bias}"
