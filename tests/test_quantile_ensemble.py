"""Quantile adapters, monotonisation and QuantileAggregator."""

import cvxpy as cp
import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import QuantileRegressor, Ridge
from sklearn.model_selection import KFold, train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from weightstats.conformal import ConformalQuantileRegressor
from weightstats.ensemble import (
    MultiQuantileRegressor,
    PerQuantileRegressor,
    QuantileAggregator,
    monotonize_quantiles,
)
from weightstats.ensemble._quantile_aggregation import _lp_weights
from weightstats.metrics import pinball_loss, quantile_crossing_rate

from ._quantile_models import KNeighborsQuantileRegressor
from .strategies import finite_floats

LEVELS = (0.1, 0.25, 0.5, 0.75, 0.9)


def _data(seed=0, n=200):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 3, (n, 2))
    y = np.sin(2 * X[:, 0]) + X[:, 1] + (0.2 + 0.3 * X[:, 0]) * rng.standard_normal(n)
    return X, y


def _models(levels=LEVELS):
    return [
        ("linear", {q: QuantileRegressor(quantile=q, alpha=0.0) for q in levels}),
        ("knn", KNeighborsQuantileRegressor(n_neighbors=15)),
    ]


# --- adapters ------------------------------------------------------------------


def test_per_quantile_from_estimator_detects_the_level_parameter():
    for template, param in [
        (QuantileRegressor(alpha=0.0), "quantile"),
        (GradientBoostingRegressor(loss="quantile"), "alpha"),
        (HistGradientBoostingRegressor(loss="quantile"), "quantile"),
    ]:
        model = PerQuantileRegressor.from_estimator(template, quantiles=[0.2, 0.8])
        assert [est.get_params()[param] for est in model.estimators.values()] == [0.2, 0.8]
    with pytest.raises(ValueError, match="loss='quantile'"):
        PerQuantileRegressor.from_estimator(HistGradientBoostingRegressor(), [0.5])
    with pytest.raises(ValueError, match="param="):
        PerQuantileRegressor.from_estimator(Ridge(), [0.5])


class _LGBMLike(Ridge):
    """Stands in for LightGBM's LGBMRegressor (objective="quantile", alpha=level)."""

    def __init__(self, objective="quantile", alpha=0.5):
        super().__init__()
        self.objective = objective
        self.alpha = alpha


@pytest.mark.parametrize(
    "model, match",
    [
        (GradientBoostingRegressor(loss="quantile", alpha=0.1), r"has alpha=0.1, so it fits the "
                                                                r"0.1 quantile, not the 0.9"),
        (QuantileRegressor(quantile=0.1), "has quantile=0.1"),
        (HistGradientBoostingRegressor(loss="quantile", quantile=0.5), "has quantile=0.5"),
        (_LGBMLike(alpha=0.1), "has alpha=0.1"),
        (make_pipeline(StandardScaler(), QuantileRegressor(quantile=0.1)), "has quantile=0.1"),
        (FrozenEstimator(QuantileRegressor(quantile=0.1).fit([[0.0], [1.0]], [0.0, 1.0])),
         "has quantile=0.1"),
        (GradientBoostingRegressor(loss="absolute_error"), "median loss"),
        (GradientBoostingRegressor(), "loss='squared_error', which does not fit a quantile"),
        (_LGBMLike(objective="regression"), "objective='regression'"),
    ],
    ids=["gbr", "linear", "hgb", "lightgbm", "pipeline", "frozen", "median", "mean", "lgb-mean"],
)
def test_per_quantile_refuses_a_model_set_to_another_level(model, match):
    """{0.9: GradientBoostingRegressor(loss="quantile", alpha=0.1)} used to be accepted."""
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        PerQuantileRegressor({0.5: QuantileRegressor(quantile=0.5), 0.9: model}).fit(X, y)
    # ... and so do the meta-estimators, before fitting anything.
    with pytest.raises(ValueError, match=match):
        QuantileAggregator([("m", {0.5: QuantileRegressor(quantile=0.5), 0.9: model})],
                           quantiles=[0.5, 0.9]).fit(X, y)
    with pytest.raises(ValueError, match=match):
        ConformalQuantileRegressor({0.1: QuantileRegressor(quantile=0.1), 0.9: model},
                                   confidence_level=0.8).fit(X, y)


