"""Solvers and input checks for weighting vectors (shared by every magnitude module).

For points ``x_1..x_n`` and a scale ``t > 0`` the similarity matrix is
``Z[i, j] = exp(-t d(x_i, x_j))``; the weighting vector ``w`` solves
``Z w = 1`` and the magnitude is ``sum(w)``. ``Z`` is positive definite for
distinct points under the Euclidean and Manhattan metrics (the Laplacian
kernel is positive definite on both), so three solvers apply:

* ``"cholesky"``: ``Z`` is formed (lower triangle only) and factored in place
  by LAPACK ``potrf``; the exact reference. O(n^2) memory, O(n^3) time.
* ``"cg"``: conjugate gradients (scipy's ``cg``) with matrix-free products
  ``Z v`` (each pair formed once per product, O(n) memory), preconditioned by
  a factorised sparse approximate inverse (FSAI) on a nearest-neighbour
  pattern; on a ``dask.distributed`` cluster through ``_distributed``.
* ``"local"``: each point's weight from the weighting vector of the point and
  its ``k`` nearest neighbours; linear time, accurate only at large ``t``, and
  no magnitude (local weights do not sum to it).

Duplicated rows are merged before solving: the weighting vector of the
distinct points is computed and each copy gets an equal share of its point's
weight. This is the minimum-norm solution of the singular but consistent
system, and the magnitude equals that of the set of distinct points.
"""

import contextlib
import numbers
import time
import warnings

import numpy as np
from scipy.linalg import LinAlgWarning, blas, lapack
from scipy.sparse.linalg import LinearOperator, cg
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_array

from .._kernels import n_threads_from_jobs
from .._kernels._pairwise import _check_positive
from .._kernels._laplacian import laplacian_lower, laplacian_symv, laplacian_symv_single
from ._distributed import DistributedPoints

METRICS = ("euclidean", "manhattan")
METHODS = ("auto", "cholesky", "cg", "local")
#: ``method="auto"`` uses the dense Cholesky factorisation up to this many distinct points
#: (the factor takes 8 n^2 bytes: 800 MB here) and conjugate gradients beyond.
CHOLESKY_MAX_POINTS = 10_000
#: Default number of neighbours of the local method.
LOCAL_NEIGHBORS = 50
#: CG preconditioners: the factorised sparse approximate inverse, or none.
PRECONDITIONERS = ("fsai", None)
#: Default size of the FSAI preconditioner's neighbour pattern.
FSAI_NEIGHBORS = 64
#: CG uses single-precision products first from this many distinct points on.
MIXED_PRECISION_MIN_POINTS = 4096
#: A Cholesky pivot (the conditional variance of a point given the earlier ones)
#: below this means near-duplicate points or a tiny ``t``: the jitter fallback starts.
PIVOT_MIN = 1e-10


def check_points(X, *, name="X", min_points=2):
    """Validate a point cloud: 2-d, numeric, finite, at least ``min_points`` rows."""
    X = check_array(X, dtype=np.float64, order="C", input_name=name)
    if X.shape[0] < min_points:
        raise ValueError(
            f"{name} has {X.shape[0]} point(s); magnitude needs at least {min_points} "
            "points (n_samples >= 2)."
        )
    return X


def check_scale(t, name="t"):
    """Validate a scale: a positive finite number."""
    _check_positive(t, name)
    return float(t)


def check_metric(metric):
    """Validate a metric name."""
    if metric not in METRICS:
        raise ValueError(
            f"metric={metric!r} is not supported; use one of {list(METRICS)} (the similarity "
            "exp(-t d) is positive definite for both, which the solvers rely on)."
        )
    return metric


