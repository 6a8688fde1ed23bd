"""Checkpoints and saved objects as one ``.npz`` file, written atomically and read without pickle.

Layout of the file:

- every array is an entry named by its path in the saved state, e.g. ``model/lstm.weight_ih_l0``
  or ``optim/state/0/exp_avg``, so ``np.load`` alone shows what a checkpoint holds;
- ``__structure__`` is a UTF-8 JSON document (stored as a uint8 array) holding the format version
  and the nesting of the saved values: the model, optimizer and meta states of a checkpoint, or
  the ``object`` given to :func:`save`. Python scalars and strings are stored in it as themselves;
  containers and arrays as one-key objects: ``{"dict": [[key, value], ...]}`` (a list of pairs, so
  int keys stay ints), ``{"list": [...]}``, ``{"tuple": [...]}``, ``{"array": entry}``,
  ``{"scalar": entry}`` for a numpy scalar, kept as a 0-d entry so its dtype survives, and
  ``{"tensor": [entry, requires_grad, device]}`` for a Tensor.

Nothing is ever unpickled, so loading a file cannot run code; a file that is not exactly what
these functions write raises CheckpointError, having read no more than the file holds
(see :mod:`tinygrad_rnn.archive`).
"""

import errno
import json
import os

import numpy as np

from . import backend
from .archive import MalformedArchive, NpzReader, write_npz
from .tensor import Tensor

FORMAT_VERSION = 1
STRUCTURE_KEY = "__structure__"
MAX_DEPTH = 64  # nesting of saved containers; deeper structures are refused on saving and loading
_SECTIONS = {"model": "model", "optimizer": "optim", "meta": "meta"}  # returned key -> entry prefix
_OBJECT = "object"  # the key and entry prefix of what save() wrote
_LEAVES = (type(None), bool, int, float, str)


class CheckpointError(ValueError):
    """A file that cannot be read as a checkpoint, or a state that does not fit a model."""


class _Malformed(Exception):
    """Raised inside the reader; load turns it into a CheckpointError that names the file."""


# ---------------------------------------------------------------- encoding


def _encode(value, path, arrays, depth=0):
    """The JSON form of ``value``; its arrays are added to ``arrays`` under names built from ``path``."""
    if isinstance(value, (dict, list, tuple)) and depth >= MAX_DEPTH:
        raise ValueError(f"{'/'.join(path[:4])}/...: the state nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, Tensor):
        return {"tensor": [_add_array(value.numpy(), path, arrays), value.requires_grad, value.device]}
    if isinstance(value, (np.ndarray, np.generic)):  # first: np.float64 and np.str_ subclass float and str
        return {"array" if isinstance(value, np.ndarray) else "scalar": _add_array(value, path, arrays)}
    if isinstance(value, _LEAVES):
        return value
    if isinstance(value, dict):
        pairs = []
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(
                    f"{'/'.join(path)}: dict keys must be str or int, got {type(key).__name__} {key!r}"
                )
            pairs.append([key, _encode(item, path + [str(key)], arrays, depth + 1)])
        return {"dict": pairs}
    if isinstance(value, (list, tuple)):
        items = [_encode(item, path + [str(i)], arrays, depth + 1) for i, item in enumerate(value)]
        return {"tuple" if isinstance(value, tuple) else "list": items}
    raise TypeError(f"{'/'.join(path)}: cannot save a value of type {type(value).__name__}")


def _add_array(value, path, arrays):
    entry = "/".join(path)
    if entry in arrays or entry == STRUCTURE_KEY:
        raise ValueError(f"two arrays in the state map to the same checkpoint entry {entry!r}")
    if value.dtype.hasobject:
        raise TypeError(f"{entry}: arrays of Python objects cannot be saved without pickle")
    arrays[entry] = np.asarray(value)
    return entry


def _as_model_state(model_state):
    """The model section must be flat str -> array so it loads straight into ``Module.load_state_dict``."""
    if not isinstance(model_state, dict):
        raise TypeError(f"model_state must be a dict of numpy arrays, got {type(model_state).__name__}")
    flat = {}
    for name, array in model_state.items():
        if isinstance(array, Tensor):
            array = array.numpy()
        if not isinstance(name, str) or not isinstance(array, np.ndarray):
            raise TypeError(
                f"model_state must map str names to numpy arrays, got {name!r}: {type(array).__name__}"
            )
        flat[name] = array
    return flat


def _write(path, structure, arrays):
    arrays[STRUCTURE_KEY] = np.frombuffer(json.dumps(structure).encode("utf-8"), dtype=np.uint8)
    write_npz(path if hasattr(path, "write") else os.fspath(path), arrays)


def save_checkpoint(path, model_state, optimizer_state=None, meta=None):
    """Save a model's ``state_dict``, an optimizer's ``state_dict`` and metadata to one ``.npz`` file.

    ``optimizer_state`` may nest dicts (str or int keys), lists, tuples, arrays, Tensors, numpy and
    Python scalars, None and strings; ``meta`` (step count, config, RNG state...) may hold the same.
    All of it comes back from :func:`load_checkpoint` with the same types, dtypes and bytes.
    """
    arrays = {}
    structure = {"format_version": FORMAT_VERSION}
    states = (_as_model_state(model_state), optimizer_state, meta)
    for (section, prefix), state in zip(_SECTIONS.items(), states):
        structure[section] = _encode(state, [prefix], arrays)
    _write(path, structure, arrays)


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True):
    """Save ``obj`` to the file ``f`` as :func:`torch.save` does, but as an npz: atomically, without pickle.

    ``obj`` is a ``state_dict`` or any nesting of dicts (str or int keys), lists and tuples of
    Tensors, NumPy arrays, Python and NumPy numbers, strings and None. :func:`load` gives it back.
    torch's pickle arguments are accepted and mean nothing here: nothing is pickled.
    """
    arrays = {}
    _write(f, {"format_version": FORMAT_VERSION, _OBJECT: _encode(obj, [_OBJECT], arrays)}, arrays)


