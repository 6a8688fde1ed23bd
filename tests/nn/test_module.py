"""Module as PyTorch's: registration, traversal, buffers, state_dict (tied weights), load_state_dict,
dtype and device moves, modes, gradients, and the printed form."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np

nn = tr.nn


class Tied(nn.Module):
    """An embedding and an output layer sharing one weight matrix (weight tying)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Embedding(5, 3)
        self.decoder = nn.Linear(3, 5, bias=False)
        self.decoder.weight = self.encoder.weight


class TorchTied:
    """The same model in torch (built on demand: torch is imported by the fixture)."""

    def __new__(cls, torch):
        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = torch.nn.Embedding(5, 3)
                self.decoder = torch.nn.Linear(3, 5, bias=False)
                self.decoder.weight = self.encoder.weight
        return Model()


# --- registration and traversal

def test_parameters_and_named_parameters_are_generators():
    linear = nn.Linear(2, 3)
    params = linear.parameters()
    assert next(params) is linear.weight
    assert next(params) is linear.bias
    with pytest.raises(StopIteration):
        next(params)
    assert [n for n, _ in linear.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in linear.named_parameters(prefix="out")] == ["out.weight", "out.bias"]


def test_children_modules_and_apply_follow_registration_order():
    model = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.Dropout(0.1), nn.Linear(3, 1)))
    assert [n for n, _ in model.named_children()] == ["0", "1"]
    assert [n for n, _ in model.named_modules()] == ["", "0", "1", "1.0", "1.1"]
    assert [type(m).__name__ for m in model.children()] == ["Linear", "Sequential"]
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "Dropout", "Linear", "Sequential", "Sequential"]  # children first, as torch
    assert model.get_submodule("1.1") is model[1][1]


def test_a_shared_parameter_is_listed_once_but_both_keys_are_in_state_dict():
    model = Tied()
    assert [n for n, _ in model.named_parameters()] == ["encoder.weight"]
    assert len(list(model.parameters())) == 1
    assert list(model.state_dict()) == ["encoder.weight", "decoder.weight"]
    kept = model.state_dict(keep_vars=True)
    assert kept["encoder.weight"] is kept["decoder.weight"] is model.encoder.weight


def test_tied_state_dict_matches_torch_and_loads_from_torch(torch):
    theirs = TorchTied(torch)
    ours = Tied()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    result = ours.load_state_dict(theirs.state_dict())  # torch tensors, both keys
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == repr(theirs.load_state_dict(theirs.state_dict())) == "<All keys matched successfully>"
    np.testing.assert_array_equal(ours.decoder.weight.numpy(), theirs.encoder.weight.detach().numpy().astype("float32"))
    assert ours.decoder.weight is ours.encoder.weight
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})


def test_assigning_a_plain_list_or_dict_of_modules_names_the_container():
    model = nn.Module()
    with pytest.raises(TypeError, match="ModuleList"):
        model.layers = [nn.Linear(1, 1), nn.Linear(1, 1)]
    with pytest.raises(TypeError, match="ModuleDict"):
        model.heads = {"a": nn.Linear(1, 1)}
    with pytest.raises(TypeError, match="ParameterList"):
        model.weights = (nn.Parameter(np.zeros(2)),)
    with pytest.raises(TypeError, match="ParameterDict"):
        model.weights = {"w": nn.Parameter(np.zeros(2))}
    model.sizes = [1, 2]  # plain data stays plain
    assert not hasattr(model, "layers") and list(model.parameters()) == []


def test_assigning_a_tensor_over_a_parameter_is_refused_like_torch():
    linear = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"cannot assign 'Tensor' as parameter 'weight' \(nn.Parameter or None"):
        linear.weight = tr.zeros(2, 2)
    linear.bias = None
    assert [n for n, _ in linear.named_parameters()] == ["weight"]
    assert linear(tr.ones(1, 2)).shape == (1, 2)


def test_assigning_a_parameter_replaces_what_forward_uses():
    linear = nn.Linear(2, 2)
    linear.weight = nn.Parameter(np.eye(2))
    np.testing.assert_array_equal(linear(tr.ones(1, 2)).numpy(), 1 + linear.bias.numpy()[None])


# --- buffers

