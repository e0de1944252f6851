"""Exact convex-combination weights: the simplex-constrained least-squares QP.

Problem (Echtenbruck et al., "weighted data points" variant)::

    minimise   sum_i v_i (y_i - sum_j w_j P_ij)^2     subject to  w >= 0, sum_j w_j = 1

Because the weights sum to one, ``y - P w = -(sum_j w_j a_j)`` with ``a_j = P_j - y``
(the residual vector of model ``j``): the problem is the *nearest point to the
origin in the convex hull* of the residual vectors, in the ``v``-weighted norm.
We solve that with Wolfe's (1976) minimum-norm-point algorithm, a finite primal
active-set method that keeps the active models affinely independent, so
duplicated and collinear models never make its linear systems singular:

1. Scale: drop zero-weight rows, normalise ``v`` to sum one and divide the
   residuals by the largest model RMSE (the objective is scale-equivariant;
   unscaled data with ``y`` around 1e6 is what makes OSQP report "infeasible").
2. Reduce: a thin QR factorisation maps the n residual vectors to m-dimensional
   points with the same inner products (no Gram matrix, so no squared condition
   number).
3. Wolfe's major/minor cycles, with ties broken towards the lowest model index.
4. Tie-break: the fitted values at the optimum are unique, the weights are not
   when models are (near-)collinear on the simplex. We then return the
   minimum-norm optimal weights (the limit of ridge-regularised solutions as the
   ridge goes to zero): duplicated models share their weight equally, and
   permuting the models permutes the weights. The minimum-norm point of the
   optimal face is a least-distance problem, solved exactly by Lawson and
   Hanson's LDP-via-NNLS reduction.

The condition number reported is that of the Hessian restricted to the simplex
tangent space ``{d : sum(d) = 0}`` (infinite when models are affinely
dependent), the quantity that decides whether the optimal weights are unique.
"""

import numpy as np
from scipy import linalg, optimize
from sklearn.exceptions import ConvergenceWarning

__all__ = ["SimplexLSResult", "solve_simplex_ls", "solve_simplex_ls_cvxpy"]

# Singular-value threshold (relative to the largest residual norm) below which
# a tangent direction counts as a tie: moving along it changes the scaled
# objective by < 1e-16.
_RANK_RTOL = 1e-8
# Wolfe's tolerances on the scaled problem (all residual norms <= 1).
_TOL_OPTIMAL = 1e-13
_TOL_POSITIVE = 1e-12


class SimplexLSResult:
    """Solution of the simplex-constrained least-squares problem.

    Attributes
    ----------
    weights : ndarray of shape (n_models,)
        Optimal convex weights (non-negative, sum one).
    objective : float
        Weighted mean squared error ``sum_i v_i (y_i - P_i w)^2 / sum_i v_i``.
    condition_number : float
        Condition number of the scaled Hessian on the simplex tangent space;
        ``inf`` when some models are affinely dependent (ties).
    degenerate : bool
        Whether the optimal weights were not unique and the minimum-norm ones
        were returned.
    kkt_residual : float
        Largest violation of the optimality conditions, in scaled units.
    n_iter : int
        Number of Wolfe major cycles.
    """

    def __init__(self, weights, objective, condition_number, degenerate, kkt_residual, n_iter):
        self.weights = weights
        self.objective = objective
        self.condition_number = condition_number
        self.degenerate = degenerate
        self.kkt_residual = kkt_residual
        self.n_iter = n_iter

    def __repr__(self):
        return (
            f"SimplexLSResult(weights={np.array2string(self.weights, precision=4)}, "
            f"objective={self.objective:.6g}, condition_number={self.condition_number:.3g}, "
            f"degenerate={self.degenerate})"
        )


def _scaled_points(predictions, y, sample_weight):
    """Points (columns) in R^r whose Gram matrix is the scaled Hessian, and the scale."""
    keep = sample_weight > 0
    v = sample_weight[keep] / sample_weight[keep].sum()
    residuals = predictions[keep] - y[keep, None]
    weighted = residuals * np.sqrt(v)[:, None]
    scale = float(np.sqrt(np.max(np.einsum("ij,ij->j", weighted, weighted))))
    if scale == 0.0:
        return np.zeros((1, predictions.shape[1])), 0.0
    weighted /= scale
    if weighted.shape[0] > weighted.shape[1]:
        points = linalg.qr(weighted, mode="r", check_finite=False)[0][: weighted.shape[1]]
    else:
        points = weighted
    return np.ascontiguousarray(points), scale


