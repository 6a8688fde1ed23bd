"""torch.linalg: norms, products, inverses, solves and factorisations, batched over leading dims.

The factorisations (inv, det, slogdet, solve, cholesky, qr, eigh, svd) are primitives of ops.py, each
with its VJP; everything else here is composed from them and from Tensor methods, so gradients of
any order come for free. Names, signatures, return types and error messages follow torch.linalg.
Complex numbers are not supported: eig and eigvals raise NotImplementedError (use eigvalsh / eigh
for a symmetric matrix, or tr.diagnostics.eigenvalues for a recurrent weight's spectrum).
"""
import collections
import math
import numbers
import warnings

import numpy as np

from . import lapack, ops
from .lapack import LinAlgError
from .methods import TENSOR_TYPE_NAMES
from .tensor import Tensor, cat, no_grad, where

# torch.return_types.linalg_*: named tuples with torch's field names
SlogdetResult = collections.namedtuple("linalg_slogdet", ["sign", "logabsdet"])
InvExResult = collections.namedtuple("linalg_inv_ex", ["inverse", "info"])
CholeskyExResult = collections.namedtuple("linalg_cholesky_ex", ["L", "info"])
QRResult = collections.namedtuple("linalg_qr", ["Q", "R"])
EighResult = collections.namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
SVDResult = collections.namedtuple("linalg_svd", ["U", "S", "Vh"])
LstsqResult = collections.namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])
OldSVDResult = collections.namedtuple("svd", ["U", "S", "V"])  # Tensor.svd / torch.svd: V, not Vh
OldQRResult = collections.namedtuple("qr", ["Q", "R"])

__all__ = [
    "LinAlgError", "cholesky", "cholesky_ex", "cross", "det", "diagonal", "eig", "eigh", "eigvals", "eigvalsh",
    "inv", "inv_ex", "lstsq", "matmul", "matrix_exp", "matrix_norm", "matrix_power", "matrix_rank", "multi_dot",
    "norm", "pinv", "qr", "slogdet", "solve", "solve_triangular", "svd", "svdvals", "tensorinv", "tensorsolve",
    "vecdot", "vector_norm",
]


# ----------------------------------------------------------------------------- argument checks


def _type_name(dtype):
    return TENSOR_TYPE_NAMES[np.dtype(dtype)][:-len("Tensor")]  # torch's scalar type name: Long, Double


def _tensor(op, value, name="A"):
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(value).__name__}")
    return value


def _floating(op, t):
    if t.dtype.kind != "f":
        raise RuntimeError(f"{op}: Expected a floating point or complex tensor as input. Got {_type_name(t.dtype)}")
    return t


def _matrices(op, a, name="A", square=True, floating=True):
    """`a` checked as torch checks a batch of matrices: at least 2-D, floating (float16 refused, as
    LAPACK has none), square where the op needs it."""
    _tensor(op, a, name)
    if a.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor {name} must have at least 2 dimensions.")
    if floating:
        _floating(op, a)
        if a.dtype == np.float16:
            raise RuntimeError(f"{op}: Low precision dtypes not supported. Got Half")
    if square and a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"{op}: {name} must be batches of square matrices, but they are {a.shape[-2]} by "
                           f"{a.shape[-1]} matrices")
    return a


def _same_dtype(op, a, b, names=("A", "B")):
    if a.dtype != b.dtype:
        raise RuntimeError(f"{op}: Expected {names[0]} and {names[1]} to have the same dtype, but found {names[0]} of "
                           f"type {_type_name(a.dtype)} and {names[1]} of type {_type_name(b.dtype)} instead")


def _identity(n, like):
    return Tensor._make(like.xp.eye(n, dtype=like.dtype), None)


def _batched_identity(a):
    return _identity(a.shape[-1], a).expand(*a.shape)


# ----------------------------------------------------------------------------- norms and products


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The ord-norm of x's elements over `dim` (all of them by default), as one vector."""
    _tensor("linalg.vector_norm", x, "x")
    if isinstance(ord, bool) or not isinstance(ord, numbers.Real):
        raise TypeError(f"linalg_vector_norm(): argument 'ord' must be Number, not {type(ord).__name__}")
    _floating("linalg.vector_norm", x)
    if dtype is not None:
        x = x.to(dtype=dtype)
    if dim is None:
        if not keepdim:
            return x.reshape(-1).norm(ord, 0)
        dim = tuple(range(x.ndim))
    return x.norm(ord, dim, keepdim)


