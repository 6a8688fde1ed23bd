"""Variable-length batches as torch.nn.utils.rnn: pad_sequence, pack_padded_sequence, PackedSequence ...

The layers here take `lengths=` directly, so a PackedSequence is a thin wrapper: it keeps the
padded batch (time first, original batch order) and the lengths, and builds PyTorch's packed
fields (`data`, `batch_sizes`, `sorted_indices`, `unsorted_indices`) on request. A sequence layer
given a PackedSequence runs the padded batch with its lengths and returns a PackedSequence, so
`pack -> layer -> pad_packed_sequence` gives what it gives in PyTorch. Every step is made of
Tensor ops, so gradients flow back to the padded input (and to nothing at its padded steps).
"""
import numpy as np

from ...tensor import Tensor, cat, stack, where
from ..checks import InputError


def _host_indices(values, what, fn):
    """A host int64 vector from a list, NumPy array or CPU tensor."""
    if isinstance(values, Tensor):
        values = values.array
    if hasattr(values, "get"):
        raise InputError(f"{fn}: '{what}' should be on the CPU (a list, NumPy array or CPU tensor), not on the GPU")
    values = np.asarray(values)
    if values.ndim != 1 or (values.size and values.dtype.kind not in "iu"):
        raise InputError(f"{fn}: '{what}' should be a 1-D sequence of integers; got shape {values.shape} "
                         f"dtype {values.dtype}")
    return values.astype(np.int64)


def _index_tensor(values):
    return None if values is None else Tensor._make(values.copy(), None)


def _time_first(x, batch_first):
    return x.transpose(0, 1) if batch_first else x


