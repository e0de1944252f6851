"""Flexible aggregation of conditional quantile models (Fakoor et al., JMLR 2023).

The aggregate quantile at level tau is ``q(x; tau) = sum_j w_j(x, tau) q_j(x; tau)``
with convex weights (non-negative, summing to one over models), fitted by
minimising the mean pinball loss of the base models' out-of-fold quantiles:

* ``"global"`` (the paper's global-coarse): one weight per model;
* ``"per_quantile"`` (global-medium): one weight per model and level;
* ``"feature"`` (local-medium with a linear gate): ``w(x, tau) =
  softmax_j(b_{j tau} + z(x) . a_j)`` with standardised features ``z(x)``.

For "global" and "per_quantile" the softmax parametrisation of the paper and
the simplex constraint have the same optimum, and pinball loss plus the hinge
crossing penalty is piecewise linear, so we solve the equivalent linear
programme exactly with HiGHS instead of running SGD. The "feature" gate is not
convex; it is fitted with L-BFGS on a smoothed pinball loss (softplus
smoothing of width 0.01 on the standardised target), starting from the
"per_quantile" solution, with an L2 penalty on the slopes.

Quantiles are then made non-decreasing across levels by sorting or by
isotonic (PAVA) projection; both never increase the summed pinball loss
(Fakoor et al., Prop. 2; tested with hypothesis).
"""

import numbers
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import optimize, sparse
from scipy.special import expit, log_expit, logsumexp, softmax
from sklearn.base import RegressorMixin, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _num_samples, check_array, check_is_fitted, validate_data

from .._kernels import isotonic_rows
from ..metrics import pinball_loss
from ..utils import fill_doc
from ._base import (
    NamedEstimatorsMixin,
    check_meta_input,
    checked_cv,
    combine_input_tags,
    fit_estimator,
    is_frozen,
    out_of_fold,
    validate_named_estimators,
)
from ._quantile_adapters import (
    DEFAULT_QUANTILES,
    _check_predict_X,
    _predict_levels_arg,
    _QuantileModel,
    as_quantile_model,
    check_levels,
    declared_levels,
    match_levels,
)

__all__ = ["QuantileAggregator", "monotonize_quantiles"]

_SMOOTHING = 0.01  # softplus width of the smoothed pinball loss (standardised units)
_AGGREGATE_ROW = "aggregate"


def monotonize_quantiles(y_pred, method="sort", *, n_jobs=None):
    """Make predicted quantiles non-decreasing across levels.

    Both methods never increase the summed pinball loss of a row, for any
    outcome (Fakoor et al. 2023, Prop. 2; Chernozhukov et al. 2010 for
    sorting).

    Parameters
    ----------
    y_pred : array-like of shape (n_samples, n_levels)
        Predicted quantiles, columns in increasing level order.
    method : {"sort", "isotonic"}, default="sort"
        ``"sort"`` sorts each row (the rearrangement); ``"isotonic"``
        replaces each row by its least-squares non-decreasing fit (pool
        adjacent violators), which pools crossing levels to their mean.
    n_jobs : int, default=None
        Threads for the isotonic kernel (``None`` means 1).

    Returns
    -------
    y_mono : ndarray of shape (n_samples, n_levels)
        Non-decreasing rows.

    Examples
    --------
    >>> from weightstats.ensemble import monotonize_quantiles
    >>> monotonize_quantiles([[1.0, 3.0, 2.0]])
    array([[1., 2., 3.]])
    >>> monotonize_quantiles([[1.0, 3.0, 2.0]], method="isotonic")
    array([[1. , 2.5, 2.5]])
    """
    y_pred = check_array(y_pred, dtype=np.float64, input_name="y_pred")
    if method == "sort":
        return np.sort(y_pred, axis=1)
    if method == "isotonic":
        return isotonic_rows(y_pred, n_jobs=n_jobs)
    raise ValueError(f"method must be 'sort' or 'isotonic'; got {method!r}.")


