"""The engine: graph recording, backward semantics, dtypes, devices and error messages."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import backend, graph
from tinygrad_rnn.nn import functional as F


def leaf(values, device="cpu", dtype="float64"):
    return tr.Tensor(np.asarray(values, dtype=float), dtype=dtype, device=device, requires_grad=True)


def test_deep_graph_of_200k_nodes_backpropagates(device):
    x = leaf([0.5], device)
    y = x
    for _ in range(200_000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad[0].item() == 1.0


def test_fan_out_sums_gradients(device):
    x = leaf([1.0, -2.0, 3.0], device)
    y = x * x + x.tanh() + x
    y.sum().backward()
    expected = 2 * np.array([1.0, -2.0, 3.0]) + 1 - np.tanh([1.0, -2.0, 3.0]) ** 2 + 1
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)


def test_leaf_gradients_accumulate_across_backward_calls(device):
    x = leaf([1.0, 2.0], device)
    for _ in range(3):
        (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * 2 * np.array([1.0, 2.0]))
    x.grad = None
    (x * 5).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])


def test_shared_gradient_array_is_not_aliased_between_leaves():
    a, b = leaf([1.0]), leaf([2.0])
    (a + b).sum().backward()
    a.grad[0] = 100.0
    assert b.grad[0].item() == 1.0


def test_second_backward_through_freed_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_keeps_saved_arrays():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.clone()
    y.backward()
    np.testing.assert_allclose(x.grad, (2 * first).numpy())


def test_backward_frees_saved_arrays_but_keeps_structure():
    x = leaf([1.0, 2.0])
    y = x.tanh().named("h")
    z = y.sum()
    z.backward()
    node = y.grad_fn
    assert vars(node) == {}
    assert node.name == "h" and node.shape == (2,) and node.parents == (x,)


def test_no_grad_records_nothing():
    x = leaf([1.0])
    with tr.no_grad():
        y = x * 2
        with tr.enable_grad():
            z = x * 2
    assert y.grad_fn is None and not y.requires_grad
    assert z.grad_fn is not None
    assert tr.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = leaf([3.0])
    y = x * x
    z = (y.detach() * x).sum()
    z.backward()
    assert x.grad[0].item() == 9.0
    assert y.detach().is_leaf and not y.detach().requires_grad


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_preserved_through_ops_and_gradients(dtype, device):
    x = tr.Tensor([[0.5, -1.0]], dtype=dtype, device=device, requires_grad=True)
    y = ((x * 2 + 1) / 3 - x ** 2).sigmoid().tanh().exp().log() @ tr.ones(2, 1, dtype=dtype, device=device)
    assert y.dtype == np.dtype(dtype)
    y.sum().backward()
    assert x.grad.dtype == np.dtype(dtype)


def test_default_dtypes():
    assert tr.Tensor([1.5, 2.0]).dtype == np.float32
    assert tr.Tensor(np.zeros(2)).dtype == np.float32
    assert tr.Tensor(np.zeros(2), dtype="float64").dtype == np.float64
    assert tr.Tensor([1, 2]).dtype == np.int64
    assert tr.zeros(2, 3).dtype == np.float32


def test_retain_grad_keeps_non_leaf_gradients():
    x = leaf([1.0, 2.0])
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * 3 * np.array([1.0, 2.0]))
    with tr.retain_grads():
        k = x.tanh()
    (k * 2).sum().backward()
    np.testing.assert_allclose(k.grad, [2.0, 2.0])


def test_scopes_and_names_are_recorded():
    x = leaf([1.0])
    with tr.scope("layer", 0), tr.scope("t", 4):
        h = (x * 2).tanh().named("h")
    assert h.grad_fn.scope == (("layer", 0), ("t", 4))
    assert graph.scope_dict(h.grad_fn) == {"layer": 0, "t": 4}
    assert [n.op for n in graph.walk(h) if isinstance(n, tr.Function)] == ["mul", "tanh"]
    assert graph.named_nodes(h, "h") == [h.grad_fn]
    assert tr.current_scope() == ()


# --- numerical stability

def test_sigmoid_and_softmax_are_stable_at_large_inputs():
    x = leaf([-1000.0, 0.0, 1000.0])
    s = x.sigmoid()
    np.testing.assert_allclose(s.array, [0.0, 0.5, 1.0])
    s.sum().backward()
    assert x.grad.isfinite().all()
    logits = leaf([[1000.0, 0.0, -1000.0]])
    lp = F.log_softmax(logits)
    np.testing.assert_allclose(lp.array, [[0.0, -1000.0, -2000.0]])
    loss = F.cross_entropy(logits, [1])
    assert loss.item() == pytest.approx(1000.0)
    loss.backward()
    np.testing.assert_allclose(logits.grad, [[1.0, -1.0, 0.0]], atol=1e-12)


# --- bad input

def test_matmul_shape_mismatch_names_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        tr.randn(2, 3) @ tr.randn(4, 5)


def test_broadcast_mismatch_names_the_shapes():
    with pytest.raises(ValueError, match=r"add.*\(2, 3\).*\(4,\)"):
        tr.randn(2, 3) + tr.randn(4)


def test_numpy_errors_of_its_own_subclasses_are_reraised_as_their_base_type():
    # NumPy raises subclasses of TypeError whose constructors take other arguments (a casting error
    # from an in-place ufunc): the op still says which op and which inputs failed
    class Picky(TypeError):
        def __init__(self, a, b):
            super().__init__(f"{a} {b}")

    class Refusing(tr.Function):
        def forward(self, x):
            raise Picky("cannot", "cast")

    with pytest.raises(TypeError, match=r"refusing: cannot cast \(inputs: \(2,\) float32\)"):
        Refusing.apply(tr.ones(2))


@pytest.mark.parametrize("call", [lambda x: x.sum(dim=0, axis=1), lambda x: x.amax(dim=0, axis=1),
                                  lambda x: x.argmax(keepdim=True, keepdims=True, dim=0)])
def test_a_dim_and_its_numpy_alias_together_are_refused(call):
    with pytest.raises(TypeError, match="not both"):
        call(tr.ones(2, 3))


def test_flatten_checks_its_dims():
    with pytest.raises(IndexError, match=r"flatten.*range"):
        tr.ones(2, 3).flatten(2)
    with pytest.raises(ValueError, match="start_dim.*end_dim"):
        tr.ones(2, 3, 4).flatten(2, 1)


def test_port_helpers_on_each_device(device):
    x = tr.tensor([[3, -1, 7], [7, 0, 2]], device=device)
    assert x.max().item() == 7 and x.max(dim=1).indices.tolist() == [2, 0]
    assert x.div(-2, rounding_mode="trunc").tolist() == [[-1, 0, -3], [-3, 0, -1]]
    assert x.div(2, rounding_mode="floor").tolist() == [[1, -1, 3], [3, 0, 1]]
    assert x.to(tr.float64).device == device and x.type(tr.float64).dtype == tr.float64
    drawn = tr.multinomial(tr.tensor([0.0, 1.0, 0.0], device=device), 2, replacement=True)
    assert drawn.device == device and drawn.tolist() == [1, 1]
    with pytest.raises(RuntimeError, match="integer division by zero"):
        x.div(tr.zeros(3, dtype=tr.int64, device=device), rounding_mode="floor")


def test_max_and_min_of_integer_tensors():
    x = tr.tensor([[3, -1, 7], [7, 0, 2]])
    assert x.max().item() == 7 and x.max().dtype == tr.int64 and x.amin().item() == -1
    values, indices = x.max(dim=1)
    assert values.tolist() == [7, 7] and indices.tolist() == [2, 0]


def test_backward_on_non_scalar_needs_a_grad():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"scalar output.*\(2,\)"):
        (x * 2).backward()
    (x * 2).backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad, [2.0, 20.0])


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating point.*int64"):
        tr.Tensor([1, 2], requires_grad=True)


def test_tensor_takes_data_not_sizes():
    with pytest.raises(TypeError, match=r"requires_grad must be a bool, got 3.*tr.empty"):
        tr.Tensor(2, 3)
    assert tr.Tensor(2).shape == () and tr.Tensor([1.0], requires_grad=np.bool_(True)).requires_grad


def test_backward_without_graph_is_explained():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tr.Tensor([1.0]).sum().backward()


def test_cuda_without_a_gpu_says_what_to_install(monkeypatch):
    if tr.cuda_available():
        pytest.skip("a GPU is present: the error path cannot happen")
    with pytest.raises(tr.DeviceError, match="install"):
        tr.Tensor([1.0]).to("cuda")
    monkeypatch.setenv("TINYGRAD_RNN_DEVICE", "cuda")
    with pytest.raises(tr.DeviceError, match="cupy"):
        tr.zeros(2)


def test_unknown_device_is_refused():
    with pytest.raises(tr.DeviceError, match="unknown device 'tpu'"):
        tr.zeros(2, device="tpu")


class _DeviceArray(np.ndarray):
    """A host array that the backend takes for a GPU array (to test device checks without a GPU)."""


def test_mixing_devices_in_one_op_names_both(monkeypatch):
    monkeypatch.setattr(backend, "device_of", lambda a: "cuda" if isinstance(a, _DeviceArray) else "cpu")
    on_gpu = tr.Tensor._make(np.ones(3).view(_DeviceArray), None)
    with pytest.raises(tr.DeviceError, match=r"different devices.*\(3,\) on cpu.*\(3,\) on cuda"):
        leaf([1.0, 2.0, 3.0]) * on_gpu


def test_mixing_devices_on_a_real_gpu():
    if not tr.cuda_available():
        pytest.skip("CuPy with a working GPU is not available here")
    with pytest.raises(tr.DeviceError, match="cpu.*cuda"):
        tr.ones(2) + tr.ones(2, device="cuda")


def test_to_device_round_trip_keeps_gradients(device):
    x = leaf([1.0, 2.0])
    y = (x.to(device) * 3).to("cpu").sum()
    y.backward()
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_repr_is_readable():
    x = tr.Tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert "grad_fn=mul" in repr(x * 2)


def test_slice_gradients_accumulate_in_place_without_aliasing():
    """Slices scatter into their input's gradient buffer; a gradient shared by Add must stay intact."""
    x = leaf(np.arange(12.0).reshape(4, 3) / 10)

    def f(x):
        y = x.tanh()
        shared = y + y                       # Add hands one array to both of its inputs
        pieces = [shared[t] * (t + 1) for t in range(4)] + [y[1:3].sum(axis=0), y[0]]
        return tr.stack(pieces[:4]).sum(axis=0) + pieces[4] * pieces[5] + x[::2].sum(axis=0)

    assert tr.gradcheck(f, x)


