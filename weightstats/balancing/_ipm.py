"""Balancing by integral probability metrics (CBIPM; Kong, Park, Jung, Lee and Kim, ICML 2023).

Weights are chosen so that the weighted empirical distributions of the
reweighted arm and its target have the smallest IPM
``sup_{f in F} |E_target f - E_weighted f|`` over a class ``F`` of
discriminators. Classes are looked up in a small registry
(:func:`register_ipm`), so other subpackages can add their own:

* ``"mmd"``: the unit ball of a Gaussian RKHS; IPM^2 is the (squared) maximum
  mean discrepancy, a quadratic function of the weights;
* ``"energy"``: the energy distance, the MMD^2 of the distance-induced kernel
  ``|x| + |y| - |x - y|`` (Sejdinovic et al. 2013);
* ``"moments"``: linear discriminators ``f(x) = a'x`` with ``|a|_2 <= 1`` on
  standardised covariates, so IPM^2 is the sum of squared standardised mean
  differences;
* ``"sigmoid"``: sigmoid units ``sigma(a'x + b)`` (the paper's parametric
  class) drawn once at random: the worst-case mean difference over the units,
  a linear program;
* ``"neural"``: a Wasserstein-type MLP critic, registered by ``weightstats.nn``
  when torch is installed.

For the kernel classes the nonparametric problem is a convex QP on the
simplex, solved exactly (see :mod:`._qp`); the kernel is represented by the
dense Gram matrix, a pivoted-Cholesky factor or matrix-free tiled products,
chosen automatically.
"""

import numbers
import time
import warnings

import numpy as np
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from .._kernels import kernel_matrix, kernel_matvec, pairwise_distances
from .._kernels._lowrank import pivoted_cholesky
from . import _qp
from ._base import BaseBalancer, OverlapWarning, fill_balancer_doc, standardize_columns
from ._entropy import entropy_balance

__all__ = ["BalancingIPM", "IPMBalancer", "available_ipms", "register_ipm"]

# Dense kernel blocks larger than this are never formed (bytes).
MEMORY_BUDGET = 1 << 30

_REGISTRY = {}


