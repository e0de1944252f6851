"""Class-weighted metrics, Kalman-filtered SGD, coreset reweighting.

* ``f1``: :func:`class_weighted_f1_score` against scikit-learn's
  ``f1_score(average="weighted")`` (the same per-class work plus a weighted
  mean; the ratio shows the overhead of the wrapper).
* ``kalman_sgd``: :class:`KalmanSGDRegressor` against ``SGDRegressor`` with
  the same budget (per-sample steps, constant rate, same passes). Ours does
  more: it records the path, filters it and scores every candidate.
* ``kalman_sgd_selection`` (accuracy, not speed): test MSE relative to OLS of
  the candidate defaults of :class:`KalmanSGDRegressor` (the area rule with
  either curve loss, the Kalman forecast, the area rule scored on a held-out
  slice) on diabetes, Friedman #1 and statsmodels' ``fair``, 30 random
  75/25 splits (5 with ``--quick``), features standardised, default settings
  otherwise.
* ``coreset``: the reweighting step of :class:`CoresetReweighter` on a 5%
  coreset against reweighting every sample (``coreset_size=1.0``, the paper's
  W-ERM), on the long-tailed digits task of ``notebooks/reweighting.ipynb`` at
  several training-set sizes. One BLAS thread for both.
"""

import numpy as np
from sklearn.datasets import load_diabetes, load_digits, make_friedman1, make_regression
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression, LogisticRegression, SGDRegressor
from sklearn.metrics import f1_score, mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from weightstats.linear_model import KalmanSGDRegressor
from weightstats.metrics import class_weighted_f1_score
from weightstats.reweighting import CoresetReweighter

from ._timing import best_time


def f1(quick):
    n = 20_000 if quick else 200_000
    rng = np.random.default_rng(0)
    y_true = rng.zipf(1.5, n) % 20
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, 20, n))
    rows = []
    peer_s = best_time(f1_score, y_true, y_pred, average="weighted")
    for scheme in ("weighted", "dodrans", "entropy"):
        ours_s = best_time(class_weighted_f1_score, y_true, y_pred, scheme=scheme)
        row = {"case": f"{scheme}, n={n}, 20 classes", "ours_s": round(ours_s, 4),
               "peer": "sklearn f1_score(average='weighted')", "peer_s": round(peer_s, 4),
               "ratio": round(peer_s / ours_s, 2)}
        if scheme == "weighted":
            row["max_abs_diff"] = abs(class_weighted_f1_score(y_true, y_pred, scheme="weighted")
                                      - f1_score(y_true, y_pred, average="weighted"))
        rows.append(row)
    return rows


def kalman_sgd(quick):
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    Xs, ys = make_regression(2_000 if quick else 20_000, 20, noise=5.0, random_state=0)
    cases = [("diabetes n=442 d=10, 50 passes", X, y, 50),
             (f"synthetic n={len(ys)} d=20, 5 passes", Xs, ys, 5)]
    rows = []
    for name, X_, y_, passes in cases:
        ours = KalmanSGDRegressor(learning_rate=0.01, max_iter=passes, random_state=0)
        peer = SGDRegressor(learning_rate="constant", eta0=0.01, penalty=None, tol=None,
                            max_iter=passes, random_state=0)
        ours_s = best_time(ours.fit, X_, y_, repeat=2)
        peer_s = best_time(peer.fit, X_, y_, repeat=2)
        rows.append({"case": name, "ours_s": round(ours_s, 3), "peer": "sklearn SGDRegressor",
                     "peer_s": round(peer_s, 3), "ratio": round(peer_s / ours_s, 3),
                     "updates": ours.n_updates_})
    return rows


def _regression_sets():
    import statsmodels.api as sm

    X, y = load_diabetes(return_X_y=True)
    yield "diabetes (n=442, d=10)", X, y
    X, y = make_friedman1(n_samples=1000, noise=1.0, random_state=0)
    yield "Friedman #1 (n=1000, d=10)", X, y
    fair = sm.datasets.fair.load_pandas().data
    yield ("statsmodels fair: affairs (n=6366, d=8)",
           fair.drop(columns="affairs").to_numpy(float), fair["affairs"].to_numpy(float))


def _held_out_area_rule(X, y, seed, fraction=0.2):
    """The area rule with the MSE on a held-out slice of the training rows as
    the curve loss (SGD on the rest): a candidate default, not an option."""
    X_fit, X_val, y_fit, y_val = train_test_split(X, y, test_size=fraction, random_state=seed)
    reg = KalmanSGDRegressor(random_state=seed).fit(X_fit, y_fit)
    K = reg.trajectory_.filter(like="kalman[").to_numpy()
    points = np.vstack([np.zeros((1, K.shape[1])), K])
    loss = np.mean((X_val @ points[:, :-1].T + points[:, -1] - y_val[:, None]) ** 2, axis=0)
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    area = 0.5 * (loss[:-1] + loss[1:]) * steps
    return K[int(np.argmin(np.where(steps > 0, area, np.inf)))]