class PackedSequence:
    """A batch of sequences of different lengths, for sequence layers (PyTorch's PackedSequence).

    Made by pack_padded_sequence or pack_sequence, or from PyTorch's fields:
    PackedSequence(data, batch_sizes, sorted_indices=None, unsorted_indices=None), where data holds
    the steps of all sequences, time step by time step, longest sequence first within each step.
    Unpacked like PyTorch's namedtuple: `data, batch_sizes, sorted_indices, unsorted_indices = packed`.
    """

    def __init__(self, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:
            raise TypeError("PackedSequence: pass batch_sizes too, or build one with pack_padded_sequence")
        batch_sizes = _host_indices(batch_sizes, "batch_sizes", "PackedSequence")
        if (not batch_sizes.size or batch_sizes.min() < 1 or (np.diff(batch_sizes) > 0).any()
                or batch_sizes.sum() != data.shape[0]):
            raise InputError(f"PackedSequence: batch_sizes must be positive, non-increasing and add up to "
                             f"data.size(0)={data.shape[0]}; got {batch_sizes.tolist()}")
        batch = int(batch_sizes[0])
        order = None if sorted_indices is None else _host_indices(sorted_indices, "sorted_indices", "PackedSequence")
        sorted_lengths = (batch_sizes[None, :] > np.arange(batch)[:, None]).sum(axis=1)
        position = (np.arange(batch) if order is None else
                    _host_indices(unsorted_indices, "unsorted_indices", "PackedSequence")
                    if unsorted_indices is not None else np.argsort(order))
        # padded[t, b] is row offset[t] + position[b] of data when sequence b has a step t, else a zero row
        offsets = np.concatenate([[0], np.cumsum(batch_sizes)[:-1]])
        present = position[None, :] < batch_sizes[:, None]
        rows = np.where(present, offsets[:, None] + position[None, :], data.shape[0])
        zero_row = Tensor._make(data.xp.zeros((1,) + data.shape[1:], dtype=data.dtype), None)
        self._set(cat([data, zero_row])[rows], sorted_lengths[position], order)

    @classmethod
    def _from_padded(cls, padded, lengths, sorted_indices):
        """padded (T, B, *) in the original batch order, host lengths (B,), host sorted_indices or None."""
        packed = cls.__new__(cls)
        packed._set(padded, lengths, sorted_indices)
        return packed

    def _set(self, padded, lengths, sorted_indices):
        self._padded, self._lengths, self._sorted = padded, lengths, sorted_indices
        self._data = None

    def _with_padded(self, padded):
        """The same lengths and order around another padded batch (a layer's output)."""
        return PackedSequence._from_padded(padded, self._lengths, self._sorted)

    # --- PyTorch's fields
    @property
    def data(self):
        """The steps of all sequences, (sum(lengths), *): time step by step, longest first within one."""
        if self._data is None:
            order = np.arange(len(self._lengths)) if self._sorted is None else self._sorted
            present = self._lengths[order][None, :] > np.arange(self._padded.shape[0])[:, None]
            t, position = np.nonzero(present)   # row-major: time-major, then sorted position
            self._data = self._padded[t, order[position]]
        return self._data

    @property
    def batch_sizes(self):
        """How many sequences have each time step, an int64 CPU tensor (T,)."""
        steps = np.arange(self._padded.shape[0])
        return Tensor._make((self._lengths[None, :] > steps[:, None]).sum(axis=1).astype(np.int64), None)

    @property
    def sorted_indices(self):
        return _index_tensor(self._sorted)

    @property
    def unsorted_indices(self):
        return None if self._sorted is None else _index_tensor(np.argsort(self._sorted))

    def __iter__(self):
        return iter((self.data, self.batch_sizes, self.sorted_indices, self.unsorted_indices))

    def __getitem__(self, index):
        return tuple(self)[index]

    def __len__(self):
        return 4

    # --- conversions, as PackedSequence.to / cpu / cuda / double / float
    def to(self, *args, **kwargs):
        """As Tensor.to: a device, a dtype, both, or a tensor to match (`packed.to(torch.float64)`)."""
        return self._with_padded(self._padded.to(*args, **kwargs))

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def double(self):
        return self.to(dtype=np.float64)

    def float(self):
        return self.to(dtype=np.float32)

    def half(self):
        return self.to(dtype=np.float16)

    @property
    def is_cuda(self):
        return self._padded.device == "cuda"

    def __repr__(self):
        return (f"PackedSequence(batch of {len(self._lengths)}, lengths={self._lengths.tolist()}, "
                f"features={self._padded.shape[2:]}, dtype={self._padded.dtype}, device={self._padded.device})")


def run_packed(layer, packed, hx, lengths=None):
    """A sequence layer's forward on a PackedSequence: the padded batch with its lengths, output packed."""
    if lengths is not None:
        raise InputError(f"{type(layer).__name__}: a PackedSequence carries its own lengths; do not pass lengths= too")
    output, h_n = layer.forward(_time_first(packed._padded, layer.batch_first), hx, lengths=packed._lengths)
    return packed._with_padded(_time_first(output, layer.batch_first)), h_n


# ----------------------------------------------------------------------------- packing

def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch (T, B, *) ((B, T, *) with batch_first) of sequences with the given lengths.

    enforce_sorted=True requires lengths in decreasing order; with False any order is packed
    (and pad_packed_sequence gives it back in that order).
    """
    lengths = _host_indices(lengths, "lengths", "pack_padded_sequence")
    x = _time_first(input, batch_first)
    if x.ndim < 2 or len(lengths) != x.shape[1]:
        raise InputError(f"pack_padded_sequence: expected `len(lengths)` to be equal to batch_size, but got "
                         f"{len(lengths)} (input shape {tuple(input.shape)}, batch_first={batch_first})")
    if lengths.size and lengths.min() <= 0:
        raise InputError("pack_padded_sequence: Length of all samples has to be greater than 0, but found an "
                         f"element in 'lengths' that is <= 0 (lengths {lengths.tolist()})")
    if lengths.size and lengths.max() > x.shape[0]:
        raise InputError(f"pack_padded_sequence: lengths go up to {lengths.max()} but the input has only "
                         f"{x.shape[0]} time steps (shape {tuple(input.shape)}, batch_first={batch_first})")
    if enforce_sorted:
        if (np.diff(lengths) > 0).any():
            raise InputError("`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. "
                             "You can pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to "
                             f"sidestep this requirement (lengths {lengths.tolist()})")
        order = None
    else:
        order = np.argsort(-lengths, kind="stable")
    longest = int(lengths.max()) if lengths.size else 0
    return PackedSequence._from_padded(x if longest == x.shape[0] else x[:longest], lengths, order)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """The padded batch and the lengths (an int64 CPU tensor) of a PackedSequence, in the packed batch's order.

    total_length pads the time axis to that many steps (at least the longest sequence).
    """
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"pad_packed_sequence: expected a PackedSequence; got {type(sequence).__name__}")
    padded, lengths = sequence._padded, sequence._lengths
    steps = padded.shape[0]
    if total_length is not None and total_length < steps:
        raise ValueError(f"Expected total_length to be at least the length of the longest sequence in input, "
                         f"but got total_length={total_length} and max sequence length being {steps}")
    present = padded.xp.asarray(np.arange(steps)[:, None] < lengths[None, :])
    present = present.reshape(present.shape + (1,) * (padded.ndim - 2))
    out = where(present, padded, float(padding_value))
    if total_length is not None and total_length > steps:
        filler = Tensor._make(padded.xp.full((total_length - steps,) + padded.shape[1:], padding_value,
                                             dtype=padded.dtype), None)
        out = cat([out, filler])
    return _time_first(out, batch_first), Tensor._make(lengths.copy(), None)


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack tensors of shapes (L_i, *) into (max L, B, *) ((B, max L, *) with batch_first), padding the rest."""
    if isinstance(sequences, Tensor):
        sequences = [sequences[i] for i in range(sequences.shape[0])]
    sequences = list(sequences)
    if not sequences:
        raise ValueError("pad_sequence: received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right'; got {padding_side!r}")
    for k, s in enumerate(sequences):
        if not isinstance(s, Tensor) or s.ndim == 0:
            raise TypeError(f"pad_sequence: sequence {k} must be a tensor of shape (L, *); got "
                            f"{getattr(s, 'shape', type(s).__name__)}")
        if s.shape[1:] != sequences[0].shape[1:] or s.dtype != sequences[0].dtype:
            raise InputError(f"pad_sequence: every sequence needs the trailing shape and dtype of the first "
                             f"({sequences[0].shape[1:]} {sequences[0].dtype}); sequence {k} is {s.shape} {s.dtype}")
    longest = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        missing = longest - s.shape[0]
        if missing:
            filler = Tensor._make(s.xp.full((missing,) + s.shape[1:], padding_value, dtype=s.dtype), None)
            s = cat([s, filler] if padding_side == "right" else [filler, s])
        padded.append(s)
    return stack(padded, dim=0 if batch_first else 1)


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of tensors (L_i, *): pad_sequence, then pack_padded_sequence with their lengths."""
    sequences = list(sequences)
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of sequences (L_b, *) inside a padded batch, undoing pad_sequence."""
    lengths = _host_indices(lengths, "lengths", "unpad_sequence")
    x = _time_first(padded_sequences, batch_first)
    if len(lengths) != x.shape[1]:
        raise InputError(f"unpad_sequence: {len(lengths)} lengths for a batch of {x.shape[1]} "
                         f"(shape {tuple(padded_sequences.shape)}, batch_first={batch_first})")
    return [x[:int(n), b] for b, n in enumerate(lengths)]


def unpack_sequence(packed_sequences):
    """The list of sequences inside a PackedSequence, undoing pack_sequence."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


__all__ = ["PackedSequence", "pack_padded_sequence", "pack_sequence", "pad_packed_sequence", "pad_sequence",
           "unpack_sequence", "unpad_sequence"]
