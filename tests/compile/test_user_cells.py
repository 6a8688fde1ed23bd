"""Cells written as a PyTorch user writes them (user_cells.py), compiled: every pass equals the op-by-op
graph (fused=False) in float64 (outputs, final states, every gradient) over the layer options; float32
stays close to float64; a second call with another batch size or length, a call after the parameters
changed, no_grad and gradients of gradients agree too. A cell the compiler must refuse runs op by op
with one warning that names the op, the cell and the line of the step it comes from."""
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.compile.test_exact import OPTIONS, compiled_nodes, cuda_program_on_the_cpu, kernels_as_cpp  # noqa: F401
from tests.compile.user_cells import REFUSED, TRACEABLE, DropoutInsideCell
from tinygrad_rnn.compile import drive

TOLERANCE = 1e-12


@pytest.fixture(autouse=True)
def fresh_compiler(monkeypatch):
    """Each test compiles and warns afresh (the cache and the warnings given are global)."""
    monkeypatch.setattr(drive, "_CACHE", {})
    monkeypatch.setattr(drive, "_BOUND", drive.weakref.WeakKeyDictionary())
    monkeypatch.setattr(drive, "_WARNED", set())


def make_layer(cell_type, fused, options=None, dtype="float64", seed=0):
    options = dict((options or {}).get("layer", {}))
    if not fused:
        options.pop("checkpoint_every", None)
    tr.manual_seed(seed)
    return tr.nn.Recurrent(cell_type, 3, 4, fused=fused, dtype=dtype, **options)


def run(layer, options, dtype="float64", shape=(5, 3), seed=0, create_graph=False):
    """Outputs, final states and the gradients of a weighted sum of them: x, hx, every parameter."""
    rng = np.random.default_rng(seed)
    T, B = shape
    batch_first = options["layer"].get("batch_first", False)
    x = tr.Tensor(rng.standard_normal((B, T, 3) if batch_first else (T, B, 3)), dtype=dtype, requires_grad=True)
    inputs, hx = [x], None
    if options.get("hx"):
        stacked = layer.num_layers * layer.num_directions
        hx = [tr.Tensor(rng.standard_normal((stacked, B, size)) * 0.5, dtype=dtype, requires_grad=True)
              for size in layer.state_sizes]
        inputs += hx
        hx = hx[0] if len(hx) == 1 else tuple(hx)
    lengths = options["call"].get("lengths")
    tr.manual_seed(seed + 1)  # the dropout masks between layers
    out, finals = layer(x, hx, lengths=None if lengths is None else lengths[:B])
    finals = finals if isinstance(finals, tuple) else (finals,)
    loss = (out * tr.Tensor(rng.standard_normal(out.shape), dtype=dtype)).sum()
    for k, f in enumerate(finals):
        loss = loss + (f * tr.Tensor(rng.standard_normal(f.shape), dtype=dtype)).sum() * (k + 2)
    params = list(layer.parameters())
    grads = tr.autograd.grad(loss, inputs + params, create_graph=create_graph)
    if create_graph:
        penalty = sum((g * g).sum() for g in grads)
        grads = tr.autograd.grad(penalty, inputs + params)
    return [out.numpy()] + [f.numpy() for f in finals] + [g.numpy() for g in grads], compiled_nodes(out)


def assert_same(got, expected, atol=TOLERANCE, rtol=0.0):
    assert len(got) == len(expected)
    for k, (a, b) in enumerate(zip(got, expected)):
        assert np.isfinite(a).all(), f"result {k}"
        np.testing.assert_allclose(a, b, atol=atol, rtol=rtol, err_msg=f"result {k}")


@pytest.mark.filterwarnings("error")   # a cell that fell back op by op would warn
@pytest.mark.parametrize("work_on_forward_values", ["all steps at once", "step by step"])
@pytest.mark.parametrize("options", list(OPTIONS))
@pytest.mark.parametrize("name", list(TRACEABLE))
def test_compiled_pass_equals_op_by_op(monkeypatch, name, options, work_on_forward_values):
    if work_on_forward_values == "step by step":  # the backward that large segments take
        monkeypatch.setattr(drive, "BULK_BYTES", 0)
    opts = OPTIONS[options]
    expected, none = run(make_layer(TRACEABLE[name], False, opts), opts)
    got, passes = run(make_layer(TRACEABLE[name], True, opts), opts)
    layer = opts["layer"]
    assert none == 0 and passes == layer.get("num_layers", 1) * (2 if layer.get("bidirectional") else 1)
    assert_same(got, expected)


