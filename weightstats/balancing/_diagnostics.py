"""Balance diagnostics for any weights: balance tables and effective sample sizes.

These functions take a weight vector, the treatment and the estimand, and know
nothing about how the weights were made, so they serve every weighting method
(balancers here, the uniform transformer, user-supplied weights).
"""

import numbers
import warnings

import numpy as np
import pandas as pd

from ..utils import check_binary_treatment, check_finite_vector, check_sample_weight

__all__ = ["BalanceWarning", "balance_table", "check_weighting", "effective_sample_size"]

_ESTIMANDS = ("ATT", "ATC", "ATE", "ATO")
# An arm whose effective sample size is below this share of the smaller of its
# own size and its target's size rests on a handful of units.
MIN_ESS_SHARE = 0.05
# Chance imbalance at the 1% level, at the effective sample sizes n, m: the
# two-sample Kolmogorov-Smirnov critical value 1.628 sqrt(1/n + 1/m), and 2.576
# standard errors sqrt(1/n + 1/m) for the SMD. (At the 5% level, entropy
# balancing on Kang-Schafer, n = 200, was flagged in 1 of 10 data sets for a
# KS statistic within sampling noise.)
KS_CRITICAL = 1.628
SMD_CRITICAL = 2.576
SMD_THRESHOLD = 0.1


class BalanceWarning(UserWarning):
    """The weights rest on very few units, or made covariate balance worse.

    Raised after fitting by every balancer and by
    :class:`~weightstats.balancing.UniformTransformerEstimator` (see
    :func:`check_weighting` for the exact rules) when

    * a reweighted arm's Kish effective sample size falls below 5% of the
      smaller of its size and the size of the population it is reweighted to
      (for ATT, the controls against the treated): the estimate then rests on
      a handful of units (:func:`weight_summary` lists them); or
    * a covariate is less balanced after weighting than before, by more than
      chance explains at the effective sample sizes (its ``|SMD|`` above
      0.1 and 2.576 standard errors, or its Kolmogorov-Smirnov statistic
      above the 1% critical value of the two-sample test). The message names
      the covariates.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from weightstats.balancing import BalanceWarning, check_weighting
    >>> X = np.arange(80.0)[:, None]
    >>> t = np.r_[np.zeros(40), np.ones(40)]
    >>> w = np.r_[np.full(39, 1e-6), 40.0, np.ones(40)]  # one control carries the arm
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = check_weighting(X, t, w)
    >>> [issubclass(c.category, BalanceWarning) for c in caught]
    [True]
    """


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


def balance_terms(X, feature_names, *, interactions=False, squares=False):
    """The covariates plus, on request, their pairwise products and squares.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Covariates.
    feature_names : list of str
        Their names.
    interactions : bool, default=False
        Add ``x_j * x_k`` for every pair ``j < k``, named ``"a * b"``.
    squares : bool, default=False
        Add ``x_j ** 2`` for every covariate with more than two distinct
        values (the square of a binary covariate is a linear function of it),
        named ``"a^2"``.

    Returns
    -------
    terms : ndarray of shape (n_samples, n_terms)
        The columns, covariates first, then squares, then interactions.
    names : list of str
        Their names.
    """
    columns, names = [X], list(feature_names)
    d = X.shape[1]
    if squares:
        continuous = [j for j in range(d) if np.unique(X[:, j]).size > 2]
        columns.append(X[:, continuous] ** 2)
        names += [f"{feature_names[j]}^2" for j in continuous]
    if interactions:
        pairs = [(j, k) for j in range(d) for k in range(j + 1, d)]
        columns.append(np.column_stack([X[:, j] * X[:, k] for j, k in pairs])
                       if pairs else np.empty((X.shape[0], 0)))
        names += [f"{feature_names[j]} * {feature_names[k]}" for j, k in pairs]
    return np.hstack(columns), names


