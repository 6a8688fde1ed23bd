"""tr.linalg against torch.linalg in float64: values, gradients and second derivatives, batched inputs,
forward mode, the Tensor methods and tr.* functions, and torch's errors.

Each case is written once as fn(lib, *inputs) and run with lib = tr and lib = torch. Factor outputs whose
sign is free (eigenvectors, singular vectors) enter losses only through gauge-invariant products.
Tolerances: values rtol 1e-12, gradients 1e-10 (the factorisations' gradients divide by eigenvalue gaps
and solve with R or L, which costs a few digits on these inputs), atol 1e-12 throughout."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinygrad_rnn as tr
import tinygrad_rnn.linalg
from tinygrad_rnn import ops

F64 = {tr: tr.float64, torch: torch.float64}
VALUES, GRADS = {"rtol": 1e-12, "atol": 1e-12}, {"rtol": 1e-10, "atol": 1e-12}


def _rng(seed):
    return np.random.default_rng(seed)


def general(*shape, seed=0):
    return _rng(seed).standard_normal(shape)


def invertible(*shape, seed=0):
    """Well conditioned: a random matrix plus a multiple of the identity."""
    return general(*shape, seed=seed) + 3 * np.eye(shape[-1])


def spd(*shape, seed=0):
    a = general(*shape, seed=seed)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


def symmetric(*shape, seed=0):
    a = general(*shape, seed=seed)
    return a + np.swapaxes(a, -1, -2)


def sym(lib, a):
    """The symmetric part, so that finite differences and torch see the same function of every element."""
    return (a + a.mT) / 2


def _numpy(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.numpy()


def eigh_invariants(L, a):
    w, v = L.linalg.eigh(sym(L, a))
    return w, v * v, (v * w.unsqueeze(-2)) @ v.mT


def svd_invariants(L, a, full_matrices=False):
    """S, U Vh and the squares of the first k singular vectors (full_matrices: the rest have no gradient)."""
    u, s, vh = L.linalg.svd(a, full_matrices=full_matrices)
    u, vh = u[..., :s.shape[-1]], vh[..., :s.shape[-1], :]
    return s, u @ vh, u * u, vh * vh


def old_svd_invariants(L, a):
    u, s, v = L.tensor(a).svd()
    return s, u @ v.mT


def _flat(out):
    return list(out) if isinstance(out, tuple) else [out]


# name -> (fn(lib, *inputs), input arrays); every output is differentiable and gauge invariant
CASES = {
    "inv": (lambda L, a: L.linalg.inv(a), [invertible(2, 3, 3)]),
    "det": (lambda L, a: L.linalg.det(a), [general(2, 4, 4)]),
    "slogdet": (lambda L, a: L.linalg.slogdet(a).logabsdet, [general(3, 3, 3, seed=1)]),
    "solve_matrix": (lambda L, a, b: L.linalg.solve(a, b), [invertible(2, 3, 3), general(2, 3, 2)]),
    "solve_vector": (lambda L, a, b: L.linalg.solve(a, b), [invertible(2, 3, 3), general(3)]),
    "solve_batched_vector": (lambda L, a, b: L.linalg.solve(a, b), [invertible(2, 3, 3), general(2, 3)]),
    "solve_broadcast": (lambda L, a, b: L.linalg.solve(a, b), [invertible(3, 3), general(4, 3, 2)]),
    "solve_right": (lambda L, a, b: L.linalg.solve(a, b, left=False), [invertible(2, 3, 3), general(2, 4, 3)]),
    "solve_triangular": (lambda L, a, b: L.linalg.solve_triangular(a, b, upper=True), [invertible(3, 3),
                                                                                       general(3, 2)]),
    "cholesky": (lambda L, a: L.linalg.cholesky(sym(L, a)), [spd(2, 3, 3)]),
    "cholesky_upper": (lambda L, a: L.linalg.cholesky(sym(L, a), upper=True), [spd(3, 3)]),
    "qr_tall": (lambda L, a: L.linalg.qr(a), [general(2, 4, 3)]),
    "qr_wide": (lambda L, a: L.linalg.qr(a), [general(3, 5)]),
    "qr_complete_square": (lambda L, a: L.linalg.qr(a, mode="complete"), [general(3, 3)]),
    "eigh": (eigh_invariants, [symmetric(2, 3, 3)]),
    "eigh_upper": (lambda L, a: L.linalg.eigh(a, UPLO="U").eigenvalues, [symmetric(3, 3)]),
    "eigvalsh": (lambda L, a: L.linalg.eigvalsh(sym(L, a)), [symmetric(2, 4, 4)]),
    "svd_tall": (svd_invariants, [general(2, 4, 3)]),
    "svd_wide": (svd_invariants, [general(3, 5)]),
    "svd_full": (lambda L, a: svd_invariants(L, a, full_matrices=True), [general(4, 3)]),
    "svdvals": (lambda L, a: L.linalg.svdvals(a), [general(2, 3, 5)]),
    # composites: parity only
    "vector_norm": (lambda L, a: L.linalg.vector_norm(a), [general(2, 3, 4)]),
    "vector_norm_ord": (lambda L, a: L.linalg.vector_norm(a, ord=3, dim=(0, 2), keepdim=True), [general(2, 3, 4)]),
    "vector_norm_inf": (lambda L, a: L.linalg.vector_norm(a, ord=-np.inf, dim=1), [general(2, 3, 4)]),
    "vector_norm_half": (lambda L, a: L.linalg.vector_norm(a, ord=0.5, dim=-1), [general(2, 3, 4)]),
    "norm_default": (lambda L, a: L.linalg.norm(a), [general(2, 3, 4)]),
    "norm_vector_dim": (lambda L, a: L.linalg.norm(a, 1, dim=1), [general(2, 3, 4)]),
    "norm_2d_ord": (lambda L, a: L.linalg.norm(a, -np.inf), [general(3, 4)]),
    "norm_1d_ord": (lambda L, a: L.linalg.norm(a, 4), [general(5)]),
    "vecdot": (lambda L, a, b: L.linalg.vecdot(a, b, dim=0), [general(3, 4), general(3, 1)]),
    "cross": (lambda L, a, b: L.linalg.cross(a, b), [general(1, 2, 3), general(4, 1, 3)]),
    "cross_dim": (lambda L, a, b: L.linalg.cross(a, b, dim=0), [general(3, 2), general(3, 2, seed=1)]),
    "multi_dot": (lambda L, a, b, c: L.linalg.multi_dot([a, b, c]), [general(3), general(3, 4), general(4, 2)]),
    "multi_dot_vectors": (lambda L, a, b, c: L.linalg.multi_dot([a, b, c]), [general(3), general(3, 4), general(4)]),
    "matrix_power": (lambda L, a: L.linalg.matrix_power(a, 5), [general(2, 3, 3) / 2]),
    "matrix_power_negative": (lambda L, a: L.linalg.matrix_power(a, -3), [invertible(3, 3)]),
    "matrix_power_zero": (lambda L, a: L.linalg.matrix_power(a, 0) + a, [general(2, 3, 3)]),
    "diagonal": (lambda L, a: L.linalg.diagonal(a, offset=1), [general(2, 3, 4)]),
    "pinv": (lambda L, a: L.linalg.pinv(a), [general(2, 4, 3)]),
    "pinv_wide": (lambda L, a: L.linalg.pinv(a), [general(3, 5)]),
    "pinv_hermitian": (lambda L, a: L.linalg.pinv(sym(L, a), hermitian=True), [symmetric(3, 3)]),
    "lstsq": (lambda L, a, b: L.linalg.lstsq(a, b).solution, [general(2, 5, 3), general(2, 5, 2)]),
    "matrix_exp": (lambda L, a: L.linalg.matrix_exp(a), [general(2, 4, 4)]),
    "matrix_exp_large": (lambda L, a: L.linalg.matrix_exp(a), [3 * general(3, 3)]),
    "tensorinv": (lambda L, a: L.linalg.tensorinv(a, ind=1), [invertible(6, 6).reshape(6, 2, 3)]),
    "tensorsolve": (lambda L, a, b: L.linalg.tensorsolve(a, b), [invertible(6, 6).reshape(2, 3, 6), general(2, 3)]),
}
MATRIX_NORMS = ["fro", "nuc", np.inf, -np.inf, 1, -1, 2, -2]
for _ord in MATRIX_NORMS:
    CASES[f"matrix_norm_{_ord}"] = (lambda L, a, o=_ord: L.linalg.matrix_norm(a, ord=o), [general(2, 3, 4)])
CASES["matrix_norm_dims"] = (lambda L, a: L.linalg.matrix_norm(a, ord=1, dim=(2, 0), keepdim=True),
                             [general(2, 3, 4)])
CASES["matrix_norm_nuc_keepdim"] = (lambda L, a: L.linalg.matrix_norm(a, ord="nuc", dim=(0, 2), keepdim=True),
                                    [general(2, 3, 4)])

PRIMITIVE_CASES = {  # each new primitive, by a case above that reaches it
    ops.Inv: "inv", ops.Det: "det", ops.Slogdet: "slogdet", ops.Solve: "solve_broadcast", ops.Cholesky: "cholesky",
    ops.QR: "qr_tall", ops.Eigh: "eigh", ops.SVD: "svd_tall",
}


def _run(lib, name, order=1):
    """The case's values, then the gradient of a weighted sum of them (of its squared gradient too, order 2)."""
    fn, arrays = CASES[name]
    leaves = [lib.tensor(a, dtype=F64[lib], requires_grad=True) for a in arrays]
    outs = _flat(fn(lib, *leaves))
    loss = sum((o * lib.tensor(_rng(7).uniform(0.5, 1.5, tuple(o.shape)), dtype=F64[lib])).sum() for o in outs)
    grads = lib.autograd.grad(loss, leaves, create_graph=order == 2)
    if order == 2:
        grads = lib.autograd.grad(sum((g * g).sum() for g in grads), leaves)
    return [_numpy(o) for o in outs], [_numpy(g) for g in grads]


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_equal_torch(name):
    ours, theirs = _run(tr, name), _run(torch, name)
    for a, b in zip(ours[0], theirs[0]):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, **VALUES)
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(a, b, **GRADS)