def _affine_minimiser(Q):
    """Coefficients (summing to one) of the point of aff(columns of Q) nearest 0."""
    if Q.shape[1] == 1:
        return np.ones(1)
    base = Q[:, 0]
    D = Q[:, 1:] - base[:, None]
    beta = linalg.lstsq(D, -base, check_finite=False, lapack_driver="gelsy")[0]
    return np.concatenate([[1.0 - beta.sum()], beta])


def _wolfe(points, max_iter):
    """Wolfe's minimum-norm-point algorithm on the columns of ``points``."""
    m = points.shape[1]
    norms2 = np.einsum("ij,ij->j", points, points)
    start = int(np.argmin(norms2))
    support = [start]
    lam = np.ones(1)
    x = points[:, start].copy()
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is reported
        xx = float(x @ x)
        if xx <= _TOL_OPTIMAL**2:
            converged = True
            break
        g = points.T @ x
        j = int(np.argmin(g))
        if g[j] >= xx - _TOL_OPTIMAL or j in support:
            converged = True
            break
        previous = sorted(support)
        support.append(j)
        lam = np.append(lam, 0.0)
        for _ in range(m + 1):  # minor cycles: each removes at least one point
            alpha = _affine_minimiser(points[:, support])
            if np.all(alpha > _TOL_POSITIVE):
                lam = alpha
                break
            moving = alpha < lam
            ratios = np.where(moving, lam / np.where(moving, lam - alpha, 1.0), np.inf)
            theta = min(1.0, float(np.min(ratios)))
            lam = theta * alpha + (1.0 - theta) * lam
            drop = lam <= _TOL_POSITIVE
            if not drop.any():
                drop[int(np.argmin(lam))] = True
            support = [s for s, d in zip(support, drop, strict=True) if not d]
            lam = lam[~drop]
            lam /= lam.sum()
        x = points[:, support] @ lam
        if sorted(support) == previous:
            # The entering model was dropped at once: no descent is possible
            # at this precision, so x is optimal.
            converged = True
            break
    weights = np.zeros(m)
    weights[support] = lam
    return weights, n_iter, converged


def _tangent_spectrum(points):
    """Orthonormal basis Z of {d: sum d = 0} and the SVD of points @ Z."""
    m = points.shape[1]
    # The last m - 1 columns of the Q factor of the all-ones vector.
    Z = linalg.qr(np.ones((m, 1)), mode="full")[0][:, 1:]
    _, sigma, vt = linalg.svd(points @ Z, full_matrices=True, check_finite=False)
    sigma_full = np.zeros(m - 1)
    sigma_full[: sigma.shape[0]] = sigma
    return Z, sigma_full, vt


def _min_norm_on_face(weights, null_basis):
    """Minimum-norm w >= 0 with w - weights in span(null_basis) (Lawson-Hanson LDP)."""
    # Rounding noise (1e-17) in rows that are zero in exact arithmetic would
    # turn "0 s >= 0" into a spurious constraint; clean it first.
    null_basis = np.where(np.abs(null_basis) < 1e-12, 0.0, null_basis)
    null_basis = linalg.orth(null_basis) if null_basis.shape[1] > 1 else (
        null_basis / np.linalg.norm(null_basis)
    )
    w_perp = weights - null_basis @ (null_basis.T @ weights)
    w_perp[np.abs(w_perp) < 1e-14] = 0.0
    # min ||s|| subject to null_basis @ s >= -w_perp
    E = np.vstack([null_basis.T, -w_perp[None, :]])
    f = np.zeros(E.shape[0])
    f[-1] = 1.0
    u, _ = optimize.nnls(E, f, maxiter=50 * E.shape[1])
    r = E @ u - f
    if abs(r[-1]) < 1e-14:  # LDP infeasible: only through rounding; keep Wolfe's weights
        return weights
    s = -r[:-1] / r[-1]
    out = w_perp + null_basis @ s
    if out.min() < -1e-9:  # not a feasible point after all: keep Wolfe's weights
        return weights
    # Entries that are zero in exact arithmetic come out as +-1e-17.
    out[out < _TOL_POSITIVE] = 0.0
    return out / out.sum()


