"""PRESTO and the proportional-odds model: golden values, the solver, properties, API.

Golden values: statsmodels ``OrderedModel`` (Newton) on the UCLA data shipped
with statsmodels (copied to ``tests/results/ologit_ucla.csv``); R VGAM
``vglm(cumulative(parallel = FALSE))`` for ``alpha = 0``
(``tests/results/ordinal_vgam.R``); an independent scipy maximum-likelihood
fit; cvxpy on the same objective; the PRESTO reference code's values on the
UCLA data with its intercept bug corrected (shared notes, section 3.1).
"""

import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize
from scipy.special import expit, logit
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from weightstats.metrics import multiclass_brier_score
from weightstats.ordinal import (
    CrossingWarning,
    PRESTOClassifier,
    PRESTOClassifierCV,
    ProportionalOddsClassifier,
    SeparationWarning,
)
from weightstats.ordinal._solver import BaseFit, OrdinalProblem, kkt_residual

from .strategies import ordinal_data

RESULTS = Path(__file__).parent / "results"
UCLA_LEVELS = ["unlikely", "somewhat likely", "very likely"]
UCLA_FEATURES = ["pared", "public", "gpa"]


@pytest.fixture(scope="module")
def ucla():
    frame = pd.read_csv(RESULTS / "ologit_ucla.csv")
    y = pd.Series(pd.Categorical(frame["apply"], categories=UCLA_LEVELS, ordered=True))
    return frame[UCLA_FEATURES], y


@pytest.fixture(scope="module")
def statsmodels_po(ucla):
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    X, y = ucla
    res = OrderedModel(y, X, distr="logit").fit(method="newton", disp=False, maxiter=100)
    thresholds = res.model.transform_threshold_params(res.params.to_numpy())[1:-1]
    return res, res.params.to_numpy()[:3], thresholds


@pytest.fixture(scope="module")
def vgam():
    return pd.read_csv(RESULTS / "ordinal_vgam_results.csv")


def _vgam_values(vgam, dataset, features, n_bounds):
    rows = vgam[vgam.dataset == dataset]
    coef = np.array(
        [[rows[(rows.boundary == k) & (rows.term == f)].value.item() for f in features]
         for k in range(n_bounds)]
    )
    intercept = np.array(
        [rows[(rows.boundary == k) & (rows.term == "intercept")].value.item()
         for k in range(n_bounds)]
    )
    return coef, intercept, rows[rows.term == "loglik"].value.item()


def _loglik_from_predictions(est, X, y_codes, weights=None):
    """Log-likelihood from the returned coefficients (the model's own class
    probabilities, before any projection of crossing rows)."""
    eta = est.decision_function(X)
    n = eta.shape[0]
    F = np.column_stack([np.zeros(n), expit(eta), np.ones(n)])
    p = F[np.arange(n), y_codes + 1] - F[np.arange(n), y_codes]
    return float(np.sum((1.0 if weights is None else weights) * np.log(p)))


# --------------------------------------------------------------------------- golden values
def test_proportional_odds_matches_statsmodels(ucla, statsmodels_po):
    X, y = ucla
    res, beta, thresholds = statsmodels_po
    po = ProportionalOddsClassifier().fit(X, y)
    # statsmodels: P(Y <= k) = F(threshold_k - x'beta); ours: F(intercept_k + x'coef)
    np.testing.assert_allclose(po.coef_, -beta, atol=1e-6)
    np.testing.assert_allclose(po.intercept_, thresholds, atol=1e-6)
    assert po.log_likelihood_ == pytest.approx(res.llf, abs=1e-6)
    codes = y.cat.codes.to_numpy()
    assert _loglik_from_predictions(po, X, codes) == pytest.approx(res.llf, abs=1e-6)
    # statsmodels' standard errors come from a numerical Hessian (~1e-5)
    se = np.sqrt(np.diag(po.covariance_))
    np.testing.assert_allclose(se[:4], res.bse.to_numpy()[:4], rtol=2e-5)
    # R MASS::polr standard errors (statsmodels' stored results, 4 digits)
    np.testing.assert_allclose(se[:3], [0.2658, 0.2979, 0.2606], atol=1e-4)


