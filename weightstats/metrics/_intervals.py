"""Scores for quantile and interval forecasts.

Conventions (pinned, and tested in ``tests/test_interval_metrics.py``):

* Pinball loss of level ``tau`` at residual ``u = y - q``:
  ``psi_tau(u) = max(tau * u, (tau - 1) * u)``, the same as scikit-learn's
  :func:`~sklearn.metrics.mean_pinball_loss`.
* Interval score of a central ``(1 - alpha)`` interval ``[l, u]``
  (Gneiting and Raftery 2007; Bracher et al. 2021, eq. 1):
  ``IS_alpha = (u - l) + (2 / alpha) (l - y)_+ + (2 / alpha) (y - u)_+``.
* Weighted interval score (Bracher et al. 2021, eq. 2), for K intervals and
  an optional median ``m``::

      WIS = 1 / (K + 1/2) * ( 1/2 |y - m| + sum_k (alpha_k / 2) IS_alpha_k )

  and, without a median, ``WIS = 1/K * sum_k (alpha_k / 2) IS_alpha_k``.
  Because ``(alpha/2) IS_alpha = psi_{alpha/2}(y - l) + psi_{1-alpha/2}(y - u)``
  and ``|y - m| / 2 = psi_{1/2}(y - m)``, WIS is twice the mean pinball loss
  over the 2K (+1) quantile levels. Fakoor et al. (2023) and their code score
  ``sum_k alpha_k IS_alpha_k``, i.e. 2K (or 2K + 1) times larger; divide by
  that factor to compare with their tables.
* An interval with ``lower > upper`` is an error in every interval score
  (coverage, width, WIS): it would count as covering nothing and have a
  negative width. The message gives the number of such rows and the first.
"""

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import StrOptions, validate_params

from ..utils import check_sample_weight

__all__ = [
    "interval_coverage",
    "mean_interval_width",
    "pinball_loss",
    "quantile_crossing_rate",
    "weighted_interval_score",
]


def _as_float(values, name):
    try:
        values = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if values.size and not np.all(np.isfinite(values)):
        kind = "NaN" if np.isnan(values).any() else "infinity"
        raise ValueError(f"{name} contains {kind}; scores need finite values.")
    return values


def _levels(levels, name, *, strictly_increasing=False):
    levels = np.atleast_1d(_as_float(levels, name))
    if levels.ndim != 1 or levels.size == 0:
        raise ValueError(f"{name} must be a number or a 1-d list of numbers in (0, 1).")
    if np.any((levels <= 0) | (levels >= 1)):
        raise ValueError(f"{name} must lie strictly between 0 and 1; got {levels.tolist()}.")
    if strictly_increasing and np.any(np.diff(levels) <= 0):
        raise ValueError(f"{name} must be strictly increasing; got {levels.tolist()}.")
    return levels


def _columns(values, name, n_samples, n_columns=None):
    """Return ``values`` as (n_samples, n_columns) and whether it was 1-d."""
    values = _as_float(values, name)
    one_d = values.ndim == 1
    if one_d:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"{name} must be 1-d or 2-d (n_samples, n_levels); got {values.ndim}-d.")
    if values.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {values.shape[0]} rows but y_true has {n_samples}; they must have the "
            "same length."
        )
    if n_columns is not None and values.shape[1] != n_columns:
        raise ValueError(f"{name} has {values.shape[1]} columns; expected {n_columns}.")
    return values, one_d


def _y_and_weights(y_true, sample_weight):
    y = _as_float(y_true, "y_true")
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-d; got shape {y.shape}.")
    if y.shape[0] == 0:
        raise ValueError("y_true is empty; scores need at least one sample.")
    w = check_sample_weight(sample_weight, y)
    return y, w / w.sum()


def _pinball(u, tau):
    return np.maximum(tau * u, (tau - 1.0) * u)