@pytest.mark.parametrize("name", sorted(set(PRIMITIVE_CASES.values()) | {"solve_right", "qr_wide", "svd_wide",
                                                                            "eigvalsh", "cholesky_upper"}))
def test_second_derivatives_equal_torch(name):
    for a, b in zip(_run(tr, name, order=2)[1], _run(torch, name, order=2)[1]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def _small(name):
    """The case on a one-matrix slice of its inputs, so that finite differences stay quick."""
    fn, arrays = CASES[name]
    return (lambda *xs: fn(tr, *xs)), [tr.tensor(a[0] if a.ndim > 2 else a, dtype=tr.float64,
                                                 requires_grad=True) for a in arrays]


@pytest.mark.parametrize("op", list(PRIMITIVE_CASES), ids=lambda op: op.__name__)
def test_primitives_pass_gradcheck_and_gradgradcheck(op):
    fn, inputs = _small(PRIMITIVE_CASES[op])
    assert tr.gradcheck(fn, *inputs)
    assert tr.gradgradcheck(fn, *inputs)


@pytest.mark.parametrize("name", ["inv", "det", "slogdet", "solve_matrix", "cholesky", "qr_tall", "eigh", "svd_tall",
                                  "svd_wide", "svdvals", "pinv", "matrix_norm_nuc"])
def test_forward_mode_agrees_with_torchs_reverse_mode(name):
    """<w, J t> from our JVP equals <J^T w, t> from torch's VJP (torch.func itself takes seconds to load)."""
    fn, arrays = CASES[name]
    tangents = [general(*a.shape, seed=5) for a in arrays]
    outs = _flat(tr.func.jvp(lambda *xs: fn(tr, *xs), tuple(tr.tensor(a) for a in arrays),
                             tuple(tr.tensor(t) for t in tangents))[1])
    ours = sum((_numpy(o) * _rng(7).uniform(0.5, 1.5, o.shape)).sum() for o in outs)
    theirs = sum((g * t).sum() for g, t in zip(_run(torch, name)[1], tangents))
    np.testing.assert_allclose(ours, theirs, rtol=1e-11)


def test_factors_and_extra_fields_equal_torch():
    a = general(2, 4, 3)
    for lib_out, torch_out in [
        (tr.linalg.svd(tr.tensor(a)), torch.linalg.svd(torch.tensor(a))),
        (tr.linalg.qr(tr.tensor(a), mode="complete"), torch.linalg.qr(torch.tensor(a), mode="complete")),
        (tr.linalg.qr(tr.tensor(a), mode="r"), torch.linalg.qr(torch.tensor(a), mode="r")),
        (tr.linalg.eigh(tr.tensor(symmetric(3, 3))), torch.linalg.eigh(torch.tensor(symmetric(3, 3)))),
        (tr.linalg.slogdet(tr.tensor(-invertible(3, 3))), torch.linalg.slogdet(torch.tensor(-invertible(3, 3)))),
        (tr.linalg.lstsq(tr.tensor(a), tr.tensor(general(2, 4, 2))),
         torch.linalg.lstsq(torch.tensor(a), torch.tensor(general(2, 4, 2)))),
        *[(tr.linalg.lstsq(tr.tensor(a), tr.tensor(b), driver=driver),
           torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver))
          for driver in ("gels", "gelsy", "gelsd", "gelss") for b in (general(2, 4, 2), general(2, 4))],
    ]:
        assert type(lib_out).__name__ == type(torch_out).__name__ and len(lib_out) == len(torch_out)
        for ours, theirs in zip(lib_out, torch_out):
            assert ours.shape == theirs.shape and _numpy(ours).dtype == _numpy(theirs).dtype
            # a singular vector's sign is LAPACK's choice: compare up to it
            np.testing.assert_allclose(np.abs(_numpy(ours)), np.abs(_numpy(theirs)), **VALUES)
    rank = tr.linalg.matrix_rank(tr.tensor(general(2, 5, 2) @ general(2, 2, 4)))
    assert rank.dtype == tr.int64 and rank.tolist() == [2, 2]
    assert tr.linalg.matrix_rank(tr.tensor(np.eye(3) * [1, 1e-3, 1e-9]), atol=1e-6).tolist() == 2
    assert tr.linalg.matrix_rank(tr.tensor(symmetric(4, 4)), hermitian=True, rtol=0.5).item() == \
        torch.linalg.matrix_rank(torch.tensor(symmetric(4, 4)), hermitian=True, rtol=0.5).item()