def register_ipm(name, cls, *, overwrite=False):
    """Make a discriminator class available as ``IPMBalancer(ipm=name)``.

    This is the extension point for classes that live elsewhere: for
    example ``weightstats.nn`` registers ``"neural"`` (an MLP critic trained
    adversarially) when it is imported.

    Parameters
    ----------
    name : str
        The value of ``ipm`` that selects the class.
    cls : type
        A subclass of :class:`BalancingIPM`.
    overwrite : bool, default=False
        Replace an existing registration of ``name``.

    Returns
    -------
    cls : type
        ``cls`` itself, so this can decorate a class.

    Examples
    --------
    >>> from weightstats.balancing import BalancingIPM, available_ipms, register_ipm
    >>> "mmd" in available_ipms()
    True
    >>> class Demo(BalancingIPM):
    ...     '''A toy class: uniform weights.'''
    ...     def solve(self, Z, source, target, target_mass, *, base_mass, cap, ridge, rng):
    ...         return base_mass, {"converged": True}
    ...     def squared_distance(self, Z, source, source_mass, target, target_mass):
    ...         return 0.0
    >>> _ = register_ipm("demo", Demo)
    >>> "demo" in available_ipms()
    True
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}.")
    if not (isinstance(cls, type) and issubclass(cls, BalancingIPM)):
        raise TypeError(f"cls must be a subclass of BalancingIPM; got {cls!r}.")
    if name in _REGISTRY and not overwrite and _REGISTRY[name] is not cls:
        raise ValueError(f"an IPM named {name!r} is already registered; pass overwrite=True.")
    _REGISTRY[name] = cls
    return cls


def available_ipms():
    """Names accepted by ``IPMBalancer(ipm=...)`` in this session.

    ``"neural"`` appears once ``weightstats.nn`` (torch) has been imported.

    Returns
    -------
    names : list of str
        Sorted names.

    Examples
    --------
    >>> from weightstats.balancing import available_ipms
    >>> [name for name in available_ipms() if name in ("energy", "mmd", "moments", "sigmoid")]
    ['energy', 'mmd', 'moments', 'sigmoid']
    """
    return sorted(_REGISTRY)


#: Below this many reweighted units the dense Gram matrix is always used.
SMALL_FACTOR_MIN_UNITS = 200


class BalancingIPM:
    """A discriminator class for :class:`IPMBalancer`: how to measure and minimise an IPM.

    Subclass it and :func:`register_ipm` the subclass to add a class. An
    instance is created for every ``fit`` from the balancer, whose parameters
    (``bandwidth``, ``ipm_params``, ``tol``, ``max_iter``, ``n_jobs``,
    ``verbose``, ...) it reads from ``self.balancer``.

    The two methods to implement work on standardised covariates ``Z`` (all
    rows) and index arrays: ``source`` (the units to reweight) and
    ``target`` (the population to match, with probability masses
    ``target_mass``).

    Parameters
    ----------
    balancer : IPMBalancer
        The estimator being fitted.

    Examples
    --------
    >>> from weightstats.balancing import BalancingIPM
    >>> BalancingIPM.supports_linear_model
    False
    """

    #: Whether ``weight_model="linear"`` is available (needs ``value_and_gradient``).
    supports_linear_model = False

    def __init__(self, balancer):
        self.balancer = balancer

    def prepare(self, Z, rng):
        """Set up anything shared by the arms of one fit (e.g. random units).

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_features)
            Standardised covariates of all rows.
        rng : numpy.random.RandomState
            The fit's random state.
        """

    def solve(self, Z, source, target, target_mass, *, base_mass, cap, ridge, rng):
        """Probability masses on ``source`` minimising the IPM to the target.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_features)
            Standardised covariates of all rows.
        source, target : ndarray of int
            Row indices of the reweighted units and of the target units.
        target_mass : ndarray of shape (len(target),)
            Target probability masses (sum to one).
        base_mass : ndarray of shape (len(source),)
            The unweighted masses of the source (proportional to the sample
            weights): the natural starting point.
        cap : ndarray of shape (len(source),) or None
            Upper bounds on the masses (``max_weight``).
        ridge : ndarray of shape (len(source),)
            Coefficients of the penalty ``sum(ridge * masses**2)``
            (``l2_penalty``), zero by default.
        rng : numpy.random.RandomState
            The fit's random state.

        Returns
        -------
        masses : ndarray of shape (len(source),)
            Non-negative, summing to one.
        info : dict
            Solver diagnostics; must contain ``"converged"``.
        """
        raise NotImplementedError

    def squared_distance(self, Z, source, source_mass, target, target_mass):
        """The squared IPM between two weighted samples (the balancing objective).

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_features)
            Standardised covariates of all rows.
        source : ndarray of int
            Row indices of the first sample.
        source_mass : ndarray
            Its probability masses.
        target : ndarray of int
            Row indices of the second sample.
        target_mass : ndarray
            Its probability masses.

        Returns
        -------
        value : float
            Non-negative.
        """
        raise NotImplementedError


# ----------------------------------------------------------------------------- kernel IPMs


class _KernelIPM(BalancingIPM):
    """IPMs whose square is a kernel MMD: a convex QP in the masses."""

    supports_linear_model = True
    has_factor = False

    # --- kernel primitives -------------------------------------------------
    def block(self, XA, XB):
        raise NotImplementedError

    def matvec(self, XA, XB, V):
        raise NotImplementedError

    def factor(self, X, tol, max_rank, init=None):
        raise NotImplementedError

    @property
    def n_jobs(self):
        return self.balancer.n_jobs

    def squared_distance(self, Z, source, source_mass, target, target_mass):
        keep_s, keep_t = source_mass > 0, target_mass > 0
        XA, a = Z[source][keep_s], source_mass[keep_s]
        XB, b = Z[target][keep_t], target_mass[keep_t]
        value = (a @ self.matvec(XA, XA, a) - 2.0 * a @ self.matvec(XA, XB, b)
                 + b @ self.matvec(XB, XB, b))
        return max(float(value), 0.0)

    # --- the QP ------------------------------------------------------------
    def solve(self, Z, source, target, target_mass, *, base_mass, cap, ridge, rng):
        bal = self.balancer
        start = time.perf_counter()
        Xs, Xt = Z[source], Z[target]
        n_s = Xs.shape[0]
        b = self.matvec(Xs, Xt, target_mass)
        c = float(target_mass @ self.matvec(Xt, Xt, target_mass))
        if bal.weight_model == "linear":
            masses, info = self._solve_linear(Xs, b, c, base_mass, ridge)
            info["time"] = time.perf_counter() - start
            return masses, info
        rep = bal.representation
        fac = None
        if rep == "auto":
            rep, fac = self._auto_representation(Z, source, target, target_mass)
        elif rep == "lowrank":
            fac = self._factorize(Z, source, target, target_mass, 1e-10)
        exact = _ExactKernelQP(self, Xs, b, ridge)
        # The objective at the starting (sample-weighted uniform) masses sets
        # the scale of the tolerance. With a factor it costs O(n r) instead of
        # O(n^2), within (sum_i |v_i| sqrt(e_i))^2 of the exact value.
        if fac is not None:
            f0 = _lowrank_objective(fac, base_mass)
        else:
            if rep == "dense":
                exact.dense = _qp.DenseOperator(self.block(Xs, Xs), ridge)
            f0 = exact.objective_part(base_mass) + c
        info = {"representation": rep, "initial_objective": max(f0, 0.0)}
        if f0 <= 1e-300:
            info.update(converged=True, objective=0.0, gap=0.0, kkt_residual=0.0,
                        iterations=0, solver="none")
            return base_mass, info
        # The tolerance's scale: the objective at uniform weights, but never below
        # the sampling noise of the squared IPM, E MMD^2 between the target and a
        # sample of its own size (an arm already close to its target, as the
        # controls are to the pooled sample in an ATE, needs no more precision).
        diag_t = float(target_mass @ self.diagonal(Xt))
        n_eff = 1.0 / float(target_mass @ target_mass)
        scale = max(f0, max(diag_t - c, 0.0) / n_eff)
        info["tolerance_scale"] = scale
        tol_abs = bal.tol * scale
        max_iter = bal.max_iter
        qp_rng = np.random.default_rng(rng.randint(2**31))
        if rep == "dense":
            if n_s * n_s * 8 > MEMORY_BUDGET:
                warnings.warn(
                    f"representation='dense' needs a {n_s}x{n_s} kernel matrix "
                    f"({n_s * n_s * 8 / 2**30:.1f} GiB); 'auto' would avoid it.",
                    UserWarning, stacklevel=5,
                )
            op = exact.dense
            res = _qp.solve_simplex_qp(op, b, cap=cap, tol=tol_abs, max_iter=max_iter,
                                       solver=bal.solver, x0=base_mass, rng=qp_rng)
        elif rep == "matrix_free":
            solver = "fista" if bal.solver == "auto" else bal.solver
            res = _qp.solve_simplex_qp(exact.operator(), b, cap=cap, tol=tol_abs,
                                       max_iter=max_iter, solver=solver, x0=base_mass,
                                       rng=qp_rng)
        elif rep == "lowrank":
            res = self._refine_lowrank(Z, target_mass, exact, fac,
                                       self._solve_lowrank(fac, cap, ridge, tol_abs, max_iter),
                                       cap, ridge, tol_abs, max_iter)
            info["rank"] = res.rank
            if not res.converged and bal.representation == "auto":
                # The factor was an "auto" choice for a small problem: the exact
                # dense solve is affordable and decides.
                rep = info["representation"] = "dense"
                exact.dense = _qp.DenseOperator(self.block(Xs, Xs), ridge)
                res = _qp.solve_simplex_qp(exact.dense, b, cap=cap, tol=tol_abs,
                                           max_iter=max_iter, solver=bal.solver, x0=base_mass,
                                           rng=qp_rng)
                del info["rank"]
        elif rep in ("lowrank+working-set", "working-set"):
            res, extra = self._solve_working_set(Z, source, target, target_mass, exact, fac,
                                                 base_mass, cap, ridge, tol_abs, max_iter, rep,
                                                 qp_rng)
            info.update(extra)
        else:
            raise ValueError(
                "representation must be 'auto', 'dense', 'lowrank' or 'matrix_free'; "
                f"got {bal.representation!r}."
            )
        x = res.x
        # The exact objective (IPM^2 without the penalty) at the answer.
        penalty = float(np.sum(ridge * x * x))
        info.update(
            solver=res.solver,
            iterations=int(res.iterations),
            converged=bool(res.converged),
            objective=max(exact.objective_part(x) + c, 0.0),
            penalty=penalty,
            gap=float(res.gap),
            relative_gap=float(res.gap) / scale,
            kkt_residual=float(res.kkt_residual),
            time=time.perf_counter() - start,
        )
        for key in ("approx_error", "lowrank_gap", "working_set_size"):
            if key in res:
                info[key] = res[key]
        return x, info

    def _auto_representation(self, Z, source, target, target_mass):
        """Choose how to hold the kernel; returns the choice and the factor, if any.

        Up to 2500 reweighted units: a pivoted-Cholesky factor when one of
        rank below a third of the units reaches the trace tolerance (a
        Woodbury step then costs O(n r^2), against n^3 / 3 for the dense
        Cholesky step; 1.3-1.6x faster fits on Kang-Schafer with 500 controls,
        rank about 120), else the dense Gram matrix. Larger problems: a
        pivoted-Cholesky factor screens for a working set (or solves, when the
        support is large).
        """
        if source.size <= _qp.DENSE_IPM_MAX:
            if self.has_factor and source.size >= SMALL_FACTOR_MIN_UNITS:
                max_rank = source.size // 3
                fac = self._factorize(Z, source, target, target_mass, 1e-10, max_rank=max_rank)
                if fac["L"].shape[1] < max_rank:
                    return "lowrank", fac
            return "dense", None
        if not self.has_factor:
            return "working-set", None
        return "lowrank+working-set", self._factorize(Z, source, target, target_mass, 1e-9)

    @staticmethod
    def _max_rank(n_u):
        return int(min(n_u, 3000, max(MEMORY_BUDGET // (4 * 8 * n_u), 50)))

    def _factorize(self, Z, source, target, target_mass, factor_tol, init=None, max_rank=None):
        """Pivoted-Cholesky factor of the kernel on both samples, with what it misses."""
        if init is not None:
            source, target = init["source"], init["target"]
            union, s_pos, t_pos = init["union"], init["s_pos"], init["t_pos"]
            previous = (init["L"], init["pivots"], init["e"])
        else:
            union, inv = np.unique(np.concatenate([source, target]), return_inverse=True)
            s_pos, t_pos = inv[: source.size], inv[source.size:]
            previous = None
        n_u = union.size
        if max_rank is None:
            max_rank = self._max_rank(n_u) if init is None else init["max_rank"]
        L, pivots, e = self.factor(Z[union], factor_tol, max_rank, init=previous)
        t_full = np.zeros(n_u)
        np.add.at(t_full, t_pos, target_mass)
        return {"L": L, "pivots": pivots, "e": e, "union": union, "s_pos": s_pos,
                "t_pos": t_pos, "t_full": t_full, "source": source, "target": target,
                "max_rank": max_rank, "tol": factor_tol}

    def _solve_lowrank(self, fac, cap, ridge, tol_abs, max_iter):
        """Interior point on ``K ~= L L' + diag(e)`` (``e`` what the factor ``L`` misses)."""
        L, e, s_pos, t_full = fac["L"], fac["e"], fac["s_pos"], fac["t_full"]
        # Fortran order: the Woodbury solves form A' H^-1 A with a BLAS syrk.
        A = np.asfortranarray(L[s_pos])
        b_lr = A @ (L.T @ t_full) + e[s_pos] * t_full[s_pos]
        op = _qp.LowRankOperator(A, e[s_pos], ridge)
        # A tighter tolerance than the user's: the exact certificate adds the
        # factor's error to this problem's own gap.
        res = _qp.interior_point(op, b_lr, cap=cap, tol=0.1 * tol_abs, max_iter=max_iter or 200)
        res["rank"] = L.shape[1]
        res["factor_max_rank"] = fac["max_rank"]
        return res

    def _solve_working_set(self, Z, source, target, target_mass, exact, fac, base_mass, cap,
                           ridge, tol_abs, max_iter, rep, qp_rng):
        """Large problems: a low-rank solve, exact working sets, exact certificates.

        1. With a factor (``"mmd"``): solve the problem on ``A A' + diag(e)``.
           Its answer locates the units that matter.
        2. If few units carry all but 1e-6 of the mass, solve the *exact* problem
           on a working set of them (dense interior point) and grow it until the
           exact optimality conditions hold for every unit.
        3. Otherwise certify the low-rank answer with exact gradients; when its
           exact duality gap is above ``tol``, refine the factor (up to three
           times) and solve again.
        Without a factor, step 1 is the exact gradient at uniform weights and
        the fallback is matrix-free FISTA.
        """
        n_s = source.size
        extra = {}
        if fac is not None:
            lr = self._solve_lowrank(fac, cap, ridge, tol_abs, max_iter)
            x0 = lr.x
        else:
            lr, x0 = None, base_mass
        # The units carrying all but 1e-6 of the mass.
        order = np.argsort(x0)[::-1]
        tail = np.cumsum(x0[order][::-1])[::-1]
        support = order[tail > 1e-6]
        half = _qp.DENSE_IPM_MAX // 2
        if support.size <= half:
            x_sig = np.zeros(n_s)
            x_sig[support] = x0[support]
            grad0 = exact.half_gradient(x_sig / x_sig.sum())
            k = int(min(n_s, half, max(2 * support.size, 500)))
            candidates = np.union1d(support, np.argsort(grad0)[:k])
            res = _qp.working_set_solve(
                n_s, sub_operator=exact.dense_sub_operator, sub_linear=lambda idx: exact.b[idx],
                full_gradient=exact.half_gradient, candidates=candidates, cap=cap, tol=tol_abs,
                max_iter=max_iter or 200,
            )
            extra["working_set_size"] = res.working_set_size
            if res.converged:
                return res, extra
            x0 = res.x
        if fac is None:
            extra["representation"] = "matrix_free"
            res = _qp.fista(exact.operator(), exact.b, cap=cap, x0=x0, tol=tol_abs,
                            max_iter=max_iter or 20000, rng=qp_rng)
            return res, extra
        extra["representation"] = "lowrank"
        lr = self._refine_lowrank(Z, target_mass, exact, fac, lr, cap, ridge, tol_abs, max_iter)
        extra["rank"] = lr.rank
        return lr, extra

    def _refine_lowrank(self, Z, target_mass, exact, fac, lr, cap, ridge, tol_abs, max_iter):
        """Certify a low-rank answer exactly; refine the factor (up to 3 times) until it passes."""
        for _ in range(3):
            self._certify_exact(lr, exact, cap, tol_abs)
            # A finer factor cannot help when the factor problem itself stalled.
            if lr.converged or lr.rank >= lr.factor_max_rank or not lr.lowrank_converged:
                return lr
            fac = self._factorize(Z, None, None, target_mass, fac["tol"] * 1e-2, init=fac)
            lr = self._solve_lowrank(fac, cap, ridge, tol_abs, max_iter)
        self._certify_exact(lr, exact, cap, tol_abs)
        return lr

    @staticmethod
    def _certify_exact(res, exact, cap, tol_abs):
        """Judge a low-rank answer by the exact problem's duality gap (keep both gaps)."""
        if "lowrank_gap" in res:
            return
        x = res.x
        grad = 2.0 * exact.half_gradient(x)
        res["lowrank_gap"] = float(res.gap)
        res["lowrank_converged"] = bool(res.converged)
        res["approx_error"] = abs(exact.objective_part(x) + float(np.sum(exact.ridge * x * x))
                                  - res.objective)
        res["gap"] = _qp.frank_wolfe_gap(x, grad, cap)
        res["kkt_residual"] = _qp.kkt_residual(x, grad, cap)
        # The exact problem's certificate decides, whatever the factor problem's status.
        res["converged"] = res["gap"] <= tol_abs
        res["solver"] = res.solver + " (low-rank factor)"

    def _solve_linear(self, Xs, b, c, base_mass, ridge):
        """``w ∝ s exp(Xs beta)``: minimise the objective over ``beta`` by L-BFGS (non-convex)."""
        bal = self.balancer
        n_s = Xs.shape[0]
        use_block = n_s * n_s * 8 <= MEMORY_BUDGET // 4
        Q = self.block(Xs, Xs) if use_block else None

        def Qv(v):
            return Q @ v if Q is not None else self.matvec(Xs, Xs, v)

        log_base = np.log(base_mass)

        def masses(beta):
            eta = log_base + Xs @ beta
            m = np.exp(eta - eta.max())
            return m / m.sum()

        def fun(beta):
            m = masses(beta)
            Qm = Qv(m)
            value = float(m @ Qm) - 2.0 * float(b @ m) + c + float(np.sum(ridge * m * m))
            g_m = 2.0 * (Qm - b + ridge * m)
            return value, Xs.T @ (m * (g_m - m @ g_m))

        res = minimize(fun, np.zeros(Xs.shape[1]), jac=True, method="L-BFGS-B",
                       options={"maxiter": bal.max_iter or 1000, "gtol": 1e-12,
                                "ftol": 1e-14})
        m = masses(res.x)
        value, grad = fun(res.x)
        grad_norm = float(np.max(np.abs(grad)))
        return m, {
            "representation": "dense" if use_block else "matrix_free",
            "solver": "L-BFGS (linear weight model)",
            "iterations": int(res.nit),
            # L-BFGS-B stops on ftol too; accept a stationary point to tolerance.
            "converged": bool(res.success) or grad_norm <= bal.tol * max(value, 1e-300) ** 0.5,
            "objective": max(value - float(np.sum(ridge * m * m)), 0.0),
            "gradient_norm": grad_norm,
            "coef": res.x.tolist(),
        }


