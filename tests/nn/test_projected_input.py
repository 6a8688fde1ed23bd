"""A recurrent layer fed by an Embedding projects the table, not the looked-up rows (fused.projected_input).

The pass is given the projected table (a recorded Matmul) and the index, and gathers the rows itself.
Every result and gradient must equal the unprojected pass's (float64, 1e-12): the same model run
with the embedding's output passed through `x * 1` (exact, and no longer a lookup) is the reference.
"""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np
from tinygrad_rnn import backend
from tinygrad_rnn.graph import walk
from tinygrad_rnn.nn import fused

LAYERS = {"lstm": tr.nn.LSTM, "gru": tr.nn.GRU, "rnn_tanh": tr.nn.RNN, "rnn_relu": tr.nn.RNN}
EXACT = {"rtol": 1e-12, "atol": 1e-12}


@pytest.fixture(autouse=True)
def narrow_tables_project(monkeypatch):
    """The tests' tables are 5 wide: let them take the shortcut (test_narrow_tables_are_not_projected aside)."""
    monkeypatch.setattr(fused, "PROJECT_MIN_WIDTH", 1)


@pytest.fixture(params=["host", "gpu"])
def order(request, monkeypatch):
    """host: the rows read are found and projected alone; gpu: as on a GPU, where finding them would
    be a read every step, the table is projected with the other rows set to zero."""
    if request.param == "gpu":
        monkeypatch.setattr(backend, "_DEFER_ON_HOST", True)
    yield request.param
    backend._pending.checks = []


def build(mode, V=7, E=5, H=4, padding_idx=None, device="cpu", **options):
    tr.manual_seed(0)
    emb = tr.nn.Embedding(V, E, padding_idx=padding_idx, dtype="float64", device=device)
    extra = {"nonlinearity": mode[len("rnn_"):]} if mode.startswith("rnn") else {}
    layer = LAYERS[mode](E, H, dtype="float64", device=device, **extra, **options)
    return emb, layer


def run(emb, layer, ids, direct, lengths=None, hx=None, seed=1):
    """(outputs, {parameter name: gradient}) of one forward and backward; direct=False breaks the lookup."""
    for p in list(emb.parameters()) + list(layer.parameters()):
        p.grad = None
    tr.manual_seed(seed)  # the same dropout masks in both runs
    x = emb(ids)
    if not direct:
        x = x * 1.0
    out, state = layer(x, hx, lengths=lengths)
    states = list(state) if isinstance(state, tuple) else [state]
    weights = np.random.default_rng(3)
    loss = sum((t * tr.Tensor(weights.standard_normal(t.shape), dtype="float64", device=t.device)).sum()
               for t in [out] + states)
    loss.backward()
    grads = {f"emb.{n}": to_np(p.grad) for n, p in emb.named_parameters()}
    grads.update({n: to_np(p.grad) for n, p in layer.named_parameters()})
    return [to_np(t) for t in [out] + states], grads


def assert_same(a, b):
    (out_a, grads_a), (out_b, grads_b) = a, b
    for x, y in zip(out_a, out_b):
        np.testing.assert_allclose(x, y, **EXACT)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        np.testing.assert_allclose(grads_a[name], grads_b[name], err_msg=name, **EXACT)


def projected_passes(output):
    """The fused passes under `output` given a projected table (a recorded product) and an index."""
    return [node for node in walk(output) if isinstance(node, fused.FusedPass)
            and getattr(node.parents[0], "op", None) == "matmul" and len(node.parents[0].shape) == 2]


OPTIONS = [
    {},
    {"bidirectional": True},
    {"num_layers": 2, "dropout": 0.3},
    {"num_layers": 2, "bidirectional": True},
    {"batch_first": True},
    {"checkpoint_every": 3},
    {"bias": False},
]