def test_ex_variants_report_failures_as_torch():
    """info says which matrices failed, and the result there is what LAPACK leaves, as in torch."""
    singular = np.stack([np.eye(3), np.zeros((3, 3)), np.arange(9.0).reshape(3, 3), [[0, 1, 0], [0, 1, 0], [1, 0, 1]]])
    not_pd = np.stack([np.eye(3), np.diag([1.0, 1.0, -1.0]), [[1, 2, 0], [2, 1, 0], [0, 0, 1]], spd(3, 3)])
    for ours, theirs in [(tr.linalg.inv_ex(tr.tensor(singular)), torch.linalg.inv_ex(torch.tensor(singular))),
                         (tr.linalg.cholesky_ex(tr.tensor(not_pd)), torch.linalg.cholesky_ex(torch.tensor(not_pd))),
                         (tr.linalg.cholesky_ex(tr.tensor(not_pd), upper=True),
                          torch.linalg.cholesky_ex(torch.tensor(not_pd), upper=True))]:
        assert ours.info.dtype == tr.int32 and ours.info.tolist() == theirs.info.tolist()
        np.testing.assert_allclose(_numpy(ours[0]), _numpy(theirs[0]), **VALUES)
    with pytest.raises(tr.linalg.LinAlgError, match="Batch element 1"):
        tr.linalg.cholesky_ex(tr.tensor(not_pd), check_errors=True)
    with pytest.raises(tr.linalg.LinAlgError, match="Batch element 1"):
        tr.linalg.inv_ex(tr.tensor(singular), check_errors=True)


