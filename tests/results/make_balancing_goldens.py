"""Golden values for tests/test_balancing.py from independent implementations.

* Balancing QPs (MMD, energy, moments, caps, penalties, ATE) solved by cvxpy
  with the Clarabel interior-point solver at tight tolerances, on kernel
  matrices built with scipy's ``cdist`` (not weightstats' kernels).
* The sigmoid-unit linear program solved by cvxpy.
* Entropy balancing as the maximum-entropy problem in cvxpy.
* The logistic propensity model on the LaLonde CPS data by statsmodels' GLM.
* Weighted difference of means with HC0 standard errors by statsmodels' WLS.

Run from the repository root: ``python tests/results/make_balancing_goldens.py``;
writes ``tests/results/balancing_goldens.json``.
"""

import json
from pathlib import Path

import cvxpy as cp
import numpy as np
import statsmodels.api as sm
from scipy.spatial.distance import cdist

OUT = Path(__file__).with_name("balancing_goldens.json")
SOLVER = {"solver": "CLARABEL", "tol_gap_abs": 1e-14, "tol_gap_rel": 1e-14,
          "tol_feas": 1e-14, "max_iter": 500}


def design(seed, n0, n1, d, shift=0.5):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.standard_normal((n0, d)), rng.standard_normal((n1, d)) + shift])
    X[:, 0] = np.exp(X[:, 0] / 2)  # a skewed column
    t = np.r_[np.zeros(n0), np.ones(n1)].astype(int)
    return X, t


def standardise(X):
    return (X - X.mean(axis=0)) / X.std(axis=0)


def kernel(A, B, ipm, bandwidth):
    if ipm == "mmd":
        return np.exp(-cdist(A, B, "sqeuclidean") / (2 * bandwidth**2))
    if ipm == "energy":
        na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
        return na[:, None] + nb[None, :] - cdist(A, B)
    return A @ B.T  # moments


def solve_arm(Zs, Zt, ipm, bandwidth, cap=None, l2_penalty=0.0):
    """min m'Kss m - 2 m'Kst t + t'Ktt t + l2_penalty * sum(m^2), m on the (capped) simplex."""
    n = Zs.shape[0]
    t = np.full(Zt.shape[0], 1 / Zt.shape[0])
    Kss = kernel(Zs, Zs, ipm, bandwidth)
    b = kernel(Zs, Zt, ipm, bandwidth) @ t
    c = t @ kernel(Zt, Zt, ipm, bandwidth) @ t
    # Factor Kss = F F' (eigendecomposition, clipping rounding negatives) so the
    # objective is a sum of squares that Clarabel handles as a second-order cone.
    vals, vecs = np.linalg.eigh((Kss + Kss.T) / 2)
    F = vecs * np.sqrt(np.clip(vals, 0, None))
    m = cp.Variable(n)
    objective = cp.sum_squares(F.T @ m) - 2 * b @ m + c + l2_penalty * cp.sum_squares(m)
    constraints = [m >= 0, cp.sum(m) == 1]
    if cap is not None:
        constraints.append(m <= cap)
    problem = cp.Problem(cp.Minimize(objective), constraints)
    problem.solve(**SOLVER)
    x = np.clip(m.value, 0, None)
    x /= x.sum()
    value = float(x @ Kss @ x - 2 * b @ x + c)
    return x, value, float(l2_penalty * x @ x)


QP_CASES = {
    "mmd_bw1": dict(seed=1, n0=60, n1=30, d=3, ipm="mmd", bandwidth=1.0),
    "mmd_bw10": dict(seed=2, n0=80, n1=40, d=4, ipm="mmd", bandwidth=10.0),
    "mmd_cap": dict(seed=3, n0=70, n1=35, d=3, ipm="mmd", bandwidth=2.0, max_weight=2.0),
    "mmd_penalty": dict(seed=4, n0=60, n1=30, d=3, ipm="mmd", bandwidth=2.0, l2_penalty=0.01),
    "energy": dict(seed=5, n0=70, n1=35, d=3, ipm="energy", bandwidth=None),
    "moments": dict(seed=6, n0=50, n1=25, d=3, ipm="moments", bandwidth=None),
    "mmd_ate": dict(seed=7, n0=50, n1=40, d=3, ipm="mmd", bandwidth=1.5, estimand="ATE"),
}


