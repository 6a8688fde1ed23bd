"""torch's remaining shape, construction, indexing and sampling pieces (shape_extras.py, sampling.py):
values, dtypes and gradients against torch in float64, views where torch gives views, torch's errors,
and the same random draws after the same seed."""
import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinygrad_rnn as tr

pytestmark = pytest.mark.usefixtures("torch_default_float32")   # dtypes are compared


def _outputs(result):
    return list(result) if isinstance(result, (tuple, list)) else [result]


def _check(call, shapes, seed=0, values=None):
    """call(lib, *tensors) on float64 inputs of `shapes` (or `values`), ours against torch's: the values,
    dtypes and the gradients of a weighted sum of every output."""
    rng = np.random.default_rng(seed)
    arrays = values if values is not None else [rng.standard_normal(s) for s in shapes]
    ours_in = [tr.tensor(a, dtype=tr.float64, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    ours, theirs = _outputs(call(tr, *ours_in)), _outputs(call(torch, *theirs_in))
    assert len(ours) == len(theirs)
    our_loss, their_loss = 0, 0
    for a, b in zip(ours, theirs):
        assert a.shape == tuple(b.shape) and a.dtype == b.detach().numpy().dtype, (a.shape, b.shape)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-13, atol=1e-14)
        if b.requires_grad:
            weight = rng.standard_normal(tuple(b.shape))
            our_loss = our_loss + (a * tr.tensor(weight)).sum()
            their_loss = their_loss + (b * torch.tensor(weight)).sum()
    if isinstance(their_loss, torch.Tensor):
        our_loss.backward()
        their_loss.backward()
        for a, b in zip(ours_in, theirs_in):
            if b.grad is None:
                assert a.grad is None or not a.grad.numpy().any()
            else:
                np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-14)


def _long(lib, values):
    return lib.tensor(values, dtype=lib.int64)


