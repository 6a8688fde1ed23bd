"""Against torch in float64: utils.checkpoint (activation checkpointing), autograd.forward_ad (dual
tensors), func.linearize / stack_module_state (the model-ensembling recipe) and utils.data's
ChainDataset, StackDataset and DistributedSampler. (tests/test_checkpoint.py is about saving files.)"""
import copy
import gc
import warnings
import weakref

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.autograd import forward_ad as fwAD
from tinygrad_rnn.utils.checkpoint import CheckpointError, checkpoint, checkpoint_sequential
from tinygrad_rnn.utils.data import (
    ChainDataset,
    DataLoader,
    DistributedSampler,
    IterableDataset,
    StackDataset,
    TensorDataset,
)

RNG = np.random.default_rng(11)
X = RNG.standard_normal((3, 4))
V = RNG.standard_normal((3, 4))


def ours(a, requires_grad=False):
    return tr.tensor(a, dtype=tr.float64, requires_grad=requires_grad)


def close(a, b, tol=1e-12):
    np.testing.assert_allclose(np.asarray(a.detach().numpy()), b.detach().numpy(), rtol=tol, atol=tol)


def mlp(lib):
    torch_like = lib.nn
    return torch_like.Sequential(torch_like.Linear(4, 6), torch_like.Tanh(), torch_like.Dropout(0.3),
                                 torch_like.Linear(6, 5), torch_like.Sigmoid()).double()


def twins(torch, make=mlp):
    a, b = make(tr), make(torch)
    b.load_state_dict({k: torch.tensor(v.numpy()) for k, v in a.state_dict().items()})
    return a, b


# ----------------------------------------------------------------------------- checkpoint


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_gradients_equal_torch_with_dropout_inside(torch, use_reentrant):
    net, net_t = twins(torch)
    x, xt = ours(X, True), torch.tensor(X, requires_grad=True)
    tr.manual_seed(3)
    torch.manual_seed(3)
    y = checkpoint(lambda h: net(h) * h.sum(), x, use_reentrant=use_reentrant)
    yt = torch.utils.checkpoint.checkpoint(lambda h: net_t(h) * h.sum(), xt, use_reentrant=use_reentrant)
    (y ** 2).sum().backward()
    (yt ** 2).sum().backward()
    close(y, yt)
    close(x.grad, xt.grad)
    for (name, p), p_t in zip(net.named_parameters(), net_t.parameters()):
        close(p.grad, p_t.grad)


def test_checkpoint_equals_the_plain_run_exactly(torch):
    net = mlp(tr)
    grads = []
    for wrap in (lambda f, x: f(x), lambda f, x: checkpoint(f, x, use_reentrant=False)):
        net.zero_grad()
        x = ours(X, True)
        tr.manual_seed(5)
        wrap(net, x).pow(3).sum().backward()
        grads.append([x.grad.numpy()] + [p.grad.numpy() for p in net.parameters()])
    for a, b in zip(*grads):
        assert np.array_equal(a, b)


def test_non_reentrant_reaches_parameters_when_no_input_requires_grad(torch):
    net, net_t = twins(torch)
    net.eval(), net_t.eval()
    y = checkpoint(net, ours(X), use_reentrant=False)
    yt = torch.utils.checkpoint.checkpoint(net_t, torch.tensor(X), use_reentrant=False)
    w, w_t = net[0].weight, net_t[0].weight
    close(tr.autograd.grad(y.sum(), w)[0], torch.autograd.grad(yt.sum(), w_t)[0])
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
        assert not checkpoint(net, ours(X), use_reentrant=True).requires_grad


def test_checkpoint_create_graph_gives_second_derivatives(torch):
    def f(lib):
        return lambda x, w: ((x @ w).sin() * x.sum()).exp()
    w0 = RNG.standard_normal((4, 2))
    x, w = ours(X, True), ours(w0, True)
    xt, wt = torch.tensor(X, requires_grad=True), torch.tensor(w0, requires_grad=True)
    y = checkpoint(f(tr), x, w, use_reentrant=False)
    yt = torch.utils.checkpoint.checkpoint(f(torch), xt, wt, use_reentrant=False)
    gx, gw = tr.autograd.grad(y.sum(), (x, w), create_graph=True)
    gxt, gwt = torch.autograd.grad(yt.sum(), (xt, wt), create_graph=True)
    close(gx, gxt)
    second = tr.autograd.grad((gx ** 2).sum() + gw.sum(), (x, w))
    second_t = torch.autograd.grad((gxt ** 2).sum() + gwt.sum(), (xt, wt))
    for a, b in zip(second, second_t):
        close(a, b)