def test_large_alpha_is_proportional_odds(ucla, statsmodels_po):
    X, y = ucla
    res, beta, thresholds = statsmodels_po
    presto = PRESTOClassifier(alpha=10.0, penalize_first=False).fit(X, y)
    np.testing.assert_allclose(presto.coef_, np.tile(-beta, (2, 1)), atol=1e-6)
    np.testing.assert_allclose(presto.intercept_, thresholds, atol=1e-6)
    assert presto.log_likelihood_ == pytest.approx(res.llf, abs=1e-6)
    # the limit is reached at a finite alpha_max (notes: 0.031631 on this data)
    assert presto.alpha_max_ == pytest.approx(0.031631, abs=2e-6)
    above = PRESTOClassifier(alpha=1.1 * presto.alpha_max_).fit(X, y)
    assert np.all(np.diff(above.coef_, axis=0) == 0.0)
    below = PRESTOClassifier(alpha=0.9 * presto.alpha_max_).fit(X, y)
    assert np.count_nonzero(np.diff(below.coef_, axis=0)) >= 1


def test_penalize_first_large_alpha_is_intercept_only(ucla):
    X, y = ucla
    presto = PRESTOClassifier(alpha=1.0, penalize_first=True).fit(X, y)
    assert np.all(presto.coef_ == 0.0)
    np.testing.assert_allclose(presto.intercept_, logit([220 / 400, 360 / 400]), atol=1e-9)
    assert presto.log_likelihood_ == pytest.approx(-370.6026, abs=1e-4)


@pytest.mark.parametrize(
    "alpha, intercept, coef, loglik",
    [
        (0.03, [1.32127, 3.385743],
         [[-0.777613, 0.0, -0.333621], [-0.777613, -0.0741258, -0.333621]], -359.4400),
        (0.001, [2.08384, 4.641569],
         [[-1.063079, 0.209583, -0.581918], [-1.005030, -0.537564, -0.692640]], -356.5142),
    ],
)
def test_reference_code_values_with_corrected_intercepts(ucla, alpha, intercept, coef, loglik):
    """The published R code (beta_1 penalised) after fixing its intercept bug.

    The reference values converged only to ordinalNet's relative-change
    tolerance, hence atol=5e-4 on coefficients; with the bug the
    log-likelihood recomputed from its coefficients is -401.35 / -11522.6.
    """
    X, y = ucla
    presto = PRESTOClassifier(alpha=alpha, penalize_first=True).fit(X, y)
    np.testing.assert_allclose(presto.intercept_, intercept, atol=5e-4)
    np.testing.assert_allclose(presto.coef_, coef, atol=5e-4)
    assert presto.log_likelihood_ == pytest.approx(loglik, abs=1e-3)
    codes = y.cat.codes.to_numpy()
    assert _loglik_from_predictions(presto, X, codes) == pytest.approx(
        presto.log_likelihood_, abs=1e-9
    )


def test_the_reference_intercept_bug_is_not_copied(ucla):
    """The reference code un-standardises intercept k with psi_k instead of beta_k.

    Emulating it (intercept_k + coef_{k-1} @ mean(X), notes section 1.1.4)
    reproduces the wrong log-likelihood the notes found (-401.35); ours
    reproduces the fitted one (-359.44).
    """
    X, y = ucla
    presto = PRESTOClassifier(alpha=0.03, penalize_first=True).fit(X, y)
    codes = y.cat.codes.to_numpy()
    buggy = clone(presto)
    buggy.__dict__.update(presto.__dict__)
    buggy.intercept_ = presto.intercept_.copy()
    buggy.intercept_[1:] += presto.coef_[:-1] @ X.to_numpy().mean(axis=0)
    assert _loglik_from_predictions(buggy, X, codes) == pytest.approx(-401.3463, abs=2e-3)
    assert _loglik_from_predictions(presto, X, codes) == pytest.approx(-359.4400, abs=1e-3)


def test_alpha_zero_matches_vgam_ucla(ucla, vgam):
    X, y = ucla
    coef, intercept, loglik = _vgam_values(vgam, "ucla", UCLA_FEATURES, 2)
    for penalize_first in (False, True):
        presto = PRESTOClassifier(alpha=0.0, penalize_first=penalize_first).fit(X, y)
        np.testing.assert_allclose(presto.coef_, coef, atol=1e-6)
        np.testing.assert_allclose(presto.intercept_, intercept, atol=1e-6)
        assert presto.log_likelihood_ == pytest.approx(loglik, abs=1e-6)


def test_alpha_zero_matches_vgam_with_frequency_weights(vgam):
    data = pd.read_csv(RESULTS / "ordinal_synthetic.csv")
    features = ["x1", "x2", "x3"]
    coef, intercept, loglik = _vgam_values(vgam, "synthetic_weighted", features, 3)
    presto = PRESTOClassifier(alpha=0.0).fit(data[features], data["y"], sample_weight=data["w"])
    np.testing.assert_allclose(presto.coef_, coef, atol=1e-6)
    np.testing.assert_allclose(presto.intercept_, intercept, atol=1e-6)
    assert presto.log_likelihood_ == pytest.approx(loglik, abs=1e-6)