CASES = {
    # broadcasting and stacking
    "broadcast_to": (lambda lib, a: lib.broadcast_to(a, (2, 3, 4)), [(3, 1)]),
    "broadcast_to -1": (lambda lib, a: a.broadcast_to((2, -1, 4)), [(3, 1)]),
    "broadcast_tensors": (lambda lib, a, b, c: lib.broadcast_tensors(a, b, c), [(3, 1), (4,), ()]),
    "hstack 1-D": (lambda lib, a, b: lib.hstack([a, b]), [(3,), (2,)]),
    "hstack 2-D": (lambda lib, a, b: lib.hstack((a, b)), [(2, 3), (2, 1)]),
    "vstack": (lambda lib, a, b: lib.vstack([a, b]), [(3,), (2, 3)]),
    "row_stack": (lambda lib, a, b: lib.row_stack([a, b]), [(3,), (3,)]),
    "dstack": (lambda lib, a, b, c: lib.dstack([a, b, c]), [(3,), (1, 3), (1, 3, 2)]),
    "column_stack": (lambda lib, a, b, c: lib.column_stack([a, b, c]), [(3,), (3, 2), (3,)]),
    "concat": (lambda lib, a, b: lib.concat([a, b], dim=1), [(2, 3), (2, 1)]),
    "concatenate": (lambda lib, a, b: lib.concatenate([a, b], axis=0), [(2, 3), (1, 3)]),
    "atleast_1d": (lambda lib, a, b: lib.atleast_1d(a, b), [(), (2, 2)]),
    "atleast_2d": (lambda lib, a, b, c: lib.atleast_2d([a, b, c]), [(), (3,), (2, 2)]),
    "atleast_3d": (lambda lib, a, b, c, d: lib.atleast_3d(a, b, c, d), [(), (3,), (2, 3), (1, 2, 3)]),
    "atleast_3d one": (lambda lib, a: lib.atleast_3d(a), [(3,)]),
    "meshgrid ij": (lambda lib, a, b, c: lib.meshgrid(a, b, c, indexing="ij"), [(2,), (3,), ()]),
    "meshgrid xy": (lambda lib, a, b, c: lib.meshgrid([a, b, c], indexing="xy"), [(2,), (3,), (4,)]),
    "block_diag": (lambda lib, a, b, c: lib.block_diag(a, b, c), [(2, 3), (), (2,)]),
    "cartesian_prod": (lambda lib, a, b, c: lib.cartesian_prod(a, b, c), [(2,), (3,), (2,)]),
    "combinations": (lambda lib, a: lib.combinations(a), [(4,)]),
    "combinations r=3 replacement": (lambda lib, a: lib.combinations(a, r=3, with_replacement=True), [(3,)]),
    "combinations r=0": (lambda lib, a: lib.combinations(a, 0), [(3,)]),
    "combinations r>n": (lambda lib, a: lib.combinations(a, 4), [(3,)]),
    # splitting
    "tensor_split sections": (lambda lib, a: a.tensor_split(3, dim=1), [(2, 7)]),
    "tensor_split more sections": (lambda lib, a: lib.tensor_split(a, 5), [(3, 2)]),
    "tensor_split indices": (lambda lib, a: lib.tensor_split(a, [1, 4, 2, 9], dim=-1), [(2, 6)]),
    "tensor_split tensor sections": (lambda lib, a: a.tensor_split(_long(lib, 3)), [(7,)]),
    "tensor_split tensor indices": (lambda lib, a: a.tensor_split(_long(lib, [1, 5])), [(7,)]),
    "hsplit": (lambda lib, a: lib.hsplit(a, 2), [(3, 4)]),
    "hsplit 1-D indices": (lambda lib, a: a.hsplit([2, 3]), [(5,)]),
    "vsplit": (lambda lib, a: a.vsplit([1]), [(3, 4)]),
    "dsplit": (lambda lib, a: lib.dsplit(a, 2), [(1, 2, 4)]),
    "split_with_sizes": (lambda lib, a: a.split_with_sizes([1, 3, 0], dim=1), [(2, 4)]),
    # flips, diagonals, scatters
    "fliplr": (lambda lib, a: lib.fliplr(a), [(2, 3, 2)]),
    "flipud": (lambda lib, a: a.flipud(), [(3,)]),
    "diag_embed": (lambda lib, a: lib.diag_embed(a), [(2, 3)]),
    "diag_embed offset dims": (lambda lib, a: a.diag_embed(offset=-1, dim1=0, dim2=2), [(2, 3)]),
    "diag_embed positive offset": (lambda lib, a: a.diag_embed(2, 1, 0), [(3,)]),
    "diagflat": (lambda lib, a: lib.diagflat(a, 1), [(2, 2)]),
    "select": (lambda lib, a: lib.select(a, 1, -1), [(2, 3, 2)]),
    "select_scatter": (lambda lib, a, b: lib.select_scatter(a, b, 1, 0), [(2, 3), (2,)]),
    "slice_scatter": (lambda lib, a, b: a.slice_scatter(b, dim=1, start=1, end=None, step=2), [(2, 5), (2, 2)]),
    "slice_scatter default": (lambda lib, a, b: lib.slice_scatter(a, b), [(3, 2), (3, 2)]),
    "diagonal_scatter": (lambda lib, a, b: lib.diagonal_scatter(a, b, 1), [(3, 4), (3,)]),
    "diagonal_scatter dims": (lambda lib, a, b: a.diagonal_scatter(b, -1, 2, 0), [(3, 2, 3), (2, 2)]),
    # windows and reshapes
    "unfold": (lambda lib, a: a.unfold(1, 3, 2), [(2, 7, 3)]),
    "unfold last": (lambda lib, a: a.unfold(-1, 2, 1), [(4,)]),
    "unfold 0-d": (lambda lib, a: a.unfold(0, 1, 1), [()]),
    "unfold empty": (lambda lib, a: a.unfold(0, 0, 2), [(3,)]),
    "ravel": (lambda lib, a: lib.ravel(a.transpose(0, 1)), [(2, 3)]),
    "narrow_copy": (lambda lib, a: lib.narrow_copy(a, 1, 1, 2), [(2, 4)]),
    "sum_to_size": (lambda lib, a: a.sum_to_size(3, 1), [(2, 3, 4)]),
    "sum_to_size tuple": (lambda lib, a: a.sum_to_size((1, 4)), [(3, 4)]),
    "unflatten": (lambda lib, a: lib.unflatten(a, 1, (2, -1)), [(3, 6)]),
    "mH adjoint": (lambda lib, a: (a.mH, a.adjoint(), lib.adjoint(a)), [(2, 3, 4)]),
    "H": (lambda lib, a: a.H, [(2, 3)]),
    # products
    "vdot": (lambda lib, a, b: lib.vdot(a, b), [(4,), (4,)]),
    "tensordot int": (lambda lib, a, b: lib.tensordot(a, b, 2), [(2, 3, 4), (3, 4, 5)]),
    "tensordot lists": (lambda lib, a, b: lib.tensordot(a, b, dims=([0, 2], [2, 1])), [(2, 3, 4), (5, 4, 2)]),
    "tensordot zero": (lambda lib, a, b: lib.tensordot(a, b, 0), [(2,), (3,)]),
    "cross dim": (lambda lib, a, b: lib.cross(a, b, dim=0), [(3, 2), (3, 1)]),
    "cross last": (lambda lib, a, b: a.cross(b, dim=-1), [(2, 3), (2, 3)]),
    "cdist": (lambda lib, a, b: lib.cdist(a, b), [(4, 3), (5, 3)]),
    "cdist batched p=1": (lambda lib, a, b: lib.cdist(a, b, p=1.0), [(2, 4, 3), (2, 5, 3)]),
    "cdist p=3": (lambda lib, a, b: lib.cdist(a, b, 3), [(3, 2), (2, 2)]),
    "cdist p=inf": (lambda lib, a, b: lib.cdist(a, b, math.inf), [(3, 2), (2, 2)]),
    "cdist p=0": (lambda lib, a, b: lib.cdist(a, b, 0), [(3, 2), (2, 2)]),
    "cdist mm mode": (lambda lib, a, b: lib.cdist(a, b, compute_mode="use_mm_for_euclid_dist"), [(30, 3), (27, 3)]),
    # integrals
    "trapezoid": (lambda lib, a: lib.trapezoid(a), [(3, 5)]),
    "trapezoid dx": (lambda lib, a: lib.trapezoid(a, dx=0.5, dim=0), [(3, 5)]),
    "trapezoid x": (lambda lib, a, x: lib.trapezoid(a, x), [(3, 5), (5,)]),
    "trapezoid x same shape": (lambda lib, a, x: lib.trapezoid(a, x, dim=0), [(3, 2), (3, 2)]),
    "trapz": (lambda lib, a, x: lib.trapz(a, x), [(2, 4), (4,)]),
    "trapz dx": (lambda lib, a: lib.trapz(a, dx=2.0), [(2, 4)]),
    "trapezoid empty": (lambda lib, a: lib.trapezoid(a), [(2, 0)]),
    "cumulative_trapezoid": (lambda lib, a: lib.cumulative_trapezoid(a, dim=0), [(4, 2)]),
    "cumulative_trapezoid x": (lambda lib, a, x: lib.cumulative_trapezoid(a, x), [(2, 5), (5,)]),
    # statistics
    "quantile": (lambda lib, a: lib.quantile(a, 0.3), [(3, 4)]),
    "quantile dim keepdim": (lambda lib, a: a.quantile(0.75, dim=1, keepdim=True), [(3, 5)]),
    "quantile keepdim all": (lambda lib, a: a.quantile(0.5, keepdim=True), [(2, 3)]),
    "nanquantile": (lambda lib, a: lib.nanquantile(a, 0.4, dim=0), [(4, 3)]),
}
INTERPOLATION_CASES = {
    f"{op} {mode}": (lambda lib, a, q, op=op, mode=mode: getattr(lib, op)(a, q, dim=-1, interpolation=mode),
                     [(3, 6), (4,)])
    for op in ("quantile", "nanquantile") for mode in ("linear", "lower", "higher", "midpoint", "nearest")}


