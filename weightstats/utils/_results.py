"""Results of inference: estimates, standard errors, tests and intervals.

One small class serves every family (treatment effects, coefficients): it is
modelled on statsmodels' ``ContrastResults`` and ``summary2`` tables, without
depending on a fitted statsmodels model.
"""

import html
import numbers

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["EstimateResults", "Summary"]


class Summary:
    """A printable summary: a title, key-value information and tables.

    Returned by ``summary()`` methods. ``str(summary)`` and
    :meth:`as_text` give plain text; in notebooks the HTML representation is
    shown.

    Parameters
    ----------
    title : str
        The heading.
    info : dict, default=None
        Key-value pairs shown above the tables (method, sample sizes, ...).
    tables : list of pandas.DataFrame, default=None
        Tables shown in order.
    notes : list of str, default=None
        Notes printed under the tables.
    float_format : str, default="{:.4g}"
        Format of floats in the text and HTML output.

    Examples
    --------
    >>> import pandas as pd
    >>> from weightstats.utils import Summary
    >>> table = pd.DataFrame({"estimate": [1.5]}, index=["effect"])
    >>> print(Summary("Demo", info={"n": 10}, tables=[table]))
    ====================
            Demo
    ====================
    n: 10
    --------------------
            estimate
    effect       1.5
    ====================
    """

    def __init__(self, title, *, info=None, tables=None, notes=None, float_format="{:.4g}"):
        self.title = title
        self.info = dict(info or {})
        self.tables = list(tables or [])
        self.notes = list(notes or [])
        self.float_format = float_format

    def _format(self, value):
        if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
            return self.float_format.format(value)
        return str(value)

    def as_text(self):
        """Return the summary as plain text.

        Returns
        -------
        text : str
            The formatted summary.
        """
        body = [f"{key}: {self._format(value)}" for key, value in self.info.items()]
        table_texts = [
            table.to_string(float_format=lambda v: self._format(float(v))) for table in self.tables
        ]
        width = max([len(self.title)] + [len(line) for t in table_texts for line in t.splitlines()]
                    + [len(line) for line in body] + [20])
        rule, thin = "=" * width, "-" * width
        lines = [rule, self.title.center(width).rstrip(), rule, *body]
        for text in table_texts:
            lines += [thin, *text.splitlines()]
        lines.append(rule)
        lines += self.notes
        return "\n".join(lines)

    def as_html(self):
        """Return the summary as an HTML fragment.

        Returns
        -------
        html : str
            The formatted summary.
        """
        parts = [f"<h4>{html.escape(self.title)}</h4>"]
        if self.info:
            rows = "".join(
                f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(self._format(v))}</td></tr>"
                for k, v in self.info.items()
            )
            parts.append(f"<table>{rows}</table>")
        parts += [
            table.to_html(float_format=lambda v: self._format(float(v))) for table in self.tables
        ]
        parts += [f"<p>{html.escape(note)}</p>" for note in self.notes]
        return "\n".join(parts)

    def __str__(self):
        return self.as_text()

    def __repr__(self):
        return self.as_text()

    def _repr_html_(self):
        return self.as_html()