def _nonparallel_mle_scipy(X, y, K, weights):
    """Independent MLE: direct class probabilities F(b) - F(a), BFGS, analytic gradient."""
    n, p = X.shape
    Xt = np.hstack([np.ones((n, 1)), X])

    def unpack(params):
        return params.reshape(K - 1, p + 1)

    def nll(params):
        W = unpack(params)
        F = np.hstack([np.zeros((n, 1)), expit(Xt @ W.T), np.ones((n, 1))])
        P = F[np.arange(n), y + 1] - F[np.arange(n), y]
        if np.any(P <= 0):
            return np.inf, np.zeros_like(params)
        f = F * (1 - F)
        grad = np.zeros((K - 1, p + 1))
        for k in range(K - 1):
            # dP/d eta_k: +f_k if k is the upper boundary of the class, -f_k if the lower
            d = np.where(y == k, f[:, k + 1], 0.0) - np.where(y == k + 1, f[:, k + 1], 0.0)
            grad[k] = -(weights * d / P) @ Xt
        return -np.sum(weights * np.log(P)), grad.ravel()

    start = np.zeros((K - 1, p + 1))
    start[:, 0] = logit(np.cumsum(np.bincount(y, weights=weights))[:-1] / weights.sum())
    res = optimize.minimize(nll, start.ravel(), jac=True, method="BFGS",
                            options={"gtol": 1e-9, "maxiter": 5000})
    W = unpack(res.x)
    return W[:, 1:], W[:, 0], -res.fun


def test_alpha_zero_matches_independent_scipy_mle(rng):
    X = rng.normal(size=(300, 3)) * [1.0, 3.0, 0.5] + [0.0, 5.0, -2.0]
    latent = X @ [0.8, -0.3, 1.0] + rng.logistic(size=300)
    y = np.digitize(latent, np.quantile(latent, [0.3, 0.6, 0.85]))
    w = rng.integers(1, 4, size=300).astype(float)
    coef, intercept, loglik = _nonparallel_mle_scipy(X, y, 4, w)
    presto = PRESTOClassifier(alpha=0.0).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(presto.coef_, coef, atol=1e-4)
    np.testing.assert_allclose(presto.intercept_, intercept, atol=1e-4)
    assert presto.log_likelihood_ >= loglik - 1e-9  # we are at least as good
    assert presto.log_likelihood_ == pytest.approx(loglik, abs=1e-7)


def test_alpha_zero_is_not_separate_logistic_regressions(ucla):
    """The joint likelihood couples the boundaries (notes: separate logits differ)."""
    X, y = ucla
    presto = PRESTOClassifier(alpha=0.0).fit(X, y)
    separate_intercepts = [1.98297, 4.75447]
    assert np.max(np.abs(presto.intercept_ - separate_intercepts)) > 0.03