@pytest.mark.parametrize("name", CASES)
def test_against_torch(name):
    call, shapes = CASES[name]
    _check(call, shapes)


@pytest.mark.parametrize("name", INTERPOLATION_CASES)
def test_quantiles_with_nans_against_torch(name):
    call, _ = INTERPOLATION_CASES[name]
    data = np.random.default_rng(1).standard_normal((3, 6))
    data[1, [0, 4]] = np.nan
    data[2, :] = np.nan
    q = np.array([0.0, 0.25, 0.5, 1.0])  # ranks that land on elements and between them, halfway included
    _check(call, None, values=[data, q])


def test_nanmedian_and_mode_against_torch():
    data = np.array([[1.5, np.nan, -2.0, 3.0], [np.nan] * 4, [4.0, 1.0, 2.0, 0.5]])
    _check(lambda lib, a: lib.nanmedian(a), None, values=[data])
    _check(lambda lib, a: a.nanmedian(), None, values=[data[2:]])
    _check(lambda lib, a: lib.nanmedian(a, 1, keepdim=True)[0], None, values=[data[[0, 2]]])
    assert np.isnan(tr.tensor(data).nanmedian(1).values.numpy()[1])  # a row of NaNs gives NaN
    ours, theirs = tr.tensor(data).nanmedian(1), torch.tensor(data).nanmedian(1)
    np.testing.assert_array_equal(ours.indices.numpy()[[0, 2]], theirs.indices.numpy()[[0, 2]])
    repeats = np.array([[1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0], [5.0, 4.0, 4.0, 5.0, 0.0, 9.0, 9.0]])
    _check(lambda lib, a: tuple(lib.mode(a, keepdim=True)), None, values=[repeats])
    _check(lambda lib, a: tuple(a.mode(0)), None, values=[repeats])


