"""Uniform, normal and dropout draws are torch's CPU ones: after the same seed, tr gives torch's numbers,
initial weights and dropout masks, bit for bit."""
import numpy as np
import pytest

import tinygrad_rnn as tr

SIZES = [0, 1, 2, 7, 15, 16, 17, 31, 32, 33, 100, 1000, 4099]
DTYPES = ["float32", "float64"]


def _pair(torch, seed, given):
    """(tr source, torch source, tr kwargs, torch kwargs): the default generators seeded, or new ones."""
    if given:
        ours, theirs = tr.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        return {"generator": ours}, {"generator": theirs}
    tr.manual_seed(seed), torch.manual_seed(seed)
    return {}, {}


def _bit_for_bit():
    """Whether torch's normals can be rebuilt to the last bit here: torch dispatches its AVX2 kernels
    (float32 normals: its own log and sincos, which tr rebuilds) and NumPy's float64 log, sin and cos
    are the C library's, as torch's are (NumPy's AVX-512 ones round otherwise). Elsewhere the draws
    are compared to a few units in the last place."""
    import torch
    from numpy._core._multiarray_umath import __cpu_features__
    return torch.backends.cpu.get_cpu_capability() == "AVX2" and not __cpu_features__.get("AVX512F")


def _same(ours, theirs):
    ours, theirs = ours.numpy(), theirs.detach().numpy()
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    if ours.dtype.kind != "f" or _bit_for_bit():
        np.testing.assert_array_equal(ours, theirs)
    else:
        np.testing.assert_array_max_ulp(ours, theirs, maxulp=4)


@pytest.mark.parametrize("given", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1, 2 ** 40 + 3])
def test_rand_and_randn_are_torchs(torch, seed, dtype, given):
    """One stream through every size, so each draw goes on where the last stopped (the normal a small
    randn leaves cached included)."""
    ours, theirs = _pair(torch, seed, given)
    for n in SIZES:
        _same(tr.randn(n, dtype=getattr(tr, dtype), **ours), torch.randn(n, dtype=getattr(torch, dtype), **theirs))
        _same(tr.rand(n, dtype=getattr(tr, dtype), **ours), torch.rand(n, dtype=getattr(torch, dtype), **theirs))
        _same(tr.randn(3, n % 5 + 1, dtype=getattr(tr, dtype), **ours),
              torch.randn(3, n % 5 + 1, dtype=getattr(torch, dtype), **theirs))


