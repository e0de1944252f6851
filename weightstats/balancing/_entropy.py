"""Entropy balancing (Hainmueller 2012): exact moment balance by exponential tilting.

The weights of the reweighted group are ``w_i ∝ q_i exp(c_i' lambda)`` (``q``
the base weights) with ``lambda`` chosen so that the weighted means of the
balance functions ``c`` (covariates, optionally their squares, ...) equal the
target means exactly. ``lambda`` minimises the convex dual

    log sum_i q_i exp((c_i - mu)' lambda),

whose gradient is the weighted imbalance and whose Hessian is the weighted
covariance of ``c``. We minimise it by Newton's method with a backtracking
line search, evaluating every sum in log-sum-exp form (a plain
``log(sum(exp(.)))`` overflows under poor overlap). When exact balance is
impossible (the target means lie outside the convex hull of the group's
covariates) the dual is unbounded below; that is confirmed with a linear
program and reported as a ``ValueError``.
"""

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval

from ._base import BaseBalancer, arms_for_estimand, fill_balancer_doc, standardize_columns
from ._effects import WeightEquations

__all__ = ["EntropyBalancer", "entropy_balance"]


def entropy_balance(C, target, *, base_weights=None, tol=1e-8, max_iter=200):
    """Solve the entropy-balancing dual for one group.

    Parameters
    ----------
    C : ndarray of shape (n, k)
        Balance functions of the reweighted units (already scaled; standardised
        columns keep the Newton steps well conditioned).
    target : ndarray of shape (k,)
        Target means.
    base_weights : ndarray of shape (n,), default=None
        Positive base weights ``q`` (sample weights); uniform when ``None``.
    tol : float, default=1e-8
        Stop when the largest absolute imbalance is at most ``tol``.
    max_iter : int, default=200
        Maximum number of Newton iterations.

    Returns
    -------
    masses : ndarray of shape (n,)
        The balancing weights, summing to one.
    info : dict
        ``converged``, ``iterations``, ``max_imbalance``, ``coef`` (lambda).

    Raises
    ------
    ValueError
        If exact balance is infeasible.
    """
    n, k = C.shape
    q = np.ones(n) if base_weights is None else np.asarray(base_weights, dtype=float)
    log_q = np.log(q / q.sum())
    D = C - target
    lam = np.zeros(k)

    def evaluate(lam):
        # log-sum-exp by hand (scipy's has much overhead for this hot loop).
        eta = log_q + D @ lam
        top = eta.max()
        e = np.exp(eta - top)
        total = e.sum()
        return top + np.log(total), e / total

    value, m = evaluate(lam)
    imbalance = D.T @ m
    it = 0
    converged = bool(np.max(np.abs(imbalance), initial=0.0) <= tol)
    for it in range(1, max_iter + 1):
        if converged:
            it -= 1
            break
        Dc = D - imbalance
        H = (Dc * m[:, None]).T @ Dc
        # Least squares handles redundant balance functions (e.g. x and x^2
        # of a binary x), where the Hessian is singular.
        step = -np.linalg.lstsq(H, imbalance, rcond=1e-12)[0]
        slope = float(imbalance @ step)
        if not slope < 0:
            step, slope = -imbalance, -float(imbalance @ imbalance)
        t = 1.0
        while True:
            new_value, new_m = evaluate(lam + t * step)
            if new_value <= value + 1e-4 * t * slope or t < 1e-12:
                break
            t *= 0.5
        if t < 1e-12:
            break
        lam = lam + t * step
        value, m = new_value, new_m
        imbalance = D.T @ m
        converged = bool(np.max(np.abs(imbalance)) <= tol)
    max_imbalance = float(np.max(np.abs(imbalance), initial=0.0))
    if not converged and not _balance_feasible(D, q):
        raise ValueError(
            "exact balance is infeasible: the target means lie outside the convex hull of the "
            "reweighted group's covariates (too little overlap); use fewer moments or "
            "IPMBalancer, which minimises imbalance instead of requiring it to be zero."
        )
    return m, {
        "converged": converged,
        "iterations": it,
        "max_imbalance": max_imbalance,
        "coef": lam.tolist(),
    }


def _balance_feasible(D, q):
    """Is there a probability vector on the units with ``D' m = 0``? (linear program)."""
    from scipy.optimize import linprog

    n = D.shape[0]
    res = linprog(
        np.zeros(n),
        A_eq=np.vstack([D.T, np.ones((1, n))]),
        b_eq=np.r_[np.zeros(D.shape[1]), 1.0],
        bounds=(0, None),
        method="highs",
    )
    return res.status == 0


def moment_features(X, moments):
    """Balance functions: standardised columns and their powers up to ``moments``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Standardised covariates.
    moments : int
        Highest power.

    Returns
    -------
    C : ndarray of shape (n, d * moments)
        ``[X, X**2, ..., X**moments]``.
    """
    return np.hstack([X**p for p in range(1, moments + 1)])


