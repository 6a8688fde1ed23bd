"""Each rank's share of the built-in tasks' batches, the carried state gathered and split, the loop's helper."""
import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from tinygrad_rnn import factory
from tinygrad_rnn.distributed import DataParallel, ShardedTask, SingleProcess, data_parallel, shard_rows
from tinygrad_rnn.train import TrainConfig, make_task

from .scenarios import SCENARIOS, corpus
from .threads import Serialized, run_ranks

TASKS = {"lm_windows": SCENARIOS["lm_windows_gru_2_layers"],
         "lm_stateful": SCENARIOS["lm_stateful_lstm"],
         "adding": SCENARIOS["adding_gru_sgd"],
         "copy": SCENARIOS["copy_rnn_float32"]}


def task_for(config):
    return make_task(config, corpus() if config.task == "lm" else None)


def test_shards_are_equal_contiguous_blocks():
    assert [shard_rows(12, rank, 3) for rank in range(3)] == [slice(0, 4), slice(4, 8), slice(8, 12)]
    with pytest.raises(ValueError, match="batch_size 10 does not split evenly over 4 ranks: the mean of the ranks' "
                                         "gradients equals the full batch's only when every rank has the same"):
        shard_rows(10, 0, 4)


@pytest.mark.parametrize("name", TASKS)
def test_the_ranks_shards_put_together_are_the_batch_one_process_draws(name):
    config = TASKS[name]
    world = 2
    single = task_for(config)
    shards = [ShardedTask(task_for(config), SimpleNamespace(rank=r, world_size=world)) for r in range(world)]
    for _ in range(3):
        batch = single.batch()
        parts = [shard.batch() for shard in shards]
        for k, axis in enumerate(shards[0].axes):
            np.testing.assert_array_equal(np.concatenate([part[k] for part in parts], axis=axis), batch[k])
            assert all(part[k].shape[axis] == config.batch_size // world for part in parts)
        assert shards[1].items(parts[1]) == single.items(batch)
    assert shards[0].unit == single.unit and shards[0].baseline() == single.baseline()


def test_each_rank_carries_its_own_state_and_the_checkpoint_holds_everyones():
    config = dataclasses.replace(TASKS["lm_stateful"], num_layers=2)
    factory.manual_seed(0)
    single = task_for(config)
    model = single.build_model()
    expected = [single.loss(model, single.batch()) for _ in range(2)][-1].item(), single.state_dict()
    tasks = [task_for(config) for _ in range(2)]
    models = []
    for _ in range(2):
        factory.manual_seed(0)
        models.append(tasks[0].build_model())

    def rank(comm):
        task = ShardedTask(tasks[comm.rank], comm)
        losses = [task.loss(Serialized(models[comm.rank]), task.batch()).item() for _ in range(2)]
        own = [s.numpy() for s in task.task.carry]
        state = task.state_dict()
        fresh = ShardedTask(task_for(config), comm)
        fresh.load_state_dict(state)
        return losses[-1], own, state, [s.numpy() for s in fresh.task.carry], fresh.state_dict()

    (loss0, own0, state0, reloaded0, again0), (loss1, *_) = run_ranks(2, rank)
    assert (loss0 + loss1) / 2 == pytest.approx(expected[0], abs=1e-12)  # shard means average to the batch's
    for full, carried, mine, reloaded, again in zip(expected[1]["carry"], state0["carry"], own0, reloaded0,
                                                     again0["carry"]):
        assert carried.shape == full.shape == (2, config.batch_size, config.hidden_size)
        np.testing.assert_allclose(carried, full, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(mine, carried[:, :2])
        np.testing.assert_array_equal(reloaded, carried[:, :2])
        np.testing.assert_array_equal(again, carried)
    assert state0["position"] == expected[1]["position"]


def test_a_carried_state_of_another_batch_size_is_named():
    config = TASKS["lm_stateful"]
    task = ShardedTask(task_for(config), SimpleNamespace(rank=0, world_size=2))
    state = {**task.state_dict(), "carry": (np.zeros((1, 6, 8)), np.zeros((1, 6, 8)))}
    with pytest.raises(ValueError, match=r"holds 6 sequences \(shape \(1, 6, 8\)\), this run's batch has 4"):
        task.load_state_dict(state)


def test_the_loops_helper_in_one_process_and_on_several_ranks():
    single = data_parallel(None, TrainConfig())
    task, model = object(), object()
    assert isinstance(single, SingleProcess) and single.is_main
    assert single.shard(task) is task and single.wrap(model) is model and single.mean(2.5) == 2.5

    def rank(comm):
        helper = data_parallel(comm, TrainConfig(batch_size=4))
        return isinstance(helper, DataParallel), helper.is_main, helper.mean(float(comm.rank))

    assert run_ranks(2, rank) == [(True, True, 0.5), (True, False, 0.5)]
    with pytest.raises(ValueError, match="batch_size 5 does not split evenly over 2 ranks"):
        DataParallel(SimpleNamespace(rank=0, world_size=2), TrainConfig(batch_size=5))
