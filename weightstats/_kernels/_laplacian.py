"""Fast Laplacian similarity kernels ``exp(-t d(x, y))`` for metric-space magnitude.

The magnitude solvers spend nearly all their time forming the similarity
matrix ``Z`` (exact path) or multiplying by it (conjugate gradients), so these
kernels do the same work as ``kernel_matrix`` / ``kernel_matvec`` with
``kernel="laplacian"`` about three to four times faster:

* symmetry: ``laplacian_lower`` forms only the pairs ``j <= i`` (LAPACK's
  Cholesky reads one triangle) and ``laplacian_symv`` forms each pair once and
  uses it for both ``(Zv)_i`` and ``(Zv)_j``;
* a vectorisable exponential: numba calls libm's ``exp`` element by element,
  which stops SIMD vectorisation of the whole loop. ``_exp_neg`` uses a
  Cody-Waite range reduction, a degree-13 Taylor polynomial and builds ``2^k``
  from its bits; it agrees with ``np.exp`` to a few ulp (tested to 1e-14
  relative) and returns 0 below ``exp(-708)``, where ``np.exp`` would return
  subnormals;
* distances in column blocks that stay in L1 cache, with the feature loop
  unrolled by four.

Distances are sums of differences, never the BLAS expansion, exactly as in
``_pairwise`` (nearby points keep full relative precision). The row operand is
stored transposed (features x points) so inner loops run over contiguous
points. ``fastmath`` is limited to reassociation and contraction, which lets
the dot products vectorise; results stay within 1e-12 relative of the NumPy
references in ``_laplacian_ref``.
"""

import numpy as np
from numba import prange
from sklearn.utils.validation import check_array

from ._dispatch import jit_variants, n_threads_from_jobs
from ._pairwise import _check_positive

__all__ = [
    "laplacian_lower",
    "laplacian_matvec",
    "laplacian_pair_matvec",
    "laplacian_symv",
    "laplacian_symv_single",
    "symv_chunks",
]

_METRICS = {"euclidean": 0, "manhattan": 1}
_BLOCK = 512
_FASTMATH = {"reassoc", "contract"}
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_EXP_MIN = -708.0


def _distances(x, YT, j0, width, metric, acc):
    """acc[:width] = d(x, Y[j0:j0 + width]) (euclidean: code 0, manhattan: 1,
    squared euclidean: 2)."""
    n_features = YT.shape[0]
    j1 = j0 + width
    k = 0
    while k < n_features:
        # Up to four features per pass over acc: fewer loads and stores of acc.
        step = min(4, n_features - k)
        y0 = YT[k, j0:j1]
        x0 = x[k]
        if step == 4:
            y1, y2, y3 = YT[k + 1, j0:j1], YT[k + 2, j0:j1], YT[k + 3, j0:j1]
            x1, x2, x3 = x[k + 1], x[k + 2], x[k + 3]
            if metric == 1:
                for j in range(width):
                    part = (abs(y0[j] - x0) + abs(y1[j] - x1)) + (abs(y2[j] - x2) + abs(y3[j] - x3))
                    acc[j] = part if k == 0 else acc[j] + part
            else:
                for j in range(width):
                    a, b, c, e = y0[j] - x0, y1[j] - x1, y2[j] - x2, y3[j] - x3
                    part = (a * a + b * b) + (c * c + e * e)
                    acc[j] = part if k == 0 else acc[j] + part
        elif step == 3:
            y1, y2 = YT[k + 1, j0:j1], YT[k + 2, j0:j1]
            x1, x2 = x[k + 1], x[k + 2]
            if metric == 1:
                for j in range(width):
                    part = (abs(y0[j] - x0) + abs(y1[j] - x1)) + abs(y2[j] - x2)
                    acc[j] = part if k == 0 else acc[j] + part
            else:
                for j in range(width):
                    a, b, c = y0[j] - x0, y1[j] - x1, y2[j] - x2
                    part = (a * a + b * b) + c * c
                    acc[j] = part if k == 0 else acc[j] + part
        elif step == 2:
            y1 = YT[k + 1, j0:j1]
            x1 = x[k + 1]
            if metric == 1:
                for j in range(width):
                    part = abs(y0[j] - x0) + abs(y1[j] - x1)
                    acc[j] = part if k == 0 else acc[j] + part
            else:
                for j in range(width):
                    a, b = y0[j] - x0, y1[j] - x1
                    part = a * a + b * b
                    acc[j] = part if k == 0 else acc[j] + part
        else:
            for j in range(width):
                a = y0[j] - x0
                part = abs(a) if metric == 1 else a * a
                acc[j] = part if k == 0 else acc[j] + part
        k += step
    if n_features == 0:
        for j in range(width):
            acc[j] = 0.0
    if metric == 0:
        for j in range(width):
            acc[j] = np.sqrt(acc[j])


