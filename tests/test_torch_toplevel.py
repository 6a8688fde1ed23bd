"""What PyTorch code calls at torch's top level: runtime settings (threads, print options, finfo / iinfo,
type promotion, the default device, determinism, matmul precision, anomaly and inference modes), the
torch.X forms of functional ops with ATen's positional signatures, and the window functions. Values and
gradients against torch in float64; settings round-trip and refuse bad values as torch does."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinygrad_rnn as tr


@pytest.fixture(autouse=True)
def _float64_defaults():
    """Both libraries at the default float64, so that Python floats and windows compare in float64."""
    before = torch.get_default_dtype(), tr.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    tr.set_default_dtype(tr.float64)
    yield
    torch.set_default_dtype(before[0])
    tr.set_default_dtype(before[1])


def _rng(seed=0):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- ops: one call, both libraries

def _normal(*shape, seed=0):
    return _rng(seed).standard_normal(shape)


def _positive(*shape, seed=0):
    return _rng(seed).uniform(0.2, 2.0, shape)


def _log_probs(*shape, seed=0):
    x = _normal(*shape, seed=seed)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _signs(*shape, seed=0):
    return np.where(_rng(seed).random(shape) < 0.5, -1, 1).astype(np.float64)


def _in_place(name, *args):
    def call(m, x):
        y = x * 1.0
        getattr(m, name)(y, *args)
        return y
    return call


def _lstm(m, x, h, c, w_ih, w_hh, b_ih, b_hh):
    h, c = m.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
    return h + 2 * c


CTC_LOG_PROBS = _log_probs(6, 2, 4, seed=9)

# name -> (fn(lib, *tensors), arrays): float arrays are tensors needing gradients, integer arrays index tensors
OPS = {
    "layer_norm": (lambda m, x, w, b: m.layer_norm(x, (5,), w, b, 1e-5, True),
                   [_normal(3, 5), _normal(5, seed=1), _normal(5, seed=2)]),
    "group_norm": (lambda m, x, w, b: m.group_norm(x, 2, w, b, 1e-5, True),
                   [_normal(2, 4, 3), _normal(4, seed=1), _normal(4, seed=2)]),
    "batch_norm_eval": (lambda m, x, w, b, mean, var: m.batch_norm(x, w, b, mean.detach(), var.detach(), False, 0.1,
                                                                   1e-5, False),
                        [_normal(4, 3, 5), _normal(3, seed=1), _normal(3, seed=2), _normal(3, seed=3),
                         _positive(3, seed=4)]),
    "batch_norm_train": (lambda m, x, w, b: m.batch_norm(x, w, b, None, None, True, 0.1, 1e-5, False),
                         [_normal(4, 3, 5), _normal(3, seed=1), _normal(3, seed=2)]),
    "instance_norm": (lambda m, x, w, b: m.instance_norm(x, w, b, None, None, True, 0.1, 1e-5, False),
                      [_normal(2, 3, 5), _normal(3, seed=1), _normal(3, seed=2)]),
    "embedding": (lambda m, w, i: m.embedding(w, i, 1), [_normal(5, 3), np.array([[0, 1, 4], [1, 2, 1]])]),
    "embedding_no_padding": (lambda m, w, i: m.embedding(w, i), [_normal(5, 3), np.array([0, 1, 1, 4])]),
    "conv1d": (lambda m, x, w, b: m.conv1d(x, w, b, 2, 1), [_normal(2, 3, 7), _normal(4, 3, 3, seed=1),
                                                           _normal(4, seed=2)]),
    "conv2d": (lambda m, x, w: m.conv2d(x, w, None, 1, 1, 1, 1), [_normal(1, 2, 4, 5), _normal(3, 2, 3, 3, seed=1)]),
    "max_pool1d": (lambda m, x: m.max_pool1d(x, 2), [_normal(2, 3, 7)]),
    "max_pool1d_stride": (lambda m, x: m.max_pool1d(x, 3, 2, 1, 1, True), [_normal(2, 3, 8)]),
    "max_pool2d": (lambda m, x: m.max_pool2d(x, (2, 2)), [_normal(1, 2, 4, 5)]),
    "avg_pool1d": (lambda m, x: m.avg_pool1d(x, 3, 2, 1, False, False), [_normal(2, 3, 7)]),
    "adaptive_avg_pool1d": (lambda m, x: m.adaptive_avg_pool1d(x, 3), [_normal(2, 3, 7)]),
    "adaptive_max_pool1d": (lambda m, x: m.adaptive_max_pool1d(x, 3)[0], [_normal(2, 3, 7)]),
    "pixel_shuffle": (lambda m, x: m.pixel_shuffle(x, 2), [_normal(1, 8, 2, 3)]),
    "pixel_unshuffle": (lambda m, x: m.pixel_unshuffle(x, 2), [_normal(1, 2, 4, 6)]),
    "selu": (lambda m, x: m.selu(x), [_normal(3, 4)]),
    "celu": (lambda m, x: m.celu(x, 0.5), [_normal(3, 4)]),
    "prelu": (lambda m, x, w: m.prelu(x, w), [_normal(2, 3, 4), _normal(3, seed=1)]),
    "rrelu_eval": (lambda m, x: m.rrelu(x, 0.1, 0.3, False), [_normal(3, 4)]),
    "threshold": (lambda m, x: m.threshold(x, 0.5, -1.0), [_normal(3, 4)]),
    "hardshrink": (lambda m, x: m.hardshrink(x, 0.7), [_normal(3, 4)]),
    "relu_": (_in_place("relu_"), [_normal(3, 4)]),
    "selu_": (_in_place("selu_"), [_normal(3, 4)]),
    "celu_": (_in_place("celu_", 0.5), [_normal(3, 4)]),
    "threshold_": (_in_place("threshold_", 0.5, -1.0), [_normal(3, 4)]),
    "cosine_similarity": (lambda m, a, b: m.cosine_similarity(a, b, 0, 1e-8), [_normal(3, 4), _normal(3, 4, seed=1)]),
    "pairwise_distance": (lambda m, a, b: m.pairwise_distance(a, b, 3.0, 1e-6, True),
                          [_normal(3, 4), _normal(3, 4, seed=1)]),
    **{f"pdist_p{p}": (lambda m, x, p=p: m.pdist(x, p), [_normal(5, 3)]) for p in (0.0, 1.0, 2.0, 3.0, math.inf)},
    "pdist_equal_rows": (lambda m, x: m.pdist(x[[0, 1, 0, 2]]), [_normal(3, 3)]),  # gradient 0 at distance 0
    **{f"kl_div_{r}": (lambda m, x, t, r=r: m.kl_div(x, t, r), [_log_probs(3, 4), _positive(3, 4, seed=1)])
       for r in (0, 1, 2)},
    "kl_div_log_target": (lambda m, x, t: m.kl_div(x, t, 2, log_target=True),
                          [_log_probs(3, 4), _log_probs(3, 4, seed=1)]),
    "bce_with_logits": (lambda m, x, t, w, pw: m.binary_cross_entropy_with_logits(x, t, w.detach(), pw.detach(), 1),
                        [_normal(3, 4), _rng(1).random((3, 4)), _positive(4, seed=2), _positive(4, seed=3)]),
    "cosine_embedding_loss": (lambda m, a, b, y: m.cosine_embedding_loss(a, b, y.detach(), 0.2, 2),
                              [_normal(3, 4), _normal(3, 4, seed=1), _signs(3, seed=2)]),
    "hinge_embedding_loss": (lambda m, x, y: m.hinge_embedding_loss(x, y.detach(), 0.5, 0),
                             [_normal(3, 4), _signs(3, 4, seed=1)]),
    "margin_ranking_loss": (lambda m, a, b, y: m.margin_ranking_loss(a, b, y.detach(), 0.3, 1),
                            [_normal(5), _normal(5, seed=1), _signs(5, seed=2)]),
    "poisson_nll_loss": (lambda m, x, t: m.poisson_nll_loss(x, t.detach(), True, True, 1e-8, 1),
                         [_normal(3, 4), _positive(3, 4, seed=1) * 3]),
    "poisson_nll_loss_rates": (lambda m, x, t: m.poisson_nll_loss(x, t.detach(), False, False, 1e-8, 2),
                               [_positive(3, 4), _positive(3, 4, seed=1)]),
    "triplet_margin_loss": (lambda m, a, p, n: m.triplet_margin_loss(a, p, n, 0.5, 3.0, 1e-6, True, 1),
                            [_normal(3, 4), _normal(3, 4, seed=1), _normal(3, 4, seed=2)]),
    "ctc_loss": (lambda m, x, t: m.ctc_loss(x, t, [6, 5], [3, 2], 0, 1, False),
                 [CTC_LOG_PROBS, np.array([[1, 2, 2], [3, 1, 0]])]),
    "ctc_loss_sum": (lambda m, x, t: m.ctc_loss(x, t, [6, 5], [3, 2], 0, 2, True),
                     [CTC_LOG_PROBS, np.array([[1, 2, 2], [3, 1, 0]])]),
    "rnn_tanh_cell": (lambda m, *a: m.rnn_tanh_cell(*a), [_normal(2, 3), _normal(2, 4, seed=1),
                                                          _normal(4, 3, seed=2), _normal(4, 4, seed=3),
                                                          _normal(4, seed=4), _normal(4, seed=5)]),
    "rnn_relu_cell": (lambda m, *a: m.rnn_relu_cell(*a), [_normal(2, 3), _normal(2, 4, seed=1),
                                                          _normal(4, 3, seed=2), _normal(4, 4, seed=3)]),
    "lstm_cell": (_lstm, [_normal(2, 3), _normal(2, 4, seed=1), _normal(2, 4, seed=6), _normal(16, 3, seed=2),
                          _normal(16, 4, seed=3), _normal(16, seed=4), _normal(16, seed=5)]),
    "gru_cell": (lambda m, *a: m.gru_cell(*a), [_normal(2, 3), _normal(2, 4, seed=1), _normal(12, 3, seed=2),
                                                _normal(12, 4, seed=3), _normal(12, seed=4), _normal(12, seed=5)]),
}


def _inputs(lib, arrays):
    floats = lib.float64
    return [lib.tensor(a, dtype=floats, requires_grad=True) if a.dtype.kind == "f" else lib.tensor(a)
            for a in arrays]


@pytest.mark.parametrize("name", sorted(OPS))
def test_torch_form_matches_torch(name):
    fn, arrays = OPS[name]
    ours_in, theirs_in = _inputs(tr, arrays), _inputs(torch, arrays)
    ours, theirs = fn(tr, *ours_in), fn(torch, *theirs_in)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-13, atol=1e-14)
    weight = _normal(*theirs.shape, seed=7)
    (theirs * torch.tensor(weight)).sum().backward()
    if not ours.requires_grad:  # pdist's p=0 counts: torch's gradient is 0, ours is no graph
        assert all(b.grad is None or not b.grad.any() for b in theirs_in)
        return
    (ours * tr.tensor(weight, dtype=tr.float64)).sum().backward()
    for a, b in zip(ours_in, theirs_in):
        if b.grad is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-13)


def test_adaptive_max_pool1d_returns_indices_too():
    x = _normal(2, 3, 7)
    _, indices = tr.adaptive_max_pool1d(tr.tensor(x), 3)
    np.testing.assert_array_equal(indices.numpy(), torch.adaptive_max_pool1d(torch.tensor(x), 3)[1].numpy())


@pytest.mark.parametrize("name, args", [("dropout", (0.3, True)), ("alpha_dropout", (0.3, True)),
                                        ("feature_dropout", (0.5, True)), ("feature_alpha_dropout", (0.5, True)),
                                        ("dropout", (0.3, False))])
def test_dropouts_draw_torchs_mask(name, args):
    x = _normal(3, 4, 5)
    tr.manual_seed(3)
    torch.manual_seed(3)
    ours, theirs = getattr(tr, name)(tr.tensor(x), *args), getattr(torch, name)(torch.tensor(x), *args)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-13, atol=0)


def test_torch_forms_take_atens_arguments():
    x = tr.zeros(3)
    with pytest.raises(TypeError):
        tr.dropout(x, 0.5)  # train has no default, as in torch
    with pytest.raises(TypeError, match="reduction"):
        tr.kl_div(x, x, "mean")  # ATen's integer, not F's string
    with pytest.raises(RuntimeError, match="pdist only supports 2D"):
        tr.pdist(x)
    with pytest.raises(RuntimeError, match="non-negative p"):
        tr.pdist(tr.zeros(3, 2), p=-1)
    assert tr.pdist(tr.zeros(1, 2)).shape == torch.pdist(torch.zeros(1, 2)).shape
    with pytest.raises(NotImplementedError, match="generator"):
        tr.rrelu(x, generator=tr.Generator())


# ----------------------------------------------------------------------------- windows

WINDOWS = [("hann_window", {}), ("hamming_window", {}), ("hamming_window", {"alpha": 0.6, "beta": 0.3}),
           ("blackman_window", {}), ("bartlett_window", {}), ("kaiser_window", {}), ("kaiser_window", {"beta": 5.0})]


@pytest.mark.parametrize("name, options", WINDOWS)
@pytest.mark.parametrize("periodic", [True, False])
def test_windows_match_torch(name, options, periodic):
    for length in (0, 1, 2, 5, 8, 33):
        ours = getattr(tr, name)(length, periodic, dtype=tr.float64, **options)
        theirs = getattr(torch, name)(length, periodic, dtype=torch.float64, **options)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=0, atol=1e-12)
        assert ours.shape == tuple(theirs.shape)


def test_windows_take_the_default_float_and_refuse_bad_arguments():
    assert tr.hann_window(4).dtype == tr.get_default_dtype() and tr.hann_window(4, requires_grad=True).requires_grad
    with pytest.raises(RuntimeError, match="non-negative window_length"):
        tr.hann_window(-1)
    with pytest.raises(RuntimeError, match="floating point"):
        tr.blackman_window(3, dtype=tr.int64)


# ----------------------------------------------------------------------------- print options

@pytest.fixture
def printoptions():
    yield
    tr.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")


@pytest.mark.parametrize("options, data", [
    ({"precision": 2}, [1.12345, 2.71828, -3.14159]),
    ({"profile": "short"}, [1.12345, 2.71828]),
    ({"sci_mode": True}, [1.5, -20.25, 0.001]),
    ({"sci_mode": True, "precision": 2}, [[1.5, -20.25], [3e10, 0.5]]),
    ({"linewidth": 30}, list(range(30))),
    ({"profile": "full"}, list(range(1200))),
])
def test_repr_follows_print_options_as_torch(options, data, printoptions):
    tr.set_printoptions(**options)
    torch.set_printoptions(**options)
    assert repr(tr.tensor(data)) == repr(torch.tensor(data))


def test_print_options_round_trip_and_default_profile_restores(printoptions):
    before = repr(tr.arange(300)), repr(tr.tensor([1.123456]))
    tr.set_printoptions(threshold=5, edgeitems=2)
    assert repr(tr.arange(10)) == "tensor([0, 1, ..., 8, 9])"
    assert tr.runtime.get_printoptions()["threshold"] == 5
    tr.set_printoptions(precision=6)  # a later call keeps what it does not name
    assert tr.runtime.get_printoptions()["edgeitems"] == 2
    tr.set_printoptions(profile="default")
    assert (repr(tr.arange(300)), repr(tr.tensor([1.123456]))) == before
    assert before[1] == "tensor([1.1235])"


# ----------------------------------------------------------------------------- settings

def test_num_threads_round_trip():
    before = tr.get_num_threads()
    try:
        tr.set_num_threads(1)
        assert tr.get_num_threads() == 1
    finally:
        tr.set_num_threads(before)
    for bad, message in ((0, "positive integer"), (1.5, "expects an int")):
        with pytest.raises(RuntimeError, match=message):
            tr.set_num_threads(bad)


def test_interop_threads_are_recorded():
    before = tr.get_num_interop_threads()
    tr.set_num_interop_threads(3)
    assert tr.get_num_interop_threads() == 3
    tr.set_num_interop_threads(before)
    with pytest.raises(RuntimeError, match="positive integer"):
        tr.set_num_interop_threads(0)


FLOATS = ["float16", "float32", "float64"]
INTS = ["uint8", "int8", "int16", "int32", "int64"]


@pytest.mark.parametrize("name", FLOATS)
def test_finfo_equals_torchs(name):
    ours, theirs = tr.finfo(getattr(tr, name)), torch.finfo(getattr(torch, name))
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("name", INTS)
def test_iinfo_equals_torchs(name):
    ours, theirs = tr.iinfo(getattr(tr, name)), torch.iinfo(getattr(torch, name))
    assert (ours.bits, ours.min, ours.max, ours.dtype) == (theirs.bits, theirs.min, theirs.max, theirs.dtype)
    assert repr(ours) == repr(theirs)


def test_finfo_and_iinfo_refuse_the_other_kind():
    assert tr.finfo().dtype == torch.finfo().dtype == "float64"
    with pytest.raises(TypeError, match="floating point input type"):
        tr.finfo(tr.int32)
    with pytest.raises(TypeError, match="integer input type"):
        tr.iinfo(tr.float32)
    with pytest.raises(TypeError, match="bool is not supported"):
        tr.iinfo(tr.bool)


ALL_DTYPES = ["bool"] + INTS + FLOATS


def test_promote_types_and_can_cast_equal_torchs():
    for a in ALL_DTYPES:
        for b in ALL_DTYPES:
            pair = (getattr(tr, a), getattr(tr, b)), (getattr(torch, a), getattr(torch, b))
            assert str(tr.promote_types(*pair[0])) == str(torch.promote_types(*pair[1])).removeprefix("torch."), (a, b)
            assert tr.can_cast(*pair[0]) == torch.can_cast(*pair[1]), (a, b)


@pytest.mark.parametrize("operands", [
    (np.zeros(2, np.int32), 1.5), (np.zeros(2, np.int64), np.zeros((), np.float64)), (2, 3), (2, 3.0),
    (np.zeros(2, np.uint8), np.zeros(2, np.int8)), (True, np.zeros(2, np.bool_)), (np.zeros(2, np.float16), 7),
])
def test_result_type_equals_torchs(operands):
    ours = tr.result_type(*[tr.tensor(x) if isinstance(x, np.ndarray) else x for x in operands])
    theirs = torch.result_type(*[torch.tensor(x) if isinstance(x, np.ndarray) else x for x in operands])
    assert str(ours) == str(theirs).removeprefix("torch.")


def test_default_device_round_trip():
    assert tr.get_default_device() == "cpu" and repr(tr.get_default_device()) == "device(type='cpu')"
    try:
        tr.set_default_device("cpu")
        assert tr.zeros(2).device == "cpu" and tr.hann_window(3).device == "cpu"
        if not tr.cuda_available():
            tr.set_default_device("cuda")
            assert tr.get_default_device() == "cuda"
            with pytest.raises(tr.DeviceError, match="CuPy"):
                tr.zeros(2)
        with pytest.raises(tr.DeviceError, match="unknown device"):
            tr.set_default_device("tpu")
    finally:
        tr.set_default_device(None)
    assert tr.get_default_device() == "cpu"


def test_recorded_switches_round_trip():
    assert not tr.are_deterministic_algorithms_enabled()
    try:
        tr.use_deterministic_algorithms(True, warn_only=True)
        assert tr.are_deterministic_algorithms_enabled() and tr.is_deterministic_algorithms_warn_only_enabled()
        with pytest.raises(TypeError, match="must be bool"):
            tr.use_deterministic_algorithms(1)
    finally:
        tr.use_deterministic_algorithms(False)
    assert tr.get_float32_matmul_precision() == "highest"
    try:
        tr.set_float32_matmul_precision("medium")
        assert tr.get_float32_matmul_precision() == "medium"
        with pytest.warns(UserWarning, match="no effect"):
            tr.set_float32_matmul_precision("low")
        assert tr.get_float32_matmul_precision() == "medium"
    finally:
        tr.set_float32_matmul_precision("highest")


def test_anomaly_switch_is_detect_anomalys():
    assert not tr.is_anomaly_enabled()
    try:
        tr.set_anomaly_enabled(True)
        assert tr.is_anomaly_enabled() and tr.autograd.is_anomaly_enabled()
        x = tr.tensor([0.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="nan"):
            (x * 0.0).sqrt().sum().backward(tr.tensor(float("nan")))
    finally:
        tr.set_anomaly_enabled(False)
    assert not tr.is_anomaly_enabled()


def test_inference_mode_as_block_and_decorator():
    x = tr.ones(2, requires_grad=True)
    with tr.no_grad():
        assert not tr.is_inference_mode_enabled()  # no_grad alone is not inference mode, as in torch
    with tr.inference_mode():
        assert tr.is_inference_mode_enabled() and not (x * 2).requires_grad
        with tr.inference_mode(False):
            assert not tr.is_inference_mode_enabled() and (x * 2).requires_grad

    @tr.inference_mode
    def bare(t):
        return tr.is_inference_mode_enabled(), (t * 2).requires_grad

    @tr.inference_mode()
    def called(t):
        return tr.is_inference_mode_enabled(), (t * 2).requires_grad

    assert bare(x) == called(x) == (True, False)
    assert not tr.is_inference_mode_enabled() and tr.is_grad_enabled()


def test_small_queries_equal_torchs():
    assert tr.typename(tr.zeros(1, dtype=tr.float32)) == "tinygrad_rnn.FloatTensor"
    assert tr.typename(1) == torch.typename(1) == "int"
    assert tr.typename(tr.nn.Linear) == f"{tr.nn.Linear.__module__}.Linear"
    assert tr.is_storage(tr.zeros(1)) is False
    assert tr.is_nonzero(tr.tensor([0.5])) is True and tr.is_nonzero(tr.tensor(0)) is False
    for bad, message in (([1, 2], "more than one value"), ([], "no values")):
        with pytest.raises(RuntimeError, match=message):
            tr.is_nonzero(tr.tensor(bad))


def test_everything_named_here_is_exported():
    names = tr.runtime.__all__ + tr.torch_functional.__all__
    assert set(names) <= set(tr.__all__) and all(hasattr(torch, name) for name in names)
