"""Ensembles: the exact simplex QP, convex ensembles vs stacking, and CQR vs MAPIE.

* ``simplex_qp``: our active-set solver (Wolfe's minimum-norm point) against
  cvxpy (CLARABEL, on the same scaled problem) and scipy's SLSQP, on random
  out-of-fold prediction matrices with y around 1e6 (unscaled); time and the
  relative objective gap (positive: the peer is worse).
* ``convex_vs_stacking``: fit time of ``ConvexEnsembleRegressor`` and of
  ``StackingRegressor(final_estimator=LinearRegression(positive=True))`` on
  diabetes with the same base models and folds (both dominated by the base fits).
* ``cqr_vs_mapie``: split CQR around the same gradient-boosting quantile models
  (levels 0.05 / 0.5 / 0.95) against MAPIE's ``ConformalizedQuantileRegressor``
  over random splits of diabetes: coverage, width and WIS side by side, the
  largest difference between the two sets of bounds, and time ratios. MAPIE is
  not a dependency of weightstats: install it (``pip install mapie``) to run
  these rows; without it the group reports that it was skipped.
"""

import time

import numpy as np
from scipy.optimize import minimize
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor, StackingRegressor
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.model_selection import KFold, train_test_split
from sklearn.neighbors import KNeighborsRegressor

from weightstats.conformal import ConformalQuantileRegressor
from weightstats.ensemble import ConvexEnsembleRegressor, PerQuantileRegressor
from weightstats.ensemble._simplex_qp import solve_simplex_ls, solve_simplex_ls_cvxpy
from weightstats.metrics import interval_coverage, mean_interval_width, weighted_interval_score

from ._timing import best_time


def _slsqp(P, y):
    A = P - y[:, None]
    A = A / np.sqrt(np.max(np.sum(A**2, axis=0)))
    m = P.shape[1]
    res = minimize(lambda w: float(np.sum((A @ w) ** 2)), np.full(m, 1 / m),
                   jac=lambda w: 2 * A.T @ (A @ w), bounds=[(0, None)] * m,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                   method="SLSQP", options={"ftol": 1e-16, "maxiter": 2000})
    w = np.clip(res.x, 0, None)
    return w / w.sum()


def simplex_qp(quick):
    rows = []
    rng = np.random.default_rng(0)
    n = 500 if quick else 2000
    for m in (5, 20) if quick else (5, 20, 50, 100):
        y = 1e6 + 1e3 * rng.standard_normal(n)
        P = y[:, None] + 1e3 * rng.standard_normal((n, m)) * rng.uniform(0.5, 2, m)
        P[:, 1] = P[:, 0]  # a duplicated model
        ours = solve_simplex_ls(P, y)
        ours_s = best_time(solve_simplex_ls, P, y)

        def objective(w, P=P, y=y):
            return float(np.mean((y - P @ w) ** 2))

        for peer, solve in (
            ("cvxpy CLARABEL", lambda P=P, y=y: solve_simplex_ls_cvxpy(P, y).weights),
            ("scipy SLSQP", lambda P=P, y=y: _slsqp(P, y)),
        ):
            weights = solve()
            peer_s = best_time(solve, repeat=2)
            rows.append({
                "case": f"n={n} m={m} (one duplicate)",
                "ours_s": round(ours_s, 4), "peer": peer, "peer_s": round(peer_s, 4),
                "ratio": round(peer_s / ours_s, 1),
                "objective_gap_rel": (objective(weights) - ours.objective) / ours.objective,
                "condition_number": ours.condition_number,
            })
    return rows


def convex_vs_stacking(quick):
    X, y = load_diabetes(return_X_y=True)
    models = [("ridge", RidgeCV()),
              ("rf", RandomForestRegressor(n_estimators=50 if quick else 200, random_state=0)),
              ("gbr", GradientBoostingRegressor(random_state=0)),
              ("knn", KNeighborsRegressor(10))]
    ours = ConvexEnsembleRegressor(models, cv=5)
    peer = StackingRegressor(models, final_estimator=LinearRegression(positive=True), cv=KFold(5))
    ours_s = best_time(ours.fit, X, y, repeat=1 if quick else 3)
    peer_s = best_time(peer.fit, X, y, repeat=1 if quick else 3)
    return [{"case": "diabetes, 4 base models, 5 folds", "ours_s": round(ours_s, 3),
             "peer": "StackingRegressor(LinearRegression(positive=True))",
             "peer_s": round(peer_s, 3), "ratio": round(peer_s / ours_s, 2),
             "ours_weights": ours.fit(X, y).weights_.round(3).to_dict(),
             "peer_coefs": dict(zip([n for n, _ in models],
                                    peer.fit(X, y).final_estimator_.coef_.round(3), strict=True))}]