@validate_params(
    {
        "y_true": ["array-like"],
        "y_pred": ["array-like"],
        "quantiles": ["array-like", Real],
        "sample_weight": ["array-like", None],
        "multioutput": [StrOptions({"raw_values", "uniform_average"})],
    },
    prefer_skip_nested_validation=True,
)
def pinball_loss(y_true, y_pred, quantiles, *, sample_weight=None, multioutput="raw_values"):
    """Mean pinball (quantile) loss, one value per quantile level.

    ``psi_tau(u) = max(tau u, (tau - 1) u)`` with ``u = y - q``; column ``k`` of
    ``y_pred`` is scored at level ``quantiles[k]``. Equals scikit-learn's
    :func:`~sklearn.metrics.mean_pinball_loss` level by level.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Observed values.
    y_pred : array-like of shape (n_samples,) or (n_samples, n_levels)
        Predicted quantiles, one column per level.
    quantiles : float or array-like of shape (n_levels,)
        The levels, in (0, 1).
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights of the samples.
    multioutput : {"raw_values", "uniform_average"}, default="raw_values"
        Return the loss of each level or their average.

    Returns
    -------
    loss : ndarray of shape (n_levels,) or float
        Mean pinball loss per level, or the average over levels.

    Examples
    --------
    >>> from weightstats.metrics import pinball_loss
    >>> y = [1.0, 2.0, 3.0]
    >>> pinball_loss(y, [[0.5, 2.0], [1.5, 2.5], [2.5, 3.5]], [0.1, 0.9])
    array([0.05      , 0.06666667])
    """
    y, w = _y_and_weights(y_true, sample_weight)
    levels = _levels(quantiles, "quantiles")
    pred, _ = _columns(y_pred, "y_pred", y.shape[0], levels.shape[0])
    loss = w @ _pinball(y[:, None] - pred, levels[None, :])
    return float(loss.mean()) if multioutput == "uniform_average" else loss


def _check_ordered(lo, hi):
    """Refuse intervals whose lower bound exceeds the upper bound."""
    inverted = lo > hi
    if not inverted.any():
        return
    rows = np.flatnonzero(inverted.any(axis=1))
    i = rows[0]
    j = int(np.flatnonzero(inverted[i])[0])
    where = f"row {i}" if lo.shape[1] == 1 else f"row {i}, interval column {j}"
    raise ValueError(
        f"lower > upper in {rows.size} of {lo.shape[0]} rows (first at {where}: lower="
        f"{lo[i, j]:.6g} > upper={hi[i, j]:.6g}); an interval needs lower <= upper. Crossing "
        "quantile predictions give such bounds: sort them first, e.g. with "
        "weightstats.ensemble.monotonize_quantiles."
    )


def _interval_inputs(y_true, lower, upper, sample_weight):
    y, w = _y_and_weights(y_true, sample_weight)
    lo, one_d = _columns(lower, "lower", y.shape[0])
    hi, _ = _columns(upper, "upper", y.shape[0], lo.shape[1])
    _check_ordered(lo, hi)
    return y, w, lo, hi, one_d