def _standardise_target(y, v):
    """Centre (weighted median) and scale (weighted mean absolute deviation) of y."""
    order = np.argsort(y)
    cumulative = np.cumsum(v[order])
    center = float(y[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])
    scale = float(v @ np.abs(y - center) / v.sum())
    return center, (scale if scale > 0 else 1.0)


def _lp_weights(Q, y, v, levels, *, per_quantile, crossing_penalty):
    """Exact pinball-optimal simplex weights by linear programming (HiGHS).

    Q has shape (n, m, k), y (n,), v (n,) normalised to sum one.
    Returns weights of shape (m,) or (m, k).
    """
    n, m, k = Q.shape
    if per_quantile and crossing_penalty == 0.0 and k > 1:
        # Levels decouple: k small LPs instead of one large one.
        columns = [
            _lp_weights(Q[:, :, [t]], y, v, levels[[t]], per_quantile=False, crossing_penalty=0.0)
            for t in range(k)
        ]
        return np.column_stack(columns)
    n_w = m * k if per_quantile else m
    n_r = n * k
    n_c = n * (k - 1) if crossing_penalty > 0 and k > 1 else 0
    rows = np.arange(n_r)  # row (i, t) -> i * k + t
    # Weight block of the equality constraints: q_it = sum_j w_j(t) Q_ijt.
    if per_quantile:
        w_cols = (np.arange(m)[None, None, :] * k + np.arange(k)[None, :, None]).repeat(n, axis=0)
    else:
        w_cols = np.broadcast_to(np.arange(m)[None, None, :], (n, k, m))
    q_block = sparse.csr_array(
        (np.transpose(Q, (0, 2, 1)).ravel(), (np.repeat(rows, m), w_cols.ravel())),
        shape=(n_r, n_w),
    )
    eye = sparse.eye_array(n_r, format="csr")
    blocks = [q_block, eye, -eye]
    if n_c:
        blocks.append(sparse.csr_array((n_r, n_c)))
    A_eq = sparse.hstack(blocks, format="csr")
    b_eq = np.repeat(y, k)
    # Simplex rows.
    if per_quantile:
        simplex = sparse.csr_array(
            (np.ones(m * k), (np.tile(np.arange(k), m), np.arange(m * k))), shape=(k, n_w)
        )
    else:
        simplex = sparse.csr_array(np.ones((1, n_w)))
    simplex = sparse.hstack([simplex, sparse.csr_array((simplex.shape[0], 2 * n_r + n_c))])
    A_eq = sparse.vstack([A_eq, simplex], format="csr")
    b_eq = np.concatenate([b_eq, np.ones(simplex.shape[0])])
    tau = np.tile(levels, n)
    v_rows = np.repeat(v, k) / k
    cost = [np.zeros(n_w), v_rows * tau, v_rows * (1.0 - tau)]
    A_ub = b_ub = None
    if n_c:
        # q_it - q_i,t+1 - c_it <= 0 for adjacent levels.
        lower = (np.arange(n)[:, None] * k + np.arange(k - 1)[None, :]).ravel()
        diff = q_block[lower] - q_block[lower + 1]
        A_ub = sparse.hstack(
            [diff, sparse.csr_array((n_c, 2 * n_r)), -sparse.eye_array(n_c)], format="csr"
        )
        b_ub = np.zeros(n_c)
        cost.append(crossing_penalty * np.repeat(v, k - 1) / (k - 1))
    result = optimize.linprog(
        np.concatenate(cost), A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq,
        bounds=(0, None), method="highs",
    )
    if result.status != 0:
        raise RuntimeError(f"the weight LP failed: {result.message}")
    w = np.clip(result.x[:n_w], 0.0, None)
    w = w.reshape(m, k) if per_quantile else w
    return w / w.sum(axis=0, keepdims=True)


