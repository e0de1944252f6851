"""Exact solvers for quadratic programs on the (capped) probability simplex.

Every nonparametric kernel balancing problem (MMD, energy distance, linear
moments) is, after writing the weights of the reweighted arm as probability
masses ``m``, the convex quadratic program

    minimise  f(m) = m' Q m - 2 b' m + c    subject to  sum(m) = 1,  0 <= m <= u

with ``Q`` the kernel matrix of the reweighted units, ``b`` the kernel mean
embedding of the target sample evaluated at those units and ``u`` an optional
cap (``max_weight``). ``Q`` reaches the solvers as an *operator*, one of

* :class:`DenseOperator`: the Gram matrix itself;
* :class:`LowRankOperator`: ``A A' + diag(e)``, a pivoted-Cholesky factor of
  the kernel plus the diagonal of what the factor leaves out;
* :class:`MatrixFreeOperator`: products computed tile by tile by the numba
  kernels of :mod:`weightstats._kernels`, in O(n) memory.

Two solvers:

* :func:`interior_point`: a Mehrotra predictor-corrector primal-dual method.
  Its Newton systems are solved by a Cholesky factorisation (dense) or, for
  ``A A' + diag``, by the Woodbury identity in O(n r^2). It reaches the
  optimum to about 1e-12 in 15 to 40 iterations whatever the conditioning,
  which matters: Gaussian kernels with wide bandwidths have eigenvalues that
  decay faster than any first-order method can exploit.
* :func:`fista`: accelerated projected gradient with the exact (capped)
  simplex projection and adaptive restart, for matrix-free operators where
  only products are available;
* :func:`lowrank_ridge_qp`: for ``Q = A A' + diag(h)`` with ``h > 0`` (a
  low-rank factor plus a ridge, the stable problems of ``IPMBalancer``), a
  Newton method on the r-dimensional dual whose iterations cost
  O(|support| r^2) and whose duality gap is exact.

Both stop on a certified bound: the Frank-Wolfe duality gap
``g'm - min_{s feasible} g's`` (``g`` the gradient) bounds ``f(m) - f*`` from
above for any convex ``f``.
"""

import numpy as np
from scipy import linalg

__all__ = [
    "DenseOperator",
    "LowRankOperator",
    "MatrixFreeOperator",
    "QPResult",
    "fista",
    "frank_wolfe_gap",
    "interior_point",
    "kkt_residual",
    "lowrank_ridge_qp",
    "project_capped_simplex",
    "solve_simplex_qp",
    "working_set_solve",
]