def cqr_vs_mapie(quick):
    try:
        from mapie.regression import ConformalizedQuantileRegressor
    except ImportError:
        return [{"case": "skipped: MAPIE is not installed (pip install mapie)"}]
    import mapie

    X, y = load_diabetes(return_X_y=True)
    gbr = GradientBoostingRegressor(loss="quantile", n_estimators=100, max_depth=3, random_state=0)
    stats = {key: [] for key in ("ours", "mapie")}
    times = {key: {"fit": 0.0, "predict": 0.0} for key in ("ours", "mapie")}
    max_diff = {"cqr": 0.0, "cqr_asymmetric": 0.0}
    for seed in range(3 if quick else 20):
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed)
        X_fit, X_cal, y_fit, y_cal = train_test_split(X_tr, y_tr, test_size=0.4, random_state=seed)

        start = time.perf_counter()
        ours = ConformalQuantileRegressor(
            PerQuantileRegressor.from_estimator(gbr, [0.05, 0.5, 0.95]), confidence_level=0.9
        ).fit(X_fit, y_fit).conformalize(X_cal, y_cal)
        times["ours"]["fit"] += time.perf_counter() - start
        start = time.perf_counter()
        ours_int = ours.predict_interval(X_te)[:, :, 0]
        median = ours.predict(X_te)
        times["ours"]["predict"] += time.perf_counter() - start

        start = time.perf_counter()
        peer = ConformalizedQuantileRegressor(gbr, confidence_level=0.9).fit(X_fit, y_fit)
        peer.conformalize(X_cal, y_cal)
        times["mapie"]["fit"] += time.perf_counter() - start
        start = time.perf_counter()
        peer_median, peer_int = peer.predict_interval(X_te, symmetric_correction=True)
        times["mapie"]["predict"] += time.perf_counter() - start
        peer_int = peer_int[:, :, 0]
        max_diff["cqr"] = max(max_diff["cqr"], float(np.abs(ours_int - peer_int).max()))

        asym = ConformalQuantileRegressor(
            PerQuantileRegressor.from_estimator(gbr, [0.05, 0.5, 0.95]), method="cqr_asymmetric"
        ).fit(X_fit, y_fit).conformalize(X_cal, y_cal)
        _, peer_asym = peer.predict_interval(X_te)  # MAPIE's default: asymmetric
        max_diff["cqr_asymmetric"] = max(
            max_diff["cqr_asymmetric"],
            float(np.abs(asym.predict_interval(X_te)[:, :, 0] - peer_asym[:, :, 0]).max()),
        )
        for key, bounds, m in (("ours", ours_int, median), ("mapie", peer_int, peer_median)):
            stats[key].append((
                interval_coverage(y_te, bounds[:, 0], bounds[:, 1]),
                mean_interval_width(bounds[:, 0], bounds[:, 1]),
                weighted_interval_score(y_te, bounds[:, 0], bounds[:, 1], 0.1, median=m),
            ))
    rows = []
    for key, label in (("ours", "weightstats ConformalQuantileRegressor"),
                       ("mapie", f"MAPIE {mapie.__version__} ConformalizedQuantileRegressor")):
        coverage, width, wis = np.mean(stats[key], axis=0)
        rows.append({"case": f"diabetes, {len(stats[key])} splits, GBR quantile, 90%",
                     "method": label, "coverage": round(coverage, 4),
                     "mean_width": round(width, 2), "WIS": round(wis, 3)})
    rows.append({
        "case": "fit + conformalize", "ours_s": round(times["ours"]["fit"], 3),
        "peer": "MAPIE", "peer_s": round(times["mapie"]["fit"], 3),
        "ratio": round(times["mapie"]["fit"] / times["ours"]["fit"], 2),
    })
    rows.append({
        "case": "predict_interval + predict", "ours_s": round(times["ours"]["predict"], 4),
        "peer": "MAPIE", "peer_s": round(times["mapie"]["predict"], 4),
        "ratio": round(times["mapie"]["predict"] / times["ours"]["predict"], 2),
    })
    rows.append({"case": "max |bounds ours - MAPIE|, symmetric (ours 'cqr')",
                 "value": max_diff["cqr"]})
    rows.append({"case": "max |bounds ours - MAPIE|, asymmetric (ours 'cqr_asymmetric')",
                 "value": max_diff["cqr_asymmetric"]})
    return rows


BENCHMARKS = {
    "simplex_qp": simplex_qp,
    "convex_vs_stacking": convex_vs_stacking,
    "cqr_vs_mapie": cqr_vs_mapie,
}