def balance_table(X, treatment, weights=None, *, estimand="ATT", sample_weight=None,
                  pos_label=None, feature_names=None, interactions=False, squares=False,
                  threshold=None):
    """Covariate balance before and after weighting, one row per covariate.

    For each covariate: the (weighted) means of both groups, the standardised
    mean difference (SMD), the variance ratio (treated / control) and the
    Kolmogorov-Smirnov statistic of the weighted empirical CDFs, before and
    after weighting. As in cobalt, the SMD's denominator is fixed by the
    estimand and computed without the balancing weights, so before and after
    are on one scale: the treated group's standard deviation for ATT, the
    controls' for ATC, and ``sqrt((s1^2 + s0^2) / 2)`` for ATE and ATO.

    Like cobalt's ``bal.tab(..., int = TRUE, poly = 2, thresholds = c(m =
    .1))``, the table can add rows for pairwise interactions and squares
    (balance of the means of ``x_j x_k`` and ``x_j^2`` is balance of the
    covariances and variances, which weights chasing only the means can
    miss) and flag the rows whose ``|SMD|`` after weighting exceeds a
    threshold.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Covariates (a DataFrame keeps its column names).
    treatment : array-like of shape (n_samples,)
        Binary treatment.
    weights : array-like of shape (n_samples,), default=None
        Balancing weights; ``None`` (no weighting) gives identical before and
        after columns.
    estimand : {"ATT", "ATC", "ATE", "ATO"}, default="ATT"
        Sets the SMD denominator.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency or survey weights, multiplied into both "before" and
        "after".
    pos_label : object, default=None
        Label of the treated group, for labels other than 0/1 or False/True.
    feature_names : list of str, default=None
        Row labels; taken from ``X``'s columns when it is a DataFrame.
    interactions : bool, default=False
        Add a row for the product of every pair of covariates, named
        ``"a * b"`` (the covariates are not centred first, as in cobalt).
    squares : bool, default=False
        Add a row for the square of every covariate with more than two
        distinct values, named ``"a^2"``.
    threshold : float, default=None
        Add a column ``balance``: ``"balanced"`` where ``|smd_after| <=
        threshold``, else ``"not balanced"`` (0.1 is the usual choice), and
        ``table.attrs["balance_tally"]`` with the counts.

    Returns
    -------
    table : pandas.DataFrame
        Columns ``mean_treated``, ``mean_control`` (after weighting),
        ``smd_before``, ``smd_after``, ``variance_ratio_before``,
        ``variance_ratio_after``, ``ks_before``, ``ks_after`` (and ``balance``
        with a ``threshold``). ``table.attrs`` holds ``ess`` (effective sample
        size of each group, before and after), ``n`` (group sizes) and
        ``estimand``.

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

    Squares, interactions and a threshold:

    >>> X = np.array([[0.0, 1], [1, 0], [2, 1], [1, 1], [3, 0], [5, 1]])
    >>> table = balance_table(X, t, interactions=True, squares=True, threshold=0.1)
    >>> table[["smd_after", "balance"]].round(3)
             smd_after       balance
    x0           1.000  not balanced
    x1           0.000      balanced
    x0^2         0.818  not balanced
    x0 * x1      0.504  not balanced
    >>> table.attrs["balance_tally"]
    {'balanced': 1, 'not balanced': 3}
    """
    if estimand not in _ESTIMANDS:
        raise ValueError(f"estimand must be one of {_ESTIMANDS}; got {estimand!r}.")
    if threshold is not None and not (isinstance(threshold, numbers.Real) and threshold >= 0):
        raise ValueError(f"threshold must be a non-negative number; got {threshold!r}.")
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
    X, feature_names = balance_terms(X, feature_names, interactions=interactions,
                                     squares=squares)
    rows = []
    for j in range(X.shape[1]):
        # Centred on one of its values: a constant column is then exactly 0 (no
        # rounding noise to standardise), and a large offset does not cancel.
        origin = X[0, j]
        x = X[:, j] - origin
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
            "mean_treated": m1a + origin,
            "mean_control": m0a + origin,
            "smd_before": _ratio(m1b - m0b, sd),
            "smd_after": _ratio(m1a - m0a, sd),
            "variance_ratio_before": _ratio(v1b, v0b, default=1.0),
            "variance_ratio_after": _ratio(v1a, v0a, default=1.0),
            "ks_before": _weighted_ks(x[treated], before[treated], x[~treated], before[~treated]),
            "ks_after": _weighted_ks(x[treated], after[treated], x[~treated], after[~treated]),
        })
    table = pd.DataFrame(rows, index=pd.Index(feature_names, name="covariate"))
    table.index.name = None
    if threshold is not None:
        balanced = np.abs(table["smd_after"].to_numpy()) <= threshold
        table["balance"] = np.where(balanced, "balanced", "not balanced")
        table.attrs["threshold"] = float(threshold)
        table.attrs["balance_tally"] = {"balanced": int(balanced.sum()),
                                        "not balanced": int((~balanced).sum())}
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


