"""Small dense solves on nearest-neighbour sets, for the local magnitude methods.

Two kernels, one per point and independent of each other (so ``prange``
parallelises them perfectly):

* ``local_weights``: the weight of ``P[i]`` in the space made of ``P[i]`` and
  its neighbours ``Y[neighbors[i]]``, i.e. entry 0 of the weighting vector of
  that small space. With ``P = Y = X`` and ``neighbors`` the k nearest
  neighbours this is the linear-time local approximation of the weighting
  vector; with ``P`` new points and ``Y`` the training points it is the
  approximate weight a new point would get.
* ``fsai_rows``: the rows of a factorised sparse approximate inverse
  ``G`` with ``G Z G' ~ I`` (Kolotilina and Yeremin, 1993), the
  preconditioner of the conjugate-gradient solver. Row ``i`` solves
  ``Z[J, J] g = e_last`` on ``J = neighbors[i] + [i]`` and is scaled to
  ``g / sqrt(g_last)``; ``Z[J, J]`` is symmetric positive definite, so
  ``G' G`` is too.

Both form the small similarity matrix with exact distances and factor it with
a hand-written Cholesky. A pivot below ``_PIVOT_MIN`` (near-duplicate points)
gets the diagonal jitter ``_JITTER``; the kernels report which rows needed it.
Neighbour lists are padded with ``-1``.
"""

import numpy as np
from numba import prange

from ._dispatch import jit_variants

__all__ = ["fsai_rows", "local_weights"]

_PIVOT_MIN = 1e-12
_JITTER = 1e-10


def _fill_similarity(P, i, Y, idx, m, t, metric, A):
    """A[:m, :m] = exp(-t d) on the points P[i], Y[idx[0]], ..., Y[idx[m - 2]]."""
    n_features = P.shape[1]
    for a in range(m):
        A[a, a] = 1.0
        for b in range(a):
            dist = 0.0
            for k in range(n_features):
                xa = P[i, k] if a == 0 else Y[idx[a - 1], k]
                xb = P[i, k] if b == 0 else Y[idx[b - 1], k]
                diff = xa - xb
                dist += abs(diff) if metric == 1 else diff * diff
            if metric == 0:
                dist = np.sqrt(dist)
            A[a, b] = np.exp(-t * dist)


def _cholesky_in_place(A, m, jitter):
    """Lower Cholesky factor of A[:m, :m] + jitter I in place; False if a pivot fails."""
    for j in range(m):
        s = A[j, j] + jitter
        for k in range(j):
            s -= A[j, k] * A[j, k]
        if s < _PIVOT_MIN:
            return False
        s = np.sqrt(s)
        A[j, j] = s
        for r in range(j + 1, m):
            acc = A[r, j]
            for k in range(j):
                acc -= A[r, k] * A[j, k]
            A[r, j] = acc / s
    return True


def _solve_in_place(A, m, b):
    """Solve (L L') x = b with L = lower(A[:m, :m]), overwriting b[:m]."""
    for r in range(m):
        acc = b[r]
        for k in range(r):
            acc -= A[r, k] * b[k]
        b[r] = acc / A[r, r]
    for r in range(m - 1, -1, -1):
        acc = b[r]
        for k in range(r + 1, m):
            acc -= A[k, r] * b[k]
        b[r] = acc / A[r, r]


def _neighbour_count(idx):
    count = 0
    for q in range(idx.shape[0]):
        if idx[q] < 0:
            break
        count += 1
    return count


_fill_jit = jit_variants(_fill_similarity).serial
_cholesky_jit = jit_variants(_cholesky_in_place).serial


def _factor(P, i, Y, idx, m, t, metric, A):
    """Factor the neighbourhood similarity matrix; returns True if jitter was needed."""
    _fill_jit(P, i, Y, idx, m, t, metric, A)
    if _cholesky_jit(A, m, 0.0):
        return False
    jitter = _JITTER
    while True:
        _fill_jit(P, i, Y, idx, m, t, metric, A)
        if _cholesky_jit(A, m, jitter):
            return True
        jitter *= 10.0


_factor_jit = jit_variants(_factor).serial
_solve_jit = jit_variants(_solve_in_place).serial
_count_jit = jit_variants(_neighbour_count).serial


@jit_variants
def _local_weights_kernel(P, Y, neighbors, t, metric, schur, out, jittered):
    # schur: 0 -> entry 0 of Z_J^-1 1 (the weight), 1 -> 1 / (Z_J^-1)_00 (the Schur complement).
    size = neighbors.shape[1] + 1
    for i in prange(P.shape[0]):
        A = np.empty((size, size))
        b = np.empty(size)
        idx = neighbors[i]
        m = _count_jit(idx) + 1
        jittered[i] = _factor_jit(P, i, Y, idx, m, t, metric, A)
        for r in range(m):
            b[r] = 0.0 if schur == 1 and r > 0 else 1.0
        _solve_jit(A, m, b)
        out[i] = 1.0 / b[0] if schur == 1 else b[0]