# ---------------------------------------------------------------- decoding


class _Decoder:
    """Rebuilds what ``_encode`` wrote, reading each array entry from the archive when a node names it."""

    def __init__(self, archive, map_location=None):
        self.archive, self.map_location, self.used = archive, map_location, set()

    def entry(self, name):
        if not isinstance(name, str):
            raise _Malformed(f"an array node names {_short(name)} instead of an entry")
        if name in self.used or name == STRUCTURE_KEY:
            raise _Malformed(f"the structure lists entry {name!r} twice")
        if name not in self.archive:
            raise _Malformed(f"the structure lists array {name!r}, which the file lacks")
        self.used.add(name)
        return self.archive.read(name)

    def decode(self, node, depth=0):
        if isinstance(node, _LEAVES):
            return node
        if not isinstance(node, dict) or len(node) != 1:
            raise _Malformed(f"malformed node {_short(node)} in its structure")
        ((kind, content),) = node.items()
        if kind in ("dict", "list", "tuple") and depth >= MAX_DEPTH:
            raise _Malformed(f"its structure nests deeper than {MAX_DEPTH} levels")
        if kind == "dict":
            return dict(self._pair(pair, depth) for pair in _node_list(content, kind))
        if kind in ("list", "tuple"):
            items = [self.decode(item, depth + 1) for item in _node_list(content, kind)]
            return items if kind == "list" else tuple(items)
        if kind == "array":
            return self.entry(content)
        if kind == "scalar":
            array = self.entry(content)
            if array.ndim != 0:
                raise _Malformed(f"scalar entry {content!r} has shape {array.shape}")
            return array[()]
        if kind == "tensor":
            return self._tensor(content)
        raise _Malformed(f"unknown node type {_short(kind)} in its structure")

    def _pair(self, pair, depth):
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))
                and not isinstance(pair[0], bool)):
            raise _Malformed(f"malformed dict item {_short(pair)} in its structure")
        return pair[0], self.decode(pair[1], depth + 1)

    def _tensor(self, content):
        if not (isinstance(content, list) and len(content) == 3 and isinstance(content[1], bool)
                and content[2] in backend.DEVICES):
            raise _Malformed(f"malformed tensor node {_short(content)} in its structure")
        name, requires_grad, saved_device = content
        array = self.entry(name)
        if array.dtype.kind not in "biuf":
            raise _Malformed(f"tensor entry {name!r} has dtype {array.dtype}, which no Tensor holds")
        device = backend.check_device(self.map_location or saved_device)
        if device == "cuda" and self.map_location is None and not backend.cuda_available():
            raise backend.DeviceError(f"{self.archive.path} holds tensors saved on cuda, which is not available "
                                      f"here; load them with map_location='cpu'")
        return Tensor(array, requires_grad=requires_grad and array.dtype.kind == "f", dtype=array.dtype,
                      device=device)


def _node_list(content, kind):
    if not isinstance(content, list):
        raise _Malformed(f"a {kind} node holds {_short(content)} instead of a list")
    return content


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_structure(archive):
    if STRUCTURE_KEY not in archive:
        raise _Malformed(f"it has no {STRUCTURE_KEY!r} entry")
    raw = archive.read(STRUCTURE_KEY)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _Malformed(f"its {STRUCTURE_KEY!r} entry is {raw.dtype} of shape {raw.shape}, not UTF-8 bytes")
    try:
        structure = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise _Malformed(f"unreadable structure ({type(error).__name__}: {str(error)[:200]})") from None
    version = structure.get("format_version") if isinstance(structure, dict) else None
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise CheckpointError(
            f"{archive.path}: checkpoint format version {_short(version)} is not supported "
            f"(this reader knows {FORMAT_VERSION})"
        )
    return structure


