"""Pairwise distances, dense kernel matrices and matrix-free kernel-vector products.

All three share one row routine: the distances from one point to a block of
points, computed directly as sums of (squared or absolute) differences. We do
not use the BLAS expansion ``|x|^2 + |y|^2 - 2 x.y``: it loses all relative
precision for nearby points (after a square root, errors of ~1e-8 near d = 0),
which the Laplacian kernels of the magnitude family cannot afford. The second
operand is stored transposed (features x points) so the innermost loop runs
over contiguous points and vectorises.

Kernels (``k(x, y)`` as a function of the distance ``d``):

* ``"gaussian"``: ``exp(-d^2 / (2 bandwidth^2))`` with the Euclidean ``d``;
* ``"laplacian"``: ``exp(-scale * d)`` with Euclidean or Manhattan ``d``
  (the similarity matrix of metric-space magnitude);
* ``"distance"``: ``d`` itself (the energy-distance kernel).

``kernel_matvec`` computes ``K(X, Y) @ V`` in blocks of ``block_size`` points
of ``Y`` per row of ``X``: memory O(n + m + block_size) per thread instead of
the O(n m) of the dense matrix.
"""

import numbers

import numpy as np
from numba import prange
from sklearn.utils.validation import check_array

from ._dispatch import jit_variants

__all__ = ["kernel_matrix", "kernel_matvec", "pairwise_distances"]

# Integer codes: numba kernels branch on these outside their inner loops.
_METRICS = {"euclidean": 0, "manhattan": 1, "sqeuclidean": 2}
_KERNELS = {"gaussian": 0, "laplacian": 1, "distance": 2}
DEFAULT_BLOCK_SIZE = 2048


def _block_distances(x, YT, j0, j1, metric, acc):
    """acc[:j1 - j0] = distances (squared for metric code 2) from x to Y[j0:j1]."""
    width = j1 - j0
    for j in range(width):
        acc[j] = 0.0
    for k in range(YT.shape[0]):
        xk = x[k]
        if metric == 1:
            for j in range(width):
                acc[j] += abs(YT[k, j0 + j] - xk)
        else:
            for j in range(width):
                diff = YT[k, j0 + j] - xk
                acc[j] += diff * diff
    if metric == 0:
        for j in range(width):
            acc[j] = np.sqrt(acc[j])


def _kernel_value(kernel, param, d):
    """k as a function of the distance: gaussian takes squared distances and
    param = 1 / (2 bandwidth^2); laplacian takes param = scale; code 2 is d."""
    if kernel == 2:
        return d
    return np.exp(-param * d)


_block_distances_jit = jit_variants(_block_distances).serial
_kernel_value_jit = jit_variants(_kernel_value).serial


@jit_variants
def _dense_kernel(X, YT, metric, kernel, param, out):
    m = YT.shape[1]
    for i in prange(X.shape[0]):
        row = out[i]
        _block_distances_jit(X[i], YT, 0, m, metric, row)
        if kernel != 2:
            for j in range(m):
                row[j] = _kernel_value_jit(kernel, param, row[j])


@jit_variants
def _matvec_kernel(X, YT, V, metric, kernel, param, block, out):
    m = YT.shape[1]
    n_cols = V.shape[1]
    for i in prange(X.shape[0]):
        acc = np.empty(block)
        row = np.zeros(n_cols)
        for j0 in range(0, m, block):
            j1 = min(j0 + block, m)
            _block_distances_jit(X[i], YT, j0, j1, metric, acc)
            if n_cols == 1:
                s = 0.0
                for j in range(j1 - j0):
                    s += _kernel_value_jit(kernel, param, acc[j]) * V[j0 + j, 0]
                row[0] += s
            else:
                for j in range(j1 - j0):
                    a = _kernel_value_jit(kernel, param, acc[j])
                    for c in range(n_cols):
                        row[c] += a * V[j0 + j, c]
        for c in range(n_cols):
            out[i, c] = row[c]


def _check_pair(X, Y):
    X = check_array(X, dtype=np.float64, order="C", input_name="X")
    if Y is None:
        Y = X
    else:
        Y = check_array(Y, dtype=np.float64, order="C", input_name="Y")
        if Y.shape[1] != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features but Y has {Y.shape[1]}; they must match."
            )
    return X, np.ascontiguousarray(Y.T)


def _kernel_codes(kernel, metric, bandwidth, scale):
    if kernel not in _KERNELS:
        raise ValueError(f"kernel must be one of {sorted(_KERNELS)}; got {kernel!r}.")
    if metric not in ("euclidean", "manhattan"):
        raise ValueError(f"metric must be 'euclidean' or 'manhattan'; got {metric!r}.")
    if kernel == "gaussian":
        if metric != "euclidean":
            raise ValueError("the gaussian kernel is defined with metric='euclidean' only.")
        _check_positive(bandwidth, "bandwidth")
        return _KERNELS[kernel], _METRICS["sqeuclidean"], 1.0 / (2.0 * bandwidth**2)
    if kernel == "laplacian":
        _check_positive(scale, "scale")
        return _KERNELS[kernel], _METRICS[metric], float(scale)
    return _KERNELS[kernel], _METRICS[metric], 0.0