def _lowrank_objective(fac, m):
    """``v' (L L' + diag(e)) v`` with ``v`` = source masses minus target masses."""
    v = -fac["t_full"].copy()
    np.add.at(v, fac["s_pos"], m)
    u = fac["L"].T @ v
    return float(u @ u + fac["e"] @ (v * v))


class _ExactKernelQP:
    """Exact kernel products for one arm's QP (``b`` computed exactly)."""

    def __init__(self, ipm, Xs, b, ridge):
        self.ipm, self.Xs, self.b, self.ridge = ipm, Xs, b, ridge
        self._cache = (None, None)
        self.dense = None  # the Gram matrix, when the dense representation holds it

    def kernel_product(self, x):
        """``K x`` over the support of ``x`` (the last product is cached: O(n |support|))."""
        last_x, last_Kx = self._cache
        if last_x is not None and last_x.shape == x.shape and np.array_equal(last_x, x):
            return last_Kx
        support = np.flatnonzero(x)
        if self.dense is not None:
            Kx = self.dense.Q[:, support] @ x[support]
        else:
            Kx = self.ipm.matvec(self.Xs, self.Xs[support], x[support])
        self._cache = (x.copy(), Kx)
        return Kx

    def full_half_gradient_plus_b(self, x):
        """``(K + diag(ridge)) x`` for all units."""
        return self.kernel_product(x) + self.ridge * x

    def half_gradient(self, x):
        """``(K + diag(ridge)) x - b``: half the gradient of the objective."""
        return self.full_half_gradient_plus_b(x) - self.b

    def objective_part(self, x):
        return float(x @ self.kernel_product(x)) - 2.0 * float(self.b @ x)

    def dense_sub_operator(self, idx):
        X = self.Xs[idx]
        return _qp.DenseOperator(self.ipm.block(X, X), _qp._restrict_ridge(self.ridge, idx))

    def operator(self):
        Xs = self.Xs
        ipm = self.ipm
        diag = ipm.diagonal(Xs)

        def restrict(idx):
            sub = _ExactKernelQP(ipm, Xs[idx], self.b[idx], _qp._restrict_ridge(self.ridge, idx))
            return sub.operator()

        return _qp.MatrixFreeOperator(lambda v: ipm.matvec(Xs, Xs, v), Xs.shape[0], diag,
                                      restrict, ridge=self.ridge)