def qp_goldens():
    out = {}
    for name, case in QP_CASES.items():
        X, t = design(case["seed"], case["n0"], case["n1"], case["d"])
        Z = standardise(X)
        estimand = case.get("estimand", "ATT")
        arms = ([("control", t == 0, t == 1)] if estimand == "ATT"
                else [("treated", t == 1, np.ones_like(t, bool)),
                      ("control", t == 0, np.ones_like(t, bool))])
        result = {"case": case, "X": X.tolist(), "t": t.tolist(), "arms": {}}
        for arm, source, target in arms:
            n_target = int(target.sum())
            cap = None
            if case.get("max_weight"):
                cap = case["max_weight"] / n_target
            # The estimator's l2_penalty is per 1/ESS: sum(m^2) with unit sample weights.
            x, value, penalty = solve_arm(Z[source], Z[target], case["ipm"], case["bandwidth"],
                                          cap=cap, l2_penalty=case.get("l2_penalty", 0.0))
            result["arms"][arm] = {"objective": value, "penalty": penalty,
                                   "weights": (x * n_target).tolist()}
        out[name] = result
    return out


def sigmoid_golden():
    X, t = design(8, 40, 20, 2)
    Z = standardise(X)
    rng = np.random.RandomState(0)  # the estimator draws units from RandomState(0)
    A = rng.standard_normal((Z.shape[1], 100))
    b = rng.standard_normal(100)
    F = 1 / (1 + np.exp(-(Z @ A + b)))
    mu = F[t == 1].mean(axis=0)
    m = cp.Variable(int((t == 0).sum()))
    tau = cp.Variable()
    diff = F[t == 0].T @ m - mu
    problem = cp.Problem(cp.Minimize(tau), [m >= 0, cp.sum(m) == 1, diff <= tau, -diff <= tau])
    problem.solve(**SOLVER)
    return {"X": X.tolist(), "t": t.tolist(), "max_abs_difference": float(tau.value)}


def entropy_golden():
    X, t = design(9, 80, 40, 3, shift=0.3)
    Z = standardise(X)
    mu = Z[t == 1].mean(axis=0)
    m = cp.Variable(int((t == 0).sum()))
    problem = cp.Problem(cp.Maximize(cp.sum(cp.entr(m))), [Z[t == 0].T @ m == mu, cp.sum(m) == 1])
    problem.solve(**SOLVER)
    x = np.clip(m.value, 0, None)
    return {"X": X.tolist(), "t": t.tolist(), "weights": (x / x.sum() * 40).tolist()}


def propensity_golden():
    from weightstats.datasets import load_lalonde

    data = load_lalonde(controls="cps")
    exog = sm.add_constant(data.data.to_numpy(float))
    fit = sm.GLM(data.treatment.to_numpy(), exog, family=sm.families.Binomial()).fit(tol=1e-12)
    return {"coef": fit.params.tolist(), "deviance": float(fit.deviance)}


def wls_golden():
    rng = np.random.default_rng(10)
    n = 120
    t = (rng.uniform(size=n) < 0.4).astype(int)
    y = 1 + 2 * t + rng.standard_normal(n)
    w = rng.uniform(0.2, 3.0, size=n)
    fit = sm.WLS(y, sm.add_constant(t.astype(float)), weights=w).fit(cov_type="HC0")
    return {"y": y.tolist(), "t": t.tolist(), "w": w.tolist(), "effect": float(fit.params[1]),
            "se_hc0": float(fit.bse[1])}


if __name__ == "__main__":
    goldens = {
        "qp": qp_goldens(),
        "sigmoid": sigmoid_golden(),
        "entropy": entropy_golden(),
        "propensity_lalonde_cps": propensity_golden(),
        "wls_hc0": wls_golden(),
        "versions": {"cvxpy": cp.__version__, "statsmodels": sm.__version__,
                     "numpy": np.__version__},
    }
    OUT.write_text(json.dumps(goldens, indent=1))
    print(f"wrote {OUT}")