def test_per_quantile_accepts_matching_and_silent_levels():
    X, y = _data()
    models = {0.1: _LGBMLike(alpha=0.1), 0.5: GradientBoostingRegressor(loss="absolute_error"),
              0.9: KNeighborsRegressor()}  # kNN does not state a level: nothing to check
    assert PerQuantileRegressor(models).fit(X, y).predict(X[:2]).shape == (2, 3)


def test_base_models_without_sample_weight_are_fitted_unweighted_with_a_warning():
    X, y = _data()
    w = np.random.default_rng(0).uniform(0.5, 2.0, y.size)
    models = {0.5: QuantileRegressor(quantile=0.5, alpha=0.0), 0.9: KNeighborsRegressor()}
    with pytest.warns(UserWarning, match=r"'level 0.9' \(KNeighborsRegressor\) does not accept "
                                         r"sample_weight"):
        fitted = PerQuantileRegressor(models).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(
        fitted.estimators_[0].coef_,
        QuantileRegressor(quantile=0.5, alpha=0.0).fit(X, y, sample_weight=w).coef_,
    )
    with pytest.warns(UserWarning, match="'estimator' .* fitted without it"):
        MultiQuantileRegressor(_NoWeights(), quantiles=[0.5]).fit(X, y, sample_weight=w)
    with pytest.warns(UserWarning, match="does not accept sample_weight"):
        QuantileAggregator([("m", models)], quantiles=[0.5, 0.9], cv=3).fit(
            X, y, sample_weight=w)


class _NoWeights(KNeighborsQuantileRegressor):
    def fit(self, X, y):
        return super().fit(X, y)


def test_cv_int_means_unshuffled_kfold():
    """One convention for the ensembles and CQR: cv=k is KFold(k), as cross_val_predict."""
    X, y = _data()
    agg = QuantileAggregator(_models(), quantiles=LEVELS, cv=3).fit(X, y)
    knn = np.empty((y.size, len(LEVELS)))
    for train, test in KFold(3).split(X):
        knn[test] = KNeighborsQuantileRegressor(n_neighbors=15).fit(X[train], y[train]).predict(
            X[test], LEVELS)
    np.testing.assert_allclose(agg.cv_predictions_[:, 1, :], knn)
    assert "random_state" not in agg.get_params()


def test_score_table_uses_the_metrics_pinball_loss(monkeypatch):
    """The out-of-fold scores come from weightstats.metrics.pinball_loss (no second copy)."""
    from weightstats.ensemble import _quantile_aggregation

    calls = []

    def spy(y_true, y_pred, quantiles, **kwargs):
        calls.append(np.asarray(y_pred))
        return pinball_loss(y_true, y_pred, quantiles, **kwargs)

    monkeypatch.setattr(_quantile_aggregation, "pinball_loss", spy)
    X, y = _data()
    w = np.random.default_rng(1).uniform(0.5, 2.0, y.size)
    agg = QuantileAggregator(_models(), quantiles=LEVELS, cv=3).fit(X, y, sample_weight=w)
    assert len(calls) == 3  # two models and the aggregate
    table = agg.score_table_.to_numpy()
    np.testing.assert_allclose(table[0], pinball_loss(y, agg.cv_predictions_[:, 0], LEVELS,
                                                      sample_weight=w))


def test_per_quantile_predicts_requested_levels_in_order():
    X, y = _data()
    model = PerQuantileRegressor(dict(reversed(_models()[0][1].items()))).fit(X, y)
    np.testing.assert_allclose(model.quantiles_, LEVELS)
    full = model.predict(X[:5])
    np.testing.assert_allclose(model.predict(X[:5], quantiles=[0.25, 0.9]), full[:, [1, 4]])
    np.testing.assert_allclose(model.predict(X[:5], quantiles=0.5), full[:, 2])
    with pytest.raises(ValueError, match=r"\[0.05\] is missing"):
        model.predict(X[:5], quantiles=[0.05, 0.5])
    assert -1 < model.score(X, y) <= 1


def test_multi_quantile_adapter_wraps_any_level_estimator():
    X, y = _data()
    inner = KNeighborsQuantileRegressor(10)
    model = MultiQuantileRegressor(inner, quantiles=LEVELS).fit(X, y)
    np.testing.assert_allclose(model.predict(X[:4]), inner.fit(X, y).predict(X[:4], LEVELS))
    assert model.predict(X[:4], quantiles=0.33).shape == (4,)
    with pytest.raises(TypeError, match="PerQuantileRegressor"):
        MultiQuantileRegressor(Ridge()).fit(X, y)