def test_integer_results_equal_torch():
    pairs = [
        (lambda lib: lib.tril_indices(3, 4, 1), None),
        (lambda lib: lib.triu_indices(4, 3, -1), None),
        (lambda lib: lib.tril_indices(0, 3), None),
        (lambda lib: lib.triu_indices(3, 3, dtype=lib.int32), None),
        (lambda lib: lib.unravel_index(_long(lib, [[5, 0], [7, -1]]), (2, 3)), None),
        (lambda lib: lib.unravel_index(_long(lib, 22), lib.Size([2, 3, 4]) if lib is torch else (2, 3, 4)), None),
        (lambda lib: lib.argwhere(_long(lib, [[0, 1], [2, 0]])), None),
        (lambda lib: _long(lib, [1, 1, 2, 2, 3, 1, 1]).unique_consecutive(return_inverse=True, return_counts=True),
         None),
        (lambda lib: lib.unique_consecutive(_long(lib, [[1, 1], [2, 2]]), return_inverse=True), None),
        (lambda lib: lib.unique_consecutive(_long(lib, [[1, 1, 2], [1, 1, 3]]), dim=1, return_counts=True), None),
        (lambda lib: lib.unique_consecutive(_long(lib, [[1, 1], [1, 1], [2, 3]]), dim=0, return_inverse=True), None),
        (lambda lib: lib.block_diag(_long(lib, [1, 2]), lib.tensor(2.5)), None),
        (lambda lib: lib.tensordot(_long(lib, [[1, 2], [3, 4]]), _long(lib, [[1, 0], [2, 1]])), None),
        (lambda lib: lib.broadcast_to(lib.tensor([True, False]), (3, 2)), None),
        (lambda lib: lib.combinations(_long(lib, [3, 1, 2]), 2), None),
        (lambda lib: lib.scalar_tensor(3), None),
        (lambda lib: lib.scalar_tensor(2, dtype=lib.int32), None),
    ]
    for call, _ in pairs:
        ours, theirs = _outputs(call(tr)), _outputs(call(torch))
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert a.dtype == b.numpy().dtype and a.shape == tuple(b.shape)
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert tr.broadcast_shapes((2, 1), (3,), 1, ()) == tuple(torch.broadcast_shapes((2, 1), (3,), 1, ()))
    assert tr.cartesian_prod(*[tr.ones(2)]).shape == (2,)


# ----------------------------------------------------------------------------- views, versions