# ----------------------------------------------------------------------------- the classes


class MMDIPM(_KernelIPM):
    """Gaussian-kernel MMD: ``k(x, y) = exp(-|x - y|^2 / (2 bandwidth^2))``."""

    has_factor = True

    def __init__(self, balancer):
        super().__init__(balancer)
        self.bandwidth = balancer._bandwidth

    def block(self, XA, XB):
        return kernel_matrix(XA, XB, kernel="gaussian", bandwidth=self.bandwidth,
                             n_jobs=self.n_jobs)

    def matvec(self, XA, XB, V):
        return kernel_matvec(XA, XB, V, kernel="gaussian", bandwidth=self.bandwidth,
                             n_jobs=self.n_jobs)

    def diagonal(self, X):
        return np.ones(X.shape[0])

    def factor(self, X, tol, max_rank, init=None):
        return pivoted_cholesky(X, kernel="gaussian", bandwidth=self.bandwidth, tol=tol,
                                max_rank=max_rank, n_jobs=self.n_jobs, init=init)


class EnergyIPM(_KernelIPM):
    """Energy distance: MMD^2 of the kernel ``|x| + |y| - |x - y|`` (equals the energy distance)."""

    def block(self, XA, XB):
        na = np.sqrt(np.einsum("ij,ij->i", XA, XA))
        nb = np.sqrt(np.einsum("ij,ij->i", XB, XB))
        return na[:, None] + nb[None, :] - pairwise_distances(XA, XB, n_jobs=self.n_jobs)

    def matvec(self, XA, XB, V):
        na = np.sqrt(np.einsum("ij,ij->i", XA, XA))
        nb = np.sqrt(np.einsum("ij,ij->i", XB, XB))
        V = np.asarray(V, dtype=float)
        D = kernel_matvec(XA, XB, V, kernel="distance", n_jobs=self.n_jobs)
        if V.ndim == 1:
            return na * V.sum() + nb @ V - D
        return na[:, None] * V.sum(axis=0) + (nb @ V)[None, :] - D

    def diagonal(self, X):
        return 2.0 * np.sqrt(np.einsum("ij,ij->i", X, X))