@pytest.mark.filterwarnings("error")
@pytest.mark.usefixtures("cuda_program_on_the_cpu")
@pytest.mark.parametrize("name", list(TRACEABLE))
def test_generated_cuda_kernels_equal_op_by_op(name):
    """The GPU's program (each loop's elementwise runs as generated kernels, run here as C++)."""
    options = OPTIONS["stacked_bidirectional_lengths_hx"]
    expected, _ = run(make_layer(TRACEABLE[name], False, options), options)
    got, passes = run(make_layer(TRACEABLE[name], True, options), options)
    assert passes == 4
    assert_same(got, expected)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", list(TRACEABLE))
def test_later_calls_with_other_shapes_and_changed_parameters(name):
    """One layer called again with the same shapes (the statics replayed from the step bound to the
    cell), with another batch size and length, each after its parameters changed in place (an
    optimizer step: the compiled step is reused, the statics read again)."""
    options = OPTIONS["stacked_bidirectional_lengths_hx"]
    fused, plain = make_layer(TRACEABLE[name], True, options), make_layer(TRACEABLE[name], False, options)
    for shape in ((5, 3), (5, 3), (7, 2), (7, 2), (5, 3)):
        # the shifted parameters grow some gradients to 1e4: relative 1e-12 there
        assert_same(run(fused, options, shape=shape)[0], run(plain, options, shape=shape)[0], rtol=TOLERANCE)
        for layer in (fused, plain):
            for k, p in enumerate(layer.parameters()):
                p.array += 0.01 * (k + 1)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", list(TRACEABLE))
def test_no_grad_gives_the_same_output(name):
    layer = make_layer(TRACEABLE[name], True)
    x = tr.Tensor(np.random.default_rng(2).standard_normal((6, 2, 3)), dtype="float64")
    with tr.no_grad():
        out, finals = layer(x, lengths=[6, 4])
    assert out.grad_fn is None and not out.requires_grad
    recorded, recorded_finals = layer(x, lengths=[6, 4])
    assert compiled_nodes(recorded) == 1
    np.testing.assert_array_equal(out.numpy(), recorded.numpy())
    finals = finals if isinstance(finals, tuple) else (finals,)
    recorded_finals = recorded_finals if isinstance(recorded_finals, tuple) else (recorded_finals,)
    for a, b in zip(finals, recorded_finals):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", list(TRACEABLE))
def test_float32_is_close_to_float64(name):
    options = OPTIONS["checkpoint_reverse_lengths"]
    start = make_layer(TRACEABLE[name], True, options).state_dict()
    results = []
    for dtype in ("float64", "float32"):  # from the same weights (a seed draws per dtype, as torch's does)
        layer = make_layer(TRACEABLE[name], True, options, dtype=dtype)
        layer.load_state_dict({key: value.to(layer.state_dict()[key].dtype) for key, value in start.items()})
        results.append(run(layer, options, dtype=dtype)[0])
    assert all(a.dtype == np.float32 for a in results[1])
    assert_same(results[1], results[0], atol=1e-4, rtol=1e-4)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", list(TRACEABLE))
def test_gradients_of_gradients_equal_op_by_op(name):
    options = OPTIONS["checkpoint_reverse_lengths"]
    expected, _ = run(make_layer(TRACEABLE[name], False, options), options, create_graph=True)
    got, passes = run(make_layer(TRACEABLE[name], True, options), options, create_graph=True)
    assert passes == 2
    assert_same(got, expected, atol=1e-10, rtol=1e-12)


