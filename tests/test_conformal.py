"""ConformalQuantileRegressor: order statistics, calibration, errors and coverage."""

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import QuantileRegressor
from sklearn.model_selection import KFold, train_test_split

from weightstats.conformal import ConformalQuantileRegressor
from weightstats.conformal._cqr import _conformal_quantile
from weightstats.ensemble import PerQuantileRegressor, QuantileAggregator
from weightstats.metrics import interval_coverage

from ._quantile_models import KNeighborsQuantileRegressor


def _linear(levels=(0.05, 0.5, 0.95)):
    return {q: QuantileRegressor(quantile=q, alpha=0.0) for q in levels}


def _hetero_linear(n, rng):
    """Synthetic design A: linear mean, noise sd growing linearly with x."""
    X = rng.uniform(0, 10, (n, 1))
    return X, 2.0 + 0.5 * X[:, 0] + (0.2 + 0.3 * X[:, 0]) * rng.standard_normal(n)


def _hetero_nonlinear(n, rng):
    """Synthetic design B: nonlinear mean in 3 features, skewed heavy-tailed noise
    whose scale depends on x."""
    X = rng.uniform(-2, 2, (n, 3))
    scale = 0.3 + np.abs(X[:, 0]) + 0.5 * (X[:, 1] > 0)
    noise = rng.standard_t(3, n) + rng.exponential(1.0, n)
    return X, np.sin(2 * X[:, 0]) + X[:, 1] ** 2 - X[:, 2] + scale * noise


# --- order statistics ----------------------------------------------------------


@given(
    scores=hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-100, 100)),
    level=st.floats(0.05, 0.99),
)
def test_conformal_quantile_is_the_ceil_rank_order_statistic(scores, level):
    n = scores.shape[0]
    rank = int(np.ceil(round(level * (n + 1), 9)))
    expected = np.inf if rank > n else np.sort(scores)[rank - 1]
    assert _conformal_quantile(scores, np.ones(n), level) == expected


@given(
    scores=hnp.arrays(np.float64, st.integers(1, 15), elements=st.floats(-100, 100)),
    data=st.data(),
    level=st.floats(0.05, 0.95),
)
def test_integer_weights_equal_repeated_scores(scores, data, level):
    counts = data.draw(hnp.arrays(np.int64, scores.shape[0], elements=st.integers(0, 4)))
    if counts.sum() == 0:
        counts[0] = 1
    weighted = _conformal_quantile(scores, counts.astype(float), level)
    repeated = _conformal_quantile(np.repeat(scores, counts), np.ones(counts.sum()), level)
    assert weighted == repeated


# --- split CQR -----------------------------------------------------------------


def test_split_cqr_matches_romano_by_hand():
    rng = np.random.default_rng(0)
    X, y = _hetero_linear(300, rng)
    cqr = ConformalQuantileRegressor(_linear(), confidence_level=0.8)  # levels 0.1, 0.9
    with pytest.raises(ValueError, match=r"\[0.1, 0.9\].*missing"):
        cqr.fit(X[:100], y[:100])
    cqr = ConformalQuantileRegressor(_linear((0.1, 0.5, 0.9)), confidence_level=0.8)
    cqr.fit(X[:100], y[:100]).conformalize(X[100:200], y[100:200])
    base = cqr.estimator_
    lo, hi = base.predict(X[100:200], quantiles=[0.1, 0.9]).T
    scores = np.maximum(lo - y[100:200], y[100:200] - hi)
    q = np.sort(scores)[int(np.ceil(0.8 * 101)) - 1]
    assert cqr.corrections_[0] == pytest.approx(q)
    lo_t, hi_t = base.predict(X[200:], quantiles=[0.1, 0.9]).T
    intervals = cqr.predict_interval(X[200:])
    np.testing.assert_allclose(intervals[:, 0, 0], lo_t - q)
    np.testing.assert_allclose(intervals[:, 1, 0], hi_t + q)
    np.testing.assert_allclose(cqr.predict(X[200:]), base.predict(X[200:], quantiles=0.5))


