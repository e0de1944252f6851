"""Standard errors of the effect estimates: M-estimation, residual, cross-fitting, bootstrap.

Calibration in simulation is in ``tests/test_balancing_simulation.py``; here
the computations themselves are checked against independent ones.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsRegressor

from weightstats.balancing import (
    EntropyBalancer,
    IPMBalancer,
    PropensityBalancer,
    bootstrap_replicates,
    weighted_effect,
)
from weightstats.balancing._effects import outcome_predictions
from weightstats.balancing._outcome import KernelRidgeOutcome
from weightstats.datasets import make_kang_schafer

GOLDENS = json.loads((Path(__file__).parent / "results" / "balancing_se_goldens.json").read_text())


@pytest.fixture(autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


def _ks(n=500, seed=3, misspecified=False):
    ks = make_kang_schafer(n, misspecified=misspecified, random_state=seed)
    return ks.data, ks.treatment, ks.target


# --------------------------------------------------------------------- M-estimation


@pytest.mark.parametrize("name, misspecified, seed", [("kang_schafer_Z_500_seed3", False, 3),
                                                      ("kang_schafer_X_500_seed4", True, 4)])
@pytest.mark.parametrize("estimand", ["ATE", "ATT", "ATC"])
def test_propensity_m_estimation_matches_statsmodels_gmm(name, misspecified, seed, estimand):
    """statsmodels' joint GMM of the logistic score and the weighted means
    (``TreatmentEffect.ipw``, HC0): golden values in tests/results."""
    gold = GOLDENS[name][estimand]
    X, t, y = _ks(500, seed, misspecified)
    res = PropensityBalancer(estimand=estimand).fit(X, t).estimate_effect(y)
    assert res.se_method == "m-estimation"
    assert res.effect == pytest.approx(gold["effect"], rel=1e-8)
    assert res.se == pytest.approx(gold["se"], rel=1e-6)


def _numerical_sandwich(psi, theta, s):
    """HC0 sandwich of ``mu_1 - mu_0`` (the last two parameters) with the Jacobian of
    ``sum_i s_i psi_i(theta)`` by central differences."""
    def total(th):
        return s @ psi(th)

    k = theta.size
    A = np.zeros((k, k))
    for j in range(k):
        h = 1e-6 * max(1.0, abs(theta[j]))
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        A[:, j] = (total(up) - total(down)) / (2 * h)
    P = psi(theta)
    B = (P * s[:, None]).T @ P
    Ainv = np.linalg.inv(A)
    V = Ainv @ B @ Ainv.T
    c = np.zeros(k)
    c[-2:] = 1.0, -1.0
    return float(np.sqrt(c @ V @ c)), np.abs(total(theta)).max()


@pytest.mark.parametrize("estimand", ["ATT", "ATE", "ATO"])
def test_propensity_m_estimation_matches_a_numerical_derivative_sandwich(estimand):
    X, t, y = _ks(400, 5, misspecified=False)
    rng = np.random.default_rng(0)
    s = rng.integers(1, 4, size=t.size).astype(float)
    if estimand == "ATO":
        pytest.importorskip("weightstats.balancing._propensity")
        try:
            bal = PropensityBalancer(estimand="ATO")
            bal.fit(X, t, sample_weight=s)
        except ValueError:
            pytest.skip("this version of PropensityBalancer has no estimand='ATO'")
    else:
        bal = PropensityBalancer(estimand=estimand).fit(X, t, sample_weight=s)
    res = bal.estimate_effect(y, se="m-estimation")
    D = np.column_stack([np.ones(t.size), (X - X.mean(0)) / X.std(0)])
    tr = t == 1
    gamma = np.zeros(D.shape[1])
    for _ in range(30):  # Newton's method for the weighted logistic MLE
        e = expit(D @ gamma)
        gamma += np.linalg.solve((D * (s * e * (1 - e))[:, None]).T @ D, D.T @ (s * (tr - e)))

    def psi(theta):
        g, mu1, mu0 = theta[:-2], theta[-2], theta[-1]
        e = expit(D @ g)
        w = {"ATT": np.where(tr, 1.0, e / (1 - e)), "ATE": np.where(tr, 1 / e, 1 / (1 - e)),
             "ATO": np.where(tr, 1 - e, e)}[estimand]
        return np.column_stack([D * (tr - e)[:, None], tr * w * (y - mu1),
                                (~tr) * w * (y - mu0)])

    e = expit(D @ gamma)
    w = {"ATT": np.where(tr, 1.0, e / (1 - e)), "ATE": np.where(tr, 1 / e, 1 / (1 - e)),
         "ATO": np.where(tr, 1 - e, e)}[estimand]
    mu1 = (s * w * tr) @ y / (s * w * tr).sum()
    mu0 = (s * w * ~tr) @ y / (s * w * ~tr).sum()
    se, residual = _numerical_sandwich(psi, np.r_[gamma, mu1, mu0], s)
    assert residual < 1e-6
    assert res.effect == pytest.approx(mu1 - mu0, rel=1e-7)
    assert res.se == pytest.approx(se, rel=1e-5)


@pytest.mark.parametrize("estimand", ["ATT", "ATC", "ATE"])
@pytest.mark.parametrize("moments", [1, 2])
def test_entropy_m_estimation_matches_a_numerical_derivative_sandwich(estimand, moments):
    """The stacked dual equations (target moments, multipliers, weighted means)
    against finite differences of the same equations written from scratch."""
    X, t, y = _ks(300, 7, misspecified=True)
    eb = EntropyBalancer(estimand=estimand, moments=moments, tol=1e-12).fit(X, t)
    res = eb.estimate_effect(y, se="m-estimation")
    Z = (X - X.mean(0)) / X.std(0)
    C = np.hstack([Z**p for p in range(1, moments + 1)])
    k = C.shape[1]
    tr = t == 1
    arms = {"ATT": [~tr], "ATC": [tr], "ATE": [tr, ~tr]}[estimand]
    target = {"ATT": tr, "ATC": ~tr, "ATE": np.ones_like(tr)}[estimand]
    s = np.ones(t.size)

    def weights(theta):
        w = np.ones(t.size)
        for j, arm in enumerate(arms):
            lam = theta[k * (1 + j): k * (2 + j)]
            w = np.where(arm, np.exp(C @ lam), w)
        return w

    def psi(theta):
        nu = theta[:k]
        w = weights(theta)
        cols = [(C - nu) * target[:, None]]
        cols += [(C - nu) * (w * arm)[:, None] for arm in arms]
        mu1, mu0 = theta[-2], theta[-1]
        return np.column_stack(cols + [tr * w * (y - mu1), (~tr) * w * (y - mu0)])

    infos = [eb.solver_info_] if "arm" in eb.solver_info_ else [
        eb.solver_info_[name] for name in ("treated", "control")]
    lams = [np.array(info["coef"]) for info in infos]
    nu = C[target].mean(axis=0)
    w = weights(np.r_[nu, np.concatenate(lams), 0, 0])
    mu1 = (w * tr) @ y / (w * tr).sum()
    mu0 = (w * ~tr) @ y / (w * ~tr).sum()
    se, residual = _numerical_sandwich(psi, np.r_[nu, np.concatenate(lams), mu1, mu0], s)
    assert residual < 1e-6
    assert res.effect == pytest.approx(mu1 - mu0, rel=1e-8, abs=1e-10)
    assert res.se == pytest.approx(se, rel=1e-4)


def test_m_estimation_is_refused_where_there_are_no_equations():
    X, t, y = _ks(200)
    with pytest.raises(ValueError, match="estimating equations"):
        IPMBalancer().fit(X, t).estimate_effect(y, se="m-estimation")
    from sklearn.ensemble import RandomForestClassifier

    forest = PropensityBalancer(RandomForestClassifier(n_estimators=20, random_state=0),
                                clip=0.05).fit(X, t)
    with pytest.raises(ValueError, match="estimating equations"):
        forest.estimate_effect(y, se="m-estimation")
    assert forest.estimate_effect(y).se_method == "sandwich"
    with pytest.raises(ValueError, match="augment=None"):
        EntropyBalancer().fit(X, t).estimate_effect(y, se="m-estimation", augment="ols")


# --------------------------------------------------------------------- residual standard errors


def test_residual_se_accounts_for_the_covariates():
    """Kang-Schafer with the true covariates: the outcome is linear in them with
    noise sd 1, so the residual standard error is close to the OLS-augmented one
    and many times below the raw-outcome sandwich."""
    X, t, y = _ks(1000, 0)
    bal = IPMBalancer(random_state=0).fit(X, t)
    res = bal.estimate_effect(y)
    assert res.se_method == "residual"
    assert "kernel ridge" in res.summary().info["outcome model (SE)"]
    assert res.effect == pytest.approx(bal.estimate_effect(y, se="sandwich").effect)
    ols = bal.estimate_effect(y, augment="ols", cross_fit=5)
    assert 0.7 < res.se / ols.se < 1.3
    assert bal.estimate_effect(y, se="sandwich").se > 10 * res.se
    # Reproducible given random_state (the folds).
    assert bal.estimate_effect(y).se == res.se


def test_residual_se_equals_the_doubly_robust_influence_with_the_same_model():
    X, t, y = _ks(400, 2)
    bal = IPMBalancer(random_state=1).fit(X, t)
    model = KernelRidgeOutcome(bandwidth=3.0)
    bal._residual_outcome_model = lambda: model  # the same model for both routes
    res = bal.estimate_effect(y, se="residual", cross_fit=4)
    dr = weighted_effect(y, t, bal.weights_, X=X, augment=model, cross_fit=4, random_state=1)
    assert res.se == pytest.approx(dr.se, rel=1e-12)
    assert res.effect != pytest.approx(dr.effect, rel=1e-6)  # plain vs doubly robust estimate


def test_cross_fitting_keeps_flexible_models_honest():
    """A 1-nearest-neighbour outcome model interpolates its training arm: fitted on
    all of it, the residuals are zero and the standard error collapses; cross-fitted,
    each unit's residual comes from a model that did not see it."""
    X, t, y = _ks(400, 1)
    controls = t == 0
    knn = KNeighborsRegressor(n_neighbors=1)
    s = np.ones(t.size)
    fitted = outcome_predictions(knn, X, y, controls, s)
    crossed_pred = outcome_predictions(knn, X, y, controls, s, cross_fit=5, random_state=0)
    np.testing.assert_array_equal(fitted[controls], y[controls])
    assert not np.any(crossed_pred[controls] == y[controls])
    eb = EntropyBalancer().fit(X, t)
    in_sample = eb.estimate_effect(y, augment=knn)
    crossed = eb.estimate_effect(y, augment=knn, cross_fit=5)
    assert crossed.se > in_sample.se
    assert "5-fold cross-fitted" in str(crossed.summary())
    # A correct linear model: cross-fitting changes the estimate little.
    linear = eb.estimate_effect(y, augment=LinearRegression())
    linear_cf = eb.estimate_effect(y, augment=LinearRegression(), cross_fit=5)
    assert abs(linear.effect - linear_cf.effect) < 0.3 * linear.se
    for bad in (1.5, 0, -2, True):
        with pytest.raises(ValueError, match="cross_fit"):
            eb.estimate_effect(y, augment="ols", cross_fit=bad)