@pytest.mark.requires("quantile_forest")
def test_quantile_forest_through_the_adapter():
    from quantile_forest import RandomForestQuantileRegressor

    X, y = _data()
    qrf = RandomForestQuantileRegressor(n_estimators=20, random_state=0)
    model = MultiQuantileRegressor(qrf, quantiles=LEVELS).fit(X, y)
    np.testing.assert_allclose(model.predict(X[:3]),
                               model.estimator_.predict(X[:3], quantiles=list(LEVELS)))
    agg = QuantileAggregator([("qrf", qrf), ("knn", KNeighborsQuantileRegressor())],
                             quantiles=LEVELS, cv=3).fit(X, y)
    assert agg.predict(X[:3]).shape == (3, 5)


@pytest.mark.parametrize(
    "quantiles, match",
    [((0.5, 0.1), "increasing"), ((0.0, 0.5), "between 0 and 1"), ((0.5, 1.2), "between 0 and 1"),
     ((0.5, 0.5), "increasing"), ((), "non-empty")],
)
def test_bad_levels_raise(quantiles, match):
    X, y = _data(n=40)
    with pytest.raises(ValueError, match=match):
        QuantileAggregator(_models(), quantiles=quantiles).fit(X, y)
    with pytest.raises(ValueError, match=match):
        MultiQuantileRegressor(KNeighborsQuantileRegressor(), quantiles=quantiles).fit(X, y)


def test_bad_base_models_raise():
    X, y = _data(n=40)
    with pytest.raises(TypeError, match="does not predict quantiles"):
        QuantileAggregator([("ridge", Ridge())], quantiles=LEVELS).fit(X, y)
    with pytest.raises(ValueError, match=r"\[0.25, 0.75\] are missing"):
        QuantileAggregator(
            [("linear", {q: QuantileRegressor(quantile=q) for q in (0.1, 0.5, 0.9)})],
            quantiles=LEVELS,
        ).fit(X, y)
    with pytest.raises(ValueError, match="unique"):
        QuantileAggregator([("a", KNeighborsQuantileRegressor())] * 2).fit(X, y)
    with pytest.raises(TypeError, match="fit and predict"):
        PerQuantileRegressor({0.5: "not a model"}).fit(X, y)


# --- monotonisation ------------------------------------------------------------


@st.composite
def _quantile_rows(draw):
    k = draw(st.integers(2, 9))
    levels = np.sort(draw(hnp.arrays(np.float64, k, elements=st.floats(0.01, 0.99),
                                     unique=True)))
    q = draw(hnp.arrays(np.float64, (draw(st.integers(1, 5)), k), elements=finite_floats(-50, 50)))
    y = draw(hnp.arrays(np.float64, q.shape[0], elements=finite_floats(-60, 60)))
    return levels, q, y


def _summed_pinball(y, q, levels):
    u = y[:, None] - q
    return np.maximum(levels * u, (levels - 1) * u).sum(axis=1)


@pytest.mark.parametrize("method", ["sort", "isotonic"])
@given(case=_quantile_rows())
def test_monotonisation_never_increases_pinball_loss(method, case):
    """Fakoor et al. Prop. 2: row by row, for every outcome y."""
    levels, q, y = case
    mono = monotonize_quantiles(q, method)
    assert np.all(np.diff(mono, axis=1) >= -1e-9)
    before = _summed_pinball(y, q, levels)
    after = _summed_pinball(y, mono, levels)
    assert np.all(after <= before + 1e-9 * (1 + np.abs(before)))
    np.testing.assert_allclose(monotonize_quantiles(mono, method), mono, atol=1e-9)


# --- weights -------------------------------------------------------------------