class QPResult(dict):
    """Solution and diagnostics of a simplex QP (a dict with attribute access)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


# --------------------------------------------------------------------------- operators


class DenseOperator:
    """``Q`` stored as a dense symmetric matrix."""

    kind = "dense"

    def __init__(self, Q, ridge=0.0):
        self.Q = np.asarray(Q, dtype=np.float64)
        self.n = self.Q.shape[0]
        self.ridge = _as_ridge(ridge, self.n)

    def matvec(self, v):
        out = self.Q @ v
        if np.any(self.ridge):
            out += self.ridge * v
        return out

    def diagonal(self):
        return np.diag(self.Q) + self.ridge

    def restrict(self, idx):
        return DenseOperator(self.Q[np.ix_(idx, idx)], _restrict_ridge(self.ridge, idx))

    def newton_solver(self, theta):
        """A function solving ``(Q + diag(theta)) y = v``.

        The diagonal is floored at a tiny multiple of the kernel scale so the
        factorisation survives numerically singular Gram matrices (wide
        Gaussian kernels) as ``theta`` vanishes on the support.
        """
        scale = max(float(np.max(np.abs(np.diag(self.Q)))), 1e-300)
        M = self.Q.copy()
        M[np.diag_indices_from(M)] += np.maximum(theta + self.ridge, 1e-13 * scale)
        factor = linalg.cho_factor(M, lower=True, check_finite=False)
        return lambda v: linalg.cho_solve(factor, v, check_finite=False)


class LowRankOperator:
    """``Q = A A' + diag(e)`` with ``A`` of shape (n, r), r << n."""

    kind = "lowrank"

    def __init__(self, A, e=None, ridge=0.0):
        self.A = np.asarray(A, dtype=np.float64)
        self.n, self.rank = self.A.shape
        self.e = np.zeros(self.n) if e is None else np.asarray(e, dtype=np.float64)
        self.ridge = _as_ridge(ridge, self.n)

    def matvec(self, v):
        return self.A @ (self.A.T @ v) + (self.e + self.ridge) * v

    def diagonal(self):
        return np.einsum("ij,ij->i", self.A, self.A) + self.e + self.ridge

    def restrict(self, idx):
        return LowRankOperator(self.A[idx], self.e[idx], _restrict_ridge(self.ridge, idx))

    def newton_solver(self, theta):
        """Solve ``(A A' + diag(h)) y = v`` by Woodbury, ``h = e + ridge + theta``.

        ``h`` is floored at a tiny multiple of the kernel scale: at the optimum
        ``theta`` vanishes on the support and ``e`` may be exactly zero there
        (the pivots of the factor), which would make ``h`` singular.
        """
        if not hasattr(self, "_scale"):
            self._scale = max(float(np.max(np.einsum("ij,ij->i", self.A, self.A), initial=0.0)),
                              1e-300)
        h = np.maximum(self.e + self.ridge + theta, 1e-13 * self._scale)
        hinv = 1.0 / h
        AH = self.A * hinv[:, None]
        # C = I + A' H^-1 A by a symmetric rank-k update (half the flops of a GEMM).
        B = np.asfortranarray(self.A * np.sqrt(hinv)[:, None])
        C = linalg.blas.dsyrk(1.0, B, trans=1, lower=1)
        C[np.diag_indices_from(C)] += 1.0
        factor = linalg.cho_factor(C, lower=True, check_finite=False)

        def woodbury(v):
            w = hinv * v
            t = linalg.cho_solve(factor, self.A.T @ w, check_finite=False)
            return w - AH @ t

        def solve(v):
            # C is ill-conditioned when h is tiny (wide kernels near the optimum):
            # two steps of iterative refinement, O(n r) each, restore the accuracy.
            y = woodbury(v)
            for _ in range(2):
                y = y + woodbury(v - (self.A @ (self.A.T @ y) + h * y))
            return y

        return solve


class MatrixFreeOperator:
    """``Q`` available only through products (tiled numba kernels, O(n) memory).

    Parameters
    ----------
    matvec : callable
        ``v -> Q v`` for vectors of length ``n``.
    n : int
        Dimension.
    diagonal : ndarray of shape (n,)
        The diagonal of ``Q``.
    restrict : callable
        ``idx -> operator`` for the principal submatrix on ``idx``.
    """

    kind = "matrix_free"

    def __init__(self, matvec, n, diagonal, restrict, ridge=0.0):
        self._matvec = matvec
        self.n = n
        self._diagonal = diagonal
        self._restrict = restrict
        self.ridge = _as_ridge(ridge, n)

    def matvec(self, v):
        out = self._matvec(v)
        if np.any(self.ridge):
            out = out + self.ridge * v
        return out

    def diagonal(self):
        return self._diagonal + self.ridge

    def restrict(self, idx):
        sub = self._restrict(idx)
        sub.ridge = _restrict_ridge(self.ridge, idx)
        return sub


def _as_ridge(ridge, n):
    """A ridge is a scalar or one value per unit (``l2_penalty / sample_weight``)."""
    if np.ndim(ridge) == 0:
        return float(ridge)
    ridge = np.asarray(ridge, dtype=np.float64)
    if ridge.shape != (n,):
        raise ValueError(f"ridge has shape {ridge.shape}; expected ({n},).")
    return ridge


def _restrict_ridge(ridge, idx):
    return ridge if np.ndim(ridge) == 0 else ridge[idx]


# --------------------------------------------------------------------------- projections, gaps


