"""Plain NumPy/SciPy reference versions of the numba kernels (the test oracle).

Deliberately simple and slow: dense ``scipy.spatial.distance.cdist`` matrices.
"""

import numpy as np
from scipy.spatial.distance import cdist

_CDIST = {"euclidean": "euclidean", "manhattan": "cityblock", "sqeuclidean": "sqeuclidean"}


def pairwise_distances_ref(X, Y=None, *, metric="euclidean"):
    """Reference for :func:`weightstats._kernels.pairwise_distances`."""
    X = np.asarray(X, dtype=float)
    Y = X if Y is None else np.asarray(Y, dtype=float)
    return cdist(X, Y, _CDIST[metric])


def kernel_matrix_ref(X, Y=None, *, kernel="gaussian", bandwidth=1.0, scale=1.0, metric="euclidean"):
    """Reference for :func:`weightstats._kernels.kernel_matrix`."""
    D = pairwise_distances_ref(X, Y, metric=metric)
    if kernel == "gaussian":
        return np.exp(-(D**2) / (2.0 * bandwidth**2))
    if kernel == "laplacian":
        return np.exp(-scale * D)
    return D


def kernel_matvec_ref(X, Y, V, **kwargs):
    """Reference for :func:`weightstats._kernels.kernel_matvec`."""
    kwargs.pop("block_size", None)
    return kernel_matrix_ref(X, Y, **kwargs) @ np.asarray(V, dtype=float)


_USTAT_PROFILES = {
    "epanechnikov": (0.75, lambda t: np.maximum(0.0, 1.0 - t * t)),
    "biweight": (15.0 / 16.0, lambda t: np.maximum(0.0, 1.0 - t * t) ** 2),
    "triweight": (35.0 / 32.0, lambda t: np.maximum(0.0, 1.0 - t * t) ** 3),
    "gaussian": (1.0 / np.sqrt(2.0 * np.pi), lambda t: np.exp(-0.5 * t * t)),
}


def kernel_sums_ref(Q, S, V=None, *, kernel="epanechnikov", bandwidth, reflect=True,
                    chunk_size=None, **_):
    """Reference for :func:`weightstats._kernels.kernel_sums` by NumPy broadcasting.

    Every pair, every mirror term, no neighbour search. ``chunk_size`` query
    rows are broadcast against all sources at a time (the dense ``(chunk,
    n_sources)`` factor matrices bound the memory); ``None`` means all at once.
    """
    Q = np.asarray(Q, dtype=float)
    S = np.asarray(S, dtype=float)
    Q = Q[:, None] if Q.ndim == 1 else Q
    S = S[:, None] if S.ndim == 1 else S
    one_d = V is None or np.ndim(V) == 1
    if V is None:
        V = np.ones((S.shape[0], 1))
    V = np.asarray(V, dtype=float).reshape(S.shape[0], -1)
    const, profile = _USTAT_PROFILES[kernel]
    h = float(bandwidth)
    out = np.empty((Q.shape[0], V.shape[1]))
    step = Q.shape[0] if chunk_size is None else int(chunk_size)
    for start in range(0, Q.shape[0], max(step, 1)):
        q = Q[start:start + step]
        K = np.ones((q.shape[0], S.shape[0]))
        for k in range(Q.shape[1]):
            u, v = q[:, k, None], S[None, :, k]
            factor = profile((u - v) / h)
            if reflect:
                factor += profile((u + v) / h) + profile((u + v - 2.0) / h)
            K *= factor
        out[start:start + step] = K @ V
    out *= (const / h) ** Q.shape[1]
    return out[:, 0] if one_d else out


def conditional_cdf_ref(Zq, Zr, weights, bandwidths, **_):
    """Reference for :func:`weightstats._kernels.conditional_cdf` (dense, log-sum-exp)."""
    Zq, Zr = np.asarray(Zq, dtype=float), np.asarray(Zr, dtype=float)
    w = np.asarray(weights, dtype=float)
    keep = w > 0
    Zr, w = Zr[keep], w[keep]
    out = np.zeros(Zq.shape)
    for k in range(1, Zq.shape[1]):
        b = bandwidths[k]
        dist2 = ((Zq[:, None, :k] - Zr[None, :, :k]) ** 2).sum(axis=2)
        log_g = np.log(w)[None, :] - 0.5 * dist2 / b**2
        diff = Zq[:, None, k] - Zr[None, :, k]
        step = (diff > 0) + 0.5 * (diff == 0)
        weights_k = np.exp(log_g - log_g.max(axis=1, keepdims=True))
        out[:, k] = (weights_k * step).sum(axis=1) / weights_k.sum(axis=1)
    return out
def isotonic_rows_ref(values):
    """Reference for :func:`weightstats._kernels.isotonic_rows` (scikit-learn, row by row)."""
    from sklearn.isotonic import isotonic_regression

    values = np.asarray(values, dtype=float)
    return np.vstack([isotonic_regression(row, increasing=True) for row in values])