@validate_params(
    {
        "y_true": ["array-like"],
        "lower": ["array-like"],
        "upper": ["array-like"],
        "alpha": ["array-like", Real],
        "median": ["array-like", None],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def weighted_interval_score(y_true, lower, upper, alpha, *, median=None, sample_weight=None):
    """Weighted interval score of central prediction intervals (Bracher et al. 2021).

    For K central ``(1 - alpha_k)`` intervals ``[l_k, u_k]`` and an optional
    median ``m``::

        WIS = 1 / (K + 1/2) * (1/2 |y - m| + sum_k alpha_k / 2 * IS_alpha_k)

    with the interval score ``IS_alpha = (u - l) + 2/alpha (l - y)_+ +
    2/alpha (y - u)_+``; without a median the ``|y - m|`` term is dropped and
    the normaliser is ``1 / K``. Lower is better. WIS equals twice the mean
    :func:`pinball_loss` over the levels ``alpha_k / 2``, ``1 - alpha_k / 2``
    (and 1/2), which approximates the CRPS.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Observed values.
    lower : array-like of shape (n_samples,) or (n_samples, n_intervals)
        Lower interval bounds, one column per interval.
    upper : array-like of shape (n_samples,) or (n_samples, n_intervals)
        Upper interval bounds, at least ``lower`` (else a ValueError names
        the rows).
    alpha : float or array-like of shape (n_intervals,)
        Miscoverage of each interval: ``[l_k, u_k]`` is the central
        ``1 - alpha_k`` interval.
    median : array-like of shape (n_samples,), default=None
        Predicted median; included as in Bracher et al. when given.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights of the samples.

    Returns
    -------
    score : float
        The weighted mean over samples of the per-sample WIS.

    References
    ----------
    .. [1] Bracher, J., Ray, E. L., Gneiting, T. and Reich, N. G. (2021).
       Evaluating epidemic forecasts in an interval format. PLOS Computational
       Biology 17(2), e1008618.

    Examples
    --------
    >>> from weightstats.metrics import weighted_interval_score
    >>> weighted_interval_score([1.0, 5.0], lower=[0.0, 0.0], upper=[2.0, 2.0], alpha=0.2)
    1.7
    """
    y, w, lo, hi, _ = _interval_inputs(y_true, lower, upper, sample_weight)
    alphas = _levels(alpha, "alpha")
    if alphas.shape[0] != lo.shape[1]:
        raise ValueError(
            f"alpha has {alphas.shape[0]} values but there are {lo.shape[1]} intervals; give one "
            "miscoverage level per interval column."
        )
    score = np.sum(
        (alphas / 2.0) * (hi - lo)
        + np.maximum(lo - y[:, None], 0.0)
        + np.maximum(y[:, None] - hi, 0.0),
        axis=1,
    )
    n_terms = float(alphas.shape[0])
    if median is not None:
        m, _ = _columns(median, "median", y.shape[0], 1)
        score = score + 0.5 * np.abs(y - m[:, 0])
        n_terms += 0.5
    return float(w @ score / n_terms)


@validate_params(
    {
        "y_true": ["array-like"],
        "lower": ["array-like"],
        "upper": ["array-like"],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def interval_coverage(y_true, lower, upper, *, sample_weight=None):
    """Share of observations inside their prediction interval (bounds included).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Observed values.
    lower : array-like of shape (n_samples,) or (n_samples, n_intervals)
        Lower bounds.
    upper : array-like of shape (n_samples,) or (n_samples, n_intervals)
        Upper bounds, at least ``lower`` (else a ValueError names the rows).
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights of the samples.

    Returns
    -------
    coverage : float or ndarray of shape (n_intervals,)
        Weighted share of ``lower <= y <= upper``, per interval column for
        2-d bounds.

    Examples
    --------
    >>> from weightstats.metrics import interval_coverage
    >>> interval_coverage([1.0, 2.0, 3.0, 4.0], [0, 0, 0, 0], [2.0, 2.0, 2.0, 2.0])
    0.5
    """
    y, w, lo, hi, one_d = _interval_inputs(y_true, lower, upper, sample_weight)
    inside = (lo <= y[:, None]) & (y[:, None] <= hi)
    coverage = w @ inside
    return float(coverage[0]) if one_d else coverage


@validate_params(
    {"lower": ["array-like"], "upper": ["array-like"], "sample_weight": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def mean_interval_width(lower, upper, *, sample_weight=None):
    """Mean width ``upper - lower`` of prediction intervals.

    Parameters
    ----------
    lower : array-like of shape (n_samples,) or (n_samples, n_intervals)
        Lower bounds.
    upper : array-like of shape (n_samples,) or (n_samples, n_intervals)
        Upper bounds, at least ``lower`` (else a ValueError names the rows).
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights of the samples.

    Returns
    -------
    width : float or ndarray of shape (n_intervals,)
        Weighted mean width, per interval column for 2-d bounds.

    Examples
    --------
    >>> from weightstats.metrics import mean_interval_width
    >>> mean_interval_width([0.0, 1.0], [2.0, 4.0])
    2.5
    """
    lo = _as_float(lower, "lower")
    n_samples = lo.shape[0] if lo.ndim else 0
    _, w = _y_and_weights(np.zeros(n_samples), sample_weight)
    lo, one_d = _columns(lo, "lower", n_samples)
    hi, _ = _columns(upper, "upper", n_samples, lo.shape[1])
    _check_ordered(lo, hi)
    width = w @ (hi - lo)
    return float(width[0]) if one_d else width


@validate_params(
    {"y_pred": ["array-like"], "quantiles": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def quantile_crossing_rate(y_pred, quantiles=None):
    """Share of rows whose predicted quantiles are not non-decreasing in the level.

    A row crosses when some higher level gets a strictly smaller prediction
    than a lower one (ties do not count).

    Parameters
    ----------
    y_pred : array-like of shape (n_samples, n_levels)
        Predicted quantiles; columns in increasing level order unless
        ``quantiles`` says otherwise.
    quantiles : array-like of shape (n_levels,), default=None
        The levels of the columns; the columns are put in level order first.

    Returns
    -------
    rate : float
        Share of rows with at least one crossing.

    Examples
    --------
    >>> from weightstats.metrics import quantile_crossing_rate
    >>> quantile_crossing_rate([[1.0, 2.0, 3.0], [1.0, 0.5, 3.0]])
    0.5
    """
    pred = _as_float(y_pred, "y_pred")
    if pred.ndim != 2 or pred.shape[0] == 0:
        raise ValueError(f"y_pred must be a non-empty 2-d array (n_samples, n_levels); got shape "
                         f"{pred.shape}.")
    if quantiles is not None:
        levels = _levels(quantiles, "quantiles")
        if levels.shape[0] != pred.shape[1]:
            raise ValueError(
                f"quantiles has {levels.shape[0]} levels but y_pred has {pred.shape[1]} columns."
            )
        if np.unique(levels).shape[0] != levels.shape[0]:
            raise ValueError(f"quantiles contains duplicated levels: {levels.tolist()}.")
        pred = pred[:, np.argsort(levels)]
    return float(np.mean(np.any(np.diff(pred, axis=1) < 0, axis=1)))
