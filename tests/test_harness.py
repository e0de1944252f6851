"""The common-test harness itself: it passes well-behaved scikit-learn
estimators and fails sloppy ones, so a green common run means something even
before (and independently of) any weightstats estimator."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.validation import check_is_fitted, validate_data

from weightstats.utils import check_sample_weight

from . import _checks
from .estimator_config import make_fit_data


class CarefulRegressor(RegressorMixin, BaseEstimator):
    """Weighted least squares validated the way weightstats estimators are."""

    def fit(self, X, y, sample_weight=None):
        X, y = validate_data(self, X, y, ensure_min_samples=2, y_numeric=True)
        sw = np.sqrt(check_sample_weight(sample_weight, X))
        A = np.column_stack([np.ones(len(X)), X]) * sw[:, None]
        coef = np.linalg.lstsq(A, y * sw, rcond=None)[0]
        self.intercept_, self.coef_ = coef[0], coef[1:]
        return self

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.intercept_ + X @ self.coef_


class SloppyRegressor(RegressorMixin, BaseEstimator):
    """Validates nothing: NaN in, NaN out."""

    def fit(self, X, y, sample_weight=None):
        self.mean_ = np.mean(np.asarray(y, dtype=float))
        self.n_features_in_ = np.shape(X)[1] if np.ndim(X) > 1 else 1
        return self

    def predict(self, X):
        X = np.asarray(X, dtype=float)
        return np.full(X.shape[0], self.mean_) + 0 * X.sum(axis=-1)


class NoisyRegressor(Ridge):
    """Predictions change between calls, so no round trip can reproduce them."""

    def predict(self, X):
        return super().predict(X) + np.random.default_rng().standard_normal(len(X))


# scikit-learn itself is lax here: Ridge fits one row and reports negative
# weights as a NaN error; LogisticRegression accepts negative weights.
# weightstats estimators must do better, as CarefulRegressor does.
SKLEARN_LAX = {"Ridge": {"one_row", "negative_weight"}, "LogisticRegression": {"negative_weight"}}


@pytest.mark.parametrize(
    "estimator", [CarefulRegressor(), Ridge(), LogisticRegression()], ids=lambda e: type(e).__name__
)
def test_well_behaved_estimators_pass(estimator):
    X, y, kw = make_fit_data(estimator)
    for case in _checks.applicable_cases(estimator, y):
        if case in SKLEARN_LAX.get(type(estimator).__name__, ()):
            continue
        _checks.check_bad_fit_input(estimator, case, X, y, kw)
    _checks.check_bad_predict_input(estimator, X, y, kw)
    _checks.check_outputs_finite(estimator, X, y, kw)
    _checks.check_persistence(estimator, X, y, kw, trusted_extra=(f"{__name__}.CarefulRegressor",))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the sloppy estimator averages nothing
@pytest.mark.parametrize("case", ["nan", "inf", "empty", "X_3d", "negative_weight"])
def test_sloppy_estimator_fails_bad_input_checks(case):
    est = SloppyRegressor()
    X, y, kw = make_fit_data(est)
    with pytest.raises(AssertionError, match="accepted"):
        _checks.check_bad_fit_input(est, case, X, y, kw)


def test_sloppy_estimator_fails_predict_and_nan_checks():
    est = SloppyRegressor()
    X, y, kw = make_fit_data(est)
    with pytest.raises(AssertionError, match="accepted bad input"):
        _checks.check_bad_predict_input(est, X, y, kw)
    y_nan = np.asarray(y, dtype=float).copy()
    y_nan[0] = np.nan
    with pytest.raises(AssertionError, match="non-finite"):
        _checks.check_outputs_finite(est, X, y_nan, kw)


def test_unclear_error_message_fails():
    class Vague(Ridge):
        def fit(self, X, y, sample_weight=None):
            raise ValueError("something went wrong")

    X, y, kw = make_fit_data(Ridge())
    with pytest.raises(AssertionError, match="does not name the problem"):
        _checks.check_bad_fit_input(Vague(), "nan", X, y, kw)


@pytest.mark.filterwarnings("ignore:Skipping check:sklearn.exceptions.SkipTestWarning")
def test_careful_estimator_passes_sklearn_checks():
    from sklearn.utils.estimator_checks import check_estimator

    check_estimator(CarefulRegressor())


def test_non_reproducible_estimator_fails_persistence():
    est = NoisyRegressor()
    with pytest.raises(AssertionError):
        _checks.check_persistence(est, *make_fit_data(est))