@pytest.mark.filterwarnings("ignore:.*(qr|cholesky) is deprecated")
def test_tensor_methods_and_functions_equal_torch():
    a, s = general(2, 4, 3), spd(3, 3)
    cases = {
        "det": lambda L: L.det(L.tensor(invertible(2, 3, 3))),
        "inverse": lambda L: L.tensor(invertible(3, 3)).inverse(),
        "logdet": lambda L: L.logdet(L.tensor(np.stack([invertible(3, 3), -invertible(3, 3), np.zeros((3, 3))]))),
        "slogdet": lambda L: L.tensor(invertible(3, 3)).slogdet().logabsdet,
        "cholesky": lambda L: L.tensor(s).cholesky(upper=True),
        "pinverse": lambda L: L.pinverse(L.tensor(a)),
        "matrix_power": lambda L: L.matrix_power(L.tensor(general(3, 3)), 3),
        "matrix_exp": lambda L: L.tensor(general(3, 3)).matrix_exp(),
        "qr": lambda L: L.qr(L.tensor(a)).R.abs(),
        "qr_complete": lambda L: L.tensor(a).qr(some=False).Q.abs(),
        "svd": lambda L: old_svd_invariants(L, a),
        "svd_full": lambda L: L.svd(L.tensor(a), some=False).U.abs(),
        "svd_values_only": lambda L: L.tensor(a).svd(compute_uv=False),
    }
    for name, fn in cases.items():
        for ours, theirs in zip(_flat(fn(tr)), _flat(fn(torch))):
            assert ours.shape == theirs.shape, name
            np.testing.assert_allclose(_numpy(ours), _numpy(theirs), err_msg=name, **VALUES)
    for name in ("qr", "cholesky"):
        with pytest.warns(UserWarning, match=f"tr.{name} is deprecated in favor of tr.linalg.{name}"):
            getattr(tr, name)(tr.tensor(s))


