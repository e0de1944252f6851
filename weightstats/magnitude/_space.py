"""A fitted metric space and the weights new points would get in it.

Adding a point ``x`` with similarities ``c = exp(-t d(x, X))`` to a space with
weighting vector ``w`` gives ``x`` the weight ``(1 - c'w) / s`` in the
enlarged space, with ``s = 1 - c' Z^-1 c`` the Schur complement (the
conditional variance of a Gaussian process with covariance ``Z`` at ``x``);
the magnitude grows by ``(1 - c'w)^2 / s``.

The estimators score a point by "the weight it gets when it joins the other
training points": a new point joins all of them (the formula above), a
training point joins the others, which gives exactly its own weight ``w_i``
(the same formula applied to the space without it). A query point that
coincides with a training point (its similarity to it rounds to 1, or ``s``
underflows below 1e-10) is that training point and gets its weight.

Fitted spaces are plain dicts of arrays, so estimators pickle and round-trip
through skops without custom types.
"""

import numpy as np
from scipy.linalg import solve_triangular

from .._kernels import kernel_matrix
from ._solvers import (
    CHOLESKY_MAX_POINTS,
    LOCAL_NEIGHBORS,
    blas_threads,
    solve_cg,
    solve_cholesky,
    solve_local,
)

__all__ = [
    "S_MIN",
    "fit_space",
    "new_point_weights",
    "resolve_estimator_method",
    "schur_terms",
    "training_scores",
]

#: A Schur complement ``s = 1 - c' Z^-1 c`` below this means the query coincides
#: with a point of the space (its conditional variance has underflowed).
S_MIN = 1e-10
_QUERY_BLOCK_ENTRIES = 1 << 22  # rows of queries x points held at once (32 MB)


def resolve_estimator_method(method, n_points):
    """``"auto"`` for estimators: exact up to CHOLESKY_MAX_POINTS, local beyond."""
    if method == "auto":
        return "cholesky" if n_points <= CHOLESKY_MAX_POINTS else "local"
    return method


def fit_space(points, t, *, metric, method, n_neighbors=None, tol=1e-8, n_jobs=None):
    """Weighting vector of the distinct ``points`` plus what scoring new points needs.

    Returns a dict with ``points``, ``weights``, ``t``, ``metric``, ``method``,
    ``n_neighbors``, ``factor`` (the upper Cholesky factor for the exact
    method, else ``None``) and ``info`` (from the solver).
    """
    with blas_threads(n_jobs):
        return _fit_space(points, t, metric=metric, method=method, n_neighbors=n_neighbors,
                          tol=tol, n_jobs=n_jobs)


def _fit_space(points, t, *, metric, method, n_neighbors, tol, n_jobs):
    method = resolve_estimator_method(method, points.shape[0])
    factor = None
    if points.shape[0] == 1:
        weights, info = np.ones(1), {"method": method}
        factor = np.ones((1, 1)) if method == "cholesky" else None
    elif method == "cholesky":
        weights, info, factor = solve_cholesky(points, t, metric, n_jobs)
        # LAPACK leaves the strict lower triangle as it was: clear it before storing.
        for j in range(factor.shape[1] - 1):
            factor[j + 1 :, j] = 0.0
    elif method == "cg":
        weights, info = solve_cg(points, t, metric, tol=tol, n_neighbors=n_neighbors,
                                 n_jobs=n_jobs)
    else:
        weights, info = solve_local(points, t, metric, n_neighbors, n_jobs)
    k = LOCAL_NEIGHBORS if n_neighbors is None else n_neighbors
    return {
        "points": points,
        "weights": weights,
        "t": float(t),
        "metric": metric,
        "method": method,
        "n_neighbors": int(min(k, points.shape[0])),
        "factor": factor,
        "info": info,
    }


def schur_terms(R, C, w):
    """What adding each query to a space with Cholesky factor ``R`` takes.

    Parameters
    ----------
    R : ndarray of shape (n, n)
        Upper Cholesky factor of the space's similarity matrix, ``R'R = Z``.
    C : ndarray of shape (m, n)
        Similarities of ``m`` queries to the ``n`` points.
    w : ndarray of shape (n,)
        The space's weighting vector.

    Returns
    -------
    V : ndarray of shape (n, m)
        ``R'^-1 C'``, so that ``c' Z^-1 c = |V[:, q]|^2``.
    numerator : ndarray of shape (m,)
        ``1 - c'w``.
    s : ndarray of shape (m,)
        The Schur complements ``1 - c' Z^-1 c``; a query's weight on joining
        is ``numerator / s``, the magnitude increase ``numerator^2 / s``.
    """
    V = solve_triangular(R, C.T, trans="T", lower=False, check_finite=False)
    return V, 1.0 - C @ w, 1.0 - np.einsum("ij,ij->j", V, V)


def _exact_new_weights(space, Q, n_jobs):
    U, w, R, t = space["points"], space["weights"], space["factor"], space["t"]
    out = np.empty(Q.shape[0])
    block = max(1, _QUERY_BLOCK_ENTRIES // U.shape[0])
    for start in range(0, Q.shape[0], block):
        C = kernel_matrix(Q[start : start + block], U, kernel="laplacian", scale=t,
                          metric=space["metric"], n_jobs=n_jobs)
        _, numerator, s = schur_terms(R, C, w)
        nearest = np.argmax(C, axis=1)
        same = (C[np.arange(C.shape[0]), nearest] >= 1.0) | (s < S_MIN)
        with np.errstate(divide="ignore", invalid="ignore"):
            weights = numerator / s
        out[start : start + block] = np.where(same, w[nearest], weights)
    return out


def _local_new_weights(space, Q, n_jobs):
    """Weight of each query in the space of itself and its k nearest training points.

    For the local method this is the rule that produced the training weights;
    for CG fits the numerator ``1 - c'w`` uses all training weights and only
    ``s`` comes from the neighbourhood (at the large scales where it is used,
    far points barely change it).
    """
    from sklearn.neighbors import NearestNeighbors

    from .._kernels._laplacian import laplacian_matvec
    from .._kernels._local import local_weights

    U, w, t, metric = space["points"], space["weights"], space["t"], space["metric"]
    k = min(space["n_neighbors"], U.shape[0])
    index = NearestNeighbors(n_neighbors=k, metric=metric, n_jobs=n_jobs).fit(U)
    distance, neighbors = index.kneighbors(Q)
    if space["method"] == "local":
        weights, _ = local_weights(Q, U, neighbors, scale=t, metric=metric, n_jobs=n_jobs)
    else:
        numerator = 1.0 - laplacian_matvec(Q, U, w, scale=t, metric=metric, n_jobs=n_jobs)
        s, _ = local_weights(Q, U, neighbors, scale=t, metric=metric, schur=True, n_jobs=n_jobs)
        with np.errstate(divide="ignore", invalid="ignore"):
            weights = np.where(s < S_MIN, np.nan, numerator / s)
    same = (np.exp(-t * distance[:, 0]) >= 1.0) | ~np.isfinite(weights)
    return np.where(same, w[neighbors[:, 0]], weights)


def new_point_weights(space, Q, *, n_jobs=None):
    """Weight each row of ``Q`` would get on joining the space (training points: their own)."""
    with blas_threads(n_jobs):
        if space["factor"] is not None:
            return _exact_new_weights(space, Q, n_jobs)
        return _local_new_weights(space, Q, n_jobs)


def training_scores(space, distinct):
    """Per-row training scores: each row's point weight (copies get the full weight)."""
    return distinct.broadcast(space["weights"])
