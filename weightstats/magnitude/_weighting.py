"""Weighting vectors and magnitude of finite metric spaces: the public functions.

For points ``x_1..x_n`` and a scale ``t > 0`` the similarity matrix is
``Z[i, j] = exp(-t d(x_i, x_j))``; the weighting vector ``w`` solves
``Z w = 1`` and the magnitude is ``sum(w)``. The solvers live in
``_solvers``; the scale rules in ``_scale``.
"""

import numbers

import numpy as np
import pandas as pd

from ._distributed import DistributedPoints, is_dask_array
from ._scale import select_scale
from ._solvers import (
    DistinctPoints,
    Neighbours,
    check_distinct,
    check_magnitude_method,
    check_metric,
    check_points,
    check_scale,
    check_solver_options,
    resolve_method,
    solve,
)

__all__ = ["boundary_scores", "magnitude", "magnitude_function", "weighting_vector"]


def weighting_vector(
    X,
    t,
    *,
    metric="euclidean",
    method="auto",
    tol=1e-8,
    max_iter=None,
    n_neighbors=None,
    client=None,
    n_jobs=None,
    return_info=False,
):
    """Weighting vector ``w`` of the metric space ``tX``: the solution of ``Z w = 1``.

    ``Z[i, j] = exp(-t d(x_i, x_j))``. Boundary points get large weights,
    interior points small ones; ``w.sum()`` is the magnitude.

    Parameters
    ----------
    X : array-like or dask array of shape (n_samples, n_features)
        The points (at least two distinct ones). Not standardised. With
        ``client``, a dask array stays on the cluster (its rows must be
        distinct).
    t : float
        The scale, ``t > 0``; see :func:`select_scale`.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance ``d``.
    method : {"auto", "cholesky", "cg", "local"}, default="auto"
        ``"cholesky"``: exact, dense LAPACK factorisation (O(n^2) memory).
        ``"cg"``: FSAI-preconditioned conjugate gradients with matrix-free
        products (O(n) memory beyond the preconditioner's n x k pattern).
        ``"local"``: each point's weight in the space made of it and its
        ``n_neighbors`` nearest neighbours (approximate, accurate at large
        ``t`` only; see the user guide; these weights do not sum to the
        magnitude). ``"auto"``: Cholesky up to 10,000 distinct points, CG
        beyond.
    tol : float, default=1e-8
        CG stops when the relative residual ``||1 - Z w|| / ||1||`` is below
        ``tol``.
    max_iter : int, default=None
        Maximum CG iterations; ``None`` means ``max(100, n / 10)``.
    n_neighbors : int, default=None
        Neighbourhood size: of the local method (default 50) or of the CG
        preconditioner's sparsity pattern (default 64).
    client : dask.distributed.Client, default=None
        Run CG on this cluster (implies ``method="cg"``): the points, the
        products ``Z v`` (one task per pair of row blocks, each pair of
        points formed once), the neighbour search and the preconditioner's
        rows stay on the workers; the client keeps a few vectors of length
        ``n``. See the user guide for the memory each side needs.
    n_jobs : int, default=None
        Threads for the kernels; ``None`` means 1, ``-1`` all processors.
    return_info : bool, default=False
        Also return a dict describing the solve (method; for CG the
        iterations, whether ``tol`` was reached and the true residual where
        it was computed; diagonal jitter added, ...).

    Returns
    -------
    w : ndarray of shape (n_samples,)
        The weights. Copies of a point share its weight equally.
    info : dict
        Only when ``return_info=True``.

    Warns
    -----
    scipy.linalg.LinAlgWarning
        When ``Z`` is numerically singular (near-duplicate points, tiny ``t``)
        and the Cholesky solver added diagonal jitter; the message gives the
        jitter and the achieved residual.
    sklearn.exceptions.ConvergenceWarning
        When CG does not reach ``tol`` within ``max_iter`` iterations.

    See Also
    --------
    magnitude : The sum of the weights.
    boundary_scores : Weights normalised for boundary detection.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.magnitude import weighting_vector
    >>> X = np.array([[0.0], [1.0], [2.0]])
    >>> weighting_vector(X, t=1.0).round(4)  # the middle point is interior
    array([0.7311, 0.4621, 0.7311])
    """
    t = check_scale(t)
    check_metric(metric)
    check_solver_options(tol, max_iter, n_neighbors)
    points, distinct = _points(X, metric, method, client)
    method = resolve_method(method, points.shape[0], client)
    w, info = solve(
        points, t, metric, method, tol=tol, max_iter=max_iter,
        n_neighbors=n_neighbors, client=client, n_jobs=n_jobs,
    )
    info.update(t=t, n_distinct=points.shape[0])
    w = w if distinct is None else distinct.split(w)
    return (w, info) if return_info else w


