"""Choosing the scale ``t`` of a magnitude computation."""

import numbers

import numpy as np
from scipy.optimize import brentq
from sklearn.utils import check_random_state

from .._kernels import pairwise_distances
from ._solvers import (
    DistinctPoints,
    check_distinct,
    check_magnitude_method,
    check_metric,
    check_points,
    resolve_method,
    solve,
)

__all__ = ["select_scale", "DEFAULT_SCALE_FACTOR"]

#: ``t = DEFAULT_SCALE_FACTOR / median(d)``: weights are good outlier scores and
#: classifiers at 4-8 / median(d) and poor at 1 / median(d) (user guide, notebooks).
DEFAULT_SCALE_FACTOR = 8.0
_METHODS = ("median", "convergence", "scattered")


def _subsample(U, max_samples, random_state):
    if U.shape[0] <= max_samples:
        return U
    rng = check_random_state(random_state)
    return U[np.sort(rng.choice(U.shape[0], max_samples, replace=False))]


def _upper_distances(U, metric):
    D = pairwise_distances(U, metric=metric)
    return D[np.triu_indices(U.shape[0], k=1)]


def median_distance(U, metric="euclidean", max_samples=2000, random_state=None):
    """Median pairwise distance of (a random subsample of) the distinct points ``U``."""
    return float(np.median(_upper_distances(_subsample(U, max_samples, random_state), metric)))


def select_scale(
    X,
    method="median",
    *,
    factor=DEFAULT_SCALE_FACTOR,
    target=0.95,
    quantile=0.0,
    metric="euclidean",
    max_samples=2000,
    solver="auto",
    random_state=None,
    n_jobs=None,
):
    """Choose the scale ``t`` of the similarity ``exp(-t d)``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The points (duplicates count once).
    method : {"median", "convergence", "scattered"}, default="median"
        * ``"median"``: ``t = factor / median(d)`` over pairs of distinct
          points (a random subsample of ``max_samples`` points when there are
          more). With the default ``factor=8`` this is the scale at which
          weights work as outlier scores and for classification (measured in
          the user guide; weights at ``1 / median(d)`` are poor).
        * ``"convergence"``: the ``t`` at which the magnitude reaches
          ``target`` times the number of distinct points, as magnipy's
          default; found by bracketing and Brent's method on ``log t``
          (relative tolerance 1e-6), each step a full weighting-vector solve.
        * ``"scattered"``: ``t = log(n - 1) / q``, ``q`` the ``quantile`` of
          the non-zero distances; with ``quantile=0`` (the minimum distance)
          ``tX`` is scattered in Leinster's sense, so all weights are positive.
    factor : float, default=8.0
        Multiplier of the median rule.
    target : float, default=0.95
        Fraction of the number of distinct points for ``"convergence"``.
    quantile : float, default=0.0
        Distance quantile for ``"scattered"`` (0 is the minimum, computed
        exactly from nearest neighbours).
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance.
    max_samples : int, default=2000
        Subsample size for the median and for non-zero quantiles.
    solver : {"auto", "cholesky", "cg"}, default="auto"
        Weighting-vector solver of the convergence search.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsample (only used with more than ``max_samples`` points).
    n_jobs : int, default=None
        Threads for the kernels.

    Returns
    -------
    t : float
        The scale.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.magnitude import select_scale
    >>> X = np.array([[0.0], [1.0], [2.0], [4.0]])
    >>> select_scale(X)  # 8 / median(d), median(d) = 2
    4.0
    >>> round(select_scale(X, "scattered"), 4)  # log(3) / min(d)
    1.0986
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {list(_METHODS)}; got {method!r}.")
    X = check_points(X)
    check_metric(metric)
    if not isinstance(max_samples, numbers.Integral) or max_samples < 2:
        raise ValueError(f"max_samples must be an integer >= 2; got {max_samples!r}.")
    distinct = DistinctPoints(X)
    check_distinct(distinct)
    U = distinct.points
    if method == "median":
        if not isinstance(factor, numbers.Real) or not np.isfinite(factor) or factor <= 0:
            raise ValueError(f"factor must be a positive number; got {factor!r}.")
        return factor / median_distance(U, metric, max_samples, random_state)
    if method == "scattered":
        n = U.shape[0]
        if n < 3:
            raise ValueError(
                "the scattered rule needs at least 3 distinct points (log(n - 1) > 0)."
            )
        if not 0 <= quantile < 1:
            raise ValueError(f"quantile must be in [0, 1); got {quantile!r}.")
        if quantile == 0:
            from sklearn.neighbors import NearestNeighbors

            nn = NearestNeighbors(n_neighbors=1, metric=metric, n_jobs=n_jobs).fit(U)
            q = float(nn.kneighbors(return_distance=True)[0].min())
        else:
            q = float(np.quantile(_upper_distances(_subsample(U, max_samples, random_state),
                                                   metric), quantile))
        return float(np.log(n - 1) / q)
    return _convergence_scale(U, target, metric, solver, n_jobs)


def _convergence_scale(U, target, metric, solver, n_jobs):
    if not isinstance(target, numbers.Real) or not 0 < target < 1:
        raise ValueError(f"target must be in (0, 1); got {target!r}.")
    n = U.shape[0]
    goal = target * n
    method = check_magnitude_method(resolve_method(solver, n, None), "solver")
    cache = {}

    def gap(log_t):
        if log_t not in cache:
            w, _ = solve(U, float(np.exp(log_t)), metric, method, tol=1e-10, max_iter=None,
                          n_neighbors=None, client=None, n_jobs=n_jobs)
            cache[log_t] = w.sum() - goal
        return cache[log_t]

    # Magnitude rises from 1 (t -> 0) to n (t -> infinity); start at the median rule.
    start = np.log(1.0 / median_distance(U, metric))
    low = high = start
    if gap(start) < 0:
        while gap(high) < 0:
            low, high = high, high + np.log(4.0)
    else:
        while gap(low) >= 0:
            low, high = low - np.log(4.0), low
    if gap(high) == 0:
        return float(np.exp(high))
    return float(np.exp(brentq(gap, low, high, xtol=1e-12, rtol=1e-6)))
