"""Love plot: covariate balance before and after weighting at a glance."""

import numpy as np

__all__ = ["love_plot"]

_STATS = {
    "smd": ("smd_before", "smd_after", "absolute standardised mean difference"),
    "ks": ("ks_before", "ks_after", "Kolmogorov-Smirnov statistic"),
    "variance_ratio": ("variance_ratio_before", "variance_ratio_after", "variance ratio"),
}


def love_plot(table, *, stat="smd", threshold=None, ax=None, sort=True):
    """Dot plot of a balance statistic per covariate, before and after weighting.

    Needs matplotlib (the ``plot`` extra).

    Parameters
    ----------
    table : pandas.DataFrame
        A table from :func:`~weightstats.balancing.balance_table` (or a
        balancer's ``balance_table()``).
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
    >>> from weightstats.balancing import balance_table, love_plot
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 3))
    >>> t = (X[:, 0] + rng.standard_normal(200) > 0).astype(int)
    >>> ax = love_plot(balance_table(X, t))
    >>> ax.get_xlabel()
    'absolute standardised mean difference'
    """
    if stat not in _STATS:
        raise ValueError(f"stat must be one of {sorted(_STATS)}; got {stat!r}.")
    before_col, after_col, label = _STATS[stat]
    missing = [c for c in (before_col, after_col) if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks the columns {missing}; pass a balance_table() result.")
    # Imported here: weightstats.plotting re-exports this function.
    from ..plotting._base import get_axes

    _, ax = get_axes(ax, caller="love_plot", figsize=(6, 0.35 * len(table) + 1.5))
    before = table[before_col].to_numpy(dtype=float)
    after = table[after_col].to_numpy(dtype=float)
    if stat == "smd":
        before, after = np.abs(before), np.abs(after)
    order = np.arange(len(table))
    if sort:
        key = np.abs(np.log(before)) if stat == "variance_ratio" else before
        order = np.argsort(key)
    names = [str(name) for name in table.index[order]]
    y = np.arange(len(order))
    ax.scatter(before[order], y, facecolors="none", edgecolors="tab:red", label="before", zorder=3)
    ax.scatter(after[order], y, color="tab:blue", label="after", zorder=3)
    for yi, b, a in zip(y, before[order], after[order]):
        ax.plot([b, a], [yi, yi], color="0.75", lw=1, zorder=1)
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
    ax.set_title(f"Covariate balance ({table.attrs.get('estimand', '')})".replace(" ()", ""))
    ax.legend(loc="lower right", frameon=False)
    return ax
