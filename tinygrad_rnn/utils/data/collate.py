"""How a DataLoader makes one batch of samples, as torch's default_collate and default_convert.

Tensors are stacked along a new first dimension; NumPy arrays and numbers become tensors (Python
floats float64, ints int64, bools bool, as torch); strings stay a list; dicts, named tuples and
sequences are collated field by field (a tuple of fields gives a list, as in torch).
"""
import collections.abc

import numpy as np

from ...factory import from_numpy, tensor
from ...tensor import Tensor, stack

_NOT_NUMERIC = "SaUO"  # NumPy dtype chars of strings and objects, which do not become tensors


def default_collate(batch):
    """One batch from a list of samples, as torch.utils.data.default_collate."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(batch, 0)
    if isinstance(elem, (np.ndarray, np.generic)) and not isinstance(elem, (np.str_, np.bytes_)):
        if elem.dtype.char in _NOT_NUMERIC:
            raise TypeError(_unsupported(elem))
        return tensor(np.stack(batch)) if isinstance(elem, np.ndarray) else tensor(np.array(batch))
    if isinstance(elem, float):
        return tensor(batch, dtype=np.float64)
    if isinstance(elem, int):  # bool included: a batch of bools is a bool tensor
        return tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return _same_type(elem, {key: default_collate([sample[key] for sample in batch]) for key in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a named tuple
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError(f"default_collate: each element in list of batch should be of equal size; got "
                               f"sizes {[len(sample) for sample in batch]}")
        fields = [default_collate(list(field)) for field in zip(*batch)]
        return fields if isinstance(elem, tuple) else _same_type(elem, fields)
    raise TypeError(_unsupported(elem))


def default_convert(data):
    """A sample as a DataLoader without batching gives it: NumPy arrays become tensors, all else stays."""
    if isinstance(data, np.ndarray) and data.dtype.char not in _NOT_NUMERIC:
        return from_numpy(data)
    if isinstance(data, np.generic) and data.dtype.char not in _NOT_NUMERIC:
        return tensor(data)
    if isinstance(data, collections.abc.Mapping):
        return _same_type(data, {key: default_convert(value) for key, value in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _same_type(data, [default_convert(d) for d in data])
    return data


def _same_type(like, value):
    """`value` in the container type of `like` where that type can be made from it, else as it is."""
    try:
        return type(like)(value)
    except TypeError:
        return value


def _unsupported(elem):
    return (f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found "
            f"{type(elem).__name__}" + (f" of dtype {elem.dtype}" if hasattr(elem, "dtype") else ""))