def project_capped_simplex(v, cap=None):
    """Euclidean projection of ``v`` onto ``{x : sum(x) = 1, 0 <= x <= cap}``.

    Exact: the solution is ``clip(v - theta, 0, cap)`` and the piecewise-linear
    equation ``sum(clip(v - theta, 0, cap)) = 1`` is solved by one sort
    without caps (Held, Wolfe and Crowder; Duchi et al.) or between its two
    bracketing breakpoints, where it is linear (see ``_weighted_threshold``).

    Parameters
    ----------
    v : ndarray of shape (n,)
        Point to project.
    cap : float or ndarray of shape (n,), default=None
        Upper bounds; ``None`` for the plain simplex. ``sum(cap) >= 1`` is
        required.

    Returns
    -------
    x : ndarray of shape (n,)
        The projection.
    """
    v = np.asarray(v, dtype=np.float64)
    # The minimiser of |x|^2 - 2 v'x over the set: the weighted threshold with h = 1.
    if cap is not None:
        cap = np.broadcast_to(np.asarray(cap, dtype=np.float64), v.shape)
    return _weighted_threshold(v, np.ones_like(v), cap)


def _weighted_threshold(c, h, cap=None):
    """``m = clip((c - tau) / h, 0, cap)`` with ``tau`` such that ``sum(m) = 1``.

    The minimiser of ``sum(h m^2) - 2 c'm`` over the (capped) simplex, for
    ``h > 0``. ``sum(m)`` is piecewise linear and non-increasing in ``tau``
    with breakpoints ``c`` (a unit leaves zero) and ``c - h cap`` (a unit
    reaches its cap). Without caps one sort finds the active set (as for the
    Euclidean projection onto the simplex); with caps, bisection over the
    sorted breakpoints, then the exact root of the linear piece.
    """
    if cap is None:
        # Sort once: with the k largest c active, tau solves a linear equation.
        order = np.argsort(c)[::-1]
        cs, inv_h = c[order], 1.0 / h[order]
        taus = (np.cumsum(cs * inv_h) - 1.0) / np.cumsum(inv_h)
        k = int(np.flatnonzero(cs > taus)[-1])
        return np.maximum((c - taus[k]) / h, 0.0)
    upper = cap

    def total(tau):
        return np.clip((c - tau) / h, 0.0, upper).sum()

    breaks = np.unique(np.concatenate([c, c - h * cap]))
    lo, hi = 0, breaks.shape[0] - 1
    if total(breaks[lo]) <= 1.0:
        # Below the smallest breakpoint every unit is at its cap (sum(cap) == 1).
        return cap / cap.sum()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if total(breaks[mid]) >= 1.0:
            lo = mid
        else:
            hi = mid
    a, b = breaks[lo], breaks[hi]
    ta, tb = total(a), total(b)
    if tb >= 1.0:
        tau = b
    else:
        tau = a + (ta - 1.0) * (b - a) / (ta - tb) if ta > tb else a
    return np.clip((c - tau) / h, 0.0, upper)


def _linear_minimiser_value(g, cap):
    """``min_{s feasible} g's``: all mass on the smallest gradients (up to caps)."""
    if cap is None:
        return float(np.min(g))
    cap = np.broadcast_to(cap, g.shape)
    order = np.argsort(g, kind="stable")
    filled = np.cumsum(cap[order])
    k = int(np.searchsorted(filled, 1.0))
    k = min(k, g.shape[0] - 1)
    mass = cap[order[:k]].sum()
    return float(g[order[:k]] @ cap[order[:k]] + g[order[k]] * (1.0 - mass))


def frank_wolfe_gap(x, g, cap=None):
    """Frank-Wolfe duality gap ``g'x - min_s g's``: an upper bound on ``f(x) - f*``.

    Parameters
    ----------
    x : ndarray of shape (n,)
        A feasible point.
    g : ndarray of shape (n,)
        The gradient of the convex objective at ``x``.
    cap : float or ndarray, default=None
        Upper bounds of the feasible set.

    Returns
    -------
    gap : float
        Non-negative up to rounding.
    """
    return max(float(g @ x) - _linear_minimiser_value(g, cap), 0.0)


def kkt_residual(x, g, cap=None):
    """Natural KKT residual ``max |x - P(x - g)|`` of the simplex problem.

    Zero exactly at a KKT point; ``P`` is the projection onto the feasible
    set and ``g`` the gradient.

    Parameters
    ----------
    x : ndarray of shape (n,)
        A feasible point.
    g : ndarray of shape (n,)
        The gradient at ``x``.
    cap : float or ndarray, default=None
        Upper bounds of the feasible set.

    Returns
    -------
    residual : float
        The infinity norm of the projected-gradient step.
    """
    return float(np.max(np.abs(x - project_capped_simplex(x - g, cap))))


# --------------------------------------------------------------------------- solvers


