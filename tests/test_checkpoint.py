import json
import math
import os

import numpy as np
import pytest

from tinygrad_rnn.checkpoint import CheckpointError, check_state_compatible, load_checkpoint, save_checkpoint


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