def test_dtypes_follow_the_input():
    a = tr.tensor(invertible(3, 3), dtype=tr.float32)
    for out in (tr.linalg.inv(a), tr.linalg.det(a), tr.linalg.svdvals(a), tr.linalg.matrix_exp(a),
                tr.linalg.norm(a), *tr.linalg.eigh(a), *tr.linalg.qr(a), tr.linalg.pinv(a)):
        assert out.dtype == tr.float32
    assert tr.linalg.vector_norm(a, dtype=tr.float64).dtype == tr.float64
    half = general(3, 3)
    for ord in ("fro", 1, np.inf):
        ours = tr.linalg.matrix_norm(tr.tensor(half, dtype=tr.float16), ord=ord)
        theirs = torch.linalg.matrix_norm(torch.tensor(half, dtype=torch.float16), ord=ord)
        assert ours.dtype == tr.float16 and ours.item() == theirs.item()
    with pytest.raises(RuntimeError, match="linalg.matrix_norm: Low precision dtypes not supported. Got Half"):
        tr.linalg.matrix_norm(tr.tensor(half, dtype=tr.float16), ord="nuc")
    assert tr.linalg.matrix_power(tr.tensor([[1, 1], [0, 1]]), 3).tolist() == [[1, 3], [0, 1]]