# --------------------------------------------------------------------------- solver
@pytest.mark.parametrize("penalize_first", [False, True])
@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.01])
def test_objective_matches_cvxpy(penalize_first, fraction):
    from weightstats.ordinal._reference import presto_cvxpy

    rng = np.random.default_rng(7)
    n = 150
    X = rng.uniform(-1, 1, (n, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, 0.0]
    latent = X @ [1.0, -0.5, 0.8] + rng.logistic(size=n)
    y = np.digitize(latent, np.quantile(latent, [0.4, 0.7, 0.9]))
    w = rng.uniform(0.5, 2.0, n)
    problem = OrdinalProblem(X, y, w, 4)
    base = problem.base_fit(penalize_first)
    lam = fraction * base.alpha_max
    path = problem.path([lam], penalize_first, base=base)
    _, penalty = problem.free_and_penalty(penalize_first)
    ours = problem.objective(path.thetas[0], lam, penalty)
    theta_cvx, _ = presto_cvxpy(problem, lam, penalize_first=penalize_first)
    theirs = problem.objective(theta_cvx, lam, penalty)
    assert abs(ours - theirs) <= 1e-6
    assert ours <= theirs + 1e-10  # cvxpy's optimum is never better than ours
    assert path.converged[0] and path.kkt[0] <= 1e-8


def test_kkt_conditions_at_the_solution(rng):
    X = rng.normal(size=(200, 4))
    y = np.digitize(X @ [1, -1, 0.5, 0] + rng.logistic(size=200), [-1, 0.5, 2])
    problem = OrdinalProblem(X, y, np.ones(200), 4)
    free, penalty = problem.free_and_penalty(False)
    base = problem.base_fit(False)
    for lam in base.alpha_max * np.array([0.5, 0.05]):
        theta = problem.path([lam], False, base=base).thetas[0]
        _, grad, _, _ = problem.derivatives(theta)
        assert kkt_residual(grad, theta, lam * penalty, free) <= 1e-8
        zero = (theta == 0) & (penalty > 0)
        assert np.all(np.abs(grad[zero]) <= lam + 1e-8)
        nonzero = theta != 0
        np.testing.assert_allclose(
            grad[nonzero], -lam * penalty[nonzero] * np.sign(theta[nonzero]), atol=1e-8
        )


def test_base_fit_is_a_named_result(ucla):
    """The alpha >= alpha_max fit is read by name, not by tuple position."""
    X, y = ucla
    codes = pd.Categorical(y).codes
    base = OrdinalProblem(X.to_numpy(float), codes, np.ones(codes.size), 3).base_fit(False)
    assert isinstance(base, BaseFit)
    assert base.converged and base.kkt <= 1e-8 and base.n_iter >= 1
    assert base.theta.shape == (2, 4) and base.alpha_max == pytest.approx(0.03163, abs=1e-5)


def test_path_matches_cold_starts(rng):
    """Warm starts change the route, not the (unique) solution."""
    X = rng.normal(size=(250, 3))
    y = np.digitize(X @ [1.0, -0.5, 0.3] + rng.logistic(size=250), [-1.0, 0.5, 2.0])
    cv = PRESTOClassifierCV(alphas=6, cv=3).fit(X, y)
    for idx in (1, 3, 5):
        cold = PRESTOClassifier(alpha=cv.alphas_[idx]).fit(X, y)
        np.testing.assert_allclose(cv.coef_path_[idx], cold.coef_, atol=1e-6)
        np.testing.assert_allclose(cv.intercept_path_[idx], cold.intercept_, atol=1e-6)


def test_separable_data_warns_with_the_residual():
    X = np.linspace(-3, 3, 60)[:, None]
    y = np.digitize(X[:, 0], [-1.0, 1.0])  # perfectly ordered by x
    with pytest.warns(ConvergenceWarning, match="KKT residual"), pytest.warns(SeparationWarning):
        PRESTOClassifier(alpha=0.01, max_iter=15).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="separable"):
        ProportionalOddsClassifier(max_iter=15).fit(X, y)


def _separable():
    X = np.linspace(-3, 3, 60)[:, None]
    return X, np.digitize(X[:, 0], [-1.0, 1.0])  # perfectly ordered by x