def _points(X, metric, method, client):
    """The points to solve on, and the ``DistinctPoints`` mapping rows to them.

    With a client, a dask array stays on the cluster (``DistributedPoints``,
    no mapping: duplicated rows are refused there); anything else is
    validated and merged into distinct points here.
    """
    if client is not None and is_dask_array(X):
        resolve_method(method, X.shape[0], client)
        return DistributedPoints(client, X, metric), None
    distinct = DistinctPoints(check_points(X))
    check_distinct(distinct)
    return distinct.points, distinct


def magnitude(X, t, **kwargs):
    """Magnitude ``Mag(tX) = sum(w)`` of the metric space ``tX``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The points (duplicates count once).
    t : float
        The scale, ``t > 0``.
    **kwargs : dict
        Solver options of :func:`weighting_vector` (``metric``, ``method``,
        ``tol``, ``n_neighbors``, ``client``, ``n_jobs``). ``method="local"``
        is refused: local weights approximate each point's weight, but their
        sum is not the magnitude (it can be negative); use ``"cg"`` for large
        data.

    Returns
    -------
    magnitude : float
        The magnitude: between 1 and the number of distinct points for
        Euclidean sets; it grows from 1 (t -> 0) to n (t -> infinity).

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.magnitude import magnitude
    >>> X = np.array([[0.0], [1.0]])
    >>> round(magnitude(X, t=2.0), 6)  # two points: 2 / (1 + exp(-t d))
    1.761594
    """
    if kwargs.get("return_info"):
        raise ValueError("magnitude() returns a number; call weighting_vector(return_info=True).")
    check_magnitude_method(kwargs.get("method"))
    return float(np.sum(weighting_vector(X, t, **kwargs)))