@fill_balancer_doc
class EntropyBalancer(BaseBalancer):
    """Entropy balancing: exact mean (and variance, ...) balance by exponential tilting.

    The reweighted group's weights are ``w_i ∝ s_i exp(c_i' lambda)`` (``s``
    the sample weights), the maximum-entropy weights whose weighted means of
    the balance functions ``c`` equal the target group's means exactly
    (Hainmueller 2012). ``moments=1`` balances the covariate means,
    ``moments=2`` also their second moments (hence variances), and so on.
    Balance functions are computed on covariates standardised by the pooled
    mean and standard deviation. Read more in the :ref:`User Guide
    <balancing>`.

    Parameters
    ----------
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        ATT reweights the controls to the treated, ATC the treated to the
        controls, ATE each arm to the pooled sample (two problems).
    moments : int, default=1
        Highest power of each (standardised) covariate to balance.
    {pos_label}
    tol : float, default=1e-8
        Largest acceptable absolute imbalance of a balance function, in
        standard deviations.
    max_iter : int, default=200
        Maximum number of Newton iterations per problem.
    {n_jobs}
    {random_state}
    {verbose}

    Attributes
    ----------
    {fitted_attributes}
    solver_info_ : dict
        Per reweighted arm: ``converged``, ``iterations``,
        ``max_imbalance`` and the dual coefficients ``coef``.
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    IPMBalancer : Balances whole distributions, not just moments, and never
        fails for lack of overlap.
    PropensityBalancer : Inverse probability weighting.

    Examples
    --------
    >>> from weightstats.balancing import EntropyBalancer
    >>> from weightstats.datasets import load_lalonde
    >>> data = load_lalonde(controls="cps")
    >>> eb = EntropyBalancer(estimand="ATT").fit(data.data, data.treatment)
    >>> table = eb.balance_table()
    >>> bool((table["smd_after"].abs() < 1e-6).all())
    True
    >>> round(eb.estimate_effect(data.target).effect)
    1271
    """

    _parameter_constraints = {
        **BaseBalancer._parameter_constraints,
        "moments": [Interval(numbers.Integral, 1, 4, closed="both")],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, estimand="ATT", *, moments=1, pos_label=None, tol=1e-8, max_iter=200,
                 n_jobs=None, random_state=None, verbose=0):
        super().__init__(estimand=estimand, pos_label=pos_label, n_jobs=n_jobs,
                         random_state=random_state, verbose=verbose)
        self.moments = moments
        self.tol = tol
        self.max_iter = max_iter

    def _prepare(self, X, sample_weight, rng):
        names = list(self.feature_names_in_) if hasattr(self, "feature_names_in_") else None
        Z, _ = standardize_columns(X, sample_weight, warn=not self._in_bootstrap, names=names)
        return moment_features(Z, self.moments)

    def _solve_arm(self, prepared, name, source, target, sample_weight, rng):
        C = prepared
        target_means = np.average(C[target], axis=0, weights=sample_weight[target])
        masses, info = entropy_balance(
            C[source], target_means, base_weights=sample_weight[source], tol=self.tol,
            max_iter=self.max_iter,
        )
        info["solver"] = "Newton (entropy-balancing dual)"
        return masses, info

    def _default_se(self):
        # Entropy weights balance only the moments: when the outcome is not
        # linear in them, the rest of it does not cancel and belongs in the
        # variance, which the stacked equations (residuals on the moments)
        # keep and a flexible outcome model's residuals would drop.
        return "m-estimation"

    def _weight_equations(self):
        """Estimating equations of the weights (M-estimation standard errors).

        Parameters ``(nu, lambda_a ...)``: the target means of the balance
        functions ``c`` (``sum_T s (c - nu) = 0`` over the target) and the
        dual multipliers of each reweighted arm ``a``, whose weights
        ``u_i = exp(c_i' lambda_a)`` solve ``sum_a s u (c - nu) = 0``
        (exact balance). The standardisation of the covariates needs no
        equations: the weights do not change under affine maps of ``c``.
        """
        X, treated, s = self._X_fit, self.treated_, self._sample_weight_fit
        Z, _ = standardize_columns(X, s, warn=False)
        C = moment_features(Z, self.moments)
        n, k = C.shape
        arms = arms_for_estimand(treated, self.estimand)
        target = arms[0][2]
        nu = np.average(C[target], axis=0, weights=s[target])
        Cc = C - nu
        n_par = k * (1 + len(arms))
        G, D = np.zeros((n, n_par)), np.zeros((n, n_par))
        J = np.zeros((n_par, n_par))
        G[:, :k] = Cc * target[:, None]
        J[:k, :k] = -np.eye(k) * s[target].sum()
        u = self.weights_
        for j, (_, source, _) in enumerate(arms, start=1):
            cols = slice(j * k, (j + 1) * k)
            u_a = np.where(source, u, 0.0)
            G[:, cols] = Cc * u_a[:, None]
            J[cols, cols] = (Cc * (s * u_a)[:, None]).T @ C
            J[cols, :k] = -np.eye(k) * float(s @ u_a)
            D[:, cols] = C * u_a[:, None]
        return WeightEquations(G, J, u, D, f"entropy balancing dual (moments={self.moments})")

    def _method_name(self):
        return f"entropy balancing (moments={self.moments})"

