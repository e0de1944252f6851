"""The exact simplex-constrained least-squares QP behind ConvexEnsembleRegressor."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from weightstats.ensemble._simplex_qp import solve_simplex_ls, solve_simplex_ls_cvxpy

RESULTS = Path(__file__).parent / "results"


def _objective(P, y, v, w):
    r = y - P @ w
    return float(np.sum(v * r**2) / v.sum())


def _slsqp(P, y, v):
    """Independent reference: scipy SLSQP on the residual matrix, many starts."""
    A = (P - y[:, None]) * np.sqrt(v / v.sum())[:, None]
    A /= np.sqrt(np.max(np.sum(A**2, axis=0)))
    m = P.shape[1]
    best = None
    for start in [np.full(m, 1.0 / m), *np.eye(m)]:
        res = minimize(
            lambda w: float(np.sum((A @ w) ** 2)), start, jac=lambda w: 2 * A.T @ (A @ w),
            bounds=[(0, None)] * m, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
            method="SLSQP", options={"ftol": 1e-16, "maxiter": 2000},
        )
        w = np.clip(res.x, 0, None)
        w /= w.sum()
        if best is None or _objective(P, y, v, w) < _objective(P, y, v, best):
            best = w
    return best


def _problem(seed, n=80, m=5, offset=1e6, scale=1e3, duplicate=False, collinear=False):
    rng = np.random.default_rng(seed)
    y = offset + scale * rng.standard_normal(n)
    P = y[:, None] + scale * rng.standard_normal((n, m)) * rng.uniform(0.3, 3, m)
    P += scale * rng.standard_normal(m) * 0.2  # model biases
    if duplicate:
        P[:, 1] = P[:, 0]
    if collinear:
        P[:, 2] = 0.3 * P[:, 0] + 0.7 * P[:, m - 1]
    v = rng.uniform(0, 3, n)
    return P, y, v


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["plain", "duplicate", "collinear"])
def test_objective_matches_cvxpy_and_scipy_to_1e8(seed, kind):
    # Unscaled data (y around 1e6) is where OSQP falsely reports "infeasible".
    P, y, v = _problem(seed, duplicate=kind == "duplicate", collinear=kind == "collinear")
    ours = solve_simplex_ls(P, y, v)
    ref_cvx = solve_simplex_ls_cvxpy(P, y, v)
    ref_slsqp = _slsqp(P, y, v)
    for ref in (ref_cvx.objective, _objective(P, y, v, ref_slsqp)):
        assert ours.objective <= ref * (1 + 1e-12)
        assert ours.objective == pytest.approx(ref, rel=1e-8)
    assert ours.weights.min() >= 0
    assert ours.weights.sum() == pytest.approx(1.0, abs=1e-14)
    assert ours.kkt_residual < 1e-10


@pytest.mark.parametrize("label", ["unweighted", "weighted"])
def test_diabetes_golden_weights_from_quadprog_cvxpy_slsqp(label):
    """Golden values by tests/results/make_convex_ensemble_golden.py."""
    data = pd.read_csv(RESULTS / "convex_ensemble_diabetes.csv")
    golden = json.loads((RESULTS / "convex_ensemble_golden.json").read_text())
    P = data[golden["models"]].to_numpy()
    y = data["y"].to_numpy()
    v = data["weight"].to_numpy() if label == "weighted" else None
    result = solve_simplex_ls(P, y, v)
    for solver in ("quadprog", "cvxpy", "slsqp"):
        ref = golden[label][solver]
        np.testing.assert_allclose(result.weights, ref["weights"], atol=1e-7)
        assert result.objective == pytest.approx(ref["objective"], rel=1e-10)
    assert np.isfinite(result.condition_number) and not result.degenerate


def test_duplicated_models_share_their_weight():
    P, y, v = _problem(1, m=4)
    alone = solve_simplex_ls(P, y, v)
    doubled = solve_simplex_ls(np.column_stack([P, P[:, [0]]]), y, v)
    assert doubled.degenerate and np.isinf(doubled.condition_number)
    assert doubled.objective == pytest.approx(alone.objective, rel=1e-12)
    np.testing.assert_allclose(doubled.weights[0], doubled.weights[-1], atol=1e-12)
    np.testing.assert_allclose(doubled.weights[0] + doubled.weights[-1], alone.weights[0],
                               atol=1e-9)


def test_duplicate_next_to_a_zero_weight_model_shares_its_weight():
    """Regression: rounding noise in the zero-weight model's row of the tie
    direction once made the least-distance step infeasible."""
    data = pd.read_csv(RESULTS / "convex_ensemble_diabetes.csv")
    P = data[["ridge", "rf", "gbr", "knn", "ridge"]].to_numpy()  # rf has weight 0
    result = solve_simplex_ls(P, data["y"].to_numpy())
    assert result.weights[1] == 0.0
    assert result.weights[0] == pytest.approx(result.weights[4], abs=1e-12)
    assert result.weights[0] + result.weights[4] == pytest.approx(0.705936, abs=1e-6)


def test_ties_get_the_minimum_norm_weights():
    """Model 3 is the average of models 1 and 2: among equally good weightings
    the minimum-norm one is returned (the ridge -> 0 limit)."""
    P, y, v = _problem(2, m=3)
    P[:, 2] = 0.5 * (P[:, 0] + P[:, 1])
    result = solve_simplex_ls(P, y, v)
    assert result.degenerate
    # Every optimal w has the same fitted values; check the norm is minimal
    # along the tie direction d = (0.5, 0.5, -1) within the simplex.
    d = np.array([0.5, 0.5, -1.0])
    for t in np.linspace(-1, 1, 41):
        w = result.weights + t * d
        if w.min() >= 0:
            assert _objective(P, y, v, w) == pytest.approx(result.objective, rel=1e-10)
            assert np.sum(w**2) >= np.sum(result.weights**2) - 1e-12


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(2, 7), dup=st.booleans())
def test_permuting_models_permutes_weights(seed, m, dup):
    P, y, v = _problem(seed, n=40, m=m, duplicate=dup)
    perm = np.random.default_rng(seed).permutation(m)
    w = solve_simplex_ls(P, y, v).weights
    w_perm = solve_simplex_ls(P[:, perm], y, v).weights
    np.testing.assert_allclose(w_perm, w[perm], atol=1e-7)


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), a=st.floats(1e-3, 1e3), b=st.floats(-1e6, 1e6))
def test_affine_change_of_units_leaves_weights_unchanged(seed, a, b):
    P, y, v = _problem(seed, n=40, m=4)
    w = solve_simplex_ls(P, y, v)
    w2 = solve_simplex_ls(a * P + b, a * y + b, v)
    np.testing.assert_allclose(w2.weights, w.weights, atol=1e-7)
    assert w2.objective == pytest.approx(a**2 * w.objective, rel=1e-8)


def test_integer_weights_equal_repeated_rows():
    P, y, _ = _problem(3, n=30, m=4)
    counts = np.random.default_rng(3).integers(0, 4, 30)
    weighted = solve_simplex_ls(P, y, counts.astype(float))
    repeated = solve_simplex_ls(np.repeat(P, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.weights, repeated.weights, atol=1e-10)
    assert weighted.objective == pytest.approx(repeated.objective, rel=1e-12)


def test_more_models_than_rows_and_edge_cases():
    rng = np.random.default_rng(4)
    y = rng.standard_normal(3)
    P = rng.standard_normal((3, 6))
    result = solve_simplex_ls(P, y)
    assert result.degenerate and result.weights.sum() == pytest.approx(1)
    assert result.objective == pytest.approx(_objective(P, y, np.ones(3), _slsqp(P, y, np.ones(3))),
                                             abs=1e-10)
    # One model: weight 1. Perfect models: uniform (all tie).
    assert solve_simplex_ls(P[:, :1], y).weights.tolist() == [1.0]
    perfect = solve_simplex_ls(np.column_stack([y, y]), y)
    np.testing.assert_allclose(perfect.weights, [0.5, 0.5])
    assert perfect.objective == 0.0
    # A model that is exact gets all the weight.
    exact = solve_simplex_ls(np.column_stack([P[:, 0], y, P[:, 1]]), y)
    np.testing.assert_allclose(exact.weights, [0, 1, 0], atol=1e-12)


def test_condition_number_reports_near_collinearity():
    P, y, v = _problem(5, m=3)
    well = solve_simplex_ls(P, y, v).condition_number
    P[:, 2] = P[:, 0] + 1e-4 * np.random.default_rng(0).standard_normal(P.shape[0])
    near = solve_simplex_ls(P, y, v).condition_number
    assert 1 <= well < 1e3 and near > 1e6
