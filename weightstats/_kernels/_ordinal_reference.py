"""Plain NumPy/SciPy references for the kernels in ``_ordinal`` (test oracles).

Written from the textbook formulas (class probabilities as differences of
logistic CDFs, derivatives through the chain rule) rather than the stable
rewrites the kernels use, and slow on purpose.
"""

import numpy as np
from scipy.special import expit


def _class_probability(eta, y):
    n, n_bounds = eta.shape
    F = np.column_stack([np.zeros(n), expit(eta), np.ones(n)])
    rows = np.arange(n)
    return F[rows, y + 1] - F[rows, y]


def ordinal_loss_ref(eta, y, weights):
    """Reference for :func:`weightstats._kernels._ordinal.ordinal_loss`."""
    P = _class_probability(eta, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = np.where(P > 0, -np.log(np.where(P > 0, P, 1.0)), np.inf)
    return float(np.sum(weights * loss))


def ordinal_derivatives_ref(eta, y, weights):
    """Reference for :func:`weightstats._kernels._ordinal.ordinal_derivatives`.

    Returns ``(loss, grad, hess)`` from ``-log(F(b) - F(a))`` differentiated
    directly: ``dP/db = f(b)``, ``f' = f (1 - 2F)``.
    """
    n, n_bounds = eta.shape
    grad = np.zeros((n, 2))
    hess = np.zeros((n, 3))
    for i in range(n):
        c = y[i]
        Fa = expit(eta[i, c - 1]) if c > 0 else 0.0
        Fb = expit(eta[i, c]) if c < n_bounds else 1.0
        fa, fb = Fa * (1 - Fa), Fb * (1 - Fb)
        dfa, dfb = fa * (1 - 2 * Fa), fb * (1 - 2 * Fb)
        P = Fb - Fa
        # d(-log P)/da = fa / P, d/db = -fb / P
        grad[i] = weights[i] * np.array([fa / P, -fb / P])
        hess[i] = weights[i] * np.array(
            [dfa / P + fa**2 / P**2, -fa * fb / P**2, -dfb / P + fb**2 / P**2]
        )
    return ordinal_loss_ref(eta, y, weights), grad, hess


def cd_quadratic_ref(H, grad, theta, penalty, free):
    """Reference for :func:`weightstats._kernels._ordinal.cd_quadratic`.

    Solves ``min_D g'D + D'HD/2 + sum(penalty |theta + D|)`` over the free
    coordinates (the others stay at zero change) with a dense ``H`` by
    proximal gradient (ISTA) to high accuracy: a different algorithm from the
    kernel's coordinate descent, reaching the same unique minimiser.
    """
    shape = theta.shape
    g = grad.ravel()
    t0 = theta.ravel()
    pen = penalty.ravel()
    idx = np.flatnonzero(free.ravel())
    Hf = H[np.ix_(idx, idx)]
    step = 1.0 / np.linalg.eigvalsh(Hf)[-1]
    x = t0[idx].copy()  # the new theta on the free coordinates
    for _ in range(200000):
        grad_q = g[idx] + Hf @ (x - t0[idx])
        z = x - step * grad_q
        x_new = np.sign(z) * np.maximum(np.abs(z) - step * pen[idx], 0.0)
        if np.max(np.abs(x_new - x)) < 1e-15:
            x = x_new
            break
        x = x_new
    delta = np.zeros(t0.size)
    delta[idx] = x - t0[idx]
    return delta.reshape(shape)
