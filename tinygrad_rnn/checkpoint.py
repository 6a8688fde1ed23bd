"""Checkpoints as one ``.npz`` file, written atomically and read without pickle.

Layout of the file:

- every array is an entry named by its path in the saved state, e.g. ``model/lstm.weight_ih_l0``
  or ``optim/state/0/exp_avg``, so ``np.load`` alone shows what a checkpoint holds;
- ``__structure__`` is a UTF-8 JSON document (stored as a uint8 array) holding the format version
  and the nesting of the model, optimizer and meta states. Python scalars and strings are stored
  in it as themselves; containers and arrays as one-key objects: ``{"dict": [[key, value], ...]}``
  (a list of pairs, so int keys stay ints), ``{"list": [...]}``, ``{"tuple": [...]}``,
  ``{"array": entry}`` and ``{"scalar": entry}`` for a numpy scalar, kept as a 0-d entry so its
  dtype survives.

Nothing is ever unpickled, so loading a checkpoint cannot run code.
"""

import errno
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT_VERSION = 1
STRUCTURE_KEY = "__structure__"
_SECTIONS = {"model": "model", "optimizer": "optim", "meta": "meta"}  # returned key -> entry prefix


class CheckpointError(ValueError):
    """A file that cannot be read as a checkpoint, or a state that does not fit a model."""


# ---------------------------------------------------------------- encoding


def _encode(value, path, arrays):
    """The JSON form of ``value``; its arrays are added to ``arrays`` under names built from ``path``."""
    if isinstance(value, (np.ndarray, np.generic)):  # first: np.float64 and np.str_ subclass float and str
        entry = "/".join(path)
        if entry in arrays:
            raise ValueError(f"two arrays in the state map to the same checkpoint entry {entry!r}")
        if value.dtype.hasobject:
            raise TypeError(f"{entry}: arrays of Python objects cannot be saved without pickle")
        arrays[entry] = np.asarray(value)
        return {"array" if isinstance(value, np.ndarray) else "scalar": entry}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        pairs = []
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(
                    f"{'/'.join(path)}: dict keys must be str or int, got {type(key).__name__} {key!r}"
                )
            pairs.append([key, _encode(item, path + [str(key)], arrays)])
        return {"dict": pairs}
    if isinstance(value, (list, tuple)):
        items = [_encode(item, path + [str(i)], arrays) for i, item in enumerate(value)]
        return {type(value).__name__: items}
    raise TypeError(f"{'/'.join(path)}: cannot save a value of type {type(value).__name__}")


def _decode(node, arrays, source):
    """Rebuild the value ``_encode`` turned into ``node``, taking arrays from the opened file."""
    if not isinstance(node, dict):
        return node
    if len(node) != 1:
        raise CheckpointError(f"{source}: malformed node {node!r} in the checkpoint structure")
    ((kind, content),) = node.items()
    if kind == "dict":
        return {key: _decode(item, arrays, source) for key, item in content}
    if kind in ("list", "tuple"):
        items = [_decode(item, arrays, source) for item in content]
        return items if kind == "list" else tuple(items)
    if kind in ("array", "scalar"):
        if content not in arrays:
            raise CheckpointError(f"{source}: the structure lists array {content!r}, which the file lacks")
        return arrays[content] if kind == "array" else arrays[content][()]
    raise CheckpointError(f"{source}: unknown node type {kind!r} in the checkpoint structure")


def _check_model_state(model_state):
    """The model section must be flat so it loads straight into ``Module.load_state_dict``."""
    if not isinstance(model_state, dict):
        raise TypeError(f"model_state must be a dict of numpy arrays, got {type(model_state).__name__}")
    for name, array in model_state.items():
        if not isinstance(name, str) or not isinstance(array, np.ndarray):
            raise TypeError(
                f"model_state must map str names to numpy arrays, got {name!r}: {type(array).__name__}"
            )


# ---------------------------------------------------------------- writing


