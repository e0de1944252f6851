"""A generic-solver formulation of the PRESTO objective (test oracle and benchmark peer).

The same objective as ``OrdinalProblem`` (standardised predictors, difference
parametrisation), written for cvxpy. With ``t = b - a`` the log-probability of
a middle class is ``-softplus(-b) - softplus(a) + log(1 - exp(-t))``: concave
(``log`` of the concave ``1 - exp(a - b)``), so the problem is DCP and goes to
an exponential-cone solver (Clarabel by default).
"""

import numpy as np


def presto_cvxpy(problem, lam, *, penalize_first=False, solver=None, **solver_options):
    """Solve the PRESTO problem of ``problem`` (an ``OrdinalProblem``) with cvxpy.

    Returns ``(theta, objective)``: the solution in the solver's
    parametrisation and the optimal value reported by cvxpy.
    """
    import cvxpy as cp

    K1, P1 = problem.shape
    _, penalty = problem.free_and_penalty(penalize_first)
    theta = cp.Variable((K1, P1))
    B = [cp.sum(theta[: k + 1, :], axis=0) for k in range(K1)]
    terms = []
    for c in range(K1 + 1):
        rows = slice(problem.bounds[c], problem.bounds[c + 1])
        Zc, vc = problem.Zt[rows], problem.v[rows]
        if c < K1:
            b = Zc @ B[c]
            terms.append(vc @ cp.logistic(-b))
        if c > 0:
            a = Zc @ B[c - 1]
            terms.append(vc @ cp.logistic(a))
        if 0 < c < K1:
            terms.append(-(vc @ cp.log(1 - cp.exp(a - b))))
    objective = cp.sum(terms) + lam * cp.sum(cp.multiply(penalty, cp.abs(theta)))
    prob = cp.Problem(cp.Minimize(objective))
    start = problem.base_fit(penalize_first)[0]
    theta.value = start
    prob.solve(solver=solver or cp.CLARABEL, **solver_options)
    if theta.value is None:
        raise RuntimeError(f"cvxpy failed: status {prob.status}")
    return np.asarray(theta.value), float(prob.value)