def _quasi_separable(seed=0):
    """Class 2 exactly when x0 > 1.5; classes 0 and 1 overlap. The top boundary
    alone separates, so only a model with its own slopes there diverges."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=300)
    y = np.where(x > 1.5, 2, (x + rng.logistic(size=300) > 0).astype(int))
    return np.column_stack([x, rng.normal(size=300)]), y


@pytest.mark.parametrize(
    "estimator",
    [ProportionalOddsClassifier(), PRESTOClassifier(), PRESTOClassifierCV(alphas=5, cv=3)],
    ids=["po", "presto", "presto_cv"],
)
def test_separable_data_warns_at_default_settings(estimator):
    """Coefficients diverge (about -238 at the default max_iter) while the
    gradient test passes: the fit must say that no estimate exists."""
    X, y = _separable()
    with pytest.warns(SeparationWarning, match=r"separable.* 60 of 60 training rows"):
        estimator.fit(X, y)
    assert issubclass(SeparationWarning, ConvergenceWarning)


def test_separation_is_checked_for_the_unpenalised_directions_only():
    X, y = _quasi_separable()
    with pytest.warns(SeparationWarning, match="features"):
        PRESTOClassifier(alpha=0.0).fit(X, y)  # every slope free
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeparationWarning)
        # One shared slope: no direction separates classes 0 and 1, the MLE exists.
        ProportionalOddsClassifier().fit(X, y)
        PRESTOClassifier(alpha=0.01).fit(X, y)
        # Penalised slopes: a finite solution for any data.
        PRESTOClassifier(alpha=0.01, penalize_first=True).fit(*_separable())


def test_no_separation_warning_on_ordinary_data(ucla):
    X, y = ucla
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeparationWarning)
        ProportionalOddsClassifier().fit(X, y)
        PRESTOClassifier(alpha=0.0).fit(X, y)
        PRESTOClassifierCV(alphas=5, cv=3).fit(X, y)


@pytest.mark.parametrize("slopes, data", [("shared", _separable()), ("free", _quasi_separable())])
def test_separating_direction_lowers_the_loss_without_bound(slopes, data):
    X, y = data
    problem = OrdinalProblem(X, y, np.ones(y.size), 3)
    found = problem.separation(slopes)
    assert found is not None and found.n_rows > 0
    step = np.diff(found.direction, axis=0, prepend=0.0)  # to the difference parametrisation
    theta = problem.intercept_only()
    losses = [problem.loss(problem.eta(theta + t * step)) for t in (0, 10, 100, 1000)]
    assert np.all(np.diff(losses) < 0)
    # Without separation the linear programme finds nothing.
    rng = np.random.default_rng(1)
    Xn = rng.normal(size=(300, 2))
    yn = np.digitize(Xn @ [1.0, -1.0] + rng.logistic(size=300), [-1.0, 1.0])
    assert OrdinalProblem(Xn, yn, np.ones(300), 3).separation(slopes) is None


# --------------------------------------------------------------------------- properties
@settings(max_examples=15)
@given(data=ordinal_data(), shift=st.floats(-100, 100), scale=st.floats(0.01, 100))
def test_predictions_invariant_to_shifting_and_scaling_columns(data, shift, scale):
    """Catches un-standardisation errors: the intercepts absorb shifts."""
    X, y = data
    est = PRESTOClassifier(alpha=0.005)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CrossingWarning)
        base = est.fit(X, y).predict_proba(X)
        moved = clone(est).fit(X * scale + shift, y)
        np.testing.assert_allclose(moved.predict_proba(X * scale + shift), base, atol=1e-6)
    np.testing.assert_allclose(moved.coef_ * scale, est.coef_, rtol=1e-5, atol=1e-6)


@settings(max_examples=10)
@given(data=ordinal_data(), seed=st.integers(0, 1000))
def test_row_order_and_integer_weights(data, seed):
    X, y = data
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 3, y.size)
    w[:3] = 1
    for cls in (0, 1, 2):  # every class keeps some weight
        w[np.flatnonzero(y == cls)[0]] = 1
    fitted = PRESTOClassifier(alpha=0.003).fit(X, y, sample_weight=w)
    perm = rng.permutation(y.size)
    permuted = PRESTOClassifier(alpha=0.003).fit(X[perm], y[perm], sample_weight=w[perm])
    repeated = PRESTOClassifier(alpha=0.003).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    for other in (permuted, repeated):
        np.testing.assert_allclose(other.coef_, fitted.coef_, atol=1e-6)
        np.testing.assert_allclose(other.intercept_, fitted.intercept_, atol=1e-6)


def test_penalty_and_fit_are_monotone_along_the_path(rng):
    X = rng.uniform(-1, 1, (400, 5))
    y = np.digitize(X @ [1, -1, 0.5, 0, 0.3] + rng.logistic(size=400), [-1.0, 0.3, 1.5])
    cv = PRESTOClassifierCV(alphas=12, cv=3).fit(X, y)
    # on the standardised scale the penalty sum_k>=2 |psi_k| shrinks and the
    # training log-likelihood drops as alpha grows
    sd = X.std(axis=0)
    penalties = np.abs(np.diff(cv.coef_path_, axis=1) * sd).sum(axis=(1, 2))
    assert np.all(np.diff(penalties) >= -1e-7)  # alphas_ are decreasing
    logliks = [
        _loglik_from_predictions(
            PRESTOClassifier(alpha=a).fit(X, y), X, y) for a in cv.alphas_[::3]
    ]
    assert np.all(np.diff(logliks) >= -1e-7)


def test_reversing_the_class_order_mirrors_the_fit(ucla):
    """With the logistic link, P(Y <= k) under the reversed order is 1 - P(Y <= K-1-k)."""
    X, y = ucla
    forward = PRESTOClassifier(alpha=0.004).fit(X, y)
    backward = PRESTOClassifier(alpha=0.004, classes=UCLA_LEVELS[::-1]).fit(X, y)
    np.testing.assert_allclose(backward.coef_, -forward.coef_[::-1], atol=1e-6)
    np.testing.assert_allclose(backward.intercept_, -forward.intercept_[::-1], atol=1e-6)
    np.testing.assert_allclose(
        backward.predict_proba(X), forward.predict_proba(X)[:, ::-1], atol=1e-7
    )


def test_constant_columns_get_zero_coefficients(rng):
    X = rng.normal(size=(120, 2))
    y = np.digitize(X @ [1.0, -1.0] + rng.logistic(size=120), [-1.0, 1.0])
    with_constant = np.column_stack([X[:, 0], np.full(120, 3.0), X[:, 1]])
    for est in (PRESTOClassifier(alpha=0.01), ProportionalOddsClassifier()):
        a = clone(est).fit(with_constant, y)
        b = clone(est).fit(X, y)
        coef_a = np.atleast_2d(a.coef_)
        assert np.all(coef_a[:, 1] == 0.0)
        np.testing.assert_allclose(coef_a[:, [0, 2]], np.atleast_2d(b.coef_), atol=1e-8)
        np.testing.assert_allclose(a.predict_proba(with_constant), b.predict_proba(X), atol=1e-8)
    po = ProportionalOddsClassifier().fit(with_constant, y)
    assert np.isnan(po.covariance_[1]).all()
    assert "Not estimated" in str(po.summary())


def test_loglik_equals_the_predictions(rng):
    """Catches the reference code's intercept bug (means far from zero)."""
    X = rng.normal(5.0, 2.0, size=(300, 3))
    y = np.digitize(X @ [0.5, -0.5, 0.2] + rng.logistic(size=300), [-1.5, -0.3, 0.8])
    presto = PRESTOClassifier(alpha=0.002).fit(X, y)
    assert _loglik_from_predictions(presto, X, y) == pytest.approx(
        presto.log_likelihood_, rel=1e-10
    )