def check_method(method):
    """Validate a solver name."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}.")
    return method


def check_magnitude_method(method, option="method"):
    """Refuse the local method where a magnitude is wanted."""
    if method == "local":
        raise ValueError(
            f"{option}='local' gives each point its weight in its own neighbourhood, and local "
            "weights do not sum to the magnitude (their sum can be negative or far above it); "
            f"use {option}='cholesky' (exact) or 'cg' (matrix-free, for large n)."
        )
    return method


class DistinctPoints:
    """The distinct rows of ``X`` and how the rows map onto them.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Validated points.

    Attributes
    ----------
    points : ndarray of shape (n_distinct, n_features)
        The distinct points, in order of first appearance.
    inverse : ndarray of int of shape (n_samples,) or None
        Row -> distinct point; ``None`` when all rows are distinct.
    counts : ndarray of int of shape (n_distinct,) or None
        Copies of each distinct point; ``None`` when all rows are distinct.
    """

    def __init__(self, X):
        # ``+ 0.0`` turns -0.0 into 0.0, so the comparison sees points, not bit patterns.
        rows = np.ascontiguousarray(X + 0.0).view(np.dtype((np.void, 8 * X.shape[1])))[:, 0]
        _, first, inverse, counts = np.unique(
            rows, return_index=True, return_inverse=True, return_counts=True
        )
        if first.shape[0] == X.shape[0]:
            self.points, self.inverse, self.counts = X, None, None
            return
        # Number the distinct points in order of first appearance.
        order = np.argsort(first, kind="stable")
        relabel = np.empty_like(order)
        relabel[order] = np.arange(order.shape[0])
        self.points = np.ascontiguousarray(X[first[order]])
        self.inverse = relabel[inverse.ravel()]
        self.counts = counts[order]

    @property
    def n_distinct(self):
        return self.points.shape[0]

    def split(self, values):
        """Per-row values from per-point ``values``, each copy getting an equal share."""
        if self.inverse is None:
            return values
        return (values / self.counts)[self.inverse]

    def broadcast(self, values):
        """Per-row values from per-point ``values`` (copies get the full value)."""
        return values if self.inverse is None else values[self.inverse]


def check_distinct(distinct, name="X"):
    """Raise when fewer than two distinct points remain."""
    if distinct.n_distinct < 2:
        raise ValueError(
            f"all points of {name} are identical: the magnitude of a one-point space is 1 at "
            "every scale and no scale or weighting can be estimated; pass at least two "
            "distinct points."
        )


# --------------------------------------------------------------------- solvers

_CONTROLLER = None


@contextlib.contextmanager
def blas_threads(n_jobs):
    """Limit BLAS/LAPACK to the threads ``n_jobs`` allows (1 for ``None``).

    ``n_jobs`` bounds all of a call's parallelism, not only the numba kernels:
    multithreaded BLAS on a busy machine (or under pytest-xdist) loses far more
    to oversubscription than it gains.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=n_threads_from_jobs(n_jobs), user_api="blas"):
        yield


def _cholesky_factor(U, t, metric, n_jobs):
    """Upper Cholesky factor R (F-order, R'R = Z) of the similarity matrix, or None."""
    Z = laplacian_lower(U, scale=t, metric=metric, n_jobs=n_jobs)
    # Z.T is F-contiguous with our lower triangle as its upper one: potrf works
    # in place, with no copy of the n x n matrix.
    R, info = lapack.dpotrf(Z.T, lower=0, overwrite_a=1, clean=0)
    if info != 0 or np.min(np.diagonal(R)) ** 2 < PIVOT_MIN:
        return None
    return R


def _jittered_solution(U, t, metric, n_jobs, max_refinements=20):
    """Weighting vector of an ill-conditioned Z: jitter the diagonal, then refine.

    ``Z + jitter I`` is factored with the smallest jitter (1e-10, 1e-9, ...)
    whose pivots pass; iterative refinement against the exact ``Z`` then
    removes as much of the jitter's bias as the conditioning allows.
    """
    Z = laplacian_lower(U, scale=t, metric=metric, n_jobs=n_jobs).T  # upper triangle valid
    n = Z.shape[0]
    ones = np.ones(n)
    jitter = PIVOT_MIN
    while True:
        A = Z.copy(order="F")
        A[np.diag_indices(n)] += jitter
        R, info = lapack.dpotrf(A, lower=0, overwrite_a=1, clean=0)
        if info == 0 and np.min(np.diagonal(R)) ** 2 >= PIVOT_MIN:
            break
        jitter *= 10.0
    w, _ = lapack.dpotrs(R, ones, lower=0)
    residual = ones - blas.dsymv(1.0, Z, w, lower=0)
    norm = np.linalg.norm(residual)
    steps = 0
    for _ in range(max_refinements):
        correction, _ = lapack.dpotrs(R, residual, lower=0)
        candidate = w + correction
        new_residual = ones - blas.dsymv(1.0, Z, candidate, lower=0)
        new_norm = np.linalg.norm(new_residual)
        if not new_norm < 0.9 * norm:
            break
        w, residual, norm, steps = candidate, new_residual, new_norm, steps + 1
    relative = norm / np.sqrt(n)
    warnings.warn(
        "The similarity matrix exp(-t D) is numerically singular at t="
        f"{t:.4g} (near-duplicate points or a very small scale): added jitter {jitter:.1e} "
        f"to its diagonal; after {steps} refinement step(s) the relative residual "
        f"||1 - Z w|| / ||1|| is {relative:.1e}.",
        LinAlgWarning,
        stacklevel=4,
    )
    return w, {"jitter": jitter, "residual": relative, "n_refinements": steps}, R


