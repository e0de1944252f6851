"""KalmanSGDRegressor (weightstats.linear_model._kalman_sgd) and its SGD kernel."""

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, SGDRegressor
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

from weightstats._kernels._sgd import sgd_squared_path, sgd_squared_path_ref
from weightstats.linear_model import KalmanSGDRegressor
from weightstats.linear_model._kalman_sgd import (
    _kalman_filter,
    _kalman_forecast,
    _kalman_init,
)


def _linear_data(rng, n=120, d=3, noise=0.0):
    X = rng.standard_normal((n, d))
    y = X @ np.linspace(-2, 2, d) + 0.7 + noise * rng.standard_normal(n)
    return X, y


# -- the SGD kernel -----------------------------------------------------------


@pytest.mark.kernel
@pytest.mark.parametrize("batch_size", [1, 4, 7])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_sgd_kernel_matches_numpy_reference(batch_size, fit_intercept, rng):
    X, y = _linear_data(rng, n=23, noise=0.5)
    w = rng.uniform(0, 2, 23)
    theta = rng.standard_normal(4)
    kwargs = dict(learning_rate=0.05, batch_size=batch_size, fit_intercept=fit_intercept)
    path, losses = sgd_squared_path(X, y, w, theta, **kwargs)
    path_ref, losses_ref = sgd_squared_path_ref(X, y, w, theta, **kwargs)
    assert path.shape == (-(-23 // batch_size), 4)
    np.testing.assert_allclose(path, path_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(losses, losses_ref, rtol=1e-12)
    if not fit_intercept:
        assert np.all(path[:, -1] == theta[-1])


# -- the Kalman filter --------------------------------------------------------


def _exact_filter(z, transition, q, r, kappa):
    """The same recursions in exact rational arithmetic (one coordinate)."""
    q_level, q_slope = (Fraction(v) for v in (np.atleast_1d(q).tolist() * 2)[:2])
    r, level, slope = Fraction(r), Fraction(0), Fraction(0)
    p00, p01, p11 = Fraction(kappa), Fraction(0), Fraction(kappa)
    out = []
    for zt in z:
        if transition == "random_walk":
            p00 += q_level
            gain = p00 / (p00 + r)
            level += gain * (Fraction(zt) - level)
            p00 *= 1 - gain
        else:
            level += slope
            p00, p01, p11 = p00 + 2 * p01 + p11 + q_level, p01 + p11, p11 + q_slope
            s = p00 + r
            k0, k1 = p00 / s, p01 / s
            e = Fraction(zt) - level
            level, slope = level + k0 * e, slope + k1 * e
            p00, p01, p11 = p00 - k0 * k0 * s, p01 - k0 * k1 * s, p11 - k1 * k1 * s
        out.append(float(level))
    return np.array(out)


@pytest.mark.parametrize("transition, q", [("random_walk", 0.3), ("local_linear", (0.3, 0.01))])
def test_kalman_filter_against_exact_arithmetic_and_statsmodels(transition, q, rng):
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    Z = np.cumsum(rng.standard_normal((40, 2)), axis=0)
    r = 2.0
    state = _kalman_init(transition, 2, q, r)
    kappa = state["cov"][0, 0]
    ours = _kalman_filter(state, Z)
    forecast = _kalman_forecast(state)
    for j in range(2):
        np.testing.assert_allclose(ours[:, j], _exact_filter(Z[:, j], transition, q, r, kappa),
                                   rtol=1e-10, atol=1e-10)
        n_states = 1 if transition == "random_walk" else 2
        model = UnobservedComponents(Z[:, j], level="llevel" if n_states == 1 else "lltrend")
        model.initialize_known(np.zeros(n_states), np.eye(n_states) * kappa)
        res = model.filter([r, *np.atleast_1d(q)])
        # statsmodels' covariance update loses ~1e-7 after the near-diffuse
        # start (the exact arithmetic above sides with us), hence the tolerance.
        np.testing.assert_allclose(res.filtered_state[0], ours[:, j], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(res.forecast(1)[0], forecast[j], rtol=1e-6, atol=1e-6)


def test_kalman_filter_is_resumable(rng):
    Z = rng.standard_normal((30, 3))
    for transition, q in (("random_walk", 0.1), ("local_linear", (0.1, 0.01))):
        whole = _kalman_filter(_kalman_init(transition, 3, q, 1.0), Z)
        state = _kalman_init(transition, 3, q, 1.0)
        parts = np.vstack([_kalman_filter(state, Z[:11]), _kalman_filter(state, Z[11:])])
        np.testing.assert_array_equal(parts, whole)


# -- the estimator --------------------------------------------------------------


@pytest.mark.parametrize("transition", ["random_walk", "local_linear"])
@pytest.mark.parametrize("curve_loss", ["input_mean", "mse"])
@pytest.mark.parametrize("selection", ["min_area", "last"])
def test_recovers_noiseless_coefficients(transition, curve_loss, selection, rng):
    X, y = _linear_data(rng)
    reg = KalmanSGDRegressor(learning_rate=0.05, max_iter=30, transition=transition,
                             process_noise=1e-3 if transition == "random_walk" else (1e-3, 1e-6),
                             curve_loss=curve_loss, selection=selection, random_state=0)
    reg.fit(X, y)
    np.testing.assert_allclose(reg.coef_, np.linspace(-2, 2, 3), atol=1e-4)
    assert reg.intercept_ == pytest.approx(0.7, abs=1e-4)


def _diabetes_split(seed):
    X, y = load_diabetes(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=seed)


@pytest.mark.slow
def test_diabetes_test_mse_within_5_percent_of_ols_and_sgd():
    """Same budget for both SGDs: per-sample steps, constant rate 0.01, 50
    shuffled epochs, no penalty; mean test MSE over 3 splits x 2 seeds."""
    mse = {"ols": [], "sgd": [], "kalman": []}
    for split in range(3):
        Xtr, Xte, ytr, yte = _diabetes_split(split)
        for seed in range(2):
            models = {
                "ols": LinearRegression(),
                "sgd": SGDRegressor(learning_rate="constant", eta0=0.01, max_iter=50,
                                    tol=None, penalty=None, random_state=seed),
                "kalman": KalmanSGDRegressor(learning_rate=0.01, max_iter=50, batch_size=1,
                                             random_state=seed),
            }
            for name, model in models.items():
                pipe = make_pipeline(StandardScaler(), model).fit(Xtr, ytr)
                mse[name].append(mean_squared_error(yte, pipe.predict(Xte)))
    means = {name: np.mean(values) for name, values in mse.items()}
    assert abs(means["kalman"] / means["ols"] - 1) < 0.05, means
    assert abs(means["kalman"] / means["sgd"] - 1) < 0.05, means


@pytest.mark.parametrize("batch_size", [1, 7])
@pytest.mark.parametrize("transition", ["random_walk", "local_linear"])
def test_partial_fit_stream_equals_fit_on_concatenation(batch_size, transition, rng):
    X, y = _linear_data(rng, n=61, noise=0.3)
    w = rng.uniform(0.5, 2.0, 61)
    params = dict(batch_size=batch_size, transition=transition, curve_loss="mse",
                  learning_rate=0.03)
    one = KalmanSGDRegressor(max_iter=1, shuffle=False, **params).fit(X, y, sample_weight=w)
    stream = KalmanSGDRegressor(**params)
    for chunk in np.array_split(np.arange(61), [5, 6, 30, 44]):
        stream.partial_fit(X[chunk], y[chunk], sample_weight=w[chunk])
    _assert_same_fit(stream, one)
    # Several epochs: fit is a stream of (shuffled) passes.
    seed = 3
    many = KalmanSGDRegressor(max_iter=3, random_state=seed, **params).fit(X, y, sample_weight=w)
    stream = KalmanSGDRegressor(**params)
    perm_rng = check_random_state(seed)
    for _ in range(3):
        order = perm_rng.permutation(61)
        for chunk in np.array_split(order, 4):
            stream.partial_fit(X[chunk], y[chunk], sample_weight=w[chunk])
    _assert_same_fit(stream, many)


def _assert_same_fit(a, b):
    ta, tb = a.trajectory_, b.trajectory_
    # SGD and filter paths are computed in the same order: identical.
    sgd_kalman = [c for c in ta.columns if c.startswith(("sgd", "kalman"))] + ["batch_loss"]
    pd.testing.assert_frame_equal(ta[sgd_kalman], tb[sgd_kalman], check_exact=True)
    # The curve losses use sums accumulated chunk by chunk: equal to rounding.
    np.testing.assert_allclose(ta[["curve_loss", "area"]], tb[["curve_loss", "area"]],
                               rtol=1e-9, atol=1e-12)
    assert a.selected_update_ == b.selected_update_
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-12)
    assert a.intercept_ == pytest.approx(b.intercept_, rel=1e-12)
    assert a.n_updates_ == b.n_updates_


def test_trajectory_and_area_definitions(rng):
    X, y = _linear_data(rng, n=50, noise=0.5)
    w = rng.uniform(0.5, 2.0, 50)
    reg = KalmanSGDRegressor(max_iter=2, batch_size=5, curve_loss="mse", selection="min_area",
                             random_state=0)
    reg.fit(X, y, sample_weight=w)
    traj = reg.trajectory_
    assert traj.shape == (20, 1 + 4 + 4 + 2)
    assert list(traj.columns[:3]) == ["batch_loss", "sgd[x0]", "sgd[x1]"]
    kalman = traj.filter(like="kalman").to_numpy()
    # curve_loss="mse" is the weighted training MSE of each filtered vector.
    direct = [np.average((X @ k[:-1] + k[-1] - y) ** 2, weights=w) for k in kalman]
    np.testing.assert_allclose(traj["curve_loss"], direct, rtol=1e-9)
    # Areas are trapezoids over the path length from the zero start: their sum
    # is the trapezoid integral of the whole piecewise-linear curve.
    points = np.vstack([np.zeros(4), kalman])
    s = np.r_[0, np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))]
    loss0 = np.average(y**2, weights=w)
    curve = np.r_[loss0, traj["curve_loss"]]
    assert traj["area"].sum() == pytest.approx(np.trapezoid(curve, s), rel=1e-10)
    best = int(traj["area"].to_numpy().argmin()) + 1
    assert reg.selected_update_ == best
    np.testing.assert_array_equal(np.r_[reg.coef_, reg.intercept_], kalman[best - 1])
    # input_mean: the squared error of the prediction at the weighted input means.
    reg_mean = clone(reg).set_params(curve_loss="input_mean").fit(X, y, sample_weight=w)
    xbar, ybar = np.average(X, axis=0, weights=w), np.average(y, weights=w)
    k = reg_mean.trajectory_.filter(like="kalman").to_numpy()
    np.testing.assert_allclose(reg_mean.trajectory_["curve_loss"],
                               (k[:, :-1] @ xbar + k[:, -1] - ybar) ** 2, rtol=1e-8, atol=1e-12)


def test_default_selection_sees_the_coefficients(rng):
    """The old default (input_mean loss, minimum area) scored every candidate by
    (b - mean(y))^2 on standardised features: the coefficients never entered the
    choice. The default is now the Kalman forecast, which measured best."""
    X, y = _linear_data(rng, n=60, noise=0.5)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    reg = KalmanSGDRegressor(max_iter=3, random_state=0).fit(X, y)
    assert reg.get_params()["selection"] == "last"
    assert reg.selected_update_ == reg.n_updates_ + 1
    np.testing.assert_array_equal(np.r_[reg.coef_, reg.intercept_], reg.kalman_forecast_)
    # The reason: input_mean's curve loss depends on the intercept alone here.
    k = reg.trajectory_.filter(like="kalman").to_numpy()
    np.testing.assert_allclose(reg.trajectory_["curve_loss"], (k[:, -1] - y.mean()) ** 2,
                               rtol=1e-8, atol=1e-10)


def test_feature_names_label_the_trajectory(rng):
    X, y = _linear_data(rng, n=30)
    frame = pd.DataFrame(X, columns=["age", "bmi", "bp"])
    reg = KalmanSGDRegressor(max_iter=1).fit(frame, y)
    assert "kalman[bmi]" in reg.trajectory_.columns
    assert "sgd[intercept]" in reg.trajectory_.columns


def test_selection_last_is_the_kalman_forecast(rng):
    X, y = _linear_data(rng, n=40, noise=0.5)
    rw = KalmanSGDRegressor(max_iter=2, selection="last", random_state=0).fit(X, y)
    np.testing.assert_array_equal(np.r_[rw.coef_, rw.intercept_], rw.kalman_forecast_)
    # For a random walk the forecast is the last filtered vector.
    last_filtered = rw.trajectory_.filter(like="kalman").iloc[-1]
    np.testing.assert_array_equal(rw.kalman_forecast_, last_filtered)
    assert rw.selected_update_ == rw.n_updates_ + 1
    llt = clone(rw).set_params(transition="local_linear", process_noise=(1e-3, 1e-5)).fit(X, y)
    assert not np.allclose(llt.kalman_forecast_, llt.trajectory_.filter(like="kalman").iloc[-1],
                           rtol=0, atol=1e-14)


def test_without_intercept(rng):
    X = rng.standard_normal((80, 2))
    y = X @ [1.5, -0.5]
    reg = KalmanSGDRegressor(max_iter=20, fit_intercept=False, learning_rate=0.05).fit(X, y)
    assert reg.intercept_ == 0.0
    np.testing.assert_allclose(reg.coef_, [1.5, -0.5], atol=1e-4)


@given(scale=st.sampled_from([0.5, 2.0, 4.0]))
def test_uniform_sample_weight_equals_scaled_learning_rate(scale):
    """A weight c on every row scales each step by c, like learning rate c * lr;
    both curve losses are unchanged by uniform weights."""
    X, y = _linear_data(np.random.default_rng(5), n=40, noise=0.3)
    base = dict(max_iter=2, batch_size=3, random_state=1)
    weighted = KalmanSGDRegressor(learning_rate=0.01, **base).fit(
        X, y, sample_weight=np.full(40, scale))
    scaled = KalmanSGDRegressor(learning_rate=0.01 * scale, **base).fit(X, y)
    tw, ts = weighted.trajectory_, scaled.trajectory_
    np.testing.assert_allclose(tw["batch_loss"], scale * ts["batch_loss"], rtol=1e-9)
    np.testing.assert_allclose(tw.drop(columns="batch_loss"), ts.drop(columns="batch_loss"),
                               rtol=1e-9, atol=1e-12)


def test_zero_weight_rows_at_the_start_are_not_selected(rng):
    """A first batch of zero-weight rows leaves the weights at zero: a segment
    of length zero, whose zero area must not win."""
    X, y = _linear_data(rng, n=30, noise=0.1)
    w = np.ones(30)
    w[:3] = 0.0
    reg = KalmanSGDRegressor(max_iter=5, shuffle=False, learning_rate=0.05,
                             selection="min_area").fit(X, y, sample_weight=w)
    assert reg.trajectory_["area"].iloc[0] == 0.0
    assert reg.selected_update_ > 3
    assert np.abs(reg.coef_).sum() > 1.0


def test_idempotent_and_n_features_in_on_scaled_data(rng):
    """The scikit-learn checks marked xfail (they use un-scaled X), on scaled X."""
    X, y = _linear_data(rng, n=40, noise=0.2)
    reg = KalmanSGDRegressor(max_iter=3, random_state=0)
    first = reg.fit(X, y).predict(X)
    np.testing.assert_array_equal(reg.fit(X, y).predict(X), first)
    assert reg.n_features_in_ == 3
    with pytest.raises(ValueError, match="features"):
        reg.predict(X[:, :2])


def test_divergence_raises_with_advice(rng):
    X = rng.normal(loc=100, size=(20, 2))
    with pytest.raises(ValueError, match="diverged.*standardise X"):
        KalmanSGDRegressor().fit(X, X[:, 0])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"transition": "random_walk", "process_noise": (1e-3, 1e-4)}, "process_noise"),
        ({"transition": "local_linear", "process_noise": (1e-3, 1e-4, 1.0)}, "process_noise"),
        ({"process_noise": -1.0}, "process_noise"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"selection": "best"}, "selection"),
        ({"transition": "ar1"}, "transition"),
    ],
)
def test_bad_parameters_raise(params, match, rng):
    X, y = _linear_data(rng, n=10)
    with pytest.raises(ValueError, match=match):
        KalmanSGDRegressor(**params).fit(X, y)