def _fsync_directory(directory):
    """Make the rename itself durable; platforms that cannot open a directory skip this."""
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _new_file_mode():
    """The mode ``open`` gives a new file: mkstemp's private 0o600 would hide checkpoints from the group."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_atomically(path, arrays):
    """Write the npz beside ``path`` and rename it over ``path``, so a crash leaves the old file whole."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp_path = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp_path, _new_file_mode())
        os.replace(temp_path, path)
    except BaseException:
        os.unlink(temp_path)
        raise
    _fsync_directory(directory)


def save_checkpoint(path, model_state, optimizer_state=None, meta=None):
    """Save a model's ``state_dict``, an optimizer's ``state_dict`` and metadata to one ``.npz`` file.

    ``optimizer_state`` may nest dicts (str or int keys), lists, tuples, arrays, numpy and Python
    scalars, None and strings; ``meta`` (step count, config, RNG state...) may hold the same.
    All of it comes back from :func:`load_checkpoint` with the same types, dtypes and bytes.
    """
    _check_model_state(model_state)
    arrays = {}
    structure = {"format_version": FORMAT_VERSION}
    for (section, prefix), state in zip(_SECTIONS.items(), (model_state, optimizer_state, meta)):
        structure[section] = _encode(state, [prefix], arrays)
    arrays[STRUCTURE_KEY] = np.frombuffer(json.dumps(structure).encode("utf-8"), dtype=np.uint8)
    _write_atomically(os.fspath(path), arrays)


# ---------------------------------------------------------------- reading


def _read_structure(arrays, source):
    if STRUCTURE_KEY not in arrays:
        raise CheckpointError(f"{source} is not a valid checkpoint: it has no {STRUCTURE_KEY!r} entry")
    try:
        structure = json.loads(arrays[STRUCTURE_KEY].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{source} is not a valid checkpoint: unreadable structure ({error})") from None
    version = structure.get("format_version") if isinstance(structure, dict) else None
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{source}: checkpoint format version {version!r} is not supported "
            f"(this reader knows {FORMAT_VERSION})"
        )
    return structure


def load_checkpoint(path) -> dict:
    """Read a file written by :func:`save_checkpoint` into ``{"model", "optimizer", "meta"}``.

    Raises FileNotFoundError for a missing file and CheckpointError for anything that is not an
    intact checkpoint (truncated, corrupt, not an npz, another format version).
    """
    source = os.fspath(path)
    if not os.path.exists(source):
        raise FileNotFoundError(errno.ENOENT, "no checkpoint file", source)
    if not zipfile.is_zipfile(source):
        raise CheckpointError(
            f"{source} is not a valid checkpoint: it is not an npz (zip) archive, or it is truncated"
        )
    try:
        with np.load(source, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{source} is not a valid checkpoint: {error}") from error
    structure = _read_structure(arrays, source)
    return {section: _decode(structure.get(section), arrays, source) for section in _SECTIONS}


def check_state_compatible(expected, loaded):
    """Raise CheckpointError listing every missing key, unexpected key and shape mismatch at once.

    ``expected`` maps names to shapes, or to arrays (a model's ``state_dict()``); ``loaded`` maps
    names to arrays. Reporting everything together lets one look at the error fix a whole config.
    """
    expected_shapes = {name: tuple(getattr(spec, "shape", spec)) for name, spec in expected.items()}
    problems = [f"missing from checkpoint: {name}" for name in expected_shapes if name not in loaded]
    problems += [f"unexpected in checkpoint: {name}" for name in loaded if name not in expected_shapes]
    problems += [
        f"{name}: checkpoint has {np.shape(loaded[name])}, model expects {shape}"
        for name, shape in expected_shapes.items()
        if name in loaded and np.shape(loaded[name]) != shape
    ]
    if problems:
        raise CheckpointError("checkpoint does not fit the model:\n  " + "\n  ".join(problems))