def _smooth_objective(params, Q, Z, y, v, levels, crossing_penalty, penalty, m, k):
    """Smoothed pinball (+ crossing) loss of the linear-softmax gate, and its gradient."""
    p = Z.shape[1]
    b = params[: m * k].reshape(m, k)
    A = params[m * k :].reshape(m, p)
    logits = b[None, :, :] + (Z @ A.T)[:, :, None]  # (n, m, k)
    S = softmax(logits, axis=1)
    q = np.einsum("imk,imk->ik", S, Q)
    u = (y[:, None] - q) / _SMOOTHING
    # rho_h(u) = tau u + h log(1 + exp(-u/h)); derivative in q: -(tau - expit(-u/h)).
    loss_terms = _SMOOTHING * (levels[None, :] * u - log_expit(u))
    vk = v[:, None] / k
    value = float(np.sum(vk * loss_terms))
    dq = -vk * (levels[None, :] - expit(-u))
    if crossing_penalty > 0 and k > 1:
        gap = (q[:, :-1] - q[:, 1:]) / _SMOOTHING
        vc = crossing_penalty * v[:, None] / (k - 1)
        value += float(np.sum(vc * _SMOOTHING * np.logaddexp(0.0, gap)))
        dgap = vc * expit(gap)
        dq[:, :-1] += dgap
        dq[:, 1:] -= dgap
    value += 0.5 * penalty * float(np.sum(A**2))
    G = S * (Q - q[:, None, :]) * dq[:, None, :]  # d value / d logits
    grad_b = G.sum(axis=0)
    grad_A = G.sum(axis=2).T @ Z + penalty * A
    return value, np.concatenate([grad_b.ravel(), grad_A.ravel()])


