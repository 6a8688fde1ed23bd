"""What the README once listed as not here, against torch in float64: nn.init.trunc_normal_, dirac_ and
sparse_ (the same draws after the same seed), scatter(reduce=), embedding's scale_grad_by_freq, OneCycleLR
resumed with last_epoch, and optim.Adafactor."""
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr

F64 = "float64"


def _close(ours, theirs, rtol=1e-13, atol=0.0):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    np.testing.assert_allclose(np.asarray(ours.numpy() if hasattr(ours, "numpy") else ours), theirs, rtol=rtol,
                               atol=atol)


def _seeded_both(torch, seed, shape, fill_ours, fill_theirs):
    """The tensor each library fills after the same seed, then a draw each made after it (the stream goes on)."""
    tr.manual_seed(seed), torch.manual_seed(seed)
    ours, theirs = fill_ours(tr.zeros(*shape, dtype=F64)), fill_theirs(torch.empty(*shape, dtype=torch.float64))
    _close(ours, theirs)
    _close(tr.rand(4, dtype=F64), torch.rand(4, dtype=torch.float64))
    return ours


# ----------------------------------------------------------------------------- nn.init

TRUNCATIONS = [{}, {"mean": 0.5, "std": 2.0, "a": -1.0, "b": 3.0},  # most of the mass inside: normals redrawn
               {"a": 1.5, "b": 3.0}, {"mean": 0.3, "std": 0.1, "a": 0.05, "b": 0.1}]  # a tail: uniform proposals


@pytest.mark.parametrize("options", TRUNCATIONS)
@pytest.mark.parametrize("shape", [(5,), (40, 30)])
def test_trunc_normal_draws_torchs_numbers(torch, shape, options):
    ours = _seeded_both(torch, 7, shape, lambda t: tr.nn.init.trunc_normal_(t, **options),
                        lambda t: torch.nn.init.trunc_normal_(t, **options))
    low, high = options.get("a", -2.0), options.get("b", 2.0)
    assert ((ours.numpy() >= low) & (ours.numpy() <= high)).all()


def test_trunc_normal_with_a_generator_warnings_and_errors(torch):
    ours, theirs = tr.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    _close(tr.nn.init.trunc_normal_(tr.zeros(20, dtype=F64), generator=ours),
           torch.nn.init.trunc_normal_(torch.empty(20), generator=theirs))
    with pytest.warns(UserWarning, match="mean is more than 2 std from"):
        tr.nn.init.trunc_normal_(tr.zeros(3, dtype=F64), mean=10.0)
    with pytest.raises(RuntimeError, match=r"uniform_ expects to return a \[from, to\) range"):
        tr.nn.init.trunc_normal_(tr.zeros(3), a=2.0, b=-2.0)
    with pytest.raises(ZeroDivisionError):
        tr.nn.init.trunc_normal_(tr.zeros(3), std=0.0)


@pytest.mark.parametrize("shape,groups", [((4, 3, 5), 1), ((6, 2, 3, 3), 2), ((6, 4, 3, 2, 5), 3), ((2, 5, 4), 1)])
def test_dirac_is_torchs(torch, shape, groups):
    _close(tr.nn.init.dirac_(tr.ones(*shape), groups), torch.nn.init.dirac_(torch.ones(*shape), groups))


def test_dirac_errors():
    with pytest.raises(ValueError, match="Only tensors with 3, 4, or 5 dimensions are supported"):
        tr.nn.init.dirac_(tr.zeros(3, 3))
    with pytest.raises(ValueError, match="dim 0 must be divisible by groups"):
        tr.nn.init.dirac_(tr.zeros(5, 2, 3), groups=2)


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 1.0])
def test_sparse_zeros_and_values_are_torchs(torch, sparsity):
    ours = _seeded_both(torch, 11, (9, 20), lambda t: tr.nn.init.sparse_(t, sparsity, std=0.3),
                        lambda t: torch.nn.init.sparse_(t, sparsity, std=0.3))
    assert ((ours.numpy() == 0).sum(axis=0) == int(np.ceil(sparsity * 9))).all()
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        tr.nn.init.sparse_(tr.zeros(3), 0.5)


# ----------------------------------------------------------------------------- scatter(reduce=)