@pytest.mark.parametrize("name", list(TRACEABLE))
def test_an_empty_batch_gives_the_op_by_op_result_without_a_warning(name):
    """B == 0: empty outputs, final states of shape (layers * directions, 0, size), gradients of their
    shapes, and no warning that the op-by-op run does not give too (a batch norm's mean of no rows)."""
    options = {"layer": {"num_layers": 2, "bidirectional": True}, "call": {"lengths": []}}
    results = {}
    for fused in (True, False):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results[fused] = run(make_layer(TRACEABLE[name], fused, options), options, shape=(5, 0))[0]
        results[fused].append(sorted({str(w.message) for w in caught}))
    got, expected = results[True], results[False]
    assert got.pop() == expected.pop()
    assert [a.shape for a in got] == [b.shape for b in expected]
    assert got[0].shape == (5, 0, 8) and got[1].shape == (4, 0, 4)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_dropout_inside_the_step_runs_op_by_op_while_training_and_compiled_in_eval():
    options = OPTIONS["one_layer"]
    layers = {fused: make_layer(DropoutInsideCell, fused) for fused in (True, False)}
    with pytest.warns(UserWarning, match=r"DropoutInsideCell: .*op 'mul' \(user_cells.py:\d+: .*self\.drop\(") as caught:
        got, passes = run(layers[True], options, seed=3)
    assert len(caught) == 1 and passes == 0
    expected, _ = run(layers[False], options, seed=3)
    assert_same(got, expected)   # the same masks: op by op draws them as fused=False does
    for layer in layers.values():
        layer.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, passes = run(layers[True], options)
    assert passes == 1
    assert_same(got, run(layers[False], options)[0])