def _check_positive(value, name):
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}.")


def pairwise_distances(X, Y=None, *, metric="euclidean", n_jobs=None):
    """Distances between the rows of ``X`` and ``Y``, computed exactly.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        First set of points.
    Y : array-like of shape (n_samples_Y, n_features), default=None
        Second set of points; ``None`` means ``X``.
    metric : {"euclidean", "manhattan", "sqeuclidean"}, default="euclidean"
        The distance.
    n_jobs : int, default=None
        Threads; ``None`` means 1, ``-1`` all processors.

    Returns
    -------
    D : ndarray of shape (n_samples_X, n_samples_Y)
        The distance matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats._kernels import pairwise_distances
    >>> pairwise_distances(np.array([[0.0, 0.0], [3.0, 4.0]]))
    array([[0., 5.],
           [5., 0.]])
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}; got {metric!r}.")
    X, YT = _check_pair(X, Y)
    out = np.empty((X.shape[0], YT.shape[1]))
    _dense_kernel(X, YT, _METRICS[metric], _KERNELS["distance"], 0.0, out, n_jobs=n_jobs)
    return out


def kernel_matrix(
    X, Y=None, *, kernel="gaussian", bandwidth=1.0, scale=1.0, metric="euclidean", n_jobs=None
):
    """The dense kernel matrix ``K[i, j] = k(X[i], Y[j])``.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        First set of points.
    Y : array-like of shape (n_samples_Y, n_features), default=None
        Second set of points; ``None`` means ``X``.
    kernel : {"gaussian", "laplacian", "distance"}, default="gaussian"
        ``exp(-d^2 / (2 bandwidth^2))``, ``exp(-scale d)`` or ``d``.
    bandwidth : float, default=1.0
        Gaussian bandwidth (standard deviation).
    scale : float, default=1.0
        Laplacian scale ``t``.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance ``d`` (the gaussian kernel needs euclidean).
    n_jobs : int, default=None
        Threads; ``None`` means 1, ``-1`` all processors.

    Returns
    -------
    K : ndarray of shape (n_samples_X, n_samples_Y)
        The kernel matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats._kernels import kernel_matrix
    >>> kernel_matrix(np.array([[0.0], [1.0]]), kernel="laplacian", scale=1.0)
    array([[1.        , 0.36787944],
           [0.36787944, 1.        ]])
    """
    code, metric_code, param = _kernel_codes(kernel, metric, bandwidth, scale)
    X, YT = _check_pair(X, Y)
    out = np.empty((X.shape[0], YT.shape[1]))
    _dense_kernel(X, YT, metric_code, code, param, out, n_jobs=n_jobs)
    return out


def kernel_matvec(
    X,
    Y,
    V,
    *,
    kernel="gaussian",
    bandwidth=1.0,
    scale=1.0,
    metric="euclidean",
    block_size=DEFAULT_BLOCK_SIZE,
    n_jobs=None,
):
    """Matrix-free product ``K(X, Y) @ V`` without forming ``K``.

    Each row of ``K`` is computed in blocks of ``block_size`` columns and
    immediately contracted with ``V``, so memory is O(n + m) rather than
    O(n m).

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        Row points.
    Y : array-like of shape (n_samples_Y, n_features) or None
        Column points; ``None`` means ``X``.
    V : array-like of shape (n_samples_Y,) or (n_samples_Y, n_vectors)
        Vector(s) to multiply.
    kernel : {"gaussian", "laplacian", "distance"}, default="gaussian"
        See :func:`kernel_matrix`.
    bandwidth : float, default=1.0
        Gaussian bandwidth.
    scale : float, default=1.0
        Laplacian scale.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance.
    block_size : int, default=2048
        Columns of ``K`` held at once per thread.
    n_jobs : int, default=None
        Threads; ``None`` means 1, ``-1`` all processors.

    Returns
    -------
    KV : ndarray of shape (n_samples_X,) or (n_samples_X, n_vectors)
        The product, with the dimensionality of ``V``.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats._kernels import kernel_matvec
    >>> X = np.array([[0.0], [1.0]])
    >>> kernel_matvec(X, None, np.ones(2), kernel="distance")
    array([1., 1.])
    """
    code, metric_code, param = _kernel_codes(kernel, metric, bandwidth, scale)
    if not isinstance(block_size, numbers.Integral) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer; got {block_size!r}.")
    X, YT = _check_pair(X, Y)
    V = np.asarray(V, dtype=np.float64)
    one_d = V.ndim == 1
    V = check_array(V.reshape(-1, 1) if one_d else V, dtype=np.float64, order="C", input_name="V")
    if V.shape[0] != YT.shape[1]:
        raise ValueError(
            f"V has {V.shape[0]} rows but Y has {YT.shape[1]} points; they must match."
        )
    out = np.empty((X.shape[0], V.shape[1]))
    block = int(min(block_size, max(YT.shape[1], 1)))
    _matvec_kernel(X, YT, V, metric_code, code, param, block, out, n_jobs=n_jobs)
    return out[:, 0] if one_d else out
