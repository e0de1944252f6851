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

__all__ = ["nearest_neighbors_brute"]


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


@jit_variants
def _knn_kernel(X, XT, k, metric, out):
    n = X.shape[0]
    for i in prange(n):
        acc = np.empty(_BLOCK)
        dist = np.full(k, np.inf)
        idx = np.full(k, n, dtype=np.int64)  # sentinels: after every real point
        for j0 in range(0, n, _BLOCK):
            width = min(_BLOCK, n - j0)
            _distances_jit(X[i], XT, j0, width, metric, acc)
            bound = dist[0]
            for j in range(width):
                # Scanning j upwards, an equal distance never beats the heap's root.
                if acc[j] < bound and j0 + j != i:
                    dist[0] = acc[j]
                    idx[0] = j0 + j
                    _sift_down_jit(dist, idx, k)
                    bound = dist[0]
        # Heap to sorted order: repeatedly move the maximum to the end.
        for end in range(k - 1, 0, -1):
            dist[0], dist[end] = dist[end], dist[0]
            idx[0], idx[end] = idx[end], idx[0]
            _sift_down_jit(dist, idx, end)
        for q in range(k):
            out[i, q] = idx[q]


_METRIC_CODES = {"euclidean": 2, "manhattan": 1}  # squared euclidean ranks the same


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
    out = np.empty((n, n_neighbors), dtype=np.int64)
    _knn_kernel(X, np.ascontiguousarray(X.T), n_neighbors, _METRIC_CODES[metric], out,
                n_jobs=n_jobs)
    return out