def _initial_point(n, cap):
    if cap is None:
        return np.full(n, 1.0 / n)
    cap = np.broadcast_to(cap, (n,))
    return project_capped_simplex(np.full(n, 1.0 / n), cap)


def fista(op, b, *, cap=None, x0=None, tol=1e-10, max_iter=10000, lipschitz=None,
          check_every=10, rng=None):
    """Accelerated projected gradient (FISTA) with adaptive restart.

    Minimises ``x'Qx - 2 b'x`` over the capped simplex. The step is
    ``1 / L`` with ``L`` twice the largest eigenvalue of ``Q`` on the
    sum-zero subspace (all feasible directions sum to zero), estimated by power
    iteration and increased whenever a step fails the descent condition. The
    momentum restarts when the objective increases (O'Donoghue and Candes,
    2015). Stops when the Frank-Wolfe gap is at most ``tol``.

    Parameters
    ----------
    op : operator
        ``Q`` (dense, low-rank or matrix-free).
    b : ndarray of shape (n,)
        Linear term.
    cap : float or ndarray, default=None
        Upper bounds.
    x0 : ndarray of shape (n,), default=None
        Warm start (projected onto the feasible set).
    tol : float, default=1e-10
        Absolute tolerance on the Frank-Wolfe gap.
    max_iter : int, default=10000
        Maximum number of iterations.
    lipschitz : float, default=None
        Known bound on the step constant; estimated when ``None``.
    check_every : int, default=10
        Iterations between gap evaluations.
    rng : numpy Generator, default=None
        For the power iteration's start vector.

    Returns
    -------
    result : QPResult
        ``x``, ``objective`` (without the constant), ``gap``,
        ``kkt_residual``, ``iterations``, ``converged``, ``solver``.
    """
    n = b.shape[0]
    rng = np.random.default_rng(0) if rng is None else rng
    x = _initial_point(n, cap) if x0 is None else project_capped_simplex(x0, cap)
    if lipschitz is None:
        lipschitz = 2.0 * _centered_top_eigenvalue(op, n, rng) * 1.05 + 1e-300
    L = float(lipschitz)
    Qx = op.matvec(x)
    fx = float(x @ Qx - 2.0 * b @ x)
    y, Qy, t = x.copy(), Qx.copy(), 1.0
    gap = np.inf
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        grad_y = 2.0 * (Qy - b)
        fy = float(y @ Qy - 2.0 * b @ y)
        while True:
            x_new = project_capped_simplex(y - grad_y / L, cap)
            Qx_new = op.matvec(x_new)
            f_new = float(x_new @ Qx_new - 2.0 * b @ x_new)
            step = x_new - y
            # Descent lemma; a failure means the eigenvalue estimate was low.
            if f_new <= fy + grad_y @ step + 0.5 * L * (step @ step) + 1e-14 * abs(fy):
                break
            L *= 2.0
        if f_new > fx:  # adaptive restart: drop the momentum, retry from x
            y, Qy, t = x.copy(), Qx.copy(), 1.0
            continue
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        y = x_new + beta * (x_new - x)
        Qy = Qx_new + beta * (Qx_new - Qx)
        x, Qx, fx, t = x_new, Qx_new, f_new, t_new
        if it % check_every == 0 or it == max_iter:
            gap = frank_wolfe_gap(x, 2.0 * (Qx - b), cap)
            if gap <= tol:
                converged = True
                break
    grad = 2.0 * (Qx - b)
    gap = frank_wolfe_gap(x, grad, cap)
    return QPResult(
        x=x,
        objective=fx,
        gap=gap,
        kkt_residual=kkt_residual(x, grad, cap),
        iterations=it,
        converged=converged or gap <= tol,
        solver="fista",
    )


def _centered_top_eigenvalue(op, n, rng, n_iter=30):
    """Largest eigenvalue of ``P Q P`` (``P`` the centring projector), by power iteration."""
    if n == 1:
        return 0.0
    v = rng.standard_normal(n)
    v -= v.mean()
    v /= np.linalg.norm(v)
    lam = 0.0
    for _ in range(n_iter):
        w = op.matvec(v)
        w -= w.mean()
        lam_new = float(np.linalg.norm(w))
        if lam_new == 0.0:
            return 0.0
        v = w / lam_new
        if abs(lam_new - lam) <= 1e-3 * lam_new:
            lam = lam_new
            break
        lam = lam_new
    return lam


