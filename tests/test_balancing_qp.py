"""The simplex QP solvers and the pivoted-Cholesky factor behind IPMBalancer."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize

from weightstats._kernels._lowrank import pivoted_cholesky
from weightstats._kernels._reference import kernel_matrix_ref
from weightstats.balancing import _qp

from .strategies import finite_floats


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # As the balancers do: multithreaded BLAS on small factorisations only
    # slows down, badly so when test workers share the cores.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


def _brute_projection(v, cap):
    """The projection as a generic constrained least-squares problem (SLSQP)."""
    n = v.shape[0]
    res = minimize(
        lambda x: 0.5 * np.sum((x - v) ** 2), np.full(n, 1 / n), jac=lambda x: x - v,
        bounds=[(0, cap)] * n, constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}],
        method="SLSQP", options={"ftol": 1e-14, "maxiter": 500},
    )
    return res.x


@given(st.lists(finite_floats(-5, 5), min_size=2, max_size=12), st.sampled_from([None, 0.3, 0.6]))
def test_capped_simplex_projection_is_exact(values, cap):
    v = np.array(values)
    if cap is not None and cap * v.size < 1:
        cap = 1.0 / v.size + 0.05
    x = _qp.project_capped_simplex(v, cap)
    assert x.sum() == pytest.approx(1.0, abs=1e-12)
    assert x.min() >= 0 and (cap is None or x.max() <= cap + 1e-12)
    np.testing.assert_allclose(x, _brute_projection(v, 1.0 if cap is None else cap), atol=1e-6)
    # Optimality (variational inequality): (v - x)'(y - x) <= 0 for feasible y.
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = _qp.project_capped_simplex(rng.standard_normal(v.size) * 3, cap)
        assert (v - x) @ (y - x) <= 1e-10


def test_projection_with_tight_caps_fills_every_cap():
    x = _qp.project_capped_simplex(np.array([3.0, -1.0, 0.0, 2.0]), 0.25)
    np.testing.assert_allclose(x, [0.25] * 4)


def _problem(seed, n=40, d=3, bandwidth=1.5):
    rng = np.random.default_rng(seed)
    X0, X1 = rng.standard_normal((n, d)), rng.standard_normal((n // 2, d)) + 0.4
    Q = kernel_matrix_ref(X0, X0, bandwidth=bandwidth)
    b = kernel_matrix_ref(X0, X1, bandwidth=bandwidth).mean(axis=1)
    return Q, b


def test_gap_bounds_suboptimality_and_vanishes_at_optimum():
    Q, b = _problem(0)
    op = _qp.DenseOperator(Q)
    best = _qp.interior_point(op, b, tol=1e-13)
    f_star = best.objective
    rng = np.random.default_rng(1)
    for _ in range(10):
        x = _qp.project_capped_simplex(rng.standard_normal(b.size), None)
        f = x @ Q @ x - 2 * b @ x
        gap = _qp.frank_wolfe_gap(x, 2 * (Q @ x - b))
        assert f - f_star <= gap + 1e-12
    assert best.gap <= 1e-13 and best.kkt_residual < 1e-6


@pytest.mark.parametrize("cap", [None, 0.05])
def test_solvers_and_representations_agree(cap):
    Q, b = _problem(2)
    vals, vecs = np.linalg.eigh(Q)
    A = vecs * np.sqrt(np.clip(vals, 0, None))
    results = [
        _qp.interior_point(_qp.DenseOperator(Q), b, cap=cap, tol=1e-13),
        _qp.interior_point(_qp.LowRankOperator(A), b, cap=cap, tol=1e-13),
        # First-order: its certified gap shrinks slowly, the objective fast.
        _qp.fista(_qp.DenseOperator(Q), b, cap=cap, tol=1e-8, max_iter=20000),
    ]
    for res in results:
        assert res.converged
        assert res.objective == pytest.approx(results[0].objective, rel=1e-9, abs=1e-10)
        assert res.x.sum() == pytest.approx(1.0) and res.x.min() >= 0
        if cap is not None:
            assert res.x.max() <= cap + 1e-12


def test_ridge_makes_solution_spread_out():
    Q, b = _problem(3)
    plain = _qp.interior_point(_qp.DenseOperator(Q), b, tol=1e-12)
    ridged = _qp.interior_point(_qp.DenseOperator(Q, ridge=0.05), b, tol=1e-12)
    assert 1 / np.sum(ridged.x**2) > 1 / np.sum(plain.x**2)


def test_working_set_solve_matches_full_solve():
    Q, b = _problem(4, n=300)
    full = _qp.interior_point(_qp.DenseOperator(Q), b, tol=1e-12)
    ws = _qp.working_set_solve(
        300, sub_operator=lambda idx: _qp.DenseOperator(Q[np.ix_(idx, idx)]),
        sub_linear=lambda idx: b[idx], full_gradient=lambda x: Q @ x - b,
        candidates=np.argsort(Q @ np.full(300, 1 / 300) - b)[:40], tol=1e-12,
    )
    assert ws.converged and ws.rounds >= 1
    assert ws.x @ Q @ ws.x - 2 * b @ ws.x == pytest.approx(full.objective, rel=1e-9, abs=1e-12)


def test_unknown_solver_is_rejected():
    Q, b = _problem(5)
    with pytest.raises(ValueError, match="solver must be"):
        _qp.solve_simplex_qp(_qp.DenseOperator(Q), b, solver="newton")


@pytest.mark.kernel
@pytest.mark.parametrize("kernel, params", [("gaussian", {"bandwidth": 3.0}),
                                            ("laplacian", {"scale": 0.3})])
def test_pivoted_cholesky_matches_dense_kernel(kernel, params):
    X = np.random.default_rng(0).standard_normal((60, 2))
    L, pivots, residual = pivoted_cholesky(X, kernel=kernel, tol=1e-12, **params)
    K = kernel_matrix_ref(X, kernel=kernel, **params)
    E = K - L @ L.T
    np.testing.assert_allclose(np.diag(E), residual, atol=1e-10)
    assert residual.sum() <= 1e-12 * 60 + 1e-12 or L.shape[1] == 60
    # The residual is positive semi-definite and vanishes on the pivots.
    assert np.linalg.eigvalsh(E).min() > -1e-9
    np.testing.assert_allclose(E[np.ix_(pivots, pivots)], 0, atol=1e-10)


@pytest.mark.kernel
def test_pivoted_cholesky_resumes_where_it_stopped():
    X = np.random.default_rng(1).standard_normal((50, 3))
    coarse = pivoted_cholesky(X, bandwidth=4.0, tol=1e-4)
    fine = pivoted_cholesky(X, bandwidth=4.0, tol=1e-10, init=coarse)
    direct = pivoted_cholesky(X, bandwidth=4.0, tol=1e-10)
    np.testing.assert_allclose(fine[0], direct[0], atol=1e-12)
    np.testing.assert_array_equal(fine[1], direct[1])
    truncated = pivoted_cholesky(X, bandwidth=4.0, tol=1e-10, max_rank=coarse[0].shape[1] - 2,
                                 init=fine)
    assert truncated[0].shape[1] == coarse[0].shape[1] - 2
    with pytest.raises(ValueError, match="kernel"):
        pivoted_cholesky(X, kernel="distance")
    with pytest.raises(ValueError, match="max_rank"):
        pivoted_cholesky(X, max_rank=0)