def test_checkpoint_keeps_no_inner_array():
    lin = tr.nn.Linear(4, 4).double()
    seen = []

    def f(x):
        h = lin(x).tanh()
        seen.append(weakref.ref(h.array))
        return h.exp().sum(-1)

    kept = f(ours(X, True))
    gc.collect()
    assert seen[-1]() is not None  # recorded: the graph holds tanh's output for backward
    y = checkpoint(f, ours(X, True), use_reentrant=False)
    gc.collect()
    assert seen[-1]() is None
    assert len(tr.graph.walk(y)) < len(tr.graph.walk(kept))
    y.sum().backward()
    del kept


def test_checkpoint_sequential_equals_torch(torch):
    net, net_t = twins(torch)
    x, xt = ours(X, True), torch.tensor(X, requires_grad=True)
    tr.manual_seed(8)
    torch.manual_seed(8)
    y = checkpoint_sequential(net, 2, x, use_reentrant=False)
    yt = torch.utils.checkpoint.checkpoint_sequential(net_t, 2, xt, use_reentrant=False)
    y.sum().backward()
    yt.sum().backward()
    close(y, yt)
    close(x.grad, xt.grad)
    close(net[3].weight.grad, net_t[3].weight.grad)


def test_checkpoint_argument_errors():
    x = ours(X, True)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed explicitly"):
        checkpoint(lambda a: a * 2, x)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: scale"):
        checkpoint(lambda a, scale: a * scale, x, use_reentrant=True, scale=2.0)
    assert checkpoint(lambda a, scale: a * scale, x, use_reentrant=False, scale=2.0).requires_grad
    with pytest.raises(ValueError, match="determinism_check should be one of"):
        checkpoint(lambda a: a, x, use_reentrant=False, determinism_check="all")
    calls = []

    def changing(a):
        calls.append(1)
        return a[: len(calls)] * 2
    with pytest.raises(CheckpointError, match="different metadata"):
        checkpoint(changing, x, use_reentrant=False).sum().backward()


# ----------------------------------------------------------------------------- forward_ad


def composite(lib, x, w):
    h = (x @ w).tanh() * x[:, :2].exp()
    return lib.cat([h.softmax(-1), (h ** 2).sum(0, keepdim=True)], 0).sigmoid()


def test_forward_ad_tangents_equal_torch(torch):
    import torch.autograd.forward_ad as tfwAD
    w0 = RNG.standard_normal((4, 2))
    with fwAD.dual_level() as level:
        assert level == 0
        y = composite(tr, fwAD.make_dual(ours(X), ours(V)), ours(w0))
        primal, tangent = fwAD.unpack_dual(y)
        assert type(fwAD.unpack_dual(y)).__name__ == "UnpackedDualTensor"
        assert fwAD.unpack_dual(primal).tangent is None
    with tfwAD.dual_level():
        yt = composite(torch, tfwAD.make_dual(torch.tensor(X), torch.tensor(V)), torch.tensor(w0))
        primal_t, tangent_t = tfwAD.unpack_dual(yt)
    close(primal, primal_t, 1e-13)
    close(tangent, tangent_t)
    assert fwAD.unpack_dual(y).tangent is None and y._tangent is None  # dropped with the level
    import tinygrad_rnn.autograd.forward_ad as imported  # torch code's spelling of the import
    assert imported is fwAD and tr.autograd.forward_ad is fwAD


def test_make_dual_is_differentiable_backward(torch):
    import torch.autograd.forward_ad as tfwAD
    x, xt = ours(X, True), torch.tensor(X, requires_grad=True)
    with fwAD.dual_level():
        fwAD.unpack_dual(fwAD.make_dual(x, ours(V)).sin()).primal.sum().backward()
    with tfwAD.dual_level():
        tfwAD.unpack_dual(tfwAD.make_dual(xt, torch.tensor(V)).sin()).primal.sum().backward()
    close(x.grad, xt.grad)


def test_forward_ad_errors():
    class NoRule(tr.Function):
        def forward(self, x):
            return x * 2

    with pytest.raises(RuntimeError, match="no level exists"):
        fwAD.make_dual(ours(X), ours(V))
    with fwAD.dual_level():
        with pytest.raises(RuntimeError, match="Nested forward mode AD is not supported"):
            fwAD.enter_dual_level()
        with pytest.raises(RuntimeError, match="different size"):
            fwAD.make_dual(ours(X), ours(V[:2]))
        with pytest.raises(ValueError, match="Expected primal to be floating point"):
            fwAD.make_dual(tr.ones(2, dtype=tr.int64), ours(np.ones(2)))
        with pytest.raises(NotImplementedError, match="norule"):
            NoRule.apply(fwAD.make_dual(ours(X), ours(V)))
    assert fwAD.unpack_dual(ours(X)).tangent is None
    with pytest.raises(RuntimeError, match="Dual level must be a positive number"):
        fwAD.exit_dual_level()


# ----------------------------------------------------------------------------- linearize, ensembles


