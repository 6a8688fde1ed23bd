"""DistributedDataParallel over thread ranks: rank 0's weights, exactly averaged gradients, the model's names."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import factory
from tinygrad_rnn.distributed import DistributedDataParallel
from tinygrad_rnn.distributed.ddp import make_buckets
from tinygrad_rnn.nn import functional as F
from tinygrad_rnn.nn.linear import Linear
from tinygrad_rnn.nn.module import Module
from tinygrad_rnn.train import SequenceRegressor

from ..conftest import to_np
from .threads import COMPUTE, run_ranks

T, INPUTS = 4, 3


def regressor(seed):
    with COMPUTE:  # the random stream is one per process, as torch's: thread ranks draw their weights in turn
        factory.manual_seed(seed)
        return SequenceRegressor(INPUTS, 5, cell="lstm", dtype="float64")


def data(batch, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, batch, INPUTS)), rng.standard_normal((batch, 1))


def mean_loss(model, x, y):
    prediction, _ = model(tr.Tensor(x, dtype="float64"))
    return F.mse_loss(prediction, tr.Tensor(y, dtype="float64"))


def grads(model):
    return {name: to_np(p.grad) for name, p in model.named_parameters()}


def full_batch_grads(x, y):
    model = regressor(0)
    mean_loss(model, x, y).backward()
    return grads(model)


def shard_grads(models, shards, bucket_cap_mb=25):
    """Each thread rank: wrap its model, backpropagate its shard, average; the gradients of every rank."""
    def rank(comm):
        ddp = DistributedDataParallel(models[comm.rank], comm, bucket_cap_mb=bucket_cap_mb)
        x, y = shards[comm.rank]
        with COMPUTE:
            mean_loss(ddp, x, y).backward()
        ddp.average_gradients()
        return grads(ddp.module)

    return run_ranks(len(models), rank)


def test_wrapping_gives_every_rank_rank_0s_weights_in_place():
    models = [regressor(seed) for seed in range(3)]
    expected = models[0].state_dict()
    arrays = [p.array for p in models[2].parameters()]  # optimizers hold these: they must stay the same objects
    run_ranks(3, lambda comm: DistributedDataParallel(models[comm.rank], comm))
    for model in models:
        for name, value in model.state_dict().items():
            np.testing.assert_array_equal(value, expected[name])
    assert all(p.array is a for p, a in zip(models[2].parameters(), arrays))


@pytest.mark.parametrize("bucket_cap_mb", [25, 1e-4])  # one bucket; a bucket per parameter or two
def test_equal_shards_of_a_mean_loss_average_to_the_full_batch_gradient(bucket_cap_mb):
    x, y = data(6)
    expected = full_batch_grads(x, y)
    shards = [(x[:, i:i + 2], y[i:i + 2]) for i in (0, 2, 4)]
    for rank_grads in shard_grads([regressor(0) for _ in range(3)], shards, bucket_cap_mb):
        assert rank_grads.keys() == expected.keys()
        for name, g in expected.items():
            np.testing.assert_allclose(rank_grads[name], g, rtol=0, atol=1e-12, err_msg=name)


def test_unequal_shards_or_a_summed_loss_do_not_give_the_full_batch_gradient():
    """The condition in DistributedDataParallel's docstring, checked: a mean loss and equal shards."""
    x, y = data(4)
    expected = full_batch_grads(x, y)["head.weight"]
    unequal = shard_grads([regressor(0), regressor(0)], [(x[:, :1], y[:1]), (x[:, 1:], y[1:])])[0]
    assert np.abs(unequal["head.weight"] - expected).max() > 1e-3
    shard_means = [grads_of_sum(x[:, i:i + 2], y[i:i + 2]) for i in (0, 2)]
    summed = (shard_means[0] + shard_means[1]) / 2  # what averaging a summed loss over 2 ranks gives
    np.testing.assert_allclose(summed * 2 / 4, expected, atol=1e-12)  # off by a factor batch / world size


def grads_of_sum(x, y):
    model = regressor(0)
    prediction, _ = model(tr.Tensor(x, dtype="float64"))
    F.mse_loss(prediction, tr.Tensor(y, dtype="float64"), reduction="sum").backward()
    return to_np(model.head.weight.grad)


class TwoHeads(Module):
    def __init__(self):
        super().__init__()
        self.first, self.second, self.unused = (Linear(2, 1, dtype="float64") for _ in range(3))

    def forward(self, x, use_second):
        out = self.first(x)
        return out + self.second(x) if use_second else out


def test_a_gradient_missing_on_some_ranks_counts_as_zero_and_missing_everywhere_stays_missing():
    factory.manual_seed(0)
    models = [TwoHeads(), TwoHeads()]
    x = tr.Tensor(np.ones((1, 2)), dtype="float64")

    def rank(comm):
        ddp = DistributedDataParallel(models[comm.rank], comm)
        with COMPUTE:
            ddp(x, use_second=comm.rank == 0).sum().backward()
        ddp.average_gradients()
        return {name: None if p.grad is None else to_np(p.grad) for name, p in ddp.named_parameters()}

    for result in run_ranks(2, rank):
        np.testing.assert_array_equal(result["first.weight"], [[1.0, 1.0]])
        np.testing.assert_array_equal(result["second.weight"], [[0.5, 0.5]])
        assert result["unused.weight"] is None and result["unused.bias"] is None