# --------------------------------------------------------------------------- crossings
def test_crossings_are_counted_projected_and_warned(rng):
    X = rng.normal(size=(40, 3))
    y = np.digitize(X @ [1.0, -0.5, 0.3] + rng.logistic(size=40), [-0.7, 0.7])
    presto = PRESTOClassifier(alpha=0.0).fit(X, y)
    eta = presto.decision_function(X)
    crossing = np.any(np.diff(eta, axis=1) < 0, axis=1)
    assert presto.n_crossings_ == crossing.sum() > 0
    with pytest.warns(CrossingWarning, match=f"cross at {crossing.sum()} of 40 rows"):
        proba = presto.predict_proba(X)
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    raw = np.diff(np.column_stack([np.zeros(40), expit(eta), np.ones(40)]), axis=1)
    np.testing.assert_allclose(proba[~crossing], raw[~crossing], atol=1e-15)
    # projected rows: closest ordered cumulative probabilities (pool adjacent violators)
    F = expit(eta[crossing])
    pooled = np.where(F[:, :1] > F[:, 1:], (F[:, :1] + F[:, 1:]) / 2, np.nan)
    np.testing.assert_allclose(np.cumsum(proba[crossing], axis=1)[:, 0], pooled[:, 0])


def test_no_crossing_warning_for_proportional_odds(ucla):
    X, y = ucla
    po = ProportionalOddsClassifier().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CrossingWarning)
        po.predict_proba(X * 50)


# --------------------------------------------------------------------------- labels & input
def test_pandas_ordered_categorical_and_predict_labels(ucla):
    X, y = ucla
    est = PRESTOClassifier().fit(X, y)
    assert list(est.classes_) == UCLA_LEVELS
    assert set(est.predict(X)) <= set(UCLA_LEVELS)
    assert list(est.feature_names_in_) == UCLA_FEATURES
    # the same labels as strings with an explicit order
    strings = PRESTOClassifier(classes=UCLA_LEVELS).fit(X, y.astype(str))
    np.testing.assert_allclose(strings.coef_, est.coef_)
    assert est.score(X, y) == pytest.approx(np.mean(est.predict(X) == y.to_numpy()))


@pytest.mark.parametrize(
    "y, kwargs, match",
    [
        (["b", "a", "c"] * 10, {}, r"without a known order.*classes=\[lowest"),
        (pd.Categorical(["b", "a", "c"] * 10), {}, "unordered pandas Categorical"),
        ([0, 1] * 15, {}, "LogisticRegression"),
        ([1] * 30, {}, "at least 3"),
        ([0, 1, 2] * 10, {"classes": [0, 1, 2, 3]}, r"\[3\].*no samples"),
        ([0, 1, 5] * 10, {"classes": [0, 1, 2]}, r"\[5\].*not in"),
        ([0, 1, 2] * 10, {"classes": [0, 1, 1]}, "repeated"),
        ([1.0, 2.0, 3.0] * 10, {}, None),  # integral floats are labels
        ([0.5, 1.0, 1.5] * 10, {}, r"Unknown label type.*classes=\["),
        ([0.5, 1.0, 1.5] * 10, {"classes": [0.5, 1.0, 1.5]}, None),
    ],
)
def test_label_errors(y, kwargs, match, rng):
    X = rng.normal(size=(30, 2))
    est = PRESTOClassifier(**kwargs)
    if match is None:
        assert len(est.fit(X, y).classes_) == 3
        return
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)


