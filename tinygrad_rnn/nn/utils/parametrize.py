"""Parametrizations, as torch.nn.utils.parametrize: `module.weight` read as `f(original)`.

register_parametrization moves the tensor into `module.parametrizations.<name>` (a ParametrizationList
holding `original`, or `original0`, `original1`, ... when the first parametrization's right_inverse
gives several) and gives the module a class of its own, Parametrized<Name>, with a property `<name>`
that runs the parametrizations on every read (once per `cached()` block) and calls their right_inverse
on assignment. state_dict keys are torch's: `parametrizations.weight.original`.
"""
import contextlib
import copyreg
from collections.abc import Sequence
from copy import deepcopy

from ...tensor import Tensor, no_grad
from ..containers import ModuleDict, ModuleList
from ..module import Parameter

__all__ = ["ParametrizationList", "cached", "is_parametrized", "register_parametrization",
           "remove_parametrizations", "type_before_parametrizations"]

_cache_depth = 0
_cache = {}   # (id(module), tensor name) -> the tensor computed in this cached() block


@contextlib.contextmanager
def cached():
    """Inside, each parametrized tensor is computed once, on its first read, and reused (an RNN's
    recurrent weight read at every step, a weight shared by several layers)."""
    global _cache_depth
    _cache_depth += 1
    try:
        yield
    finally:
        _cache_depth -= 1
        if not _cache_depth:
            _cache.clear()


def _register_parameter_or_buffer(module, name, tensor):
    if isinstance(tensor, Parameter):
        module.register_parameter(name, tensor)
    else:
        module.register_buffer(name, tensor)


def _set(destination, source):
    """destination takes source's values, staying the same object (torch's set_)."""
    destination.array = source.array


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, in order, and the unconstrained tensor(s) they start from:
    `original`, or `original0`, `original1`, ... Made by register_parametrization, not by users."""

    def __init__(self, modules, original, unsafe=False):
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        original_shape, original_dtype = tuple(original.shape), original.dtype
        with no_grad():
            new = original
            for module in reversed(self):
                if hasattr(module, "right_inverse"):
                    with contextlib.suppress(NotImplementedError):
                        new = module.right_inverse(new)
        if not isinstance(new, (Tensor, Sequence)):
            raise ValueError(  # noqa: TRY004 (torch raises ValueError)
                "'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "
                f"Got {type(new).__name__}")
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            for what in ("dtype", "device"):
                if getattr(original, what) != getattr(new, what):
                    raise ValueError(f"When `right_inverse` outputs one tensor, it may not change the {what}.\n"
                                     f"original.{what}: {getattr(original, what)}\n"
                                     f"right_inverse(original).{what}: {getattr(new, what)}")
            _set(original, new)
            _register_parameter_or_buffer(self, "original", original)
        else:
            for i, tensor in enumerate(new):
                if not isinstance(tensor, Tensor):
                    raise ValueError(  # noqa: TRY004 (torch raises ValueError)
                        "'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "
                        f"Got element {i} of the sequence with type {type(tensor).__name__}.")
                tensor = tensor.detach()
                if isinstance(original, Parameter):
                    tensor = Parameter(tensor, original.requires_grad)
                tensor.requires_grad_(original.requires_grad)
                _register_parameter_or_buffer(self, f"original{i}", tensor)
        if not self.unsafe:
            _check_unchanged(self(), original_shape, original_dtype,
                             "Registering a parametrization may not change the {what} of the tensor, unless "
                             "`unsafe` flag is enabled.\nunparametrized {what}: {before}\nparametrized {what}: {after}")

    def originals(self):
        return [self.original] if self.is_tensor else [getattr(self, f"original{i}") for i in range(self.ntensors)]

    def right_inverse(self, value):
        """Set the original tensor(s) to what the parametrizations' right_inverse, last first, give for
        `value`: how `module.weight = value` initialises a parametrized weight."""
        with no_grad():
            for module in reversed(self):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(module).__name__} does not implement right_inverse.")
                value = module.right_inverse(value)
            values = [value] if self.is_tensor else value
            if self.is_tensor and not isinstance(value, Tensor):
                raise ValueError(f"`right_inverse` should return a tensor. Got {type(value).__name__}")
            if not self.is_tensor and not isinstance(value, Sequence):
                raise ValueError(f"'right_inverse' must return a sequence of tensors. Got {type(value).__name__}.")
            if len(values) != self.ntensors:
                raise ValueError("'right_inverse' must return a sequence of tensors of length "
                                 f"{self.ntensors}. Got a sequence of length {len(values)}.")
            for i, (original, tensor) in enumerate(zip(self.originals(), values)):
                which = "original" if self.is_tensor else f"original{i}"
                if not isinstance(tensor, Tensor):
                    raise ValueError(  # noqa: TRY004 (torch raises ValueError)
                        f"'right_inverse' must return a sequence of tensors. Got element {i} of type "
                        f"{type(tensor).__name__}.")
                if tensor.dtype != original.dtype:
                    raise ValueError(f"The tensor returned by `right_inverse` has dtype {tensor.dtype} "
                                     f"while `{which}` has dtype {original.dtype}")
                _set(original, tensor)

    def forward(self):
        modules = list(self)
        x = modules[0](*self.originals())
        for module in modules[1:]:
            x = module(x)
        return x


def _check_unchanged(tensor, shape, dtype, message):
    """A parametrization's output keeps the tensor's shape and dtype (unless unsafe)."""
    if not isinstance(tensor, Tensor):
        raise ValueError(  # noqa: TRY004 (torch raises ValueError)
            f"A parametrization must return a tensor. Got {type(tensor).__name__}.")
    for what, before, after in (("dtype", dtype, tensor.dtype), ("shape", shape, tuple(tensor.shape))):
        if before != after:
            raise ValueError(message.format(what=what, before=before, after=after))


def _default_deepcopy(self, memo):
    replica = memo.get(id(self))
    if replica is not None:
        return replica
    replica = self.__new__(self.__class__)
    memo[id(self)] = replica
    replica.__dict__.update(deepcopy(self.__dict__, memo))   # Module.__setattr__ would refuse the new dict
    for slot in copyreg._slotnames(self.__class__):
        if hasattr(self, slot):
            setattr(replica, slot, deepcopy(getattr(self, slot), memo))
    return replica


def _refuse_pickling(self):
    raise RuntimeError("Serialization of parametrized modules is only supported through state_dict().")


def _inject_new_class(module):
    """The module's class becomes a subclass of its own, Parametrized<Name>, to carry the properties."""
    cls = type(module)
    body = {"__getstate__": _refuse_pickling}
    if not hasattr(cls, "__deepcopy__"):
        body["__deepcopy__"] = _default_deepcopy
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), body)


