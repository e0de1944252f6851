"""NumPy/SciPy references for ``_laplacian`` and ``_local`` (the test oracle)."""

import numpy as np
from scipy.linalg import solve
from scipy.spatial.distance import cdist

_CDIST = {"euclidean": "euclidean", "manhattan": "cityblock"}


def laplacian_matrix_ref(X, Y=None, *, scale, metric="euclidean"):
    """Dense ``exp(-scale * d(X[i], Y[j]))``."""
    X = np.asarray(X, dtype=float)
    Y = X if Y is None else np.asarray(Y, dtype=float)
    return np.exp(-scale * cdist(X, Y, _CDIST[metric]))


def laplacian_symv_ref(X, v, *, scale, metric="euclidean"):
    """Reference for :func:`weightstats._kernels._laplacian.laplacian_symv`."""
    return laplacian_matrix_ref(X, scale=scale, metric=metric) @ np.asarray(v, dtype=float)


def local_weights_ref(P, Y, neighbors, *, scale, metric="euclidean", schur=False):
    """Reference for :func:`weightstats._kernels._local.local_weights`: the weight
    of ``P[i]`` in the space ``{P[i]} + Y[neighbors[i]]`` (or its Schur complement
    ``1 - c' Z_N^-1 c`` given the neighbours); ``-1`` entries are padding."""
    P, Y = np.asarray(P, dtype=float), np.asarray(Y, dtype=float)
    out = np.empty(P.shape[0])
    for i, idx in enumerate(np.asarray(neighbors)):
        points = np.vstack([P[i : i + 1], Y[idx[idx >= 0]]])
        if schur:
            c = laplacian_matrix_ref(points[:1], points[1:], scale=scale, metric=metric)[0]
            N = laplacian_matrix_ref(points[1:], scale=scale, metric=metric)
            out[i] = 1.0 - c @ solve(N, c, assume_a="pos")
        else:
            Z = laplacian_matrix_ref(points, scale=scale, metric=metric)
            out[i] = solve(Z, np.ones(len(points)), assume_a="pos")[0]
    return out


def fsai_ref(X, neighbors, *, scale, metric="euclidean"):
    """Reference for :func:`weightstats._kernels._local.fsai_rows` as a dense ``G``."""
    X = np.asarray(X, dtype=float)
    G = np.zeros((X.shape[0], X.shape[0]))
    for i, idx in enumerate(np.asarray(neighbors)):
        J = np.r_[i, idx[idx >= 0]]
        Z = laplacian_matrix_ref(X[J], scale=scale, metric=metric)
        g = solve(Z, np.eye(len(J))[0], assume_a="pos")
        G[i, J] = g / np.sqrt(g[0])
    return G


def nearest_neighbors_ref(X, n_neighbors, *, metric="euclidean"):
    """Reference for :func:`weightstats._kernels._knn.nearest_neighbors_brute`."""
    X = np.asarray(X, dtype=float)
    D = cdist(X, X, _CDIST[metric])
    np.fill_diagonal(D, np.inf)
    return np.argsort(D, axis=1, kind="stable")[:, :n_neighbors]


def nearest_neighbors_block_ref(Q, Y, n_neighbors, *, q_ids, y_ids, q_rank, y_rank,
                                metric="euclidean"):
    """Reference for :func:`weightstats._kernels._knn.nearest_neighbors_block` (ids only):
    per query, the admissible points of ``Y`` sorted by (distance, id), padded with -1."""
    D = cdist(np.asarray(Q, dtype=float), np.asarray(Y, dtype=float), _CDIST[metric])
    out = np.full((D.shape[0], n_neighbors), -1)
    for i in range(D.shape[0]):
        ok = (np.asarray(y_ids) != q_ids[i]) & (np.asarray(y_rank) < q_rank[i])
        ids, dist = np.asarray(y_ids)[ok], D[i, ok]
        best = ids[np.lexsort((ids, dist))][:n_neighbors]
        out[i, : len(best)] = best
    return out