def test_the_singular_and_the_misshapen_raise_as_torch():
    d = tr.float64
    zeros, rect = tr.zeros(3, 3, dtype=d), tr.ones(2, 3, dtype=d)
    cases = [
        (lambda: tr.linalg.inv(zeros), tr.linalg.LinAlgError, ("linalg.inv: The diagonal element 1 is zero, the "
                                                                "inversion could not be completed because the input "
                                                                "matrix is singular.")),
        (lambda: tr.linalg.inv(tr.stack([tr.eye(3, dtype=d), zeros])), tr.linalg.LinAlgError,
         "linalg.inv: (Batch element 1): The diagonal element 1 is zero"),
        (lambda: tr.linalg.solve(zeros, tr.ones(3, dtype=d)), tr.linalg.LinAlgError,
         "torch.linalg.solve: The solver failed because the input matrix is singular."),
        (lambda: tr.linalg.cholesky(tr.tensor(np.diag([1.0, 1.0, -1.0]))), tr.linalg.LinAlgError,
         ("linalg.cholesky: The factorization could not be completed because the input is not positive-definite "
          "(the leading minor of order 3 is not positive-definite).")),
        (lambda: tr.linalg.matrix_power(zeros, -1), tr.linalg.LinAlgError, "linalg.inv: The diagonal element 1"),
        (lambda: tr.linalg.inv(rect), RuntimeError,
         "linalg.inv: A must be batches of square matrices, but they are 2 by 3 matrices"),
        (lambda: tr.linalg.det(tr.ones(3, dtype=d)), RuntimeError,
         "linalg.det: The input tensor A must have at least 2 dimensions."),
        (lambda: tr.linalg.inv(tr.eye(3, dtype=tr.int64)), RuntimeError,
         "linalg.inv: Expected a floating point or complex tensor as input. Got Long"),
        (lambda: tr.linalg.inv(tr.eye(3, dtype=tr.float16)), RuntimeError,
         "linalg.inv: Low precision dtypes not supported. Got Half"),
        (lambda: tr.linalg.solve(tr.eye(3, dtype=d), tr.ones(4, dtype=d)), RuntimeError,
         "linalg.solve: Incompatible shapes of A and B for the equation AX = B (3x3 and 4x1)"),
        (lambda: tr.linalg.solve(tr.eye(3, dtype=d).expand(2, 3, 3), tr.ones(5, 2, 3, dtype=d)), RuntimeError,
         "linalg.solve: Incompatible shapes of A and B for the equation AX = B (3x3 and 2x3)"),
        (lambda: tr.linalg.solve(tr.eye(3, dtype=d), tr.ones(3)), RuntimeError,
         "linalg.solve: Expected A and B to have the same dtype, but found A of type Double and B of type Float"),
        (lambda: tr.linalg.qr(rect, mode="x"), RuntimeError, "qr received unrecognized mode 'x'"),
        (lambda: tr.linalg.eigh(zeros, UPLO="X"), RuntimeError, "Expected UPLO argument to be 'L' or 'U', but got X"),
        (lambda: tr.linalg.matrix_norm(zeros, ord=3), RuntimeError, "linalg.matrix_norm: Order 3 not supported."),
        (lambda: tr.linalg.norm(tr.ones(2, 2, 2, dtype=d), ord=2), RuntimeError,
         "linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got 3D."),
        (lambda: tr.linalg.vector_norm(tr.ones(3, dtype=tr.int64)), RuntimeError,
         "linalg.vector_norm: Expected a floating point or complex tensor as input. Got Long"),
        (lambda: tr.linalg.vector_norm(rect, ord="fro"), TypeError, "argument 'ord' must be Number, not str"),
        (lambda: tr.linalg.cross(tr.ones(2, dtype=d), tr.ones(2, dtype=d)), RuntimeError,
         "linalg.cross: inputs dimension -1 must have length 3. Got 2 and 2"),
        (lambda: tr.linalg.cross(tr.ones(3, dtype=d), tr.ones(1, 3, dtype=d)), RuntimeError,
         "linalg.cross: inputs must have the same number of dimensions."),
        (lambda: tr.linalg.multi_dot([rect]), RuntimeError, "multi_dot(): expected at least 2 tensors but got 1"),
        (lambda: tr.linalg.multi_dot([rect, tr.ones(2, 3, 3, dtype=d)]), RuntimeError,
         "multi_dot(): the last tensor must be 1D or 2D but got 3D"),
        (lambda: tr.linalg.multi_dot([rect, rect]), RuntimeError,
         "multi_dot(): tensors 0 and 1 with shapes [2, 3] and [2, 3] cannot be multiplied"),
        (lambda: tr.linalg.matrix_exp(rect), RuntimeError, "linalg.matrix_exp: A must be batches of square matrices"),
        (lambda: tr.linalg.vecdot(rect, tr.ones(3)), RuntimeError,
         "linalg.vecdot: Expected x and y to have the same dtype, but found x of type Double and y of type Float"),
        (lambda: tr.linalg.eigvals(zeros), NotImplementedError, "eigvalsh"),
        (lambda: tr.linalg.eig(zeros), NotImplementedError, "no complex dtype"),
    ]
    for call, error, message in cases:
        with pytest.raises(error) as raised:
            call()
        assert message in str(raised.value)
    assert issubclass(tr.linalg.LinAlgError, RuntimeError)
    with pytest.raises(RuntimeError, match="not computed when mode='r'"):
        tr.linalg.qr(tr.tensor(general(3, 3), requires_grad=True), mode="r").R.sum().backward()