def _svd_values_over(a, dim, keepdim, reduce):
    """reduce(singular values) of the matrices in dims `dim`, keepdim as torch."""
    rows, cols = (d % a.ndim for d in dim)
    values = reduce(svdvals(a.movedim((rows, cols), (-2, -1))))
    if keepdim:
        for d in sorted((rows, cols)):
            values = values.unsqueeze(d)
    return values


MATRIX_ORDERS = ("fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """The matrix norm of order `ord` of the matrices in dims `dim`."""
    op = "linalg.matrix_norm"
    _floating(op, _matrices(op, A, square=False, floating=False))
    if isinstance(ord, bool) or ord not in MATRIX_ORDERS:
        raise RuntimeError(f"{op}: Order {ord} not supported.")
    if ord in ("nuc", 2, -2):  # an SVD: LAPACK has no float16
        _matrices(op, A, square=False)
    if A.dtype == np.float16 and dtype is None:  # half accumulates in float32, as torch's
        return matrix_norm(A.float(), ord, dim, keepdim).half()
    dim = tuple(dim)
    if len(dim) != 2:
        raise RuntimeError(f"{op}: dim must be a 2-tuple. Got {' '.join(map(str, dim))}")
    if dtype is not None:
        A = A.to(dtype=dtype)
    if ord == "fro":
        return vector_norm(A, 2, dim, keepdim)
    if ord == "nuc":
        return _svd_values_over(A, dim, keepdim, lambda s: s.sum(-1))
    if abs(ord) == 2:
        return _svd_values_over(A, dim, keepdim, lambda s: s.amax(-1) if ord > 0 else s.amin(-1))
    # 1: the largest column sum of |A|; inf: the largest row sum
    summed, picked = (dim[0], dim[1]) if abs(ord) == 1 else (dim[1], dim[0])
    sums = A.abs().sum(dim=summed % A.ndim, keepdim=True)
    extreme = sums.amax(picked % A.ndim, keepdim=True) if ord > 0 else sums.amin(picked % A.ndim, keepdim=True)
    return extreme if keepdim else extreme.squeeze(dim[1] % A.ndim).squeeze(dim[0] % A.ndim)


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """A vector norm (dim an int, or a 1-D input) or a matrix norm (dim a pair, or a 2-D input)."""
    _tensor("linalg.norm", A)
    if dim is not None:
        dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
        if len(dims) == 1:
            return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype)
        return matrix_norm(A, "fro" if ord is None else ord, dims, keepdim, dtype=dtype)
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if A.ndim not in (1, 2):
        raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
                           f"Got {A.ndim}D.")
    if A.ndim == 1:
        return vector_norm(A, ord, None, keepdim, dtype=dtype)
    return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)


def vecdot(x, y, *, dim=-1):
    """The dot product of the vectors along `dim`, broadcast over the others."""
    _tensor("linalg.vecdot", x, "x"), _tensor("linalg.vecdot", y, "y")
    _same_dtype("linalg.vecdot", x, y, ("x", "y"))
    return (x * y).sum(dim=dim)


def cross(input, other, *, dim=-1):
    """The cross product of the 3-vectors along `dim`, broadcast over the others."""
    a, b = _tensor("linalg.cross", input, "input"), _tensor("linalg.cross", other, "other")
    if a.ndim != b.ndim:
        raise RuntimeError("linalg.cross: inputs must have the same number of dimensions.")
    ndim = a.ndim
    axis = dim % ndim if -ndim <= dim < ndim else None
    if axis is None:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})")
    if a.shape[axis] != 3 or b.shape[axis] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got {a.shape[axis]} and "
                           f"{b.shape[axis]}")
    a1, a2, a3 = (a.narrow(axis, k, 1) for k in range(3))
    b1, b2, b3 = (b.narrow(axis, k, 1) for k in range(3))
    return cat([a2 * b3 - a3 * b2, a3 * b1 - a1 * b3, a1 * b2 - a2 * b1], dim=axis)


def matmul(input, other):
    """input @ other (torch.linalg.matmul is torch.matmul)."""
    return _tensor("linalg.matmul", input, "input") @ other


def multi_dot(tensors):
    """The product of a chain of matrices; the first and last may be vectors."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    for k, t in enumerate(tensors):
        _tensor("multi_dot", t, "tensors")
        edge = "the first tensor" if k == 0 else "the last tensor" if k == len(tensors) - 1 else None
        if edge and t.ndim not in (1, 2):
            raise RuntimeError(f"multi_dot(): {edge} must be 1D or 2D but got {t.ndim}D")
        if not edge and t.ndim != 2:
            raise RuntimeError(f"multi_dot(): tensor {k} must be 2D but got {t.ndim}D")
        if t.dtype != tensors[0].dtype:
            raise RuntimeError(f"multi_dot(): all tensors must have be the same dtype but tensor 0 is "
                               f"{_type_name(tensors[0].dtype)} and tensor {k} is {_type_name(t.dtype)}")
    first, last = tensors[0].ndim == 1, tensors[-1].ndim == 1
    matrices = [tensors[0].unsqueeze(0) if first else tensors[0], *tensors[1:-1],
                tensors[-1].unsqueeze(-1) if last else tensors[-1]]
    product = matrices[0]
    for k, m in enumerate(matrices[1:], start=1):
        if product.shape[-1] != m.shape[0]:
            raise RuntimeError(f"multi_dot(): tensors {k - 1} and {k} with shapes {list(matrices[k - 1].shape)} and "
                               f"{list(m.shape)} cannot be multiplied")
        product = product @ m
    if last:
        product = product.squeeze(-1)
    return product.squeeze(0) if first else product


def matrix_power(A, n):
    """A to the integer power n (A^-1 to -n for negative n), by torch's binary decomposition of n."""
    op = "linalg.matrix_power"
    _matrices(op, A, floating=False)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"linalg_matrix_power(): argument 'n' must be int, not {type(n).__name__}")
    if n == 0:
        eye = _batched_identity(A)
        return eye * 1 if A.dtype.kind == "f" else eye.clone()
    if n < 0:
        A, n = inv(A), -n
    if n == 1:
        return A.clone()
    power = result = None
    while n > 0:
        n, bit = divmod(n, 2)
        power = A if power is None else power @ power
        if bit:
            result = power if result is None else result @ power
    return result