@pytest.mark.parametrize("make", [
    lambda lib, x: lib.broadcast_to(x[0], (2, 3)),
    lambda lib, x: lib.broadcast_tensors(x, x[:1])[1],
    lambda lib, x: lib.meshgrid(x[0], x[1], indexing="ij")[0],
    lambda lib, x: lib.atleast_3d(x),
    lambda lib, x: x.tensor_split(2, dim=1)[1],
    lambda lib, x: x.hsplit([1])[1],
    lambda lib, x: x.split_with_sizes([1, 1], 0)[1],
    lambda lib, x: x.select(1, 2),
    lambda lib, x: x.ravel(),
    lambda lib, x: x.mH,
    lambda lib, x: x.adjoint(),
])
def test_views_share_memory_and_version(make):
    """A write through the source is seen by the view, and the version counter is shared, as torch's."""
    for lib in (tr, torch):
        x = lib.tensor(np.arange(6.0).reshape(2, 3))
        view = make(lib, x)
        before = view._version
        x.add_(1)
        assert view._version == before + 1
        np.testing.assert_array_equal(view.numpy(), make(lib, x).numpy())


def test_view_writes_reach_the_source_and_copies_do_not():
    x = tr.zeros(2, 3, dtype=tr.float64)
    x.select(0, 1).fill_(2.0)
    x.tensor_split(3, 1)[0].fill_(1.0)
    np.testing.assert_array_equal(x.numpy(), [[1, 0, 0], [1, 2, 2]])
    for copy in (x.narrow_copy(1, 0, 2), x.fliplr(), x.diag_embed(), tr.block_diag(x), x.unfold(1, 2, 1)):
        copy.fill_(7.0)
    np.testing.assert_array_equal(x.numpy(), [[1, 0, 0], [1, 2, 2]])


def test_second_order_gradients():
    for make in (lambda lib, a: lib.tensordot(a.unsqueeze(1), a.unsqueeze(0) ** 2, 1) ** 2, lambda lib, a: a.unfold(0, 2, 1) ** 3,
                 lambda lib, a: lib.quantile(a ** 2, 0.3) ** 2, lambda lib, a: lib.diag_embed(a) ** 3):
        grads = []
        for lib in (tr, torch):
            a = lib.tensor([0.3, -1.2, 2.0], dtype=lib.float64, requires_grad=True)
            (g,) = lib.autograd.grad(make(lib, a).sum(), a, create_graph=True)
            (gg,) = lib.autograd.grad((g * lib.tensor([1.0, 2.0, -1.0], dtype=lib.float64)).sum(), a)
            grads.append((g.detach().numpy(), gg.numpy()))
        for ours, theirs in zip(*grads):
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_layout_questions():
    for lib in (tr, torch):
        x = lib.ones(2, 3, 4)
        assert x.stride() == (12, 4, 1) and x.stride(-2) == 4
        assert x.transpose(0, 2).stride() == (1, 4, 12)
        assert x[:, 1:, 2:].storage_offset() == 6 and x[1].storage_offset() == 12
        assert lib.ones(3, 1).expand(3, 4).stride() == (1, 0)
        assert x.is_cpu and x.get_device() == -1
        assert x.is_same_size(lib.zeros(2, 3, 4)) and not x.is_same_size(lib.zeros(3))
        assert lib.tensor([0.5]).is_nonzero() and not lib.is_nonzero(lib.tensor([[0]]))


def test_asarray_and_new():
    t = tr.ones(2, dtype=tr.float64, requires_grad=True)
    assert tr.asarray(t) is t
    array = np.arange(3.0)
    shared = tr.asarray(array)
    array[0] = 5.0
    assert shared.dtype == tr.float64 and shared[0].item() == 5.0
    copied = tr.asarray(array, copy=True)
    assert copied.numpy()[0] == 5.0 and not np.shares_memory(copied.numpy(), array)
    assert tr.asarray(array, dtype=tr.float32).dtype == tr.float32
    assert tr.asarray([1, 2.0]).dtype == torch.asarray([1, 2.0]).numpy().dtype
    assert tr.asarray(3).dtype == tr.int64 and tr.asarray([1.0], requires_grad=True).requires_grad
    with pytest.raises(ValueError):
        tr.asarray(array, dtype=tr.float32, copy=False)
    x = tr.ones(2, 3, dtype=tr.float64)
    assert x.new().shape == (0,) and x.new(2, 2).shape == (2, 2) and x.new((4,)).dtype == tr.float64
    np.testing.assert_array_equal(x.new([1, 2]).numpy(), torch.ones(1, dtype=torch.float64).new([1, 2]).numpy())