def _load(f, read, map_location=None):
    """Open ``f`` and return ``read(structure, decoder)``, any fault of the file as CheckpointError."""
    is_file_object = hasattr(f, "read")
    source = getattr(f, "name", "<file object>") if is_file_object else os.fspath(f)
    if not is_file_object and not os.path.exists(source):
        raise FileNotFoundError(errno.ENOENT, "no checkpoint file", source)
    try:
        with NpzReader(f if is_file_object else source) as archive:
            decoder = _Decoder(archive, map_location)
            result = read(_read_structure(archive), decoder)
            unused = sorted(set(archive.names) - decoder.used - {STRUCTURE_KEY})
            if unused:
                raise _Malformed(f"its entry {unused[0]!r} is not listed in its structure")
            return result
    except (_Malformed, MalformedArchive) as error:
        raise CheckpointError(f"{source} is not a valid checkpoint: {error}") from None


def _sections(structure, decoder):
    if set(structure) == {"format_version", _OBJECT}:
        raise CheckpointError(f"{decoder.archive.path} holds an object written by tinygrad_rnn.save, not a "
                              f"training checkpoint; read it with tinygrad_rnn.load")
    if set(structure) != {"format_version", *_SECTIONS}:
        raise _Malformed(f"its structure has the keys {sorted(structure)}, not those of a checkpoint")
    loaded = {section: decoder.decode(structure[section]) for section in _SECTIONS}
    model = loaded["model"]
    if not (isinstance(model, dict) and all(isinstance(k, str) and isinstance(v, np.ndarray)
                                            for k, v in model.items())):
        raise _Malformed("its model section is not a dict of named arrays")
    return loaded


def load_checkpoint(path) -> dict:
    """Read a file written by :func:`save_checkpoint` (a path, or a binary file object) into
    ``{"model", "optimizer", "meta"}``.

    Raises FileNotFoundError for a missing file, PermissionError for one that cannot be read, and
    CheckpointError for anything that is not an intact checkpoint (truncated, corrupt, not an npz,
    another format version).
    """
    return _load(path, _sections)


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
    """What :func:`save` wrote to ``f``, a path or a binary file object (a checkpoint gives
    ``{"model", "optimizer", "meta"}``).

    Tensors come back as Tensors with their dtype and ``requires_grad``, on the device they were
    saved from, or on ``map_location`` ("cpu" or "cuda", a device, or a dict sending every device to
    one) when it is given, as in :func:`torch.load`. Nothing is ever unpickled, so ``weights_only``
    holds whatever it is set to; torch's pickle and mmap arguments are accepted and mean nothing here.
    """
    if isinstance(map_location, dict):
        targets = {str(backend.check_device(target)) for target in map_location.values()}
        if len(targets) != 1:
            raise ValueError(f"load: map_location {map_location!r} sends devices to different places; tensors here "
                             f"are on 'cpu' or 'cuda', so give one target")
        map_location = targets.pop()
    elif callable(map_location):
        raise TypeError("load: map_location as a function is not supported; give a device ('cpu' or 'cuda')")
    if map_location is not None:
        map_location = backend.check_device(map_location)

    def read(structure, decoder):
        if set(structure) == {"format_version", _OBJECT}:
            return decoder.decode(structure[_OBJECT])
        return _sections(structure, decoder)

    return _load(f, read, map_location)


# ---------------------------------------------------------------- compatibility


def check_state_compatible(expected, loaded):
    """Raise CheckpointError listing every missing key, unexpected key and shape mismatch at once.

    ``expected`` maps names to shapes, or to arrays (a model's ``state_dict()``); ``loaded`` maps
    names to arrays. Reporting everything together lets one look at the error fix a whole config.
    """
    expected_shapes = {name: tuple(getattr(spec, "shape", spec)) for name, spec in expected.items()}
    problems = [f"missing from checkpoint: {name}" for name in expected_shapes if name not in loaded]
    problems += [f"unexpected in checkpoint: {name}" for name in loaded if name not in expected_shapes]
    problems += [
        f"{name}: checkpoint has {_shape(loaded[name])}, model expects {shape}"
        for name, shape in expected_shapes.items()
        if name in loaded and _shape(loaded[name]) != shape
    ]
    if problems:
        raise CheckpointError("checkpoint does not fit the model:\n  " + "\n  ".join(problems))


def _shape(value):
    return tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
