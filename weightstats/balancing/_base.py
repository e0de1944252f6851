"""What every balancer shares: validation, estimands, normalisation, effects, diagnostics.

A balancer learns one weight per training row. ``fit`` validates the input,
splits the units into the arm(s) to reweight and their target population
according to the estimand, and asks the subclass for probability masses on
each reweighted arm (``_solve_arm``). Masses become weights normalised so that,
within a reweighted arm, ``sum(sample_weight * weights_)`` equals the target's
total sample weight (its size without sample weights); units that are not
reweighted keep weight 1.
"""

import numbers
import textwrap
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.base import _fit_context
from sklearn.utils import ClassifierTags
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

from .._kernels import n_threads_from_jobs
from ..utils import check_binary_treatment, check_group_sizes, check_sample_weight, fill_doc
from ._diagnostics import BalanceWarning, _kish, balance_table, check_weighting
from ._weights import _summarise
from ._effects import estimate_balancer_effect

__all__ = ["BaseBalancer", "OverlapWarning", "arms_for_estimand", "standardize_columns"]


# Docstring fragments shared by the balancers (see ``fill_balancer_doc``).
_BALANCER_DOCS = {
    "pos_label": """pos_label : object, default=None
    Label of the treated group when the treatment labels are not 0/1 or
    False/True (two numbers: the larger is treated).""",
    "fitted_attributes": """weights_ : ndarray of shape (n_samples,)
    One weight per row. In each reweighted arm the weights are non-negative
    and ``sum(sample_weight * weights_)`` over the arm equals the target's
    total sample weight; units not reweighted get 1.
treated_ : ndarray of bool of shape (n_samples,)
    Which rows were treated.
classes_ : ndarray of shape (2,)
    ``[control_label, treated_label]``.
ess_ : dict
    Kish effective sample size of each group after weighting.""",
}


def fill_balancer_doc(cls):
    """``fill_doc`` plus the balancer fragments (``{pos_label}``, ``{fitted_attributes}``)."""
    lines = []
    for line in (cls.__doc__ or "").splitlines():
        key = line.strip()[1:-1]
        if line.strip().startswith("{") and line.strip().endswith("}") and key in _BALANCER_DOCS:
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(textwrap.indent(_BALANCER_DOCS[key], indent))
        else:
            lines.append(line)
    cls.__doc__ = "\n".join(lines)
    return fill_doc(cls)


class OverlapWarning(UserWarning):
    """The groups barely overlap: balance stays poor or rests on very few units.

    Raised by :class:`~weightstats.balancing.IPMBalancer` when a covariate
    separates the groups completely or weighting removes less than half of the
    imbalance; the message gives the IPM before and after weighting and the
    effective sample sizes. Effect estimates then extrapolate.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from weightstats.balancing import IPMBalancer, OverlapWarning
    >>> X = np.r_[np.zeros((5, 1)), np.ones((5, 1)) * 10] + np.arange(10)[:, None] / 10
    >>> t = np.r_[np.zeros(5), np.ones(5)]
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = IPMBalancer().fit(X, t)
    >>> any(issubclass(w.category, OverlapWarning) for w in caught)
    True
    """


def arms_for_estimand(treated, estimand):
    """The reweighting problems of an estimand.

    Parameters
    ----------
    treated : ndarray of bool of shape (n_samples,)
        Group membership.
    estimand : {"ATT", "ATC", "ATE"}
        The estimand.

    Returns
    -------
    arms : list of (str, ndarray of bool, ndarray of bool)
        ``(name, reweighted units, target units)`` for each problem: the
        controls towards the treated (ATT), the treated towards the controls
        (ATC), or each arm towards everyone (ATE).
    """
    everyone = np.ones_like(treated)
    if estimand == "ATT":
        return [("control", ~treated, treated)]
    if estimand == "ATC":
        return [("treated", treated, ~treated)]
    return [("treated", treated, everyone), ("control", ~treated, everyone)]