class MomentsIPM(_KernelIPM):
    """Linear discriminators: IPM^2 is the sum of squared standardised mean differences."""

    has_factor = True

    def block(self, XA, XB):
        return XA @ XB.T

    def matvec(self, XA, XB, V):
        return XA @ (XB.T @ V)

    def diagonal(self, X):
        return np.einsum("ij,ij->i", X, X)

    def factor(self, X, tol, max_rank, init=None):
        # Exact: the kernel has rank d.
        return np.asfortranarray(X), np.arange(0), np.zeros(X.shape[0])

    def _auto_representation(self, Z, source, target, target_mass):
        return "lowrank", self._factorize(Z, source, target, target_mass, 0.0)

    @staticmethod
    def _certify_exact(res, exact, cap, tol_abs):
        res["approx_error"] = 0.0


class SigmoidIPM(BalancingIPM):
    """Worst-case mean difference over ``n_units`` random sigmoid units ``sigma(a'x + b)``.

    Units are drawn once per fit (``a ~ N(0, I)``, ``b ~ N(0, 1)`` on
    standardised covariates; ``ipm_params={"n_units": 100}`` by default), and
    the weights solve ``min_m max_k |mean_target f_k - sum_i m_i f_k(x_i)|``
    exactly as a linear program (HiGHS), or as a quadratic program (cvxpy)
    when ``l2_penalty > 0``. This is the convex min-max version of the
    paper's adversarial sigmoid class, whose reference code instead trains
    the units by gradient ascent.
    """

    def __init__(self, balancer, n_units=100):
        super().__init__(balancer)
        if not isinstance(n_units, numbers.Integral) or n_units < 1:
            raise ValueError(f"n_units must be a positive integer; got {n_units!r}.")
        self.n_units = int(n_units)

    def prepare(self, Z, rng):
        self.A_ = rng.standard_normal((Z.shape[1], self.n_units))
        self.b_ = rng.standard_normal(self.n_units)

    def features(self, X):
        from scipy.special import expit

        return expit(X @ self.A_ + self.b_)

    def squared_distance(self, Z, source, source_mass, target, target_mass):
        diff = self.features(Z[source]).T @ source_mass - self.features(Z[target]).T @ target_mass
        return float(np.max(diff**2))

    def solve(self, Z, source, target, target_mass, *, base_mass, cap, ridge, rng):
        start = time.perf_counter()
        F = self.features(Z[source])
        mu = self.features(Z[target]).T @ target_mass
        n, k = F.shape
        f0 = float(np.max((F.T @ base_mass - mu) ** 2))
        if np.any(ridge > 0):
            m, status = self._solve_qp(F, mu, cap, ridge)
            solver = "cvxpy (Clarabel)"
        else:
            m, status = self._solve_lp(F, mu, cap)
            solver = "linear program (HiGHS)"
        m = np.maximum(m, 0.0)
        m = _qp.project_capped_simplex(m, cap) if cap is not None else m / m.sum()
        return m, {
            "representation": f"{k} sigmoid units",
            "solver": solver,
            "converged": status,
            "objective": float(np.max((F.T @ m - mu) ** 2)),
            "initial_objective": f0,
            "time": time.perf_counter() - start,
        }

    @staticmethod
    def _solve_lp(F, mu, cap):
        from scipy.optimize import linprog

        n, k = F.shape
        # Variables (m, tau): minimise tau subject to -tau <= F'm - mu <= tau.
        cost = np.r_[np.zeros(n), 1.0]
        A_ub = np.vstack([np.hstack([F.T, -np.ones((k, 1))]), np.hstack([-F.T, -np.ones((k, 1))])])
        b_ub = np.r_[mu, -mu]
        A_eq = np.r_[np.ones(n), 0.0][None, :]
        upper = [None] * n if cap is None else list(cap)
        bounds = [(0, u) for u in upper] + [(0, None)]
        res = linprog(cost, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=[1.0], bounds=bounds,
                      method="highs")
        if res.status != 0:
            raise ValueError(f"the sigmoid-IPM linear program failed: {res.message}")
        return res.x[:n], True

    @staticmethod
    def _solve_qp(F, mu, cap, ridge):
        import cvxpy as cp

        n = F.shape[0]
        m, tau = cp.Variable(n), cp.Variable()
        diff = F.T @ m - mu
        constraints = [m >= 0, cp.sum(m) == 1, diff <= tau, -diff <= tau]
        if cap is not None:
            constraints.append(m <= cap)
        problem = cp.Problem(
            cp.Minimize(cp.square(tau) + cp.sum(cp.multiply(ridge, cp.square(m)))), constraints
        )
        problem.solve(solver="CLARABEL")
        if m.value is None:
            raise ValueError(f"the sigmoid-IPM quadratic program failed: {problem.status}")
        return np.asarray(m.value), problem.status == "optimal"