def test_resize_fresh_tensor_as_torch_and_refuse_others():
    for lib in (tr, torch):
        x = lib.arange(6.0)
        assert x.resize_(2, 2) is x and x.shape == (2, 2) and x.tolist() == [[0, 1], [2, 3]]
        assert x.resize_(5).tolist() == [0, 1, 2, 3, 4]  # the storage kept its elements
        assert x.resize_(3, 3).reshape(-1).tolist()[:6] == [0, 1, 2, 3, 4, 5]
    with pytest.raises(RuntimeError, match="fresh"):
        tr.ones(3, requires_grad=True).resize_(4)
    with pytest.raises(RuntimeError, match="fresh"):
        tr.ones(4)[1:].resize_(2)


# ----------------------------------------------------------------------------- errors

ERRORS = [
    (lambda lib: lib.broadcast_to(lib.ones(3), (2, 4)), RuntimeError),
    (lambda lib: lib.broadcast_shapes((2, 3), (4,)), RuntimeError),
    (lambda lib: lib.ones(3, 4).hsplit(3), RuntimeError),
    (lambda lib: lib.ones(3).vsplit(1), RuntimeError),
    (lambda lib: lib.ones(3).select(0, 3), IndexError),
    (lambda lib: lib.ones(3).unfold(0, 4, 1), RuntimeError),
    (lambda lib: lib.ones(3).unfold(0, 2, 0), RuntimeError),
    (lambda lib: lib.ones(3).mH, RuntimeError),
    (lambda lib: lib.ones(2, 2, 2).H, RuntimeError),
    (lambda lib: lib.ones(3).adjoint(), RuntimeError),
    (lambda lib: lib.ones(2, 3).sum_to_size(3, 3), RuntimeError),
    (lambda lib: lib.ones(3).quantile(1.5), RuntimeError),
    (lambda lib: lib.arange(3).quantile(0.5), RuntimeError),
    (lambda lib: lib.ones(3).vdot(lib.ones(3, dtype=lib.float64)), RuntimeError),
    (lambda lib: lib.unravel_index(lib.tensor(1.0), (2, 3)), TypeError),
    (lambda lib: lib.ones(3).is_nonzero(), RuntimeError),
    (lambda lib: lib.ones(0).is_nonzero(), RuntimeError),
    (lambda lib: lib.ones(4, 2).cross(lib.ones(4, 2)), RuntimeError),
    (lambda lib: lib.fliplr(lib.ones(3)), RuntimeError),
    (lambda lib: lib.meshgrid(lib.ones(2, 2)), RuntimeError),
    (lambda lib: lib.ones(2, 3).split_with_sizes([1, 1], 1), RuntimeError),
    (lambda lib: lib.select_scatter(lib.ones(2, 3), lib.ones(2), 0, 0), RuntimeError),
    (lambda lib: lib.tensordot(lib.ones(2, 3), lib.ones(2, 3), dims=([0], [1])), RuntimeError),
    (lambda lib: lib.block_diag(lib.ones(1, 1, 1)), RuntimeError),
    (lambda lib: lib.combinations(lib.ones(2, 2)), RuntimeError),
]


@pytest.mark.parametrize("call, error", ERRORS)
def test_errors_of_torchs_types(call, error):
    for lib in (torch, tr):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(error):
                call(lib)


def test_cross_without_dim_warns_as_torch():
    with pytest.warns(UserWarning, match="without specifying the dim"):
        out = tr.cross(tr.ones(3, 2), tr.arange(6.0).reshape(3, 2))
    expected = torch.cross(torch.ones(3, 2), torch.arange(6.0).reshape(3, 2), dim=0)  # torch warns once only
    np.testing.assert_array_equal(out.numpy(), expected.numpy())


def test_meshgrid_default_is_ij_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grids = tr.meshgrid(tr.arange(2), tr.arange(3))
    assert [g.shape for g in grids] == [(2, 3), (2, 3)]