def _cvxpy_pinball_weights(Q, y, v, levels, per_quantile, penalty):
    n, m, k = Q.shape
    W = cp.Variable((m, k)) if per_quantile else cp.Variable(m)
    cols = []
    for t in range(k):
        w = W[:, t] if per_quantile else W
        cols.append(Q[:, :, t] @ w)
    loss = 0
    for t in range(k):
        u = y - cols[t]
        loss += v @ (levels[t] * cp.pos(u) + (1 - levels[t]) * cp.pos(-u)) / k
    for t in range(k - 1):
        loss += penalty * v @ cp.pos(cols[t] - cols[t + 1]) / (k - 1)
    cons = [W >= 0, cp.sum(W, axis=0) == 1] if per_quantile else [W >= 0, cp.sum(W) == 1]
    problem = cp.Problem(cp.Minimize(loss), cons)
    problem.solve(solver="CLARABEL")
    return problem.value


def _lp_objective(w, Q, y, v, levels, penalty):
    k = Q.shape[2]
    q = np.einsum("imk,mk->ik", Q, w if w.ndim == 2 else np.repeat(w[:, None], k, axis=1))
    u = y[:, None] - q
    value = v @ np.maximum(levels * u, (levels - 1) * u).sum(axis=1) / k
    value += penalty * v @ np.maximum(q[:, :-1] - q[:, 1:], 0).sum(axis=1) / (k - 1)
    return value


@pytest.mark.parametrize("per_quantile", [False, True])
@pytest.mark.parametrize("penalty", [0.0, 2.0])
def test_lp_weights_are_pinball_optimal(per_quantile, penalty):
    rng = np.random.default_rng(1)
    n, m, k = 120, 3, 4
    levels = np.array([0.1, 0.4, 0.6, 0.9])
    y = rng.standard_normal(n)
    Q = y[:, None, None] + rng.standard_normal((n, m, k)) * np.array([0.5, 1.0, 2.0])[None, :, None]
    Q += np.linspace(-1, 1, k)[None, None, :] * rng.uniform(0.2, 1.5, m)[None, :, None]
    v = rng.uniform(0.5, 2, n)
    v /= v.sum()
    w = _lp_weights(Q, y, v, levels, per_quantile=per_quantile, crossing_penalty=penalty)
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(axis=0), 1.0)
    ours = _lp_objective(w, Q, y, v, levels, penalty)
    reference = _cvxpy_pinball_weights(Q, y, v, levels, per_quantile, penalty)
    assert ours == pytest.approx(reference, rel=1e-7)


def test_lp_beats_softmax_weights_found_by_scipy():
    """The softmax parametrisation of the paper has the same optimum; a generic
    scipy minimiser of the nonsmooth loss gets no lower than the LP."""
    from scipy.optimize import minimize
    from scipy.special import softmax

    rng = np.random.default_rng(2)
    n, m, k = 150, 3, 3
    levels = np.array([0.1, 0.5, 0.9])
    y = rng.standard_normal(n)
    Q = y[:, None, None] + rng.standard_normal((n, m, k)) + np.array([-1.3, 0, 1.3])
    v = np.full(n, 1.0 / n)
    lp = _lp_objective(_lp_weights(Q, y, v, levels, per_quantile=False, crossing_penalty=0.0),
                       Q, y, v, levels, 0.0)
    res = minimize(lambda z: _lp_objective(softmax(z), Q, y, v, levels, 0.0), np.zeros(m),
                   method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12})
    assert lp <= res.fun + 1e-12


def test_aggregator_weights_and_monotone_predictions():
    X, y = _data()
    for weighting in ("global", "per_quantile", "feature"):
        agg = QuantileAggregator(_models(), quantiles=LEVELS, weighting=weighting,
                                 cv=4).fit(X, y)
        weights = agg.predict_weights(X[:10])
        assert weights.shape == (10, 2, 5)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0)
        pred = agg.predict(X)
        assert quantile_crossing_rate(pred) == 0.0
        np.testing.assert_allclose(agg.predict(X[:4], quantiles=[0.5, 0.9]), pred[:4, [2, 4]])
        # Aggregated out-of-fold pinball loss is no worse than the best model's
        # on average (the weights minimise it, up to the monotonisation step).
        table = agg.score_table_
        best_model = table.drop(index="aggregate").mean(axis=1).min()
        assert table.loc["aggregate"].mean() <= best_model + 1e-9
    assert agg.weights_.shape == (2, 5)
    assert np.ptp(weights, axis=0).max() > 0.01  # "feature" weights vary over rows