def solve_cholesky(U, t, metric="euclidean", n_jobs=None):
    """Exact weighting vector by Cholesky; returns ``(w, info, R)`` with ``R'R = Z``.

    Only the upper triangle of ``R`` is meaningful (LAPACK leaves the rest).
    """
    R = _cholesky_factor(U, t, metric, n_jobs)
    if R is None:
        w, info, R = _jittered_solution(U, t, metric, n_jobs)
    else:
        w, _ = lapack.dpotrs(R, np.ones(U.shape[0]), lower=0, overwrite_b=1)
        info = {"jitter": 0.0, "residual": None}
    return w, {"method": "cholesky", **info}, R


#: Exact neighbour search: scikit-learn's trees in few dimensions, our brute-force
#: kernel beyond (trees degenerate there) up to this many points.
BRUTE_FORCE_MIN_FEATURES = 5
BRUTE_FORCE_MAX_POINTS = 200_000


def nearest_neighbors(U, n_neighbors, metric, n_jobs):
    """Indices of the ``n_neighbors`` nearest other points of each point."""
    k = min(n_neighbors, U.shape[0] - 1)
    if U.shape[1] >= BRUTE_FORCE_MIN_FEATURES and U.shape[0] <= BRUTE_FORCE_MAX_POINTS:
        from .._kernels._knn import nearest_neighbors_brute

        return nearest_neighbors_brute(U, k, metric=metric, n_jobs=n_jobs)
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=k, metric=metric, n_jobs=n_jobs).fit(U)
    return index.kneighbors(return_distance=False)


class Neighbours:
    """Nearest-neighbour lists of the distinct points, computed once and reused."""

    def __init__(self, U, metric, n_jobs):
        self.U, self.metric, self.n_jobs = U, metric, n_jobs
        self._cache = None

    def get(self, k):
        k = min(k, self.U.shape[0] - 1)
        if self._cache is None or self._cache.shape[1] < k:
            self._cache = nearest_neighbors(self.U, k, self.metric, self.n_jobs)
        return self._cache[:, :k]


def solve_local(U, t, metric="euclidean", n_neighbors=None, n_jobs=None, neighbours=None):
    """Local approximation: each weight from its point and its k nearest neighbours."""
    from .._kernels._local import local_weights

    k = LOCAL_NEIGHBORS if n_neighbors is None else n_neighbors
    neighbours = neighbours or Neighbours(U, metric, n_jobs)
    w, jittered = local_weights(U, U, neighbours.get(k), scale=t, metric=metric, n_jobs=n_jobs)
    if jittered.any():
        warnings.warn(
            f"{int(jittered.sum())} neighbourhood(s) had numerically singular similarity "
            "matrices (near-duplicate points) and were solved with diagonal jitter >= 1e-10.",
            LinAlgWarning,
            stacklevel=3,
        )
    info = {"method": "local", "n_neighbors": min(k, U.shape[0] - 1),
            "n_jittered": int(jittered.sum())}
    return w, info


