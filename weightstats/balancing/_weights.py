"""Weight tools for any weights: a per-arm summary of their distribution, and trimming.

Like the balance diagnostics, these take a weight vector and the treatment and
know nothing about how the weights were made. They follow R's WeightIt:
:func:`weight_summary` reports what ``summary.weightit()`` does (range,
coefficient of variation, mean absolute deviation, entropy, zeros, effective
sample size and the largest weights of each arm), and :func:`trim_weights`
winsorises as ``trim()`` does (the quantile of type 3, the focal group of ATT
and ATC left alone).
"""

import math
import numbers

import numpy as np
import pandas as pd

from ..utils import Summary, check_binary_treatment, check_finite_vector, check_sample_weight
from ._diagnostics import _kish

__all__ = ["WeightSummary", "trim_weights", "weight_summary"]

_TRIM_ESTIMANDS = (None, "ATT", "ATC", "ATE", "ATO")
# A weight below this share of its arm's mean weight counts as zero.
_ZERO = 1e-10


class WeightSummary:
    """The distribution of the weights in each arm, as WeightIt's ``summary()`` shows it.

    Returned by :func:`weight_summary` and by the ``weight_summary()`` method
    of every fitted balancer. ``str()`` and :meth:`as_text` print it; notebooks
    show the HTML form.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per arm (see :attr:`table`).
    largest : pandas.DataFrame
        The largest weights of each arm (see :attr:`largest`).

    Attributes
    ----------
    table : pandas.DataFrame
        Index ``"treated"``, ``"control"`` (or ``"all"`` without a
        treatment); columns ``n`` (rows in the arm), ``min``, ``max``,
        ``mean`` of the weights, ``cv`` (coefficient of variation:
        standard deviation with divisor ``n - 1`` over the mean), ``mad``
        (mean absolute deviation of the weights divided by their mean),
        ``entropy`` (``mean(v log v)`` of the positive weights scaled to mean
        one, ``v``: 0 for equal weights), ``n_zero`` (weights below
        ``1e-10`` times the arm's mean), ``ess`` (Kish's effective sample
        size ``(sum w)^2 / sum w^2``) and ``ess_share`` (``ess`` over the
        arm's effective size without the balancing weights: ``n`` unless
        there are sample weights). With sample weights, every statistic is
        of ``sample_weight * weights``.
    largest : pandas.DataFrame
        Columns ``arm``, ``row`` (the row label: the index of a pandas
        input, else the position) and ``weight``; the ``top`` largest
        weights of each arm, largest first.

    Examples
    --------
    >>> from weightstats.balancing import weight_summary
    >>> summary = weight_summary([1, 1, 1, 0.5, 1.5, 1.0], [1, 1, 1, 0, 0, 0], top=2)
    >>> summary.table[["n", "max", "cv", "ess"]]
             n  max   cv       ess
    treated  3  1.0  0.0  3.000000
    control  3  1.5  0.5  2.571429
    >>> summary.largest
           arm  row  weight
    0  treated    0     1.0
    1  treated    1     1.0
    2  control    4     1.5
    3  control    5     1.0
    """

    def __init__(self, table, largest):
        self.table = table
        self.largest = largest

    def _summary(self):
        table = self.table.copy()
        table["ess_share"] = [f"{100 * v:.1f}%" for v in table["ess_share"]]
        largest = self.largest.set_index(["arm", "row"])
        return Summary("Summary of weights", tables=[table, largest])

    def as_text(self):
        """Return the summary as plain text.

        Returns
        -------
        text : str
            The two tables: the statistics of each arm and its largest weights.
        """
        return self._summary().as_text()

    def __str__(self):
        return self.as_text()

    def __repr__(self):
        return self.as_text()

    def _repr_html_(self):
        return self._summary().as_html()

    def to_dict(self):
        """The summary as plain Python values (JSON-serialisable).

        Returns
        -------
        summary : dict
            ``{"arms": {arm: {statistic: value}}, "largest": [{"arm", "row",
            "weight"}, ...]}`` with plain floats, ints and strings.

        Examples
        --------
        >>> import json
        >>> from weightstats.balancing import weight_summary
        >>> summary = weight_summary([1.0, 1.0, 0.5, 1.5], [1, 1, 0, 0], top=1)
        >>> summary.to_dict()["arms"]["control"]["ess"]
        1.6
        >>> json.loads(json.dumps(summary.to_dict()))["largest"][1]
        {'arm': 'control', 'row': 3, 'weight': 1.5}
        """
        arms = {str(arm): {col: _plain(value) for col, value in row.items()}
                for arm, row in self.table.to_dict(orient="index").items()}
        largest = [{col: _plain(value) for col, value in row.items()}
                   for row in self.largest.to_dict(orient="records")]
        return {"arms": arms, "largest": largest}


