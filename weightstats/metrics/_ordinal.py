"""Proper scores for multi-class and ordinal probability forecasts.

* Brier score (Brier 1950), multi-class form: the squared distance between the
  forecast vector and the one-hot outcome, summed over classes and averaged
  over samples. Equals scikit-learn's ``brier_score_loss`` for more than two
  classes, and the criterion of the PRESTO reference code (``getBrier``).
* Ranked probability score (Epstein 1969; Wilks, *Statistical Methods in the
  Atmospheric Sciences*): the same on cumulative probabilities, so a forecast
  that puts mass near the observed class scores better than one that puts it
  far away. We do not divide by ``K - 1`` (some authors do).
"""

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import validate_params
from sklearn.utils.validation import check_array, column_or_1d

from ..utils import check_sample_weight

__all__ = ["multiclass_brier_score", "ranked_probability_score"]


def _check_inputs(y_true, y_proba, labels, sample_weight, *, ordered):
    from ..ordinal._labels import categorical_order, encode_ordinal

    categorical = categorical_order(y_true)
    y_true = column_or_1d(y_true)
    y_proba = check_array(y_proba, dtype=np.float64, input_name="y_proba")
    n, n_classes = y_proba.shape
    if y_true.shape[0] != n:
        raise ValueError(
            f"y_true has {y_true.shape[0]} entries but y_proba has {n} rows; they must have the "
            "same length."
        )
    if pd.isna(y_true).any():
        raise ValueError("y_true contains NaN or None; drop those rows first.")
    if np.any(y_proba < 0) or np.any(y_proba > 1):
        raise ValueError("y_proba must contain probabilities in [0, 1].")
    if not np.allclose(y_proba.sum(axis=1), 1.0, rtol=0, atol=1e-6 * max(n_classes, 1)):
        raise ValueError("the rows of y_proba must sum to 1 (one probability per class).")
    if labels is None and categorical is not None and not ordered:
        labels = categorical[0]  # the order does not matter for the Brier score
    elif labels is None and not ordered:
        labels = np.unique(y_true)
    codes, order = encode_ordinal(
        y_true, classes=labels, categorical=categorical, min_classes=0, require_all=False,
        name="y_true",
    )
    if order.shape[0] != n_classes:
        raise ValueError(
            f"y_proba has {n_classes} columns but there are {order.shape[0]} classes "
            f"{list(order)}; pass labels= with one label per column of y_proba, in column order."
        )
    sample_weight = check_sample_weight(sample_weight, y_proba)
    return codes, y_proba, sample_weight


def _brier_codes(codes, proba, weights):
    sq = np.sum(proba**2, axis=1) - 2.0 * proba[np.arange(codes.shape[0]), codes] + 1.0
    return float(np.average(sq, weights=weights))


def _rps_codes(codes, proba, weights):
    cum = np.cumsum(proba, axis=1)[:, :-1]
    observed = codes[:, None] <= np.arange(cum.shape[1])[None, :]
    return float(np.average(np.sum((cum - observed) ** 2, axis=1), weights=weights))


def _log_loss_codes(codes, proba, weights):
    p = np.clip(proba[np.arange(codes.shape[0]), codes], np.finfo(np.float64).eps, 1.0)
    return float(np.average(-np.log(p), weights=weights))


@validate_params(
    {
        "y_true": ["array-like"],
        "y_proba": ["array-like"],
        "labels": ["array-like", None],
        "sample_weight": ["array-like", None],
        "per_class": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def multiclass_brier_score(y_true, y_proba, *, labels=None, sample_weight=None, per_class=False):
    """Multi-class Brier score: squared error of probability vectors, summed over classes.

    ``mean_i sum_k (y_proba[i, k] - [y_i == labels[k]])^2``, between 0 (perfect)
    and 2. With ``per_class=True`` the one-vs-rest Brier score of each class is
    returned instead (they sum to the total); the last entry is the rare-class
    Brier score when the rare class is the highest.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Observed labels.
    y_proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities; rows sum to 1.
    labels : array-like of shape (n_classes,), default=None
        The label of each column of ``y_proba`` (e.g. ``clf.classes_``).
        ``None``: the categories of a pandas Categorical ``y_true``, else its
        sorted unique labels.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights for the average.
    per_class : bool, default=False
        Return the per-class decomposition.

    Returns
    -------
    score : float or ndarray of shape (n_classes,)
        The Brier score (lower is better), or its per-class terms.

    See Also
    --------
    sklearn.metrics.brier_score_loss : Equal for more than two classes.
    ranked_probability_score : The ordinal version.

    Examples
    --------
    >>> from weightstats.metrics import multiclass_brier_score
    >>> y = ["low", "mid", "high"]
    >>> proba = [[0.8, 0.2, 0.0], [0.1, 0.7, 0.2], [0.0, 0.3, 0.7]]
    >>> round(multiclass_brier_score(y, proba, labels=["low", "mid", "high"]), 4)
    0.1333
    >>> multiclass_brier_score(y, proba, labels=["low", "mid", "high"], per_class=True).round(4)
    array([0.0167, 0.0733, 0.0433])
    """
    codes, proba, weights = _check_inputs(y_true, y_proba, labels, sample_weight, ordered=False)
    if not per_class:
        return _brier_codes(codes, proba, weights)
    onehot = np.zeros_like(proba)
    onehot[np.arange(codes.shape[0]), codes] = 1.0
    return np.average((proba - onehot) ** 2, axis=0, weights=weights)


@validate_params(
    {
        "y_true": ["array-like"],
        "y_proba": ["array-like"],
        "labels": ["array-like", None],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def ranked_probability_score(y_true, y_proba, *, labels=None, sample_weight=None):
    """Ranked probability score of ordinal forecasts.

    ``mean_i sum_{k < K} (P_i(Y <= k) - [y_i <= k])^2``: the Brier score of the
    cumulative probabilities, so errors count more the further the forecast
    mass lies from the observed class. Between 0 and ``K - 1``; not divided
    by ``K - 1``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Observed labels.
    y_proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities with columns in class order, lowest first.
    labels : array-like of shape (n_classes,), default=None
        The ordered labels of the columns (e.g. ``clf.classes_``). ``None``:
        the categories of an ordered Categorical ``y_true`` or its sorted
        numeric labels; string labels need ``labels``.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights for the average.

    Returns
    -------
    score : float
        The ranked probability score (lower is better).

    See Also
    --------
    multiclass_brier_score : Ignores the order of the classes.

    Examples
    --------
    >>> from weightstats.metrics import ranked_probability_score
    >>> # Both forecasts miss class 0 with the same Brier score; the second
    >>> # puts its mass further away and scores worse.
    >>> ranked_probability_score([0], [[0.5, 0.5, 0.0]], labels=[0, 1, 2])
    0.25
    >>> ranked_probability_score([0], [[0.5, 0.0, 0.5]], labels=[0, 1, 2])
    0.5
    """
    codes, proba, weights = _check_inputs(y_true, y_proba, labels, sample_weight, ordered=True)
    return _rps_codes(codes, proba, weights)
