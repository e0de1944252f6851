"""Thin adapters that give every quantile model one interface.

Two shapes of base quantile model are common:

* one estimator that predicts any level at predict time, such as
  ``quantile_forest.RandomForestQuantileRegressor`` (``predict(X, quantiles=[...])``):
  :class:`MultiQuantileRegressor`;
* one model per level, such as ``GradientBoostingRegressor(loss="quantile",
  alpha=tau)`` or ``QuantileRegressor(quantile=tau)``: :class:`PerQuantileRegressor`
  (a dict ``{level: model}``).

Both end up with the interface of the quantile aggregator and the conformal
regressor: ``predict(X, quantiles=None)`` returns an ``(n_samples, n_levels)``
array (a 1-d array for a single float level), as quantile-forest does.
"""

import inspect
import numbers
from numbers import Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context, clone
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import _num_samples, check_is_fitted, validate_data

from ..utils import fill_doc
from ._base import (
    check_meta_input,
    check_predict_input,
    combine_input_tags,
    fit_estimator,
    is_frozen,
    warn_unweighted,
)

__all__ = ["MultiQuantileRegressor", "PerQuantileRegressor"]

DEFAULT_QUANTILES = tuple(np.round(np.arange(1, 20) / 20, 2))
_LEVEL_ATOL = 1e-9