def test_unused_categories_raise_with_fix(rng):
    y = pd.Series(pd.Categorical([0, 1, 2] * 10, categories=[0, 1, 2, 3], ordered=True))
    with pytest.raises(ValueError, match="remove_unused_categories"):
        ProportionalOddsClassifier().fit(rng.normal(size=(30, 2)), y)


def test_zero_weight_class_raises(rng):
    y = np.array([0, 1, 2] * 10)
    w = np.where(y == 2, 0.0, 1.0)
    with pytest.raises(ValueError, match="zero total sample_weight"):
        PRESTOClassifier().fit(rng.normal(size=(30, 2)), y, sample_weight=w)


def test_zero_weights_equal_dropping_rows(rng):
    X = rng.normal(size=(90, 2))
    y = np.digitize(X @ [1.0, 0.5] + rng.logistic(size=90), [-0.5, 0.8])
    w = np.ones(90)
    w[::4] = 0.0
    a = PRESTOClassifier(alpha=0.002).fit(X, y, sample_weight=w)
    b = PRESTOClassifier(alpha=0.002).fit(X[w > 0], y[w > 0])
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-7)


# --------------------------------------------------------------------------- CV
@pytest.fixture(scope="module")
def cv_data():
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, (500, 4))
    latent = X @ [1.0, -1.0, 0.5, 0.0] + rng.logistic(size=500)
    y = np.digitize(latent, [-0.8, 0.8, 2.0])
    return X, y


def test_cv_scores_and_selection_rule(cv_data):
    X, y = cv_data
    cv = PRESTOClassifierCV(alphas=8, cv=3).fit(X, y)
    assert cv.alphas_[0] == pytest.approx(cv.alpha_max_)
    assert np.all(np.diff(cv.alphas_) < 0)
    mean = cv.cv_scores_.mean(axis=1)
    # the largest alpha attaining the minimum mean score
    assert mean[cv.best_index_] == mean.min()
    assert np.all(mean[: cv.best_index_] > mean.min())
    np.testing.assert_array_equal(cv.coef_, cv.coef_path_[cv.best_index_])
    # fold scores equal a fixed-alpha fit on that fold
    train, test = next(StratifiedKFold(3).split(X, y))
    for idx in (0, 4):
        est = PRESTOClassifier(alpha=cv.alphas_[idx]).fit(X[train], y[train])
        brier = multiclass_brier_score(y[test], est.predict_proba(X[test]), labels=est.classes_)
        assert cv.cv_scores_[idx, 0] == pytest.approx(brier, abs=1e-8)
    # the first alpha is proportional odds
    po = ProportionalOddsClassifier().fit(X, y)
    np.testing.assert_allclose(cv.coef_path_[0], np.tile(po.coef_, (3, 1)), atol=1e-6)


def test_cv_options(cv_data):
    X, y = cv_data
    base = PRESTOClassifierCV(alphas=6, cv=3).fit(X, y)
    one_se = PRESTOClassifierCV(alphas=6, cv=3, selection="1se").fit(X, y)
    assert one_se.alpha_ >= base.alpha_
    threads = PRESTOClassifierCV(alphas=6, cv=3, n_jobs=2).fit(X, y)
    np.testing.assert_allclose(threads.cv_scores_, base.cv_scores_)
    averaged = PRESTOClassifierCV(alphas=6, cv=3, refit=False).fit(X, y)
    assert not hasattr(averaged, "coef_path_")
    assert averaged.alpha_ == base.alpha_
    explicit = PRESTOClassifierCV(alphas=[0.001, 0.01, 1.0], cv=3).fit(X, y)
    np.testing.assert_allclose(explicit.alphas_, [1.0, 0.01, 0.001])

    def rare_brier(y_true, proba, sample_weight=None):
        return np.average((proba[:, -1] - (y_true == 3)) ** 2, weights=sample_weight)

    custom = PRESTOClassifierCV(alphas=6, cv=3, scoring=rare_brier).fit(X, y)
    assert custom.cv_scores_.shape == (6, 3)
    for scoring in ("log_loss", "rps"):
        assert np.all(PRESTOClassifierCV(alphas=4, cv=3, scoring=scoring).fit(X, y).cv_scores_ > 0)


