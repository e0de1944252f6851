"""A generic-solver formulation of the PRESTO objective (test oracle and benchmark peer).

The same objective as ``OrdinalProblem`` (standardised predictors, difference
parametrisation), written for cvxpy. With ``t = b - a`` the log-probability of
a middle class is ``-softplus(-b) - softplus(a) + log(1 - exp(-t))``: concave
(``log`` of the concave ``1 - exp(a - b)``), so the problem is DCP and goes to
an exponential-cone solver (Clarabel by default).
"""

import numpy as np


class CvxpyPresto:
    """The PRESTO problem of an ``OrdinalProblem`` in cvxpy, the penalty a parameter.

    Building the problem once and changing ``lam`` lets a path reuse cvxpy's
    compilation (DPP), which is the fair way to time cvxpy on a path.
    """

    def __init__(self, problem, *, penalize_first=False):
        import cvxpy as cp

        self._cp = cp
        K1, P1 = problem.shape
        _, penalty = problem.free_and_penalty(penalize_first)
        self.theta = cp.Variable((K1, P1))
        self.lam = cp.Parameter(nonneg=True)
        B = [cp.sum(self.theta[: k + 1, :], axis=0) for k in range(K1)]
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
        penalty_term = self.lam * cp.sum(cp.multiply(penalty, cp.abs(self.theta)))
        self.problem = cp.Problem(cp.Minimize(cp.sum(terms) + penalty_term))

    def solve(self, lam, solver=None, **solver_options):
        """Solve at penalty ``lam``; returns ``(theta, optimal value)``."""
        self.lam.value = lam
        self.problem.solve(solver=solver or self._cp.CLARABEL, **solver_options)
        if self.theta.value is None:
            raise RuntimeError(f"cvxpy failed: status {self.problem.status}")
        return np.asarray(self.theta.value), float(self.problem.value)


def presto_cvxpy(problem, lam, *, penalize_first=False, solver=None, **solver_options):
    """Solve the PRESTO problem of ``problem`` once with cvxpy: ``(theta, value)``."""
    return CvxpyPresto(problem, penalize_first=penalize_first).solve(lam, solver, **solver_options)