def check_levels(levels, name="quantiles"):
    """Quantile levels as a strictly increasing float array in (0, 1)."""
    if isinstance(levels, Real):
        levels = [levels]
    try:
        levels = np.asarray(levels, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numbers in (0, 1): {exc}") from exc
    if levels.ndim != 1 or levels.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d sequence of levels in (0, 1).")
    if not np.all(np.isfinite(levels)) or np.any((levels <= 0) | (levels >= 1)):
        raise ValueError(f"{name} must lie strictly between 0 and 1; got {levels.tolist()}.")
    if np.any(np.diff(levels) <= 0):
        raise ValueError(
            f"{name} must be strictly increasing (sorted, no duplicates); got {levels.tolist()}."
        )
    return levels


def match_levels(requested, available, *, owner):
    """Column indices of ``requested`` levels in ``available``, or a clear error."""
    index = []
    missing = []
    for level in requested:
        hit = np.flatnonzero(np.abs(available - level) <= _LEVEL_ATOL)
        if hit.size:
            index.append(int(hit[0]))
        else:
            missing.append(float(level))
    if missing:
        raise ValueError(
            f"{owner} predicts the levels {[float(a) for a in available]}; "
            f"{missing} {'is' if len(missing) == 1 else 'are'} missing. Fit it with these "
            "levels or ask for available ones."
        )
    return np.asarray(index, dtype=int)


def _predict_levels_arg(quantiles, default):
    """(levels array, whether the caller asked for a single float level)."""
    if quantiles is None:
        return default, False
    scalar = isinstance(quantiles, Real)
    return check_levels(quantiles), scalar


def _check_predict_X(estimator, X):
    check_predict_input(estimator, X)


def _accepts_keyword(method, keyword):
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    return keyword in parameters


class _QuantileModel:
    """Marker for weightstats estimators whose ``predict`` takes ``quantiles=``."""

    def score(self, X, y, sample_weight=None):
        """Mean over the levels of the D^2 pinball score (higher is better, at most 1).

        ``D^2 = 1 - pinball(model) / pinball(constant quantile of y)`` level by
        level (:func:`sklearn.metrics.d2_pinball_score`), averaged over
        ``quantiles_``: the quantile analogue of R^2.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Test data.
        y : array-like of shape (n_samples,)
            True targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Mean D^2 pinball score over the levels.
        """
        from sklearn.metrics import d2_pinball_score

        levels = self.quantiles_
        pred = self.predict(X, quantiles=levels)
        return float(np.mean([
            d2_pinball_score(y, pred[:, k], alpha=float(level), sample_weight=sample_weight)
            for k, level in enumerate(levels)
        ]))

    def available_levels(self):
        """Levels this fitted model can predict (``None``: any level in (0, 1)).

        Returns
        -------
        levels : ndarray of shape (n_levels,) or None
            The levels, or ``None`` when any level can be predicted.
        """
        check_is_fitted(self)
        return self.quantiles_


@fill_doc
class MultiQuantileRegressor(_QuantileModel, RegressorMixin, BaseEstimator):
    """Adapter for one estimator that predicts several quantile levels at once.

    Wraps estimators whose ``predict`` takes the levels as a keyword, such as
    ``quantile_forest.RandomForestQuantileRegressor`` (``quantiles=``), so
    that :class:`QuantileAggregator` and
    :class:`~weightstats.conformal.ConformalQuantileRegressor` can use them.
    Read more in the :ref:`User Guide <quantile_aggregation>`.

    Parameters
    ----------
    estimator : estimator
        Fits once; its ``predict(X, **{quantiles_param: levels})`` must
        return an array of shape (n_samples, n_levels). Wrap a prefit model
        in :class:`~sklearn.frozen.FrozenEstimator`.
    quantiles : array-like of float, default=(0.05, 0.1, ..., 0.95)
        Levels returned by :meth:`predict` when none are requested.
    quantiles_param : str, default="quantiles"
        Name of the keyword of ``estimator.predict`` that takes the levels.

    Attributes
    ----------
    estimator_ : estimator
        The fitted estimator.
    quantiles_ : ndarray of shape (n_levels,)
        The default levels.
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    PerQuantileRegressor : One model per level.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator, RegressorMixin
    >>> from weightstats.ensemble import MultiQuantileRegressor
    >>> class Empirical(RegressorMixin, BaseEstimator):
    ...     "Unconditional quantiles of the training targets."
    ...     def fit(self, X, y):
    ...         self.y_ = np.asarray(y)
    ...         return self
    ...     def predict(self, X, quantiles=0.5):
    ...         q = np.quantile(self.y_, np.atleast_1d(quantiles))
    ...         return np.tile(q, (len(X), 1))
    >>> X, y = np.zeros((5, 1)), np.arange(5.0)
    >>> MultiQuantileRegressor(Empirical(), quantiles=[0.25, 0.75]).fit(X, y).predict(X[:1])
    array([[1., 3.]])
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"])],
        "quantiles": ["array-like"],
        "quantiles_param": [str],
    }

    def __init__(self, estimator, *, quantiles=DEFAULT_QUANTILES, quantiles_param="quantiles"):
        self.estimator = estimator
        self.quantiles = quantiles
        self.quantiles_param = quantiles_param

    @fill_doc
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Fit the wrapped estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, passed unchanged to the estimator.
        y : array-like of shape (n_samples,)
            Target values.
        {sample_weight}
            Passed to the estimator if its ``fit`` accepts it; otherwise it
            is fitted without it, with a warning.

        Returns
        -------
        self : MultiQuantileRegressor
            The fitted adapter.
        """
        if not _accepts_keyword(self.estimator.predict, self.quantiles_param):
            raise TypeError(
                f"{type(self.estimator).__name__}.predict has no {self.quantiles_param!r} "
                "argument, so it cannot predict several levels at once; use "
                "PerQuantileRegressor with one model per level instead."
            )
        self.quantiles_ = check_levels(self.quantiles)
        X, y, sample_weight = check_meta_input(X, y, sample_weight)
        validate_data(self, X, skip_check_array=True, reset=True)
        warn_unweighted("MultiQuantileRegressor", ["estimator"], [self.estimator], sample_weight)
        estimator = self.estimator if is_frozen(self.estimator) else clone(self.estimator)
        self.estimator_ = fit_estimator(estimator, X, y, sample_weight)
        return self

    def available_levels(self):
        """Levels this model can predict: any, so ``None``.

        Returns
        -------
        levels : None
            Any level in (0, 1) can be requested.
        """
        check_is_fitted(self)
        return None

    def predict(self, X, quantiles=None):
        """Predict quantiles.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.
        quantiles : float or array-like of float, default=None
            Levels to predict; ``None`` means ``quantiles_``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_levels) or (n_samples,)
            One column per level; 1-d when ``quantiles`` is a float.
        """
        _check_predict_X(self, X)
        levels, scalar = _predict_levels_arg(quantiles, self.quantiles_)
        pred = self.estimator_.predict(X, **{self.quantiles_param: list(levels)})
        pred = np.asarray(pred, dtype=float).reshape(_num_samples(X), -1)
        if pred.shape[1] != levels.shape[0]:
            raise ValueError(
                f"{type(self.estimator_).__name__}.predict returned {pred.shape[1]} columns for "
                f"{levels.shape[0]} levels; it must return shape (n_samples, n_levels)."
            )
        return pred[:, 0] if scalar else pred

    def __sklearn_tags__(self):
        return combine_input_tags(super().__sklearn_tags__(), [("estimator", self.estimator)])


# Losses whose minimiser is the median, and losses that fit no quantile at all
# (scikit-learn's gradient boosting, LightGBM, XGBoost names).
_MEDIAN_LOSSES = frozenset({"absolute_error", "l1", "mae", "regression_l1", "reg:absoluteerror"})
_MEAN_LOSSES = frozenset({
    "squared_error", "huber", "poisson", "gamma", "regression", "l2", "mse", "rmse",
    "regression_l2", "reg:squarederror", "tweedie",
})


def _quantile_setting(estimator):
    """How a per-level model sets its quantile level: ``(parameter, level)``.

    ``parameter`` is the hyper-parameter holding the level (``None`` when a
    median loss fixes it at 0.5, or when the model does not say), ``level``
    its value (``None`` when unknown). Looks through a frozen model and a
    pipeline's last step. Raises when the model's loss fits no quantile.
    """
    inner = estimator.estimator if is_frozen(estimator) else estimator
    if isinstance(inner, Pipeline):
        inner = inner.steps[-1][1]
    params = inner.get_params(deep=False) if hasattr(inner, "get_params") else {}
    loss = params.get("loss", params.get("objective"))
    if isinstance(loss, str):
        if loss == "quantile":
            # HistGradientBoostingRegressor: quantile=; GradientBoostingRegressor
            # and LightGBM: alpha=.
            name = "quantile" if "quantile" in params else "alpha"
            return name, params.get(name)
        if loss == "reg:quantileerror":  # XGBoost
            return "quantile_alpha", params.get("quantile_alpha")
        if loss in _MEDIAN_LOSSES:
            return None, 0.5
        if loss.lower() in _MEAN_LOSSES:
            key = "loss" if "loss" in params else "objective"
            raise ValueError(
                f"{type(inner).__name__} has {key}={loss!r}, which does not fit a quantile; "
                f"set {key}='quantile' and its level."
            )
    if "quantile" in params:  # QuantileRegressor
        return "quantile", params["quantile"]
    return None, None


def _level_param(estimator):
    """The hyper-parameter that sets the quantile level of ``estimator``."""
    name, _ = _quantile_setting(estimator)
    if name is None:
        raise ValueError(
            f"cannot tell which parameter of {type(estimator).__name__} sets the quantile level; "
            "pass param= (e.g. 'alpha' for GradientBoostingRegressor(loss='quantile'))."
        )
    return name


def _check_model_level(level, model):
    """Refuse a per-level model whose own level setting is not its key."""
    try:
        name, own = _quantile_setting(model)
    except ValueError as exc:
        raise ValueError(f"PerQuantileRegressor: the model for level {level:g}: {exc}") from exc
    own = np.asarray(own, dtype=float) if own is not None else None
    if own is None or own.ndim != 0:  # unknown, or several levels (a multi-level model)
        return
    if abs(float(own) - level) > _LEVEL_ATOL:
        setting = f"{name}={float(own):g}" if name else f"a median loss (level {float(own):g})"
        raise ValueError(
            f"PerQuantileRegressor: the model for level {level:g} "
            f"({type(model).__name__}) has {setting}, so it fits the {float(own):g} quantile, "
            f"not the {level:g} one. Set its level to the key (or build the dict with "
            "PerQuantileRegressor.from_estimator)."
        )


@fill_doc
class PerQuantileRegressor(_QuantileModel, RegressorMixin, BaseEstimator):
    """Adapter for a dict of one quantile model per level.

    For example ``{0.05: GradientBoostingRegressor(loss="quantile", alpha=0.05),
    0.5: ..., 0.95: ...}`` or the same with
    :class:`~sklearn.linear_model.QuantileRegressor`. Each model is fitted
    separately, so predictions may cross; :class:`QuantileAggregator` sorts
    or isotonises them. Use :meth:`from_estimator` to build the dict from one
    template. Read more in the :ref:`User Guide <quantile_aggregation>`.

    Parameters
    ----------
    estimators : dict of {float: estimator}
        One model per quantile level in (0, 1). Wrap prefit models in
        :class:`~sklearn.frozen.FrozenEstimator`. Where a model states its
        own level (``alpha`` of ``GradientBoostingRegressor(loss="quantile")``
        or of LightGBM's ``objective="quantile"``, ``quantile`` of
        ``QuantileRegressor`` and ``HistGradientBoostingRegressor``,
        ``quantile_alpha`` of XGBoost, 0.5 for an absolute-error loss, also
        inside a pipeline or ``FrozenEstimator``), it must equal its key,
        and a squared-error (mean) loss is refused: both are errors before
        fitting.
    n_jobs : int, default=None
        Fit the per-level models in parallel (``None`` means 1).

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted models, in increasing level order.
    quantiles_ : ndarray of shape (n_levels,)
        The levels, sorted.
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    MultiQuantileRegressor : One estimator for all levels.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import QuantileRegressor
    >>> from weightstats.ensemble import PerQuantileRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 1, (200, 1))
    >>> y = X[:, 0] + rng.standard_normal(200) * 0.1
    >>> model = PerQuantileRegressor.from_estimator(
    ...     QuantileRegressor(alpha=0.0), quantiles=[0.1, 0.5, 0.9]
    ... ).fit(X, y)
    >>> model.predict([[0.5]]).round(2)
    array([[0.39, 0.48, 0.62]])
    """

    _parameter_constraints = {
        "estimators": [dict],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(self, estimators, *, n_jobs=None):
        self.estimators = estimators
        self.n_jobs = n_jobs

    @classmethod
    def from_estimator(cls, estimator, quantiles=DEFAULT_QUANTILES, *, param=None, n_jobs=None):
        """Build the per-level dict from one template model.

        Parameters
        ----------
        estimator : estimator
            Template, cloned once per level.
        quantiles : array-like of float, default=(0.05, 0.1, ..., 0.95)
            The levels.
        param : str, default=None
            The hyper-parameter that sets the level; detected when ``None``
            (``quantile`` for ``QuantileRegressor`` and
            ``HistGradientBoostingRegressor``, ``alpha`` for
            ``GradientBoostingRegressor(loss="quantile")`` and LightGBM's
            ``objective="quantile"``).
        n_jobs : int, default=None
            Passed to the adapter.

        Returns
        -------
        model : PerQuantileRegressor
            The unfitted adapter.
        """
        levels = check_levels(quantiles)
        param = _level_param(estimator) if param is None else param
        estimators = {
            float(level): clone(estimator).set_params(**{param: float(level)}) for level in levels
        }
        return cls(estimators, n_jobs=n_jobs)

    def _checked_levels(self):
        if not isinstance(self.estimators, dict) or not self.estimators:
            raise TypeError(
                "PerQuantileRegressor expects a non-empty dict {level: estimator}, e.g. "
                "{0.05: GradientBoostingRegressor(loss='quantile', alpha=0.05), ...}."
            )
        try:
            raw = np.asarray(list(self.estimators), dtype=float)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"the dict keys must be quantile levels (floats): {exc}") from exc
        order = np.argsort(raw, kind="stable")
        levels = check_levels(raw[order], name="the dict keys (quantile levels)")
        models = list(self.estimators.values())
        for level, model in zip(raw, models, strict=True):
            if not callable(getattr(model, "fit", None)) or not callable(
                getattr(model, "predict", None)
            ):
                raise TypeError(
                    f"the model for level {level} ({type(model).__name__}) does not implement "
                    "fit and predict."
                )
            _check_model_level(float(level), model)
        return levels, [models[i] for i in order]

    @fill_doc
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Fit one model per level.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, passed unchanged to the models.
        y : array-like of shape (n_samples,)
            Target values.
        {sample_weight}
            Passed to each model whose ``fit`` accepts it; the others are
            fitted without it, with a warning.

        Returns
        -------
        self : PerQuantileRegressor
            The fitted adapter.
        """
        levels, models = self._checked_levels()
        X, y, sample_weight = check_meta_input(X, y, sample_weight)
        validate_data(self, X, skip_check_array=True, reset=True)
        warn_unweighted("PerQuantileRegressor", [f"level {lv:g}" for lv in levels], models,
                        sample_weight, still_used="weights the models that accept it")
        self.estimators_ = Parallel(n_jobs=self.n_jobs)(
            delayed(fit_estimator)(model if is_frozen(model) else clone(model), X, y, sample_weight)
            for model in models
        )
        self.quantiles_ = levels
        return self

    def predict(self, X, quantiles=None):
        """Predict quantiles with the per-level models.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.
        quantiles : float or array-like of float, default=None
            Levels to predict, among ``quantiles_``; ``None`` means all.

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_levels) or (n_samples,)
            One column per level; 1-d when ``quantiles`` is a float.
        """
        _check_predict_X(self, X)
        levels, scalar = _predict_levels_arg(quantiles, self.quantiles_)
        index = match_levels(levels, self.quantiles_, owner="PerQuantileRegressor")
        n_samples = _num_samples(X)
        pred = np.column_stack(
            [np.asarray(self.estimators_[i].predict(X), float).reshape(n_samples) for i in index]
        )
        return pred[:, 0] if scalar else pred

    def __sklearn_tags__(self):
        estimators = self.estimators if isinstance(self.estimators, dict) else {}
        return combine_input_tags(super().__sklearn_tags__(), list(estimators.items()))


def as_quantile_model(model, *, owner, name=None):
    """Wrap a dict or a multi-level estimator so that it has the adapter interface."""
    label = f"estimator {name!r}" if name else "the estimator"
    if isinstance(model, dict):
        return PerQuantileRegressor(model)
    inner = model.estimator if is_frozen(model) else model
    if isinstance(inner, _QuantileModel):
        return model
    if callable(getattr(model, "predict", None)) and _accepts_keyword(model.predict, "quantiles"):
        return MultiQuantileRegressor(model)
    raise TypeError(
        f"{owner}: {label} ({type(model).__name__}) does not predict quantiles. Pass a dict "
        "{level: model} (e.g. GradientBoostingRegressor(loss='quantile', alpha=level)), a "
        "PerQuantileRegressor / MultiQuantileRegressor, or an estimator whose predict takes "
        "quantiles=[...]."
    )


def declared_levels(model):
    """Levels an unfitted (or frozen) adapted model will offer; ``None`` means any."""
    inner = model.estimator if is_frozen(model) else model
    if isinstance(inner, MultiQuantileRegressor):
        return None
    if isinstance(inner, PerQuantileRegressor):
        if is_frozen(model):
            return inner.quantiles_
        return inner._checked_levels()[0]
    if hasattr(inner, "quantiles_"):
        return inner.quantiles_
    if hasattr(inner, "quantiles"):
        return check_levels(inner.quantiles)
    return None