def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    """The diagonal `offset` of the matrices in the last two dims (by default), as a last dim."""
    return _tensor("linalg.diagonal", A).diagonal(offset, dim1, dim2)


# ----------------------------------------------------------------------------- inverses and solves


def inv(A):
    """A^-1 for each matrix of the batch; a singular one raises LinAlgError."""
    return ops.Inv.apply(_matrices("linalg.inv", A))


def _with_info(A, primitive, info_of):
    """(primitive(A), info) as torch's *_ex: info[k] is 0 where matrix k worked, else LAPACK's code, and the
    result there is what LAPACK leaves."""
    try:
        return primitive(A), Tensor._make(A.xp.zeros(A.shape[:-2], dtype=np.int32), None)
    except LinAlgError:
        return primitive(A, check=False), Tensor._make(A.xp.asarray(lapack.infos(A.array, info_of)), None)


def inv_ex(A, *, check_errors=False):
    """(A^-1, info): info is 0 for an invertible matrix, else the first zero diagonal element of its LU."""
    _matrices("linalg.inv_ex", A)
    if check_errors:
        return InvExResult(inv(A), Tensor._make(A.xp.zeros(A.shape[:-2], dtype=np.int32), None))
    return InvExResult(*_with_info(A, ops.Inv.apply, lapack.first_zero_pivot))


def det(A):
    """The determinant of each matrix; its gradient is the cofactor matrix, a singular matrix's too."""
    return ops.Det.apply(_matrices("linalg.det", A))


def slogdet(A):
    """(sign, log |det|) of each matrix; a singular one gives (0, -inf)."""
    return SlogdetResult(*ops.Slogdet.apply(_matrices("linalg.slogdet", A)))


def _solve_shapes(A, B, left):
    """B as a batch of matrices broadcast against A (and whether it was a batch of vectors), as torch's
    rule: B is a vector when it is 1-D, or when its shape is A's without the last dim."""
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])
    if vector and not left:
        raise RuntimeError("linalg.solve: Vector broadcasting of the left hand side is not supported for left=False. "
                           "In this case linalg.solve is equivalent to B / A.squeeze(-1)")
    matrices = B.unsqueeze(-1) if vector else B
    if matrices.ndim < 2 or A.shape[-1] != matrices.shape[-2 if left else -1]:
        shown = f"{matrices.shape[-2]}x{matrices.shape[-1]}" if matrices.ndim >= 2 else f"{B.shape[0]}"
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({A.shape[-2]}x{A.shape[-1]} and {shown})")
    batch = np.broadcast_shapes(A.shape[:-2], matrices.shape[:-2])
    return A.expand(*batch, *A.shape[-2:]), matrices.expand(*batch, *matrices.shape[-2:]), vector


