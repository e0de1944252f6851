"""Soft-threshold sparse training (ST-3) on CPU: the per-step threshold and weights.

After every optimizer step ST-3 needs the quantile of |W| over all layers
and the thresholded, row-rescaled weights. In torch that is a dozen passes
over the weights; these kernels do it in about three: one pass that counts
the magnitudes below a band around the previous threshold and collects
those inside it (the quantile is then found among the few in the band),
and one pass per row that sums the row's magnitudes and writes
``f(W) - W`` while the row is in cache.

The weights come as a tuple of 2-d arrays (each layer viewed as output rows
by everything else), all of one floating dtype; sums are accumulated in
float64. The reference is ``weightstats.nn.sparse._soft_threshold.soft_threshold``
(torch) and ``numpy.quantile``.
"""

import numba
import numpy as np

__all__ = ["magnitude_band", "magnitudes", "soft_threshold_deltas", "threshold_quantile"]

# The reference's guards and rescaling constants (stthree, quantized.py).
_MEAN_EPS = 1e-6
_SCALE_NUM = 1.01
_SCALE_EPS = 0.01
# Half-width of the band around the previous threshold, relative.
_BAND = 0.05


@numba.njit(cache=True, nogil=True)
def magnitude_band(weights, low, high, band):
    """Count ``|w| < low`` and copy the ``low <= |w| <= high`` into ``band``.

    Returns
    -------
    below : int
        Magnitudes under the band.
    count : int
        Magnitudes in the band (the first ``count`` entries of ``band``).
    """
    below = 0
    count = 0
    last = band.size - 1
    for k in range(len(weights)):
        w = weights[k]
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                a = abs(w[i, j])
                # Branch-free: the comparisons are unpredictable.
                below += a < low
                band[min(count, last)] = a
                count += (a >= low) & (a <= high)
    return below, count


@numba.njit(cache=True, nogil=True)
def magnitudes(weights, out):
    """Write every ``|w|``, layer after layer, row by row, into ``out``."""
    n = 0
    for k in range(len(weights)):
        w = weights[k]
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                out[n] = abs(w[i, j])
                n += 1
    return n


# fastmath lets numba vectorise the row sums (reassociated float64 sums of
# a few hundred terms: relative error ~1e-16); the weights are finite.
@numba.njit(cache=True, nogil=True, fastmath=True)
def soft_threshold_deltas(weights, thresholds, soft, rescale, deltas):
    """``deltas[k] = f(weights[k]) - weights[k]`` with ST-3's thresholding ``f``.

    ``f(w) = s_row * (w - sign(w) th) [|w| > th]`` (``soft``; else ``w [|w| >
    th]``), ``s_row = 1.01 / ((mean_row(|w| [|w| > th]) + 1e-6) /
    (mean_row(|w|) + 1e-6) + 0.01)`` when ``rescale``, else 1. Layers with
    ``thresholds[k] <= 0`` are skipped (not pruned). Branch-free, so the
    loops vectorise.
    """
    for k in range(len(weights)):
        w = weights[k]
        d = deltas[k]
        th = thresholds[k]
        if th <= 0:
            continue
        n_cols = w.shape[1]
        for i in range(w.shape[0]):
            scale = 1.0
            if rescale:
                total = 0.0
                kept = 0.0
                for j in range(n_cols):
                    a = abs(w[i, j])
                    total += a
                    kept += a * (a > th)
                ratio = (kept / n_cols + _MEAN_EPS) / (total / n_cols + _MEAN_EPS)
                scale = _SCALE_NUM / (ratio + _SCALE_EPS)
            for j in range(n_cols):
                x = w[i, j]
                if soft:
                    # sign(x) (|x| - th) above the threshold, exactly 0 below.
                    value = x - min(max(x, -th), th)
                else:
                    value = x * (abs(x) > th)
                d[i, j] = value * scale - x


def threshold_quantile(weights, ratio, buffer, previous=None):
    """The quantile of all ``|w|`` at ``ratio``, interpolated at ``(n - 1) ratio``.

    Parameters
    ----------
    weights : tuple of 2-d arrays
        The layers' weights (one dtype).
    ratio : float in [0, 1)
        The quantile level.
    buffer : 1-d array
        Scratch space with room for every weight.
    previous : float or None, default=None
        The previous threshold: when the quantile is within 5 % of it, only
        the magnitudes in that band are partially sorted.

    Returns
    -------
    threshold : float
        ``e1 + (e2 - e1) (position - low)``, ``e1`` and ``e2`` the ``low``-th
        and next smallest magnitudes, ``low = floor((n - 1) ratio)``.
    """
    n = sum(w.size for w in weights)
    position = (n - 1) * ratio
    low = int(position)
    if previous is not None and previous > 0:
        below, count = magnitude_band(weights, previous * (1 - _BAND), previous * (1 + _BAND), buffer)
        if below <= low and below + count >= low + 2:
            e1, e2 = _pair(buffer[:count], low - below)
            return e1 + (e2 - e1) * (position - low)
    magnitudes(weights, buffer)
    e1, e2 = _pair(buffer[:n], low)
    return e1 + (e2 - e1) * (position - low)


def _pair(values, k):
    """The ``k``-th smallest of ``values`` and the next one (floats)."""
    parted = np.partition(values, k)
    first = float(parted[k])
    second = float(parted[k + 1 :].min()) if k + 1 < parted.size else first
    return first, second
