"""Row-wise isotonic regression (pool adjacent violators).

Each row of a matrix (columns in increasing order of a level, such as
predicted quantiles or cumulative class probabilities) is replaced by its L2
projection onto non-decreasing sequences with unit weights. Rows are
independent, so the parallel variant splits rows over threads. O(n_cols) per
row (each value is pushed and merged once); rows already in order are left
untouched. The one PAVA kernel of the package: quantile monotonisation and
the ordinal classifiers' crossing boundaries both use it.
"""

import numpy as np
from numba import prange
from sklearn.utils.validation import check_array

from ._dispatch import jit_variants

__all__ = ["isotonic_rows", "pava_rows"]


@jit_variants
def pava_rows(F):
    """Make each row of ``F`` non-decreasing by its least-squares projection, in place.

    Pool adjacent violators with unit weights on the rows that are not
    already non-decreasing. Returns the number of rows changed.
    """
    n, k = F.shape
    changed = 0
    for i in prange(n):
        ordered = True
        for j in range(k - 1):
            if F[i, j] > F[i, j + 1]:
                ordered = False
                break
        if ordered:
            continue
        changed += 1
        # Blocks as (mean, size) on a stack; merge while the top two violate the order.
        means = np.empty(k)
        sizes = np.empty(k, dtype=np.int64)
        top = 0
        for j in range(k):
            means[top] = F[i, j]
            sizes[top] = 1
            while top > 0 and means[top - 1] > means[top]:
                total = sizes[top - 1] + sizes[top]
                means[top - 1] = (means[top - 1] * sizes[top - 1] + means[top] * sizes[top]) / total
                sizes[top - 1] = total
                top -= 1
            top += 1
        j = 0
        for b in range(top):
            for _ in range(sizes[b]):
                F[i, j] = means[b]
                j += 1
    return changed


def isotonic_rows(values, *, n_jobs=None):
    """Non-decreasing L2 projection of each row (unit weights).

    Parameters
    ----------
    values : array-like of shape (n_rows, n_cols)
        Finite values; each row is projected separately.
    n_jobs : int, default=None
        Threads (``None`` means 1).

    Returns
    -------
    projected : ndarray of shape (n_rows, n_cols)
        Each row's isotonic (non-decreasing) least-squares fit.
    """
    out = check_array(values, dtype=np.float64, order="C", copy=True, input_name="values")
    pava_rows(out, n_jobs=n_jobs)
    return out