def _plain(value):
    """A JSON-native scalar: numpy numbers to Python ones, other labels to strings."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value if isinstance(value, str) else str(value)


def _row_labels(*inputs):
    """The index of the first pandas input (Series or DataFrame), else ``None``."""
    for values in inputs:
        if isinstance(values, (pd.Series, pd.DataFrame)):
            return values.index
    return None


def _arms(treatment, n, pos_label):
    """``[(name, mask)]``: treated and control, or one arm ``"all"``."""
    if treatment is None:
        return [("all", np.ones(n, dtype=bool))]
    treated, _ = check_binary_treatment(treatment, pos_label=pos_label, n_samples=n)
    return [("treated", treated), ("control", ~treated)]


def _check_weights(weights):
    w = check_finite_vector(weights, "weights")
    if np.any(w < 0):
        raise ValueError("weights must be non-negative.")
    return w


def weight_summary(weights, treatment=None, *, sample_weight=None, top=5, pos_label=None):
    """Summarise the weights of each arm: range, variability, ESS and the largest weights.

    The statistics of R WeightIt's ``summary()`` (see :class:`WeightSummary`
    for their definitions): a coefficient of variation above about 1, or an
    effective sample size that is a small share of the arm, means the estimate
    rests on few units; :attr:`WeightSummary.largest` shows which.

    Parameters
    ----------
    weights : array-like of shape (n_samples,)
        Non-negative weights (a pandas Series labels the rows by its index).
    treatment : array-like of shape (n_samples,), default=None
        Binary treatment; ``None`` summarises all weights as one arm.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency or survey weights, multiplied into the weights.
    top : int, default=5
        Number of largest weights listed per arm.
    pos_label : object, default=None
        Label of the treated group, for labels other than 0/1 or False/True.

    Returns
    -------
    summary : WeightSummary
        ``.table``, ``.largest``, ``to_dict()``; prints as text.

    See Also
    --------
    trim_weights : Winsorise the largest weights.
    effective_sample_size : Kish's effective sample size alone.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.balancing import weight_summary
    >>> w = np.r_[np.ones(4), [0.2, 0.2, 0.6, 3.0]]
    >>> t = np.r_[np.ones(4), np.zeros(4)]
    >>> print(weight_summary(w, t, top=2))
    ======================================================================
                              Summary of weights
    ======================================================================
    ----------------------------------------------------------------------
             n  min  max  mean    cv  mad  entropy  n_zero   ess ess_share
    treated  4    1    1     1     0    0        0       0     4    100.0%
    control  4  0.2    3     1 1.347    1   0.5864       0 1.695     42.4%
    ----------------------------------------------------------------------
                 weight
    arm     row
    treated 0         1
            1         1
    control 7         3
            6       0.6
    ======================================================================
    """
    labels = _row_labels(weights, treatment)
    w = _check_weights(weights)
    n = w.shape[0]
    s = check_sample_weight(sample_weight, w.reshape(-1, 1))
    if not isinstance(top, numbers.Integral) or top < 0:
        raise ValueError(f"top must be a non-negative integer; got {top!r}.")
    return _summarise(w, s, _arms(treatment, n, pos_label), labels, top)


def _summarise(w, s, arms, labels, top):
    rows, largest = {}, []
    for name, mask in arms:
        ww = (w * s)[mask]
        if ww.size == 0 or ww.sum() <= 0:
            raise ValueError(f"the {name} arm has no positive weight.")
        mean = float(ww.mean())
        positive = ww[ww > 0] / ww[ww > 0].mean()
        rows[name] = {
            "n": int(ww.size),
            "min": float(ww.min()),
            "max": float(ww.max()),
            "mean": mean,
            "cv": float(ww.std(ddof=1) / mean) if ww.size > 1 else 0.0,
            "mad": float(np.mean(np.abs(ww / mean - 1.0))),
            "entropy": float(np.mean(positive * np.log(positive))),
            "n_zero": int(np.count_nonzero(ww < _ZERO * mean)),
            "ess": _kish(ww),
            "ess_share": _kish(ww) / _kish(s[mask]),
        }
        positions = np.flatnonzero(mask)
        # Largest first; ties keep row order.
        order = np.argsort(-ww, kind="stable")[:top]
        for k in order:
            row = positions[k] if labels is None else labels[positions[k]]
            largest.append({"arm": name, "row": row, "weight": float(ww[k])})
    table = pd.DataFrame.from_dict(rows, orient="index")
    return WeightSummary(table, pd.DataFrame(largest, columns=["arm", "row", "weight"]))


def trim_weights(weights, treatment=None, *, at=None, max_weight=None, lower=False,
                 estimand=None, sample_weight=None, pos_label=None):
    """Trim (winsorise) large weights at a quantile or at a maximum, keeping each arm's total.

    ``at`` works as in R WeightIt's ``trim()``: weights above the ``at``
    quantile of their arm are set to that quantile (``at=0.99`` trims the top
    1%), or, for ``at >= 1``, the ``at`` largest weights are set to the next
    largest. The quantile is R's type 3 (the nearest order statistic), so
    with ``estimand="ATT"`` (or ``"ATC"``) the result is WeightIt's, rescaled.
    ``max_weight`` caps every weight at an absolute value instead.

    Each trimmed arm is then rescaled so that ``sum(sample_weight * w)`` over
    the arm is what it was (the balancers' convention: the target's size);
    with ``max_weight`` the scale is solved for, so that no weight exceeds
    the cap after rescaling. Effect estimates are self-normalised, so the
    rescaling changes nothing but the printed weights. Trimming trades
    balance (bias) for variance: check both with :func:`weight_summary`
    (the trimmed effective sample size) and :func:`balance_table`.

    Parameters
    ----------
    weights : array-like of shape (n_samples,)
        Non-negative weights (a pandas Series keeps its index).
    treatment : array-like of shape (n_samples,), default=None
        Binary treatment: each arm is trimmed separately. ``None`` trims all
        weights as one group.
    at : float or int, default=None
        A quantile in ``(0, 1)`` (values below 0.5 mean ``1 - at``, as in
        WeightIt), or the number of weights to trim in each arm.
    max_weight : float, default=None
        Cap on every weight, after rescaling; at least the arm's mean weight.
    lower : bool, default=False
        Also raise the smallest weights to the ``1 - at`` quantile (or the
        ``at`` smallest to the next smallest). Needs ``at``.
    estimand : {None, "ATT", "ATC", "ATE", "ATO"}, default=None
        Which arms to trim: the controls for ATT, the treated for ATC, both
        otherwise. ``None`` trims each arm whose weights are not all equal
        (the treated of ATT weights are all 1 and are left alone, as WeightIt
        does).
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency or survey weights: the quantile is weighted by them (an
        integer weight counts as repeated rows) and each arm keeps its total
        of ``sample_weight * weights``.
    pos_label : object, default=None
        Label of the treated group, for labels other than 0/1 or False/True.

    Returns
    -------
    trimmed : ndarray or pandas.Series of shape (n_samples,)
        The trimmed weights (a Series when ``weights`` is one).

    See Also
    --------
    weight_summary : The weight distribution and effective sample size.

    Notes
    -----
    WeightIt's ``trim()`` leaves the weights unscaled and, under ATE, takes
    one quantile over both arms together; here each arm has its own
    quantile, so that a larger arm's weights do not set the other arm's cap.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.balancing import trim_weights, weight_summary
    >>> t = np.r_[np.ones(6), np.zeros(5)]
    >>> w = np.r_[np.ones(6), [0.5, 0.5, 1.0, 1.0, 3.0]]  # ATT: the controls sum to 6
    >>> trim_weights(w, t, at=1)[t == 0]  # the largest set to the next, then rescaled
    array([0.75, 0.75, 1.5 , 1.5 , 1.5 ])
    >>> trim_weights(w, t, max_weight=2.0)[t == 0].round(4)
    array([0.6667, 0.6667, 1.3333, 1.3333, 2.    ])
    >>> round(float(weight_summary(w, t).table.loc["control", "ess"]), 2)  # control ESS
    3.13
    >>> round(float(weight_summary(trim_weights(w, t, at=1), t).table.loc["control", "ess"]), 2)
    4.57
    """
    if (at is None) == (max_weight is None):
        raise ValueError("pass exactly one of at= (a quantile or a count) and max_weight=.")
    if estimand not in _TRIM_ESTIMANDS:
        raise ValueError(f"estimand must be one of {_TRIM_ESTIMANDS}; got {estimand!r}.")
    index = weights.index if isinstance(weights, pd.Series) else None
    w = _check_weights(weights)
    n = w.shape[0]
    s = check_sample_weight(sample_weight, w.reshape(-1, 1))
    if at is not None:
        at = _check_at(at)
    elif not isinstance(max_weight, numbers.Real) or not max_weight > 0:
        raise ValueError(f"max_weight must be a positive number; got {max_weight!r}.")
    if lower and at is None:
        raise ValueError("lower=True needs at= (the quantile or count to trim at).")
    skip = {"ATT": "treated", "ATC": "control"}.get(estimand)
    out = w.copy()
    for name, mask in _arms(treatment, n, pos_label):
        values = w[mask]
        if name == skip or (estimand is None and np.all(values == values[0])):
            continue
        total = float(s[mask] @ values)
        if total <= 0:
            raise ValueError(f"the {name} arm has no positive weight.")
        if at is not None:
            trimmed = _winsorise(values, s[mask], at, lower, name)
            trimmed *= total / float(s[mask] @ trimmed)
        else:
            trimmed = _cap(values, s[mask], total, float(max_weight), name)
        out[mask] = trimmed
    return out if index is None else pd.Series(out, index=index, name=weights.name)


def _check_at(at):
    if isinstance(at, bool) or not isinstance(at, numbers.Real) or not 0 < at < math.inf:
        raise ValueError(f"at must be a quantile in (0, 1) or a count >= 1; got {at!r}.")
    if at < 1:
        return max(float(at), 1.0 - float(at))
    if float(at) != int(at):
        raise ValueError(f"at >= 1 is the number of weights to trim and must be an integer; "
                         f"got {at!r}.")
    return int(at)


def _quantile_type3(x, s, p):
    """R's quantile type 3 (nearest even order statistic) with frequency weights ``s``.

    With unit weights this is ``numpy.quantile(x, p, method="closest_observation")``;
    an integer weight counts as that many copies of the value.
    """
    order = np.argsort(x, kind="stable")
    x, cum = x[order], np.cumsum(s[order])
    nppm = cum[-1] * p - 0.5
    j = math.floor(nppm + 4 * np.finfo(float).eps)
    k = j + 1 if (nppm != j or j % 2 == 1) else j  # 1-based order statistic
    k = min(max(k, 1), cum[-1])
    # The k-th order statistic: the first value whose cumulative weight reaches k.
    return float(x[min(np.searchsorted(cum, k - 1e-9 * cum[-1]), x.size - 1)])


def _winsorise(values, s, at, lower, name):
    if isinstance(at, int):
        if at >= values.size:
            raise ValueError(f"at={at} must be smaller than the number of {name} weights "
                             f"({values.size}).")
        ranked = np.sort(values)
        high = ranked[values.size - 1 - at]
        low = ranked[at] if lower else -np.inf
    else:
        high = _quantile_type3(values, s, at)
        low = _quantile_type3(values, s, 1.0 - at) if lower else -np.inf
    return np.clip(values, low, high)


def _cap(values, s, total, cap, name):
    """``min(a * values, cap)`` with the scale ``a`` that keeps ``sum(s * w) = total``."""
    positive = values > 0
    if cap * s[positive].sum() < total * (1 - 1e-12):
        raise ValueError(
            f"max_weight={cap:g} is infeasible for the {name} arm: its weights must sum to "
            f"{total:g}, which needs max_weight >= {total / s[positive].sum():.4g}."
        )
    # With the k largest weights at the cap, the rest scale by
    # a_k = (total - cap * S_k) / (sum of s * w over the rest); take the first
    # k at which the (k+1)-th largest stays below the cap.
    order = np.argsort(-values, kind="stable")
    v, sv = values[order], s[order]
    capped_mass = np.concatenate([[0.0], np.cumsum(sv)]) * cap
    rest = np.concatenate([np.cumsum((sv * v)[::-1])[::-1], [0.0]])
    for k in range(v.size + 1):
        if rest[k] <= 0:  # every positive weight is at the cap
            return np.where(positive, cap, 0.0)
        scale = (total - capped_mass[k]) / rest[k]
        if v[k] * scale <= cap * (1 + 1e-12):
            return np.minimum(values * scale, cap)
    raise AssertionError("unreachable: rest[-1] is 0")
