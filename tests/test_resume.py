"""Checkpoints of training runs: resumed runs reach the same numbers, bad files give clear errors."""
import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from tinygrad_rnn import is_grad_enabled, optim
from tinygrad_rnn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinygrad_rnn.data import CharCorpus
from tinygrad_rnn.train import AddingTask, ConfigError, TrainConfig, load_model, save_training_state, train

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


# ---------------------------------------------------------------- steps that must not be taken


def poison_gradients(monkeypatch, steps):
    """From now on, the training losses of the adding task at the given calls have NaN gradients but
    finite values: sqrt's gradient at 0 is inf, and 0 * inf is NaN."""
    calls = []
    original = AddingTask.loss

    def loss(self, model, batch):
        value = original(self, model, batch)
        if not is_grad_enabled():
            return value  # an evaluation
        calls.append(len(calls) + 1)
        if calls[-1] in steps:
            value = value + (next(model.parameters()) * 0).sum().sqrt()
        return value

    monkeypatch.setattr(AddingTask, "loss", loss)


def weights(model):
    return {name: value.numpy() for name, value in model.state_dict().items()}


@pytest.fixture
def running_model(monkeypatch):
    """A list that holds the model of the run in progress, for on_step callbacks to look at."""
    from tinygrad_rnn.train import loop
    holder, original = [], loop.build

    def build(*args, **kwargs):
        built = original(*args, **kwargs)
        holder[:] = [built[1]]
        return built

    monkeypatch.setattr(loop, "build", build)
    return holder


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_step_with_non_finite_gradients_is_skipped_and_reported(tmp_path, monkeypatch, running_model):
    config = dataclasses.replace(RUNS["adding-rmsprop"], steps=6, eval_every=2, clip=1.0)
    poison_gradients(monkeypatch, {2})
    seen, logged = {}, []
    path = str(tmp_path / "run.npz")
    result = train(config, checkpoint=path, progress=False, log=logged.append,
                   on_step=lambda step, history: seen.setdefault(step, weights(running_model[0])))
    assert result.history["skipped"] == [2] and result.history["step"] == [1, 3, 4, 5, 6]
    assert any("step 2: the gradient norm is nan, so the step was skipped" in line for line in logged)
    for name in seen[1]:
        np.testing.assert_array_equal(seen[1][name], seen[2][name])  # step 2 changed nothing
    saved = load_checkpoint(path)
    assert all(np.isfinite(array).all() for array in saved["model"].values())
    assert saved["meta"]["history"]["skipped"] == [2]
    resumed = train(dataclasses.replace(config, steps=8), checkpoint=path, resume=True, progress=False,
                    log=lambda m: None)
    assert resumed.step == 8 and resumed.history["skipped"] == [2]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_gradients_that_stay_non_finite_stop_the_run_and_the_checkpoint_stays_finite(tmp_path, monkeypatch):
    config = dataclasses.replace(RUNS["adding-rmsprop"], steps=60, eval_every=2, clip=0.5)
    poison_gradients(monkeypatch, set(range(3, 100)))
    path = str(tmp_path / "run.npz")
    with pytest.raises(FloatingPointError, match=r"not finite at 25 steps in a row \(steps 3 to 27\).*"
                                                 r"clipping \(--clip 0.5\) cannot bound a norm that is not finite"):
        train(config, checkpoint=path, progress=False, log=lambda m: None)
    saved = load_checkpoint(path)
    assert saved["meta"]["step"] == 26 and saved["meta"]["history"]["skipped"] == list(range(3, 27))
    assert all(np.isfinite(array).all() for array in saved["model"].values())


def test_non_finite_weights_are_never_saved(tmp_path, running_model):
    config = dataclasses.replace(RUNS["adding-rmsprop"], steps=4, eval_every=1)
    path = str(tmp_path / "run.npz")

    def break_the_weights(step, history):
        if step == 1:
            next(running_model[0].parameters()).array[...] = np.nan

    with pytest.raises(FloatingPointError, match="the weights are not finite at step 2 .*holds NaN or Inf"):
        train(config, checkpoint=path, progress=False, log=lambda m: None, on_step=break_the_weights)
    saved = load_checkpoint(path)
    assert saved["meta"]["step"] == 1 and all(np.isfinite(a).all() for a in saved["model"].values())
    with pytest.raises(FloatingPointError, match=f"so {path} was not written"):
        save_training_state(path, config, running_model[0], optim.SGD(running_model[0].parameters(), lr=0.1),
                            None, AddingTask(config), {}, 2)
    assert load_checkpoint(path)["meta"]["step"] == 1


# ---------------------------------------------------------------- what a resumed run keeps and changes


