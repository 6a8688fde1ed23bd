"""Mutated checkpoints: every malformed file gives CheckpointError, in bounded memory, never a silent change.

Each test mutates valid files many times from a fixed seed (so a failure reproduces): raw bytes
flipped, truncated or added; and whole archives rebuilt with their CRCs right but lying npy
headers, wrong or pickled members, extra and missing members, and structures that are not what
the writer makes. A file whose bytes were damaged without a matching CRC must fail or load
exactly the original; a rebuilt archive must fail with CheckpointError or load. Nothing else may
escape, and nothing may allocate more than the file could justify.
"""
import io
import json
import math
import tracemalloc
import zipfile

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.checkpoint import STRUCTURE_KEY, CheckpointError, load_checkpoint, save_checkpoint

NPY = ".npy"
CASES = {}  # test name -> how many mutated files it loaded (printed with -s; see test_fuzz_case_counts)


def checkpoint_bytes(tmp_path):
    model = {"rnn.weight_ih_l0": np.arange(12.0).reshape(4, 3), "rnn.bias": np.float32([1, 2, 3, 4]),
             "head.weight": np.ones((2, 4), dtype=np.float32, order="F"), "empty": np.zeros((0, 3))}
    optimizer = {"state": {0: {"step": np.float32(3.0), "exp_avg": np.full(3, 0.5)}, 1: {}},
                 "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "nan": math.nan}]}
    meta = {"step": 12, "config": {"cell": "lstm", "hidden": 4}, "history": {"loss": [2.5, 2.25]},
            "flags": np.array([True, False]), "ids": np.int64(7), "name": "run"}
    path = tmp_path / "base.npz"
    save_checkpoint(path, model, optimizer, meta)
    return path.read_bytes()


def object_bytes(tmp_path):
    obj = {"w": tr.Tensor(np.arange(6.0).reshape(2, 3), dtype="float64", requires_grad=True),
           "ids": tr.Tensor(np.array([1, 2], dtype=np.int64)), "extra": [np.ones(2), (1, "a", None)]}
    path = tmp_path / "object.npz"
    tr.save(obj, path)
    return path.read_bytes()


def same(a, b):
    if isinstance(a, tr.Tensor) or isinstance(b, tr.Tensor):
        return (type(a) is type(b) and a.dtype == b.dtype and a.requires_grad == b.requires_grad
                and a.numpy().tobytes() == b.numpy().tobytes() and a.shape == b.shape)
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (np.ndarray, np.generic)):
        return (type(a) is type(b) and a.dtype == b.dtype and np.shape(a) == np.shape(b)
                and np.asarray(a).tobytes() == np.asarray(b).tobytes())
    return type(a) is type(b) and repr(a) == repr(b)


def attempt(data, loader):
    """('ok', value) or ('error', message) for CheckpointError; anything else escapes to fail the test."""
    try:
        return "ok", loader(io.BytesIO(data))
    except CheckpointError as error:
        return "error", str(error)


def check_all(name, files, loader, original=None):
    """Load every (description, bytes); an escaping exception fails with the case that raised it."""
    outcomes = {"ok": 0, "error": 0}
    for description, data in files:
        try:
            outcome, value = attempt(data, loader)
        except Exception as error:  # noqa: BLE001 (what escaped is the finding)
            pytest.fail(f"{name}, {description}: {type(error).__name__}: {error}")
        if outcome == "ok" and original is not None and not same(value, original):
            pytest.fail(f"{name}, {description}: damaged bytes loaded as a different checkpoint")
        if outcome == "ok" and loader is load_checkpoint:
            assert all(isinstance(v, np.ndarray) for v in value["model"].values()), description
        outcomes[outcome] += 1
    CASES[name] = CASES.get(name, 0) + len(files)
    return outcomes


# ---------------------------------------------------------------- raw bytes (CRCs no longer match)


def flipped(data, rng, count):
    for _ in range(count):
        damaged = bytearray(data)
        positions = rng.integers(0, len(data), size=rng.integers(1, 9))
        flips = {int(position): int(rng.integers(1, 256)) for position in positions}
        for position, mask in flips.items():
            damaged[position] ^= mask
        yield f"bytes flipped (position: xor mask) {flips}", bytes(damaged)