# ----------------------------------------------------------------------------- random draws

def _drawn(call, seed=5):
    tr.manual_seed(seed)
    torch.manual_seed(seed)
    return call(tr), call(torch)


DRAWS = {
    "normal tensor tensor": lambda lib: lib.normal(lib.arange(20.0, dtype=lib.float64).reshape(4, 5),
                                                   lib.linspace(0.5, 2, 5, dtype=lib.float64)),
    "normal tensor float": lambda lib: lib.normal(lib.arange(18.0), 2.0),
    "normal float tensor": lambda lib: lib.normal(1.5, lib.full((3,), 2.0, dtype=lib.float64)),
    "normal float float": lambda lib: lib.normal(2.0, 3.0, (20,)),
    "normal float float small": lambda lib: lib.normal(2.0, 3.0, size=(2, 3), dtype=lib.float64),
    "normal generator": lambda lib: lib.normal(0.0, 1.0, (17,), generator=lib.Generator().manual_seed(2)),
    "bernoulli float64 p": lambda lib: lib.bernoulli(lib.linspace(0, 1, 30, dtype=lib.float64)),
    "bernoulli float32 p": lambda lib: lib.linspace(0, 1, 30).bernoulli(),
    "bernoulli p=": lambda lib: lib.bernoulli(lib.zeros(25, dtype=lib.float64), 0.3),
    "bernoulli_": lambda lib: lib.zeros(25).bernoulli_(0.7),
    "bernoulli_ tensor": lambda lib: lib.zeros(4, 5, dtype=lib.float64).bernoulli_(lib.linspace(0, 1, 5)),
    "poisson": lambda lib: lib.poisson(lib.tensor([0.0, 0.5, 3.0, 9.9, 10.0, 25.0, 300.0] * 3, dtype=lib.float64)),
    "randint_like": lambda lib: lib.randint_like(lib.ones(3, 4), 3, 10),
    "randint_like high": lambda lib: lib.randint_like(lib.ones(5, dtype=lib.int64), 2 ** 40),
    "random_ float32": lambda lib: lib.empty(6).random_(),
    "random_ float64": lambda lib: lib.empty(6, dtype=lib.float64).random_(),
    "random_ int64": lambda lib: lib.empty(6, dtype=lib.int64).random_(),
    "random_ int32": lambda lib: lib.empty(6, dtype=lib.int32).random_(),
    "random_ uint8": lambda lib: lib.empty(6, dtype=lib.uint8).random_(),
    "random_ bool": lambda lib: lib.empty(6, dtype=lib.bool).random_(),
    "random_ to": lambda lib: lib.empty(6, dtype=lib.int64).random_(7),
    "random_ from to": lambda lib: lib.empty(6).random_(-3, 10),
    "exponential_": lambda lib: lib.empty(7, dtype=lib.float64).exponential_(2.0),
    "exponential_ float32": lambda lib: lib.empty(7).exponential_(),
    "geometric_": lambda lib: lib.empty(7, dtype=lib.float64).geometric_(0.3),
    "log_normal_": lambda lib: lib.empty(7, dtype=lib.float64).log_normal_(0.5, 0.25),
    "cauchy_": lambda lib: lib.empty(7, dtype=lib.float64).cauchy_(1.0, 2.0),
}


@pytest.mark.parametrize("name", DRAWS)
def test_draws_equal_torchs_after_the_same_seed(name):
    ours, theirs = _drawn(DRAWS[name])
    assert ours.dtype == theirs.numpy().dtype and ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-13, atol=0)
    # the stream goes on from the same place
    np.testing.assert_array_equal(tr.rand(3, dtype=tr.float64).numpy(), torch.rand(3, dtype=torch.float64).numpy())


def test_in_place_draws_follow_the_in_place_rules():
    x = tr.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x.exponential_()
    y = tr.zeros(3)
    before = y._version
    assert y.cauchy_() is y and y._version == before + 1
    with pytest.raises(RuntimeError):
        tr.zeros(3).bernoulli_(1.5)
    with pytest.raises(RuntimeError):
        tr.normal(tr.zeros(2), -1.0)
