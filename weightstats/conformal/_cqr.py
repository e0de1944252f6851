"""Conformalized quantile regression (Romano, Patterson and Candès 2019) and its CV+ variant.

Split CQR: fit a quantile model on a training set, compute on a separate
calibration set the conformity scores ``E_i = max(q_lo(x_i) - y_i, y_i - q_hi(x_i))``
and widen (or narrow) the interval ``[q_lo(x), q_hi(x)]`` by the
``ceil((1 - alpha)(n + 1))``-th smallest score. The asymmetric variant corrects
each side separately at level ``1 - alpha/2`` (Romano et al., Sec. 6).

CV+ (Barber et al. 2021, as in MAPIE's ``CrossConformalizedQuantileRegressor``
with ``method="plus"``): K-fold models; for a new ``x`` the interval is
``[ floor(alpha(n+1))-th smallest of q_lo^{-k(i)}(x) - E_i ,
ceil((1-alpha)(n+1))-th smallest of q_hi^{-k(i)}(x) + E_i ]`` over all rows i,
where ``k(i)`` is the fold of row ``i``.

Sample weights are frequency weights: an integer weight counts as that many
copies of the row in the order statistics (``ceil((1 - alpha)(W + 1))`` with
``W`` the total weight), so weighting equals repeating rows. They are not the
likelihood-ratio weights of covariate-shift conformal prediction.
"""

import math
import numbers
from numbers import Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _num_samples, validate_data

from ..ensemble._base import (
    check_meta_input,
    check_predict_input,
    checked_cv,
    combine_input_tags,
    fit_estimator,
    is_frozen,
)
from ..ensemble._quantile_adapters import (
    PerQuantileRegressor,
    as_quantile_model,
    declared_levels,
    match_levels,
)
from ..utils import fill_doc

__all__ = ["ConformalQuantileRegressor"]

_DECIMALS = 12  # levels alpha/2 are rounded so that 1 - 0.9 matches a model's 0.05


def _conformal_quantile(scores, weights, level):
    """Weighted ``ceil(level (W + 1))``-th smallest entry along the last axis.

    ``scores`` has shape (..., n); returns shape (...). Integer weights equal
    repeated entries. ``inf`` when the rank exceeds the total weight.
    """
    order = np.argsort(scores, axis=-1, kind="stable")
    sorted_scores = np.take_along_axis(scores, order, axis=-1)
    cumulative = np.cumsum(weights[order], axis=-1)
    total = cumulative[..., -1:]
    level = np.asarray(level, dtype=float).reshape(np.shape(level) + (1,))
    # ceil(level * (W + 1)), guarded against 0.9 * 10 = 9.000000000000002
    rank = np.ceil(np.round(level * (total + 1.0), 9))
    index = np.argmax(cumulative >= rank, axis=-1)
    found = np.take_along_axis(cumulative >= rank, index[..., None], axis=-1)[..., 0]
    value = np.take_along_axis(sorted_scores, index[..., None], axis=-1)[..., 0]
    return np.where(found, value, np.inf)


def _is_prefit(estimator):
    """Whether every model inside ``estimator`` is frozen (so fit would not train)."""
    if is_frozen(estimator):
        return True
    if isinstance(estimator, dict):
        return bool(estimator) and all(is_frozen(m) for m in estimator.values())
    if isinstance(estimator, PerQuantileRegressor):
        return _is_prefit(estimator.estimators)
    inner = getattr(estimator, "estimator", None)
    return inner is not None and is_frozen(inner)


def _minimum_calibration_size(side_alpha):
    """Smallest total weight n with ceil((1 - a)(n + 1)) <= n, i.e. n >= 1/a - 1."""
    return math.ceil(np.round((1.0 - side_alpha) / side_alpha, 9))