def _exp_neg(acc, width, t, bits, powers):
    """acc[:width] = exp(-t * acc[:width]) for acc >= 0.

    ``bits`` (int64) and ``powers`` (a float64 view of the same memory) are
    scratch space of length >= width.
    """
    for j in range(width):
        x = -t * acc[j]
        underflow = x < _EXP_MIN
        if underflow:
            x = 0.0
        k = np.floor(x * _LOG2E + 0.5)
        r = (x - k * _LN2_HI) - k * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        bits[j] = (np.int64(k) + 1023) << 52
        acc[j] = 0.0 if underflow else p
    for j in range(width):
        acc[j] *= powers[j]


# Single precision (the first phase of mixed-precision CG): Cody-Waite with the
# float32 split of ln 2 and a degree-7 Taylor polynomial, within 2e-7 relative.
_LOG2E_32 = np.float32(_LOG2E)
_LN2_HI_32 = np.float32(0.693359375)
_LN2_LO_32 = np.float32(-2.12194440e-4)
_EXP_MIN_32 = np.float32(-87.0)
_ZERO_32 = np.float32(0.0)
_ONE_32 = np.float32(1.0)
_HALF_32 = np.float32(0.5)
_C3_32, _C4_32, _C5_32 = np.float32(1 / 6), np.float32(1 / 24), np.float32(1 / 120)
_C6_32, _C7_32 = np.float32(1 / 720), np.float32(1 / 5040)


def _exp_neg32(acc, width, t, bits, powers):
    """float32 ``acc[:width] = exp(-t * acc[:width])``; ``bits`` int32, ``powers`` its view."""
    for j in range(width):
        x = -t * acc[j]
        underflow = x < _EXP_MIN_32
        if underflow:
            x = _ZERO_32
        k = np.floor(x * _LOG2E_32 + _HALF_32)
        r = (x - k * _LN2_HI_32) - k * _LN2_LO_32
        p = _C7_32
        p = p * r + _C6_32
        p = p * r + _C5_32
        p = p * r + _C4_32
        p = p * r + _C3_32
        p = p * r + _HALF_32
        p = p * r + _ONE_32
        p = p * r + _ONE_32
        bits[j] = (np.int32(k) + np.int32(127)) << np.int32(23)
        acc[j] = _ZERO_32 if underflow else p
    for j in range(width):
        acc[j] *= powers[j]


_distances_jit = jit_variants(_distances, fastmath=_FASTMATH).serial
_exp_neg_jit = jit_variants(_exp_neg, fastmath=_FASTMATH).serial
_exp_neg32_jit = jit_variants(_exp_neg32, fastmath=_FASTMATH).serial


