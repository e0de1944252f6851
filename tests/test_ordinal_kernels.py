"""Ordinal (PRESTO) numba kernels against their NumPy/SciPy/scikit-learn references.

Marked ``kernel``: CI runs these again with ``NUMBA_DISABLE_JIT=1``.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weightstats._kernels._ordinal import (
    cd_quadratic,
    ordinal_derivatives,
    ordinal_loss,
)
from weightstats._kernels._ordinal_reference import (
    cd_quadratic_ref,
    ordinal_derivatives_ref,
    ordinal_loss_ref,
)
from weightstats.ordinal._solver import OrdinalProblem, dense_hessian

pytestmark = pytest.mark.kernel


def _ordered_eta(rng, n, n_bounds, spread=1.0):
    """Linear predictors with increasing columns (a valid cumulative model)."""
    start = rng.normal(0, 2 * spread, (n, 1))
    steps = rng.uniform(0.05, 2.0, (n, n_bounds - 1)) * spread
    return np.hstack([start, start + np.cumsum(steps, axis=1)])


@pytest.mark.parametrize("n_classes", [3, 4, 6])
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_derivatives_match_reference(n_classes, n_jobs, rng):
    n = 60
    eta = _ordered_eta(rng, n, n_classes - 1)
    y = rng.integers(0, n_classes, n)
    w = rng.uniform(0.1, 2.0, n)
    grad, hess = np.empty((n, 2)), np.empty((n, 3))
    loss = ordinal_derivatives(eta, y, w, grad, hess, n_jobs=n_jobs)
    loss_ref, grad_ref, hess_ref = ordinal_derivatives_ref(eta, y, w)
    assert loss == pytest.approx(loss_ref, rel=1e-12)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(hess, hess_ref, rtol=1e-8, atol=1e-13)
    assert ordinal_loss(eta, y, w, n_jobs=n_jobs) == pytest.approx(loss_ref, rel=1e-12)


def test_derivatives_are_derivatives_of_the_loss(rng):
    """Central differences of the kernel's own loss, per observation."""
    n, K = 25, 4
    eta = _ordered_eta(rng, n, K - 1)
    y = rng.integers(0, K, n)
    w = np.ones(n)
    grad, hess = np.empty((n, 2)), np.empty((n, 3))
    ordinal_derivatives(eta, y, w, grad, hess)
    h = 1e-5
    for i in range(n):
        c = y[i]
        for slot, col in ((0, c - 1), (1, c)):
            if not 0 <= col < K - 1:
                assert grad[i, slot] == 0.0
                continue
            up, down = eta[i : i + 1].copy(), eta[i : i + 1].copy()
            up[0, col] += h
            down[0, col] -= h
            fd = (ordinal_loss(up, y[i : i + 1], w[:1]) - ordinal_loss(down, y[i : i + 1], w[:1]))
            assert grad[i, slot] == pytest.approx(fd / (2 * h), rel=1e-6, abs=1e-9)


def test_extreme_predictors_stay_finite():
    # Far tails and nearly touching boundaries: the textbook formulas lose all
    # digits here (F(b) - F(a) cancels); the kernel's stable form does not.
    eta = np.array([[40.0, 40.0 + 1e-9, 60.0], [-60.0, -50.0, -49.0], [700.0, 710.0, 720.0]])
    y = np.array([1, 3, 2])
    w = np.ones(3)
    grad, hess = np.empty((3, 2)), np.empty((3, 3))
    loss = ordinal_derivatives(eta, y, w, grad, hess)
    assert np.isfinite(loss) and np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))
    # row 0: P = F(40 + 1e-9) - F(40) ~ 1e-9 * f(40) -> -log P ~ 20.7 + 40
    expected = -np.log(1e-9) + 40.0
    assert ordinal_loss(eta[:1], y[:1], w[:1]) == pytest.approx(expected, rel=1e-6)


def test_infeasible_rows_give_infinite_loss():
    eta = np.array([[0.0, -1.0], [0.0, 1.0]])
    y = np.array([1, 1])
    assert ordinal_loss(eta, y, np.ones(2)) == np.inf
    assert ordinal_loss_ref(eta, y, np.ones(2)) == np.inf
    # a zero weight does not excuse an infeasible row in the reference either
    assert ordinal_loss(eta[1:], y[1:], np.ones(1)) < np.inf


def _structured_hessian(rng, n=40, p=2, K=4):
    X = rng.standard_normal((n, p))
    y = np.arange(n) % K
    problem = OrdinalProblem(X, y, rng.uniform(0.5, 1.5, n), K)
    theta = problem.intercept_only()
    theta[:, 1:] = rng.normal(0, 0.05, (K - 1, p))
    _, grad, A, S = problem.derivatives(theta)
    return problem, theta, grad, A, S


@pytest.mark.parametrize("penalty_scale", [0.0, 0.01, 0.2])
def test_cd_quadratic_matches_reference(penalty_scale, rng):
    problem, theta, grad, A, S = _structured_hessian(rng)
    penalty = np.full(theta.shape, penalty_scale)
    penalty[:, 0] = 0.0
    free = np.ones(theta.shape, dtype=bool)
    free[2, 1] = False
    delta, hdelta = np.zeros_like(theta), np.zeros_like(theta)
    cd_quadratic(A, S, grad, theta, delta, hdelta, penalty, free, 100000, 1e-26)
    H = dense_hessian(A, S)
    reference = cd_quadratic_ref(H, grad, theta, penalty, free)
    np.testing.assert_allclose(delta, reference, atol=1e-8)
    np.testing.assert_allclose(hdelta.ravel(), H @ delta.ravel(), atol=1e-12)
    assert delta[2, 1] == 0.0


def test_dense_hessian_matches_finite_differences(rng):
    problem, theta, grad, A, S = _structured_hessian(rng, n=30, p=2, K=4)
    H = dense_hessian(A, S)
    h = 1e-6
    flat = theta.ravel()
    for j in range(flat.size):
        up, down = flat.copy(), flat.copy()
        up[j] += h
        down[j] -= h
        g_up = problem.derivatives(up.reshape(theta.shape))[1].ravel()
        g_down = problem.derivatives(down.reshape(theta.shape))[1].ravel()
        np.testing.assert_allclose(H[:, j], (g_up - g_down) / (2 * h), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(H, H.T, atol=1e-14)
    assert np.linalg.eigvalsh(H)[0] > 0
