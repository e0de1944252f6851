"""Proximal Newton solver for the penalised non-parallel cumulative logit.

The model: ``P(Y <= k | x) = sigmoid(alpha_k + x'beta_k)``, ``k = 0..K-2``.
The solver works on standardised predictors ``z`` (weighted mean 0, weighted
population SD 1; constant columns are dropped) with the intercept as column 0
of ``[1, z]``, in the *difference* parametrisation

    theta[m] = (alpha_m - alpha_{m-1}, beta_m - beta_{m-1}),   theta[0] = (alpha_0, beta_0),

so that the linear predictor of boundary ``k`` is ``[1, z] @ theta[:k+1].sum(0)``
and the PRESTO penalty is a plain weighted lasso on ``theta``:

    f(theta) + lam * sum(penalty * |theta|),   f = -sum_i v_i log P_i,  sum_i v_i = 1.

Intercept differences are never penalised; ``penalty[0]`` (the first slope
vector) is 0 when ``penalize_first=False``.

Each outer (proximal Newton) step builds the exact Hessian of ``f``
(observed information, positive semi-definite on the domain where every
observed class has positive probability), minimises the penalised quadratic
model by coordinate descent (``cd_quadratic``), and backtracks along the step
until the objective decreases enough (Armijo rule of Tseng and Yun 2009),
which also keeps the iterate in the domain. It stops when the minimum-norm
subgradient (the KKT residual) is at most ``tol``.

The Hessian has a block structure that makes it cheap: observation ``i`` of
class ``c`` touches boundaries ``c-1`` and ``c``, and block ``m`` moves
boundaries ``m, m+1, ...``. With per-class Gram matrices
``S^{xy}_c = Z_c' diag(v h_xy) Z_c`` (``x, y`` in {lower, upper}),

    H[m, l] = A[max(m, l)] + (m != l) S^{lu}_{max(m, l)},
    A[M] = sum_{c >= M} S^{uu}_c + sum_{c > M} (S^{ll}_c + 2 S^{lu}_c),

so one Newton step costs ``O(n p^2)`` (three BLAS products per class) plus
``O(K p^2)`` memory, independent of the ``(K-1)^2`` Hessian blocks.
"""

from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse
from scipy.special import logit

from .._kernels._ordinal import cd_quadratic, ordinal_derivatives, ordinal_loss

__all__ = ["BaseFit", "OrdinalProblem", "PathResult", "Separation"]

# Armijo constant and the smallest step before the line search gives up.
_ARMIJO = 1e-4
_MIN_STEP = 1e-12
_MAX_SWEEPS = 10000


class PathResult:
    """Solutions along a path of penalties (standardised scale).

    Attributes
    ----------
    alphas : ndarray of shape (n_alphas,)
    thetas : ndarray of shape (n_alphas, K - 1, p_kept + 1)
    n_iter : ndarray of int, Newton iterations per alpha
    kkt : ndarray, final KKT residual per alpha
    converged : ndarray of bool
    alpha_max : float
        Smallest penalty at which the solution equals the base fit (the
        proportional-odds fit if the first block is free, else the
        intercept-only fit).
    """

    def __init__(self, alphas, thetas, n_iter, kkt, converged, alpha_max):
        self.alphas = alphas
        self.thetas = thetas
        self.n_iter = n_iter
        self.kkt = kkt
        self.converged = converged
        self.alpha_max = alpha_max


@dataclass(frozen=True)
class BaseFit:
    """The fit every penalty at or above ``alpha_max`` returns (standardised scale).

    The proportional-odds fit when the first slope block is free, else the
    intercept-only fit.

    Attributes
    ----------
    theta : ndarray of shape (K - 1, p_kept + 1)
    n_iter : int, Newton iterations (derivative evaluations)
    kkt : float, final KKT residual
    converged : bool
    alpha_max : float
        Smallest penalty at which the penalised solution equals this fit.
    """

    theta: np.ndarray
    n_iter: int
    kkt: float
    converged: bool
    alpha_max: float