@jit_variants(fastmath=_FASTMATH)
def _lower_kernel(X, XT, metric, t, out):
    n = X.shape[0]
    # Row i costs i + 1 pairs: pairing row ii with row n - 1 - ii balances the threads.
    for ii in prange((n + 1) // 2):
        bits = np.empty(_BLOCK, dtype=np.int64)
        powers = bits.view(np.float64)
        for h in range(2):
            i = np.int64(ii) if h == 0 else n - 1 - np.int64(ii)
            if h == 1 and i == np.int64(ii):
                break
            row = out[i]
            for j0 in range(0, i + 1, _BLOCK):
                width = min(_BLOCK, i + 1 - j0)
                block = row[j0 : j0 + width]
                _distances_jit(X[i], XT, j0, width, metric, block)
                _exp_neg_jit(block, width, t, bits, powers)


@jit_variants(fastmath=_FASTMATH)
def _block_matvec_kernel(X, YT, u, v, metric, t, bounds, triangle, out_x, partial_y):
    # K[i, j] = exp(-t d(X[i], Y[j])) over all j, or over j < i when X is Y
    # (triangle): (K v)_i goes to out_x, (K' u)_j to the row chunk's partial_y.
    m = YT.shape[1]
    for c in prange(bounds.shape[0] - 1):
        acc = np.empty(_BLOCK)
        bits = np.empty(_BLOCK, dtype=np.int64)
        powers = bits.view(np.float64)
        out = partial_y[c]
        for i in range(bounds[c], bounds[c + 1]):
            ui = u[i]
            s = 0.0
            end = i if triangle else m
            for j0 in range(0, end, _BLOCK):
                width = min(_BLOCK, end - j0)
                _distances_jit(X[i], YT, j0, width, metric, acc)
                _exp_neg_jit(acc, width, t, bits, powers)
                for j in range(width):
                    s += acc[j] * v[j0 + j]
                for j in range(width):
                    out[j0 + j] += acc[j] * ui
            out_x[i] = s


@jit_variants(fastmath=_FASTMATH)
def _symv32_kernel(X, XT, v, metric, t, bounds, partial):
    # float32 distances, kernel values and block sums; float64 accumulation.
    for c in prange(bounds.shape[0] - 1):
        acc = np.empty(_BLOCK, dtype=np.float32)
        bits = np.empty(_BLOCK, dtype=np.int32)
        powers = bits.view(np.float32)
        out = partial[c]
        for i in range(bounds[c], bounds[c + 1]):
            vi = v[i]
            s = 0.0
            for j0 in range(0, i, _BLOCK):
                width = min(_BLOCK, i - j0)
                _distances_jit(X[i], XT, j0, width, metric, acc)
                _exp_neg32_jit(acc, width, t, bits, powers)
                block = _ZERO_32
                for j in range(width):
                    block += acc[j] * v[j0 + j]
                s += block
                for j in range(width):
                    out[j0 + j] += acc[j] * vi
            out[i] += s + vi


@jit_variants(fastmath=_FASTMATH)
def _rect_matvec_kernel(X, YT, v, metric, t, out):
    m = YT.shape[1]
    for i in prange(X.shape[0]):
        acc = np.empty(_BLOCK)
        bits = np.empty(_BLOCK, dtype=np.int64)
        powers = bits.view(np.float64)
        s = 0.0
        for j0 in range(0, m, _BLOCK):
            width = min(_BLOCK, m - j0)
            _distances_jit(X[i], YT, j0, width, metric, acc)
            _exp_neg_jit(acc, width, t, bits, powers)
            for j in range(width):
                s += acc[j] * v[j0 + j]
        out[i] = s


def _check_scale(scale):
    _check_positive(scale, "scale")
    return float(scale)


def _check_metric(metric):
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}; got {metric!r}.")
    return _METRICS[metric]


def _check_vector(v, n):
    v = np.ascontiguousarray(v, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"v must have shape ({n},); got {v.shape}.")
    return v


def _as_points(X, name="X"):
    return check_array(X, dtype=np.float64, order="C", input_name=name)


def _check_rectangle(X, Y, scale, metric):
    X, Y = _as_points(X), _as_points(Y, "Y")
    if Y.shape[1] != X.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features but Y has {Y.shape[1]}; they must match.")
    return _check_scale(scale), _check_metric(metric), X, Y


