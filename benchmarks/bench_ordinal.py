"""Ordinal: PRESTO's solver vs cvxpy on the same objective; proportional odds vs statsmodels.

Data: the paper's sparse-differences simulation (n = 2500, p = 10, K = 4,
rare last class; ``make_relaxed_proportional_odds``). The peer for PRESTO is
the same objective (standardised predictors, difference parametrisation)
written for cvxpy and solved by Clarabel (``weightstats.ordinal._reference``),
with the penalty as a ``cp.Parameter`` so the path reuses one compiled
problem. Objective differences are reported alongside the times (the issue's
target: at least 20x faster at equal objective). The peer for the
proportional-odds fit is statsmodels' ``OrderedModel`` (Newton and its default
BFGS).
"""

import time

import numpy as np

from weightstats.datasets import make_relaxed_proportional_odds
from weightstats.ordinal import PRESTOClassifier, PRESTOClassifierCV, ProportionalOddsClassifier
from weightstats.ordinal._reference import CvxpyPresto
from weightstats.ordinal._solver import OrdinalProblem

from ._timing import best_time


def _data(quick):
    n = 500 if quick else 2500
    sim = make_relaxed_proportional_odds(n, random_state=1)
    return sim.data, sim.target


def _cvxpy_fit(X, y, lam):
    problem = OrdinalProblem(X, y, np.ones(y.size), int(y.max()) + 1)
    return problem, CvxpyPresto(problem).solve(lam)[0]


def fixed_alpha_vs_cvxpy(quick):
    X, y = _data(quick)
    ours = PRESTOClassifier(alpha=0.01).fit(X, y)
    alpha = 0.1 * ours.alpha_max_
    ours_s = best_time(lambda: PRESTOClassifier(alpha=alpha).fit(X, y))
    ours = PRESTOClassifier(alpha=alpha).fit(X, y)
    start = time.perf_counter()
    problem, theta_cvx = _cvxpy_fit(X, y, alpha)
    peer_s = time.perf_counter() - start
    _, penalty = problem.free_and_penalty(False)
    theta_ours = problem.path([alpha], False).thetas[0]
    obj_ours = problem.objective(theta_ours, alpha, penalty)
    obj_cvx = problem.objective(theta_cvx, alpha, penalty)
    return [
        {
            "case": f"PRESTO fit alpha=0.1*alpha_max n={y.size} p={X.shape[1]} K=4",
            "ours_s": round(ours_s, 4),
            "peer": "cvxpy 1.9 + Clarabel (same objective)",
            "peer_s": round(peer_s, 3),
            "ratio": round(peer_s / ours_s, 1),
            "objective_ours_minus_peer": float(obj_ours - obj_cvx),
        }
    ]


def cv_path_vs_cvxpy(quick):
    """The full cross-validated path: 20 penalties x (5 folds + all data)."""
    X, y = _data(quick)
    n_alphas = 5 if quick else 20
    est = PRESTOClassifierCV(alphas=n_alphas)
    ours_s = best_time(lambda: est.fit(X, y), repeat=2)
    est.fit(X, y)
    from sklearn.model_selection import StratifiedKFold

    start = time.perf_counter()
    worst = 0.0
    splits = [(np.arange(y.size), None), *StratifiedKFold(5).split(X, y)]
    for train, _ in splits:
        problem = OrdinalProblem(X[train], y[train], np.ones(train.size), 4)
        peer = CvxpyPresto(problem)
        thetas = [peer.solve(lam)[0] for lam in est.alphas_]
        if _ is None:
            full_problem, full_thetas = problem, thetas
    peer_s = time.perf_counter() - start
    # compare objectives along the path on all data
    path = full_problem.path(est.alphas_, False)
    _, penalty = full_problem.free_and_penalty(False)
    for lam, ours_theta, cvx_theta in zip(est.alphas_, path.thetas, full_thetas, strict=True):
        worst = max(
            worst,
            abs(full_problem.objective(ours_theta, lam, penalty)
                - full_problem.objective(cvx_theta, lam, penalty)),
        )
    return [
        {
            "case": f"PRESTOClassifierCV {n_alphas} alphas x 5 folds + refit path n={y.size}",
            "ours_s": round(ours_s, 3),
            "peer": "cvxpy 1.9 + Clarabel, 6 parametrised problems",
            "peer_s": round(peer_s, 2),
            "ratio": round(peer_s / ours_s, 1),
            "max_abs_objective_diff": float(worst),
        }
    ]


def po_vs_statsmodels(quick):
    import warnings

    import pandas as pd
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    X, y = _data(quick)
    rows = []
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    endog = pd.Series(pd.Categorical(y, ordered=True))
    ours_s = best_time(lambda: ProportionalOddsClassifier().fit(X, y))
    ours = ProportionalOddsClassifier().fit(X, y)
    for method in ("newton", "bfgs"):

        def peer(method=method):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return OrderedModel(endog, frame, distr="logit").fit(
                    method=method, disp=False, maxiter=1000
                )

        peer_s = best_time(peer, repeat=2)
        res = peer()
        rows.append(
            {
                "case": f"proportional odds n={y.size} p={X.shape[1]} K=4",
                "ours_s": round(ours_s, 4),
                "peer": f"statsmodels OrderedModel (method={method!r})",
                "peer_s": round(peer_s, 3),
                "ratio": round(peer_s / ours_s, 1),
                "loglik_ours_minus_peer": float(ours.log_likelihood_ - res.llf),
            }
        )
    return rows


BENCHMARKS = {
    "fixed_alpha_vs_cvxpy": fixed_alpha_vs_cvxpy,
    "cv_path_vs_cvxpy": cv_path_vs_cvxpy,
    "po_vs_statsmodels": po_vs_statsmodels,
}