def kalman_sgd_selection(quick):
    rules = {
        "area rule, curve_loss='input_mean' (the old default)":
            dict(curve_loss="input_mean", selection="min_area"),
        "area rule, curve_loss='mse'": dict(curve_loss="mse", selection="min_area"),
        "selection='last', the Kalman forecast (default)": dict(selection="last"),
    }
    rows = []
    for name, X, y in _regression_sets():
        ratios = {rule: [] for rule in [*rules, "area rule, MSE on a held-out 20% slice",
                                        "SGDRegressor, last iterate"]}
        for split in range(5 if quick else 30):
            X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=split)
            scaler = StandardScaler().fit(X_tr)
            X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
            ols = mean_squared_error(y_te, LinearRegression().fit(X_tr, y_tr).predict(X_te))
            predictions = {
                rule: KalmanSGDRegressor(random_state=split, **params).fit(X_tr, y_tr).predict(X_te)
                for rule, params in rules.items()
            }
            w = _held_out_area_rule(X_tr, y_tr, split)
            predictions["area rule, MSE on a held-out 20% slice"] = X_te @ w[:-1] + w[-1]
            predictions["SGDRegressor, last iterate"] = SGDRegressor(
                learning_rate="constant", eta0=0.01, penalty=None, tol=None, max_iter=20,
                random_state=split).fit(X_tr, y_tr).predict(X_te)
            for rule, pred in predictions.items():
                ratios[rule].append(mean_squared_error(y_te, pred) / ols)
        for rule, values in ratios.items():
            rows.append({"case": name, "rule": rule, "splits": len(values),
                         "test_mse_over_ols": round(float(np.mean(values)), 4),
                         "sd": round(float(np.std(values, ddof=1)), 4)})
    return rows


def _long_tailed_digits(seed=0, ratio=0.05):
    digits = load_digits()
    rng = np.random.default_rng(seed)
    train, test = train_test_split(np.arange(len(digits.target)), test_size=0.3,
                                   stratify=digits.target, random_state=seed)
    images = digits.images[train]
    shifted = [np.roll(images, (dy, dx), axis=(1, 2)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    X = np.concatenate(shifted).reshape(-1, 64)
    y = np.tile(digits.target[train], 9)
    embed = make_pipeline(StandardScaler(), PCA(30, random_state=0)).fit(X)
    order = rng.permutation(10)
    keep = np.concatenate([
        rng.choice(np.flatnonzero(y == c), int(round(ratio ** (order[c] / 9) * np.sum(y == c))),
                   replace=False)
        for c in range(10)
    ])
    X_test, y_test = digits.images[test].reshape(-1, 64), digits.target[test]
    val = np.concatenate([np.flatnonzero(y_test == c)[:10] for c in range(10)])
    return embed.transform(X[keep]), y[keep], embed.transform(X_test[val]), y_test[val]


def _reweighting_seconds(X, y, X_val, y_val, **params):
    model = CoresetReweighter(LogisticRegression(max_iter=3000), random_state=0, **params)
    model.fit(X, y, X_val=X_val, y_val=y_val)
    return model.fit_time_["selection"] + model.fit_time_["reweighting"]


def coreset(quick):
    X, y, X_val, y_val = _long_tailed_digits()
    sizes = [1000] if quick else [1000, 2000, len(y)]
    rng = np.random.default_rng(0)
    rows = []
    with threadpool_limits(1):
        for n in sizes:
            rows_n = np.sort(rng.choice(len(y), n, replace=False))
            data = (X[rows_n], y[rows_n], X_val, y_val)
            peer_s = _reweighting_seconds(*data, coreset_size=1.0)
            for propagate in ("nearest", "nearest_same_class"):
                ours_s = _reweighting_seconds(*data, coreset_size=0.05, propagate=propagate)
                rows.append({"case": f"5% coreset, {propagate}, n={n}", "ours_s": round(ours_s, 3),
                             "peer": "reweight all samples (W-ERM)", "peer_s": round(peer_s, 3),
                             "ratio": round(peer_s / ours_s, 2)})
    return rows


BENCHMARKS = {"f1": f1, "kalman_sgd": kalman_sgd, "kalman_sgd_selection": kalman_sgd_selection,
              "coreset": coreset}