def test_only_the_needed_levels_are_fitted_and_intervals_nest():
    rng = np.random.default_rng(1)
    X, y = _hetero_linear(400, rng)
    levels = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
    cqr = ConformalQuantileRegressor(_linear(levels), confidence_level=[0.9, 0.5])
    cqr.fit(X[:200], y[:200]).conformalize(X[200:300], y[200:300])
    np.testing.assert_allclose(cqr.estimator_.quantiles_, [0.05, 0.25, 0.5, 0.75, 0.95])
    intervals = cqr.predict_interval(X[300:])
    assert intervals.shape == (100, 2, 2)
    assert np.all(intervals[:, 0, 0] <= intervals[:, 0, 1])
    assert np.all(intervals[:, 1, 0] >= intervals[:, 1, 1])


def test_asymmetric_correction_uses_each_side():
    rng = np.random.default_rng(2)
    X, y = _hetero_nonlinear(600, rng)
    cqr = ConformalQuantileRegressor(KNeighborsQuantileRegressor(30), method="cqr_asymmetric")
    cqr.fit(X[:300], y[:300]).conformalize(X[300:450], y[300:450])
    assert cqr.corrections_.shape == (1, 2)
    assert cqr.conformity_scores_.shape == (150, 2, 1)
    lo_scores = cqr.conformity_scores_[:, 0, 0]
    assert cqr.corrections_[0, 0] == pytest.approx(np.sort(lo_scores)[int(np.ceil(0.95 * 151)) - 1])


def test_minimum_calibration_size_is_stated():
    rng = np.random.default_rng(3)
    X, y = _hetero_linear(60, rng)
    cqr = ConformalQuantileRegressor(KNeighborsQuantileRegressor(5)).fit(X[:40], y[:40])
    with pytest.raises(ValueError, match="needs at least 9"):
        cqr.conformalize(X[40:48], y[40:48])
    cqr.conformalize(X[40:49], y[40:49])  # 9 rows: enough
    assert np.all(np.isfinite(cqr.predict_interval(X[49:])))
    asym = ConformalQuantileRegressor(KNeighborsQuantileRegressor(5), method="cqr_asymmetric")
    with pytest.raises(ValueError, match="needs at least 19"):
        asym.fit(X[:40], y[:40]).conformalize(X[40:58], y[40:58])
    # Weights count: 3 rows of weight 3 are 9 rows.
    cqr.conformalize(X[40:43], y[40:43], sample_weight=[3, 3, 3])


def test_not_calibrated_and_wrong_mode_errors():
    rng = np.random.default_rng(4)
    X, y = _hetero_linear(60, rng)
    cqr = ConformalQuantileRegressor(KNeighborsQuantileRegressor(5)).fit(X, y)
    assert cqr.predict(X).shape == (60,)
    with pytest.raises(NotFittedError, match="conformalize"):
        cqr.predict_interval(X)
    with pytest.raises(NotFittedError, match="fit"):
        ConformalQuantileRegressor(KNeighborsQuantileRegressor(5)).conformalize(X, y)
    cv_plus = ConformalQuantileRegressor(KNeighborsQuantileRegressor(5), cv=3).fit(X, y)
    with pytest.raises(ValueError, match="cv='split'"):
        cv_plus.conformalize(X, y)
    with pytest.raises(ValueError, match="between 0 and 1"):
        ConformalQuantileRegressor(KNeighborsQuantileRegressor(5), confidence_level=[0.9, 1.0]).fit(
            X, y)