register_ipm("mmd", MMDIPM)
register_ipm("energy", EnergyIPM)
register_ipm("moments", MomentsIPM)
register_ipm("sigmoid", SigmoidIPM)


@fill_balancer_doc
class IPMBalancer(BaseBalancer):
    """Balancing weights that minimise an integral probability metric (CBIPM).

    Chooses weights so that the weighted empirical distribution of the
    reweighted arm is as close as possible to its target, as measured by the
    integral probability metric (IPM) ``sup_{f in F} |E_target f - E_w f|``
    over a class ``F`` of discriminators (Kong, Park, Jung, Lee and Kim, ICML
    2023). Consistent without a correct propensity or outcome model.

    With ``weight_model="nonparametric"`` (one free weight per unit) and a
    kernel class (``"mmd"``, ``"energy"``, ``"moments"``) the problem is a
    convex quadratic program on the simplex, solved exactly by an
    interior-point method, with the kernel held as a dense Gram matrix, a
    pivoted-Cholesky factor or matrix-free products (chosen automatically;
    see ``representation``). Read more in the :ref:`User Guide <balancing>`.

    Parameters
    ----------
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        ATT reweights the controls to the treated, ATC the treated to the
        controls, ATE each arm to the pooled sample (two problems).
    ipm : str, default="mmd"
        The discriminator class: ``"mmd"`` (Gaussian RKHS unit ball),
        ``"energy"`` (energy distance), ``"moments"`` (linear functions:
        squared standardised mean differences), ``"sigmoid"`` (random sigmoid
        units, worst case) or any name added with :func:`register_ipm`
        (``"neural"`` from ``weightstats.nn``).
    bandwidth : float or "median", default=10.0
        Gaussian bandwidth ``gamma`` of ``exp(-|x - y|^2 / (2 gamma^2))`` on the
        (standardised) covariates; ``"median"`` uses the median pairwise
        distance. 10 is the reference code's default.
    weight_model : {"nonparametric", "linear"}, default="nonparametric"
        ``"nonparametric"``: one weight per unit on the simplex (a convex
        problem). ``"linear"``: ``w ∝ exp(X beta)``, the exponential-tilting
        family, fitted by L-BFGS (not convex); for ``ipm="moments"`` this is
        exactly entropy balancing.
    max_weight : float, default=None
        Upper bound on each unit's weight (weights of a reweighted arm sum to
        the target's size, so 1 is the average). Infeasible values raise
        ``ValueError``.
    standardize : bool, default=True
        Centre and scale the covariates by their pooled mean and standard
        deviation first (constant columns are dropped with a warning).
    l2_penalty : float, default=0.0
        Adds ``l2_penalty / ESS`` to the objective (ESS the Kish effective
        sample size of the reweighted arm): trades balance for less variable
        weights, as stable balancing weights do. 0 solves the pure IPM
        problem.
    representation : {"auto", "dense", "lowrank", "matrix_free"}, default="auto"
        How the kernel is held. ``"auto"``: up to 2500 reweighted units, a
        pivoted-Cholesky factor when one of rank below a third of the units
        is accurate to 1e-10 per unit (``"mmd"``; the answer is certified on
        the exact kernel, and solved densely if that fails), otherwise the
        dense Gram matrix; above 2500, a pivoted-Cholesky factor (``"mmd"``)
        or the exact gradient screens the units, and the problem is solved
        exactly on a working set that grows until the optimality conditions
        hold for all units; if the support outgrows the working set, the
        low-rank factor (``"mmd"``, ``"moments"``) or matrix-free FISTA
        (``"energy"``) solves the whole problem.
    solver : {"auto", "interior-point", "fista"}, default="auto"
        QP solver for the ``"dense"`` and ``"matrix_free"`` representations.
    tol : float, default=1e-8
        Stop when the Frank-Wolfe duality gap, a certified bound on the
        distance to the optimal objective, is below ``tol`` times a scale:
        the objective at uniform weights, or the squared IPM's sampling
        noise (its expectation between the target and an independent sample
        of the target's effective size) when that is larger, so that an arm
        already as close to its target as sampling allows is not refined
        without end.
    max_iter : int, default=None
        Iteration limit of the solver (``None``: 200 interior-point, 20000
        FISTA or 1000 L-BFGS iterations).
    ipm_params : dict, default=None
        Extra parameters of the discriminator class, e.g.
        ``{"n_units": 100}`` for ``"sigmoid"``.
    {pos_label}
    {n_jobs}
    {random_state}
    {verbose}

    Attributes
    ----------
    {fitted_attributes}
    ipm_before_ : float
        The IPM between the treated and control groups without weighting.
    ipm_after_ : float
        The IPM between the weighted groups.
    bandwidth_ : float or None
        The Gaussian bandwidth used (``None`` for other classes).
    solver_info_ : dict
        Diagnostics of the reweighting problem(s) (for ATE one dict per
        arm): ``representation`` (``"dense"``, ``"lowrank"``,
        ``"lowrank+working-set"``, ...), ``solver``, ``iterations``,
        ``converged``, ``objective`` (the arm's IPM^2), ``gap`` (Frank-Wolfe
        duality gap), ``relative_gap`` (the gap over the scale described at
        ``tol``, recorded as ``tolerance_scale``), ``kkt_residual`` and
        ``time``.
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    EntropyBalancer : Exact mean balance by exponential tilting.
    PropensityBalancer : Inverse probability weighting.
    balance_table : Balance before and after weighting.

    Examples
    --------
    >>> from weightstats.balancing import IPMBalancer
    >>> from weightstats.datasets import make_kang_schafer
    >>> ks = make_kang_schafer(400, random_state=0)
    >>> bal = IPMBalancer(estimand="ATT").fit(ks.data, ks.treatment)
    >>> bal.solver_info_["converged"], bal.solver_info_["representation"]
    (True, 'dense')
    >>> bool(bal.ipm_after_ < 0.1 * bal.ipm_before_)
    True
    >>> res = bal.estimate_effect(ks.target)
    >>> bool(abs(res.effect) < abs(ks.target[ks.treatment == 1].mean()
    ...                             - ks.target[ks.treatment == 0].mean()))
    True
    """

    _parameter_constraints = {
        **BaseBalancer._parameter_constraints,
        "ipm": [str],
        "bandwidth": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"median"})],
        "weight_model": [StrOptions({"nonparametric", "linear"})],
        "max_weight": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "standardize": ["boolean"],
        "l2_penalty": [Interval(numbers.Real, 0, None, closed="left")],
        "representation": [StrOptions({"auto", "dense", "lowrank", "matrix_free"})],
        "solver": [StrOptions({"auto", "interior-point", "fista"})],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "ipm_params": [dict, None],
    }

    def __init__(self, estimand="ATT", *, ipm="mmd", bandwidth=10.0, weight_model="nonparametric",
                 max_weight=None, standardize=True, l2_penalty=0.0, representation="auto",
                 solver="auto", tol=1e-8, max_iter=None, ipm_params=None, pos_label=None,
                 n_jobs=None, random_state=None, verbose=0):
        super().__init__(estimand=estimand, pos_label=pos_label, n_jobs=n_jobs,
                         random_state=random_state, verbose=verbose)
        self.ipm = ipm
        self.bandwidth = bandwidth
        self.weight_model = weight_model
        self.max_weight = max_weight
        self.standardize = standardize
        self.l2_penalty = l2_penalty
        self.representation = representation
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.ipm_params = ipm_params

    def _make_ipm(self, Z, rng):
        if self.ipm not in _REGISTRY:
            hint = " (import weightstats.nn to register it; needs torch)" if (
                self.ipm == "neural") else ""
            raise ValueError(f"unknown ipm {self.ipm!r}{hint}; available: {available_ipms()}.")
        if self.ipm == "mmd":
            self._bandwidth = _resolve_bandwidth(self.bandwidth, Z, rng)
        else:
            self._bandwidth = None
        cls = _REGISTRY[self.ipm]
        ipm = cls(self, **(self.ipm_params or {}))
        if self.weight_model == "linear" and not cls.supports_linear_model and not (
                self.ipm == "moments"):
            raise ValueError(
                f"ipm={self.ipm!r} supports weight_model='nonparametric' only."
            )
        ipm.prepare(Z, rng)
        return ipm

    def _prepare(self, X, sample_weight, rng):
        names = list(self.feature_names_in_) if hasattr(self, "feature_names_in_") else None
        if self.standardize:
            Z, _ = standardize_columns(X, sample_weight, warn=not self._in_bootstrap, names=names)
        else:
            Z = np.ascontiguousarray(X)
        ipm = self._make_ipm(Z, rng)
        self.bandwidth_ = self._bandwidth
        return Z, ipm

    def _solve_arm(self, prepared, name, source, target, sample_weight, rng):
        Z, ipm = prepared
        # Units with identical covariates are one point of the weighted
        # distribution: solve over distinct rows (their sample weights added) and
        # share each point's mass in proportion to the sample weights. This makes
        # the weights unique where the objective only sees their sum, and integer
        # sample weights identical to repeated rows.
        _, first, group = np.unique(Z[source], axis=0, return_index=True, return_inverse=True)
        group = group.ravel()
        reps = source[first]
        s_rows = sample_weight[source]
        s_grp = np.bincount(group, weights=s_rows)
        s_tgt = sample_weight[target]
        total_target = s_tgt.sum()
        base_mass = s_grp / s_grp.sum()
        target_mass = s_tgt / total_target
        cap = None
        if self.max_weight is not None:
            cap = s_grp * self.max_weight / total_target
            if cap.sum() < 1.0 - 1e-12:
                raise ValueError(
                    f"max_weight={self.max_weight:g} is infeasible: the {name} arm's weights "
                    f"must sum to {total_target:g}, which needs max_weight >= "
                    f"{total_target / s_grp.sum():.4g}."
                )
        ridge = self.l2_penalty / s_grp
        if self.ipm == "moments" and self.weight_model == "linear":
            masses, info = self._entropy_balance(Z, reps, target, base_mass, target_mass)
        else:
            masses, info = ipm.solve(Z, reps, target, target_mass, base_mass=base_mass, cap=cap,
                                     ridge=ridge, rng=rng)
        masses = np.asarray(masses, dtype=float)
        if masses.shape != (reps.size,) or not np.all(np.isfinite(masses)) or np.any(masses < 0):
            raise RuntimeError(f"ipm={self.ipm!r} returned invalid masses for the {name} arm.")
        if reps.size < source.size:
            info = dict(info, distinct_units=int(reps.size))
        return masses[group] * s_rows / s_grp[group], info

    def _after_weights(self, prepared, X, treated, sample_weight, weights, infos):
        if self._in_bootstrap:
            self.ipm_before_ = self.ipm_after_ = float("nan")
            return
        Z, ipm = prepared
        self._diagnose(ipm, Z, X, treated, sample_weight, weights, infos)

    def _entropy_balance(self, Z, source, target, base_mass, target_mass):
        start = time.perf_counter()
        masses, info = entropy_balance(Z[source], target_mass @ Z[target],
                                       base_weights=base_mass, tol=self.tol,
                                       max_iter=self.max_iter or 200)
        diff = Z[source].T @ masses - Z[target].T @ target_mass
        info.update(representation="exact (moments)", solver="entropy balancing (Newton)",
                    objective=float(diff @ diff), time=time.perf_counter() - start)
        return masses, info

    def _diagnose(self, ipm, Z, X, treated, sample_weight, weights, infos):
        t_idx = np.flatnonzero(treated & (sample_weight > 0))
        c_idx = np.flatnonzero(~treated & (sample_weight > 0))
        s = sample_weight
        before_t, before_c = s[t_idx] / s[t_idx].sum(), s[c_idx] / s[c_idx].sum()
        after_t = s[t_idx] * weights[t_idx]
        after_c = s[c_idx] * weights[c_idx]
        after_t, after_c = after_t / after_t.sum(), after_c / after_c.sum()
        # For ATT/ATC the arm's starting objective is already the "before" IPM^2.
        arm = next(iter(infos.values()))
        if self.estimand != "ATE" and "initial_objective" in arm:
            before = arm["initial_objective"]
        else:
            before = ipm.squared_distance(Z, t_idx, before_t, c_idx, before_c)
        if self.estimand != "ATE" and "objective" in arm and self.l2_penalty == 0 and (
                self.weight_model == "nonparametric"):
            after = arm["objective"]
        else:
            after = ipm.squared_distance(Z, t_idx, after_t, c_idx, after_c)
        self.ipm_before_ = float(np.sqrt(max(before, 0.0)))
        self.ipm_after_ = float(np.sqrt(max(after, 0.0)))
        separated = [name for j, name in enumerate(self._feature_names())
                     if X[treated, j].min() > X[~treated, j].max()
                     or X[treated, j].max() < X[~treated, j].min()]
        poor = self.ipm_after_ > 0.5 * self.ipm_before_ and self.ipm_before_ > 0
        if separated or poor:
            ess_t = _kish(s[treated] * weights[treated])
            ess_c = _kish(s[~treated] * weights[~treated])
            why = (f"covariate(s) {', '.join(separated)} separate the groups completely"
                   if separated
                   else "weighting removed less than half of the imbalance")
            warnings.warn(
                f"the treated and control groups barely overlap ({why}): the IPM is "
                f"{self.ipm_before_:.3g} before and {self.ipm_after_:.3g} after weighting, with "
                f"effective sample sizes {ess_t:.1f} (treated) and {ess_c:.1f} (control).",
                OverlapWarning, stacklevel=4,
            )

    def _method_name(self):
        return f"IPM balancing ({self.ipm}, {self.weight_model})"

    def _summary_info(self):
        info = {"IPM before / after": f"{self.ipm_before_:.4g} / {self.ipm_after_:.4g}"}
        solver = self.solver_info_
        arms = [solver] if "arm" in solver else [solver[a] for a in ("treated", "control")]
        info["solver"] = "; ".join(
            f"{a.get('solver')} [{a.get('representation')}], "
            f"{'converged' if a.get('converged') else 'NOT converged'}" for a in arms
        )
        return info


def _kish(w):
    return float(w.sum() ** 2 / (w @ w)) if w.sum() > 0 else 0.0


def _resolve_bandwidth(bandwidth, Z, rng, max_points=1000):
    if bandwidth != "median":
        return float(bandwidth)
    idx = rng.permutation(Z.shape[0])[:max_points]
    D = pairwise_distances(Z[idx])
    values = D[np.triu_indices_from(D, k=1)]
    values = values[values > 0]
    return float(np.median(values)) if values.size else 1.0