@pytest.mark.parametrize("reduce", ["add", "multiply"])
@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_reduce_argument_is_torchs(torch, reduce, dim):
    rng = np.random.default_rng(3)
    x, src = rng.normal(size=(3, 4)), rng.normal(size=(3, 5))
    index = np.array([[0, 1, 0, 2], [1, 1, 0, 2]]) if dim == 0 else np.array([[0, 3, 0], [1, 1, 1], [2, 0, 2]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's deprecation of reduce= with a Tensor src
        for ours_src, their_src in ((tr.tensor(src), torch.tensor(src)), (2.5, 2.5)):
            _close(tr.tensor(x).scatter(dim, tr.tensor(index), ours_src, reduce=reduce),
                   torch.tensor(x).scatter(dim, torch.tensor(index), their_src, reduce=reduce))
            ours, theirs = tr.tensor(x), torch.tensor(x)
            ours.scatter_(dim, tr.tensor(index), ours_src, reduce=reduce)
            theirs.scatter_(dim, torch.tensor(index), their_src, reduce=reduce)
            _close(ours, theirs)
    whole = torch.zeros(3, 4, dtype=torch.int64).scatter_(0, torch.tensor(index[:, :3] % 3), 3, reduce=reduce)
    mine = tr.zeros(3, 4, dtype="int64").scatter_(0, tr.tensor(index[:, :3] % 3), 3, reduce=reduce)
    assert mine.numpy().tolist() == whole.numpy().tolist()


def test_scatter_reduce_argument_warns_and_refuses_as_torch():
    x, index = tr.zeros(3, 4), tr.tensor([[0, 1, 0, 2]])
    with pytest.warns(UserWarning, match="The reduce argument of torch.scatter with Tensor src is deprecated"):
        x.scatter(0, index, tr.ones(1, 4), reduce="add")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a number with reduce= is not deprecated
        x.scatter(0, index, 2.0, reduce="multiply")
    for bad in ("mean", "sum"):
        with pytest.raises(RuntimeError, match="reduce argument must be either add or multiply."):
            x.scatter(0, index, 1.0, reduce=bad)


# ----------------------------------------------------------------------------- embedding's scale_grad_by_freq

INDEX = np.array([[0, 2, 2, 5], [2, 1, 0, 2], [4, 2, 5, 5]])


@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_scale_grad_by_freq_gradients_are_torchs(torch, padding_idx):
    table = np.random.default_rng(4).normal(size=(6, 3))
    results = []
    for lib in (tr, torch):
        weight = lib.tensor(table, requires_grad=True)
        y = lib.nn.functional.embedding(lib.tensor(INDEX), weight, padding_idx=padding_idx, scale_grad_by_freq=True)
        (g,) = lib.autograd.grad((y ** 3).sum(), weight, create_graph=True)
        (h,) = lib.autograd.grad((g * g).sum(), weight)  # torch's double backward: the plain gather
        results.append((y, g, h))
    for ours, theirs in zip(*results):
        _close(ours, theirs, rtol=1e-12)


def test_embedding_module_with_scale_grad_by_freq_under_a_recurrent_layer(torch):
    """A GRU over a lookup would project the table (a few rows, wide): with scale_grad_by_freq it reads
    the rows instead, so the table's gradient stays torch's."""
    tr.manual_seed(0), torch.manual_seed(0)
    layers = [(lib.nn.Embedding(6, 40, scale_grad_by_freq=True, dtype=lib.float64), lib.nn.GRU(40, 8, dtype=lib.float64))
              for lib in (tr, torch)]
    for (embedding, gru), lib in zip(layers, (tr, torch)):
        out, _ = gru(embedding(lib.tensor(INDEX)))
        (out ** 2).sum().backward()
    (ours, _), (theirs, _) = layers
    _close(ours.weight.grad, theirs.weight.grad, rtol=1e-12, atol=1e-15)
    assert repr(ours) == "Embedding(6, 40, scale_grad_by_freq=True)"


def test_embedding_still_refuses_sparse():
    with pytest.raises(NotImplementedError, match="Embedding: argument 'sparse' is not supported"):
        tr.nn.Embedding(3, 2, scale_grad_by_freq=True, sparse=True)
    with pytest.raises(NotImplementedError, match="embedding: argument 'sparse' is not supported"):
        tr.nn.functional.embedding(tr.tensor([0]), tr.zeros(3, 2), sparse=True)


# ----------------------------------------------------------------------------- OneCycleLR(last_epoch=)

def _adam(lib):
    return lib.optim.Adam([lib.zeros(2, requires_grad=True)], lr=0.1)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")  # torch's; no training here
@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_resumes_mid_schedule_as_torch(torch, three_phase):
    options = {"max_lr": 0.5, "total_steps": 20, "three_phase": three_phase, "anneal_strategy": "linear"}
    resumed = []
    for lib in (tr, torch):
        first = _adam(lib)
        schedule = lib.optim.lr_scheduler.OneCycleLR(first, **options)
        for _ in range(7):
            schedule.step()
        second = _adam(lib)
        second.load_state_dict(first.state_dict())  # the groups bring initial_lr, max_lr, min_lr and momenta
        resumed.append((second, lib.optim.lr_scheduler.OneCycleLR(second, **options, last_epoch=schedule.last_epoch)))
    (ours_opt, ours), (their_opt, theirs) = resumed
    for _ in range(12):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-15)
        assert ours_opt.param_groups[0]["betas"] == pytest.approx(their_opt.param_groups[0]["betas"], rel=1e-15)
        ours.step(), theirs.step()


def test_one_cycle_resume_needs_initial_lr():
    with pytest.raises(KeyError, match=r"param 'initial_lr' is not specified in param_groups\[0\]"):
        tr.optim.lr_scheduler.OneCycleLR(_adam(tr), max_lr=0.5, total_steps=10, last_epoch=3)


# ----------------------------------------------------------------------------- Adafactor

SHAPES = [(5, 4), (3, 2, 6), (7,), ()]
ADAFACTOR_OPTIONS = [{}, {"lr": 0.05, "weight_decay": 0.1, "d": 1.5, "eps": (1e-30, 1e-3)},
                     {"lr": 1.0, "beta2_decay": -0.5, "maximize": True}]


@pytest.mark.parametrize("options", ADAFACTOR_OPTIONS)
def test_adafactor_follows_torch_for_30_steps(torch, options):
    rng = np.random.default_rng(5)
    starts, targets = [rng.normal(size=s) for s in SHAPES], [rng.normal(size=s) for s in SHAPES]
    runs = []
    for lib in (tr, torch):
        params = [lib.tensor(start, requires_grad=True) for start in starts]
        optimizer = lib.optim.Adafactor(params, **options)
        for _ in range(30):
            optimizer.zero_grad()
            sum(((p - lib.tensor(t)) ** 3).sum() for p, t in zip(params, targets)).backward()
            optimizer.step()
        runs.append((params, optimizer.state_dict()))
    (ours, ours_state), (theirs, their_state) = runs
    for p, q in zip(ours, theirs):
        _close(p, q, rtol=1e-12, atol=1e-14)
    assert ours_state["param_groups"] == [{k: v for k, v in g.items()} for g in their_state["param_groups"]]
    for i, entries in their_state["state"].items():
        assert list(ours_state["state"][i]) == list(entries)
        for name, value in entries.items():
            _close(ours_state["state"][i][name], value, rtol=1e-12, atol=1e-14)


def test_adafactor_loads_torchs_state_dict(torch):
    params = [torch.randn(4, 3, requires_grad=True), torch.randn(3, requires_grad=True)]
    optimizer = torch.optim.Adafactor(params)
    sum((p ** 2).sum() for p in params).backward()
    optimizer.step()
    saved = optimizer.state_dict()
    ours = tr.optim.Adafactor([tr.zeros(4, 3, dtype=F64, requires_grad=True), tr.zeros(3, dtype=F64,
                                                                                      requires_grad=True)])
    ours.load_state_dict({"state": {i: {k: v.numpy() for k, v in s.items()} for i, s in saved["state"].items()},
                          "param_groups": saved["param_groups"]})
    assert ours.state_dict()["state"][0]["row_var"].shape == (4, 1)
    with pytest.raises(ValueError, match=r"state\[0\]\['col_var'\] has shape \(1, 4\)"):
        bad = {0: {"step": np.float32(1), "row_var": np.zeros((4, 1)), "col_var": np.zeros((1, 4))}}
        ours.load_state_dict({"state": bad, "param_groups": saved["param_groups"]})


@pytest.mark.parametrize("options,message", [
    ({"lr": -1.0}, "Learning rate should be >= 0 but is: -1.0"),
    ({"beta2_decay": 0.5}, "beta2_decay should be <= 0 but is: 0.5"),
    ({"eps": (-1.0, 1e-3)}, "epsilon1 should be >= 0 but is: -1.0"),
    ({"eps": (None, -1.0)}, "epsilon2 should be >= 0 but is: -1.0"),
    ({"d": 0.5}, "Clipping threshold d should be >= 1 but is: 0.5"),
    ({"weight_decay": -0.1}, "weight_decay should be >= 0 but is: -0.1")])
def test_adafactor_refuses_as_torch(torch, options, message):
    for lib in (tr, torch):
        with pytest.raises(ValueError, match=message):
            lib.optim.Adafactor([lib.zeros(2, requires_grad=True)], **options)


def test_every_schedule_takes_torchs_arguments(torch):
    """Each scheduler's parameters (last_epoch included, where torch's takes it) and defaults are torch's."""
    import inspect
    for name in ("StepLR", "MultiStepLR", "ExponentialLR", "LinearLR", "ConstantLR", "PolynomialLR",
                 "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "LambdaLR", "MultiplicativeLR", "OneCycleLR",
                 "CyclicLR", "SequentialLR", "ChainedScheduler", "ReduceLROnPlateau"):
        ours = inspect.signature(getattr(tr.optim.lr_scheduler, name)).parameters
        theirs = inspect.signature(getattr(torch.optim.lr_scheduler, name)).parameters
        assert [(p.name, p.default) for p in ours.values()] == [(p.name, p.default) for p in theirs.values()], name