def solve_simplex_ls(predictions, y, sample_weight=None, *, max_iter=None):
    """Exact convex weights minimising the weighted squared error of a combination.

    Parameters
    ----------
    predictions : ndarray of shape (n_samples, n_models)
        Column ``j`` holds model ``j``'s (out-of-fold) predictions.
    y : ndarray of shape (n_samples,)
        Targets.
    sample_weight : ndarray of shape (n_samples,), default=None
        Non-negative data-point weights ``v``.
    max_iter : int, default=None
        Maximum number of major cycles; ``None`` means ``50 * n_models + 100``.

    Returns
    -------
    result : SimplexLSResult
        Weights, objective, condition number and diagnostics.
    """
    predictions = np.asarray(predictions, dtype=float)
    y = np.asarray(y, dtype=float)
    n, m = predictions.shape
    v = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    max_iter = 50 * m + 100 if max_iter is None else max_iter

    points, scale = _scaled_points(predictions, y, v)
    if scale == 0.0:
        # Every model fits perfectly: all weightings tie; the minimum-norm one is uniform.
        return SimplexLSResult(np.full(m, 1.0 / m), 0.0, np.inf if m > 1 else 1.0, m > 1, 0.0, 0)

    weights, n_iter, converged = _wolfe(points, max_iter)
    if not converged:
        import warnings

        warnings.warn(
            f"the simplex QP did not converge in {max_iter} iterations; the weights may be "
            "suboptimal (raise max_iter).",
            ConvergenceWarning,
            stacklevel=2,
        )

    weights, condition_number, degenerate = _tie_break(points, weights)
    return _result(predictions, y, v, points, weights, condition_number, degenerate, n_iter)


def _tie_break(points, weights):
    """Condition number on the tangent space; minimum-norm weights on ties."""
    m = points.shape[1]
    if m == 1:
        return weights, 1.0, False
    Z, sigma, vt = _tangent_spectrum(points)
    # Relative to the largest residual norm (1 after scaling) as well as to
    # sigma[0]: when all models are alike, sigma[0] itself is rounding noise.
    tiny = sigma <= _RANK_RTOL * max(sigma[0], 1.0)
    if not tiny.any():
        return weights, float((sigma[0] / sigma[-1]) ** 2), False
    return _min_norm_on_face(weights, Z @ vt[tiny].T), np.inf, True


def _result(predictions, y, v, points, weights, condition_number, degenerate, n_iter):
    x = points @ weights
    g = points.T @ x
    xx = float(x @ x)
    # KKT: g_j >= x.x for all j (dual feasibility), w_j (g_j - x.x) = 0
    # (complementary slackness).
    kkt = max(0.0, float(xx - g.min()), float(np.max(weights * np.abs(g - xx))))
    residual = y - predictions @ weights
    keep = v > 0
    objective = float(np.sum(v[keep] * residual[keep] ** 2) / v[keep].sum())
    return SimplexLSResult(weights, objective, condition_number, degenerate, kkt, n_iter)


def solve_simplex_ls_cvxpy(predictions, y, sample_weight=None):
    """The same problem solved by cvxpy (CLARABEL) on the scaled formulation.

    Offered for cross-checking: an interior-point solution accurate to the
    solver's tolerance (about 1e-8), clipped to the simplex. Ties are broken
    the same way as :func:`solve_simplex_ls` (minimum norm).
    """
    import cvxpy as cp

    predictions = np.asarray(predictions, dtype=float)
    y = np.asarray(y, dtype=float)
    n, m = predictions.shape
    v = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    points, scale = _scaled_points(predictions, y, v)
    if scale == 0.0:
        return SimplexLSResult(np.full(m, 1.0 / m), 0.0, np.inf if m > 1 else 1.0, m > 1, 0.0, 0)
    w = cp.Variable(m)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(points @ w)), [w >= 0, cp.sum(w) == 1])
    problem.solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    if problem.status not in ("optimal", "optimal_inaccurate") or w.value is None:
        raise RuntimeError(f"cvxpy could not solve the simplex QP (status {problem.status!r}).")
    weights = np.clip(w.value, 0.0, None)
    weights[weights < _TOL_POSITIVE] = 0.0
    weights /= weights.sum()
    weights, condition_number, degenerate = _tie_break(points, weights)
    return _result(predictions, y, v, points, weights, condition_number, degenerate, 0)