# A column is constant when its spread is within about a thousand rounding
# units of its level: sd <= 1000 * eps * (|mean| + sd), about 2e-13 relative.
# The rule compares the column with itself, so it is invariant to rescaling and
# keeps a real column such as 1e12 + N(0, 1) (sd / |mean| = 1e-12); comparing
# the sd with max|x| across the sample, as before, dropped it.
CONSTANT_RTOL = 1e3 * np.finfo(float).eps
# Beyond this |mean| / sd, float64 keeps fewer than about 8 significant digits
# of a column's variation (the rest went into representing its offset).
OFFSET_RATIO = 1e8


def column_scaling(X, sample_weight):
    """Weighted pooled mean and standard deviation of each column, and which are constant.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Covariates.
    sample_weight : ndarray of shape (n_samples,)
        Non-negative weights.

    Returns
    -------
    mean, sd : ndarray of shape (n_features,)
        Location and scale (two-pass, so a large offset does not cancel the
        variation).
    constant : ndarray of bool of shape (n_features,)
        Columns whose spread is at the rounding level of their values.
    """
    w = sample_weight / sample_weight.sum()
    mean = w @ X
    sd = np.sqrt(w @ (X - mean) ** 2)
    constant = sd <= CONSTANT_RTOL * (np.abs(mean) + sd)
    return mean, sd, constant


def _labels(columns, names):
    return ", ".join(str(names[j]) if names is not None else f"x{j}" for j in columns)


def warn_about_scaling(mean, sd, constant, names, *, stacklevel=4):
    """Warn about dropped constant columns and columns with a huge offset (lost digits)."""
    if np.any(constant):
        warnings.warn(
            f"covariate(s) {_labels(np.flatnonzero(constant), names)} are constant and were "
            "dropped.", UserWarning, stacklevel=stacklevel,
        )
    with np.errstate(divide="ignore"):
        ratio = np.where(constant, 0.0, np.abs(mean) / sd)
    offset = np.flatnonzero(ratio > OFFSET_RATIO)
    if offset.size:
        digits = max(0, int(np.floor(-np.log10(np.finfo(float).eps * ratio.max()))))
        warnings.warn(
            f"covariate(s) {_labels(offset, names)} vary little next to their size (|mean| / "
            f"sd up to {ratio.max():.2g}): float64 keeps only about {digits} significant "
            "digits of their variation. Subtract a constant (e.g. the mean) before fitting.",
            UserWarning, stacklevel=stacklevel,
        )


def standardize_columns(X, sample_weight, *, warn=True, names=None):
    """Centre and scale columns by their (weighted) pooled mean and standard deviation.

    Constant columns carry no information about imbalance and would divide
    by zero; they are dropped with a warning. A column counts as constant
    when its standard deviation is within about a thousand rounding units of
    its own level (``sd <= 2.2e-13 (|mean| + sd)``): the rule looks only at the
    column itself, so it does not depend on the column's units or offset
    (``1e12 + N(0, 1)`` is kept; the warning then says how many digits of its
    variation float64 kept).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Covariates.
    sample_weight : ndarray of shape (n_samples,)
        Non-negative weights.
    warn : bool, default=True
        Warn about dropped constant columns and lost precision.
    names : list of str, default=None
        Column names for the warning.

    Returns
    -------
    Z : ndarray of shape (n_samples, n_kept)
        Standardised covariates.
    keep : ndarray of bool of shape (n_features,)
        Which columns were kept.
    """
    mean, sd, constant = column_scaling(X, sample_weight)
    keep = ~constant
    if not np.any(keep):
        raise ValueError(
            "every covariate is constant; there is nothing to balance (check the columns of X)."
        )
    if warn:
        warn_about_scaling(mean, sd, constant, names, stacklevel=7)
    return (X[:, keep] - mean[keep]) / sd[keep], keep


