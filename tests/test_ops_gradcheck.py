"""Every primitive gradchecked in float64, broadcasting included, on each backend."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tr
from tinygrad_rnn import ops

_seeds = iter(range(1, 1_000_000))  # a different draw for every input made


def rand(device, *shape, positive=False):
    values = np.random.default_rng(next(_seeds)).standard_normal(shape)
    if positive:
        values = np.abs(values) + 0.5
    return tr.Tensor(values, dtype="float64", device=device, requires_grad=True)


def well_conditioned(device, *shape):
    values = np.random.default_rng(next(_seeds)).standard_normal(shape) + 3 * np.eye(shape[-1])
    return tr.Tensor(values, dtype="float64", device=device, requires_grad=True)


def joined(*outputs, square=None):
    """A factorisation's outputs as one flat tensor; output `square` squared (a vector's sign is free)."""
    return tr.cat([(o * o if k == square else o).reshape(-1) for k, o in enumerate(outputs)])


# op class -> list of (fn, input-maker) cases; each maker builds float64 inputs for a device
CASES = {
    ops.Add: [(lambda a, b: a + b, lambda d: (rand(d, 3, 4), rand(d, 4))),
              (lambda a, b: a + b, lambda d: (rand(d, 2, 1, 3), rand(d, 5, 1)))],
    ops.Sub: [(lambda a, b: a - b, lambda d: (rand(d, 3, 1), rand(d, 1, 4)))],
    ops.Mul: [(lambda a, b: a * b, lambda d: (rand(d, 2, 3, 4), rand(d, 3, 1))),
              (lambda a, b: a * b, lambda d: (rand(d, 3), rand(d)))],
    ops.Div: [(lambda a, b: a / b, lambda d: (rand(d, 3, 4), rand(d, 4, positive=True)))],
    ops.Pow: [(lambda a: a ** 3, lambda d: (rand(d, 3, 4),)),
              (lambda a, b: a ** b, lambda d: (rand(d, 3, 4, positive=True), rand(d, 4)))],
    ops.Matmul: [(lambda a, b: a @ b, lambda d: (rand(d, 3, 4), rand(d, 4, 5))),
                 (lambda a, b: a @ b, lambda d: (rand(d, 2, 3, 4), rand(d, 4, 2))),
                 (lambda a, b: a @ b, lambda d: (rand(d, 4), rand(d, 2, 4, 3))),
                 (lambda a, b: a @ b, lambda d: (rand(d, 3, 4), rand(d, 4)))],
    ops.Where: [(lambda a, b: tr.where(a > 0, a, b), lambda d: (rand(d, 3, 4), rand(d, 4)))],
    ops.Neg: [(lambda a: -a, lambda d: (rand(d, 3),))],
    ops.Exp: [(lambda a: a.exp(), lambda d: (rand(d, 3, 4),))],
    ops.Log: [(lambda a: a.log(), lambda d: (rand(d, 3, 4, positive=True),))],
    ops.Sqrt: [(lambda a: a.sqrt(), lambda d: (rand(d, 3, 4, positive=True),))],
    ops.Tanh: [(lambda a: a.tanh(), lambda d: (rand(d, 3, 4),))],
    ops.Sigmoid: [(lambda a: (a * 4).sigmoid(), lambda d: (rand(d, 3, 4),))],
    ops.Relu: [(lambda a: a.relu(), lambda d: (rand(d, 3, 4),))],
    ops.Clip: [(lambda a: a.clip(-0.5, 0.7), lambda d: (rand(d, 4, 5),)),
               (lambda a: ops.Clip.apply(a, low=-0.5, high=0.7, strict=True), lambda d: (rand(d, 4, 5),)),
               (lambda a: a.clip(max=0.1), lambda d: (rand(d, 6),))],
    # the masks have no gradient: checked through the ops that choose by them
    ops.Compare: [(lambda a, b: tr.where(a > b, a * 2, b), lambda d: (rand(d, 3, 4), rand(d, 4))),
                  (lambda a, b: tr.maximum(a, b), lambda d: (rand(d, 3, 4), rand(d, 4)))],
    ops.Sign: [(lambda a: a.abs(), lambda d: (rand(d, 3, 4),))],
    ops.FirstExtreme: [(lambda a: a.max(dim=1).values, lambda d: (rand(d, 3, 5),)),
                       (lambda a: a.min(dim=0, keepdim=True).values, lambda d: (rand(d, 3, 5),))],
    ops.Log1p: [(lambda a: a.log1p(), lambda d: (rand(d, 3, 4, positive=True),))],
    ops.Expm1: [(lambda a: a.expm1(), lambda d: (rand(d, 3, 4),))],
    ops.Erf: [(lambda a: a.erf(), lambda d: (rand(d, 3, 4),))],
    ops.Sin: [(lambda a: (a * 3).sin(), lambda d: (rand(d, 3, 4),))],
    ops.Cos: [(lambda a: (a * 3).cos(), lambda d: (rand(d, 3, 4),))],
    ops.Asin: [(lambda a: (a.tanh() * 0.9).asin(), lambda d: (rand(d, 3, 4),))],
    ops.Acos: [(lambda a: (a.tanh() * 0.9).acos(), lambda d: (rand(d, 3, 4),))],
    ops.Atan2: [(lambda a, b: a.atan2(b), lambda d: (rand(d, 3, 4), rand(d, 4))),
                (lambda a: a.atan2(a * 0 - 2), lambda d: (rand(d, 5),))],
    ops.Atan: [(lambda a: (a * 2).atan(), lambda d: (rand(d, 3, 4),))],
    ops.Asinh: [(lambda a: (a * 2).asinh(), lambda d: (rand(d, 3, 4),))],
    ops.Acosh: [(lambda a: (a * a + 1.2).acosh(), lambda d: (rand(d, 3, 4),))],
    ops.Atanh: [(lambda a: (a.tanh() * 0.9).atanh(), lambda d: (rand(d, 3, 4),))],
    ops.Logit: [(lambda a: a.sigmoid().logit(), lambda d: (rand(d, 3, 4),)),
                (lambda a: a.sigmoid().logit(0.2), lambda d: (rand(d, 3, 4),))],
    ops.Erfc: [(lambda a: a.erfc(), lambda d: (rand(d, 3, 4),))],
    ops.Sinc: [(lambda a: (a * 2).sinc(), lambda d: (rand(d, 3, 4),))],
    ops.Hypot: [(lambda a, b: a.hypot(b), lambda d: (rand(d, 3, 4), rand(d, 4)))],
    ops.LogAddExp: [(lambda a, b: a.logaddexp(b), lambda d: (rand(d, 3, 4), rand(d, 4))),
                    (lambda a, b: a.logaddexp2(b), lambda d: (rand(d, 3, 1), rand(d, 4)))],
    ops.XLogY: [(lambda a, b: a.xlogy(b), lambda d: (rand(d, 3, 4), rand(d, 4, positive=True)))],
    ops.CopySign: [(lambda a, b: a.copysign(b), lambda d: (rand(d, 3, 4), rand(d, 4)))],
    ops.NextAfter: [(lambda a, b: a.nextafter(b), lambda d: (rand(d, 3, 4), rand(d, 4)))],
    ops.Erfinv: [(lambda a: (a.tanh() * 0.9).erfinv(), lambda d: (rand(d, 3, 4),))],
    ops.Lgamma: [(lambda a: a.lgamma(), lambda d: (rand(d, 3, 4, positive=True),)),
                 (lambda a: (a * 0.3 - 1.5).lgamma(), lambda d: (rand(d, 5),))],
    ops.Polygamma: [(lambda a: a.digamma(), lambda d: (rand(d, 3, 4, positive=True),)),
                    (lambda a: a.polygamma(2), lambda d: (rand(d, 3, 4, positive=True),)),
                    (lambda a: (a * 0.3 - 2.5).polygamma(1), lambda d: (rand(d, 5),))],
    ops.BesselI: [(lambda a: (a * 3).i0(), lambda d: (rand(d, 3, 4),)),
                  (lambda a: (a + 30).i0() * 1e-12, lambda d: (rand(d, 4),)),
                  (lambda a: tr.special.i1(a * 3), lambda d: (rand(d, 3, 4),))],
    ops.RoundedDiv: [(lambda a, b: ops.RoundedDiv.apply(a, b, mode="floor") + a * b,
                      lambda d: (rand(d, 3, 4), rand(d, 4, positive=True)))],
    ops.Remainder: [(lambda a, b: a % b, lambda d: (rand(d, 3, 4), rand(d, 4, positive=True))),
                    (lambda a, b: a.fmod(b), lambda d: (rand(d, 3, 4), rand(d, 4, positive=True)))],
    ops.Cumsum: [(lambda a: a.cumsum(1), lambda d: (rand(d, 3, 4),)),
                 (lambda a: a.cumsum(0), lambda d: (rand(d, 5),))],
    ops.Sum: [(lambda a: a.sum(), lambda d: (rand(d, 3, 4),)),
              (lambda a: a.sum(axis=1), lambda d: (rand(d, 3, 4, 2),)),
              (lambda a: a.sum(axis=(0, 2), keepdims=True), lambda d: (rand(d, 3, 4, 2),))],
    ops.Mean: [(lambda a: a.mean(axis=-1), lambda d: (rand(d, 3, 4),)),
               (lambda a: a.mean(), lambda d: (rand(d, 3, 4),))],
    ops.Max: [(lambda a: a.amax(1), lambda d: (rand(d, 3, 5),)),
              (lambda a: a.max(), lambda d: (rand(d, 3, 5),)),
              (lambda a: a.max(dim=0, keepdim=True).values, lambda d: (rand(d, 3, 5),))],
    ops.Expand: [(lambda a: a.expand(4, 3, 2) * 1.5, lambda d: (rand(d, 3, 1),))],
    ops.IndexAdd: [(lambda a: ops.IndexAdd.apply(a, index=(np.array([0, 2, 0]),), shape=(3, 2)),
                    lambda d: (rand(d, 3, 2),))],
    # slices (the value broadcast to the slice), integer arrays, a boolean mask, None and Ellipsis; the
    # last through __setitem__ on a non-leaf, as ported code writes it
    ops.IndexPut: [(lambda a, v: ops.IndexPut.apply(a, v, index=(slice(1, None), slice(None, None, 2))),
                    lambda d: (rand(d, 4, 5), rand(d, 3))),
                   (lambda a, v: ops.IndexPut.apply(a, v, index=(np.array([2, 0]), np.array([1, 3]))),
                    lambda d: (rand(d, 3, 4), rand(d, 2))),
                   (lambda a, v: ops.IndexPut.apply(a, v, index=np.array([[True, False, True], [False, True, False]])),
                    lambda d: (rand(d, 2, 3), rand(d, 3))),
                   (lambda a, v: ops.IndexPut.apply(a, v, index=(None, Ellipsis, 1)), lambda d: (rand(d, 2, 3), rand(d, 1, 2))),
                   (lambda a, v: _set(a * 1, (1, slice(0, 2)), v * 3), lambda d: (rand(d, 3, 4), rand(d, 2)))],
    ops.Reshape: [(lambda a: a.reshape(4, 3) * tr.Tensor(np.arange(12.).reshape(4, 3), dtype="float64",
                                                          device=a.device),
                   lambda d: (rand(d, 3, 4),))],
    ops.Permute: [(lambda a: a.permute(2, 0, 1), lambda d: (rand(d, 2, 3, 4),)),
                  (lambda a: a.T, lambda d: (rand(d, 2, 3),))],
    ops.Getitem: [(lambda a: a[1:, ::2], lambda d: (rand(d, 4, 5),)),
                  (lambda a: a[np.array([0, 2, 2, 1])], lambda d: (rand(d, 3, 4),)),
                  (lambda a: a[np.arange(3), np.array([1, 0, 1])], lambda d: (rand(d, 3, 2),)),
                  (lambda a: a[..., 1], lambda d: (rand(d, 2, 3, 4),))],
    # overlapping windows (their adjoint adds slice by slice), a layout by `axes`, and the adjoint itself
    # of windows that never meet (one strided add); squared, so that the second derivative is not zero
    ops.Unfold: [(lambda a: ops.Unfold.apply(a, kernel=(3,), stride=(2,), dilation=(2,)) ** 2,
                  lambda d: (rand(d, 2, 3, 11),)),
                 (lambda a: ops.Unfold.apply(a, kernel=(2, 3), stride=(1, 3), dilation=(2, 1), axes=(1, 2, 0, 3, 4)),
                  lambda d: (rand(d, 2, 5, 7),)),
                 (lambda a: ops.Unfold.apply(a, kernel=(2, 2), stride=(2, 3), dilation=(1, 1), fold=(2, 4, 6)) ** 2,
                  lambda d: (rand(d, 2, 2, 2, 2, 2),))],
    ops.Cat: [(lambda a, b: tr.cat([a, b, a], dim=1), lambda d: (rand(d, 2, 3), rand(d, 2, 1)))],
    ops.Stack: [(lambda a, b: tr.stack([a, b], dim=1), lambda d: (rand(d, 2, 3), rand(d, 2, 3)))],
    ops.Einsum: [(lambda a, b: tr.einsum("bij,jk->bki", a, b), lambda d: (rand(d, 2, 3, 4), rand(d, 4, 2))),
                 (lambda a: tr.einsum("ijk->j", a), lambda d: (rand(d, 2, 3, 4),))],
    ops.ToDevice: [(lambda a: a.to("cpu") * 2, lambda d: (rand(d, 3),))],
    ops.Cast: [(lambda a: a.to(dtype="float32").to(dtype="float64"), lambda d: (rand(d, 3),))],
    # linear algebra (tests/test_linalg.py checks these against torch, second derivatives too); symmetric
    # inputs are made symmetric inside, so that every element moves the function
    ops.Inv: [(lambda a: tr.linalg.inv(a), lambda d: (well_conditioned(d, 2, 3, 3),))],
    ops.Det: [(lambda a: tr.linalg.det(a), lambda d: (rand(d, 2, 3, 3),))],
    ops.Slogdet: [(lambda a: tr.linalg.slogdet(a).logabsdet, lambda d: (rand(d, 3, 3),))],
    ops.Solve: [(lambda a, b: tr.linalg.solve(a, b), lambda d: (well_conditioned(d, 3, 3), rand(d, 2, 3, 2)))],
    ops.Cholesky: [(lambda a: tr.linalg.cholesky(a @ a.mT + tr.eye(3, dtype=a.dtype, device=a.device)),
                    lambda d: (rand(d, 2, 3, 3),))],
    ops.QR: [(lambda a: joined(*tr.linalg.qr(a)), lambda d: (rand(d, 4, 3),)),
             (lambda a: joined(*tr.linalg.qr(a)), lambda d: (rand(d, 2, 4),))],
    ops.Eigh: [(lambda a: joined(*tr.linalg.eigh(a + a.mT), square=1), lambda d: (rand(d, 3, 3),))],
    ops.SVD: [(lambda a: joined(*tr.linalg.svd(a, full_matrices=False), square=0), lambda d: (rand(d, 2, 4, 3),))],
}


def _set(tensor, index, value):
    tensor[index] = value
    return tensor


def test_every_primitive_has_a_gradcheck_case():
    missing = [op.__name__ for op in ops.PRIMITIVES if op not in CASES]
    assert not missing, f"primitives without a gradcheck case: {missing}"


@pytest.mark.parametrize("op,case", [(op, i) for op in CASES for i in range(len(CASES[op]))],
                         ids=lambda v: v.__name__ if isinstance(v, type) else str(v))
def test_gradcheck(op, case, device):
    fn, make = CASES[op][case]
    if op is ops.Cast:  # a round trip through float32 loses digits: check the VJP exactly instead
        x = make(device)[0]
        fn(x).sum().backward()
        np.testing.assert_array_equal(x.numpy() * 0 + 1, x.grad.numpy())
        return
    assert tr.gradcheck(fn, *make(device))


def test_split_and_chunk_gradients(device):
    x = rand(device, 7, 3)
    assert tr.gradcheck(lambda x: tr.cat([p * (i + 1) for i, p in enumerate(x.split(3))]), x)
    assert [p.shape for p in x.chunk(3)] == [(3, 3), (3, 3), (1, 3)]
    assert [p.shape for p in x.split([2, 5])] == [(2, 3), (5, 3)]


def test_gradcheck_reports_the_worst_element():
    class Wrong(tr.Function):
        def forward(self, x):
            return x * x

        def backward(self, g):
            return (g,)  # should be 2 x g

    x = tr.Tensor([1.0, 5.0], dtype="float64", requires_grad=True)
    with pytest.raises(tr.GradcheckError, match=r"index \(1,\)"):
        tr.gradcheck(lambda x: Wrong.apply(x), x)


def test_gradcheck_refuses_float32():
    x = tr.Tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        tr.gradcheck(lambda x: x * 2, x)


# --- random shapes: broadcasting binary ops and batched matmul on shapes drawn by hypothesis

BROADCASTING = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
                "div": lambda a, b: a / (b * b + 1), "where": lambda a, b: tr.where(a > b, a, b * 2)}


@st.composite
def broadcastable_shapes(draw):
    """Two shapes NumPy broadcasts together: some dims dropped or set to 1 on either side."""
    full = draw(st.lists(st.integers(1, 3), min_size=0, max_size=3))
    def variant():
        dims = [draw(st.sampled_from([n, 1])) for n in full]
        return tuple(dims[draw(st.integers(0, len(dims))):])
    return variant(), variant()


@settings(max_examples=25, deadline=None)
@given(shapes=broadcastable_shapes(), op=st.sampled_from(sorted(BROADCASTING)))
def test_broadcasting_ops_on_random_shapes(shapes, op):
    a, b = (rand("cpu", *shape) for shape in shapes)
    assert tr.gradcheck(BROADCASTING[op], a, b)


@settings(max_examples=15, deadline=None)
@given(batch=st.lists(st.integers(1, 3), max_size=2), n=st.integers(1, 3), k=st.integers(1, 3),
       m=st.integers(1, 3), broadcast_left=st.booleans())
def test_batched_matmul_on_random_shapes(batch, n, k, m, broadcast_left):
    left = (1,) * len(batch) if broadcast_left and batch else tuple(batch)
    a, b = rand("cpu", *left, n, k), rand("cpu", *batch, k, m)
    assert tr.gradcheck(lambda a, b: a @ b, a, b)


@pytest.mark.parametrize("op", [op for op in CASES if op not in (ops.Reshape, ops.Cast)],
                         ids=lambda op: op.__name__)
def test_float32_stays_float32_through_forward_and_backward(op, device):
    fn, make = CASES[op][0]
    inputs = [tr.Tensor(t.numpy().astype(np.float32), device=device, requires_grad=True) for t in make(device)]
    out = fn(*inputs)
    out.sum().backward()
    assert out.dtype == np.float32
    assert all(t.grad.dtype == np.float32 for t in inputs)