def interior_point(op, b, *, cap=None, tol=1e-10, max_iter=100):
    """Mehrotra predictor-corrector interior-point method for the simplex QP.

    Minimises ``x'Qx - 2 b'x`` subject to ``sum(x) = 1``, ``0 <= x <= cap``.
    Each iteration solves two Newton systems with the matrix
    ``Q + diag(theta)``, factorised once per iteration by
    ``op.newton_solver`` (Cholesky for dense ``Q``, Woodbury for
    ``A A' + diag``).

    Parameters
    ----------
    op : DenseOperator or LowRankOperator
        ``Q``.
    b : ndarray of shape (n,)
        Linear term.
    cap : float or ndarray, default=None
        Upper bounds.
    tol : float, default=1e-10
        Absolute tolerance on the duality gap of the final (cleaned) point.
    max_iter : int, default=100
        Maximum number of interior-point iterations.

    Returns
    -------
    result : QPResult
        As for :func:`fista`, plus ``multiplier`` (of the sum constraint).
    """
    n = b.shape[0]
    has_cap = cap is not None
    u = np.broadcast_to(np.asarray(cap, dtype=np.float64), (n,)) if has_cap else None
    # Work with the scaled problem 1/2 x'Qx - b'x (same minimiser).
    x = _initial_point(n, cap)
    if has_cap:
        # An interior start: strictly between the bounds.
        x = 0.5 * x + 0.5 * u / u.sum()
    Qx = op.matvec(x)
    grad = Qx - b
    scale = max(float(np.max(np.abs(grad))), float(np.max(np.abs(op.diagonal()))) / n, 1e-12)
    nu = float(np.min(grad)) - scale
    z = np.full(n, scale)
    s = np.full(n, scale) if has_cap else None
    # The slack of the upper bound is a variable of its own: recomputing it as
    # u - x would round to zero for units close to their cap.
    w = u - x if has_cap else None
    n_comp = 2 * n if has_cap else n
    converged = False
    best = None
    it = 0
    for it in range(1, max_iter + 1):
        rd = Qx - b - nu - z + (s if has_cap else 0.0)
        rp = float(x.sum() - 1.0)
        comp = float(x @ z + (w @ s if has_cap else 0.0))
        mu = comp / n_comp
        # Certify (an O(n^2) product and two sorts) only once the duality
        # measure says the gap may be within reach.
        if comp <= 10.0 * tol or it == max_iter:
            # Certify on a cleaned copy: exact bounds, exact sum.
            res = _certify(op, b, x, cap)
            if best is None or res.gap < best.gap:
                best = res
            if res.gap <= tol:
                converged = True
                break
        theta = z / x + (s / w if has_cap else 0.0)
        try:
            solve = op.newton_solver(theta)
        except linalg.LinAlgError:
            break
        ones_sol = solve(np.ones(n))
        ones_sum = float(ones_sol.sum())

        def newton(rcz, rcs):
            rhs = -rd + rcz / x
            if has_cap:
                rhs = rhs - rcs / w
            sol = solve(rhs)
            dnu = (-rp - sol.sum()) / ones_sum
            dx = sol + dnu * ones_sol
            dz = (rcz - z * dx) / x
            ds = (rcs + s * dx) / w if has_cap else None
            return dx, dz, ds, dnu

        # Predictor (affine scaling).
        dx_a, dz_a, ds_a, _ = newton(-x * z, -w * s if has_cap else None)
        ap = _max_step(x, dx_a, w, -dx_a if has_cap else None)
        ad = _max_step(z, dz_a, s, ds_a)
        a = min(ap, ad)
        comp_aff = (x + a * dx_a) @ (z + a * dz_a)
        if has_cap:
            comp_aff += (w - a * dx_a) @ (s + a * ds_a)
        sigma = min(1.0, (comp_aff / comp) ** 3) if comp > 0 else 0.0
        # Corrector with centring.
        rcz = sigma * mu - x * z - dx_a * dz_a
        rcs = sigma * mu - w * s + dx_a * ds_a if has_cap else None
        dx, dz, ds, dnu = newton(rcz, rcs)
        ap = _max_step(x, dx, w, -dx if has_cap else None)
        ad = _max_step(z, dz, s, ds)
        a = min(1.0, 0.995 * min(ap, ad))
        x = x + a * dx
        z = z + a * dz
        nu = nu + a * dnu
        if has_cap:
            s = s + a * ds
            w = w - a * dx
        Qx = op.matvec(x)
    if not converged:
        res = _certify(op, b, x, cap)
        if best is None or res.gap < best.gap:
            best = res
        converged = best.gap <= tol
    best.update(iterations=it, converged=converged, solver="interior-point", multiplier=nu)
    return best


