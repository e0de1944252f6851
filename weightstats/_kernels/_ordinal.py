"""Inner loops of the cumulative-logit (PRESTO) solver.

Observation ``i`` of class ``c`` (0-based, ``K`` classes) has likelihood
``F(eta[i, c]) - F(eta[i, c - 1])`` with ``F`` the logistic CDF,
``F(eta[i, -1]) = 0`` and ``F(eta[i, K - 1]) = 1``: only two linear predictors
(one for the first and last class) enter it, the lower ``a = eta[i, c - 1]``
and the upper ``b = eta[i, c]``. With ``t = b - a > 0`` the loss is written
without cancellation as

    -log P = softplus(-b) + softplus(a) - log(1 - exp(-t)),

and its gradient and (observed-information) Hessian in ``(a, b)`` are

    g_b = -F(-b) - q,  g_a = F(a) + q,               q = 1 / expm1(t)
    h_bb = F(b) F(-b) + r, h_aa = F(a) F(-a) + r, h_ab = -r,   r = q (1 + q)

a positive semi-definite 2 x 2 matrix wherever ``t > 0`` (the log-likelihood of
a cumulative logit is concave on that set, Pratt 1981). ``t <= 0`` means the
observed class has probability <= 0: the loss is +inf there.

``cd_quadratic`` minimises the penalised quadratic model of the proximal Newton
step by coordinate descent, using the block structure of the Hessian in the
difference parametrisation (see ``weightstats.ordinal._solver``).

NumPy references live in ``_ordinal_reference``.
"""

import numpy as np
from numba import njit, prange

from ._dispatch import jit_variants

__all__ = ["cd_quadratic", "ordinal_derivatives", "ordinal_loss"]


@njit(cache=True, nogil=True, inline="always")
def _row_terms(eta, i, c, n_bounds):
    """``(-log P, g_a, g_b, h_aa, h_ab, h_bb)`` of row ``i`` in class ``c``.

    One ``exp`` and one ``log1p`` per linear predictor (``F(x)`` and
    ``softplus`` share ``exp(-|x|)``), plus ``expm1`` and ``log1p`` for the
    gap ``t`` of a middle class: ``-log(1 - exp(-t)) = log1p(1 / expm1(t))``.
    """
    loss = 0.0
    ga = 0.0
    gb = 0.0
    haa = 0.0
    hab = 0.0
    hbb = 0.0
    if c < n_bounds:
        b = eta[i, c]
        e = np.exp(-abs(b))
        inv = 1.0 / (1.0 + e)
        if b >= 0.0:
            Fb, Fnb = inv, e * inv
            loss += np.log1p(e)
        else:
            Fb, Fnb = e * inv, inv
            loss += np.log1p(e) - b
        gb = -Fnb
        hbb = Fb * Fnb
    if c > 0:
        a = eta[i, c - 1]
        e = np.exp(-abs(a))
        inv = 1.0 / (1.0 + e)
        if a >= 0.0:
            Fa, Fna = inv, e * inv
            loss += np.log1p(e) + a
        else:
            Fa, Fna = e * inv, inv
            loss += np.log1p(e)
        ga = Fa
        haa = Fa * Fna
    if c > 0 and c < n_bounds:
        t = eta[i, c] - eta[i, c - 1]
        if t > 0.0:
            q = 1.0 / np.expm1(t)
            r = q * (1.0 + q)
            loss += np.log1p(q)
            ga += q
            gb -= q
            haa += r
            hbb += r
            hab = -r
        else:
            loss = np.inf
    return loss, ga, gb, haa, hab, hbb


@jit_variants
def ordinal_derivatives(eta, y, weights, grad, hess):
    """Weighted per-observation gradient and Hessian of ``-log P`` in (a, b).

    Fills ``grad[i] = w_i (g_a, g_b)`` and ``hess[i] = w_i (h_aa, h_ab, h_bb)``
    (zeros for the predictor a class does not have) and returns the weighted
    loss ``sum_i w_i (-log P_i)``, +inf if an observed class has probability
    <= 0.
    """
    n_bounds = eta.shape[1]
    total = 0.0
    for i in prange(eta.shape[0]):
        w = weights[i]
        loss, ga, gb, haa, hab, hbb = _row_terms(eta, i, y[i], n_bounds)
        grad[i, 0] = w * ga
        grad[i, 1] = w * gb
        hess[i, 0] = w * haa
        hess[i, 1] = w * hab
        hess[i, 2] = w * hbb
        total += w * loss
    return total


@jit_variants
def ordinal_loss(eta, y, weights):
    """Weighted loss ``sum_i w_i (-log P_i)``; +inf if an observed class has P <= 0."""
    n_bounds = eta.shape[1]
    total = 0.0
    for i in prange(eta.shape[0]):
        total += weights[i] * _row_terms(eta, i, y[i], n_bounds)[0]
    return total


@njit(cache=True, nogil=True)
def cd_quadratic(A, S, grad, theta, delta, hdelta, penalty, free, max_sweeps, tol):
    """Coordinate descent on ``g'D + D'HD / 2 + sum(penalty * |theta + D|)``.

    The Hessian ``H`` over blocks ``m, l`` (rows of ``theta``) is
    ``A[max(m, l)] + (m != l) * S[max(m, l)]``: each block of the difference
    parametrisation moves the linear predictors of its own and all later
    boundaries, so a pair of blocks interacts only through the observations
    above the later one. ``delta`` (the step ``D``) and ``hdelta`` (``H D``)
    are updated in place; coordinates with ``free == False`` stay fixed.

    Sweeps alternate between all free coordinates and the active ones
    (non-zero or unpenalised) until a full sweep changes no coordinate by more
    than ``tol`` in ``H_jj * change^2`` (glmnet's criterion). Returns the
    number of sweeps.
    """
    n_blocks, width = theta.shape
    active = np.zeros((n_blocks, width), dtype=np.bool_)
    full = True
    sweeps = 0
    while sweeps < max_sweeps:
        max_change = 0.0
        for m in range(n_blocks):
            for j in range(width):
                if not free[m, j] or not (full or active[m, j]):
                    continue
                h = A[m, j, j]
                if h <= 0.0:
                    continue
                current = theta[m, j] + delta[m, j]
                z = h * current - (grad[m, j] + hdelta[m, j])
                thr = penalty[m, j]
                if z > thr:
                    new = (z - thr) / h
                elif z < -thr:
                    new = (z + thr) / h
                else:
                    new = 0.0
                active[m, j] = new != 0.0 or thr == 0.0
                d = new - current
                if d == 0.0:
                    continue
                delta[m, j] += d
                for l in range(n_blocks):
                    top = max(l, m)
                    if l == m:
                        for k in range(width):
                            hdelta[l, k] += d * A[top, j, k]
                    else:
                        for k in range(width):
                            hdelta[l, k] += d * (A[top, j, k] + S[top, j, k])
                change = h * d * d
                if change > max_change:
                    max_change = change
        sweeps += 1
        if max_change < tol:
            if full:
                break
            full = True
        else:
            full = False
    return sweeps