def check_weighting(X, treatment, weights, *, estimand="ATT", sample_weight=None,
                    feature_names=None, warn=True):
    """Check weights for a collapsed effective sample size and for worse balance.

    The checks behind :class:`BalanceWarning`, run at the end of every
    balancer's ``fit``; callable on weights from anywhere.

    * **ESS collapse**: a reweighted arm (the controls for ATT, the treated
      for ATC, both for ATE and ATO) has a Kish effective sample size below
      5% of ``min(arm size, target size)``, the target being the treated for
      ATT, the controls for ATC and everyone for ATE; for ATO, whose overlap
      population has total weight ``sum e (1 - e) <= min(n1, n0)``, the
      smaller group's size. Comparing with
      the target as well keeps the check meaningful when a small treated
      group is matched from a large pool of controls (LaLonde: 185 treated,
      15,992 controls), where no weighting can use most controls.
    * **Worse balance**: a covariate whose imbalance after weighting exceeds
      its imbalance before weighting and what chance produces at the
      effective sample sizes ``n1``, ``n0`` after weighting, at the 1%
      level: ``|SMD| > max(0.1, 2.576 sqrt(1/n1 + 1/n0))`` or ``KS > 1.628
      sqrt(1/n1 + 1/n0)`` (the two-sample Kolmogorov-Smirnov test's
      critical value).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Covariates (a DataFrame names them).
    treatment : array-like of shape (n_samples,)
        Binary treatment (0/1 or booleans).
    weights : array-like of shape (n_samples,)
        Balancing weights.
    estimand : {"ATT", "ATC", "ATE", "ATO"}, default="ATT"
        Which arms were reweighted, and towards what.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency or survey weights.
    feature_names : list of str, default=None
        Covariate names for the message.
    warn : bool, default=True
        Issue a :class:`BalanceWarning` for each problem found.

    Returns
    -------
    problems : list of str
        One message per problem (empty when the weights pass).

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.balancing import check_weighting
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 2))
    >>> t = (rng.uniform(size=400) < 0.5).astype(int)
    >>> check_weighting(X, t, np.ones(400))
    []
    >>> w = np.where((t == 0) & (X[:, 0] > 1), 5.0, 1.0)  # pushes controls' x0 up
    >>> print(check_weighting(X, t, w, warn=False)[0][:60])
    balance got worse after weighting on covariate(s) x0 (|SMD|
    """
    table = balance_table(X, treatment, weights, estimand=estimand,
                          sample_weight=sample_weight, feature_names=feature_names)
    treated, _ = check_binary_treatment(treatment)
    s = check_sample_weight(sample_weight, treated)
    problems = []
    sizes = {"treated": _kish(s[treated]), "control": _kish(s[~treated])}
    ess = table.attrs["ess"]["after"]
    reweighted = {"ATT": ["control"], "ATC": ["treated"]}.get(estimand, ["treated", "control"])
    smaller = min(sizes.values())
    for arm in reweighted:
        # ATO's target, the overlap population, has total weight sum e (1 - e),
        # at most min(n1, n0) (a logistic fit has sum e = n1).
        target = {"ATT": sizes["treated"], "ATC": sizes["control"], "ATO": smaller}.get(
            estimand, sizes["treated"] + sizes["control"])
        reference = min(sizes[arm], target)
        if ess[arm] < MIN_ESS_SHARE * reference:
            problems.append(
                f"the {arm} arm's effective sample size after weighting is {ess[arm]:.3g}, "
                f"{100 * ess[arm] / reference:.2g}% of {reference:.4g} (the smaller of its "
                "size and its target's): the estimate rests on a handful of units. "
                "weight_summary() lists the largest weights; trim_weights() or more stable "
                "weights trade a little balance for precision."
            )
    noise = np.sqrt(1.0 / ess["treated"] + 1.0 / ess["control"])
    smd_b, smd_a = table["smd_before"].abs(), table["smd_after"].abs()
    ks_b, ks_a = table["ks_before"], table["ks_after"]
    # "Worse" by more than rounding: weights that leave a covariate's order
    # statistics alone reproduce its KS statistic up to the last bits.
    worse_smd = (smd_a > smd_b + 1e-6) & (smd_a > max(SMD_THRESHOLD, SMD_CRITICAL * noise))
    worse_ks = (ks_a > ks_b + 1e-6) & (ks_a > KS_CRITICAL * noise)
    details = []
    for name in table.index[worse_smd | worse_ks]:
        parts = []
        if worse_smd[name]:
            parts.append(f"|SMD| {smd_b[name]:.3f} -> {smd_a[name]:.3f}")
        if worse_ks[name]:
            parts.append(f"KS {ks_b[name]:.3f} -> {ks_a[name]:.3f}")
        details.append(f"{name} ({', '.join(parts)})")
    if details:
        problems.append(
            f"balance got worse after weighting on covariate(s) {'; '.join(details)}, by more "
            "than chance explains at the effective sample sizes (treated "
            f"{ess['treated']:.4g}, control {ess['control']:.4g}). Check the model behind the "
            "weights (a misspecified propensity model, an outlier inflating a covariate's "
            "scale) and compare balance_table() before and after."
        )
    if warn:
        for message in problems:
            warnings.warn(message, BalanceWarning, stacklevel=2)
    return problems
