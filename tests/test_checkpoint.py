import errno
import json
import math
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import tinygrad_rnn
from tinygrad_rnn import archive
from tinygrad_rnn.checkpoint import (
    STRUCTURE_KEY,
    CheckpointError,
    check_state_compatible,
    load_checkpoint,
    save_checkpoint,
)


def model_state():
    rng = np.random.default_rng(0)
    return {
        "lstm.weight_ih_l0": rng.standard_normal((16, 3)).astype(np.float32),
        "lstm.bias_ih_l0": rng.standard_normal(16),
        "embedding.counts": np.arange(6, dtype=np.int64).reshape(2, 3),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


def optimizer_state():
    """Shaped like torch.optim.Adam(...).state_dict() with its tensors turned into numpy values."""
    rng = np.random.default_rng(1)
    return {
        "state": {
            index: {"step": np.float32(3.0), "exp_avg": rng.standard_normal(4), "exp_avg_sq": rng.random(4)}
            for index in range(2)
        },
        "param_groups": [
            {
                "lr": 1e-3,
                "betas": (0.9, 0.999),
                "eps": 1e-8,
                "weight_decay": 0,
                "amsgrad": False,
                "foreach": None,
                "name": "default",
                "params": [0, 1],
                "inf": math.inf,
                "nan": math.nan,
            }
        ],
        "no_state": {},
        "no_groups": [],
        "big": 2**100,
        "flags": np.array([True, False]),
        "mixed_keys": {"0": "str key", 0: "int key"},
    }


def assert_identical(loaded, original):
    """Same types, dict key order and key types, dtypes and bytes, all the way down."""
    assert type(loaded) is type(original)
    if isinstance(original, dict):
        assert [(type(k), k) for k in loaded] == [(type(k), k) for k in original]
        for key in original:
            assert_identical(loaded[key], original[key])
    elif isinstance(original, (list, tuple)):
        assert len(loaded) == len(original)
        for a, b in zip(loaded, original):
            assert_identical(a, b)
    elif isinstance(original, (np.ndarray, np.generic)):
        assert loaded.dtype == original.dtype and loaded.shape == original.shape
        assert loaded.tobytes() == original.tobytes()
    else:
        assert repr(loaded) == repr(original)  # repr so that nan equals nan


# ---------------------------------------------------------------- round trip


def test_round_trip_keeps_types_dtypes_and_bytes(tmp_path):
    meta = {"step": 1200, "config": {"hidden": 128, "cell": "lstm"}, "loss": 1.25}
    path = tmp_path / "model.npz"
    save_checkpoint(path, model_state(), optimizer_state(), meta)
    loaded = load_checkpoint(path)
    assert set(loaded) == {"model", "optimizer", "meta"}
    assert_identical(loaded["model"], model_state())
    assert_identical(loaded["optimizer"], optimizer_state())
    assert_identical(loaded["meta"], meta)


def test_arrays_are_npz_entries_named_by_their_path(tmp_path):
    path = tmp_path / "model.npz"
    save_checkpoint(path, model_state(), optimizer_state())
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        np.testing.assert_array_equal(
            archive["optim/state/0/exp_avg"], optimizer_state()["state"][0]["exp_avg"]
        )
    assert {"__structure__", "model/lstm.weight_ih_l0", "optim/state/1/exp_avg_sq"} <= names


def test_optimizer_and_meta_default_to_none(tmp_path):
    path = str(tmp_path / "model.npz")
    save_checkpoint(path, {"w": np.ones(2)})
    loaded = load_checkpoint(path)
    assert loaded["optimizer"] is None and loaded["meta"] is None


def test_rng_state_in_meta_restores_the_generator(tmp_path):
    rng = np.random.default_rng(42)
    rng.random(10)
    path = tmp_path / "model.npz"
    save_checkpoint(path, {}, meta={"rng": rng.bit_generator.state})
    restored = np.random.default_rng()
    restored.bit_generator.state = load_checkpoint(path)["meta"]["rng"]
    np.testing.assert_array_equal(restored.random(5), rng.random(5))


def convert_tree(value, convert_leaf):
    if isinstance(value, dict):
        return {key: convert_tree(item, convert_leaf) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(convert_tree(item, convert_leaf) for item in value)
    return convert_leaf(value)


def test_a_pytorch_optimizer_state_loads_back_into_pytorch(tmp_path, torch):
    model = torch.nn.LSTM(3, 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(5, 2, 3))[0].sum().backward()
    optimizer.step()

    def to_numpy(leaf):
        return leaf.numpy() if isinstance(leaf, torch.Tensor) else leaf

    def to_torch(leaf):
        return torch.from_numpy(leaf) if isinstance(leaf, np.ndarray) else leaf

    path = tmp_path / "model.npz"
    save_checkpoint(
        path, convert_tree(model.state_dict(), to_numpy), convert_tree(optimizer.state_dict(), to_numpy)
    )
    restored = torch.optim.Adam(model.parameters(), lr=0.5)
    restored.load_state_dict(convert_tree(load_checkpoint(path)["optimizer"], to_torch))

    expected, actual = optimizer.state_dict(), restored.state_dict()
    assert actual["param_groups"] == expected["param_groups"]
    for index, state in expected["state"].items():
        for name, tensor in state.items():
            assert torch.equal(actual["state"][index][name], tensor), (index, name)


@pytest.mark.parametrize(
    "model, optimizer, error, message",
    [
        ({"w": [1.0, 2.0]}, None, TypeError, "'w': list"),
        (
            {"w": np.ones(2)},
            {"state": {0: {"momentum": {1, 2}}}},
            TypeError,
            "optim/state/0/momentum: .* set",
        ),
        ({"w": np.ones(2)}, {"state": {1.5: np.ones(2)}}, TypeError, "float 1.5"),
        ({"w": np.ones(2)}, {"cache": np.array([object()])}, TypeError, "optim/cache: .*pickle"),
        ({"w": np.ones(2)}, {"a/b": np.ones(1), "a": {"b": np.ones(1)}}, ValueError, "'optim/a/b'"),
    ],
)
def test_unsaveable_state_is_rejected_without_touching_the_file(tmp_path, model, optimizer, error, message):
    path = tmp_path / "model.npz"
    with pytest.raises(error, match=message):
        save_checkpoint(path, model, optimizer)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- atomic writes


def test_saving_again_replaces_the_file_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "model.npz"
    save_checkpoint(path, {"w": np.zeros(3)})
    save_checkpoint(path, {"w": np.ones(3)}, meta={"step": 2})
    assert os.listdir(tmp_path) == ["model.npz"]
    np.testing.assert_array_equal(load_checkpoint(path)["model"]["w"], np.ones(3))


def test_saved_file_gets_the_usual_permissions(tmp_path):
    (tmp_path / "plain").write_bytes(b"")
    save_checkpoint(tmp_path / "model.npz", {"w": np.ones(3)})
    assert (tmp_path / "model.npz").stat().st_mode == (tmp_path / "plain").stat().st_mode


@pytest.mark.parametrize("interruption", [OSError("disk full"), KeyboardInterrupt()])
def test_interrupted_save_keeps_the_old_checkpoint(tmp_path, monkeypatch, interruption):
    path = tmp_path / "model.npz"
    save_checkpoint(path, model_state(), optimizer_state(), {"step": 1})

    def write_half_then_fail(file, *args, **kwargs):
        file.write(path.read_bytes()[: path.stat().st_size // 2])
        raise interruption

    monkeypatch.setattr(np, "savez", write_half_then_fail)
    with pytest.raises(type(interruption)):
        save_checkpoint(path, {"w": np.ones(3)}, meta={"step": 2})
    monkeypatch.undo()

    assert os.listdir(tmp_path) == ["model.npz"]
    loaded = load_checkpoint(path)
    assert_identical(loaded["model"], model_state())
    assert loaded["meta"] == {"step": 1}


def test_interrupted_first_save_leaves_nothing(tmp_path, monkeypatch):
    def fail(file, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "model.npz", {"w": np.ones(3)})
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- invalid files


def write_npz(path, structure=None, **arrays):
    if structure is not None:
        arrays["__structure__"] = np.frombuffer(json.dumps(structure).encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "absent.npz"
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        load_checkpoint(path)


def test_truncated_file_is_not_a_valid_checkpoint(tmp_path):
    path = tmp_path / "model.npz"
    save_checkpoint(path, model_state(), optimizer_state())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=f"{path} is not a valid checkpoint"):
        load_checkpoint(path)


def test_corrupted_bytes_are_not_a_valid_checkpoint(tmp_path):
    path = tmp_path / "model.npz"
    save_checkpoint(path, {"w": np.arange(1000.0)})
    data = bytearray(path.read_bytes())
    data[500:600] = bytes(255 - byte for byte in data[500:600])
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="not a valid checkpoint: Bad CRC-32 for file 'model/w.npy'"):
        load_checkpoint(path)


def write_npy(path):
    with open(path, "wb") as file:  # a file object, so np.save does not append .npy to the name
        np.save(file, np.ones(3))


@pytest.mark.parametrize("write", [lambda p: p.write_text("step,loss\n1,2.0\n"), write_npy])
def test_a_file_that_is_not_an_npz_is_not_a_valid_checkpoint(tmp_path, write):
    path = tmp_path / "model.npz"
    write(path)
    with pytest.raises(CheckpointError, match="not a valid checkpoint"):
        load_checkpoint(path)


def test_an_npz_without_structure_is_not_a_valid_checkpoint(tmp_path):
    path = tmp_path / "weights.npz"
    write_npz(path, w=np.ones(3))
    with pytest.raises(
        CheckpointError, match="weights.npz is not a valid checkpoint: it has no '__structure__'"
    ):
        load_checkpoint(path)


def test_an_unknown_format_version_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    write_npz(path, {"format_version": 99, "model": {"dict": []}})
    with pytest.raises(CheckpointError, match="version 99 is not supported"):
        load_checkpoint(path)


def test_an_array_listed_but_absent_is_reported(tmp_path):
    path = tmp_path / "model.npz"
    structure = {
        "format_version": 1,
        "model": {"dict": [["w", {"array": "model/w"}]]},
        "optimizer": None,
        "meta": None,
    }
    write_npz(path, structure, **{"model/v": np.ones(2)})
    with pytest.raises(CheckpointError, match="array 'model/w'"):
        load_checkpoint(path)


def test_an_object_array_is_never_unpickled(tmp_path):
    path = tmp_path / "model.npz"
    structure = {
        "format_version": 1,
        "model": {"dict": [["w", {"array": "model/w"}]]},
        "optimizer": None,
        "meta": None,
    }
    write_npz(path, structure, **{"model/w": np.array([{"payload": 1}], dtype=object)})
    with pytest.raises(CheckpointError, match="not a valid checkpoint"):
        load_checkpoint(path)


# ---------------------------------------------------------------- compatibility


def test_compatibility_check_reports_every_difference_at_once():
    expected = {"lstm.weight_ih_l0": (512, 32), "lstm.bias_ih_l0": (512,), "decoder.weight": (10, 128)}
    loaded = {
        "lstm.weight_ih_l0": np.zeros((512, 64)),
        "decoder.weight": np.zeros((10, 128)),
        "encoder.weight": np.zeros(3),
    }
    with pytest.raises(CheckpointError) as info:
        check_state_compatible(expected, loaded)
    message = str(info.value)
    assert "missing from checkpoint: lstm.bias_ih_l0" in message
    assert "unexpected in checkpoint: encoder.weight" in message
    assert "lstm.weight_ih_l0: checkpoint has (512, 64), model expects (512, 32)" in message
    assert "decoder.weight" not in message


def test_compatible_state_passes_with_shapes_or_arrays_as_expectation():
    loaded = {"w": np.zeros((2, 3)), "b": np.zeros(3)}
    check_state_compatible({"w": (2, 3), "b": (3,)}, loaded)
    check_state_compatible({"w": np.ones((2, 3)), "b": np.ones(3)}, loaded)
    with pytest.raises(CheckpointError, match=r"b: checkpoint has \(3,\), model expects \(4,\)"):
        check_state_compatible({"w": np.ones((2, 3)), "b": np.ones(4)}, loaded)


# ---------------------------------------------------------------- temporary files and permissions


def finished_process_id():
    """The id of a process that has ended, as a save killed with kill -9 leaves in its temporary file's name."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def test_next_save_removes_temporary_files_of_killed_saves_to_the_same_target(tmp_path):
    dead = finished_process_id()
    stale = [f".model.npz.{dead}.0123abcd.tmp", ".model.npz.k3j_a9x0.tmp"]  # the second: the older naming
    kept = [f".other.npz.{dead}.0123abcd.tmp",  # another target
            f".model.npz.{os.getpid()}.0123abcd.tmp",  # a live writer (this process)
            ".model.npz.notes.tmp", "model.npz.bak"]  # not names this module makes
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x" * 1000)
    save_checkpoint(tmp_path / "model.npz", {"w": np.ones(3)})
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["model.npz"])


def test_save_leaves_the_process_umask_alone(tmp_path, monkeypatch):
    def umask(_):
        raise AssertionError("save_checkpoint changed the umask, which other threads share")

    monkeypatch.setattr(os, "umask", umask)
    save_checkpoint(tmp_path / "model.npz", {"w": np.ones(3)})
    tinygrad_rnn.save({"w": np.ones(3)}, tmp_path / "object.npz")


def test_an_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    save_checkpoint(path, {"w": np.ones(3)})

    def refuse(file, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))

    monkeypatch.setattr(archive, "open", refuse, raising=False)
    with pytest.raises(PermissionError, match="Permission denied"):
        load_checkpoint(path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_says_permission_denied(tmp_path):
    path = tmp_path / "model.npz"
    save_checkpoint(path, {"w": np.ones(3)})
    path.chmod(0)
    with pytest.raises(PermissionError, match="Permission denied"):
        load_checkpoint(path)


# ---------------------------------------------------------------- malformed files


CHECKPOINT_KEYS = {"format_version": 1, "optimizer": None, "meta": None}


@pytest.mark.parametrize("model, message", [
    ({"dict": 5}, "a dict node holds 5 instead of a list"),
    ({"dict": [["w", {"array": "model/w"}, 3]]}, "malformed dict item"),
    ({"dict": [[1.5, None]]}, "malformed dict item"),
    ({"list": {"a": 1}}, "a list node holds"),
    ({"array": ["model/w"]}, "an array node names \\['model/w'\\]"),
    ({"array": "model/w", "list": []}, "malformed node"),
    ({"set": []}, "unknown node type 'set'"),
    ([1, 2], "malformed node \\[1, 2\\]"),
    ({"dict": [["w", {"scalar": "model/w"}]]}, "scalar entry 'model/w' has shape \\(3,\\)"),
    ({"dict": [["w", {"array": "model/w"}], ["v", {"array": "model/w"}]]}, "lists entry 'model/w' twice"),
    ({"dict": [["w", {"tensor": ["model/w", "yes", "cpu"]}]]}, "malformed tensor node"),
    ({"dict": [["w", 3]]}, "its model section is not a dict of named arrays"),
])
def test_a_wrong_structure_node_is_a_checkpoint_error(tmp_path, model, message):
    path = tmp_path / "model.npz"
    write_npz(path, {**CHECKPOINT_KEYS, "model": model}, **{"model/w": np.ones(3)})
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_deep_nesting_is_refused_on_loading_and_on_saving(tmp_path):
    path = tmp_path / "model.npz"
    for depth, message in [(200, "nests deeper than 64 levels"), (600, "nests deeper|RecursionError")]:
        deep_meta = '{"list": [' * depth + '{"array": "model/w"}' + "]}" * depth  # too deep for json.dumps
        text = json.dumps({**CHECKPOINT_KEYS, "model": {"dict": []}, "meta": "META"}).replace('"META"', deep_meta)
        write_npz(path, None, __structure__=np.frombuffer(text.encode(), dtype=np.uint8), **{"model/w": np.ones(3)})
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(path)
    write_npz(path, {**CHECKPOINT_KEYS, "model": {"dict": []}, "meta": {"list": [[[[0]]]]}})
    with pytest.raises(CheckpointError, match="malformed node"):  # JSON arrays are not nodes
        load_checkpoint(path)
    write_npz(path, None, __structure__=np.frombuffer(b"[" * 100_000, dtype=np.uint8))
    with pytest.raises(CheckpointError, match="unreadable structure"):
        load_checkpoint(path)
    deep = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError, match="nests deeper than 64 levels"):
        save_checkpoint(tmp_path / "deep.npz", {}, meta=deep)
    assert not (tmp_path / "deep.npz").exists()


def lie_about_shape(data, true_shape, claimed_shape):
    """The archive bytes with the one npy header of `true_shape` claiming another shape, its length kept."""
    old, new = f"'shape': {true_shape}".encode(), f"'shape': {claimed_shape}".encode()
    start = data.index(old)
    end = data.index(b"\n", start)  # the header's padding of spaces ends there
    header = data[start:end].replace(old, new).rstrip(b" ")
    assert len(header) <= end - start
    return data[:start] + header.ljust(end - start) + data[end:]


def test_a_header_that_claims_8_terabytes_allocates_nothing(tmp_path):
    path = tmp_path / "model.npz"
    save_checkpoint(path, {"w": np.ones((1000,))})
    data = path.read_bytes()
    path.write_bytes(lie_about_shape(data, "(1000,)", "(1000000000000,)"))
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"declares shape \(1000000000000,\) of float64 "
                                                  r"\(8,000,000,000,000 bytes\) but holds 8,000 bytes"):
            load_checkpoint(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_a_member_nothing_references_is_refused_without_being_read(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    structure = {**CHECKPOINT_KEYS, "model": {"dict": [["w", {"array": "model/w"}]]}}
    write_npz(path, structure, **{"model/w": np.ones(3), "padding": np.zeros(10**6)})
    read = []
    original = archive.NpzReader.read
    monkeypatch.setattr(archive.NpzReader, "read", lambda self, name: read.append(name) or original(self, name))
    with pytest.raises(CheckpointError, match="its entry 'padding' is not listed in its structure"):
        load_checkpoint(path)
    assert "padding" not in read


def test_a_compressed_member_is_never_inflated(tmp_path):
    path = tmp_path / "model.npz"
    structure = json.dumps({**CHECKPOINT_KEYS, "model": {"dict": [["w", {"array": "model/w"}]]}})
    np.savez_compressed(path, **{"model/w": np.zeros(10**7), STRUCTURE_KEY: np.frombuffer(structure.encode(), np.uint8)})
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="is compressed"):
            load_checkpoint(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_a_saved_object_is_not_taken_for_a_checkpoint(tmp_path):
    path = tmp_path / "object.npz"
    tinygrad_rnn.save({"w": np.ones(2)}, path)
    with pytest.raises(CheckpointError, match="written by tinygrad_rnn.save.*read it with tinygrad_rnn.load"):
        load_checkpoint(path)


# ---------------------------------------------------------------- tinygrad_rnn.save and load


def test_save_and_load_round_trip_tensors_arrays_and_numbers(tmp_path):
    obj = {
        "weights": tinygrad_rnn.Tensor(np.arange(6.0).reshape(2, 3), dtype="float64", requires_grad=True),
        "float32": tinygrad_rnn.Tensor([1.5, 2.5]),
        "ids": tinygrad_rnn.Tensor(np.array([3, 1], dtype=np.int64)),
        "mask": tinygrad_rnn.Tensor(np.array([True, False])),
        "array": np.arange(4, dtype=np.int32),
        "nested": [(1, 2.5, "three", None, True), {0: np.float32(0.5)}],
    }
    path = tmp_path / "object.npz"
    tinygrad_rnn.save(obj, path)
    loaded = tinygrad_rnn.load(path)
    assert list(loaded) == list(obj)
    for name in ("weights", "float32", "ids", "mask"):
        tensor = loaded[name]
        assert isinstance(tensor, tinygrad_rnn.Tensor) and tensor.device == "cpu"
        assert tensor.dtype == obj[name].dtype and tensor.requires_grad == obj[name].requires_grad
        np.testing.assert_array_equal(tensor.numpy(), obj[name].numpy())
    assert_identical(loaded["array"], obj["array"])
    assert_identical(loaded["nested"], obj["nested"])
    assert tinygrad_rnn.load(path, map_location="cpu")["weights"].device == "cpu"
    with pytest.raises(tinygrad_rnn.DeviceError, match="unknown device 'tpu'"):
        tinygrad_rnn.load(path, map_location="tpu")


def test_save_and_load_a_model_as_with_torch(tmp_path):
    model = tinygrad_rnn.nn.LSTM(3, 4, num_layers=2)
    path = tmp_path / "lstm.npz"
    tinygrad_rnn.save(model.state_dict(), path)
    other = tinygrad_rnn.nn.LSTM(3, 4, num_layers=2)
    other.load_state_dict(tinygrad_rnn.load(path))
    for (name, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
    assert os.listdir(tmp_path) == ["lstm.npz"]


def test_load_reads_a_training_checkpoint_as_its_sections(tmp_path):
    path = tmp_path / "model.npz"
    save_checkpoint(path, model_state(), optimizer_state(), {"step": 3})
    loaded = tinygrad_rnn.load(path)
    assert set(loaded) == {"model", "optimizer", "meta"} and loaded["meta"] == {"step": 3}


def test_save_refuses_what_it_cannot_write_without_pickle(tmp_path):
    with pytest.raises(TypeError, match="object/0: cannot save a value of type set"):
        tinygrad_rnn.save([{1, 2}], tmp_path / "x.npz")
    with pytest.raises(TypeError, match="dict keys must be str or int, got bool"):
        tinygrad_rnn.save({True: 1}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def test_save_and_load_through_file_objects_as_torch_does(tmp_path):
    model = tinygrad_rnn.nn.Linear(3, 2)
    with open(tmp_path / "model.pt", "wb") as f:
        tinygrad_rnn.save({"state": model.state_dict(), "epoch": 3}, f)
    with open(tmp_path / "model.pt", "rb") as f:
        loaded = tinygrad_rnn.load(f)
    assert loaded["epoch"] == 3
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(np.asarray(loaded["state"][name]), value)


def test_torch_load_and_save_arguments_are_taken(tmp_path):
    """Code written for torch passes weights_only=True (torch 2.6's default), mmap, pickle arguments and a
    dict map_location; all load the same data, since nothing here is pickled."""
    path = tmp_path / "model.pt"
    tinygrad_rnn.save({"w": tinygrad_rnn.ones(2, 3), "step": 4}, path, pickle_protocol=4)
    for options in ({"weights_only": True}, {"weights_only": False}, {"mmap": True},
                    {"map_location": {"cuda:0": "cpu"}}, {"map_location": tinygrad_rnn.device("cpu")}):
        back = tinygrad_rnn.load(path, **options)
        assert back["step"] == 4 and back["w"].tolist() == [[1.0] * 3] * 2, options
    with pytest.raises(ValueError, match="sends devices to different places"):
        tinygrad_rnn.load(path, map_location={"cuda:0": "cpu", "cpu": "cuda"})
    with pytest.raises(TypeError, match="map_location as a function"):
        tinygrad_rnn.load(path, map_location=lambda storage, location: storage)