def magnitude_function(X, ts=None, *, n_ts=30, metric="euclidean", method="auto", tol=1e-8,
                       max_iter=None, n_neighbors=None, client=None, n_jobs=None):
    """Magnitude at many scales, ``t -> Mag(tX)``, reusing work across scales.

    Reused across scales: the distinct points and their transpose, the
    nearest-neighbour graph of the CG preconditioner's pattern and, for CG,
    the previous scale's solution as the starting point.
    The Cholesky path refactors ``Z`` at every scale: ``exp(-t D)`` has no
    shared factorisation or eigenbasis across ``t``.

    Parameters
    ----------
    X : array-like or dask array of shape (n_samples, n_features)
        The points.
    ts : array-like of float, default=None
        Scales (positive). ``None`` means ``n_ts`` evenly spaced scales up to
        the convergence scale, where the magnitude reaches 95% of the number
        of distinct points (as magnipy's default), found by
        :func:`select_scale`.
    n_ts : int, default=30
        Number of scales when ``ts`` is ``None``.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance.
    method : {"auto", "cholesky", "cg"}, default="auto"
        Solver; see :func:`weighting_vector`. ``"local"`` is refused (local
        weights do not sum to the magnitude).
    tol : float, default=1e-8
        CG tolerance.
    max_iter : int, default=None
        Maximum CG iterations per scale.
    n_neighbors : int, default=None
        Neighbourhood size of the CG preconditioner (default 64).
    client : dask.distributed.Client, default=None
        Run CG on this cluster (see :func:`weighting_vector`); the points
        are sent once for all scales. With a dask array ``X``, ``ts`` must
        be given.
    n_jobs : int, default=None
        Threads for the kernels.

    Returns
    -------
    frame : pandas.DataFrame
        Indexed by ``t`` (increasing), with column ``magnitude``.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.magnitude import magnitude_function
    >>> X = np.arange(5.0).reshape(-1, 1)
    >>> magnitude_function(X, ts=[0.5, 1.0, 2.0]).round(4)
         magnitude
    t
    0.5     1.9797
    1.0     2.8485
    2.0     4.0464
    """
    check_metric(metric)
    check_magnitude_method(method)
    check_solver_options(tol, max_iter, n_neighbors)
    if ts is None and client is not None and is_dask_array(X):
        raise ValueError("pass the scales ts with a dask array; the default grid needs the "
                         "convergence scale, found by solves on one machine.")
    U, distinct = _points(X, metric, method, client)
    if ts is None:
        if not isinstance(n_ts, numbers.Integral) or n_ts < 1:
            raise ValueError(f"n_ts must be a positive integer; got {n_ts!r}.")
        t_conv = select_scale(U, "convergence", metric=metric, solver=method, n_jobs=n_jobs)
        ts = np.linspace(t_conv / n_ts, t_conv, n_ts)
    ts = np.sort(np.array([check_scale(float(t), "each t in ts") for t in np.ravel(ts)]))
    if ts.size == 0:
        raise ValueError("ts is empty; pass at least one scale.")
    method = resolve_method(method, U.shape[0], client)
    neighbours = None
    if client is not None and not isinstance(U, DistributedPoints):
        U = DistributedPoints(client, U, metric)  # scattered once for all scales
    elif method == "cg" and client is None:
        neighbours = Neighbours(U, metric, n_jobs)
    values, w = [], None
    for t in ts:
        w, _ = solve(
            U, t, metric, method, tol=tol, max_iter=max_iter, n_neighbors=n_neighbors,
            client=client, n_jobs=n_jobs, x0=w if method == "cg" else None,
            neighbours=neighbours,
        )
        values.append(w.sum())
    return pd.DataFrame({"magnitude": values}, index=pd.Index(ts, name="t"))


def boundary_scores(X, t=None, *, metric="euclidean", method="auto", n_neighbors=None,
                    n_jobs=None):
    """Normalised weights ``n w / Mag(tX)`` for boundary detection.

    The weights of a uniformly sampled region are largest on its boundary
    and near zero inside (Bunch et al., 2020). Normalising by the average
    weight ``Mag / n`` makes scores comparable across data sets and scales:
    1 is an average share of the magnitude, boundary points score above 1,
    interior points near 0.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The points, in their own units (not standardised).
    t : float, default=None
        The scale; ``None`` means ``select_scale(X, "median")``, i.e.
        ``8 / median(d)``.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance.
    method : {"auto", "cholesky", "cg", "local"}, default="auto"
        Solver; see :func:`weighting_vector`. With ``"local"`` the
        normaliser is the sum of the local weights, close to the magnitude
        only at large scales such as the default.
    n_neighbors : int, default=None
        Neighbourhood size of the local method or the CG preconditioner.
    n_jobs : int, default=None
        Threads for the kernels.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        ``n_distinct * w / sum(w)``; their mean over distinct points is 1.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.magnitude import boundary_scores
    >>> grid = np.array([[i, j] for i in range(5) for j in range(5)], dtype=float)
    >>> scores = boundary_scores(grid, t=2.0).reshape(5, 5)
    >>> bool(scores[0, 0] > scores[0, 2] > scores[2, 2])  # corner > edge > centre
    True
    """
    X = check_points(X)
    if t is None:
        t = select_scale(X, "median", metric=metric)
    w = weighting_vector(X, t, metric=metric, method=method, n_neighbors=n_neighbors,
                         n_jobs=n_jobs)
    distinct = DistinctPoints(X)
    # Copies share a weight; score each copy by its point's full weight.
    w_points = w if distinct.inverse is None else w * distinct.counts[distinct.inverse]
    return distinct.n_distinct * w_points / np.sum(w)
