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


def isotonic_rows_ref(values):
    """Reference for :func:`weightstats._kernels.isotonic_rows` (scikit-learn, row by row)."""
    from sklearn.isotonic import isotonic_regression

    values = np.asarray(values, dtype=float)
    return np.vstack([isotonic_regression(row, increasing=True) for row in values])