@pytest.mark.parametrize("mode", list(LAYERS))
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_projected_pass_equals_the_unprojected_one(device, mode, options):
    emb, layer = build(mode, device=device, **options)
    T, B = 6, 3
    ids = np.random.default_rng(2).integers(0, 7, (B, T) if options.get("batch_first") else (T, B))
    assert_same(run(emb, layer, ids, direct=True), run(emb, layer, ids, direct=False))


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_lengths_initial_states_and_padding_idx(device, mode):
    emb, layer = build(mode, padding_idx=2, device=device, bidirectional=True)
    T, B, H = 6, 3, 4
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 7, (T, B))
    ids[0, 0] = ids[3, 1] = 2
    shapes = [(2, B, H)] * (2 if mode == "lstm" else 1)
    states = tuple(tr.Tensor(rng.standard_normal(s), dtype="float64", device=device, requires_grad=True)
                   for s in shapes)
    hx = states if mode == "lstm" else states[0]
    lengths = np.array([6, 2, 4])
    results = []
    for direct in (True, False):
        for s in states:
            s.grad = None
        outputs, grads = run(emb, layer, ids, direct, lengths=lengths, hx=hx)
        grads.update({f"hx{k}": to_np(s.grad) for k, s in enumerate(states)})
        results.append((outputs, grads))
    assert_same(*results)
    assert np.all(results[0][1]["emb.weight"][2] == 0)  # the padding row gets no gradient


def test_unbatched_input(device):
    emb, layer = build("lstm", device=device)
    ids = np.array([1, 4, 4, 0, 6, 2, 1, 3])
    assert_same(run(emb, layer, ids, direct=True), run(emb, layer, ids, direct=False))


@pytest.mark.parametrize("mode", list(LAYERS))
@pytest.mark.parametrize("options", [{}, {"bidirectional": True, "lengths": [5, 3]}, {"checkpoint_every": 2}],
                         ids=["plain", "bidirectional,lengths", "checkpoint_every"])