@jit_variants
def _fsai_kernel(X, Y, neighbors, t, metric, indptr, indices, data, jittered):
    # J = [i, neighbours...]: then e_last of the text is e_0 here.
    size = neighbors.shape[1] + 1
    for i in prange(X.shape[0]):
        A = np.empty((size, size))
        b = np.empty(size)
        idx = neighbors[i]
        m = _count_jit(idx) + 1
        jittered[i] = _factor_jit(X, i, Y, idx, m, t, metric, A)
        for r in range(m):
            b[r] = 0.0
        b[0] = 1.0
        _solve_jit(A, m, b)
        scale = 1.0 / np.sqrt(b[0])
        start = indptr[i]
        indices[start] = i
        data[start] = b[0] * scale
        for q in range(1, m):
            indices[start + q] = idx[q - 1]
            data[start + q] = b[q] * scale


_METRIC_CODES = {"euclidean": 0, "manhattan": 1}


def _check_neighbors(neighbors, n_points, name):
    neighbors = np.ascontiguousarray(neighbors, dtype=np.int64)
    if neighbors.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array of indices (pad with -1).")
    if neighbors.size and neighbors.max() >= n_points:
        raise ValueError(f"{name} has an index beyond the {n_points} points.")
    return neighbors


def local_weights(P, Y, neighbors, *, scale, metric="euclidean", schur=False, n_jobs=None):
    """Weight of each ``P[i]`` in the space ``{P[i]} + Y[neighbors[i]]``.

    Parameters
    ----------
    P : ndarray of shape (n_points, n_features)
        The points whose weights are wanted.
    Y : ndarray of shape (n_samples, n_features)
        The neighbour points.
    neighbors : ndarray of int of shape (n_points, k)
        Indices into ``Y``, padded at the end with ``-1``; they must not
        include ``P[i]`` itself.
    scale : float
        The scale ``t > 0``.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance.
    schur : bool, default=False
        Return instead the Schur complement ``1 - c' Z_N^-1 c`` of ``P[i]``
        given its neighbours (``c`` its similarities to them).
    n_jobs : int, default=None
        Threads; ``None`` means 1, ``-1`` all processors.

    Returns
    -------
    weights : ndarray of shape (n_points,)
        The local weights (or Schur complements).
    jittered : ndarray of bool of shape (n_points,)
        Rows whose neighbourhood matrix needed diagonal jitter.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats._kernels._local import local_weights
    >>> X = np.array([[0.0], [1.0]])
    >>> w, jittered = local_weights(X, X, [[1], [0]], scale=1.0)
    >>> w.round(6)  # two points: 1 / (1 + exp(-1)) each
    array([0.731059, 0.731059])
    """
    P = np.ascontiguousarray(P, dtype=np.float64)
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    neighbors = _check_neighbors(neighbors, Y.shape[0], "neighbors")
    if neighbors.shape[0] != P.shape[0]:
        raise ValueError("neighbors needs one row per point of P.")
    out = np.empty(P.shape[0])
    jittered = np.zeros(P.shape[0], dtype=np.bool_)
    _local_weights_kernel(
        P, Y, neighbors, float(scale), _METRIC_CODES[metric], int(bool(schur)), out, jittered,
        n_jobs=n_jobs,
    )
    return out, jittered


def fsai_rows(X, neighbors, *, scale, metric="euclidean", Y=None, n_jobs=None):
    """CSR arrays of the FSAI factor ``G`` (``G Z G' ~ I``) on a neighbour pattern.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The points whose rows are wanted.
    neighbors : ndarray of int of shape (n_samples, k)
        For each row, the column indices other than the diagonal (padded with
        ``-1``), as rows of ``Y``. For a lower-triangular ``G`` in some
        ordering, list only points that come earlier in it.
    scale : float
        The scale ``t > 0``.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance.
    Y : ndarray of shape (n_points, n_features), default=None
        Where the neighbours' coordinates are; ``None`` means ``X`` (the
        neighbours of a block of rows can be passed as their own array).
    n_jobs : int, default=None
        Threads; ``None`` means 1, ``-1`` all processors.

    Returns
    -------
    data, indices, indptr : ndarray
        ``scipy.sparse.csr_matrix((data, indices, indptr))`` is ``G``; each
        row starts with its diagonal entry. Indices are rows of ``Y``, the
        diagonal ones rows of ``X`` (the same when ``Y`` is ``None``).
    jittered : ndarray of bool of shape (n_samples,)
        Rows whose neighbourhood matrix needed diagonal jitter.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats._kernels._local import fsai_rows
    >>> data, indices, indptr, _ = fsai_rows(np.array([[0.0], [1.0]]), [[-1], [0]], scale=1.0)
    >>> indptr.tolist(), indices.tolist()
    ([0, 1, 3], [0, 1, 0])
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    Y = X if Y is None else np.ascontiguousarray(Y, dtype=np.float64)
    neighbors = _check_neighbors(neighbors, Y.shape[0], "neighbors")
    if neighbors.shape[0] != X.shape[0]:
        raise ValueError("neighbors needs one row per point of X.")
    counts = (neighbors >= 0).sum(axis=1) + 1
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = np.empty(indptr[-1], dtype=np.int64)
    data = np.empty(indptr[-1])
    jittered = np.zeros(X.shape[0], dtype=np.bool_)
    _fsai_kernel(
        X, Y, neighbors, float(scale), _METRIC_CODES[metric], indptr, indices, data, jittered,
        n_jobs=n_jobs,
    )
    return data, indices, indptr, jittered
