"""Low-rank factors of kernel matrices: pivoted (incomplete) Cholesky.

``pivoted_cholesky`` builds ``L`` (n x r) with ``K ~= L L'`` one column at a
time, always pivoting on the point whose diagonal is worst approximated
(Fine and Scheinberg 2001; Harbrecht, Peters and Schneider 2012). Only r
kernel columns are ever computed (O(n r d) kernel work, O(n r^2) arithmetic,
O(n r) memory).

The residual ``E = K - L L'`` is positive semi-definite and its diagonal is
returned, which gives checkable error bounds: ``|E_ij| <= sqrt(E_ii E_jj)``,
``||E||_2 <= trace(E)``, and for any vector ``v``
``0 <= v'Ev <= (sum_i |v_i| sqrt(E_ii))^2``. Smooth kernels (a Gaussian whose
bandwidth is wide relative to the spread of the data) need very few columns.
"""

import numbers

import numpy as np

from ._pairwise import _check_positive

__all__ = ["pivoted_cholesky"]


def _kernel_column(X, x, kernel, bandwidth, scale, metric):
    """One kernel column, from direct differences as in :func:`kernel_matrix` (no
    ``|x|^2 + |y|^2 - 2 x.y`` cancellation), vectorised: r columns cost O(n r d)."""
    diff = X - x
    if kernel == "gaussian":
        return np.exp(-np.einsum("ij,ij->i", diff, diff) / (2.0 * bandwidth**2))
    if metric == "manhattan":
        return np.exp(-scale * np.abs(diff).sum(axis=1))
    return np.exp(-scale * np.sqrt(np.einsum("ij,ij->i", diff, diff)))


def pivoted_cholesky(X, *, kernel="gaussian", bandwidth=1.0, scale=1.0, metric="euclidean",
                     tol=1e-10, max_rank=None, n_jobs=None, init=None):
    """Pivoted Cholesky factor ``L`` with ``kernel_matrix(X) ~= L @ L.T``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The points.
    kernel : {"gaussian", "laplacian"}, default="gaussian"
        A positive definite kernel of :func:`kernel_matrix` (unit diagonal).
    bandwidth : float, default=1.0
        Gaussian bandwidth.
    scale : float, default=1.0
        Laplacian scale.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        Distance of the Laplacian kernel.
    tol : float, default=1e-10
        Stop once the trace of the residual is at most ``tol * n_samples``.
    max_rank : int, default=None
        Stop after this many columns (``None``: ``n_samples``).
    n_jobs : int, default=None
        Accepted for a uniform signature; the columns are cheap vectorised
        NumPy and the updates BLAS.
    init : tuple, default=None
        A previous result ``(L, pivots, residual)`` for the same points and
        kernel, to continue to a tighter ``tol`` (the first columns of a
        pivoted Cholesky factor are the factor of lower rank).

    Returns
    -------
    L : ndarray of shape (n_samples, rank)
        The factor (Fortran order).
    pivots : ndarray of shape (rank,)
        Indices of the pivot points, in order.
    residual : ndarray of shape (n_samples,)
        Diagonal of ``K - L L'`` (non-negative).

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats._kernels import kernel_matrix
    >>> from weightstats._kernels._lowrank import pivoted_cholesky
    >>> X = np.random.default_rng(0).standard_normal((200, 3))
    >>> L, pivots, residual = pivoted_cholesky(X, bandwidth=5.0, tol=1e-8)
    >>> L.shape
    (200, 56)
    >>> error = np.abs(kernel_matrix(X, bandwidth=5.0) - L @ L.T).max()
    >>> bool(error <= residual.max() + 1e-15 < 1e-7)
    True
    """
    if kernel not in ("gaussian", "laplacian"):
        raise ValueError(f"kernel must be 'gaussian' or 'laplacian'; got {kernel!r}.")
    if metric not in ("euclidean", "manhattan") or (kernel == "gaussian" and metric != "euclidean"):
        raise ValueError(f"metric must be 'euclidean' (or 'manhattan' for laplacian); got {metric!r}.")
    _check_positive(bandwidth if kernel == "gaussian" else scale,
                    "bandwidth" if kernel == "gaussian" else "scale")
    X = np.ascontiguousarray(X, dtype=np.float64)
    n = X.shape[0]
    if max_rank is None:
        max_rank = n
    if not isinstance(max_rank, numbers.Integral) or max_rank < 1:
        raise ValueError(f"max_rank must be a positive integer; got {max_rank!r}.")
    max_rank = min(int(max_rank), n)
    L = np.zeros((n, max_rank), order="F")
    if init is None:
        residual = np.ones(n)  # both kernels have k(x, x) = 1
        pivots = []
    else:
        L0, pivots0, residual0 = init
        start = min(L0.shape[1], max_rank)
        L[:, :start] = L0[:, :start]
        pivots = list(pivots0[:start])
        if start == L0.shape[1]:
            residual = residual0.copy()
        else:  # truncated: the residual of the leading columns
            residual = np.maximum(1.0 - np.einsum("ij,ij->i", L[:, :start], L[:, :start]), 0.0)
            residual[pivots] = 0.0
    threshold = tol * n
    for k in range(len(pivots), max_rank):
        if residual.sum() <= threshold:
            break
        i = int(np.argmax(residual))
        pivot_value = residual[i]
        if pivot_value <= 0.0:
            break
        col = _kernel_column(X, X[i], kernel, bandwidth, scale, metric)
        if k:
            col -= L[:, :k] @ L[i, :k]
        col /= np.sqrt(pivot_value)
        L[:, k] = col
        residual -= col * col
        # Rounding can leave tiny negative values; the pivot itself is exact.
        np.maximum(residual, 0.0, out=residual)
        residual[i] = 0.0
        pivots.append(i)
    rank = len(pivots)
    return np.asfortranarray(L[:, :rank]), np.asarray(pivots, dtype=np.intp), residual