def _fsai_preconditioner(U, t, metric, k, neighbours, n_jobs):
    """M^-1 = G'G with G the FSAI factor on each point's earlier nearest neighbours.

    The ordering is a fixed pseudo-random permutation: with a spatial ordering
    every point's earlier neighbours would lie on one side of it.
    """
    import scipy.sparse as sp

    from .._kernels._local import fsai_rows

    n = U.shape[0]
    rank = np.empty(n, dtype=np.int64)
    rank[np.random.default_rng(0).permutation(n)] = np.arange(n)
    candidates = neighbours.get(2 * k)
    earlier = rank[candidates] < rank[:, None]
    # Stable sort moves the earlier neighbours to the front, nearest first.
    order = np.argsort(~earlier, axis=1, kind="stable")
    pattern = np.take_along_axis(np.where(earlier, candidates, -1), order, axis=1)[:, :k]
    data, indices, indptr, jittered = fsai_rows(U, pattern, scale=t, metric=metric, n_jobs=n_jobs)
    G = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    GT = G.T.tocsr()
    return lambda r: GT @ (G @ r), int(jittered.sum())


def _refine(matvec, precondition, x, r, tol, max_iter):
    """CG on ``Z e = r`` from zero, then ``x + e``; returns ``(x, converged, n_iter)``.

    ``r`` is the residual of ``x``, already computed, so scipy's ``cg`` starts
    from zero and spends no product on it. Stops when ``||r - Z e|| < tol ||1||``.
    """
    n = x.shape[0]
    if max_iter < 1:
        return x, False, 0
    n_iter = [0]

    def count(_):
        n_iter[0] += 1

    # scipy's cg against the hand-written loop it replaced, n = 20,000, d = 10, tol = 1e-8
    # (python -m benchmarks magnitude --only cg_loop): the same 13 products and the same
    # weights to the last bit; outside the products and the preconditioner the loops took
    # 16 ms (scipy) and 3 ms (hand-written) of solves lasting 56-141 s on a loaded 2-core
    # machine. The products are everything, so the maintained implementation is kept.
    Z = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    M = None if precondition is None else LinearOperator((n, n), matvec=precondition,
                                                         dtype=np.float64)
    e, status = cg(Z, r, rtol=0.0, atol=tol * np.sqrt(n), maxiter=max_iter, M=M,
                   callback=count)
    return x + e, status == 0, n_iter[0]