def solve(A, B, *, left=True):
    """X with A X = B (X A = B when left=False); B a batch of vectors or of matrices, broadcast as torch."""
    _matrices("linalg.solve", A)
    _tensor("linalg.solve", B, "B")
    _same_dtype("linalg.solve", A, B)
    A, B, vector = _solve_shapes(A, B, left)
    if not left:
        return ops.Solve.apply(A.mT, B.mT).mT
    X = ops.Solve.apply(A, B)
    return X.squeeze(-1) if vector else X


def solve_triangular(A, B, *, upper, left=True, unitriangular=False):
    """X with A X = B (X A = B when left=False), reading only A's upper or lower triangle."""
    _matrices("linalg.solve_triangular", A)
    _matrices("linalg.solve_triangular", B, "B", square=False)
    triangle = A.triu() if upper else A.tril()
    if unitriangular:
        triangle = triangle - ops._diag_embed(triangle.diagonal(0, -2, -1)) + _identity(A.shape[-1], A)
    return solve(triangle, B, left=left)


def tensorinv(A, ind=2):
    """The inverse of A read as a matrix of its first `ind` dims by the rest, shaped back as torch."""
    _tensor("linalg.tensorinv", A)
    if isinstance(ind, bool) or not isinstance(ind, numbers.Integral) or ind <= 0:
        raise RuntimeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    rows, cols = math.prod(A.shape[:ind]), math.prod(A.shape[ind:])
    if rows != cols:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[ind:]) == "
                           f"prod(self.shape[:ind]), but got {cols} != {rows}")
    return inv(A.reshape(rows, cols)).reshape(A.shape[ind:] + A.shape[:ind])


def tensorsolve(A, B, dims=None):
    """X with tensordot(A, X, X.ndim) = B."""
    _tensor("linalg.tensorsolve", A), _tensor("linalg.tensorsolve", B, "B")
    if dims is not None:
        A = A.movedim(tuple(dims), tuple(range(A.ndim - len(dims), A.ndim)))
    unknowns = A.shape[B.ndim:]
    rows, cols = B.numel(), math.prod(unknowns)
    if rows != cols:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(result_shape) == prod(other.shape), "
                           f"but got {cols} != {rows}")
    return solve(A.reshape(rows, cols), B.reshape(rows)).reshape(unknowns)


# ----------------------------------------------------------------------------- factorisations


def cholesky(A, *, upper=False):
    """L with A = L L^T (U = L^T with A = U^T U when upper), from A's lower triangle."""
    L = ops.Cholesky.apply(_matrices("linalg.cholesky", A))
    return L.mT if upper else L


def cholesky_ex(A, *, upper=False, check_errors=False):
    """(L, info): info is 0 where the factorisation worked, else the order of the first leading minor that is
    not positive-definite."""
    if check_errors:
        L = cholesky(A, upper=upper)
        return CholeskyExResult(L, Tensor._make(L.xp.zeros(L.shape[:-2], dtype=np.int32), None))
    _matrices("linalg.cholesky_ex", A)
    L, info = _with_info(A, ops.Cholesky.apply, lapack.first_failing_minor)
    return CholeskyExResult(L.mT if upper else L, info)


QR_MODES = ("reduced", "complete", "r")


def qr(A, mode="reduced"):
    """(Q, R) with A = QR; mode 'r' gives an empty Q and R alone (which then has no gradient)."""
    _matrices("linalg.qr", A, square=False)
    if mode not in QR_MODES:
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), 'r', "
                           f"or 'complete'")
    return QRResult(*ops.QR.apply(A, mode=mode))


def _check_uplo(UPLO):
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")


def eigh(A, UPLO="L"):
    """(eigenvalues ascending, eigenvectors as columns) of symmetric matrices, from their UPLO triangle."""
    _matrices("linalg.eigh", A)
    _check_uplo(UPLO)
    return EighResult(*ops.Eigh.apply(A, uplo=UPLO))


def eigvalsh(A, UPLO="L"):
    """The eigenvalues, ascending, of symmetric matrices."""
    _matrices("linalg.eigvalsh", A)
    _check_uplo(UPLO)
    return ops.Eigh.apply(A, uplo=UPLO)[0]


def _complex_unsupported(name):
    def function(A, *, out=None):
        raise NotImplementedError(
            f"linalg.{name}: the eigenvalues of a general real matrix are complex, and tinygrad_rnn has no complex "
            f"dtype; use linalg.eigvalsh / linalg.eigh for a symmetric matrix, or "
            f"tinygrad_rnn.diagnostics.eigenvalues(W) for the (NumPy complex) spectrum of a recurrent weight")
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"torch.linalg.{name}: not available (complex results); see eigvalsh."
    return function


