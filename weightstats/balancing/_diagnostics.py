"""Balance diagnostics for any weights: balance tables and effective sample sizes.

These functions take a weight vector, the treatment and the estimand, and know
nothing about how the weights were made, so they serve every weighting method
(balancers here, the uniform transformer, user-supplied weights).
"""

import numpy as np
import pandas as pd

from ..utils import check_binary_treatment, check_finite_vector, check_sample_weight

__all__ = ["balance_table", "effective_sample_size"]

_ESTIMANDS = ("ATT", "ATC", "ATE")


def effective_sample_size(weights, treatment=None, *, pos_label=None):
    """Kish's effective sample size ``(sum w)^2 / sum w^2``.

    The number of equally weighted units that would give a weighted mean the
    same variance: ``n`` for equal weights, 1 when one unit has all the
    weight.

    Parameters
    ----------
    weights : array-like of shape (n_samples,)
        Non-negative weights (for frequency-weighted data, the product of the
        sample weights and the balancing weights).
    treatment : array-like of shape (n_samples,), default=None
        Binary treatment; when given, the ESS of each group is returned.
    pos_label : object, default=None
        Label of the treated group, for labels other than 0/1 or False/True.

    Returns
    -------
    ess : float or dict
        The ESS, or ``{"treated": ..., "control": ...}`` when ``treatment`` is
        given.

    Examples
    --------
    >>> from weightstats.balancing import effective_sample_size
    >>> effective_sample_size([1, 1, 1, 1])
    4.0
    >>> effective_sample_size([1, 1, 0, 2], treatment=[1, 1, 0, 0])
    {'treated': 2.0, 'control': 1.0}
    """
    w = check_finite_vector(weights, "weights")
    if np.any(w < 0):
        raise ValueError("weights must be non-negative.")
    if treatment is None:
        return _kish(w)
    treated, _ = check_binary_treatment(treatment, pos_label=pos_label, n_samples=w.shape[0])
    return {"treated": _kish(w[treated]), "control": _kish(w[~treated])}


def _kish(w):
    total = float(w.sum())
    if total <= 0:
        return 0.0
    return total**2 / float(w @ w)


def _weighted_moments(x, w):
    w = w / w.sum()
    mean = float(w @ x)
    var = float(w @ (x - mean) ** 2)
    # Unbiased for frequency-like weights: divide by 1 - sum(w^2).
    correction = 1.0 - float(w @ w)
    return mean, var / correction if correction > 0 else var


def _weighted_ks(x1, w1, x0, w0):
    """Largest distance between the two weighted empirical CDFs."""
    values = np.concatenate([x1, x0])
    order = np.argsort(values, kind="stable")
    values = values[order]
    jumps1 = np.concatenate([w1 / w1.sum(), np.zeros(x0.shape[0])])[order]
    jumps0 = np.concatenate([np.zeros(x1.shape[0]), w0 / w0.sum()])[order]
    diff = np.cumsum(jumps1) - np.cumsum(jumps0)
    # Compare the CDFs only after the last of tied values.
    last_of_ties = np.r_[values[1:] != values[:-1], True]
    return float(np.max(np.abs(diff[last_of_ties])))