def _max_step(a, da, b=None, db=None):
    """Largest step in [0, 1] keeping ``a + t da >= 0`` (and ``b + t db >= 0``)."""
    step = 1.0
    neg = da < 0
    if np.any(neg):
        step = min(step, float(np.min(-a[neg] / da[neg])))
    if b is not None:
        neg = db < 0
        if np.any(neg):
            step = min(step, float(np.min(-b[neg] / db[neg])))
    return step


def _certify(op, b, x, cap):
    """Round an interior point onto the feasible set and compute its gap."""
    x = np.maximum(x, 0.0)
    if cap is not None:
        x = np.minimum(x, cap)
    # Interior points carry tiny masses on units that are zero at the optimum.
    x[x < 1e-12 * x.max()] = 0.0
    x = project_capped_simplex(x, cap) if cap is not None else x / x.sum()
    Qx = op.matvec(x)
    grad = 2.0 * (Qx - b)
    return QPResult(
        x=x,
        objective=float(x @ Qx - 2.0 * b @ x),
        gap=frank_wolfe_gap(x, grad, cap),
        kkt_residual=kkt_residual(x, grad, cap),
    )


def solve_simplex_qp(op, b, *, cap=None, tol=1e-10, max_iter=None, solver="auto", x0=None,
                     rng=None):
    """Solve ``min x'Qx - 2 b'x`` over the capped simplex; choose the method.

    ``solver="auto"`` uses the interior-point method for dense operators of
    moderate size and for low-rank operators, FISTA for matrix-free ones.

    Parameters
    ----------
    op : operator
        ``Q``.
    b : ndarray of shape (n,)
        Linear term.
    cap : float or ndarray, default=None
        Upper bounds on the masses.
    tol : float, default=1e-10
        Absolute tolerance on the Frank-Wolfe gap.
    max_iter : int, default=None
        Iteration limit (default: 200 interior-point / 20000 FISTA iterations).
    solver : {"auto", "interior-point", "fista"}, default="auto"
        The method.
    x0 : ndarray, default=None
        Warm start for FISTA.
    rng : numpy Generator, default=None
        Randomness for power iterations.

    Returns
    -------
    result : QPResult
        ``x``, ``objective`` (of ``x'Qx - 2 b'x``), ``gap``,
        ``kkt_residual``, ``iterations``, ``converged``, ``solver``.
    """
    n = b.shape[0]
    if cap is not None:
        cap = np.broadcast_to(np.asarray(cap, dtype=np.float64), (n,))
    if solver == "auto":
        dense_ok = op.kind == "dense" and n <= DENSE_IPM_MAX
        solver = "interior-point" if op.kind == "lowrank" or dense_ok else "fista"
    if solver == "interior-point":
        if op.kind == "matrix_free":
            raise ValueError(
                "the interior-point solver needs a dense or low-rank kernel representation; "
                "use solver='fista' with representation='matrix_free'."
            )
        return interior_point(op, b, cap=cap, tol=tol, max_iter=max_iter or 200)
    if solver == "fista":
        return fista(op, b, cap=cap, x0=x0, tol=tol, max_iter=max_iter or 20000, rng=rng)
    raise ValueError(f"solver must be 'auto', 'interior-point' or 'fista'; got {solver!r}.")