eig = _complex_unsupported("eig")
eigvals = _complex_unsupported("eigvals")


def svd(A, full_matrices=True, *, driver=None):
    """(U, S, Vh) with A = U diag(S) Vh, S descending."""
    _matrices("linalg.svd", A, square=False)
    return SVDResult(*ops.SVD.apply(A, full_matrices=bool(full_matrices)))


def svdvals(A, *, driver=None):
    """The singular values, descending."""
    _matrices("linalg.svdvals", A, square=False)
    return ops.SVD.apply(A, full_matrices=False)[1]


def _tolerance(A, atol, rtol, largest):
    """torch's cut-off max(atol, rtol * largest singular value): rtol defaults to eps * max(m, n), or to 0 when
    a positive atol is given."""
    def as_tensor(value):
        if value is None or isinstance(value, Tensor):
            return value
        return Tensor._make(A.xp.asarray(value, dtype=A.dtype), None)
    atol, rtol = as_tensor(atol), as_tensor(rtol)
    if rtol is None:
        positive_atol = atol is not None and bool((atol.array > 0).all())
        rtol = 0.0 if positive_atol else np.finfo(A.dtype).eps * max(A.shape[-2:])
    with no_grad():
        scaled = largest * (rtol.unsqueeze(-1) if isinstance(rtol, Tensor) else rtol)
        return scaled if atol is None else scaled.maximum(scaled * 0 + atol.unsqueeze(-1))


def _kept_reciprocal(values, kept):
    """1 / values where kept, 0 elsewhere, with no NaN in the gradient of the dropped ones."""
    return where(kept, where(kept, values, 1.0).reciprocal(), 0.0)


def pinv(A, *, atol=None, rtol=None, hermitian=False):
    """The Moore-Penrose pseudo-inverse, from the SVD (eigh when hermitian), singular values at most
    max(atol, rtol * the largest) treated as zero."""
    op = "linalg.pinv"
    _matrices(op, A, square=hermitian)
    if hermitian:
        values, vectors = eigh(A)
        magnitudes = values.abs()
        tol = _tolerance(A, atol, rtol, magnitudes.detach().amax(-1, keepdim=True))
        return (vectors * _kept_reciprocal(values, magnitudes > tol).unsqueeze(-2)) @ vectors.mT
    U, S, Vh = svd(A, full_matrices=False)
    tol = _tolerance(A, atol, rtol, S.detach()[..., :1])
    return (Vh.mT * _kept_reciprocal(S, S > tol).unsqueeze(-2)) @ U.mT


def matrix_rank(A, *, atol=None, rtol=None, hermitian=False):
    """How many singular values exceed max(atol, rtol * the largest), as int64."""
    op = "linalg.matrix_rank"
    _matrices(op, A, square=hermitian)
    with no_grad():
        values = eigvalsh(A).abs() if hermitian else svdvals(A)
        if values.shape[-1] == 0:
            return Tensor._make(A.xp.zeros(A.shape[:-2], dtype=np.int64), None)
        tol = _tolerance(A, atol, rtol, values.amax(-1, keepdim=True))
        return Tensor._make((values.array > tol.array).sum(-1).astype(np.int64), None)


LSTSQ_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def lstsq(A, B, rcond=None, *, driver=None):
    """The least-squares (minimum-norm) solution X of A X = B, with torch's fields: the rank for every driver
    but 'gels', the singular values for 'gelsd' and 'gelss', the residuals where A is tall and of full rank
    for those but 'gelsy' (empty where torch gives none)."""
    op = "linalg.lstsq"
    _matrices(op, A, square=False)
    _tensor(op, B, "B")
    _same_dtype(op, A, B, ("input", "b"))
    if driver not in (None,) + LSTSQ_DRIVERS:
        raise RuntimeError(f"torch.linalg.lstsq: parameter `driver` should be one of {LSTSQ_DRIVERS}")
    driver = driver or "gelsy"
    vector = B.ndim == A.ndim - 1
    matrices = B.unsqueeze(-1) if vector else B
    if matrices.shape[-2] != A.shape[-2]:
        raise RuntimeError("torch.linalg.lstsq: input.size(-2) should match other.size(-2)")
    m, n = A.shape[-2:]
    rcond = rcond if rcond is not None and rcond >= 0 else np.finfo(A.dtype).eps * max(m, n)
    X = pinv(A, rtol=rcond) @ matrices
    empty = Tensor._make(A.xp.zeros((0,), dtype=A.dtype), None)
    rank = matrix_rank(A, rtol=rcond) if driver != "gels" else Tensor._make(A.xp.zeros((0,), dtype=np.int64), None)
    values = svdvals(A).detach() if driver in ("gelsd", "gelss") else empty
    residuals = empty
    if driver != "gelsy" and m > n and bool((matrix_rank(A).array == n).all()):
        residuals = ((A @ X - matrices) ** 2).sum(-2)
    return LstsqResult(X.squeeze(-1) if vector else X, residuals, rank, values)