def balance_table(X, treatment, weights=None, *, estimand="ATT", sample_weight=None,
                  pos_label=None, feature_names=None):
    """Covariate balance before and after weighting, one row per covariate.

    For each covariate: the (weighted) means of both groups, the standardised
    mean difference (SMD), the variance ratio (treated / control) and the
    Kolmogorov-Smirnov statistic of the weighted empirical CDFs, before and
    after weighting. As in cobalt, the SMD's denominator is fixed by the
    estimand and computed without the balancing weights, so before and after
    are on one scale: the treated group's standard deviation for ATT, the
    controls' for ATC, and ``sqrt((s1^2 + s0^2) / 2)`` for ATE.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Covariates (a DataFrame keeps its column names).
    treatment : array-like of shape (n_samples,)
        Binary treatment.
    weights : array-like of shape (n_samples,), default=None
        Balancing weights; ``None`` (no weighting) gives identical before and
        after columns.
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        Sets the SMD denominator.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency or survey weights, multiplied into both "before" and
        "after".
    pos_label : object, default=None
        Label of the treated group, for labels other than 0/1 or False/True.
    feature_names : list of str, default=None
        Row labels; taken from ``X``'s columns when it is a DataFrame.

    Returns
    -------
    table : pandas.DataFrame
        Columns ``mean_treated``, ``mean_control`` (after weighting),
        ``smd_before``, ``smd_after``, ``variance_ratio_before``,
        ``variance_ratio_after``, ``ks_before``, ``ks_after``. ``table.attrs``
        holds ``ess`` (effective sample size of each group, before and after),
        ``n`` (group sizes) and ``estimand``.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.balancing import balance_table
    >>> X = np.array([[0.0], [1.0], [2.0], [1.0], [3.0], [5.0]])
    >>> t = np.array([0, 0, 0, 1, 1, 1])
    >>> table = balance_table(X, t, weights=[1, 1, 1, 1, 1, 1])
    >>> table[["smd_before", "ks_before"]].round(3)
        smd_before  ks_before
    x0         1.0      0.667
    >>> table.attrs["ess"]["after"]
    {'treated': 3.0, 'control': 3.0}
    """
    if estimand not in _ESTIMANDS:
        raise ValueError(f"estimand must be one of {_ESTIMANDS}; got {estimand!r}.")
    if feature_names is None and isinstance(X, pd.DataFrame):
        feature_names = [str(c) for c in X.columns]
    X = np.asarray(X.to_numpy(dtype=float) if isinstance(X, pd.DataFrame) else X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-d (n_samples, n_features); got shape {X.shape}.")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity.")
    n, d = X.shape
    treated, _ = check_binary_treatment(treatment, pos_label=pos_label, n_samples=n)
    s = check_sample_weight(sample_weight, X)
    w = np.ones(n) if weights is None else check_finite_vector(weights, "weights", n_samples=n)
    if np.any(w < 0):
        raise ValueError("weights must be non-negative.")
    if feature_names is None:
        feature_names = [f"x{j}" for j in range(d)]
    if len(feature_names) != d:
        raise ValueError(f"got {len(feature_names)} feature names for {d} columns.")
    before, after = s, s * w
    for name, mask in (("treated", treated), ("control", ~treated)):
        for label, ww in (("before", before), ("after", after)):
            if not np.any(ww[mask] > 0):
                raise ValueError(f"the {name} group has no positive weight {label} weighting.")
    rows = []
    for j in range(d):
        x = X[:, j]
        m1b, v1b = _weighted_moments(x[treated], before[treated])
        m0b, v0b = _weighted_moments(x[~treated], before[~treated])
        m1a, v1a = _weighted_moments(x[treated], after[treated])
        m0a, v0a = _weighted_moments(x[~treated], after[~treated])
        if estimand == "ATT":
            sd = np.sqrt(v1b)
        elif estimand == "ATC":
            sd = np.sqrt(v0b)
        else:
            sd = np.sqrt((v1b + v0b) / 2)
        if sd <= 0:  # constant in the reference group: fall back to the pooled SD
            sd = np.sqrt((v1b + v0b) / 2)
        rows.append({
            "mean_treated": m1a,
            "mean_control": m0a,
            "smd_before": _ratio(m1b - m0b, sd),
            "smd_after": _ratio(m1a - m0a, sd),
            "variance_ratio_before": _ratio(v1b, v0b, default=1.0),
            "variance_ratio_after": _ratio(v1a, v0a, default=1.0),
            "ks_before": _weighted_ks(x[treated], before[treated], x[~treated], before[~treated]),
            "ks_after": _weighted_ks(x[treated], after[treated], x[~treated], after[~treated]),
        })
    table = pd.DataFrame(rows, index=pd.Index(feature_names, name="covariate"))
    table.index.name = None
    table.attrs["estimand"] = estimand
    table.attrs["n"] = {"treated": int(treated.sum()), "control": int((~treated).sum())}
    table.attrs["ess"] = {
        "before": {"treated": _kish(before[treated]), "control": _kish(before[~treated])},
        "after": {"treated": _kish(after[treated]), "control": _kish(after[~treated])},
    }
    return table


def _ratio(num, den, default=0.0):
    """``num / den``, with 0/0 = ``default`` and x/0 = +-inf made explicit."""
    if den > 0:
        return float(num / den)
    if num == 0:
        return default
    return float(np.copysign(np.inf, num))