def _inject_property(module, tensor_name):
    """module.<tensor_name> reads as its parametrizations' output and assigns through their right_inverse."""
    if hasattr(module, tensor_name):
        raise AssertionError(f"Module already has an attribute named '{tensor_name}'")

    def get_parametrized(self):
        parametrization = self.parametrizations[tensor_name]
        if not _cache_depth:
            return parametrization()
        key = (id(self), tensor_name)
        if _cache.get(key) is None:
            _cache[key] = parametrization()
        return _cache[key]

    def set_original(self, value):
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(type(module), tensor_name, property(get_parametrized, set_original))


def register_parametrization(module, tensor_name, parametrization, *, unsafe=False):
    """Read `module.<tensor_name>` as `parametrization(original)` from now on; a second registration on
    the same name applies after the first. The tensor's current value becomes the original (through
    parametrization.right_inverse when it has one). Unless unsafe, the shape and dtype must not change."""
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            _check_further_parametrization(module, tensor_name, parametrization)
        chain = module.parametrizations[tensor_name]
        chain.append(parametrization)
        chain.unsafe |= unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        chain = ParametrizationList([parametrization], getattr(module, tensor_name), unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = chain
    else:
        raise ValueError(f"Module '{module}' does not have a parameter, a buffer, or a parametrized element "
                         f"with name '{tensor_name}'")
    return module


def _check_further_parametrization(module, tensor_name, parametrization):
    before = getattr(module, tensor_name)
    after = parametrization(before)
    message = ("Registering a parametrization may not change the {what} of the tensor, unless the `unsafe` flag "
               f"is enabled.\nmodule.{tensor_name}.{{what}}: {{before}}\nparametrization(module.{tensor_name})"
               ".{what}: {after}")
    _check_unchanged(after, tuple(before.shape), before.dtype, message)
    if hasattr(parametrization, "right_inverse"):
        try:
            inverse = parametrization.right_inverse(after)
        except NotImplementedError:
            return
        if not isinstance(inverse, Tensor):
            raise ValueError(f"parametrization.right_inverse must return a tensor. Got: {type(inverse).__name__}")
        _check_unchanged(inverse, tuple(before.shape), before.dtype,
                         "The tensor returned by parametrization.right_inverse must have the same {what} as "
                         f"module.{tensor_name}, unless the `unsafe` flag is enabled.\nmodule.{tensor_name}."
                         "{what}: {before}\nreturned {what}: {after}")


def is_parametrized(module, tensor_name=None):
    """Whether the module has any parametrization, or one on `tensor_name`."""
    parametrizations = getattr(module, "parametrizations", None)
    if not isinstance(parametrizations, ModuleDict):
        return False
    return len(parametrizations) > 0 if tensor_name is None else tensor_name in parametrizations


def remove_parametrizations(module, tensor_name, leave_parametrized=True):
    """Make `tensor_name` a plain parameter (or buffer) again: holding its parametrized value now
    (leave_parametrized=True), or its original. The module gets its own class back with its last one."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    chain = module.parametrizations[tensor_name]
    if chain.is_tensor:
        original = chain.original
        if leave_parametrized:
            with no_grad():
                _set(original, getattr(module, tensor_name))
    elif leave_parametrized:
        value = getattr(module, tensor_name)
        original = Parameter(value.detach()) if value.requires_grad else value
    else:
        raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is parametrized "
                         "in terms of a sequence of tensors.")
    delattr(type(module), tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = type(module).__bases__[0]
    return module


def type_before_parametrizations(module):
    """The module's class as it was before its first parametrization."""
    return type(module).__bases__[0] if is_parametrized(module) else type(module)