class Separation:
    """A direction along which the likelihood increases without bound.

    Attributes
    ----------
    direction : ndarray of shape (K - 1, p_kept + 1)
        Change of each boundary's ``[intercept, slopes]`` (standardised
        scale) that never lowers any training row's probability of its
        observed class and raises it for ``n_rows`` rows.
    n_rows : int
        Training rows whose likelihood the direction raises without bound
        (a cumulative probability of theirs tends to 0 or 1).
    features : ndarray of int
        Columns of ``X`` with a non-zero slope in the direction.
    """

    def __init__(self, direction, n_rows, features):
        self.direction = direction
        self.n_rows = n_rows
        self.features = features


class OrdinalProblem:
    """The PRESTO objective on one data set.

    Rows with zero weight are dropped and the rest sorted by class so that
    each class is a contiguous slice. ``X`` must be finite and every class
    ``0..n_classes-1`` must have positive total weight (the estimators check).
    """

    def __init__(self, X, codes, sample_weight, n_classes, *, standardize=True):
        X = np.asarray(X, dtype=np.float64)
        keep = sample_weight > 0
        order = np.argsort(codes[keep], kind="stable")
        X = X[keep][order]
        self.y = np.ascontiguousarray(codes[keep][order], dtype=np.intp)
        w = sample_weight[keep][order]
        self.weight_sum = float(w.sum())
        self.v = w / self.weight_sum
        self.n_classes = n_classes
        self.n_features = X.shape[1]
        self.mean = self.v @ X
        centred = X - self.mean
        sd = np.sqrt(self.v @ centred**2)
        # Constant columns carry no information beyond the intercepts (glmnet
        # drops them too); rounding in the mean leaves sd ~ 1e-16 |mean|.
        self.kept = sd > 1e-12 * np.abs(self.mean)
        self.sd = sd
        self.scale = np.where(self.kept, sd, 1.0) if standardize else np.ones_like(sd)
        Z = centred[:, self.kept] / self.scale[self.kept]
        self.Zt = np.ascontiguousarray(np.hstack([np.ones((Z.shape[0], 1)), Z]))
        self.bounds = np.searchsorted(self.y, np.arange(n_classes + 1))
        self.shape = (n_classes - 1, self.Zt.shape[1])
        self._grad_obs = np.empty((Z.shape[0], 2))
        self._hess_obs = np.empty((Z.shape[0], 3))
        self._cache = None

    # ------------------------------------------------------------------ pieces
    def eta(self, theta):
        """Linear predictors ``(n, K - 1)`` of the (sorted) training rows."""
        return self.Zt @ np.cumsum(theta, axis=0).T

    def loss(self, eta):
        """Mean loss ``-sum_i v_i log P_i`` (+inf outside the domain)."""
        return ordinal_loss(eta, self.y, self.v)

    def intercept_only(self):
        """The exact intercept-only fit: cumulative logits of the class shares."""
        shares = np.bincount(self.y, weights=self.v, minlength=self.n_classes)
        alpha = logit(np.clip(np.cumsum(shares)[:-1], 1e-300, 1 - 1e-16))
        theta = np.zeros(self.shape)
        theta[:, 0] = np.diff(alpha, prepend=0.0)
        return theta

    def derivatives(self, theta):
        """Loss, gradient ``(K-1, p+1)`` and Hessian blocks ``A, S`` at ``theta``.

        The last result is cached: a path solves the next penalty from the
        previous solution, where the derivatives are already known.
        """
        cached = self._cache
        if cached is not None and np.array_equal(cached[0], theta):
            return cached[1:]
        loss = self._row_derivatives(theta)
        result = (loss, *self._assemble())
        self._cache = (np.array(theta, dtype=np.float64), *result)
        return result

    def _row_derivatives(self, theta):
        """Loss at ``theta``; leaves the per-row derivatives for ``_assemble``."""
        return ordinal_derivatives.serial(
            self.eta(theta), self.y, self.v, self._grad_obs, self._hess_obs
        )

    def _assemble(self):
        gobs, hobs = self._grad_obs, self._hess_obs
        K, (K1, P1) = self.n_classes, self.shape
        # Per class c: gradient rows for its lower/upper predictor, and the
        # Gram matrices Z_c' diag(h) Z_c for h = h_uu (upper), h_ll + 2 h_lu
        # (lower, with the cross term of a block moving both) and h_lu.
        upper = np.zeros((K, P1, P1))
        lower = np.zeros((K, P1, P1))
        cross = np.zeros((K1, P1, P1))
        g_lower = np.zeros((K, P1))
        g_upper = np.zeros((K, P1))
        for c in range(K):
            rows = slice(self.bounds[c], self.bounds[c + 1])
            Zc, h = self.Zt[rows], hobs[rows]
            g_lower[c], g_upper[c] = gobs[rows].T @ Zc
            if c == 0:
                upper[c] = Zc.T @ (h[:, 2, None] * Zc)
            elif c == K1:
                lower[c] = Zc.T @ (h[:, 0, None] * Zc)
            else:
                lower_weight = h[:, 0] + 2.0 * h[:, 1]
                weighted = np.hstack(
                    [h[:, 2, None] * Zc, lower_weight[:, None] * Zc, h[:, 1, None] * Zc]
                )
                G = Zc.T @ weighted
                upper[c], lower[c], cross[c] = G[:, :P1], G[:, P1 : 2 * P1], G[:, 2 * P1 :]
        # A[M] and grad[M] accumulate the classes above M: upper predictor of
        # class M, lower predictor of classes M + 1, ...
        grad = np.cumsum((g_upper[:K1] + g_lower[1:])[::-1], axis=0)[::-1]
        A = np.cumsum((upper[:K1] + lower[1:])[::-1], axis=0)[::-1]
        return np.ascontiguousarray(grad), np.ascontiguousarray(A), cross

    # ----------------------------------------------------------------- solver
    def solve(self, lam, theta, penalty, free, *, tol=1e-8, max_iter=100):
        """Minimise ``f + lam * sum(penalty |theta|)`` from ``theta``.

        Returns ``(theta, n_iter, kkt, converged)``; ``n_iter`` counts
        iterations (derivative evaluations: one more than the Newton steps
        taken, so 1 means ``theta`` already satisfied the KKT conditions),
        ``kkt`` is the final minimum-norm subgradient (max norm).
        """
        theta = np.array(theta, dtype=np.float64)
        thr = lam * penalty
        kkt = np.inf
        loss, grad, A, S = self.derivatives(theta)
        for it in range(max_iter + 1):
            if it > 0:
                grad, A, S = self._assemble()
                self._cache = (theta.copy(), loss, grad, A, S)
            kkt = kkt_residual(grad, theta, thr, free)
            if kkt <= tol:
                return theta, it + 1, kkt, True
            if it == max_iter:
                break
            delta = np.zeros_like(theta)
            hdelta = np.zeros_like(theta)
            # Forcing sequence: solve the model more accurately as the KKT
            # residual shrinks (superlinear local convergence).
            inner_tol = max((min(0.1, kkt) * kkt) ** 2, (0.01 * tol) ** 2)
            cd_quadratic(A, S, grad, theta, delta, hdelta, thr, free, _MAX_SWEEPS, inner_tol)
            pen0 = np.sum(thr * np.abs(theta))
            decrease = np.sum(grad * delta) + np.sum(thr * np.abs(theta + delta)) - pen0
            if not decrease < 0.0:
                break  # no descent left at this precision
            objective = loss + pen0
            step = 1.0
            while step >= _MIN_STEP:
                candidate = theta + step * delta
                # Evaluates the per-row derivatives too: the accepted trial's
                # are the next iteration's.
                value = self._row_derivatives(candidate)
                total = value + np.sum(thr * np.abs(candidate))
                if total <= objective + _ARMIJO * step * decrease:
                    break
                # Near the optimum the predicted decrease drops below the
                # rounding error of the objective: take the full step then.
                if step == 1.0 and np.isfinite(total) and -decrease <= 1e-13 * (1 + abs(objective)):
                    break
                step *= 0.5
            else:
                break  # the line search stalled: report the KKT residual reached
            theta, loss = candidate, value
        return theta, it + 1, kkt, False

    def free_and_penalty(self, penalize_first):
        """All coordinates free; penalty 1 on slopes (0 on the first block if
        ``penalize_first`` is False), 0 on intercept differences."""
        penalty = np.ones(self.shape)
        penalty[:, 0] = 0.0
        if not penalize_first:
            penalty[0] = 0.0
        return np.ones(self.shape, dtype=bool), penalty

    def base_free(self, penalize_first):
        """Coordinates of the ``alpha >= alpha_max`` fit: intercepts, plus the
        first slope block when it is unpenalised (proportional odds)."""
        free = np.zeros(self.shape, dtype=bool)
        free[:, 0] = True
        if not penalize_first:
            free[0] = True
        return free

    def base_fit(self, penalize_first, *, tol=1e-8, max_iter=100):
        """The fit every penalty above ``alpha_max`` returns, and ``alpha_max``
        (a :class:`BaseFit`)."""
        free_base = self.base_free(penalize_first)
        theta, n_iter, kkt, converged = self.solve(
            0.0, self.intercept_only(), np.zeros(self.shape), free_base, tol=tol,
            max_iter=max_iter,
        )
        _, grad, _, _ = self.derivatives(theta)
        _, penalty = self.free_and_penalty(penalize_first)
        mask = penalty > 0
        alpha_max = float(np.max(np.abs(grad[mask]) / penalty[mask])) if mask.any() else 0.0
        return BaseFit(theta, int(n_iter), float(kkt), bool(converged), alpha_max)

    def path(self, alphas, penalize_first, *, tol=1e-8, max_iter=100, base=None):
        """Solutions for ``alphas`` (any order; solved from the largest down,
        each warm-started from the previous)."""
        alphas = np.asarray(alphas, dtype=np.float64)
        if base is None:
            base = self.base_fit(penalize_first, tol=tol, max_iter=max_iter)
        alpha_max = base.alpha_max
        free, penalty = self.free_and_penalty(penalize_first)
        n = alphas.shape[0]
        thetas = np.empty((n, *self.shape))
        n_iter = np.zeros(n, dtype=int)
        kkt = np.zeros(n)
        converged = np.ones(n, dtype=bool)
        theta = base.theta
        for idx in np.argsort(-alphas, kind="stable"):
            lam = alphas[idx]
            if lam >= alpha_max:
                # Exactly the base fit: its KKT conditions hold for every such lam.
                thetas[idx], n_iter[idx] = base.theta, base.n_iter
                kkt[idx], converged[idx] = base.kkt, base.converged
                continue
            theta, n_iter[idx], kkt[idx], converged[idx] = self.solve(
                lam, theta, penalty, free, tol=tol, max_iter=max_iter
            )
            thetas[idx] = theta
        return PathResult(alphas, thetas, n_iter, kkt, converged, alpha_max)

    def separation(self, slopes, *, tol=1e-7):
        """Check the data for (quasi-)complete separation; ``None`` if there is none.

        The likelihood has no finite maximiser when some direction ``d`` of
        the free parameters moves every row's linear predictors towards its
        observed class (``eta_{i,y_i}`` up, ``eta_{i,y_i - 1}`` down) and
        strictly for at least one row: along ``theta + t d`` no row loses
        probability and those rows tend to probability 1, so the
        coefficients grow without bound while the gradient vanishes. This is
        the linear programme of Konis (2007), also used by R's
        ``detectseparation``, written for cumulative links: maximise the sum
        of the rows' directional changes subject to each being
        non-negative and ``|d| <= 1``; separation iff the optimum is
        positive.

        Parameters
        ----------
        slopes : {"shared", "free"}
            Which slope directions are unbounded: one vector for all
            boundaries (proportional odds, or PRESTO's unpenalised first
            block) or one per boundary (the unpenalised non-parallel model).
            Intercepts are always free. (With penalised slopes only, the
            intercepts cannot diverge when every class has positive weight.)
        """
        K1, P1 = self.shape
        n = self.Zt.shape[0]
        rows = np.arange(n)
        upper = self.y < K1  # eta_{i, y_i} may rise
        lower = self.y > 0  # eta_{i, y_i - 1} may fall
        r_up, r_lo = rows[upper], rows[lower]
        n_up = r_up.size
        # Constraint m: sign_m * Zt[row_m] @ D[boundary_m] >= 0.
        row_of = np.concatenate([r_up, r_lo])
        boundary = np.concatenate([self.y[upper], self.y[lower] - 1])
        sign = np.concatenate([np.ones(n_up), -np.ones(r_lo.size)])
        n_con = row_of.size
        if slopes == "shared":
            # Variables: the K - 1 intercepts, then one slope vector.
            n_var = K1 + P1 - 1
            cols = np.column_stack([boundary, K1 + np.arange(P1 - 1)[None, :].repeat(n_con, 0)])
        else:
            n_var = K1 * P1
            cols = boundary[:, None] * P1 + np.arange(P1)[None, :]
        values = sign[:, None] * self.Zt[row_of]
        G = sparse.csr_array(
            (values.ravel(), (np.repeat(np.arange(n_con), P1), cols.ravel())),
            shape=(n_con, n_var),
        )
        # Konis's programme: maximise the summed change of the constraints not
        # yet strict, keeping every change non-negative and |d| <= 1. The
        # feasible directions form a cone, so adding the solutions gives a
        # direction strict on every row that any direction makes strict.
        d = np.zeros(n_var)
        strict = np.zeros(n_con, dtype=bool)
        for _ in range(20):  # each round adds strict constraints; one or two suffice
            result = optimize.linprog(
                -np.asarray(G[~strict].sum(axis=0)).ravel(), A_ub=-G, b_ub=np.zeros(n_con),
                bounds=(-1.0, 1.0), method="highs",
            )
            if result.status != 0 or -result.fun <= tol:
                break
            d += result.x
            change = G @ d
            newly = change > tol * np.abs(change).max()
            if not np.any(newly & ~strict):
                break
            strict |= newly
        if not strict.any():
            return None
        if slopes == "shared":
            direction = np.zeros(self.shape)
            direction[:, 0] = d[:K1]
            direction[:, 1:] = d[K1:]
        else:
            direction = d.reshape(self.shape)
        moved = np.any(np.abs(direction[:, 1:]) > tol * np.abs(direction).max(), axis=0)
        features = np.flatnonzero(self.kept)[moved]
        return Separation(direction, int(np.unique(row_of[strict]).size), features)

    # ------------------------------------------------------------- conversion
    def to_original(self, theta):
        """``(coef (K-1, p), intercept (K-1,))`` on the original scale.

        Uses the cumulative ``beta_k = theta[:k+1].sum(0)`` for every
        boundary: the intercepts absorb ``-beta_k' mean / scale`` of *their
        own* boundary (the PRESTO reference code used ``theta[k]`` here).
        """
        B = np.cumsum(theta, axis=0)
        coef = np.zeros((self.n_classes - 1, self.n_features))
        coef[:, self.kept] = B[:, 1:] / self.scale[self.kept]
        intercept = B[:, 0] - coef @ self.mean
        return coef, intercept

    def objective(self, theta, lam, penalty):
        """Penalised objective at ``theta`` (standardised scale)."""
        return self.loss(self.eta(theta)) + lam * np.sum(penalty * np.abs(theta))


def kkt_residual(grad, theta, thr, free):
    """Max-norm of the minimum-norm subgradient of ``f + sum(thr |theta|)``."""
    nonzero = theta != 0.0
    residual = np.where(
        nonzero,
        np.abs(grad + thr * np.sign(theta)),
        np.maximum(np.abs(grad) - thr, 0.0),
    )
    residual = residual[free]
    return float(residual.max()) if residual.size else 0.0


def dense_hessian(A, S):
    """The full Hessian ``((K-1)(p+1),) * 2`` from its blocks (tests, standard errors)."""
    K1, P1 = A.shape[:2]
    H = np.empty((K1 * P1, K1 * P1))
    for m in range(K1):
        for l in range(K1):
            top = max(m, l)
            block = A[top] + (S[top] if m != l else 0.0)
            H[m * P1 : (m + 1) * P1, l * P1 : (l + 1) * P1] = block
    return H