SINGULAR_OR_NOT_FINITE = [[[0.0]], [[0.0, 0.0], [0.0, 0.0]], [[1.0, 2.0], [2.0, 4.0]], np.arange(9.0).reshape(3, 3),
                          [[np.inf]], [[np.inf, 0.0], [0.0, 1.0]], [[np.nan]], [[np.nan, 0.0], [0.0, 0.0]],
                          [[np.inf, np.inf], [np.inf, np.inf]], [[1.0, 2.0], [3.0, np.nan]]]


@pytest.mark.parametrize("matrix", SINGULAR_OR_NOT_FINITE, ids=str)
def test_determinants_of_singular_and_non_finite_matrices_as_torch(matrix):
    """Torch goes on with the LU factors it has (inf and NaN carried through); the gradient of det at a singular
    matrix is its cofactor matrix, from the SVD, as torch's (with create_graph: without it torch gives 0)."""
    singular_finite = np.isfinite(matrix).all()
    for name, fn in (("det", lambda L, a: L.linalg.det(a)), ("sign", lambda L, a: L.linalg.slogdet(a).sign),
                     ("logabsdet", lambda L, a: L.linalg.slogdet(a).logabsdet)):
        results = []
        for L in (tr, torch):
            a = L.tensor(matrix, dtype=F64[L], requires_grad=True)
            out = fn(L, a)
            grad = (L.autograd.grad(out, a, create_graph=name == "det")[0] if name == "logabsdet" or
                    (name == "det" and singular_finite) else None)
            results.append([_numpy(out)] + ([] if grad is None else [_numpy(grad)]))
        for ours, theirs in zip(*results):
            np.testing.assert_allclose(ours, theirs, err_msg=name, **VALUES)


def test_singular_and_empty_inputs_give_torch_values():
    singular = np.zeros((3, 3))
    sign, logabsdet = tr.linalg.slogdet(tr.tensor(singular))
    assert sign.item() == 0 and logabsdet.item() == -np.inf
    assert tr.linalg.det(tr.tensor(singular)).item() == 0
    assert tr.linalg.inv(tr.zeros(0, 0, dtype=tr.float64)).shape == (0, 0)
    assert tr.linalg.det(tr.zeros(2, 0, 0, dtype=tr.float64)).tolist() == [1.0, 1.0]


def test_module_and_names():
    assert tinygrad_rnn.linalg is tr.linalg
    assert all(callable(getattr(tr.linalg, name)) for name in tr.linalg.__all__)
    missing = [n for n in dir(torch.linalg) if not n.startswith("_") and n in tr.linalg.__all__ and
               not hasattr(tr.linalg, n)]
    assert not missing


def test_recurrent_weight_spectrum_still_works():
    """A recurrent weight's eigenvalues are complex: the diagnostics give them (NumPy), linalg points there."""
    w = tr.tensor(general(4, 4))
    values = tr.diagnostics.eigenvalues(w)
    np.testing.assert_allclose(np.sort_complex(np.asarray(values)),
                               np.sort_complex(torch.linalg.eigvals(torch.tensor(general(4, 4))).numpy()), rtol=1e-12)