def test_prefit_model_conformalizes_without_fit():
    rng = np.random.default_rng(5)
    X, y = _hetero_linear(300, rng)
    prefit = PerQuantileRegressor(_linear()).fit(X[:150], y[:150])
    cqr = ConformalQuantileRegressor(FrozenEstimator(prefit)).conformalize(X[150:250], y[150:250])
    assert cqr.estimator_.estimator is prefit
    reference = ConformalQuantileRegressor(_linear()).fit(X[:150], y[:150]).conformalize(
        X[150:250], y[150:250])
    np.testing.assert_allclose(cqr.predict_interval(X[250:]), reference.predict_interval(X[250:]))
    # A dict of frozen per-level models, and a frozen multi-level estimator, work too.
    frozen_dict = {q: FrozenEstimator(m) for q, m in zip(prefit.quantiles_, prefit.estimators_,
                                                          strict=True)}
    by_dict = ConformalQuantileRegressor(frozen_dict).conformalize(X[150:250], y[150:250])
    np.testing.assert_allclose(by_dict.predict_interval(X[250:]), cqr.predict_interval(X[250:]))
    knn = KNeighborsQuantileRegressor(20).fit(X[:150], y[:150])
    ConformalQuantileRegressor(FrozenEstimator(knn)).conformalize(X[150:250], y[150:250])


def test_inverted_intervals_collapse_to_the_midpoint():
    rng = np.random.default_rng(6)
    X, y = _hetero_linear(200, rng)
    # Very wide base quantiles (levels 0.01/0.99 used for 50% intervals) over-
    # cover, so the correction is negative. The wrapper hides the models' own
    # levels, which PerQuantileRegressor would otherwise refuse.
    wide = {0.25: TransformedTargetRegressor(QuantileRegressor(quantile=0.01, alpha=0.0)),
            0.75: TransformedTargetRegressor(QuantileRegressor(quantile=0.99, alpha=0.0))}
    cqr = ConformalQuantileRegressor(wide, confidence_level=0.5).fit(X[:100], y[:100])
    cqr.conformalize(X[100:150], y[100:150])
    assert cqr.corrections_[0] < 0
    intervals = cqr.predict_interval(X[150:])
    assert np.all(intervals[:, 0, 0] <= intervals[:, 1, 0])


def test_cv_plus_matches_a_direct_implementation():
    rng = np.random.default_rng(7)
    X, y = _hetero_nonlinear(90, rng)
    X_new = X[:4] + 0.1
    cv = KFold(3, shuffle=True, random_state=0)
    cqr = ConformalQuantileRegressor(KNeighborsQuantileRegressor(10), confidence_level=0.8, cv=cv)
    cqr.fit(X, y)
    alpha = 0.2
    lower_c, upper_c = [], []
    for train, test in cv.split(X):
        model = KNeighborsQuantileRegressor(10).fit(X[train], y[train])
        lo, hi = model.predict(X[test], [0.1, 0.9]).T
        scores = np.maximum(lo - y[test], y[test] - hi)
        lo_new, hi_new = model.predict(X_new, [0.1, 0.9]).T
        lower_c.append(lo_new[:, None] - scores[None, :])
        upper_c.append(hi_new[:, None] + scores[None, :])
    lower_c, upper_c = np.hstack(lower_c), np.hstack(upper_c)
    n = len(y)
    lower = np.sort(lower_c, axis=1)[:, int(np.floor(alpha * (n + 1))) - 1]
    upper = np.sort(upper_c, axis=1)[:, int(np.ceil((1 - alpha) * (n + 1))) - 1]
    intervals = cqr.predict_interval(X_new)
    np.testing.assert_allclose(intervals[:, 0, 0], lower)
    np.testing.assert_allclose(intervals[:, 1, 0], upper)


def test_cv_int_means_unshuffled_kfold():
    """cv=3 is KFold(3) (contiguous folds), as in ConvexEnsembleRegressor and
    scikit-learn's cross_val_predict; pass a shuffled KFold to shuffle."""
    rng = np.random.default_rng(9)
    X, y = _hetero_nonlinear(90, rng)
    cqr = ConformalQuantileRegressor(KNeighborsQuantileRegressor(10), confidence_level=0.8, cv=3)
    cqr.fit(X, y)
    np.testing.assert_array_equal(cqr.fold_of_row_, np.repeat([0, 1, 2], 30))
    same = ConformalQuantileRegressor(KNeighborsQuantileRegressor(10), confidence_level=0.8,
                                      cv=KFold(3)).fit(X, y)
    np.testing.assert_array_equal(cqr.predict_interval(X[:5]), same.predict_interval(X[:5]))
    assert "random_state" not in cqr.get_params()