def test_op_tape_records_this_threads_ops_in_order():
    import threading

    from tinygrad_rnn.tensor import op_tape
    x = tr.tensor([1.0, 2.0], requires_grad=True)
    elsewhere = []
    with op_tape() as tape:
        y = (x * 2.0).tanh()
        worker = threading.Thread(target=lambda: elsewhere.append((x + 1.0).sum()))
        worker.start()
        worker.join()
        z = y.sum()
    assert [cls.__name__ for cls, *_ in tape.ops] == ["Mul", "Tanh", "Sum"]
    assert tape.ops[-1][3] is z and tape.ops[0][1][0] is x
    assert elsewhere and elsewhere[0].item() == 5.0   # the other thread ran as always, untaped
    assert (x * 1.0).grad_fn is not None              # and the tape is gone after the block


def test_op_tape_without_reads_refuses_reading_values():
    from tinygrad_rnn.tensor import DataDependent, op_tape
    x = tr.tensor([1.0, -2.0])
    for read in (lambda: x.sum().item(), lambda: bool(x.sum() > 0), x.numpy, x.tolist, lambda: np.asarray(x)):
        with pytest.raises(DataDependent, match="read into Python"), op_tape(reads=False):
            read()
    with op_tape():
        assert x.sum().item() == -1.0


def test_recording_mode_is_per_thread():
    """no_grad, scopes and retain_grads in one thread change nothing another thread records (torch's
    grad mode is thread-local too)."""
    import threading
    inside, go_on = threading.Event(), threading.Event()

    def quiet():
        with tr.no_grad(), tr.scope("elsewhere", 1):
            inside.set()
            go_on.wait(5)

    worker = threading.Thread(target=quiet)
    worker.start()
    inside.wait(5)
    try:
        x = tr.tensor([1.0, 2.0], requires_grad=True)
        y = x * 3.0
        assert tr.is_grad_enabled() and y.grad_fn is not None and y.grad_fn.scope == ()
    finally:
        go_on.set()
        worker.join()
    seen = []
    worker = threading.Thread(target=lambda: seen.append(tr.is_grad_enabled()))
    with tr.no_grad():
        worker.start()
        worker.join()
    assert seen == [True]   # a new thread starts recording, whatever the starting thread does