@fill_doc
class ConformalQuantileRegressor(RegressorMixin, BaseEstimator):
    """Conformalized quantile regression: calibrated prediction intervals.

    Wraps any quantile model (a dict of per-level models, an estimator whose
    ``predict`` takes ``quantiles=``, the adapters of
    :mod:`weightstats.ensemble`, or a
    :class:`~weightstats.ensemble.QuantileAggregator`) and corrects its
    ``alpha/2`` and ``1 - alpha/2`` quantiles so that the interval covers a
    new outcome with probability at least ``confidence_level`` under
    exchangeability (Romano et al. 2019). The vocabulary follows MAPIE:
    ``confidence_level``, :meth:`conformalize`, :meth:`predict_interval`.
    Read more in the :ref:`User Guide <conformal>`.

    Parameters
    ----------
    estimator : quantile model or dict of {float: estimator}
        The base quantile model; it must provide the levels ``alpha/2`` and
        ``1 - alpha/2`` of every confidence level (a dict is checked before
        fitting and only those levels, plus 0.5 when present, are fitted).
        Wrap a prefit model in :class:`~sklearn.frozen.FrozenEstimator`; then
        :meth:`conformalize` can be called without :meth:`fit`.
    confidence_level : float or list of float, default=0.9
        Target coverage of each interval, in (0, 1).
    method : {"cqr", "cqr_asymmetric"}, default="cqr"
        ``"cqr"``: one correction for both ends, from the scores
        ``max(q_lo - y, y - q_hi)``; ``"cqr_asymmetric"``: separate lower and
        upper corrections, each at level ``1 - alpha/2`` (needs about twice
        as many calibration rows).
    cv : "split", int, cross-validation generator or iterable, default="split"
        ``"split"``: :meth:`fit` fits the model and :meth:`conformalize`
        calibrates it on separate data. Otherwise CV+: :meth:`fit` fits one
        model per fold and uses the out-of-fold scores of all rows; an int
        is the number of :class:`~sklearn.model_selection.KFold` folds, not
        shuffled (as in :func:`~sklearn.model_selection.cross_val_predict`;
        pass ``KFold(n, shuffle=True, random_state=...)`` for data sorted in
        a meaningful order). Its guarantee is coverage >= ``1 - 2 alpha``,
        in practice close to ``1 - alpha``.
    {n_jobs}
        Fold fits run in parallel (CV+ only).

    Attributes
    ----------
    estimator_ : quantile model
        The fitted base model (split mode).
    estimators_ : list of quantile models
        The fold models (CV+ mode).
    confidence_levels_ : ndarray of shape (n_levels,)
        The confidence levels.
    quantile_levels_ : ndarray of shape (n_levels, 2)
        The base model's lower and upper quantile level for each.
    conformity_scores_ : ndarray of shape (n_calibration, n_levels) or \
            (n_calibration, 2, n_levels)
        Conformity scores of the calibration rows (lower and upper scores for
        ``"cqr_asymmetric"``).
    corrections_ : ndarray of shape (n_levels,) or (n_levels, 2)
        Split mode: the amounts subtracted from the lower and added to the
        upper quantile (negative values narrow the interval).
    n_calibration_ : float
        Number (total weight) of calibration rows.
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    weightstats.ensemble.QuantileAggregator : A quantile model to conformalize.
    weightstats.metrics.interval_coverage : Check the coverage on test data.

    References
    ----------
    .. [1] Romano, Y., Patterson, E. and Candès, E. (2019). Conformalized
       quantile regression. NeurIPS 32.
    .. [2] Barber, R. F., Candès, E. J., Ramdas, A. and Tibshirani, R. J.
       (2021). Predictive inference with the jackknife+. Annals of Statistics
       49(1), 486-507.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import QuantileRegressor
    >>> from weightstats.conformal import ConformalQuantileRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 1, (400, 1))
    >>> y = X[:, 0] + (0.1 + X[:, 0]) * rng.standard_normal(400)
    >>> levels = {q: QuantileRegressor(quantile=q, alpha=0.0) for q in (0.05, 0.5, 0.95)}
    >>> cqr = ConformalQuantileRegressor(levels, confidence_level=0.9)
    >>> cqr = cqr.fit(X[:200], y[:200]).conformalize(X[200:300], y[200:300])
    >>> intervals = cqr.predict_interval(X[300:])
    >>> intervals.shape
    (100, 2, 1)
    >>> inside = (intervals[:, 0, 0] <= y[300:]) & (y[300:] <= intervals[:, 1, 0])
    >>> bool(inside.mean() > 0.8)
    True
    """

    _parameter_constraints = {
        "estimator": "no_validation",
        "confidence_level": [Interval(Real, 0, 1, closed="neither"), "array-like"],
        "method": [StrOptions({"cqr", "cqr_asymmetric"})],
        "cv": [StrOptions({"split"}), "cv_object"],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(self, estimator, *, confidence_level=0.9, method="cqr", cv="split",
                 n_jobs=None):
        self.estimator = estimator
        self.confidence_level = confidence_level
        self.method = method
        self.cv = cv
        self.n_jobs = n_jobs

    # -- levels ---------------------------------------------------------------

    def _confidence_levels(self):
        levels = np.atleast_1d(np.asarray(self.confidence_level, dtype=float))
        if levels.ndim != 1 or levels.size == 0:
            raise ValueError("confidence_level must be a float or a non-empty list of floats.")
        if np.any(~np.isfinite(levels)) or np.any((levels <= 0) | (levels >= 1)):
            raise ValueError(
                f"confidence_level must lie strictly between 0 and 1; got {levels.tolist()}."
            )
        return levels

    def _prepare_model(self):
        """The adapted base model restricted to the levels needed, and those levels."""
        confidence = self._confidence_levels()
        alpha = 1.0 - confidence
        pairs = np.round(np.column_stack([alpha / 2.0, 1.0 - alpha / 2.0]), _DECIMALS)
        model = as_quantile_model(self.estimator, owner="ConformalQuantileRegressor")
        available = declared_levels(model)
        needed = np.unique(pairs)
        if available is not None:
            for c, pair in zip(confidence, pairs, strict=True):
                missing = [float(q) for q in pair if not np.any(np.abs(available - q) <= 1e-9)]
                if missing:
                    raise ValueError(
                        f"confidence_level={c:g} needs the quantile levels {pair.tolist()}, but "
                        f"the base model predicts {[float(a) for a in available]}: {missing} "
                        f"{'is' if len(missing) == 1 else 'are'} missing. Add models for them "
                        "or choose a confidence level whose alpha/2 and 1 - alpha/2 it has."
                    )
            has_median = bool(np.any(np.abs(available - 0.5) <= 1e-9))
            if isinstance(self.estimator, dict):
                # Fit only the levels we use.
                keep = np.unique(np.append(needed, 0.5) if has_median else needed)
                subset = {
                    level: est
                    for level, est in self.estimator.items()
                    if np.any(np.abs(keep - float(level)) <= 1e-9)
                }
                model = PerQuantileRegressor(subset)
        else:
            has_median = True
        levels = np.unique(np.append(needed, 0.5)) if has_median else needed
        return model, confidence, pairs, levels, has_median

    # -- fitting --------------------------------------------------------------

    @fill_doc
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Fit the base quantile model (split) or the fold models and scores (CV+).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, passed unchanged to the base model.
        y : array-like of shape (n_samples,)
            Target values.
        {sample_weight}
            Passed to the base model's fits where they accept it (a model
            that does not is fitted without it, with a warning); in CV+ mode
            also frequency weights of the conformity scores.

        Returns
        -------
        self : ConformalQuantileRegressor
            The fitted regressor; in split mode call :meth:`conformalize`
            next.
        """
        model, confidence, pairs, levels, has_median = self._prepare_model()
        X, y, sample_weight = check_meta_input(X, y, sample_weight)
        validate_data(self, X, skip_check_array=True, reset=True)
        for attribute in ("estimator_", "estimators_", "conformity_scores_", "corrections_",
                          "fold_of_row_", "calibration_weights_", "n_calibration_"):
            self.__dict__.pop(attribute, None)
        self.confidence_levels_ = confidence
        self.quantile_levels_ = pairs
        self.levels_ = levels
        self.has_median_ = has_median
        if isinstance(self.cv, str) and self.cv == "split":
            model = model if is_frozen(model) else clone(model)
            self.estimator_ = fit_estimator(model, X, y, sample_weight)
            return self
        self._fit_cv_plus(model, X, y, sample_weight)
        return self

    def _fit_cv_plus(self, model, X, y, sample_weight):
        splits = list(checked_cv(self.cv, y).split(X, y))
        fold = np.full(X.shape[0], -1)
        for k, (_, test) in enumerate(splits):
            if np.any(fold[test] >= 0):
                raise ValueError("cv must put every row in exactly one test fold for CV+.")
            fold[test] = k
        if np.any(fold < 0):
            raise ValueError("cv must put every row in exactly one test fold for CV+.")
        weights = np.ones(X.shape[0]) if sample_weight is None else sample_weight
        self._check_calibration_size(weights.sum())

        def fit_fold(train):
            return fit_estimator(
                clone(model), _safe_indexing(X, train), y[train],
                None if sample_weight is None else sample_weight[train],
            )

        self.estimators_ = Parallel(n_jobs=self.n_jobs)(
            delayed(fit_fold)(train) for train, _ in splits
        )
        scores = np.empty((X.shape[0],) + self._score_shape())
        for k, (_, test) in enumerate(splits):
            lo, hi = self._bounds(self.estimators_[k], _safe_indexing(X, test))
            scores[test] = self._scores(lo, hi, y[test])
        self.conformity_scores_ = scores
        self.fold_of_row_ = fold
        self.calibration_weights_ = weights
        self.n_calibration_ = float(weights.sum())

    def conformalize(self, X, y, sample_weight=None):
        """Calibrate the interval corrections on held-out data (split mode).

        Parameters
        ----------
        X : array-like of shape (n_calibration, n_features)
            Calibration data, not used to fit the base model.
        y : array-like of shape (n_calibration,)
            Calibration targets.
        sample_weight : array-like of shape (n_calibration,), default=None
            Frequency weights of the calibration rows.

        Returns
        -------
        self : ConformalQuantileRegressor
            The calibrated regressor.
        """
        if not (isinstance(self.cv, str) and self.cv == "split"):
            raise ValueError(
                f"conformalize is for cv='split'; with cv={self.cv!r} fit already calibrates "
                "on the out-of-fold scores."
            )
        if not hasattr(self, "estimator_"):
            if not _is_prefit(self.estimator):
                raise NotFittedError(
                    "This ConformalQuantileRegressor is not fitted yet: call fit(X_train, "
                    "y_train) first, or wrap a prefit model in FrozenEstimator."
                )
            self.fit(X, y)  # no-op fit of the frozen model; sets levels and features
        X, y, sample_weight = check_meta_input(X, y, sample_weight, min_samples=1)
        validate_data(self, X, skip_check_array=True, reset=False)
        weights = np.ones(X.shape[0]) if sample_weight is None else sample_weight
        self._check_calibration_size(weights.sum())
        lo, hi = self._bounds(self.estimator_, X)
        scores = self._scores(lo, hi, y)
        alpha = 1.0 - self.confidence_levels_
        if self.method == "cqr":
            # scores (n, L): correction per level at 1 - alpha
            corrections = _conformal_quantile(scores.T, weights, (1.0 - alpha))
        else:
            # scores (n, 2, L): lower and upper, each at 1 - alpha/2
            corrections = np.column_stack([
                _conformal_quantile(scores[:, side, :].T, weights, 1.0 - alpha / 2.0)
                for side in (0, 1)
            ])
        self.conformity_scores_ = scores
        self.corrections_ = corrections
        self.calibration_weights_ = weights
        self.n_calibration_ = float(weights.sum())
        return self

    def _check_calibration_size(self, total):
        alpha = 1.0 - self.confidence_levels_
        side = alpha if self.method == "cqr" else alpha / 2.0
        needed = max(_minimum_calibration_size(a) for a in side)
        if total < needed - 1e-9:
            raise ValueError(
                f"the calibration set has {total:g} rows (total weight) but "
                f"confidence_level={self.confidence_level} with method={self.method!r} needs at "
                f"least {needed} for finite intervals (n >= 1/alpha - 1"
                f"{' with alpha/2 per side' if self.method != 'cqr' else ''})."
            )

    def _score_shape(self):
        n_levels = self.confidence_levels_.shape[0]
        return (n_levels,) if self.method == "cqr" else (2, n_levels)

    def _bounds(self, model, X):
        """Lower and upper base quantiles (n, L), each row's pair in order."""
        levels = np.unique(self.quantile_levels_)  # not the median: predict() asks for it
        pred = model.predict(X, quantiles=levels)
        lo = pred[:, match_levels(self.quantile_levels_[:, 0], levels, owner="model")]
        hi = pred[:, match_levels(self.quantile_levels_[:, 1], levels, owner="model")]
        # Crossing base quantiles are put in order (at scoring and prediction alike).
        return np.minimum(lo, hi), np.maximum(lo, hi)

    def _scores(self, lo, hi, y):
        lower, upper = lo - y[:, None], y[:, None] - hi
        if self.method == "cqr":
            return np.maximum(lower, upper)
        return np.stack([lower, upper], axis=1)

    # -- prediction -----------------------------------------------------------

    def _check_calibrated(self, X):
        check_predict_input(self, X, "confidence_levels_")
        if not hasattr(self, "conformity_scores_"):
            raise NotFittedError(
                "This ConformalQuantileRegressor is fitted but not calibrated: call "
                "conformalize(X_calibration, y_calibration) before predict_interval."
            )

    def predict_interval(self, X):
        """Conformal prediction intervals.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.

        Returns
        -------
        intervals : ndarray of shape (n_samples, 2, n_levels)
            ``[:, 0, l]`` lower and ``[:, 1, l]`` upper bound for
            ``confidence_levels_[l]``.
        """
        self._check_calibrated(X)
        if hasattr(self, "estimator_"):
            lo, hi = self._bounds(self.estimator_, X)
            c = self.corrections_
            c_lo, c_hi = (c, c) if c.ndim == 1 else (c[:, 0], c[:, 1])
            lower, upper = lo - c_lo, hi + c_hi
        else:
            lower, upper = self._cv_plus_bounds(X)
        # A negative correction can invert a narrow interval; the score event
        # is then empty anyway, so collapsing to the midpoint keeps validity.
        crossed = lower > upper
        if np.any(crossed):
            middle = (lower + upper) / 2.0
            lower = np.where(crossed, middle, lower)
            upper = np.where(crossed, middle, upper)
        return np.stack([lower, upper], axis=1)

    def _cv_plus_bounds(self, X):
        n = _num_samples(X)
        L = self.confidence_levels_.shape[0]
        alpha = 1.0 - self.confidence_levels_
        side = alpha if self.method == "cqr" else alpha / 2.0
        fold_lo = np.empty((len(self.estimators_), n, L))
        fold_hi = np.empty_like(fold_lo)
        for k, model in enumerate(self.estimators_):
            fold_lo[k], fold_hi[k] = self._bounds(model, X)
        scores = self.conformity_scores_
        s_lo = scores if scores.ndim == 2 else scores[:, 0, :]
        s_hi = scores if scores.ndim == 2 else scores[:, 1, :]
        fold = self.fold_of_row_
        w = self.calibration_weights_
        lower = np.empty((n, L))
        upper = np.empty((n, L))
        chunk = max(1, int(2_000_000 // max(1, fold.shape[0])))
        for start in range(0, n, chunk):
            rows = slice(start, start + chunk)
            for l in range(L):
                # candidates (rows, n_calibration)
                lo_c = fold_lo[fold, rows, l].T - s_lo[:, l]
                hi_c = fold_hi[fold, rows, l].T + s_hi[:, l]
                lower[rows, l] = -_conformal_quantile(-lo_c, w, 1.0 - side[l])
                upper[rows, l] = _conformal_quantile(hi_c, w, 1.0 - side[l])
        return lower, upper

    def predict(self, X):
        """Point predictions: the base model's median.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The median (averaged over fold models in CV+ mode); when the base
            model has no 0.5 level, the midpoint of the first calibrated
            interval.
        """
        check_predict_input(self, X, "confidence_levels_")
        if self.has_median_:
            models = [self.estimator_] if hasattr(self, "estimator_") else self.estimators_
            return np.mean([m.predict(X, quantiles=0.5) for m in models], axis=0)
        intervals = self.predict_interval(X)
        return intervals[:, :, 0].mean(axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            model = as_quantile_model(self.estimator, owner="")
            return combine_input_tags(tags, [("estimator", model)])
        except Exception:
            return tags
