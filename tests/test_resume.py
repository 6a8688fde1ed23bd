"""Checkpoints of training runs: resumed runs reach the same numbers, bad files give clear errors."""
import dataclasses
import os

import numpy as np
import pytest

from tinygrad_rnn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinygrad_rnn.data import CharCorpus
from tinygrad_rnn.train import TrainConfig, load_model, train

TEXT = "the quick brown fox jumps over the lazy dog; " * 40

# each run touches a different part of the saved state: carried hidden state and dropout's generator,
# a plateau schedule and RMSprop's buffers, a step schedule and SGD momentum
RUNS = {
    "lm-stateful-dropout": TrainConfig(task="lm", cell="lstm", hidden_size=8, embed_size=4, num_layers=2,
                                       dropout=0.3, batch_size=3, seq_len=6, stateful=True, optimizer="adam",
                                       schedule="cosine", steps=8, eval_every=2, eval_chars=64, dtype="float64"),
    "adding-rmsprop": TrainConfig(task="adding", cell="gru", hidden_size=6, batch_size=4, T=6,
                                  optimizer="rmsprop", lr=0.01, schedule="plateau", steps=8, eval_every=2,
                                  eval_sequences=8),
    "copy-sgd": TrainConfig(task="copy", cell="rnn", hidden_size=6, embed_size=3, batch_size=3, delay=2,
                            optimizer="sgd", lr=0.1, schedule="step", steps=8, eval_every=4, eval_sequences=4),
}


def corpus():
    return CharCorpus(TEXT)


def assert_same_run(a, b):
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        np.testing.assert_array_equal(x, y, err_msg=name)
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i in sa["state"]:
        for key in sa["state"][i]:
            np.testing.assert_array_equal(sa["state"][i][key], sb["state"][i][key])
    assert a.history["loss"] == b.history["loss"]
    assert a.history["val_loss"] == b.history["val_loss"]


class Interrupted(Exception):
    pass


def interrupt_after(last_step):
    def on_step(step, history):
        if step == last_step:
            raise Interrupted
    return on_step


@pytest.mark.parametrize("name", RUNS)
def test_resumed_run_equals_uninterrupted_run(tmp_path, name):
    config = RUNS[name]
    straight = train(config, progress=False, corpus=corpus())
    path = str(tmp_path / "run.npz")
    with pytest.raises(Interrupted):  # stopped half way, just after a checkpoint
        train(config, checkpoint=path, progress=False, corpus=corpus(), on_step=interrupt_after(config.steps // 2))
    assert load_checkpoint(path)["meta"]["step"] == config.steps // 2
    resumed = train(config, checkpoint=path, resume=True, progress=False, corpus=corpus(), log=lambda m: None)
    assert_same_run(straight, resumed)
    assert load_checkpoint(path)["meta"]["step"] == config.steps


def test_resume_without_a_file_starts_fresh(tmp_path):
    config = RUNS["copy-sgd"]
    path = str(tmp_path / "new.npz")
    result = train(config, checkpoint=path, resume=True, progress=False)
    assert_same_run(result, train(config, progress=False))
    assert os.path.exists(path)


@pytest.fixture
def saved_run(tmp_path):
    config = dataclasses.replace(RUNS["lm-stateful-dropout"], steps=2)
    path = str(tmp_path / "lm.npz")
    train(config, checkpoint=path, progress=False, corpus=corpus())
    return config, path


def resave_without(path, name):
    loaded = load_checkpoint(path)
    model = dict(loaded["model"])
    del model[name]
    save_checkpoint(path, model, loaded["optimizer"], loaded["meta"])


def test_missing_weight_is_named(saved_run):
    config, path = saved_run
    resave_without(path, "head.bias")
    with pytest.raises(CheckpointError, match="missing from checkpoint: head.bias"):
        train(dataclasses.replace(config, steps=4), checkpoint=path, resume=True, progress=False, corpus=corpus())
    with pytest.raises(CheckpointError, match="missing from checkpoint: head.bias"):
        load_model(path)


def test_wrong_shapes_are_listed(saved_run):
    config, path = saved_run
    bigger = dataclasses.replace(config, hidden_size=10, steps=4)
    with pytest.raises(CheckpointError) as error:
        train(bigger, checkpoint=path, resume=True, progress=False, corpus=corpus())
    message = str(error.value)
    assert "rnn.weight_hh_l0: checkpoint has (32, 8), model expects (40, 10)" in message
    assert "head.weight: checkpoint has (" in message


def test_truncated_file_is_refused(saved_run):
    config, path = saved_run
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a valid checkpoint"):
        train(dataclasses.replace(config, steps=4), checkpoint=path, resume=True, progress=False, corpus=corpus())


def test_interrupted_save_keeps_the_previous_checkpoint(saved_run, monkeypatch, tmp_path):
    config, path = saved_run
    before = load_checkpoint(path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut while writing")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        train(dataclasses.replace(config, steps=4), checkpoint=path, resume=True, progress=False, corpus=corpus(),
              log=lambda m: None)
    monkeypatch.undo()
    after = load_checkpoint(path)
    assert after["meta"]["step"] == before["meta"]["step"] == 2
    for name, array in before["model"].items():
        np.testing.assert_array_equal(after["model"][name], array)
    assert sorted(os.listdir(tmp_path)) == ["lm.npz"]  # no temporary file left behind