def test_buffers_are_in_state_dict_move_with_to_and_are_not_parameters():
    linear = nn.Linear(2, 2)
    linear.register_buffer("running", tr.zeros(2))
    linear.register_buffer("scratch", tr.ones(1), persistent=False)
    linear.register_buffer("steps", tr.Tensor(np.array([3])))  # integer buffers keep their dtype
    assert [n for n, _ in linear.named_buffers()] == ["running", "scratch", "steps"]
    assert list(linear.state_dict()) == ["weight", "bias", "running", "steps"]
    assert len(list(linear.parameters())) == 2
    linear.double()
    assert linear.running.dtype == linear.scratch.dtype == np.float64
    assert linear.steps.dtype == np.int64
    linear.load_state_dict({**linear.state_dict(), "running": np.array([5.0, 6.0])})
    np.testing.assert_array_equal(linear.running.numpy(), [5.0, 6.0])
    linear.running = tr.ones(2)
    assert "running" in dict(linear.named_buffers())
    with pytest.raises(TypeError, match="buffer 'running'"):
        linear.running = np.ones(2)
    with pytest.raises(TypeError, match="Tensor or None required"):
        linear.register_buffer("other", [1.0])


def test_buffers_match_torch_state_dict_keys(torch):
    theirs = torch.nn.Linear(2, 2)
    theirs.register_buffer("b", torch.zeros(2))
    theirs.register_buffer("nb", torch.zeros(1), persistent=False)
    ours = nn.Linear(2, 2)
    ours.register_buffer("b", tr.zeros(2))
    ours.register_buffer("nb", tr.zeros(1), persistent=False)
    assert list(ours.state_dict()) == list(theirs.state_dict())


# --- load_state_dict

def test_load_state_dict_takes_tensors_numpy_and_torch(torch):
    ours = nn.Linear(2, 3, dtype="float64")
    theirs = torch.nn.Linear(2, 3, dtype=torch.float64)
    ours.load_state_dict({"weight": tr.Tensor(np.ones((3, 2))), "bias": np.arange(3.0)})
    np.testing.assert_array_equal(ours.weight.numpy(), 1.0)
    assert ours.weight.dtype == np.float64  # the parameter keeps its dtype
    ours.load_state_dict(theirs.state_dict())
    np.testing.assert_array_equal(ours.bias.numpy(), theirs.bias.detach().numpy())
    ours.load_state_dict(dict(theirs.named_parameters()))  # tensors that require grad
    np.testing.assert_array_equal(ours.weight.numpy(), theirs.weight.detach().numpy())


def test_load_state_dict_reports_like_torch_and_changes_nothing(torch):
    ours, theirs = Tied(), TorchTied(torch)
    before = ours.encoder.weight.numpy()
    problems = {"encoder.weight": np.zeros((5, 3)), "x": np.zeros(1)}
    with pytest.raises(RuntimeError) as ours_error:
        ours.load_state_dict(problems)
    with pytest.raises(RuntimeError) as their_error:
        theirs.load_state_dict({k: torch.tensor(v) for k, v in problems.items()})
    assert str(ours_error.value).replace("Tied", "Model") == str(their_error.value)
    assert isinstance(ours_error.value, KeyError)  # what this raised before; callers catch it
    with pytest.raises(RuntimeError, match=r"size mismatch for encoder.weight: copying a param with shape "
                                           r"\(5, 4\) from checkpoint, the shape in current model is \(5, 3\)"):
        ours.load_state_dict({"encoder.weight": np.zeros((5, 4)), "decoder.weight": np.zeros((5, 3))})
    np.testing.assert_array_equal(ours.encoder.weight.numpy(), before)
    result = ours.load_state_dict(problems, strict=False)
    expected = theirs.load_state_dict({k: torch.tensor(v) for k, v in problems.items()}, strict=False)
    assert (result.missing_keys, result.unexpected_keys) == (expected.missing_keys, expected.unexpected_keys)
    assert repr(result) == repr(expected)
    with pytest.raises(TypeError, match="dict-like"):
        ours.load_state_dict([1, 2])


# --- dtypes and devices