def test_crossing_penalty_reduces_raw_crossings():
    X, y = _data(3, n=120)
    base = [("gbm", PerQuantileRegressor.from_estimator(
        GradientBoostingRegressor(loss="quantile", n_estimators=15, max_depth=2, random_state=0),
        LEVELS)), ("knn", KNeighborsQuantileRegressor(5))]
    raw = {}
    for penalty in (0.0, 5.0):
        agg = QuantileAggregator(base, quantiles=LEVELS, weighting="per_quantile", monotone=None,
                                 crossing_penalty=penalty, cv=3).fit(X, y)
        Q = agg.cv_predictions_
        raw[penalty] = quantile_crossing_rate(np.einsum("imk,mk->ik", Q, agg.coef_))
    assert raw[5.0] < raw[0.0]


def test_integer_sample_weights_equal_repeated_rows():
    X, y = _data(4, n=80)
    counts = np.random.default_rng(4).integers(1, 4, 80)
    folds = np.arange(80) % 3
    split = lambda f: [(np.flatnonzero(f != k), np.flatnonzero(f == k)) for k in range(3)]  # noqa: E731
    models = [("knn5", KNeighborsQuantileRegressor(5)), ("knn20", KNeighborsQuantileRegressor(20))]
    weighted = QuantileAggregator(models, quantiles=LEVELS, weighting="per_quantile",
                                  cv=split(folds)).fit(X, y, sample_weight=counts)
    repeated = QuantileAggregator(models, quantiles=LEVELS, weighting="per_quantile",
                                  cv=split(np.repeat(folds, counts))).fit(
        np.repeat(X, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), atol=1e-9)


def test_frozen_base_models_are_used_as_given():
    X, y = _data(5)
    prefit = PerQuantileRegressor(_models()[0][1]).fit(X[:100], y[:100])
    agg = QuantileAggregator([("prefit", FrozenEstimator(prefit)),
                              ("knn", KNeighborsQuantileRegressor())],
                             quantiles=LEVELS, cv=3).fit(X[100:], y[100:])
    np.testing.assert_allclose(agg.cv_predictions_[:, 0, :], prefit.predict(X[100:]))
    assert agg.named_estimators_["prefit"].estimator is prefit


# --- acceptance (i): diabetes and engel -------------------------------------------

ACCEPTANCE_LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def _acceptance(X, y, n_splits):
    from quantile_forest import RandomForestQuantileRegressor

    losses = {}
    for seed in range(n_splits):
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed)
        models = [
            ("linear", {q: QuantileRegressor(quantile=q, alpha=0.0) for q in ACCEPTANCE_LEVELS}),
            ("knn", KNeighborsQuantileRegressor(n_neighbors=20)),
            ("qrf", RandomForestQuantileRegressor(n_estimators=50, min_samples_leaf=5,
                                                  random_state=0)),
        ]
        agg = QuantileAggregator(models, quantiles=ACCEPTANCE_LEVELS, weighting="per_quantile",
                                 monotone="sort").fit(X_tr, y_tr)
        pred = agg.predict(X_te)
        assert quantile_crossing_rate(pred) == 0.0
        losses.setdefault("aggregate", []).append(pinball_loss(y_te, pred, ACCEPTANCE_LEVELS))
        for name, model in agg.named_estimators_.items():
            base = model.predict(X_te, quantiles=ACCEPTANCE_LEVELS)
            losses.setdefault(name, []).append(pinball_loss(y_te, base, ACCEPTANCE_LEVELS))
    return {name: np.mean(values, axis=0) for name, values in losses.items()}


def _assert_aggregate_wins(mean_losses):
    aggregate = mean_losses.pop("aggregate")
    for name, base in mean_losses.items():
        # Lower than this base model on most levels, and on the level average.
        assert np.sum(aggregate < base) >= 4, (name, aggregate, base)
        assert aggregate.mean() < base.mean(), name


@pytest.mark.slow
@pytest.mark.requires("quantile_forest")
def test_acceptance_diabetes():
    X, y = load_diabetes(return_X_y=True)
    _assert_aggregate_wins(_acceptance(X, y, n_splits=6))


@pytest.mark.slow
@pytest.mark.requires("quantile_forest")
def test_acceptance_engel():
    engel = sm.datasets.engel.load_pandas().data
    _assert_aggregate_wins(_acceptance(engel[["income"]].to_numpy(), engel["foodexp"].to_numpy(),
                                       n_splits=6))