def laplacian_lower(X, *, scale, metric="euclidean", out=None, n_jobs=None):
    """Lower triangle of ``Z[i, j] = exp(-scale * d(X[i], X[j]))``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The points.
    scale : float
        The scale ``t > 0``.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance ``d``.
    out : ndarray of shape (n_samples, n_samples), default=None
        C-contiguous float64 array to fill; a new one when ``None``.
    n_jobs : int, default=None
        Threads; ``None`` means 1, ``-1`` all processors.

    Returns
    -------
    out : ndarray of shape (n_samples, n_samples)
        Entries ``j <= i`` hold ``Z[i, j]``; the strict upper triangle is left
        as it was (uninitialised when ``out`` is ``None``). ``out.T`` is the
        upper triangle in Fortran order, ready for LAPACK without a copy.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats._kernels._laplacian import laplacian_lower
    >>> Z = laplacian_lower(np.array([[0.0], [1.0]]), scale=1.0, out=np.zeros((2, 2)))
    >>> Z.round(6)
    array([[1.      , 0.      ],
           [0.367879, 1.      ]])
    """
    t = _check_scale(scale)
    code = _check_metric(metric)
    X = _as_points(X)
    n = X.shape[0]
    if out is None:
        out = np.empty((n, n))
    elif out.shape != (n, n) or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float64 array of shape {(n, n)}.")
    _lower_kernel(X, np.ascontiguousarray(X.T), code, t, out, n_jobs=n_jobs)
    return out


def symv_chunks(n_samples, n_jobs=None):
    """Row boundaries that split the ``n (n - 1) / 2`` pairs into equal chunks.

    At least eight chunks, so that results do not depend on the number of
    threads up to eight.

    Parameters
    ----------
    n_samples : int
        Number of points.
    n_jobs : int, default=None
        Threads; more threads than eight give more chunks.

    Returns
    -------
    bounds : ndarray of int64
        Increasing row indices from 0 to ``n_samples``.

    Examples
    --------
    >>> from weightstats._kernels._laplacian import symv_chunks
    >>> symv_chunks(100).tolist()
    [0, 35, 50, 61, 71, 79, 87, 94, 100]
    """
    n_chunks = max(8, n_threads_from_jobs(n_jobs))
    bounds = np.rint(n_samples * np.sqrt(np.arange(n_chunks + 1) / n_chunks)).astype(np.int64)
    return np.unique(bounds)


def laplacian_symv(X, v, *, scale, metric="euclidean", n_jobs=None, _XT=None):
    """Matrix-free ``Z @ v`` with ``Z[i, j] = exp(-scale * d(X[i], X[j]))``.

    Each pair is formed once (``n (n - 1) / 2`` kernel values); memory is
    O(n) per chunk of rows.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The points.
    v : array-like of shape (n_samples,)
        The vector.
    scale : float
        The scale ``t > 0``.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance ``d``.
    n_jobs : int, default=None
        Threads; ``None`` means 1, ``-1`` all processors.

    Returns
    -------
    Zv : ndarray of shape (n_samples,)
        The product.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats._kernels._laplacian import laplacian_symv
    >>> laplacian_symv(np.array([[0.0], [1.0]]), np.ones(2), scale=1.0).round(6)
    array([1.367879, 1.367879])
    """
    t = _check_scale(scale)
    code = _check_metric(metric)
    X = _as_points(X)
    v = _check_vector(v, X.shape[0])
    XT = np.ascontiguousarray(X.T) if _XT is None else _XT
    bounds = symv_chunks(X.shape[0], n_jobs)
    below = np.empty(X.shape[0])
    above = np.zeros((bounds.shape[0] - 1, X.shape[0]))
    _block_matvec_kernel(X, XT, v, v, code, t, bounds, True, below, above, n_jobs=n_jobs)
    return below + above.sum(axis=0) + v  # the diagonal: exp(-t * 0) = 1


def laplacian_symv_single(X, v, *, scale, metric="euclidean", n_jobs=None, _XT=None):
    """``Z @ v`` as :func:`laplacian_symv`, in single precision (relative error ~1e-6).

    Points, vector and kernel values are float32 (twice the SIMD width, a
    shorter exponential polynomial); sums are accumulated in float64. Used for
    the first phase of mixed-precision conjugate gradients.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The points (converted to float32).
    v : array-like of shape (n_samples,)
        The vector.
    scale : float
        The scale ``t > 0``.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance ``d``.
    n_jobs : int, default=None
        Threads; ``None`` means 1, ``-1`` all processors.

    Returns
    -------
    Zv : ndarray of float64 of shape (n_samples,)
        The product.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats._kernels._laplacian import laplacian_symv_single
    >>> laplacian_symv_single(np.array([[0.0], [1.0]]), np.ones(2), scale=1.0).round(6)
    array([1.367879, 1.367879])
    """
    t = np.float32(_check_scale(scale))
    code = _check_metric(metric)
    X = np.ascontiguousarray(_as_points(X), dtype=np.float32)
    v = _check_vector(v, X.shape[0]).astype(np.float32)
    XT = np.ascontiguousarray(X.T) if _XT is None else _XT
    bounds = symv_chunks(X.shape[0], n_jobs)
    partial = np.zeros((bounds.shape[0] - 1, X.shape[0]))
    _symv32_kernel(X, XT, v, code, t, bounds, partial, n_jobs=n_jobs)
    return partial.sum(axis=0)


