"""Module and Parameter: named, nested containers of trainable tensors, as in PyTorch.

A Module registers what is assigned to it: a Parameter in `_parameters`, a Module in `_modules`,
a tensor given to `register_buffer` in `_buffers`. Each registered value is also a plain attribute,
so reading `self.weight` in a forward pass costs no lookup beyond Python's own.
"""
import numbers
from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend
from ..tensor import Tensor, no_grad
from . import hooks


class Parameter(Tensor):
    """A leaf tensor that a Module registers and optimizers update."""
    __slots__ = ()

    def __init__(self, data, requires_grad=True, dtype=None, device=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, device=device)

    def __repr__(self):
        return "Parameter(" + super().__repr__() + ")"


class StateDictError(RuntimeError, KeyError):
    """A state_dict that does not fit the module. PyTorch raises RuntimeError; this was a KeyError
    before, so it is both."""
    __str__ = RuntimeError.__str__


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns, as in PyTorch."""
    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})"

    __str__ = __repr__


def _plain_container_of_modules(value):
    """The container class a list, tuple or dict holding Modules or Parameters should have been."""
    if isinstance(value, (list, tuple)):
        items, kind = value, "List"
    elif isinstance(value, dict):
        items, kind = value.values(), "Dict"
    else:
        return None
    items = list(items)
    if any(isinstance(v, Module) for v in items):
        return "Module" + kind
    if any(isinstance(v, Parameter) for v in items):
        return "Parameter" + kind
    return None


class Module:
    """Base class of layers. Attributes that are Parameters or Modules are registered by assignment."""

    def __init__(self):
        for name in ("_parameters", "_buffers", "_modules"):
            object.__setattr__(self, name, OrderedDict())
        for name in ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks"):
            object.__setattr__(self, name, [])
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "training", True)

    # --- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if isinstance(value, Parameter):
            if name not in self._parameters:
                self._forget(name)
                self.__dict__.pop(name, None)
            self.register_parameter(name, value)
        elif name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                f"(nn.Parameter or None expected)")
            self.register_parameter(name, None)
        elif isinstance(value, Module):
            self._forget(name, keep="_modules")
            self._modules[name] = value
            object.__setattr__(self, name, value)
        elif name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                                f"(nn.Module or None expected)")
            self._modules[name] = None
            object.__setattr__(self, name, None)
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                f"(Tensor or None expected)")
            self._buffers[name] = value
            object.__setattr__(self, name, value)
        else:
            container = _plain_container_of_modules(value)
            if container is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} holding "
                                f"{container[:-4].lower()}s to '{name}': wrap it in nn.{container}(...) "
                                f"so that they are registered (parameters(), state_dict(), to())")
            object.__setattr__(self, name, value)

    def _forget(self, name, keep=None):
        """Drop `name` from every registry but `keep`."""
        for registry in ("_parameters", "_modules", "_buffers"):
            if registry != keep:
                getattr(self, registry).pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __delattr__(self, name):
        self._forget(name)
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register a Parameter (or None, for an absent optional weight) under `name`."""
        self._check_new_name(name, "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                            f"(nn.Parameter or None required)")
        self._forget(name, keep="_parameters")
        self._parameters[name] = param
        if param is not None and param.name is None:
            param.name = name
        object.__setattr__(self, name, param)

    def swap_tensor(self, name, value):
        """Put `value` (any Tensor) where parameter or buffer `name` is, without registration checks, and
        return what was there: how tr.func.functional_call runs a module on other tensors."""
        registry = self._parameters if name in self._parameters else self._buffers
        if name not in registry:
            raise KeyError(f"{type(self).__name__} has no parameter or buffer named {name!r}")
        previous = registry[name]
        registry[name] = value
        object.__setattr__(self, name, value)
        return previous

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that belongs to the module's state without being trained: `.to()` moves it and,
        when persistent, state_dict() holds it."""
        self._check_new_name(name, "_buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                            f"(Tensor or None required)")
        self._forget(name, keep="_buffers")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_new_name(name, "_modules")
        self._forget(name, keep="_modules")
        self._modules[name] = module
        object.__setattr__(self, name, module)

    register_module = add_module

    def _check_new_name(self, name, registry):
        if not isinstance(name, str):
            raise TypeError(f"name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"name can't contain \".\" and can't be empty; got {name!r}")
        registered = any(name in getattr(self, r) for r in ("_parameters", "_modules", "_buffers"))
        if name in self.__dict__ and not registered or hasattr(type(self), name):
            raise KeyError(f"attribute '{name}' already exists")

    # --- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks or self._forward_hooks or self._backward_hooks or self._backward_pre_hooks:
            return hooks.call_with_hooks(self, args, kwargs)
        return self.forward(*args, **kwargs)

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """hook(module, args) -> None or new args (with_kwargs: hook(module, args, kwargs) -> None or
        (args, kwargs)), called before forward. Returns a handle whose remove() takes it away."""
        return hooks.add(self._forward_pre_hooks, hook, prepend, with_kwargs)

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False):
        """hook(module, args, output) -> None or a new output (with_kwargs: hook(module, args, kwargs,
        output)), called after forward. Returns a handle whose remove() takes it away."""
        return hooks.add(self._forward_hooks, hook, prepend, with_kwargs)

    def register_full_backward_hook(self, hook, prepend=False):
        """hook(module, grad_input, grad_output) -> None or a new grad_input, called in backward once
        the gradients with respect to the module's positional Tensor inputs are known."""
        return hooks.add(self._backward_hooks, hook, prepend, False)

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """hook(module, grad_output) -> None or a new grad_output, called in backward once the gradients
        with respect to the module's outputs are known, before they flow on into the module."""
        return hooks.add(self._backward_pre_hooks, hook, prepend, False)

    # --- traversal
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(dotted name, module) for this module and every module below it; a shared one once."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry, prefix, recurse, remove_duplicate):
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        seen = set()
        for module_name, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{module_name}.{name}" if module_name else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """Dotted names like PyTorch's ("rnn.weight_ih_l0"); a shared parameter is listed once."""
        for full, param in self._named_members("_parameters", prefix, recurse, remove_duplicate):
            if remove_duplicate and (param.name is None or full.endswith("." + param.name)):
                # graph drawings label parameters by it: the most qualified name given so far, so that a
                # layer asking for its own parameters does not undo "rnn.weight_ih_l0"
                param.name = full
            yield full, param

    def parameters(self, recurse=True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def get_submodule(self, target):
        """The module at a dotted path ("layers.0"), as in PyTorch."""
        module = self
        for part in target.split(".") if target else ():
            if part not in module._modules or module._modules[part] is None:
                raise AttributeError(f"{type(module).__name__} has no submodule `{part}` (looking for {target!r})")
            module = module._modules[part]
        return module

    def get_parameter(self, target):
        """The parameter at a dotted path ("encoder.weight"), as in PyTorch."""
        return self._get_member(target, "_parameters", "an nn.Parameter")

    def get_buffer(self, target):
        """The buffer at a dotted path, as in PyTorch."""
        return self._get_member(target, "_buffers", "a buffer")

    def _get_member(self, target, registry, what):
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        if not hasattr(module, name):
            raise AttributeError(f"{type(module).__name__} has no attribute `{name}` (looking for {target!r})")
        if getattr(module, registry).get(name) is None:  # bias=False registers bias as None, as torch
            raise AttributeError(f"`{name}` is not {what} (looking for {target!r})")
        return getattr(module, registry)[name]

    def apply(self, fn):
        """fn(module) on every child (recursively), then on this module; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # --- state
    def state_dict(self, *, destination=None, prefix="", keep_vars=False):
        """{dotted name: value} of every parameter and persistent buffer, as PyTorch lists them (a
        tied parameter under each of its names). Values are Tensors without a graph, as torch's, but
        copies (on the parameters' device): one kept as the best weights so far stays so while training
        goes on, where torch's would change with the model. keep_vars=True gives the tensors themselves."""
        if destination is None:
            destination = OrderedDict()
        for name, value in self._state_items():
            destination[prefix + name] = value if keep_vars else value.detach().clone()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=f"{prefix}{name}.", keep_vars=keep_vars)
        return destination

    def _state_items(self):
        for name, param in self._parameters.items():
            if param is not None:
                yield name, param
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                yield name, buffer

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy values (Tensors, NumPy or CuPy arrays, torch tensors) into the parameters and buffers,
        keeping their objects, dtypes and devices; with assign=True the values themselves take their places
        (their dtypes and devices, their memory shared; a parameter keeps its requires_grad), as PyTorch.
        Returns (missing_keys, unexpected_keys) as PyTorch does; with strict=True either raises, as does a
        shape mismatch. Every problem is found before anything changes."""
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}.")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems, values = [], {}
        if strict and missing:
            problems.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
        if strict and unexpected:
            problems.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
        for key, target in own.items():
            if key not in state_dict:
                continue
            try:
                values[key] = _host_or_device_array(state_dict[key])
            except TypeError as e:
                problems.append(f'While copying the parameter named "{key}": {e}')
                continue
            if tuple(values[key].shape) != tuple(target.shape):
                problems.append(f"size mismatch for {key}: copying a param with shape {tuple(values[key].shape)} "
                                f"from checkpoint, the shape in current model is {tuple(target.shape)}.")
            elif assign and target.requires_grad and values[key].dtype.kind != "f":
                problems.append(f'While copying the parameter named "{key}" (assign=True): only floating point '
                                f"tensors can require gradients; got dtype {values[key].dtype}")
        if problems:
            raise StateDictError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                                 + "\n\t".join(problems))
        if assign:
            self._assign_state(state_dict, values, own)
            return _IncompatibleKeys(missing, unexpected)
        with no_grad():
            for key, value in values.items():
                target = own[key]
                moved = backend.to_device(value, target.device)
                target.array = backend.xp_of(moved).array(moved, dtype=target.dtype, copy=True)
        return _IncompatibleKeys(missing, unexpected)

    def _assign_state(self, state_dict, values, own):
        """load_state_dict(assign=True): each value put in its key's place, one object per value given (a
        value given for two tied names stays one parameter)."""
        made = {}
        for key, array in values.items():
            path, _, name = key.rpartition(".")
            owner, old, given = self.get_submodule(path), own[key], state_dict[key]
            if id(given) not in made:
                if isinstance(old, Parameter):
                    if isinstance(given, Parameter):
                        value = given.requires_grad_(old.requires_grad)
                    else:
                        value = Parameter(array, requires_grad=old.requires_grad, dtype=array.dtype,
                                          device=given.device if isinstance(given, Tensor) else None)
                else:
                    value = given if isinstance(given, Tensor) else Tensor(array, dtype=array.dtype)
                made[id(given)] = value
            setattr(owner, name, made[id(given)])

    # --- modes
    def train(self, mode=True):
        if not isinstance(mode, (bool, np.bool_)):
            raise ValueError("training mode is expected to be boolean")  # noqa: TRY004 (PyTorch raises ValueError)
        object.__setattr__(self, "training", bool(mode))
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's gradient: None (the default, as in PyTorch), or zeros in place."""
        for p in self.parameters():
            grad = p.grad
            if grad is None:
                continue
            if set_to_none:
                p.grad = None
            elif grad.grad_fn is not None:  # a gradient with a graph (create_graph): cut it off
                p.grad = Tensor._make(grad.xp.zeros_like(grad.array), None)
            else:
                grad.array[...] = 0

    # --- devices and dtypes
    def to(self, *args, **kwargs):
        """Move and/or cast every parameter and buffer in place, keeping their objects (and
        requires_grad). to(device), to(dtype), to(device, dtype), to(tensor), or by keyword; the
        dtype must be floating point, and only floating-point tensors are cast, as in PyTorch."""
        device, dtype = _to_arguments(args, kwargs)
        if device is not None:
            backend.xp_for(device)  # fails here, before anything moved, when the device cannot be used

        def convert(array):
            if device is not None:
                array = backend.to_device(array, device)
            if dtype is not None and array.dtype.kind == "f" and array.dtype != dtype:
                array = array.astype(dtype)
            return array

        return self._apply(convert)

    def _apply(self, convert):
        """convert(array) -> array applied to every parameter (and its gradient) and buffer below."""
        for module in self.children():
            module._apply(convert)
        for tensor in list(self._parameters.values()) + list(self._buffers.values()):
            if tensor is None:
                continue
            grad = tensor.grad if tensor.is_leaf else None
            tensor.array = convert(tensor.array)
            if grad is not None:
                tensor.grad = Tensor._make(convert(grad.array), None)
        return self

    def cuda(self, device=None):
        return self.to("cuda" if device is None else device)

    def cpu(self):
        return self.to("cpu")

    def half(self):
        return self.to(dtype=np.float16)

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def num_parameters(self):
        return sum(p.numel() for p in self.parameters())

    # --- printing
    def extra_repr(self):
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        children = [f"({name}): " + repr(module).replace("\n", "\n  ") for name, module in self._modules.items()]
        body = ""
        if len(lines) == 1 and not children:
            body = lines[0]
        elif lines or children:
            body = "\n  " + "\n  ".join(lines + children) + "\n"
        return f"{self._get_name()}({body})"


def _host_or_device_array(value):
    """A state value as a NumPy or CuPy array: Tensors, arrays, numbers and torch tensors."""
    if isinstance(value, Tensor):
        return value.array
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy"):  # a torch tensor
        return value.detach().cpu().numpy()
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return value
    if isinstance(value, (numbers.Number, list, tuple)):
        return np.asarray(value)
    raise TypeError(f"expected a Tensor or an array, got {type(value).__name__}")


def _is_device(value):
    return isinstance(value, str) and value.split(":")[0] in backend.DEVICES


def _float_dtype(dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"nn.Module.to: {dtype!r} is neither a device nor a dtype") from e
    if dtype.kind != "f":
        raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got desired dtype={dtype}")
    return dtype


def _to_arguments(args, kwargs):
    """(device, dtype) from Module.to's arguments, each None when not given."""
    unknown = set(kwargs) - {"device", "dtype", "non_blocking"}
    if unknown:
        raise TypeError(f"nn.Module.to got unexpected keyword argument(s) {sorted(unknown)}")
    device, dtype = kwargs.get("device"), kwargs.get("dtype")
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype if arg.dtype.kind == "f" else dtype
        elif isinstance(arg, bool):
            continue  # non_blocking given by position
        elif arg is None:
            continue
        elif _is_device(arg):
            device = arg
        else:
            dtype = arg
    device = None if device is None else backend.check_device(device)
    dtype = None if dtype is None else _float_dtype(dtype)
    return device, dtype