def test_partial_fit_checks_feature_count(rng):
    X, y = _linear_data(rng, n=20)
    reg = KalmanSGDRegressor().partial_fit(X, y)
    assert reg.n_iter_ == 1
    with pytest.raises(ValueError, match="features"):
        reg.partial_fit(X[:, :2], y)


def test_steady_state_random_walk_filter_matches_exact_and_resumes(rng):
    """Once the variance has converged the random walk runs as one IIR filter
    (scipy.signal.lfilter); it must agree with the recursion and resume across
    chunks exactly."""
    Z = np.cumsum(rng.standard_normal((400, 2)), axis=0)
    q, r = 0.05, 1.0
    state = _kalman_init("random_walk", 2, q, r)
    kappa = state["cov"][0, 0]
    whole = _kalman_filter(state, Z)
    assert state["cov"][0, 0] == pytest.approx((np.sqrt(q**2 + 4 * q * r) - q) / 2, rel=1e-12)
    # The plain recursion, in floats for all rows and exactly for the first 120
    # (the switch to the IIR filter happens after about 80).
    level, p, plain = np.zeros(2), kappa, np.empty_like(Z)
    for t in range(400):
        p += q
        gain = p / (p + r)
        level = level + gain * (Z[t] - level)
        p *= 1 - gain
        plain[t] = level
    np.testing.assert_allclose(whole, plain, rtol=1e-12, atol=1e-12)
    exact = _exact_filter(Z[:120, 0], "random_walk", q, r, kappa)
    np.testing.assert_allclose(whole[:120, 0], exact, rtol=1e-10, atol=1e-10)
    state = _kalman_init("random_walk", 2, q, r)
    parts = np.vstack([_kalman_filter(state, Z[:150]), _kalman_filter(state, Z[150:300]),
                       _kalman_filter(state, Z[300:])])
    np.testing.assert_array_equal(parts, whole)