def test_to_refuses_integer_dtypes_and_changes_nothing():
    linear = nn.Linear(2, 2)
    before = linear.weight.numpy()
    for dtype in ("int32", np.int64, "bool"):
        with pytest.raises(TypeError, match=r"only accepts floating point dtypes, but got desired dtype=(int32|int64|bool)"):
            linear.to(dtype=dtype)
    with pytest.raises(TypeError, match="int32"):
        linear.to("int32")
    np.testing.assert_array_equal(linear.weight.numpy(), before)
    assert linear.weight.requires_grad and linear.weight.dtype == np.float32


def test_half_float_double_keep_the_parameter_objects_and_requires_grad():
    linear = nn.Linear(2, 2)
    weight = linear.weight
    for method, dtype in (("half", np.float16), ("double", np.float64), ("float", np.float32)):
        assert getattr(linear, method)() is linear
        assert linear.weight is weight and weight.dtype == dtype and weight.requires_grad
    linear.to(np.float64)
    assert weight.dtype == np.float64
    linear.to(tr.Tensor(np.zeros(1), dtype="float32"))  # a tensor's dtype and device
    assert weight.dtype == np.float32


def test_to_converts_gradients_too():
    linear = nn.Linear(2, 1)
    linear(tr.ones(3, 2)).sum().backward()
    linear.double()
    assert to_np(linear.weight.grad).dtype == np.float64
    np.testing.assert_allclose(to_np(linear.weight.grad), 3.0)


def test_cpu_and_cuda(device):
    linear = nn.Linear(2, 2).to(device)
    assert {p.device for p in linear.parameters()} == {device}
    assert linear.cpu().weight.device == "cpu"
    if device == "cuda":
        assert linear.cuda().weight.device == "cuda"


def test_cuda_without_a_gpu_raises_and_moves_nothing():
    if tr.cuda_available():
        pytest.skip("a GPU is present")
    linear = nn.Linear(2, 2)
    with pytest.raises(tr.DeviceError):
        linear.cuda()
    assert linear.weight.device == "cpu"


# --- modes and gradients

def test_train_eval_requires_grad_and_zero_grad():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    assert model.eval() is model and not model[1].training
    assert model.train() is model and model[1].training
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        model.train(1)
    assert model.requires_grad_(False) is model
    assert not any(p.requires_grad for p in model.parameters())
    model.requires_grad_()
    model.eval()
    model(tr.ones(1, 2)).sum().backward()
    model.zero_grad(set_to_none=False)
    assert all(not to_np(p.grad).any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# --- printing

def test_repr_matches_torch(torch):
    ours = nn.Sequential(nn.Linear(2, 3), nn.LSTM(3, 4, num_layers=2), nn.ModuleList([nn.Linear(1, 1)] * 3),
                         nn.ModuleDict({"a": nn.Dropout(0.1)}), nn.LayerNorm(3), nn.Embedding(4, 3, padding_idx=1),
                         nn.GRU(2, 3, bidirectional=True, batch_first=True), nn.RNN(2, 3, nonlinearity="relu", bias=False),
                         nn.ModuleList(), nn.LSTM(3, 4, proj_size=2, dropout=0.5, num_layers=2),
                         nn.LSTMCell(2, 3), nn.GRUCell(2, 3, bias=False), nn.RNNCell(2, 3, nonlinearity="relu"))
    t = torch.nn
    theirs = t.Sequential(t.Linear(2, 3), t.LSTM(3, 4, num_layers=2), t.ModuleList([t.Linear(1, 1)] * 3),
                          t.ModuleDict({"a": t.Dropout(0.1)}), t.LayerNorm(3), t.Embedding(4, 3, padding_idx=1),
                          t.GRU(2, 3, bidirectional=True, batch_first=True), t.RNN(2, 3, nonlinearity="relu", bias=False),
                          t.ModuleList(), t.LSTM(3, 4, proj_size=2, dropout=0.5, num_layers=2),
                          t.LSTMCell(2, 3), t.GRUCell(2, 3, bias=False), t.RNNCell(2, 3, nonlinearity="relu"))
    assert repr(ours) == repr(theirs)


def test_repr_shows_our_own_options_after_torchs():
    assert repr(nn.LSTM(3, 4, fused=False, forget_bias=1.0)) == "LSTM(3, 4, fused=False, forget_bias=1.0)"
    assert repr(nn.Recurrent(nn.LayerNormLSTMCell, 2, 3, num_layers=2)) == \
        "Recurrent(LayerNormLSTMCell, 2, 3, num_layers=2)"


def test_load_state_dict_assign_puts_the_values_themselves_in_place(torch):
    ours = nn.Sequential(nn.Linear(2, 3), nn.LayerNorm(3))
    ours.register_buffer("steps", tr.zeros(1))
    ours[1].weight.requires_grad_(False)
    weight = tr.Tensor(np.arange(6.0).reshape(3, 2), dtype=tr.float64)
    bias = nn.Parameter(np.ones(3), requires_grad=False)
    state = {**ours.state_dict(keep_vars=True), "0.weight": weight, "0.bias": bias, "1.bias": np.full(3, 2.0),
             "steps": tr.tensor([7], dtype=tr.int64)}
    result = ours.load_state_dict(state, assign=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert isinstance(ours[0].weight, nn.Parameter) and ours[0].weight.dtype == np.float64  # the value's dtype
    assert np.shares_memory(ours[0].weight.array, weight.array) and ours[0].weight.requires_grad
    assert ours[0].bias is bias and bias.requires_grad  # a Parameter given is kept, with the old requires_grad
    assert not ours[1].weight.requires_grad
    assert ours.steps is state["steps"] and ours.get_buffer("steps").dtype == np.int64
    np.testing.assert_array_equal(ours[1].bias.numpy(), [2.0, 2.0, 2.0])
    assert [name for name, _ in ours.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.LayerNorm(3))
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items() if k != "steps"}, assign=True)
    assert theirs[0].weight.dtype == torch.float64  # torch keeps the value's dtype too