class NarrowedSliceCell(tr.nn.RecurrentCell):
    """A view of a column block of the state (h[:, 2:][:, 0:2]) read before the block itself: the block's
    gate-major copy (blocks.py) must be made before that first read, not at the block's own first read."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.v = tr.nn.Parameter(tr.randn(input_size, 2, dtype=dtype) * 0.4)

    def step(self, x, state):
        h, = state
        slow = h[:, 2:]
        return (tr.cat([x @ self.v, slow + slow.narrow(1, 0, 2).sigmoid() * (x @ self.v - slow)], 1),)


@pytest.mark.filterwarnings("error")
def test_a_view_of_a_block_reads_the_block_after_it_is_copied_in():
    options = OPTIONS["one_layer"]
    got, passes = run(make_layer(NarrowedSliceCell, True), options)
    assert passes == 1
    assert_same(got, run(make_layer(NarrowedSliceCell, False), options)[0])


# the op the warning names, and the words of the step's line it points at
REFUSALS = {"BranchingCell": (None, "if a.mean() > 0"), "StateChangedInPlaceCell": (None, "h *= 0.5"),
            "ViewChangedInPlaceCell": (None, "a[:, :1] *= 0.5"), "DetachedChangedInPlaceCell": (None, "cut.clamp_(min=0)"),
            "CountingCell": (None, "attributes of the cell (CountingCell.calls, CountingCell.last, CountingCell.seen)"),
            "AnyUnitOnCell": ("convert", "outside the ops (any)"), "AnyUnitOnWhereCell": ("where", "outside the ops (any)"), "ArgmaxGatherCell": (None, "a.argmax(1, keepdim=True)"),
            "MaskedSelectCell": (None, "walk[walk.abs() > 4]"), "ColumnsFromStepCell": (None, "x[:, idx]"),
            "OneHotFeedbackCell": (None, "F.one_hot((walk[:, 0].abs() > 4).long()"),
            "StartsFromRestCell": (None, "if h.allclose(tr.zeros_like(h))"), "PrintingCell": (None, 'print("h =", h)')}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_cell_warns_once_and_equals_op_by_op(name):
    options = OPTIONS["batch_first_dropout_lengths"]   # zero initial states
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got, passes = run(make_layer(REFUSED[name], True, options), options)
        run(make_layer(REFUSED[name], True, options), options, shape=(5, 2))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    op, line = REFUSALS[name]
    assert messages[0].startswith(f"{name}: the step compiler cannot take ")
    assert (f"op '{op}'" if op else "its step") in messages[0] and line in messages[0], messages[0]
    assert passes == 0
    assert_same(got, run(make_layer(REFUSED[name], False, options), options)[0])


def test_a_cell_changing_its_attributes_is_left_as_op_by_op_leaves_it():
    """Tracing runs the step once more than op by op does: what it changed on the cell is put back."""
    options = OPTIONS["stacked_bidirectional_lengths_hx"]
    layers = {fused: make_layer(REFUSED["CountingCell"], fused, options) for fused in (True, False)}
    with pytest.warns(UserWarning, match="CountingCell.calls"):
        got, passes = run(layers[True], options)
    expected, _ = run(layers[False], options)
    assert passes == 0
    assert_same(got, expected)
    cells = {f: [cell for row in layer._cells for cell in row] for f, layer in layers.items()}
    for fused, plain in zip(cells[True], cells[False]):
        assert fused.calls == plain.calls == 5 and len(fused.seen) == len(plain.seen) == 5
        assert fused.last.shape == plain.last.shape


GAIN = 1.0
SHIFT = tr.zeros(4, dtype="float64")


class ConfiguredCell(tr.nn.RecurrentCell):
    """Numbers the step reads from a dict and a list the cell holds, a Python number, a buffer, a class
    attribute and a global of its module."""
    offset = 0.0

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = tr.nn.Parameter(tr.randn(input_size, hidden_size, dtype=dtype) * 0.4)
        self.register_buffer("scale", tr.ones(hidden_size, dtype=dtype))
        self.config, self.mix, self.leak = {"beta": 0.1}, [0.2], 0.5

    def step(self, x, state):
        h, = state
        return ((x @ self.w + h * self.leak).tanh() * self.scale * GAIN + self.config["beta"] + self.mix[0] * h
                + self.offset + SHIFT,)


CHANGES = {"a dict entry": lambda cell, k: cell.config.__setitem__("beta", 0.3 + k),
           "a list entry": lambda cell, k: cell.mix.__setitem__(0, 0.5 + k),
           "a number": lambda cell, k: setattr(cell, "leak", 0.6 + 0.1 * k),
           "a buffer in place": lambda cell, k: cell.scale.mul_(1.5),
           "a buffer replaced": lambda cell, k: setattr(cell, "scale", tr.full((4,), 2.0 + k, dtype="float64")),
           "a class attribute": lambda cell, k: setattr(type(cell), "offset", 0.1 * (k + 1)),
           "a global": lambda cell, k: globals().__setitem__("GAIN", 1.5 + k),
           "a global tensor": lambda cell, k: globals().__setitem__("SHIFT", tr.full((4,), 0.1 * (k + 1), dtype="float64"))}


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("change", list(CHANGES))
def test_what_the_step_reads_from_the_cell_is_read_again_after_it_changes(change):
    """Between calls the cell's numbers, containers and buffers change: each call computes with the new ones."""
    options = OPTIONS["one_layer"]
    layers = {fused: make_layer(ConfiguredCell, fused, options) for fused in (True, False)}
    try:
        for k in range(3):
            got, passes = run(layers[True], options)
            assert passes == 1
            assert_same(got, run(layers[False], options)[0])
            for layer in layers.values():
                CHANGES[change](layer._cells[0][0], k)
    finally:
        ConfiguredCell.offset = 0.0
        globals().update(GAIN=1.0, SHIFT=tr.zeros(4, dtype="float64"))


