"""What torch reads from LAPACK that NumPy's linalg does not give: the failure codes (info) and torch's messages
for them, and the IEEE results of an LU factorisation of a singular or non-finite matrix.

NumPy raises for a singular matrix, or special-cases it (slogdet's (0, -inf)), where torch goes on with the
LU factors it has. These slow paths run only on such matrices, one matrix at a time, on the host.
"""
import numpy as np

from . import backend


class LinAlgError(RuntimeError):
    """A matrix the factorisation cannot handle (singular, not positive-definite): torch.linalg.LinAlgError."""


def _first_largest(column):
    """BLAS idamax: the first index of the largest |x| (a NaN never compares larger)."""
    best = 0
    for i in range(1, column.size):
        if column[i] > column[best]:
            best = i
    return best


def lu(matrix):
    """(LU factors in one matrix, the rows in their pivoted order, the sign of that permutation, info) as LAPACK's
    getf2: partial pivoting, a zero pivot left in place (info: the first one's 1-based column), IEEE arithmetic."""
    a = np.array(backend.to_numpy(matrix))
    rows, sign, info = np.arange(a.shape[-1]), 1.0, 0
    with np.errstate(all="ignore"):
        for k in range(a.shape[-1]):
            p = k + _first_largest(np.abs(a[k:, k]))
            if a[p, k] != 0:
                if p != k:
                    a[[k, p]], rows[[k, p]], sign = a[[p, k]], rows[[p, k]], -sign
                a[k + 1:, k] /= a[k, k]
            elif info == 0:
                info = k + 1
            a[k + 1:, k + 1:] -= np.outer(a[k + 1:, k], a[k, k + 1:])
    return a, rows, sign, info


def first_zero_pivot(matrix):
    """getrf's info: the 1-based column of the first exact zero pivot, or 0."""
    return lu(matrix)[3]


def first_failing_minor(matrix):
    """potrf's info: the order of the first leading minor that is not positive-definite, or 0."""
    a = backend.to_numpy(matrix)
    for k in range(1, a.shape[-1] + 1):
        try:
            np.linalg.cholesky(a[:k, :k])
        except np.linalg.LinAlgError:
            return k
    return 0


def infos(matrices, info_of):
    """info_of(matrix) for each matrix of a batch, as an int32 array of the batch's shape."""
    flat = backend.to_numpy(matrices).reshape((-1,) + matrices.shape[-2:])
    return np.array([info_of(m) for m in flat], dtype=np.int32).reshape(matrices.shape[:-2])


def raise_error(op, codes, message):
    """torch's LinAlgError for the first failing matrix of a batch; message(info) describes it."""
    first = int(np.flatnonzero(codes.reshape(-1))[0])
    where = f"(Batch element {first}): " if codes.ndim else ""
    raise LinAlgError(f"{op}: {where}{message(int(codes.reshape(-1)[first]))}")


def raise_singular(op, matrices):
    raise_error(op, infos(matrices, first_zero_pivot),
                lambda k: f"The diagonal element {k} is zero, the inversion could not be completed because the "
                          f"input matrix is singular.")


def raise_not_positive_definite(op, matrices):
    raise_error(op, infos(matrices, first_failing_minor),
                lambda k: f"The factorization could not be completed because the input is not positive-definite "
                          f"(the leading minor of order {k} is not positive-definite).")


def lu_solve(a, b):
    """a^-1 b by LU with IEEE arithmetic, as getrs goes on past a zero pivot (inf and NaN where torch has them)."""
    def solve_one(matrix, rhs):
        factors, rows, _, _ = lu(matrix)
        x = np.array(rhs[rows])
        n = factors.shape[-1]
        with np.errstate(all="ignore"):
            for k in range(n):  # L y = P b, L unit lower
                x[k + 1:] -= np.outer(factors[k + 1:, k], x[k])
            for k in reversed(range(n)):  # U x = y
                x[k] /= factors[k, k]
                x[:k] -= np.outer(factors[:k, k], x[k])
        return x
    flat_a = backend.to_numpy(a).reshape((-1,) + a.shape[-2:])
    flat_b = backend.to_numpy(b).reshape((-1,) + b.shape[-2:])
    out = np.array([solve_one(m, rhs) for m, rhs in zip(flat_a, flat_b)], dtype=a.dtype)
    return backend.xp_of(a).asarray(out.reshape(b.shape))


def partial_cholesky(matrices):
    """The lower Cholesky factor of each matrix, as far as potf2 gets: at the first minor that is not
    positive-definite the diagonal keeps the value whose square root was due, and the columns after it
    keep the input's lower triangle (what torch's cholesky_ex returns)."""
    def one(matrix):
        a = np.tril(matrix)
        with np.errstate(all="ignore"):
            for j in range(a.shape[-1]):
                pivot = a[j, j] - a[j, :j] @ a[j, :j]
                a[j, j] = pivot
                if not pivot > 0:
                    break
                a[j, j] = np.sqrt(pivot)
                a[j + 1:, j] = (a[j + 1:, j] - a[j + 1:, :j] @ a[j, :j]) / a[j, j]
        return a
    flat = backend.to_numpy(matrices).reshape((-1,) + matrices.shape[-2:])
    out = np.array([one(m) for m in flat], dtype=matrices.dtype).reshape(matrices.shape)
    return backend.xp_of(matrices).asarray(out)


def lu_determinants(matrices):
    """(det, sign, log|det|) from LU factors as torch computes them: the product of U's diagonal, the sign of
    each pivot (a NaN's is 0) and the sum of their logs; so inf and NaN propagate as in torch."""
    def one(matrix):
        factors, _, sign, _ = lu(matrix)
        pivots = np.diagonal(factors)
        with np.errstate(all="ignore"):
            return (sign * np.prod(pivots), sign * np.prod(np.nan_to_num(np.sign(pivots), nan=0.0)),
                    np.sum(np.log(np.abs(pivots))))
    flat = backend.to_numpy(matrices).reshape((-1,) + matrices.shape[-2:])
    out = np.array([one(m) for m in flat], dtype=matrices.dtype).reshape(matrices.shape[:-2] + (3,))
    return tuple(backend.xp_of(matrices).asarray(out[..., k]) for k in range(3))