def test_cv_class_missing_from_a_fold(rng):
    X = rng.normal(size=(60, 2))
    y = np.array([0, 1] * 28 + [0, 1, 2, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn's small-class warning
        # two samples of class 2: stratification keeps one in every training fold
        PRESTOClassifierCV(alphas=3, cv=5).fit(X, y)
        y[-1] = 1
        with pytest.raises(ValueError, match=r"absent from a training fold.*single sample"):
            PRESTOClassifierCV(cv=5).fit(X, y)
    y_sorted = np.sort(np.array([0, 1, 2] * 20))
    with pytest.raises(ValueError, match="every fold must contain every class"):
        PRESTOClassifierCV(cv=KFold(3)).fit(X, y_sorted)


def test_summary_tables(ucla):
    X, y = ucla
    presto = PRESTOClassifier(alpha=0.01).fit(X, y)
    text = str(presto.summary())
    assert "Y <= unlikely" in text and "Y <= somewhat likely" in text
    diffs = presto.coef_differences()
    assert diffs.shape == (3, 1)
    fused = diffs.index[diffs.iloc[:, 0] == 0]
    assert len(fused) >= 1  # some differences are fused at this alpha
    assert "non-zero differences: " in text
    assert "<table" in presto.summary()._repr_html_()
    cv = PRESTOClassifierCV(alphas=5, cv=3).fit(X, y)
    assert "alpha" in str(cv.summary())
    po_text = str(ProportionalOddsClassifier().fit(X, y).summary())
    assert "intercept (Y <= unlikely)" in po_text and "P>|z|" in po_text


@pytest.mark.requires("matplotlib")
def test_cv_plots(cv_data):
    import matplotlib.pyplot as plt

    X, y = cv_data
    cv = PRESTOClassifierCV(alphas=5, cv=3).fit(X, y)
    ax = cv.plot_cv()
    assert ax.get_xscale() == "log"
    ax = cv.plot_path()
    assert len(ax.get_lines()) >= X.shape[1]
    plt.close("all")
    with pytest.raises(AttributeError, match="refit=True"):
        PRESTOClassifierCV(alphas=3, cv=3, refit=False).fit(X, y).plot_path()


# ------------------------------------------------ scikit-learn checks on 3-class data
# (the sklearn suite trains on binary targets; see tests/estimator_config.py)
ESTIMATORS = [PRESTOClassifier(), ProportionalOddsClassifier(), PRESTOClassifierCV(alphas=4, cv=3)]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_sklearn_properties_on_ordinal_data(estimator, cv_data):
    X, y = cv_data
    fitted = clone(estimator).fit(X, y)
    proba = fitted.predict_proba(X)
    # idempotent fit, dtypes, pipelines, pickling, input not modified
    again = clone(estimator).fit(X, y)
    np.testing.assert_allclose(again.predict_proba(X), proba)
    X32 = X.astype(np.float32)
    np.testing.assert_allclose(clone(estimator).fit(X32, y).predict_proba(X32), proba, atol=1e-5)
    np.testing.assert_allclose(
        clone(estimator).fit(X, y.astype(np.int32)).predict_proba(X), proba
    )
    pipe = make_pipeline(StandardScaler(), clone(estimator)).fit(X, y)
    np.testing.assert_allclose(pipe.predict_proba(X), proba, atol=1e-6)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(fitted)).predict_proba(X), proba)
    w = np.ones(y.size)
    w_series = pd.Series(w)
    X_copy, w_copy = X.copy(), w.copy()
    fitted_w = clone(estimator).fit(X, y, sample_weight=w_series)
    np.testing.assert_allclose(fitted_w.predict_proba(X), proba)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(w, w_copy)
    assert fitted.n_features_in_ == X.shape[1]
    assert fitted.decision_function(X).shape == (y.size, 3)
    assert np.all(fitted.n_iter_ >= 1)
    np.testing.assert_array_equal(fitted.predict(X), fitted.classes_[proba.argmax(axis=1)])
    majority = np.bincount(y).max() / y.size
    assert fitted.score(X, y) > majority + 0.03
    with pytest.raises(ValueError, match="zero"):
        clone(estimator).fit(X, y, sample_weight=np.zeros(y.size))
