"""Golden values for the simplex-constrained least-squares QP (ConvexEnsembleRegressor).

Writes ``convex_ensemble_diabetes.csv`` (5-fold out-of-fold predictions of
ridge, random forest, gradient boosting and k-NN on scikit-learn's diabetes
data, plus the target and a data-point weight column) and
``convex_ensemble_golden.json`` (optimal convex weights and objective from
three independent solvers: quadprog's Goldfarb-Idnani dual active set, the
algorithm of R SuperLearner's ``method.CC_LS``; cvxpy with CLARABEL; scipy's
SLSQP). Run once; the tests read the files and never need these solvers'
extras (quadprog is not a test dependency).

    python tests/results/make_convex_ensemble_golden.py
"""

import json
from pathlib import Path

import cvxpy as cp
import numpy as np
import pandas as pd
import quadprog
import scipy
import sklearn
from scipy.optimize import minimize
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.neighbors import KNeighborsRegressor

HERE = Path(__file__).parent

X, y = load_diabetes(return_X_y=True)
models = {
    "ridge": RidgeCV(),
    "rf": RandomForestRegressor(n_estimators=200, random_state=0),
    "gbr": GradientBoostingRegressor(random_state=0),
    "knn": KNeighborsRegressor(n_neighbors=10),
}
cv = KFold(5)
P = np.column_stack([cross_val_predict(m, X, y, cv=cv) for m in models.values()])
# Data-point weights: 2 above the median, as in the notes (the weights change).
v = np.where(y > np.median(y), 2.0, 1.0)
frame = pd.DataFrame(P, columns=list(models))
frame["y"] = y
frame["weight"] = v
frame.to_csv(HERE / "convex_ensemble_diabetes.csv", index=False, float_format="%.17g")


def objective(w, weights):
    r = y - P @ w
    return float(np.sum(weights * r**2) / weights.sum())


def scaled(weights):
    A = (P - y[:, None]) * np.sqrt(weights / weights.sum())[:, None]
    return A / np.sqrt(np.max(np.sum(A**2, axis=0)))


def solve_quadprog(weights):
    A = scaled(weights)
    G = A.T @ A  # positive definite here (condition number ~ 1e1)
    m = G.shape[0]
    C = np.column_stack([np.ones(m), np.eye(m)])
    b = np.concatenate([[1.0], np.zeros(m)])
    w = quadprog.solve_qp(G, np.zeros(m), C, b, meq=1)[0]
    w = np.clip(w, 0, None)
    return w / w.sum()


def solve_cvxpy(weights):
    A = scaled(weights)
    w = cp.Variable(A.shape[1])
    cp.Problem(cp.Minimize(cp.sum_squares(A @ w)), [w >= 0, cp.sum(w) == 1]).solve(
        solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12
    )
    out = np.clip(w.value, 0, None)
    return out / out.sum()


def solve_slsqp(weights):
    A = scaled(weights)
    m = A.shape[1]
    res = minimize(
        lambda w: float(np.sum((A @ w) ** 2)),
        np.full(m, 1.0 / m),
        jac=lambda w: 2 * A.T @ (A @ w),
        bounds=[(0, None)] * m,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
        method="SLSQP",
        options={"ftol": 1e-16, "maxiter": 1000},
    )
    out = np.clip(res.x, 0, None)
    return out / out.sum()


golden = {
    "versions": {
        "sklearn": sklearn.__version__,
        "scipy": scipy.__version__,
        "cvxpy": cp.__version__,
        "quadprog": "0.1.14",
    },
    "models": list(models),
}
for label, weights in (("unweighted", np.ones_like(y)), ("weighted", v)):
    golden[label] = {}
    for solver, solve in (("quadprog", solve_quadprog), ("cvxpy", solve_cvxpy),
                          ("slsqp", solve_slsqp)):
        w = solve(weights)
        golden[label][solver] = {"weights": w.tolist(), "objective": objective(w, weights)}
(HERE / "convex_ensemble_golden.json").write_text(json.dumps(golden, indent=2) + "\n")
print(json.dumps(golden, indent=2))