TAYLOR_DEGREE = 18


def matrix_exp(A):
    """e^A by scaling and squaring: A / 2^s of 1-norm at most 1/2, where 18 Taylor terms reach far below the
    rounding, then squared s times."""
    _matrices("linalg.matrix_exp", A)
    if A.numel() == 0:
        return A * 1
    if A.shape[-1] == 1:  # e^a, exactly, as torch
        return A.exp()
    finite = A.xp.isfinite(A.array).all(axis=(-2, -1), keepdims=True)
    if not finite.all():  # a matrix holding inf or NaN gives NaN throughout, as torch's
        return where(finite, matrix_exp(where(finite, A, 0.0)), math.nan)
    largest = float(np.abs(A.numpy()).sum(-2).max())  # the 1-norm, the largest in the batch
    squarings = max(0, math.ceil(math.log2(largest)) + 1) if largest > 0 else 0
    scaled = A / 2 ** squarings
    eye = _batched_identity(A)
    result = eye
    for k in range(TAYLOR_DEGREE, 0, -1):  # Horner: I + X/1 (I + X/2 (I + ...))
        result = eye + (scaled @ result) / k
    for _ in range(squarings):
        result = result @ result
    return result


# ----------------------------------------------------------------------------- Tensor methods, torch.* names


def _logdet(self):
    """log det: NaN for a negative determinant, -inf for a singular matrix."""
    sign, logabsdet = slogdet(_matrices("logdet", self))
    return where(sign.detach() < 0, math.nan, logabsdet)


def _old_svd(self, some=True, compute_uv=True):
    """torch.svd: (U, S, V), thin when `some`; without compute_uv, U and V are zeros."""
    if not compute_uv:
        m, n = self.shape[-2:]
        S = svdvals(self)
        zeros = [Tensor._make(self.xp.zeros(self.shape[:-2] + (k, k), dtype=self.dtype), None) for k in (m, n)]
        return OldSVDResult(zeros[0], S, zeros[1])
    U, S, Vh = svd(self, full_matrices=not some)
    return OldSVDResult(U, S, Vh.mT)


def _deprecated(name, method):
    """Tensor.qr and Tensor.cholesky warn as torch's do: the linalg function is the one to use."""
    def warned(self, *args, **kwargs):
        warnings.warn(f"tr.{name} is deprecated in favor of tr.linalg.{name}, as torch.{name} is in favor of "
                      f"torch.linalg.{name}", UserWarning, stacklevel=2)
        return method(self, *args, **kwargs)
    warned.__name__ = warned.__qualname__ = name
    return warned


def _method(name, function):
    """`function` as Tensor.NAME: an error it raises names the method too, which torch's message may not
    (tr.inverse(x) reports linalg.inv's complaint, as torch does, after 'inverse():')."""
    def method(self, *args, **kwargs):
        try:
            return function(self, *args, **kwargs)
        except (RuntimeError, TypeError, ValueError) as error:
            if name in str(error):
                raise
            raise type(error)(f"{name}(): {error}") from error
    method.__name__ = method.__qualname__ = name
    method.__doc__ = function.__doc__
    return method


TENSOR_METHODS = {
    "cholesky": _deprecated("cholesky", lambda self, upper=False: cholesky(self, upper=upper)),
    "det": det,
    "inverse": inv,
    "logdet": _logdet,
    "matrix_exp": matrix_exp,
    "matrix_power": matrix_power,
    "pinverse": lambda self, rcond=1e-15: pinv(self, rtol=rcond),
    "qr": _deprecated("qr", lambda self, some=True: OldQRResult(*qr(self, "reduced" if some else "complete"))),
    "slogdet": slogdet,
    "svd": _old_svd,
}
for _name, _function in TENSOR_METHODS.items():
    setattr(Tensor, _name, _method(_name, _function))