def lowrank_ridge_qp(A, h, b, *, beta=None, cap=None, alpha0=None, tol=1e-12, max_iter=100):
    """Minimise ``x'(A A' + diag(h))x - 2 b'x`` over the capped simplex, ``h > 0``.

    With ``|A'x|^2 = max_a 2 a'A'x - |a|^2`` the problem has the concave dual
    ``G(a) = -|a|^2 + min_x [x'Hx - 2 (b - A a)'x]`` in ``a`` (r numbers),
    whose inner minimiser ``x(a) = clip((b - A a - tau) / h, 0, cap)`` is
    explicit (``tau`` makes it sum to one). ``G`` is maximised by a
    semismooth Newton method with backtracking: the Hessian is
    ``-2 (I + A_F' (H_F^-1 - d d' / sum(d)) A_F)`` over the units ``F``
    strictly between their bounds (``d = 1 / h_F``), an r x r matrix formed in
    O(|F| r^2). ``x(a)`` is always feasible; the iterations stop on its
    Frank-Wolfe gap (O(n r)), the same certificate as the other solvers (the
    duality gap ``|A'x(a) - a|^2`` is much smaller: the Frank-Wolfe gap
    shrinks only like its square root). A warm start ``alpha0`` (the dual of
    a nearby problem) typically converges in a few iterations.

    Parameters
    ----------
    A : ndarray of shape (n, r)
        Low-rank factor.
    h : ndarray of shape (n,)
        Positive diagonal.
    b : ndarray of shape (n,)
        Linear term.
    cap : ndarray of shape (n,), default=None
        Upper bounds.
    beta : ndarray of shape (r,), default=None
        Shift of the dual variable (see above); zero by default.
    alpha0 : ndarray of shape (r,), default=None
        Starting dual point ``A'x - beta`` (default: at uniform ``x``).
    tol : float, default=1e-12
        Absolute tolerance on the Frank-Wolfe gap.
    max_iter : int, default=100
        Maximum number of Newton iterations.

    Returns
    -------
    result : QPResult
        ``x``, ``alpha`` (the dual point, ``A'x - beta`` at the optimum),
        ``objective`` (of ``x'Qx - 2 b'x``), ``gap``, ``kkt_residual``, ``iterations``,
        ``converged``, ``solver``.
    """
    n, r = A.shape
    h = np.asarray(h, dtype=np.float64)
    if np.any(h <= 0):
        raise ValueError("lowrank_ridge_qp needs a positive diagonal h.")
    if cap is not None:
        cap = np.broadcast_to(np.asarray(cap, dtype=np.float64), (n,))
    beta = np.zeros(r) if beta is None else np.asarray(beta, dtype=np.float64)
    b_rest = b - A @ beta
    if alpha0 is None:
        alpha = A.T @ np.full(n, 1.0 / n) - beta
    else:
        alpha = np.array(alpha0, dtype=np.float64)

    def evaluate(alpha):
        c = b_rest - A @ alpha
        x = _weighted_threshold(c, h, cap)
        return x, float(x @ (h * x) - 2.0 * c @ x - alpha @ alpha - 2.0 * alpha @ beta)

    def primal_gap(x):
        """Frank-Wolfe gap and objective of ``x`` (O(n r))."""
        u = A.T @ x
        g = 2.0 * (A @ u + h * x - b)
        return frank_wolfe_gap(x, g, cap), float(u @ u + x @ (h * x) - 2.0 * b @ x), g

    x, value = evaluate(alpha)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        gap, _, _ = primal_gap(x)
        if gap <= tol:
            converged = True
            it -= 1
            break
        grad = A.T @ x - beta - alpha  # half the dual gradient
        free = x > 0 if cap is None else (x > 0) & (x < cap)
        AF = A[free]
        d = 1.0 / h[free]
        if AF.shape[0]:
            B = np.asfortranarray(AF * np.sqrt(d)[:, None])
            M = linalg.blas.dsyrk(1.0, B, trans=1, lower=1)
            M = np.tril(M) + np.tril(M, -1).T
            v = AF.T @ d
            M -= np.outer(v, v) / d.sum()
        else:
            M = np.zeros((r, r))
        M[np.diag_indices_from(M)] += 1.0
        try:
            step = linalg.solve(M, grad, assume_a="pos", check_finite=False)
        except (linalg.LinAlgError, ValueError):
            step = grad
        t, x_new, value_new = _armijo(evaluate, alpha, step, value, 2.0 * float(grad @ step), 1.0)
        if t is None or value_new - value <= 1e-15 * abs(value):
            # No further progress (a kink of the dual where the Newton direction
            # of the current piece does not ascend, or floating point): the
            # caller decides what to do with an unconverged answer.
            break
        alpha = alpha + t * step
        x, value = x_new, value_new
    gap, objective, g = primal_gap(x)
    return QPResult(
        x=x,
        alpha=alpha,
        objective=objective,
        gap=gap,
        kkt_residual=kkt_residual(x, g, cap),
        iterations=it,
        converged=converged or gap <= tol,
        solver="dual Newton (low-rank factor)",
    )