class DiagnosticsMixin:
    """``balance_table()`` and ``weight_summary()`` for estimators with one weight per row.

    Needs the fitted ``weights_``, ``treated_``, ``estimand`` and the training
    data kept as ``_X_fit``, ``_sample_weight_fit`` and ``_row_labels`` (the
    index of a DataFrame ``X`` as a list, or ``None``).
    """

    def _feature_names(self):
        return (list(self.feature_names_in_) if hasattr(self, "feature_names_in_")
                else [f"x{j}" for j in range(self.n_features_in_)])

    def balance_table(self, *, interactions=False, squares=False, threshold=None):
        """Covariate balance of the training data before and after weighting.

        Parameters
        ----------
        interactions : bool, default=False
            Add rows for the pairwise products of the covariates.
        squares : bool, default=False
            Add rows for the squares of the non-binary covariates.
        threshold : float, default=None
            Add a ``balance`` column flagging ``|smd_after| > threshold``.

        Returns
        -------
        table : pandas.DataFrame
            See :func:`~weightstats.balancing.balance_table`.
        """
        check_is_fitted(self)
        return balance_table(
            self._X_fit, self.treated_, self.weights_, estimand=self.estimand,
            sample_weight=self._sample_weight_fit, feature_names=self._feature_names(),
            interactions=interactions, squares=squares, threshold=threshold,
        )

    def _check_weighting(self):
        """BalanceWarning when the fitted weights collapse or worsen balance."""
        for message in check_weighting(
                self._X_fit, self.treated_, self.weights_, estimand=self.estimand,
                sample_weight=self._sample_weight_fit, feature_names=self._feature_names(),
                warn=False):
            warnings.warn(message, BalanceWarning, stacklevel=4)

    def weight_summary(self, top=5):
        """The distribution of the fitted weights in each arm and the largest weights.

        Parameters
        ----------
        top : int, default=5
            Number of largest weights listed per arm.

        Returns
        -------
        summary : WeightSummary
            See :func:`~weightstats.balancing.weight_summary`; rows are
            labelled by the index of a DataFrame ``X`` passed to ``fit``,
            else by their position.
        """
        check_is_fitted(self)
        if not isinstance(top, numbers.Integral) or top < 0:
            raise ValueError(f"top must be a non-negative integer; got {top!r}.")
        arms = [("treated", self.treated_), ("control", ~self.treated_)]
        return _summarise(self.weights_, self._sample_weight_fit, arms,
                          getattr(self, "_row_labels", None), top)


def row_labels(X):
    """The index of a DataFrame as a plain list (``None`` for a default range index)."""
    if not isinstance(X, (pd.DataFrame, pd.Series)):
        return None
    index = X.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return None
    # Plain values only, so that fitted balancers persist without trusting pandas types.
    return [v if isinstance(v, (int, float, str)) else str(v) for v in index.tolist()]


