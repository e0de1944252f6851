"""Row-wise isotonic regression (pool adjacent violators) for quantile monotonisation.

Each row of a matrix of predicted quantiles (columns in increasing level
order) is replaced by its L2 projection onto non-decreasing sequences with
unit weights. Rows are independent, so the parallel variant splits rows over
threads. O(n_levels) per row (each value is pushed and merged once).
"""

import numpy as np
from numba import prange
from sklearn.utils.validation import check_array

from ._dispatch import jit_variants

__all__ = ["isotonic_rows"]


@jit_variants
def _isotonic_rows(values, out):
    n_rows, n_cols = values.shape
    for i in prange(n_rows):
        means = np.empty(n_cols)
        counts = np.empty(n_cols)
        n_blocks = 0
        for t in range(n_cols):
            means[n_blocks] = values[i, t]
            counts[n_blocks] = 1.0
            n_blocks += 1
            # Merge while the last two blocks violate the order.
            while n_blocks > 1 and means[n_blocks - 2] > means[n_blocks - 1]:
                total = counts[n_blocks - 2] + counts[n_blocks - 1]
                means[n_blocks - 2] = (
                    means[n_blocks - 2] * counts[n_blocks - 2]
                    + means[n_blocks - 1] * counts[n_blocks - 1]
                ) / total
                counts[n_blocks - 2] = total
                n_blocks -= 1
        t = 0
        for b in range(n_blocks):
            for _ in range(int(counts[b])):
                out[i, t] = means[b]
                t += 1


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
    values = check_array(values, dtype=np.float64, order="C", input_name="values")
    out = np.empty_like(values)
    _isotonic_rows(values, out, n_jobs=n_jobs)
    return out
