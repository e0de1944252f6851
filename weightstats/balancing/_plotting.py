"""Love plot: covariate balance before and after weighting at a glance, for one or several weight sets."""

import numpy as np
import pandas as pd

__all__ = ["love_plot"]

_STATS = {
    "smd": ("smd_before", "smd_after", "absolute standardised mean difference"),
    "ks": ("ks_before", "ks_after", "Kolmogorov-Smirnov statistic"),
    "variance_ratio": ("variance_ratio_before", "variance_ratio_after", "variance ratio"),
}
# One marker per weight set after the unadjusted one (cobalt draws shapes too,
# so the plot reads in black and white).
_MARKERS = ["o", "^", "s", "D", "v", "P", "X", "*"]


def _tables(table, X, treatment, estimand, sample_weight, interactions, squares):
    """``{name: balance table}`` from a table, or a dict of tables / balancers / weights."""
    from ._diagnostics import balance_table

    if isinstance(table, pd.DataFrame):
        return {"adjusted": table}
    if not isinstance(table, dict) or not table:
        raise ValueError(
            "love_plot takes a balance_table() result or a non-empty dict mapping names to "
            f"balance tables, fitted balancers or weight vectors; got {type(table).__name__}."
        )
    tables = {}
    for name, item in table.items():
        if isinstance(item, pd.DataFrame):
            tables[name] = item
        elif hasattr(item, "balance_table"):  # a balancer (raises if not fitted)
            tables[name] = item.balance_table(interactions=interactions, squares=squares)
        else:
            if X is None or treatment is None:
                raise ValueError(
                    f"the weights of {name!r} need the covariates: pass X= and treatment= "
                    "(or a fitted balancer or a balance table instead)."
                )
            tables[name] = balance_table(X, treatment, item, estimand=estimand,
                                         sample_weight=sample_weight, interactions=interactions,
                                         squares=squares)
    first = next(iter(tables.values()))
    for name, other in tables.items():
        if list(other.index) != list(first.index):
            raise ValueError(
                f"the weight sets cover different covariates ({name!r} has "
                f"{list(other.index)[:5]}, the first has {list(first.index)[:5]}); compare "
                "weights fitted on the same covariates."
            )
    return tables


def love_plot(table, *, X=None, treatment=None, estimand="ATT", sample_weight=None,
              interactions=False, squares=False, stat="smd", threshold=None, ax=None,
              sort=True):
    """Dot plot of a balance statistic per covariate, before and after weighting.

    With a dict of several weight sets, each set gets its own colour and
    marker next to the unadjusted sample, as R cobalt's ``love.plot(...,
    weights = list(...))`` draws them. Needs matplotlib (the ``plot`` extra).

    Parameters
    ----------
    table : pandas.DataFrame or dict
        A table from :func:`~weightstats.balancing.balance_table` (or a
        balancer's ``balance_table()``), or a dict mapping a label to a
        balance table, a fitted balancer (anything with ``weights_`` and
        ``balance_table()``) or a weight vector (then pass ``X`` and
        ``treatment``). The "before" points come from the first entry;
        every entry must cover the same covariates.
    X : array-like of shape (n_samples, n_features), default=None
        Covariates, for weight vectors in ``table``.
    treatment : array-like of shape (n_samples,), default=None
        Binary treatment, for weight vectors in ``table``.
    estimand : {"ATT", "ATC", "ATE", "ATO"}, default="ATT"
        SMD denominator for weight vectors.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights, for weight vectors.
    interactions, squares : bool, default=False
        Add pairwise products and squares of the covariates, for balancers
        and weight vectors (see :func:`~weightstats.balancing.balance_table`).
    stat : {"smd", "ks", "variance_ratio"}, default="smd"
        The statistic: absolute standardised mean differences, KS statistics
        or variance ratios (on a log scale).
    threshold : float, default=None
        Draw reference lines at this value (and at its reciprocal for variance
        ratios); ``None`` uses 0.1 for SMD and KS and 2 for variance ratios.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure when ``None``.
    sort : bool, default=True
        Order covariates by their imbalance before weighting.

    Returns
    -------
    ax : matplotlib Axes
        The axes with the plot.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.balancing import EntropyBalancer, balance_table, love_plot
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 3))
    >>> t = (X[:, 0] + rng.standard_normal(200) > 0).astype(int)
    >>> ax = love_plot(balance_table(X, t))
    >>> ax.get_xlabel()
    'absolute standardised mean difference'

    Several weight sets in one figure:

    >>> eb = EntropyBalancer().fit(X, t)
    >>> ax = love_plot({"entropy": eb, "uniform": np.ones(200)}, X=X, treatment=t)
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['unadjusted', 'entropy', 'uniform']
    """
    if stat not in _STATS:
        raise ValueError(f"stat must be one of {sorted(_STATS)}; got {stat!r}.")
    single = isinstance(table, pd.DataFrame)
    tables = _tables(table, X, treatment, estimand, sample_weight, interactions, squares)
    before_col, after_col, label = _STATS[stat]
    for name, frame in tables.items():
        missing = [c for c in (before_col, after_col) if c not in frame.columns]
        if missing:
            raise ValueError(f"the table of {name!r} lacks the columns {missing}; pass a "
                             "balance_table() result.")
    # Imported here: weightstats.plotting re-exports this function.
    from ..plotting._base import get_axes

    first = next(iter(tables.values()))
    _, ax = get_axes(ax, caller="love_plot", figsize=(6, 0.35 * len(first) + 1.5))

    def values(frame, column):
        v = frame[column].to_numpy(dtype=float)
        return np.abs(v) if stat == "smd" else v

    before = values(first, before_col)
    afters = {name: values(frame, after_col) for name, frame in tables.items()}
    order = np.arange(len(first))
    if sort:
        key = np.abs(np.log(before)) if stat == "variance_ratio" else before
        order = np.argsort(key)
    names = [str(name) for name in first.index[order]]
    y = np.arange(len(order))
    for yi, k in zip(y, order):
        points = [before[k]] + [a[k] for a in afters.values()]
        ax.plot([min(points), max(points)], [yi, yi], color="0.75", lw=1, zorder=1)
    ax.scatter(before[order], y, facecolors="none", edgecolors="tab:red",
               label="before" if single else "unadjusted", zorder=3)
    colours = ["tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink",
               "tab:olive", "tab:cyan"]
    for i, (name, after) in enumerate(afters.items()):
        ax.scatter(after[order], y, color=colours[i % len(colours)],
                   marker=_MARKERS[i % len(_MARKERS)], label="after" if single else str(name),
                   zorder=3)
    if threshold is None:
        threshold = 2.0 if stat == "variance_ratio" else 0.1
    if stat == "variance_ratio":
        ax.set_xscale("log")
        for value in (threshold, 1.0 / threshold):
            ax.axvline(value, color="0.4", ls="--", lw=1)
        ax.axvline(1.0, color="0.2", lw=1)
    else:
        ax.axvline(threshold, color="0.4", ls="--", lw=1)
        ax.axvline(0.0, color="0.2", lw=1)
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    ax.set_xlabel(label)
    ax.set_title(f"Covariate balance ({first.attrs.get('estimand', '')})".replace(" ()", ""))
    ax.legend(loc="lower right", frameon=False)
    return ax