class BaseBalancer(DiagnosticsMixin, BaseEstimator):
    """Base class of the balancers (not for direct use).

    Subclasses implement ``_prepare(X, sample_weight)`` (covariate
    transformation shared by the arms) and ``_solve_arm(prepared, source,
    target, sample_weight, rng)`` returning probability masses over
    ``source``, or override ``_fit_weights`` entirely.
    """

    _parameter_constraints = {
        "estimand": [StrOptions({"ATT", "ATC", "ATE"})],
        "pos_label": "no_validation",
        "n_jobs": [numbers.Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # Set on clones refitted inside the bootstrap: skips diagnostics and warnings
    # that only matter for the user's own fit.
    _in_bootstrap = False

    def __init__(self, estimand="ATT", *, pos_label=None, n_jobs=None, random_state=None,
                 verbose=0):
        self.estimand = estimand
        self.pos_label = pos_label
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = False
        # The "target" is a binary treatment: this makes scikit-learn's common
        # checks generate two-valued targets (balancers are not classifiers).
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, treatment, sample_weight=None):
        """Learn balancing weights for the training units.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Covariates (numeric; a DataFrame keeps its column names).
        treatment : array-like of shape (n_samples,)
            Binary treatment: 0/1, booleans, or two labels with ``pos_label``
            naming the treated one.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency or survey weights; integer weights are equivalent to
            repeating rows.

        Returns
        -------
        self : object
            The fitted balancer.
        """
        labels = row_labels(X)
        X, treatment = validate_data(
            self, X, treatment, dtype=np.float64, y_numeric=False, ensure_min_samples=1
        )
        n = X.shape[0]
        if n < 4:
            raise ValueError(
                f"got {n} sample(s) (rows); balancing needs at least 2 units in each group."
            )
        treated, classes = check_binary_treatment(
            treatment, pos_label=_default_pos_label(treatment, self.pos_label), n_samples=n
        )
        sample_weight = check_sample_weight(sample_weight, X)
        check_group_sizes(treated[sample_weight > 0], minimum=2)
        rng = check_random_state(self.random_state)
        # BLAS threads follow n_jobs: multithreaded BLAS on small factorisations
        # is slower, and catastrophically so when processes share the cores.
        with _blas_threads(n_threads_from_jobs(self.n_jobs)):
            weights, info = self._fit_weights(X, treated, sample_weight, rng)
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise RuntimeError("internal error: balancing weights are not finite and non-negative.")
        self.weights_ = weights
        self.treated_ = treated
        self.classes_ = classes
        self.solver_info_ = info
        self.ess_ = {
            "treated": _kish(sample_weight[treated] * weights[treated]),
            "control": _kish(sample_weight[~treated] * weights[~treated]),
        }
        self._X_fit = X
        self._sample_weight_fit = sample_weight
        self._row_labels = labels
        self._check_weighting()
        return self

    def _fit_weights(self, X, treated, sample_weight, rng):
        prepared = self._prepare(X, sample_weight, rng)
        weights = np.ones(X.shape[0])
        infos = {}
        for name, source_mask, target_mask in arms_for_estimand(treated, self.estimand):
            source = np.flatnonzero(source_mask & (sample_weight > 0))
            target = np.flatnonzero(target_mask & (sample_weight > 0))
            masses, info = self._solve_arm(prepared, name, source, target, sample_weight, rng)
            masses = np.asarray(masses, dtype=float)
            if (masses.shape != (source.size,) or not np.all(np.isfinite(masses))
                    or np.any(masses < 0) or masses.sum() <= 0):
                raise RuntimeError(f"internal error: invalid balancing masses for the {name} arm.")
            masses = masses / masses.sum()
            weights[source_mask] = 0.0
            weights[source] = masses * sample_weight[target].sum() / sample_weight[source]
            infos[name] = _plain(info)
            if not info.get("converged", True) and not self._in_bootstrap:
                self._warn_unconverged(name, info)
        self._after_weights(prepared, X, treated, sample_weight, weights, infos)
        return weights, _merge_info(infos)

    def _prepare(self, X, sample_weight, rng):
        return X

    def _solve_arm(self, prepared, name, source, target, sample_weight, rng):
        """Probability masses over ``source`` (and a dict of diagnostics)."""
        raise NotImplementedError

    def _after_weights(self, prepared, X, treated, sample_weight, weights, infos):
        """Hook for diagnostics that need the final weights."""

    def _warn_unconverged(self, name, info):
        gap = info.get("relative_gap")
        if gap is not None:
            detail = f"relative duality gap {gap:.3g} (tol={self.tol:g})"
        elif "max_imbalance" in info:
            detail = (f"largest remaining imbalance {info['max_imbalance']:.3g} standard "
                      f"deviations (tol={self.tol:g})")
        else:
            detail = "see solver_info_"
        warnings.warn(
            f"the {name} arm's balancing problem did not converge ({info.get('solver')}, "
            f"{info.get('iterations')} iterations): {detail}.",
            ConvergenceWarning, stacklevel=4,
        )

    # ------------------------------------------------------------------ results

    def estimate_effect(self, y, *, augment=None, se="auto", n_bootstrap=200, cross_fit=None):
        """Estimate the treatment effect on the training units' outcomes.

        The Hajek weighted difference of means (optionally augmented with an
        outcome model: the doubly robust estimate). See
        :func:`~weightstats.balancing.weighted_effect` and the
        :ref:`User Guide <balancing>` for the calibration of each standard error.

        Parameters
        ----------
        y : array-like of shape (n_samples,)
            Outcomes of the rows passed to ``fit``, in the same order.
        augment : None, "ols" or regressor, default=None
            Outcome model for the doubly robust estimate, fitted on each
            reweighted arm (cross-fitted with ``cross_fit``).
        se : {"auto", "residual", "m-estimation", "sandwich", "bootstrap"}, default="auto"
            ``"residual"``: influence-function standard error on the
            residuals of a 5-fold cross-fitted outcome model (kernel ridge
            regression in the balancing kernel's space for
            :class:`IPMBalancer`), weights held fixed; with ``augment``, the
            doubly robust estimate's own. ``"m-estimation"``: stacked
            estimating equations of the weights and the means, which include
            the estimation of the weights (:class:`PropensityBalancer` with
            its default logistic model, :class:`EntropyBalancer`).
            ``"sandwich"``: raw outcomes with the weights treated as fixed
            (conservative, often by far). ``"bootstrap"``: resample the
            treated and the controls, refit the weights (and outcome model)
            on every resample; uses ``n_jobs``, ``random_state`` and
            ``verbose``. ``"auto"``: ``"m-estimation"`` for the propensity
            model (``"sandwich"`` for other classifiers or clipped scores),
            each balancer's calibrated choice otherwise (see the User Guide);
            with ``augment``, ``"residual"``.
        n_bootstrap : int, default=200
            Number of bootstrap resamples.
        cross_fit : int, default=None
            Folds for cross-fitting the outcome model: ``augment`` is fitted
            once on each arm when ``None``; the residual standard error uses
            5 folds when ``None``. Folds are drawn with ``random_state``; with
            ``random_state=None`` they are fixed by the data, so the result
            is reproducible and does not depend on the order of the rows.

        Returns
        -------
        results : EffectResults
            ``effect``, ``se``, ``conf_int()``, ``summary()``,
            ``summary_frame()``; with ``se="bootstrap"`` also percentile
            intervals (``conf_int(method="percentile")``) and the number of
            resamples whose weights did not converge.
        """
        check_is_fitted(self)
        return estimate_balancer_effect(self, y, augment=augment, se=se,
                                        n_bootstrap=n_bootstrap, cross_fit=cross_fit)

    def _method_name(self):
        return type(self).__name__

    def _summary_info(self):
        return {}


_CONTROLLER = []


def _blas_threads(n_threads):
    """Context limiting BLAS to ``n_threads`` (the library scan is done once per process)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=n_threads, user_api="blas")


def _default_pos_label(treatment, pos_label):
    """Two numeric labels: the larger marks the treated (as ``classes_[1]`` in scikit-learn)."""
    if pos_label is not None:
        return None if pos_label is None else pos_label
    values = np.asarray(treatment)
    if values.dtype.kind in "iuf" and values.ndim in (1, 2):
        labels = np.unique(values[np.isfinite(values)] if values.dtype.kind == "f" else values)
        if labels.shape[0] == 2 and not set(labels.tolist()) <= {0, 1}:
            return labels[1]
    return None


def _plain(info):
    """Info with plain Python scalars (persistence-friendly)."""
    return {key: value.item() if isinstance(value, np.generic) else value
            for key, value in info.items()}


def _merge_info(infos):
    """One arm: its info dict; two arms (ATE): keyed by arm, plus overall status."""
    if len(infos) == 1:
        (name, info), = infos.items()
        return {"arm": name, **info}
    merged = dict(infos)
    merged["converged"] = all(bool(i.get("converged", True)) for i in infos.values())
    return merged