def test_gradients_of_gradients(mode, options):
    """create_graph=True through the projected pass: the Hessian-vector products match the unprojected ones."""
    options = dict(options)
    lengths = options.pop("lengths", None)
    emb, layer = build(mode, **options)
    ids = np.random.default_rng(5).integers(0, 7, (5, 2))
    params = list(emb.parameters()) + list(layer.parameters())
    results = []
    for direct in (True, False):
        x = emb(ids)
        out, _ = layer(x if direct else x * 1.0, lengths=None if lengths is None else np.array(lengths))
        assert bool(projected_passes(out)) == direct
        grads = tr.autograd.grad((out * out).sum(), params, create_graph=True)
        total = sum((g * g).sum() for g in grads)
        results.append([to_np(h) for h in tr.autograd.grad(total, params)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_matches_torch(torch):
    emb, layer = build("lstm", bidirectional=True)
    ids = np.random.default_rng(6).integers(0, 7, (6, 3))
    ref_emb = torch.nn.Embedding(7, 5)
    ref = torch.nn.LSTM(5, 4, bidirectional=True)
    ref_emb.weight.data = torch.tensor(to_np(emb.weight))
    for name, p in layer.named_parameters():
        getattr(ref, name).data = torch.tensor(to_np(p))
    out, _ = layer(emb(ids))
    (out * out).sum().backward()
    ref_out, _ = ref(ref_emb(torch.tensor(ids)))
    (ref_out * ref_out).sum().backward()
    assert projected_passes(out)
    np.testing.assert_allclose(to_np(out), ref_out.detach().numpy(), **EXACT)
    np.testing.assert_allclose(to_np(emb.weight.grad), ref_emb.weight.grad.numpy(), **EXACT)
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(to_np(p.grad), getattr(ref, name).grad.numpy(), err_msg=name, **EXACT)


def test_the_shortcut_is_taken_only_where_it_pays():
    emb, layer = build("lstm", V=7, num_layers=2, bidirectional=True)
    ids = np.random.default_rng(7).integers(0, 7, (4, 2))   # 8 lookups of 7 rows: projected
    out, _ = layer(emb(ids))
    assert len(projected_passes(out)) == 2                   # the first layer's two directions only
    assert len([n for n in walk(out) if isinstance(n, fused.FusedPass)]) == 4

    small = np.random.default_rng(7).integers(0, 7, (3, 2))  # 6 lookups of 7 rows: not worth it
    assert not projected_passes(layer(emb(small))[0])
    x = emb(ids)
    assert not projected_passes(layer(x * 1.0)[0])           # not a lookup
    x.retain_grad()
    assert not projected_passes(layer(x)[0])                 # its own gradient is wanted
    x = emb(ids)
    x.register_hook(lambda g: g)
    assert not projected_passes(layer(x)[0])
    with tr.no_grad():                                       # nothing recorded, nothing to project
        assert np.allclose(to_np(layer(emb(ids))[0]), to_np(out))
    assert not projected_passes(tr.nn.LSTM(5, 4, dtype="float64", fused=False)(emb(ids))[0])


def test_projected_pass_draws_as_its_op_by_op_graph():
    """unfuse rebuilds a projected pass with the identity as W_ih: the same values as the pass."""
    from tinygrad_rnn.nn import unfuse
    emb, layer = build("lstm")
    ids = np.random.default_rng(8).integers(0, 7, (5, 2))
    out, _ = layer(emb(ids))
    (node,) = projected_passes(out)
    inputs = {name: tr.Tensor(array, dtype="float64") for name, array in unfuse.recorded_inputs(node).items()}
    steps, _ = unfuse.compose(node, inputs)
    np.testing.assert_allclose(np.stack([to_np(s) for s in steps]), to_np(out), **EXACT)


def test_fused_pass_without_weight_ih_checks_the_width():
    x = tr.Tensor(np.zeros((3, 2, 5)))
    h0 = tr.Tensor(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"without weight_ih the input must be its projection.*\(T, B, 16\)"):
        fused.fused_pass("lstm", x, h0, None, None, tr.Tensor(np.zeros((16, 4))))


def test_narrow_tables_are_not_projected(monkeypatch):
    monkeypatch.setattr(fused, "PROJECT_MIN_WIDTH", 6)
    emb, layer = build("lstm", E=5)
    ids = np.random.default_rng(9).integers(0, 7, (4, 2))
    assert not projected_passes(layer(emb(ids))[0])
    monkeypatch.setattr(fused, "PROJECT_MIN_WIDTH", 5)
    assert projected_passes(layer(emb(ids))[0])


def test_the_pass_reads_the_projected_table_and_no_looked_up_rows_are_recorded():
    emb, layer = build("gru", bidirectional=True)
    ids = np.random.default_rng(10).integers(0, 7, (6, 3))
    out, _ = layer(emb(ids))
    passes = projected_passes(out)
    assert len(passes) == 2
    for node in passes:
        table = node.parents[0]
        assert tuple(table.shape) == (7, 3 * 4)                       # V rows of the gates' width
        assert table.parents[0] is emb.weight                         # table @ W_ih^T
    assert not [n for n in walk(out) if getattr(n, "op", None) == "lookup"]  # nothing (T, B, .) gathered


@pytest.mark.parametrize("mode", list(LAYERS))
@pytest.mark.parametrize("lengths", [None, [5, 2, 4]], ids=["full", "lengths"])
def test_fused_pass_with_an_index_equals_the_pass_over_the_looked_up_rows(device, mode, lengths):
    """fused_pass(table, index=...) against the same pass given table[index] and given the unprojected input."""
    rng = np.random.default_rng(11)
    T, B, E, H, V = 5, 3, 4, 3, 6
    gates = {"lstm": 4, "gru": 3}.get(mode, 1)

    def leaf(*shape):
        return tr.Tensor(rng.standard_normal(shape), dtype="float64", device=device, requires_grad=True)
    table, w_ih, w_hh, b_ih, b_hh, h0 = leaf(V, E), leaf(gates * H, E), leaf(gates * H, H), leaf(gates * H), \
        leaf(gates * H), leaf(B, H)
    c0 = leaf(B, H) if mode == "lstm" else None
    ids = tr.Tensor(rng.integers(0, V, (T, B)), device=device)
    dy = tr.Tensor(rng.standard_normal((T, B, H)), device=device)
    leaves = [t for t in (table, w_ih, w_hh, b_ih, b_hh, h0, c0) if t is not None]
    results = []
    for how in ("index", "rows", "unprojected"):
        for t in leaves:
            t.grad = None
        projected = table @ w_ih.T
        x, w, index = {"index": (projected, None, ids), "rows": (projected[ids], None, None),
                       "unprojected": (table[ids], w_ih, None)}[how]
        out, h_n, c_n = fused.fused_pass(mode, x, h0, c0, w, w_hh, b_ih, b_hh, lengths=lengths, index=index)
        finals = [s for s in (h_n, c_n) if s is not None]
        ((out * dy).sum() + sum(s.sum() for s in finals)).backward()
        results.append([to_np(t) for t in [out] + finals] + [to_np(t.grad) for t in leaves])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, **EXACT)


def test_the_op_by_op_rebuild_looks_up_the_projected_rows():
    """unfuse.compose records the Lookup of the projected table's rows, then the cells on them."""
    from tinygrad_rnn.nn import unfuse
    emb, layer = build("lstm")
    ids = np.random.default_rng(12).integers(0, 7, (5, 2))
    out, _ = layer(emb(ids))
    (node,) = projected_passes(out)
    inputs = {name: tr.Tensor(array, dtype="float64", requires_grad=True)
              for name, array in unfuse.recorded_inputs(node).items()}
    assert next(iter(inputs)) == fused.TABLE
    steps, _ = unfuse.compose(node, inputs)
    lookups = [n for n in walk(steps) if getattr(n, "op", None) == "lookup"]
    assert len(lookups) == 1 and lookups[0].parents[0] is inputs[fused.TABLE]
    assert tuple(lookups[0].shape) == (5, 2, 16)


def test_step_gradients_kept_under_retain_grads_equal_the_unprojected_ones():
    emb, layer = build("lstm", bidirectional=True)
    ids = np.random.default_rng(13).integers(0, 7, (5, 2))
    kept = []
    for direct in (True, False):
        with tr.retain_grads():
            x = emb(ids)
            out, _ = layer(x if direct else x * 1.0)
        (out * out).sum().backward()
        kept.append([n.step_grads for n in walk(out) if isinstance(n, fused.FusedPass)])
    for a, b in zip(*kept):
        for name in a:
            for t in a[name]:
                np.testing.assert_allclose(a[name][t], b[name][t], **EXACT)


def test_a_projected_layer_draws_its_steps(tmp_path):
    import viz
    emb, layer = build("gru", num_layers=2)
    ids = np.random.default_rng(14).integers(0, 7, (4, 2))
    out, _ = layer(emb(ids))
    assert projected_passes(out)
    dot = viz.to_dot((out * out).sum(), detail="cells")
    assert "gru_fused" not in dot and "GRU cell" in dot


def test_fused_pass_checks_its_index():
    table, h0, w_hh = tr.Tensor(np.zeros((5, 16))), tr.Tensor(np.zeros((2, 4))), tr.Tensor(np.zeros((16, 4)))
    w_ih = tr.Tensor(np.zeros((16, 3)))
    for index, error, match in [(np.array([[0, 5]]), IndexError, r"index spans \[0, 5\] but the table has 5 rows"),
                                (np.array([[-1, 0]]), IndexError, "index spans"),
                                (np.zeros((1, 2)), ValueError, "index must be an integer array"),
                                (np.zeros(2, int), ValueError, r"index must be an integer array \(T, B\)")]:
        with pytest.raises(error, match=match):
            fused.fused_pass("lstm", table, h0, None, None, w_hh, index=index)
    with pytest.raises(ValueError, match="with an index the input must be a projected table"):
        fused.fused_pass("lstm", table, h0, None, w_ih, w_hh, index=np.zeros((1, 2), int))
    with pytest.raises(ValueError, match=r"\(rows, 16\) beside an index"):
        fused.fused_pass("lstm", tr.Tensor(np.zeros((5, 12))), h0, None, None, w_hh, index=np.zeros((1, 2), int))


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_a_row_never_looked_up_changes_nothing_even_when_it_is_nan(mode, order):
    """Only the rows the index reads are projected: NaN or Inf in another row reaches no gradient, as
    in the unprojected pass and in torch."""
    emb, layer = build(mode)
    with tr.no_grad():
        emb.weight.array[6] = np.nan
        emb.weight.array[5] = np.inf
    ids = np.random.default_rng(12).integers(0, 5, (6, 2))   # rows 5 and 6 are never read
    projected = run(emb, layer, ids, direct=True)
    (node,) = projected_passes(layer(emb(ids))[0])
    assert node.parents[0].parents[0].op == {"host": "lookup", "gpu": "where"}[order]
    assert all(np.all(np.isfinite(g)) for name, g in projected[1].items() if name != "emb.weight")
    assert_same(projected, run(emb, layer, ids, direct=False))