def solve_cg(
    U,
    t,
    metric="euclidean",
    *,
    tol=1e-8,
    max_iter=None,
    x0=None,
    preconditioner="fsai",
    n_neighbors=None,
    client=None,
    n_jobs=None,
    neighbours=None,
    mixed=None,
):
    """Preconditioned conjugate gradients on ``Z w = 1`` with matrix-free products.

    scipy's ``cg`` runs the iterations on a ``LinearOperator`` for ``Z`` and one
    for the preconditioner: ``"fsai"`` (a factorised sparse approximate
    inverse on each point's nearest earlier neighbours) or ``None``.

    Mixed precision (default from ``MIXED_PRECISION_MIN_POINTS`` points, not on
    dask): CG runs first with single-precision products (about twice as fast,
    relative error ~1e-7) down to ``max(tol, 1e-6)``; the true residual is
    then computed in double precision and, while above ``tol``, CG continues
    from there with double-precision products. Converged means the relative
    residual ``||1 - Z w|| / ||1||`` is below ``tol`` (the true one after the
    first phase, CG's recurrence in the second). Otherwise the true residual
    is computed and a ``ConvergenceWarning`` gives it.

    Returns ``(w, info)``; ``info["residual"]`` is the true relative residual
    where one was computed and ``None`` where CG's own recurrence certified
    ``tol`` (``info["converged"]``).
    """
    if preconditioner not in PRECONDITIONERS:
        raise ValueError(
            f"preconditioner must be 'fsai' or None; got {preconditioner!r}."
        )
    if client is not None and not isinstance(U, DistributedPoints):
        U = DistributedPoints(client, U, metric)
    distributed = isinstance(U, DistributedPoints)
    n = U.shape[0]
    max_iter = max(100, n // 10) if max_iter is None else max_iter
    if mixed is None:
        mixed = n >= MIXED_PRECISION_MIN_POINTS
    mixed = mixed and not distributed  # single-precision products run on one machine only
    info = {"method": "cg", "tol": tol, "preconditioner": preconditioner, "n_jittered": 0}
    if distributed:
        matvec = U.matvec(t)
        info.update(n_blocks=U.n_blocks, pairs_per_product=U.pairs_per_product())
    else:
        UT = np.ascontiguousarray(U.T)

        def matvec(v):
            return laplacian_symv(U, v, scale=t, metric=metric, n_jobs=n_jobs, _XT=UT)

    start = time.perf_counter()
    precondition = None
    if preconditioner == "fsai" and n > 2:
        k = FSAI_NEIGHBORS if n_neighbors is None else n_neighbors
        if distributed:
            precondition, info["n_jittered"] = U.fsai(t, k)
        else:
            neighbours = neighbours or Neighbours(U, metric, n_jobs)
            precondition, info["n_jittered"] = _fsai_preconditioner(
                U, t, metric, k, neighbours, n_jobs
            )
    info["setup_seconds"] = time.perf_counter() - start
    ones = np.ones(n)
    x = np.zeros(n) if x0 is None else np.array(x0, dtype=np.float64)
    warm = bool(x.any())
    n_single = n_double = 0
    if mixed:
        U32 = U.astype(np.float32)
        UT32 = np.ascontiguousarray(U32.T)

        def matvec_single(v):
            return laplacian_symv_single(U32, v, scale=t, metric=metric, n_jobs=n_jobs,
                                         _XT=UT32)

        r = ones - matvec_single(x) if warm else ones
        x, _, n_single = _refine(matvec_single, precondition, x, r, max(tol, 1e-6), max_iter)
    residual = None
    if mixed or warm:
        r = ones - matvec(x)
        n_double += 1
        residual = np.linalg.norm(r) / np.sqrt(n)
    else:
        r = ones
    converged = residual is not None and residual < tol
    n_iter = 0
    if not converged:
        x, converged, n_iter = _refine(matvec, precondition, x, r, tol, max_iter - n_single)
        n_double += n_iter
        residual = None
        if not converged:
            residual = np.linalg.norm(ones - matvec(x)) / np.sqrt(n)
            n_double += 1
            converged = residual < tol
    if not converged:
        warnings.warn(
            f"conjugate gradients stopped after {n_single + n_iter} iterations with relative "
            f"residual {residual:.2e} > tol={tol:.1e}; increase max_iter or use "
            "method='cholesky'.",
            ConvergenceWarning,
            stacklevel=3,
        )
    info.update(n_iter=n_single + n_iter, n_iter_single=n_single, n_matvec_double=n_double,
                converged=converged, residual=residual, jitter=0.0,
                solve_seconds=time.perf_counter() - start - info["setup_seconds"])
    return x, info


# ------------------------------------------------------------ dispatch


def resolve_method(method, n_distinct, client):
    check_method(method)
    if client is not None:
        if method not in ("auto", "cg"):
            raise ValueError(
                f"client= runs the conjugate-gradient products; got method={method!r}."
            )
        return "cg"
    if method == "auto":
        return "cholesky" if n_distinct <= CHOLESKY_MAX_POINTS else "cg"
    return method


def check_solver_options(tol, max_iter, n_neighbors):
    if not isinstance(tol, numbers.Real) or isinstance(tol, bool) or not 0 < tol < 1:
        raise ValueError(f"tol must be a number in (0, 1); got {tol!r}.")
    for value, name in ((max_iter, "max_iter"), (n_neighbors, "n_neighbors")):
        if value is not None and (
            not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1
        ):
            raise ValueError(f"{name} must be a positive integer or None; got {value!r}.")


def solve(U, t, metric, method, *, tol, max_iter, n_neighbors, client, n_jobs, x0=None,
           neighbours=None):
    with blas_threads(n_jobs):
        return _solve_unlimited(U, t, metric, method, tol=tol, max_iter=max_iter,
                                n_neighbors=n_neighbors, client=client, n_jobs=n_jobs, x0=x0,
                                neighbours=neighbours)


def _solve_unlimited(U, t, metric, method, *, tol, max_iter, n_neighbors, client, n_jobs, x0,
                     neighbours):
    if method == "cholesky":
        w, info, _ = solve_cholesky(U, t, metric, n_jobs)
    elif method == "cg":
        w, info = solve_cg(
            U, t, metric, tol=tol, max_iter=max_iter, x0=x0, n_neighbors=n_neighbors,
            client=client, n_jobs=n_jobs, neighbours=neighbours,
        )
    else:
        w, info = solve_local(U, t, metric, n_neighbors, n_jobs, neighbours=neighbours)
    return w, info