def _armijo(evaluate, alpha, step, value, slope, t, halvings=34):
    """Backtrack from ``t`` until ``G`` rises by ``1e-4 t slope``; ``(None,) * 3`` if it never does."""
    for _ in range(halvings):
        x_new, value_new = evaluate(alpha + t * step)
        if value_new >= value + 1e-4 * t * slope:
            return t, x_new, value_new
        t *= 0.5
    return None, None, None


# Largest dense problem the interior-point method takes on directly (one
# Cholesky factorisation of this size costs ~0.3 s per iteration).
DENSE_IPM_MAX = 2500


def working_set_solve(n, *, sub_operator, sub_linear, full_gradient, candidates, cap=None,
                      tol=1e-10, max_iter=200, max_size=DENSE_IPM_MAX, max_rounds=12):
    """Exact solution by interior-point solves on a growing working set.

    Most units of a balancing problem end with weight zero. Starting from
    ``candidates`` (a screening guess of the support), solve the problem
    restricted to the working set ``W`` exactly (dense interior point), then
    evaluate the exact gradient of the *full* problem at that solution (cheap:
    the solution is sparse) and add the units that violate the optimality
    conditions (gradient below the active level). When no unit violates them,
    the Frank-Wolfe gap of the full problem certifies the answer.

    Parameters
    ----------
    n : int
        Number of units.
    sub_operator : callable
        ``idx -> operator`` for ``Q`` restricted to ``idx`` (dense).
    sub_linear : callable
        ``idx -> b[idx]``.
    full_gradient : callable
        ``x -> (Q x - b)`` for all ``n`` units, exact (``x`` is sparse).
    candidates : ndarray of int
        Initial working set.
    cap : ndarray of shape (n,), default=None
        Upper bounds.
    tol : float, default=1e-10
        Absolute tolerance on the full problem's Frank-Wolfe gap.
    max_iter : int, default=200
        Interior-point iterations per solve.
    max_size : int, default=DENSE_IPM_MAX
        Largest working set; beyond it the result is returned unconverged.
    max_rounds : int, default=12
        Maximum number of working-set updates.

    Returns
    -------
    result : QPResult
        ``x``, ``gap``, ``kkt_residual`` (full problem), ``iterations``,
        ``converged``, ``solver``, ``working_set_size``, ``rounds``, and
        ``grad`` (half the gradient, ``Q x - b``).
    """
    active = np.zeros(n, dtype=bool)
    active[np.asarray(candidates, dtype=np.intp)] = True
    total_iter = 0
    x = None
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        idx = np.flatnonzero(active)
        sub = interior_point(
            sub_operator(idx), sub_linear(idx), cap=None if cap is None else cap[idx], tol=tol,
            max_iter=max_iter,
        )
        total_iter += sub.iterations
        x = np.zeros(n)
        x[idx] = sub.x
        half_grad = full_gradient(x)
        grad = 2.0 * half_grad
        gap = frank_wolfe_gap(x, grad, cap)
        if gap <= tol:
            break
        # Active level: at the optimum every unit strictly inside its bounds has
        # the same gradient; units outside W below that level want mass.
        free = (x > 0) if cap is None else (x > 0) & (x < cap)
        level = float(np.median(grad[free])) if np.any(free) else float(grad @ x)
        violators = np.flatnonzero(~active & (grad < level))
        if violators.size == 0:
            break
        room = max_size - int(active.sum())
        if room <= 0:
            break
        add = violators[np.argsort(grad[violators])[: max(room, 1)]]
        active[add] = True
    half_grad = full_gradient(x)
    grad = 2.0 * half_grad
    gap = frank_wolfe_gap(x, grad, cap)
    return QPResult(
        x=x,
        gap=gap,
        kkt_residual=kkt_residual(x, grad, cap),
        iterations=total_iter,
        converged=gap <= tol,
        solver="interior-point (working set)",
        working_set_size=int(active.sum()),
        rounds=rounds,
        grad=half_grad,
    )