def test_names_and_state_dict_are_the_models_own():
    model = regressor(0)

    def rank(comm):
        ddp = DistributedDataParallel(model, comm)
        assert ddp.module is model
        assert all(a is b for a, b in zip(ddp.parameters(), model.parameters(), strict=True))
        assert list(ddp.state_dict()) == list(model.state_dict()) == [n for n, _ in model.named_parameters()]
        assert not any(name.startswith("module.") for name in ddp.state_dict())
        state = {name: value + 1 for name, value in ddp.state_dict().items()}
        ddp.load_state_dict(state)
        ddp.eval()
        assert not model.training and not model.rnn.training
        return model.state_dict(), state, repr(ddp)

    after, state, text = run_ranks(1, rank)[0]
    assert all(np.array_equal(after[name], state[name]) for name in state)
    assert text.startswith("DistributedDataParallel(world_size=1, buckets=1\n  (module): SequenceRegressor(")


def test_buckets_follow_backward_order_and_split_by_size_and_dtype():
    sizes = {"a": 10, "b": 30, "c": 5, "d": 5}
    params = [(name, tr.nn.Parameter(np.zeros(n), dtype="float32")) for name, n in sizes.items()]
    params.append(("e", tr.nn.Parameter(np.zeros(3), dtype="float64")))
    buckets = make_buckets(params, cap_bytes=60)  # 15 float32 numbers
    assert [bucket.names for bucket in buckets] == [["e"], ["d", "c"], ["b"], ["a"]]
    assert [bucket.flat.dtype for bucket in buckets] == [np.float64] + [np.float32] * 3
    d, _ = buckets[1].params
    buckets[1].pack([np.arange(5.0), None])
    views = buckets[1].views()
    np.testing.assert_array_equal(views[0], np.arange(5.0))
    np.testing.assert_array_equal(views[1], np.zeros(5))
    assert views[0].shape == d.shape


def test_bad_wrapping_is_explained():
    def rank(comm):
        with pytest.raises(TypeError, match="wraps a tinygrad_rnn Module, got list"):
            DistributedDataParallel([], comm)
        with pytest.raises(ValueError, match="bucket_cap_mb must be > 0, got 0"):
            DistributedDataParallel(regressor(0), comm, bucket_cap_mb=0)
        with pytest.raises(ValueError, match="Module has no parameters"):
            DistributedDataParallel(Module(), comm)
        model = regressor(0)
        ddp = DistributedDataParallel(model, comm)
        with COMPUTE:
            mean_loss(ddp, *data(2)).backward()
        model.float()
        with pytest.raises(RuntimeError, match="is now float32 on cpu, it was float64 on cpu when the model was"):
            ddp.average_gradients()

    run_ranks(2, rank)


def test_gradients_with_a_graph_are_replaced_not_written_over():
    factory.manual_seed(0)
    models = [Linear(2, 1, dtype="float64") for _ in range(2)]
    x = tr.Tensor(np.ones((1, 2)), dtype="float64")

    def rank(comm):
        ddp = DistributedDataParallel(models[comm.rank], comm)
        with COMPUTE:
            (ddp(x) ** 2).sum().backward(create_graph=True)
        before = ddp.module.weight.grad
        ddp.average_gradients()
        after = ddp.module.weight.grad
        return before.grad_fn is not None, after is not before and after.grad_fn is None, to_np(after)

    (had_graph, replaced, mean), _ = run_ranks(2, rank)
    assert had_graph and replaced
    np.testing.assert_allclose(mean, 2 * to_np(models[0](x)) * np.ones((1, 2)), atol=1e-12)


def test_buckets_start_during_backward_and_no_sync_accumulates():
    x, y = data(4)
    twice = full_batch_grads(x, y)
    twice = {name: 2 * g for name, g in twice.items()}

    def rank(comm):
        ddp = DistributedDataParallel(regressor(0), comm, bucket_cap_mb=1e-4)  # one bucket per parameter
        shard = slice(2 * comm.rank, 2 * comm.rank + 2)
        with COMPUTE:
            mean_loss(ddp, x[:, shard], y[shard]).backward()
        started = len(ddp._works)  # backward's post-accumulate hooks started every bucket already
        ddp.average_gradients()
        ddp.module.zero_grad()
        with ddp.no_sync():  # two passes accumulate, nothing starts until average_gradients
            for _ in range(2):
                with COMPUTE:
                    mean_loss(ddp, x[:, shard], y[shard]).backward()
        held = len(ddp._works)
        ddp.average_gradients()
        return started, len(ddp.buckets), held, grads(ddp.module)

    for started, buckets, held, result in run_ranks(2, rank):
        assert started == buckets > 1 and held == 0
        for name, g in result.items():
            np.testing.assert_allclose(g, twice[name], rtol=1e-12, atol=1e-14)