class EstimateResults:
    """Point estimates with standard errors, tests and confidence intervals.

    Wald-type inference: ``statistic = (estimate - null_value) / se`` with a
    normal reference distribution, or Student's t when ``df`` is given. When
    bootstrap replicates are attached, :meth:`conf_int` can also return
    percentile intervals.

    Parameters
    ----------
    estimate : float or array-like of shape (n_params,)
        Point estimates.
    se : float or array-like of shape (n_params,)
        Standard errors (non-negative).
    names : list of str, default=None
        Parameter names; ``"estimate"`` for a single scalar, ``"p0", "p1", ...``
        otherwise.
    df : float, default=None
        Degrees of freedom of a t reference distribution; ``None`` uses the
        standard normal.
    null_value : float or array-like, default=0.0
        Value under the null hypothesis for the tests.
    bootstrap_estimates : array-like of shape (n_resamples, n_params), default=None
        Bootstrap replicates of the estimates, for percentile intervals.
    title : str, default="Estimates"
        Heading of :meth:`summary`.
    info : dict, default=None
        Extra key-value information shown in :meth:`summary` (method, sample
        sizes, solver status, ...).
    notes : list of str, default=None
        Notes shown under the summary table (e.g. what the standard errors
        assume).

    Attributes
    ----------
    estimate : float or ndarray of shape (n_params,)
        Point estimates (a float when a scalar was given).
    se : float or ndarray of shape (n_params,)
        Standard errors.
    statistic : float or ndarray of shape (n_params,)
        Wald statistics.
    pvalue : float or ndarray of shape (n_params,)
        Two-sided p-values.

    Examples
    --------
    >>> from weightstats.utils import EstimateResults
    >>> res = EstimateResults(1.0, 0.5, names=["ATT"])
    >>> res.conf_int(0.05).round(3)
    array([0.02, 1.98])
    >>> round(res.pvalue, 4)
    0.0455
    >>> res.summary_frame().round(3)
         estimate   se  statistic  pvalue  ci_lower  ci_upper
    ATT       1.0  0.5        2.0   0.046      0.02      1.98
    """

    def __init__(
        self,
        estimate,
        se,
        *,
        names=None,
        df=None,
        null_value=0.0,
        bootstrap_estimates=None,
        title="Estimates",
        info=None,
        notes=None,
    ):
        self._scalar = np.ndim(estimate) == 0
        est = np.atleast_1d(np.asarray(estimate, dtype=float))
        se_arr = np.broadcast_to(np.atleast_1d(np.asarray(se, dtype=float)), est.shape).copy()
        if est.ndim != 1:
            raise ValueError(f"estimate must be a scalar or 1-d; got shape {est.shape}.")
        if not np.all(np.isfinite(est)):
            raise ValueError("estimate contains NaN or infinity; inference is undefined.")
        if np.any(np.isnan(se_arr)) or np.any(se_arr < 0):
            raise ValueError("se must be non-negative and not NaN.")
        if df is not None and not df > 0:
            raise ValueError(f"df must be positive; got {df!r}.")
        if names is None:
            names = ["estimate"] if est.shape[0] == 1 else [f"p{i}" for i in range(est.shape[0])]
        names = [str(n) for n in names]
        if len(names) != est.shape[0]:
            raise ValueError(f"got {len(names)} names for {est.shape[0]} estimates.")
        if bootstrap_estimates is not None:
            boot = np.asarray(bootstrap_estimates, dtype=float)
            boot = boot.reshape(boot.shape[0], -1)
            if boot.shape[1] != est.shape[0]:
                raise ValueError(
                    f"bootstrap_estimates has {boot.shape[1]} columns for {est.shape[0]} estimates."
                )
            bootstrap_estimates = boot
        self._est = est
        self._se = se_arr
        self._null = np.broadcast_to(np.asarray(null_value, dtype=float), est.shape)
        self.names = names
        self.df = df
        self.bootstrap_estimates = bootstrap_estimates
        self.title = title
        self.info = dict(info or {})
        self.notes = list(notes or [])

    def _out(self, values):
        return float(values[0]) if self._scalar else values

    @property
    def estimate(self):
        return self._out(self._est)

    @property
    def se(self):
        return self._out(self._se)

    @property
    def _dist(self):
        return stats.norm if self.df is None else stats.t(self.df)

    @property
    def statistic(self):
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = (self._est - self._null) / self._se
        # A zero standard error gives an infinite statistic (or 0/0 at the null).
        stat = np.where((self._se == 0) & (self._est == self._null), 0.0, stat)
        return self._out(stat)

    @property
    def pvalue(self):
        stat = np.atleast_1d(self.statistic)
        return self._out(2 * self._dist.sf(np.abs(stat)))

    def conf_int(self, alpha=0.05, *, method="wald"):
        """Two-sided ``1 - alpha`` confidence intervals.

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the confidence level, in (0, 1).
        method : {"wald", "percentile"}, default="wald"
            ``"wald"``: estimate +/- quantile * se. ``"percentile"``: the
            ``alpha/2`` and ``1 - alpha/2`` quantiles of the bootstrap
            replicates (needs ``bootstrap_estimates``).

        Returns
        -------
        ci : ndarray of shape (2,) or (n_params, 2)
            Lower and upper limits; shape (2,) for a scalar estimate.
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1); got {alpha!r}.")
        if method == "wald":
            q = self._dist.ppf(1 - alpha / 2)
            ci = np.column_stack([self._est - q * self._se, self._est + q * self._se])
        elif method == "percentile":
            if self.bootstrap_estimates is None:
                raise ValueError(
                    "method='percentile' needs bootstrap replicates; these results have none "
                    "(use method='wald' or refit with bootstrap standard errors)."
                )
            ci = np.quantile(self.bootstrap_estimates, [alpha / 2, 1 - alpha / 2], axis=0).T
        else:
            raise ValueError(f"method must be 'wald' or 'percentile'; got {method!r}.")
        return ci[0] if self._scalar else ci

    def summary_frame(self, alpha=0.05, *, method="wald"):
        """The estimates as a DataFrame with tests and intervals.

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the confidence level of the interval columns.
        method : {"wald", "percentile"}, default="wald"
            How the intervals are formed; see :meth:`conf_int`.

        Returns
        -------
        frame : pandas.DataFrame
            Columns ``estimate, se, statistic, pvalue, ci_lower, ci_upper``;
            one row per parameter.
        """
        ci = np.atleast_2d(self.conf_int(alpha, method=method))
        return pd.DataFrame(
            {
                "estimate": self._est,
                "se": self._se,
                "statistic": np.atleast_1d(self.statistic),
                "pvalue": np.atleast_1d(self.pvalue),
                "ci_lower": ci[:, 0],
                "ci_upper": ci[:, 1],
            },
            index=pd.Index(self.names),
        )

    def summary(self, alpha=0.05, *, method="wald"):
        """A statsmodels-style summary of the estimates.

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the confidence level of the intervals.
        method : {"wald", "percentile"}, default="wald"
            How the intervals are formed; see :meth:`conf_int`.

        Returns
        -------
        summary : Summary
            Printable (text) and notebook-friendly (HTML) summary.
        """
        frame = self.summary_frame(alpha, method=method)
        # Interval columns named by their quantiles, as statsmodels does.
        lower, upper = f"{alpha / 2:g}", f"{1 - alpha / 2:g}"
        stat_name = "z" if self.df is None else "t"
        frame = frame.rename(
            columns={
                "statistic": stat_name,
                "pvalue": f"P>|{stat_name}|",
                "ci_lower": f"[{lower}",
                "ci_upper": f"{upper}]",
            }
        )
        info = dict(self.info)
        if self.df is not None:
            info.setdefault("df", self.df)
        notes = list(self.notes)
        if method == "percentile":
            notes.append(
                f"Intervals are bootstrap percentile intervals "
                f"({self.bootstrap_estimates.shape[0]} resamples)."
            )
        return Summary(self.title, info=info, tables=[frame], notes=notes)

    def __repr__(self):
        return self.summary().as_text()

    def _repr_html_(self):
        return self.summary().as_html()