def laplacian_matvec(X, Y, v, *, scale, metric="euclidean", n_jobs=None):
    """Matrix-free ``K @ v`` with ``K[i, j] = exp(-scale * d(X[i], Y[j]))``.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        Row points.
    Y : array-like of shape (n_samples_Y, n_features)
        Column points.
    v : array-like of shape (n_samples_Y,)
        The vector.
    scale : float
        The scale ``t > 0``.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance ``d``.
    n_jobs : int, default=None
        Threads; ``None`` means 1, ``-1`` all processors.

    Returns
    -------
    Kv : ndarray of shape (n_samples_X,)
        The product.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats._kernels._laplacian import laplacian_matvec
    >>> laplacian_matvec([[0.0]], [[0.0], [1.0]], [1.0, 1.0], scale=1.0).round(6)
    array([1.367879])
    """
    t, code, X, Y = _check_rectangle(X, Y, scale, metric)
    v = _check_vector(v, Y.shape[0])
    out = np.empty(X.shape[0])
    _rect_matvec_kernel(X, np.ascontiguousarray(Y.T), v, code, t, out, n_jobs=n_jobs)
    return out


def laplacian_pair_matvec(X, Y, u, v, *, scale, metric="euclidean", n_jobs=None):
    """Both products of one off-diagonal block: ``K @ v`` and ``K.T @ u``.

    ``K[i, j] = exp(-scale * d(X[i], Y[j]))`` is formed once and used twice,
    so the blocks above the diagonal of a symmetric ``Z`` give all of
    ``Z @ v`` (the distributed products of the conjugate-gradient solver).

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        Row points.
    Y : array-like of shape (n_samples_Y, n_features)
        Column points.
    u : array-like of shape (n_samples_X,)
        Multiplies ``K.T``.
    v : array-like of shape (n_samples_Y,)
        Multiplies ``K``.
    scale : float
        The scale ``t > 0``.
    metric : {"euclidean", "manhattan"}, default="euclidean"
        The distance ``d``.
    n_jobs : int, default=None
        Threads; ``None`` means 1, ``-1`` all processors.

    Returns
    -------
    Kv : ndarray of shape (n_samples_X,)
        ``K @ v``.
    KTu : ndarray of shape (n_samples_Y,)
        ``K.T @ u``.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats._kernels._laplacian import laplacian_pair_matvec
    >>> Kv, KTu = laplacian_pair_matvec([[0.0]], [[0.0], [1.0]], [2.0], [1.0, 1.0], scale=1.0)
    >>> Kv.round(6), KTu.round(6)
    (array([1.367879]), array([2.      , 0.735759]))
    """
    t, code, X, Y = _check_rectangle(X, Y, scale, metric)
    u = _check_vector(u, X.shape[0])
    v = _check_vector(v, Y.shape[0])
    # Row chunks, each with its own copy of K'u: at least eight, so that the
    # result does not depend on the number of threads up to eight.
    n_chunks = min(X.shape[0], max(8, n_threads_from_jobs(n_jobs)))
    bounds = np.unique(np.linspace(0, X.shape[0], n_chunks + 1).astype(np.int64))
    out_x = np.empty(X.shape[0])
    partial_y = np.zeros((bounds.shape[0] - 1, Y.shape[0]))
    _block_matvec_kernel(X, np.ascontiguousarray(Y.T), u, v, code, t, bounds, False, out_x,
                         partial_y, n_jobs=n_jobs)
    return out_x, partial_y.sum(axis=0)