def test_default_residual_se_is_reproducible_and_ignores_row_order():
    """With random_state=None the cross-fitting folds come from the data: the same
    standard error on every call and in any row order; a seed draws other folds."""
    X, t, y = _ks(300, 2)
    bal = IPMBalancer().fit(X, t)
    first = bal.estimate_effect(y)
    assert first.se_method == "residual"
    assert bal.estimate_effect(y).se == first.se
    perm = np.random.default_rng(0).permutation(t.size)
    shuffled = IPMBalancer().fit(X[perm], t[perm]).estimate_effect(y[perm])
    # the refitted weights agree to the solver's tolerance; random folds would move
    # the standard error by several percent
    np.testing.assert_allclose(shuffled.se, first.se, rtol=5e-3)
    np.testing.assert_allclose(shuffled.effect, first.effect, rtol=5e-3)
    seeded = [IPMBalancer(random_state=r).fit(X, t).estimate_effect(y).se for r in (0, 0, 1)]
    assert seeded[0] == seeded[1] != seeded[2]


def test_kernel_ridge_outcome_reproduces_the_kernel_and_fits_nonlinear_functions():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3))
    y = X[:, 0] ** 2 - X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(300)
    model = KernelRidgeOutcome(bandwidth=2.0).fit(X, y)
    Z = (X - model.mean_) / model.scale_
    phi = model._features(Z)[:, 3:]
    from weightstats._kernels import kernel_matrix

    K = kernel_matrix(Z, Z, bandwidth=2.0)
    assert np.abs(phi @ phi.T - K).max() < 1e-6
    X_new = rng.standard_normal((50, 3))
    y_new = X_new[:, 0] ** 2 - X_new[:, 1] * X_new[:, 2]
    assert np.sqrt(np.mean((model.predict(X_new) - y_new) ** 2)) < 0.3
    # Integer sample weights equal repeated rows (for a given penalty: leave-one-out
    # cross-validation itself differs between the two).
    counts = rng.integers(1, 3, size=300)
    rows = np.repeat(np.arange(300), counts)
    fixed = {"bandwidth": 2.0, "scaling": (np.zeros(3), np.ones(3)), "alphas": (1e-2,)}
    weighted, repeated = KernelRidgeOutcome(**fixed), KernelRidgeOutcome(**fixed)
    np.testing.assert_allclose(weighted.fit(X, y, sample_weight=counts).predict(X_new),
                               repeated.fit(X[rows], y[rows]).predict(X_new), atol=1e-4)