def test_linearize_equals_torch(torch):
    out, jvp_fn = tr.func.linearize(lambda x: (x.sin() * x).exp().sum(0), ours(X))
    out_t, jvp_fn_t = torch.func.linearize(lambda x: (x.sin() * x).exp().sum(0), torch.tensor(X))
    close(out, out_t, 1e-13)
    for v in (V, 2 * V + 1):
        close(jvp_fn(ours(v)), jvp_fn_t(torch.tensor(v)))


def test_model_ensembling_recipe_equals_torch(torch):
    def make(lib):
        return lib.nn.Sequential(lib.nn.Linear(4, 3), lib.nn.Tanh(), lib.nn.Linear(3, 2)).double()
    pairs = [twins(torch, make) for _ in range(3)]
    params, buffers = tr.func.stack_module_state([a for a, _ in pairs])
    params_t, buffers_t = torch.func.stack_module_state([b for _, b in pairs])
    base, base_t = copy.deepcopy(pairs[0][0]), copy.deepcopy(pairs[0][1]).to("meta")

    out = tr.func.vmap(lambda p, b, x: tr.func.functional_call(base, (p, b), (x,)),
                       in_dims=(0, 0, None))(params, buffers, ours(X))
    out_t = torch.func.vmap(lambda p, b, x: torch.func.functional_call(base_t, (p, b), (x,)),
                            in_dims=(0, 0, None))(params_t, buffers_t, torch.tensor(X))
    assert list(params) == list(params_t) and params["0.weight"].is_leaf
    close(out, out_t, 1e-13)
    (out ** 2).sum().backward()
    (out_t ** 2).sum().backward()
    for name in params:
        close(params[name].grad, params_t[name].grad)
    with pytest.raises(RuntimeError, match="at least one model"):
        tr.func.stack_module_state([])


# ----------------------------------------------------------------------------- utils.data


class Stream(IterableDataset):
    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)


def test_chain_dataset_equals_torch(torch):
    import torch.utils.data as tdata

    class StreamT(tdata.IterableDataset):
        def __init__(self, items):
            self.items = items

        def __iter__(self):
            return iter(self.items)

        def __len__(self):
            return len(self.items)
    chained, chained_t = ChainDataset([Stream([1, 2]), Stream([3])]), tdata.ChainDataset([StreamT([1, 2]), StreamT([3])])
    assert list(chained) == list(chained_t) and len(chained) == len(chained_t) == 3
    assert list(Stream([1]) + Stream([4, 5])) == list(StreamT([1]) + StreamT([4, 5]))
    with pytest.raises(AssertionError, match="only supports IterableDataset"):
        list(ChainDataset([TensorDataset(ours(X))]))


def test_stack_dataset_tuple_and_dict_forms(torch):
    import torch.utils.data as tdata
    a, b = TensorDataset(ours(X)), TensorDataset(ours(V))
    a_t, b_t = tdata.TensorDataset(torch.tensor(X)), tdata.TensorDataset(torch.tensor(V))
    for named in (False, True):
        ds = StackDataset(x=a, v=b) if named else StackDataset(a, b)
        ds_t = tdata.StackDataset(x=a_t, v=b_t) if named else tdata.StackDataset(a_t, b_t)
        assert len(ds) == len(ds_t) == 3
        batch = next(iter(DataLoader(ds, batch_size=2)))
        batch_t = next(iter(tdata.DataLoader(ds_t, batch_size=2)))
        for key in (("x", "v") if named else (0, 1)):
            close(batch[key][0], batch_t[key][0], 0)
    with pytest.raises(ValueError, match="Size mismatch between datasets"):
        StackDataset(a, TensorDataset(ours(X[:2])))
    with pytest.raises(ValueError, match="both types are given"):
        StackDataset(a, v=b)


def test_distributed_sampler_index_lists_equal_torch(torch):
    from torch.utils.data import DistributedSampler as TorchSampler
    for n in (1, 7, 10):
        for replicas in (1, 3, 4):
            for shuffle in (False, True):
                for drop_last in (False, True):
                    for rank in range(replicas):
                        ours_s = DistributedSampler(range(n), replicas, rank, shuffle, 17, drop_last)
                        theirs = TorchSampler(range(n), replicas, rank, shuffle, 17, drop_last)
                        for epoch in (0, 3):
                            ours_s.set_epoch(epoch)
                            theirs.set_epoch(epoch)
                            assert list(ours_s) == list(theirs) and len(ours_s) == len(theirs)
    with pytest.raises(ValueError, match="Invalid rank 3"):
        DistributedSampler(range(5), num_replicas=3, rank=3)


def test_distributed_sampler_defaults_come_from_the_running_ranks(monkeypatch):
    from tinygrad_rnn.distributed import comm
    monkeypatch.setattr(comm, "_default", [None])
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        DistributedSampler(range(5))

    class Ranks:
        rank, world_size = 1, 2
    monkeypatch.setattr(comm, "_default", [Ranks()])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sampler = DistributedSampler(range(5), shuffle=False)
    assert (sampler.num_replicas, sampler.rank, list(sampler)) == (2, 1, [1, 3, 0])