def test_load_state_dict_assign_keeps_tied_weights_one_parameter():
    model = Tied()
    shared = tr.ones(*model.encoder.weight.shape)
    model.load_state_dict({"encoder.weight": shared, "decoder.weight": shared}, assign=True)
    assert model.encoder.weight is model.decoder.weight
    assert len(list(model.parameters())) == 1


def test_assign_refuses_a_shape_mismatch_before_changing_anything():
    linear = nn.Linear(2, 3)
    weight = linear.weight
    with pytest.raises(RuntimeError, match=r"size mismatch for bias: copying a param with shape \(4,\)"):
        linear.load_state_dict({"weight": tr.zeros(3, 2), "bias": tr.zeros(4)}, assign=True)
    assert linear.weight is weight


def test_get_parameter_and_get_buffer_follow_dotted_paths(torch):
    ours = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.Linear(3, 1)))
    ours[1].register_buffer("mask", tr.ones(3))
    assert ours.get_parameter("1.0.bias") is ours[1][0].bias
    assert ours.get_buffer("1.mask") is ours[1].mask
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3))
    for lib_model, getter, target, message in ((ours, "get_parameter", "0.missing", "has no attribute `missing`"),
                                               (ours, "get_parameter", "1.mask", "`mask` is not an nn.Parameter"),
                                               (ours, "get_buffer", "0.weight", "`weight` is not a buffer"),
                                               (theirs, "get_buffer", "0.weight", "`weight` is not a buffer")):
        with pytest.raises(AttributeError, match=message):
            getattr(lib_model, getter)(target)


def test_state_dict_values_are_tensor_copies_that_port_as_torchs(torch):
    """The training-loop idioms torch users write: keep the best weights (cloned or not), move them to
    torch with torch.tensor, back with load_state_dict."""
    model = tr.nn.Linear(3, 2, dtype="float64")
    best = model.state_dict()
    cloned = {k: v.clone() for k, v in model.state_dict().items()}
    before = {k: v.numpy() for k, v in best.items()}
    assert all(isinstance(v, tr.Tensor) and not v.requires_grad for v in best.values())
    with tr.no_grad():
        model.weight.add_(1.0)
    for k, value in before.items():   # copies: the model moved on, the kept weights did not
        np.testing.assert_array_equal(best[k].numpy(), value)
        np.testing.assert_array_equal(cloned[k].numpy(), value)
    theirs = torch.nn.Linear(3, 2).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in best.items()})
    np.testing.assert_array_equal(theirs.weight.detach().numpy(), before["weight"])
    model.load_state_dict(best)
    np.testing.assert_array_equal(model.weight.numpy(), before["weight"])
    assert model.state_dict(keep_vars=True)["weight"] is model.weight