# --------------------------------------------------------------------- bootstrap and messages


def test_bootstrap_reports_real_non_convergence():
    """Refits run without warnings; their own status is counted (it was always 0)."""
    X, t, y = _ks(200, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bal = IPMBalancer(max_iter=2, random_state=0).fit(X, t)
        res = bal.estimate_effect(y, se="bootstrap", n_bootstrap=6)
    assert not bal.solver_info_["converged"]
    assert res.summary().info["resamples with unconverged weights"] == "6 of 6"
    assert any("did not converge on 6" in note for note in res.summary().notes)
    ok = EntropyBalancer(random_state=0).fit(X, t).estimate_effect(y, se="bootstrap",
                                                                  n_bootstrap=6)
    assert ok.summary().info["resamples with unconverged weights"] == "0 of 6"


def test_bootstrap_replicates_accepts_a_convergence_flag():
    treated = np.r_[np.zeros(10, bool), np.ones(10, bool)]
    values, failed, unconverged = bootstrap_replicates(
        lambda idx: (float(idx.mean()), idx[0] % 2 == 0), treated, n_resamples=20,
        random_state=0)
    assert values.shape == (20,) and failed == 0 and 0 < unconverged < 20


def test_outcome_of_the_wrong_length_is_named_as_such():
    X, t, y = _ks(60, 0)
    bal = IPMBalancer().fit(X, t)
    with pytest.raises(ValueError, match="outcome y has 59 entries but the balancer was "
                                         "fitted on 60 rows"):
        bal.estimate_effect(y[:-1])
    with pytest.raises(ValueError, match="se must be one of"):
        bal.estimate_effect(y, se="jackknife")