@pytest.mark.parametrize("given", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_uniform_and_normal_in_place_are_torchs(torch, dtype, given):
    ours, theirs = _pair(torch, 123, given)
    for n in (5, 16, 50, 1001):
        for (a, b) in ((-0.3, 0.7), (-0.377964, 0.377964), (2.0, 2.5)):
            _same(tr.empty(n, dtype=getattr(tr, dtype)).uniform_(a, b, **ours),
                  torch.empty(n, dtype=getattr(torch, dtype)).uniform_(a, b, **theirs))
            _same(tr.empty(n, dtype=getattr(tr, dtype)).normal_(a, b, **ours),
                  torch.empty(n, dtype=getattr(torch, dtype)).normal_(a, b, **theirs))


def test_like_constructors_follow_the_default_generator(torch):
    tr.manual_seed(4), torch.manual_seed(4)
    _same(tr.rand_like(tr.zeros(20)), torch.rand_like(torch.zeros(20, dtype=torch.float32)))
    _same(tr.randn_like(tr.zeros(3, 7, dtype=tr.float64)), torch.randn_like(torch.zeros(3, 7, dtype=torch.float64)))
    _same(tr.randn_like(tr.zeros(5)), torch.randn_like(torch.zeros(5, dtype=torch.float32)))


@pytest.mark.parametrize("given", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_nn_init_draws_are_torchs(torch, dtype, given):
    ours, theirs = _pair(torch, 9, given)
    for name, options in (("uniform_", {"a": -2.0, "b": 0.5}), ("normal_", {"mean": 1.0, "std": 0.1}),
                          ("kaiming_uniform_", {"a": 5 ** 0.5}), ("kaiming_normal_", {}),
                          ("xavier_uniform_", {"gain": 1.5}), ("xavier_normal_", {})):
        for shape in ((3, 4), (40, 7), (64, 32)):
            got = getattr(tr.nn.init, name)(tr.empty(*shape, dtype=getattr(tr, dtype)), **options, **ours)
            want = getattr(torch.nn.init, name)(torch.empty(*shape, dtype=getattr(torch, dtype)), **options, **theirs)
            _same(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 5])
@pytest.mark.parametrize("layer,args,options", [
    ("Linear", (7, 5), {}), ("Linear", (64, 3), {"bias": False}),
    ("LSTM", (6, 8), {}), ("LSTM", (5, 16), {"num_layers": 2}), ("GRU", (6, 8), {"num_layers": 2}),
    ("RNN", (3, 17), {}), ("Embedding", (11, 4), {}), ("Embedding", (50, 16), {})])
def test_a_seeded_module_starts_from_torchs_weights(torch, seed, dtype, layer, args, options):
    """Parameters are drawn in torch's order with torch's bounds, so a seed gives torch's state_dict."""
    tr.manual_seed(seed), torch.manual_seed(seed)
    ours = getattr(tr.nn, layer)(*args, **options, dtype=getattr(tr, dtype))
    theirs = getattr(torch.nn, layer)(*args, **options, dtype=getattr(torch, dtype))
    want = theirs.state_dict()
    got = ours.state_dict()
    assert list(got) == list(want)
    for key in want:
        _same(got[key], want[key])
    _same(tr.rand(3), torch.rand(3, dtype=torch.float32))  # and both generators are left in the same place


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_masks_are_torchs(torch, dtype):
    x = np.random.default_rng(1).standard_normal((64, 33))
    for seed, p in ((0, 0.1), (3, 0.5), (8, 0.25)):
        tr.manual_seed(seed), torch.manual_seed(seed)
        for shape in ((3,), (4, 5), (64, 33)):
            part = x[tuple(slice(0, n) for n in shape)]
            _same(tr.nn.functional.dropout(tr.tensor(part, dtype=getattr(tr, dtype)), p),
                  torch.nn.functional.dropout(torch.tensor(part, dtype=getattr(torch, dtype)), p))
        _same(tr.nn.Dropout(p)(tr.ones(40)), torch.nn.Dropout(p)(torch.ones(40, dtype=torch.float32)))


def test_the_cached_normal_is_in_the_state_both_ways(torch):
    """An odd count of small normals leaves one of a Box-Muller pair cached: torch keeps it in its
    state bytes, and so does tr, so the next draw is the same on either side."""
    ours, theirs = tr.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    tr.randn(3, generator=ours), torch.randn(3, generator=theirs, dtype=torch.float32)
    state = ours.get_state()
    assert state.tolist() == theirs.get_state().tolist()
    from_torch = tr.Generator().set_state(tr.tensor(theirs.get_state().numpy()))
    to_torch = torch.Generator().set_state(torch.from_numpy(state.numpy()))
    want = torch.randn(5, generator=theirs, dtype=torch.float32)
    for generator in (ours, from_torch):
        _same(tr.randn(5, generator=generator), want)
    assert torch.equal(torch.randn(5, generator=to_torch, dtype=torch.float32), want)
    assert tr.Generator().manual_seed(7).get_state().tolist() == torch.Generator().manual_seed(7).get_state().tolist()


@pytest.mark.parametrize("layer", ["LSTM", "GRU"])
def test_dropout_between_recurrent_layers_draws_torchs_masks(torch, layer):
    """The masks between stacked layers come in torch's order: the outputs agree to float32 rounding and
    both generators end in the same place."""
    x = np.random.default_rng(0).standard_normal((5, 3, 4)).astype(np.float32)
    torch.manual_seed(0), tr.manual_seed(0)
    theirs = getattr(torch.nn, layer)(4, 6, num_layers=3, dropout=0.4, dtype=torch.float32)
    ours = getattr(tr.nn, layer)(4, 6, num_layers=3, dropout=0.4)
    np.testing.assert_allclose(ours(tr.tensor(x))[0].numpy(), theirs(torch.tensor(x))[0].detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    _same(tr.rand(3), torch.rand(3, dtype=torch.float32))


def test_the_float32_fused_multiply_add_rounds_once():
    """(1 + 2**-12)**2 = 1 + 2**-11 + 2**-24 sits halfway between two float32s: a tiny addend decides the
    way, which a sum rounded first to float64 would lose."""
    from tinygrad_rnn.draws import _fma32
    a = np.full(2, 1 + 2 ** -12, np.float32)
    got = _fma32(a, a, np.array([2.0 ** -70, -2.0 ** -70], np.float32))
    assert got.tolist() == [1 + 2 ** -11 + 2 ** -23, 1 + 2 ** -11]


@pytest.mark.parametrize("shape", [(4, 6), (8, 8), (20, 5)])
def test_orthogonal_starts_from_torchs_normals(torch, shape):
    """The same normals, so the same matrix up to the QR's rounding (NumPy's LAPACK against torch's)."""
    torch.manual_seed(1), tr.manual_seed(1)
    want = torch.nn.init.orthogonal_(torch.empty(*shape, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(tr.nn.init.orthogonal_(tr.empty(*shape, dtype=tr.float64)).numpy(), want, atol=1e-13)
    _same(tr.rand(2), torch.rand(2, dtype=torch.float32))