class BufferIndexCell(tr.nn.RecurrentCell):
    """A permutation and a mask held as buffers, used as an index (h[:, self.order]) and a where condition."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__(input_size, hidden_size)
        self.w = tr.nn.Parameter(tr.randn(input_size, hidden_size, dtype=dtype) * 0.4)
        self.register_buffer("order", tr.arange(hidden_size - 1, -1, -1))
        self.register_buffer("open", tr.arange(hidden_size) % 2 == 0)

    def step(self, x, state):
        h, = state
        return ((x @ self.w + h[:, self.order] * 0.5 + tr.where(self.open, h, 0.0) * 0.3).tanh(),)


# the identity order and a full mask included: a program may take them as no index, no where at all
BUFFER_CHANGES = {"copy_ of the index": lambda cell, k: cell.order.copy_(tr.tensor([k % 4, 1, 2, 3])),
                  "copy_ of the mask": lambda cell, k: cell.open.copy_(tr.tensor([k % 2 == 0, True, False, False])),
                  "fill_ of the mask": lambda cell, k: cell.open.fill_(k % 2 == 1)}


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("change", list(BUFFER_CHANGES))
def test_an_index_or_mask_buffer_changed_in_place_is_read_again(change):
    """Two cells of one type, one of them with its buffers changed between calls: each call of each runs
    with its own buffers' values (not the other cell's, nor those it was compiled with)."""
    options = OPTIONS["one_layer"]
    pairs = [{fused: make_layer(BufferIndexCell, fused, options) for fused in (True, False)} for _ in range(2)]
    for k in range(3):
        for layers in pairs:
            got, passes = run(layers[True], options)
            assert passes == 1
            assert_same(got, run(layers[False], options)[0])
        for layer in pairs[1].values():
            BUFFER_CHANGES[change](layer._cells[0][0], k)


def test_a_hook_on_a_submodule_runs_at_every_step_as_op_by_op():
    """A forward hook that records what nn.Linear gives (the way activations are inspected) sees each step's
    value: the step runs op by op, with a warning naming the submodule."""
    options = OPTIONS["one_layer"]
    seen = {}
    for fused in (True, False):
        layer = make_layer(TRACEABLE["LinearGRUCell"], fused, options)
        seen[fused] = []
        layer._cells[0][0].h2h.register_forward_hook(lambda module, args, out, fused=fused: seen[fused].append(out))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got, passes = run(layer, options)
        seen[fused].append(([str(w.message) for w in caught], passes, got))
    (messages, passes, got), (none, _, expected) = seen[True].pop(), seen[False].pop()
    assert none == [] and passes == 0 and len(messages) == 1 and "its submodule 'h2h' has hooks" in messages[0]
    assert_same(got, expected)
    assert len(seen[True]) == len(seen[False]) == 5
    for a, b in zip(seen[True], seen[False]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_each_layer_shape_compiles_once():
    """A structure per layer input size and batch size (shapes are part of it), compiled once each: the
    calls after the first two reuse them. Compile seconds are in cache_info (bench/ reports them)."""
    cells = {name: cell for name, cell in TRACEABLE.items() if name != "RandomUnitsCell"}  # a program per mask
    for cell_type in cells.values():
        layer = tr.nn.Recurrent(cell_type, 16, 32, num_layers=2, bidirectional=True)
        layer(tr.randn(4, 2, 16))
        layer(tr.randn(6, 3, 16))
        layer(tr.randn(5, 2, 16))
        layer(tr.randn(3, 3, 16))
    assert sorted(drive.cache_info()) == sorted(cells)
    assert all(len(seconds) == 4 for seconds in drive.cache_info().values()), drive.cache_info()


def test_cells_with_masks_of_their_own_each_compile_up_to_a_limit(monkeypatch):
    """Each RandomUnitsCell has its own where() condition: a program each, up to VARIANT_LIMIT for one
    structure; the next cell runs op by op with a warning that says so."""
    monkeypatch.setattr(drive, "VARIANT_LIMIT", 3)
    options = {"layer": {"bidirectional": True}, "call": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, passes = run(make_layer(TRACEABLE["RandomUnitsCell"], True, options, seed=0), options)
    assert passes == 2
    assert_same(got, run(make_layer(TRACEABLE["RandomUnitsCell"], False, options, seed=0), options)[0])
    with pytest.warns(UserWarning, match=r"op 'where' \(user_cells.py:\d+: .*self\.updating.*\): the condition of "
                                         r"where differs from call to call \(3 programs"):
        got, passes = run(make_layer(TRACEABLE["RandomUnitsCell"], True, options, seed=6), options)
    assert passes == 1
    assert_same(got, run(make_layer(TRACEABLE["RandomUnitsCell"], False, options, seed=6), options)[0])


def test_a_step_returning_its_one_state_as_a_tensor_is_called_as_a_cell_too():
    cell = TRACEABLE["TiedWeightCell"](3, 4, dtype="float64")
    x, h = tr.randn(2, 3, dtype="float64"), tr.randn(2, 4, dtype="float64")
    assert cell(x, h).shape == (2, 4) and cell(x[0], h[0]).shape == (4,)