@fill_doc
class QuantileAggregator(_QuantileModel, RegressorMixin, NamedEstimatorsMixin):
    """Aggregate quantile models with pinball-optimal convex weights.

    Fits each base quantile model by cross-validation, learns convex weights
    (over models; optionally per level or as a function of the features) that
    minimise the mean pinball loss of the out-of-fold quantiles, refits the
    models on all data and makes the aggregated quantiles non-decreasing
    across levels. Follows Fakoor et al. (2023); see the
    :ref:`User Guide <quantile_aggregation>` for exactly what is implemented.

    Parameters
    ----------
    estimators : list of (str, quantile model)
        Base quantile models by name. Each is a dict ``{level: model}`` (see
        :class:`PerQuantileRegressor`), an estimator whose ``predict`` takes
        ``quantiles=[...]`` (see :class:`MultiQuantileRegressor`), one of
        those adapters, or another ``QuantileAggregator``; each must provide
        every level in ``quantiles``. Wrap prefit models in
        :class:`~sklearn.frozen.FrozenEstimator`.
    quantiles : array-like of float, default=(0.05, 0.1, ..., 0.95)
        The levels to aggregate, strictly increasing in (0, 1).
    weighting : {"global", "per_quantile", "feature"}, default="global"
        ``"global"``: one weight per model; ``"per_quantile"``: one per model
        and level; ``"feature"``: weights from a linear-softmax gate of the
        standardised features (numeric ``X`` only).
    monotone : {"sort", "isotonic"} or None, default="sort"
        How predictions are made non-decreasing across levels; ``None``
        leaves crossings.
    crossing_penalty : float, default=0.0
        Weight of the crossing penalty in training: ``crossing_penalty`` times
        the mean over rows and adjacent level pairs of ``(q_t - q_{t+1})_+``
        (in units of the target), added to the mean pinball loss.
    cv : int, cross-validation generator or iterable, default=5
        Out-of-fold scheme: an int is the number of
        :class:`~sklearn.model_selection.KFold` folds, not shuffled (as in
        :func:`~sklearn.model_selection.cross_val_predict`; pass
        ``KFold(n, shuffle=True, random_state=...)`` for data sorted in a
        meaningful order); a splitter must put every row in exactly one test
        fold.
    feature_penalty : float, default=0.01
        L2 penalty on the gate slopes (``weighting="feature"`` only), relative
        to the mean pinball loss of the standardised target.
    {n_jobs}
        Cross-validation fits run in parallel over (model, fold) pairs.

    Attributes
    ----------
    estimators_ : list of quantile models
        The base models refitted on all data (adapters), in input order.
    named_estimators_ : :class:`~sklearn.utils.Bunch`
        The same, by name.
    quantiles_ : ndarray of shape (n_levels,)
        The levels.
    weights_ : pandas.Series or pandas.DataFrame
        ``"global"``: a Series of weights by model; ``"per_quantile"``: a
        DataFrame (models x levels); ``"feature"``: the gate's mean weights
        over the training rows (models x levels).
    coef_ : ndarray of shape (n_models,) or (n_models, n_levels)
        The weights as an array (``"global"``, ``"per_quantile"``) or the
        gate intercepts' softmax at the training mean (``"feature"``).
    gate_intercept_ : ndarray of shape (n_models, n_levels)
        Gate logits at the mean of the features (``"feature"`` only).
    gate_coef_ : ndarray of shape (n_models, n_features)
        Gate slopes on the standardised features (``"feature"`` only).
    cv_predictions_ : ndarray of shape (n_samples, n_models, n_levels)
        Out-of-fold quantiles of the base models.
    score_table_ : pandas.DataFrame
        Out-of-fold mean pinball loss per level (columns) of each model and
        of the aggregate (after monotonisation). The aggregate row uses the
        weights fitted on the same predictions, so it is optimistic.
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    weightstats.conformal.ConformalQuantileRegressor : Calibrate the aggregate's
        intervals.

    References
    ----------
    .. [1] Fakoor, R., Kim, T., Mueller, J., Smola, A. J. and Tibshirani, R. J.
       (2023). Flexible model aggregation for quantile regression. Journal of
       Machine Learning Research 24(162), 1-45.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import QuantileRegressor
    >>> from sklearn.ensemble import GradientBoostingRegressor
    >>> from weightstats.ensemble import PerQuantileRegressor, QuantileAggregator
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 3, (300, 1))
    >>> y = np.sin(2 * X[:, 0]) + (0.2 + 0.2 * X[:, 0]) * rng.standard_normal(300)
    >>> levels = [0.1, 0.5, 0.9]
    >>> linear = PerQuantileRegressor.from_estimator(QuantileRegressor(alpha=0.0), levels)
    >>> boosted = PerQuantileRegressor.from_estimator(
    ...     GradientBoostingRegressor(loss="quantile", n_estimators=50, max_depth=2), levels
    ... )
    >>> agg = QuantileAggregator([("linear", linear), ("gbm", boosted)],
    ...                          quantiles=levels).fit(X, y)
    >>> agg.weights_.round(2)
    linear    0.0
    gbm       1.0
    Name: weight, dtype: float64
    >>> agg.predict(X[:2]).shape
    (2, 3)
    """

    _parameter_constraints = {
        "estimators": [list],
        "quantiles": ["array-like"],
        "weighting": [StrOptions({"global", "per_quantile", "feature"})],
        "monotone": [StrOptions({"sort", "isotonic"}), None],
        "crossing_penalty": [Interval(numbers.Real, 0, None, closed="left")],
        "cv": ["cv_object"],
        "feature_penalty": [Interval(numbers.Real, 0, None, closed="left")],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(self, estimators, *, quantiles=DEFAULT_QUANTILES, weighting="global",
                 monotone="sort", crossing_penalty=0.0, cv=5, feature_penalty=0.01,
                 n_jobs=None):
        self.estimators = estimators
        self.quantiles = quantiles
        self.weighting = weighting
        self.monotone = monotone
        self.crossing_penalty = crossing_penalty
        self.cv = cv
        self.feature_penalty = feature_penalty
        self.n_jobs = n_jobs

    def _models(self, levels):
        names, raw = validate_named_estimators(
            self.estimators, owner="QuantileAggregator", methods=()
        )
        models = []
        for name, model in zip(names, raw, strict=True):
            model = as_quantile_model(model, owner="QuantileAggregator", name=name)
            available = declared_levels(model)
            if available is not None:
                match_levels(levels, available, owner=f"QuantileAggregator estimator {name!r}")
            models.append(model)
        return names, models

    @fill_doc
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Fit the base models, the aggregation weights and refit on all data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, passed unchanged to the base models (numeric for
            ``weighting="feature"``).
        y : array-like of shape (n_samples,)
            Target values.
        {sample_weight}
            Weights of the pinball loss that the aggregation weights
            minimise, and passed to every base model that accepts
            ``sample_weight``; a model that does not is fitted without it,
            with a warning from its adapter.

        Returns
        -------
        self : QuantileAggregator
            The fitted aggregator.
        """
        levels = check_levels(self.quantiles)
        names, models = self._models(levels)
        X, y, sample_weight = check_meta_input(X, y, sample_weight)
        validate_data(self, X, skip_check_array=True, reset=True)
        if self.weighting == "feature":
            Z = check_array(X, dtype=np.float64, input_name="X")
        cv = checked_cv(self.cv, y)

        def predict(model, X_part):
            return model.predict(X_part, quantiles=levels)

        oof = out_of_fold(models, X, y, sample_weight, cv=cv, predict=predict, n_jobs=self.n_jobs)
        Q = np.stack(oof, axis=1)  # (n, m, k)
        v = np.ones_like(y) if sample_weight is None else sample_weight
        keep = v > 0
        center, scale = _standardise_target(y[keep], v[keep])
        Qs, ys, vs = (Q[keep] - center) / scale, (y[keep] - center) / scale, v[keep] / v[keep].sum()
        penalty = self.crossing_penalty / scale  # the penalty is in target units

        per_level = _lp_weights(Qs, ys, vs, levels, per_quantile=self.weighting != "global",
                                crossing_penalty=penalty)
        if self.weighting == "feature":
            self._fit_gate(Qs, Z[keep], ys, vs, levels, penalty, per_level, Z, v)
        else:
            self.coef_ = per_level

        self.estimators_ = Parallel(n_jobs=self.n_jobs)(
            delayed(fit_estimator)(model if is_frozen(model) else clone(model), X, y,
                                   sample_weight)
            for model in models
        )
        self.model_names_ = np.asarray(names, dtype=object)
        self.quantiles_ = levels
        self.cv_predictions_ = Q
        aggregate = self._combine(Q, Z if self.weighting == "feature" else None)
        if self.monotone is not None:
            aggregate = monotonize_quantiles(aggregate, self.monotone)
        self.cv_pinball_ = np.vstack([
            pinball_loss(y, predictions, levels, sample_weight=v)
            for predictions in (*np.moveaxis(Q, 1, 0), aggregate)
        ])
        return self

    def _fit_gate(self, Qs, Zk, ys, vs, levels, penalty, per_level, Z, v):
        m, k = per_level.shape
        mean = (v / v.sum()) @ Z
        sd = np.sqrt((v / v.sum()) @ (Z - mean) ** 2)
        sd[sd == 0] = 1.0
        self.gate_mean_, self.gate_scale_ = mean, sd
        Zs = (Zk - mean) / sd
        b0 = np.log(np.maximum(per_level, 1e-3))
        start = np.concatenate([b0.ravel(), np.zeros(m * Zs.shape[1])])
        result = optimize.minimize(
            _smooth_objective, start, jac=True, method="L-BFGS-B",
            args=(Qs, Zs, ys, vs, levels, penalty, self.feature_penalty, m, k),
            options={"maxiter": 500, "gtol": 1e-8},
        )
        if not result.success and result.nit >= 500:
            warnings.warn(
                f"the feature gate did not converge in 500 iterations (gradient norm "
                f"{np.linalg.norm(result.jac):.2e}); the weights may be suboptimal.",
                ConvergenceWarning, stacklevel=3,
            )
        self.gate_intercept_ = result.x[: m * k].reshape(m, k)
        self.gate_intercept_ = self.gate_intercept_ - logsumexp(
            self.gate_intercept_, axis=0, keepdims=True
        )
        self.gate_coef_ = result.x[m * k :].reshape(m, -1)
        self.coef_ = softmax(self.gate_intercept_, axis=0)
        self.mean_weights_ = np.einsum("i,imk->mk", v / v.sum(), self._gate_weights(Z))

    def _gate_weights(self, Z):
        Zs = (Z - self.gate_mean_) / self.gate_scale_
        logits = self.gate_intercept_[None, :, :] + (Zs @ self.gate_coef_.T)[:, :, None]
        return softmax(logits, axis=1)

    def _combine(self, Q, Z=None):
        if self.weighting == "global":
            return np.einsum("imk,m->ik", Q, self.coef_)
        if self.weighting == "per_quantile":
            return np.einsum("imk,mk->ik", Q, self.coef_)
        return np.einsum("imk,imk->ik", Q, self._gate_weights(Z))

    def predict_weights(self, X):
        """Aggregation weights for each row, model and level.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data (only used by ``weighting="feature"``).

        Returns
        -------
        weights : ndarray of shape (n_samples, n_models, n_levels)
            Non-negative weights that sum to one over models.
        """
        _check_predict_X(self, X)
        n_samples = _num_samples(X)
        m, k = len(self.estimators_), self.quantiles_.shape[0]
        if self.weighting == "feature":
            return self._gate_weights(check_array(X, dtype=np.float64, input_name="X"))
        coef = self.coef_[:, None] if self.weighting == "global" else self.coef_
        return np.broadcast_to(coef, (n_samples, m, k)).copy()

    def predict(self, X, quantiles=None):
        """Predict aggregated (and monotonised) quantiles.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.
        quantiles : float or array-like of float, default=None
            Levels to return, among ``quantiles_``; ``None`` means all.
            Monotonisation is applied over all fitted levels first.

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_levels) or (n_samples,)
            One column per level; 1-d when ``quantiles`` is a float.
        """
        _check_predict_X(self, X)
        levels, scalar = _predict_levels_arg(quantiles, self.quantiles_)
        index = match_levels(levels, self.quantiles_, owner="QuantileAggregator")
        Q = np.stack(
            [model.predict(X, quantiles=self.quantiles_) for model in self.estimators_], axis=1
        )
        Z = check_array(X, dtype=np.float64) if self.weighting == "feature" else None
        aggregate = self._combine(Q, Z)
        if self.monotone is not None:
            aggregate = monotonize_quantiles(aggregate, self.monotone)
        aggregate = aggregate[:, index]
        return aggregate[:, 0] if scalar else aggregate

    @property
    def weights_(self):
        """The aggregation weights as pandas objects (see the class docstring)."""
        check_is_fitted(self, "coef_")
        names = list(self.model_names_)
        if self.weighting == "global":
            return pd.Series(self.coef_, index=names, name="weight")
        values = self.mean_weights_ if self.weighting == "feature" else self.coef_
        return pd.DataFrame(values, index=pd.Index(names, name="model"),
                            columns=pd.Index(self.quantiles_, name="quantile"))

    @property
    def score_table_(self):
        """Out-of-fold mean pinball loss per level of each model and the aggregate."""
        check_is_fitted(self, "cv_pinball_")
        index = pd.Index([*self.model_names_, _AGGREGATE_ROW], name="model")
        return pd.DataFrame(self.cv_pinball_, index=index,
                            columns=pd.Index(self.quantiles_, name="quantile"))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        estimators = self.estimators if isinstance(self.estimators, list) else []
        try:
            models = [(n, as_quantile_model(e, owner="")) for n, e in estimators]
        except Exception:
            models = estimators
        tags = combine_input_tags(tags, [(n, e) for n, e in models])
        if self.weighting == "feature":
            tags.input_tags.allow_nan = False
            tags.input_tags.sparse = False
        return tags