def test_wraps_a_quantile_aggregator():
    rng = np.random.default_rng(8)
    X, y = _hetero_nonlinear(400, rng)
    agg = QuantileAggregator(
        [("knn10", KNeighborsQuantileRegressor(10)), ("knn40", KNeighborsQuantileRegressor(40))],
        quantiles=(0.05, 0.5, 0.95), cv=3,
    )
    cqr = ConformalQuantileRegressor(agg).fit(X[:200], y[:200]).conformalize(X[200:300], y[200:300])
    intervals = cqr.predict_interval(X[300:])
    assert intervals.shape == (100, 2, 1) and np.all(np.isfinite(intervals))
    with pytest.raises(ValueError, match="missing"):
        ConformalQuantileRegressor(agg, confidence_level=0.8).fit(X[:200], y[:200])


# --- acceptance (ii): coverage over 100 random splits ----------------------------


def _dataset(name):
    rng = np.random.default_rng(11)
    if name == "diabetes":
        return load_diabetes(return_X_y=True)
    if name == "engel":
        engel = sm.datasets.engel.load_pandas().data
        return engel[["income"]].to_numpy(), engel["foodexp"].to_numpy()
    if name == "hetero_linear":
        return _hetero_linear(500, rng)
    return _hetero_nonlinear(500, rng)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["diabetes", "engel", "hetero_linear", "hetero_nonlinear"])
def test_split_cqr_coverage_over_100_random_splits(name):
    """Average coverage >= 0.9 - 0.02 (and not above 0.9 + 1/(n_cal + 1) + 0.02).

    Base models (coverage holds for any; these are fast): linear quantile
    regression (HiGHS) at 0.05 and 0.95 on the two real data sets, the
    20-nearest-neighbour quantile model on the synthetic designs (n = 500).
    Splits: 40% fit, 30% calibrate, 30% test.
    """
    X, y = _dataset(name)
    real = name in ("diabetes", "engel")
    coverage, n_cal = [], 0
    for seed in range(100):
        X_fit, X_rest, y_fit, y_rest = train_test_split(X, y, train_size=0.4, random_state=seed)
        X_cal, X_test, y_cal, y_test = train_test_split(X_rest, y_rest, train_size=0.5,
                                                        random_state=seed)
        base = _linear((0.05, 0.95)) if real else KNeighborsQuantileRegressor(20)
        cqr = ConformalQuantileRegressor(base, confidence_level=0.9)
        cqr.fit(X_fit, y_fit).conformalize(X_cal, y_cal)
        intervals = cqr.predict_interval(X_test)
        coverage.append(interval_coverage(y_test, intervals[:, 0, 0], intervals[:, 1, 0]))
        n_cal = len(y_cal)
    mean = float(np.mean(coverage))
    assert mean >= 0.9 - 0.02, mean
    assert mean <= 0.9 + 1 / (n_cal + 1) + 0.02, mean


@pytest.mark.slow
@pytest.mark.parametrize("name", ["diabetes", "hetero_nonlinear"])
def test_cv_plus_coverage_over_20_random_splits(name):
    """CV+ (5 folds) with the nearest-neighbour quantile model: the guarantee is
    1 - 2 alpha; we check the usual empirical >= 0.9 - 0.03 on 20 splits."""
    X, y = _dataset(name)
    coverage = []
    for seed in range(20):
        X_tr, X_test, y_tr, y_test = train_test_split(X, y, test_size=0.3, random_state=seed)
        cqr = ConformalQuantileRegressor(KNeighborsQuantileRegressor(20), cv=5)
        intervals = cqr.fit(X_tr, y_tr).predict_interval(X_test)
        coverage.append(interval_coverage(y_test, intervals[:, 0, 0], intervals[:, 1, 0]))
    assert np.mean(coverage) >= 0.9 - 0.03, np.mean(coverage)