def test_an_existing_checkpoint_is_only_replaced_when_asked(saved_run):
    config, path = saved_run
    before = Path(path).read_bytes()
    with pytest.raises(FileExistsError, match="resume=True .* overwrite=True"):
        train(config, checkpoint=path, progress=False, corpus=corpus())
    assert Path(path).read_bytes() == before
    train(config, checkpoint=path, progress=False, corpus=corpus(), overwrite=True)


def test_a_missing_checkpoint_folder_is_created_before_the_first_step(tmp_path):
    path = tmp_path / "runs" / "today" / "run.npz"
    train(RUNS["copy-sgd"], checkpoint=str(path), progress=False)
    assert load_checkpoint(path)["meta"]["step"] == RUNS["copy-sgd"].steps


def interrupted(tmp_path, config):
    path = str(tmp_path / "run.npz")
    with pytest.raises(Interrupted):
        train(config, checkpoint=path, progress=False, on_step=interrupt_after(config.steps // 2))
    return path


def test_a_checkpoint_with_an_earlier_generator_state_resumes_and_says_so(saved_run):
    """NumPy's PCG64 state, as checkpoints held before the default generator became torch's."""
    config, path = saved_run
    loaded = load_checkpoint(path)
    meta = dict(loaded["meta"], rng=np.random.default_rng(7).bit_generator.state)
    save_checkpoint(path, loaded["model"], loaded["optimizer"], meta)
    logged = []
    longer = dataclasses.replace(config, steps=4)
    result = train(longer, checkpoint=path, resume=True, progress=False, corpus=corpus(), log=logged.append)
    assert any("random state of an earlier version's generator" in line and "seeded with 2" in line
               for line in logged), logged
    assert load_checkpoint(path)["meta"]["step"] == 4 and len(result.history["loss"]) == 4


def test_resume_applies_a_new_lr_momentum_and_weight_decay_and_says_so(tmp_path):
    config = dataclasses.replace(RUNS["copy-sgd"], schedule="none")
    path = interrupted(tmp_path, config)
    logged = []
    changed = dataclasses.replace(config, lr=0.05, momentum=0.5, weight_decay=0.01)
    result = train(changed, checkpoint=path, resume=True, progress=False, log=logged.append)
    group = result.optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.05, 0.5, 0.01)
    assert "resuming with lr 0.05 (the checkpoint's run had 0.1)" in logged
    assert "resuming with momentum 0.5 (the checkpoint's run had 0.9)" in logged
    assert load_checkpoint(path)["meta"]["config"]["lr"] == 0.05


def test_a_new_lr_rescales_the_saved_schedule(tmp_path):
    config = RUNS["copy-sgd"]  # a step schedule: x0.3 every two steps
    path = interrupted(tmp_path, config)
    straight = train(config, progress=False)
    resumed = train(dataclasses.replace(config, lr=0.3), checkpoint=path, resume=True, progress=False,
                    log=lambda m: None)
    np.testing.assert_allclose(resumed.optimizer.param_groups[0]["lr"],
                               3 * straight.optimizer.param_groups[0]["lr"], rtol=1e-12)


@pytest.mark.parametrize("change, message", [
    ({"optimizer": "adam"}, "optimizer: 'adam' differs from 'sgd' in the checkpoint"),
    ({"schedule": "cosine"}, "schedule: 'cosine' differs from 'step' in the checkpoint"),
])
def test_resume_refuses_another_optimizer_or_schedule(tmp_path, change, message):
    config = RUNS["copy-sgd"]
    path = interrupted(tmp_path, config)
    with pytest.raises(ConfigError, match=message):
        train(dataclasses.replace(config, **change), checkpoint=path, resume=True, progress=False)


def test_resume_refuses_to_turn_on_rmsprop_momentum(tmp_path):
    config = dataclasses.replace(RUNS["adding-rmsprop"], momentum=0.0)
    path = interrupted(tmp_path, config)
    with pytest.raises(ConfigError, match="momentum: cannot turn on momentum"):
        train(dataclasses.replace(config, momentum=0.5), checkpoint=path, resume=True, progress=False,
              log=lambda m: None)


def test_a_checkpoint_past_the_requested_steps_is_returned_as_it_is(tmp_path):
    config = RUNS["copy-sgd"]
    path = str(tmp_path / "run.npz")
    train(config, checkpoint=path, progress=False)
    before = Path(path).read_bytes()
    logged = []
    result = train(dataclasses.replace(config, steps=3), checkpoint=path, resume=True, progress=False,
                   log=logged.append)
    assert result.step == config.steps and Path(path).read_bytes() == before
    assert any("is at step 8 already, which reaches steps=3: nothing to train" in line for line in logged)
