"""Containers that register what they hold, as torch.nn's: Sequential, ModuleList, ModuleDict,
ParameterList and ParameterDict. Items are registered under their index ("0", "1", ...) or key, so
state_dict keys read `layers.0.weight`."""
import operator
from collections import OrderedDict
from collections.abc import Mapping

from ..tensor import Tensor
from .module import Module, Parameter


def _index(container, idx):
    """A valid non-negative position for `idx` among the container's items, or IndexError."""
    idx = operator.index(idx)
    size = len(container)
    if not -size <= idx < size:
        raise IndexError(f"index {idx} is out of range")
    return idx % size


class _Indexed(Module):
    """What ModuleList, Sequential and ParameterList share: items numbered 0..n-1 in one registry."""
    _registry = "_modules"

    def _items(self):
        return getattr(self, self._registry)

    def _values(self):
        return list(self._items().values())

    def _renumber(self, values):
        """Register `values` as the items 0..n-1, dropping the old numbering."""
        for name in list(self._items()):
            delattr(self, name)
        for i, value in enumerate(values):
            self._put(str(i), value)

    def _put(self, name, value):
        setattr(self, name, value)

    def __len__(self):
        return len(self._items())

    def __iter__(self):
        return iter(self._values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(self._values()[idx])
        return self._values()[_index(self, idx)]

    def __setitem__(self, idx, value):
        self._put(str(_index(self, idx)), value)

    def __delitem__(self, idx):
        values = self._values()
        if isinstance(idx, slice):
            del values[idx]
        else:
            del values[_index(self, idx)]
        self._renumber(values)

    def __dir__(self):
        return [k for k in super().__dir__() if not k.isdigit()]

    def append(self, value):
        self._put(str(len(self)), value)
        return self

    def extend(self, values):
        if isinstance(values, (Tensor, str)) or not hasattr(values, "__iter__"):
            raise TypeError(f"{type(self).__name__}.extend should be called with an iterable, but got "
                            f"{type(values).__name__}")
        for value in values:
            self.append(value)
        return self

    def insert(self, index, value):
        """value before position `index` (-n <= index <= n, a negative one counted from the end, as
        torch's Sequential.insert); the items after it are renumbered."""
        index, values = operator.index(index), self._values()
        if not -len(values) <= index <= len(values):
            raise IndexError(f"{type(self).__name__}.insert: Index out of range: {index} (the container holds "
                             f"{len(values)} items)")
        values.insert(index, value)
        self._renumber(values)
        return self  # torch's Sequential.insert returns the container, so calls chain

    def pop(self, idx=-1):
        value = self[idx]
        del self[idx]
        return value

    def __iadd__(self, values):
        return self.extend(values)

    def __add__(self, other):
        return type(self)(self._values() + list(other))


class ModuleList(_Indexed):
    """Modules in a list, registered as "0", "1", ...: index, slice, append, extend, insert, iterate."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _put(self, name, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules; got {type(module).__name__}")
        setattr(self, name, module)

    def __repr__(self):
        """Runs of equal-looking modules shown once, as PyTorch shows them: (0-2): 3 x Linear(...)."""
        lines, values = [], self._values()
        start = 0
        while start < len(values):
            text = repr(values[start])
            stop = start + 1
            while stop < len(values) and repr(values[stop]) == text:
                stop += 1
            count = stop - start
            lines.append(f"({start}): {text}" if count == 1 else f"({start}-{stop - 1}): {count} x {text}")
            start = stop
        if not lines:
            return f"{self._get_name()}()"
        body = "\n  ".join(line.replace("\n", "\n  ") for line in lines)
        return f"{self._get_name()}(\n  {body}\n)"


class Sequential(_Indexed):
    """Modules called one after the other: Sequential(a, b, c)(x) is c(b(a(x))).

    Sequential(OrderedDict(name=module, ...)) names the steps; indexing and slicing work on both.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                self.add_module(str(i), module)

    def _put(self, name, module):
        if not isinstance(module, Module):
            raise TypeError(f"Sequential holds Modules; got {type(module).__name__}")
        setattr(self, name, module)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)

    def __setitem__(self, idx, module):
        self._put(list(self._modules)[_index(self, idx)], module)

    def __add__(self, other):
        """A new Sequential of this one's modules, then other's (the same objects), numbered 0..n-1."""
        if not isinstance(other, Sequential):
            raise ValueError(  # noqa: TRY004 (PyTorch raises ValueError)
                f"add operator supports only objects of Sequential class, but {type(other).__name__} is given.")
        return Sequential(*self, *other)

    def __mul__(self, other):
        """A new Sequential of this one's modules repeated `other` times (the same objects), as torch."""
        if isinstance(other, bool) or not isinstance(other, int):
            return NotImplemented
        if other <= 0:
            raise ValueError(f"Non-positive multiplication factor {other} for Sequential")
        return Sequential(*(list(self) * other))

    __rmul__ = __mul__

    def forward(self, input):
        for module in self:
            input = module(input)
        return input


class ModuleDict(Module):
    """Modules by name: ModuleDict({"encoder": ..., "decoder": ...}); keys, items, values, update."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        if key not in self._modules:
            raise KeyError(key)
        delattr(self, key)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def clear(self):
        for key in list(self._modules):
            del self[key]

    def pop(self, key):
        module = self[key]
        del self[key]
        return module

    def update(self, modules):
        pairs = modules.items() if isinstance(modules, (Mapping, ModuleDict)) else modules
        for key, module in pairs:
            self[key] = module


class ParameterList(_Indexed):
    """Parameters in a list, registered as "0", "1", ...; a plain Tensor given becomes a Parameter."""
    _registry = "_parameters"

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def _put(self, name, value):
        setattr(self, name, _as_parameter(value, type(self).__name__))

    def extra_repr(self):
        return "\n".join(f"({i}): Parameter containing: [{p.dtype} of size {tuple(p.shape)}"
                         f"{'' if p.device == 'cpu' else ' on ' + p.device}]" for i, p in enumerate(self))


class ParameterDict(Module):
    """Parameters by name; a plain Tensor given becomes a Parameter."""

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key):
        return self._parameters[key]

    def __setitem__(self, key, value):
        self.register_parameter(key, _as_parameter(value, type(self).__name__))

    def __delitem__(self, key):
        if key not in self._parameters:
            raise KeyError(key)
        delattr(self, key)

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def __contains__(self, key):
        return key in self._parameters

    def keys(self):
        return self._parameters.keys()

    def items(self):
        return self._parameters.items()

    def values(self):
        return self._parameters.values()

    def update(self, parameters):
        pairs = parameters.items() if isinstance(parameters, (Mapping, ParameterDict)) else parameters
        for key, value in pairs:
            self[key] = value

    def extra_repr(self):
        return "\n".join(f"({k}): Parameter containing: [{p.dtype} of size {tuple(p.shape)}]"
                         for k, p in self.items())


def _as_parameter(value, owner):
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value, requires_grad=value.requires_grad or value.dtype.kind == "f")
    raise TypeError(f"{owner} holds Parameters (or Tensors, made Parameters); got {type(value).__name__}")