def truncated_and_padded(data, rng, count):
    for length in sorted(rng.choice(len(data), size=count, replace=False)):
        yield f"truncated to {length} bytes", data[:length]
    for size in (1, 22, 100, 5000):
        noise = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
        yield f"{size} bytes appended", data + noise
        yield f"{size} bytes prepended", noise + data


@pytest.mark.parametrize("kind", ["checkpoint", "object"])
def test_damaged_bytes_fail_or_load_the_original(tmp_path, kind):
    data = checkpoint_bytes(tmp_path) if kind == "checkpoint" else object_bytes(tmp_path)
    loader = load_checkpoint if kind == "checkpoint" else tr.load
    original = loader(io.BytesIO(data))
    rng = np.random.default_rng(12)
    files = [*flipped(data, rng, 900), *truncated_and_padded(data, rng, 300)]
    outcomes = check_all(f"damaged bytes ({kind})", files, loader, original)
    assert outcomes["error"] > 0.9 * len(files)  # a flip outside what CRCs cover (a date field) may load


# ---------------------------------------------------------------- rebuilt archives (CRCs right)


def members_of(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def archive_of(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def npy_of(array, header=None):
    buffer = io.BytesIO()
    if header is None:
        np.lib.format.write_array(buffer, array, allow_pickle=True)
    else:
        np.lib.format.write_array_header_1_0(buffer, header)
        buffer.write(array.tobytes())
    return buffer.getvalue()


def lying_headers(members, rng, count):
    """Members whose header claims another shape, dtype or order than the bytes they hold."""
    arrays = {name: np.load(io.BytesIO(payload)) for name, payload in members.items() if name != STRUCTURE_KEY + NPY}
    names = sorted(arrays)
    shapes = [(), (0,), (1,), (3,), (7, 7), (10**12,), (2**62, 4), (2**31, 2**31, 2**31), (5, 0, 10**15),
              (1, -1), (-3,), (10**6, 10**6)]
    dtypes = ["<f8", "<f4", "<i8", "|u1", "|b1", "<c16", ">f8", "<U3", "|V16", "<M8[s]"]
    for _ in range(count):
        name = names[rng.integers(len(names))]
        array = arrays[name]
        header = {"descr": array.dtype.str, "fortran_order": False, "shape": array.shape}
        change = rng.integers(3)
        if change == 0:
            header["shape"] = shapes[rng.integers(len(shapes))]
        elif change == 1:
            header["descr"] = dtypes[rng.integers(len(dtypes))]
        else:
            header["shape"] = tuple(int(d) for d in rng.integers(0, 9, size=rng.integers(0, 4)))
            header["fortran_order"] = bool(rng.integers(2))
        try:
            payload = npy_of(np.ascontiguousarray(array), header)
        except (ValueError, TypeError):  # a header NumPy will not even write
            continue
        yield f"{name} with header {header}", archive_of({**members, name: payload})


def wrong_members(members, rng):
    """Members replaced by other kinds of bytes, dropped, or added."""
    names = sorted(members)
    replacements = {
        "pickled objects": npy_of(np.array([{"payload": 1}, None], dtype=object)),
        "text": b"step,loss\n1,2.0\n",
        "empty": b"",
        "npy magic only": b"\x93NUMPY\x01\x00",
        "npy version 3": b"\x93NUMPY\x03\x00" + bytes(100),
        "huge header length": b"\x93NUMPY\x02\x00\xff\xff\xff\x7f" + bytes(64),
        "another array": npy_of(np.arange(3.0)),
        "a 0-d array": npy_of(np.array(1.5)),
        "a structured array": npy_of(np.zeros(2, dtype=[("a", "<f8"), ("b", "<i4")])),
    }
    for name in names:
        for what, payload in replacements.items():
            yield f"{name} replaced by {what}", archive_of({**members, name: payload})
        yield f"{name} missing", archive_of({k: v for k, v in members.items() if k != name})
        yield f"{name} renamed", archive_of({(k + ".bak" if k == name else k): v for k, v in members.items()})
        yield f"{name} twice", archive_of({**members, name[:-len(NPY)] + "/../x" + NPY: members[name]})
    for what, payload in replacements.items():
        yield f"extra member holding {what}", archive_of({**members, f"extra{rng.integers(100)}{NPY}": payload})
    compressed = io.BytesIO()
    with zipfile.ZipFile(compressed, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    yield "every member compressed", compressed.getvalue()
    yield "no members", archive_of({})


JUNK = [5, -1, 1.5, math.inf, "x", None, True, [], {}, [1, 2], {"dict": 3}, {"dict": [[1]]}, {"dict": [[True, 1]]},
        {"dict": [[None, 1]]}, {"list": {}}, {"list": 5}, {"tuple": "ab"}, {"array": "nowhere"}, {"array": 7},
        {"array": ["model/x"]}, {"scalar": None}, {"tensor": ["model/x", True]}, {"tensor": ["model/x", 1, "cpu"]},
        {"tensor": ["model/x", True, "tpu"]}, {"set": []}, {"array": "a", "list": []}, {"": 0}, 10**400,
        {"array": STRUCTURE_KEY}]


def deep(depth):
    text = '{"list": [' * depth + "0" + "]}" * depth
    return text


def mutated_structures(structure, rng, count):
    """Structures changed at a random node: junk put in, nodes deepened, keys dropped or added."""
    def nodes(value, path=()):
        yield path
        if isinstance(value, dict):
            for key, item in value.items():
                yield from nodes(item, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from nodes(item, (*path, i))

    paths = list(nodes(structure))
    for _ in range(count):
        copy = json.loads(json.dumps(structure))
        path = paths[rng.integers(len(paths))]
        choice = rng.integers(4)
        if choice == 0 or not path:
            replacement = json.dumps(JUNK[rng.integers(len(JUNK))])
        elif choice == 1:
            replacement = deep(int(rng.choice([40, 64, 70, 300, 2000])))
        elif choice == 2:
            replacement = json.dumps({"list": [JUNK[rng.integers(len(JUNK))]]})
        else:
            replacement = None  # drop the node from its parent
        if not path:
            yield f"the whole structure is {replacement}", replacement
            continue
        parent = copy
        for key in path[:-1]:
            parent = parent[key]
        if replacement is None:
            del parent[path[-1]]
            yield f"node {path} dropped", json.dumps(copy)
        else:
            parent[path[-1]] = "@@HERE@@"
            yield f"node {path} became {replacement[:40]}", json.dumps(copy).replace('"@@HERE@@"', replacement)
    for version in ["2", "0", '"1"', "true", "null", "1.5", "-1"]:
        yield f"format_version {version}", json.dumps({**structure, "format_version": 0}).replace(
            '"format_version": 0', f'"format_version": {version}')
    yield "an extra top-level key", json.dumps({**structure, "extra": 1})
    for text in ["", "{", "[]", "null", "\"text\"", "{\"format_version\": 1}", "\xff\xfe", "1" * 5000,
                 "[" * 100_000, '{"a": ' * 100_000]:
        yield f"structure {text[:20]!r}", text


def with_structure(members, text):
    payload = npy_of(np.frombuffer(text.encode("utf-8", "surrogateescape"), dtype=np.uint8))
    return archive_of({**members, STRUCTURE_KEY + NPY: payload})


@pytest.mark.parametrize("kind", ["checkpoint", "object"])
def test_rebuilt_archives_fail_with_checkpoint_error_or_load(tmp_path, kind):
    data = checkpoint_bytes(tmp_path) if kind == "checkpoint" else object_bytes(tmp_path)
    loader = load_checkpoint if kind == "checkpoint" else tr.load
    members = members_of(data)
    structure = json.loads(np.load(io.BytesIO(members[STRUCTURE_KEY + NPY])).tobytes())
    rng = np.random.default_rng(34)
    files = [*wrong_members(members, rng),
             *((d, with_structure(members, text)) for d, text in mutated_structures(structure, rng, 400))]
    outcomes = check_all(f"rebuilt archives ({kind})", files, loader)
    assert outcomes["error"] > 0.5 * len(files)


def test_lying_headers_allocate_nothing_big(tmp_path):
    data = checkpoint_bytes(tmp_path)
    rng = np.random.default_rng(56)
    files = list(lying_headers(members_of(data), rng, 300))
    tracemalloc.start()
    try:
        outcomes = check_all("lying npy headers", files, load_checkpoint)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, f"loading {len(files)} small files peaked at {peak:,} bytes"
    assert outcomes["error"] > 0.8 * len(files)


def test_fuzz_case_counts():
    """Runs last in this module: says how many mutated files the tests above loaded (pytest -s shows it)."""
    print("\ncheckpoint fuzz cases:", CASES, "in all:", sum(CASES.values()))
    assert not CASES or sum(CASES.values()) > 2000
