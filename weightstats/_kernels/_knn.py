"""Exact k nearest neighbours by brute force, for moderate n in many dimensions.

Tree searches (scikit-learn's KD and ball trees) degenerate to worse than
brute force beyond a handful of dimensions; sklearn's own brute force builds
chunks of the distance matrix and partitions each row. This kernel streams
each row's distances in L1-sized blocks (the same distance routine as
``_laplacian``: sums of differences, squared for the euclidean metric) and
keeps the ``k`` best in a max-heap, so memory is O(n k) and time O(n^2 d).

Ties are broken by index (the smaller index is the nearer neighbour), as a
stable sort of the distances would.
"""

import numpy as np
from numba import prange

from ._dispatch import jit_variants
from ._laplacian import _BLOCK, _distances_jit

__all__ = ["nearest_neighbors_block", "nearest_neighbors_brute"]


def _before(d1, i1, d2, i2):
    """(d1, i1) precedes (d2, i2) in (distance, index) order."""
    return d1 < d2 or (d1 == d2 and i1 < i2)


_before_jit = jit_variants(_before).serial


def _sift_down(dist, idx, k):
    """Restore the max-heap property from the root after replacing it."""
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= k:
            return
        if child + 1 < k and _before_jit(dist[child], idx[child], dist[child + 1], idx[child + 1]):
            child += 1
        if _before_jit(dist[pos], idx[pos], dist[child], idx[child]):
            dist[pos], dist[child] = dist[child], dist[pos]
            idx[pos], idx[child] = idx[child], idx[pos]
            pos = child
        else:
            return


_sift_down_jit = jit_variants(_sift_down).serial


_NO_POINT = np.iinfo(np.int64).max  # heap sentinel: after every real point


@jit_variants
def _knn_kernel(Q, YT, q_ids, y_ids, q_rank, y_rank, k, metric, out_idx, out_dist):
    # Candidates of query i: the Y[j] with y_ids[j] != q_ids[i] and y_rank[j] < q_rank[i].
    m = YT.shape[1]
    for i in prange(Q.shape[0]):
        acc = np.empty(_BLOCK)
        dist = np.full(k, np.inf)
        idx = np.full(k, _NO_POINT, dtype=np.int64)
        own, rank = q_ids[i], q_rank[i]
        for j0 in range(0, m, _BLOCK):
            width = min(_BLOCK, m - j0)
            _distances_jit(Q[i], YT, j0, width, metric, acc)
            bound = dist[0]
            for j in range(width):
                # Scanning j upwards, an equal distance never beats the heap's root.
                if acc[j] < bound and y_ids[j0 + j] != own and y_rank[j0 + j] < rank:
                    dist[0] = acc[j]
                    idx[0] = y_ids[j0 + j]
                    _sift_down_jit(dist, idx, k)
                    bound = dist[0]
        # Heap to sorted order: repeatedly move the maximum to the end.
        for end in range(k - 1, 0, -1):
            dist[0], dist[end] = dist[end], dist[0]
            idx[0], idx[end] = idx[end], idx[0]
            _sift_down_jit(dist, idx, end)
        for q in range(k):
            found = idx[q] != _NO_POINT
            out_idx[i, q] = idx[q] if found else -1
            out_dist[i, q] = dist[q]


_METRIC_CODES = {"euclidean": 2, "manhattan": 1}  # squared euclidean ranks the same


def nearest_neighbors_block(Q, Y, n_neighbors, *, q_ids, y_ids, q_rank=None, y_rank=None,
                            metric="euclidean", n_jobs=None):
    """Each query's nearest points of ``Y`` by brute force, among admissible ones.

    ``Y[j]`` is a candidate for ``Q[i]`` when ``y_ids[j] != q_ids[i]`` (a
    point is not its own neighbour) and, with ranks, ``y_rank[j] < q_rank[i]``
    (only points earlier in an ordering: the pattern of a factorised sparse
    approximate inverse). Blocks of a larger set are searched one pair at a
    time and the lists merged by (distance, id).

    Parameters
    ----------
    Q : ndarray of shape (n_queries, n_features)
        The query points.
    Y : ndarray of shape (n_samples, n_features)
        The points searched.
    n_neighbors : int
        List length; short lists are padded with id -1 and distance inf.
    q_ids, y_ids : ndarray of int of shape (n_queries,) and (n_samples,)
        Global ids of the points (non-negative); ties go to the smaller id.
    q_rank, y_rank : ndarray of int, default=None
        Ranks of an ordering (both or neither).
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance.
    n_jobs : int, default=None
        Threads; ``None`` means 1, ``-1`` all processors.

    Returns
    -------
    ids : ndarray of int64 of shape (n_queries, n_neighbors)
        Nearest first.
    distances : ndarray of shape (n_queries, n_neighbors)
        Their distances, squared for the euclidean metric (same order).

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats._kernels._knn import nearest_neighbors_block
    >>> X = np.array([[0.0], [1.0], [3.0]])
    >>> ids, _ = nearest_neighbors_block(X, X, 2, q_ids=np.arange(3), y_ids=np.arange(3),
    ...                                  q_rank=np.array([2, 0, 1]), y_rank=np.array([2, 0, 1]))
    >>> ids.tolist()  # earlier in the order 1, 2, 0
    [[1, 2], [-1, -1], [1, -1]]
    """
    Q = np.ascontiguousarray(Q, dtype=np.float64)
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be at least 1; got {n_neighbors}.")
    if q_rank is None:  # every point of Y precedes every query
        q_rank, y_rank = np.ones(Q.shape[0], dtype=np.int64), np.zeros(Y.shape[0], dtype=np.int64)
    as_ints = [np.ascontiguousarray(a, dtype=np.int64) for a in (q_ids, y_ids, q_rank, y_rank)]
    ids = np.empty((Q.shape[0], n_neighbors), dtype=np.int64)
    distances = np.empty((Q.shape[0], n_neighbors))
    _knn_kernel(Q, np.ascontiguousarray(Y.T), *as_ints, n_neighbors, _METRIC_CODES[metric],
                ids, distances, n_jobs=n_jobs)
    return ids, distances


def nearest_neighbors_brute(X, n_neighbors, *, metric="euclidean", n_jobs=None):
    """Indices of each point's ``n_neighbors`` nearest other points.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The points.
    n_neighbors : int
        How many neighbours, at most ``n_samples - 1``.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance.
    n_jobs : int, default=None
        Threads; ``None`` means 1, ``-1`` all processors.

    Returns
    -------
    neighbors : ndarray of int64 of shape (n_samples, n_neighbors)
        Nearest first; ties broken by index.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats._kernels._knn import nearest_neighbors_brute
    >>> nearest_neighbors_brute(np.array([[0.0], [1.0], [3.0]]), 1).ravel().tolist()
    [1, 0, 1]
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n = X.shape[0]
    if not 1 <= n_neighbors < n:
        raise ValueError(f"n_neighbors must be between 1 and {n - 1}; got {n_neighbors}.")
    ids = np.arange(n)
    return nearest_neighbors_block(X, X, n_neighbors, q_ids=ids, y_ids=ids, metric=metric,
                                   n_jobs=n_jobs)[0]
