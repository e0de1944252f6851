"""Kernel sums on the unit cube (tiled, grid, sweep) and conditional CDFs vs NumPy references.

Marked ``kernel``: CI runs these again with ``NUMBA_DISABLE_JIT=1``, so the
inputs stay small.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weightstats._kernels import (
    conditional_cdf,
    kernel_sums,
    reflected_kernel_diagonal,
)
from weightstats._kernels._reference import conditional_cdf_ref, kernel_sums_ref
from weightstats._kernels._ustat import KERNEL_NAMES, _grid_layout, choose_method

pytestmark = pytest.mark.kernel

COMPACT = [k for k in KERNEL_NAMES if k != "gaussian"]


def _methods(kernel, d):
    methods = ["tiled"]
    if kernel != "gaussian":
        methods.append("grid")
        if d == 1:
            methods.append("sweep")
    return methods


def _scale(Q, S, V, **params):
    """Sum of |terms|: the meaningful scale for sums that may cancel."""
    return kernel_sums_ref(Q, S, np.abs(V), **params) + 1e-300


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("bandwidth", [0.07, 0.3, 0.9])
@pytest.mark.parametrize("reflect", [True, False])
def test_kernel_sums_match_reference(kernel, d, bandwidth, reflect, rng):
    Q, S = rng.uniform(size=(23, d)), rng.uniform(size=(31, d))
    V = rng.standard_normal((31, 2))
    params = {"kernel": kernel, "bandwidth": bandwidth, "reflect": reflect}
    reference = kernel_sums_ref(Q, S, V, **params)
    scale = _scale(Q, S, V, **params)
    for method in _methods(kernel, d):
        result = kernel_sums(Q, S, V, method=method, **params)
        assert np.max(np.abs(result - reference) / scale) < 1e-10, method


@pytest.mark.parametrize("method", ["tiled", "grid", "sweep"])
def test_points_on_faces_and_duplicates(method, rng):
    # Points exactly on 0 and 1, at distance exactly h, and repeated.
    h = 0.25
    S = np.array([0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 0.125])
    Q = np.array([0.0, 0.25, 0.5, 1.0, 0.999, 0.001])
    V = rng.standard_normal(S.shape[0])
    result = kernel_sums(Q, S, V, bandwidth=h, method=method)
    reference = kernel_sums_ref(Q, S, V, bandwidth=h)
    assert np.max(np.abs(result - reference) / _scale(Q, S, V, bandwidth=h)) < 1e-10


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_parallel_equals_serial(n_jobs, rng):
    Q, S = rng.uniform(size=(150, 2)), rng.uniform(size=(130, 2))
    V = rng.standard_normal(130)
    for method in ("tiled", "grid"):
        serial = kernel_sums(Q, S, V, bandwidth=0.2, method=method)
        parallel = kernel_sums(Q, S, V, bandwidth=0.2, method=method, n_jobs=n_jobs)
        np.testing.assert_allclose(parallel, serial, rtol=1e-12, atol=1e-12)


def test_blocks_and_tiles_are_covered(rng):
    # More queries than one tile and more sources than one block.
    Q, S = rng.uniform(size=(130, 1)), rng.uniform(size=(2100, 1))
    V = rng.standard_normal(2100)
    reference = kernel_sums_ref(Q, S, V, bandwidth=0.05)
    scale = _scale(Q, S, V, bandwidth=0.05)
    for method in ("tiled", "grid", "sweep"):
        result = kernel_sums(Q, S, V, bandwidth=0.05, method=method)
        assert np.max(np.abs(result - reference) / scale) < 1e-10, method


def test_sweep_is_accurate_for_a_narrow_kernel_on_many_points(rng):
    """Prefix sums within segments: no cancellation of h^-6 terms (triweight)."""
    S = rng.uniform(size=3000)
    Q = rng.uniform(size=40)
    V = rng.standard_normal(3000) + 5.0
    for kernel in COMPACT:
        sweep = kernel_sums(Q, S, V, kernel=kernel, bandwidth=0.002, method="sweep")
        reference = kernel_sums_ref(Q, S, V, kernel=kernel, bandwidth=0.002)
        scale = _scale(Q, S, V, kernel=kernel, bandwidth=0.002)
        assert np.max(np.abs(sweep - reference) / scale) < 1e-10, kernel


def test_grid_coarsens_when_cells_would_outnumber_points(rng):
    S = rng.uniform(size=(50, 6))
    lo, width, n_cells = _grid_layout(S, 0.01, max_cells=100)
    assert width >= 0.01 and np.prod(n_cells) <= 100
    Q = rng.uniform(size=(20, 6))
    V = rng.standard_normal(50)
    result = kernel_sums(Q, S, V, bandwidth=0.6, method="grid")
    reference = kernel_sums_ref(Q, S, V, bandwidth=0.6)
    assert np.max(np.abs(result - reference) / _scale(Q, S, V, bandwidth=0.6)) < 1e-10


def test_unreflected_grid_handles_points_outside_the_source_box(rng):
    S = rng.uniform(size=(40, 2))
    Q = rng.uniform(-1.0, 2.0, size=(30, 2))
    V = rng.standard_normal(40)
    result = kernel_sums(Q, S, V, bandwidth=0.3, reflect=False, method="grid")
    reference = kernel_sums_ref(Q, S, V, bandwidth=0.3, reflect=False)
    scale = _scale(Q, S, V, bandwidth=0.3, reflect=False)
    assert np.max(np.abs(result - reference) / scale) < 1e-10


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_reflected_kernel_integrates_to_one(kernel):
    """Each reflected factor carries unit mass on [0, 1], wherever its centre is."""
    grid = (np.arange(5000) + 0.5) / 5000
    centres = np.array([0.0, 0.03, 0.5, 0.97, 1.0])
    mass = kernel_sums(grid, centres, np.eye(5), kernel=kernel, bandwidth=0.1).mean(axis=0)
    np.testing.assert_allclose(mass, 1.0, atol=1e-4)


@given(seed=st.integers(0, 10_000), h=st.floats(0.02, 1.0), d=st.integers(1, 3))
def test_kernel_is_symmetric(seed, h, d):
    """v' K(Q, S) u == u' K(S, Q) v: the reflected kernel is symmetric."""
    rng = np.random.default_rng(seed)
    Q, S = rng.uniform(size=(9, d)), rng.uniform(size=(7, d))
    u, v = rng.standard_normal(7), rng.standard_normal(9)
    left = v @ kernel_sums(Q, S, u, bandwidth=h)
    right = u @ kernel_sums(S, Q, v, bandwidth=h)
    scale = np.abs(v) @ kernel_sums(Q, S, np.abs(u), bandwidth=h) + 1e-300
    assert abs(left - right) <= 1e-10 * scale


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_diagonal_matches_self_pair(kernel, rng):
    U = rng.uniform(size=(15, 2))
    U[0] = [0.0, 1.0]
    diag = reflected_kernel_diagonal(U, kernel=kernel, bandwidth=0.3)
    pairs = [kernel_sums_ref(U[i:i + 1], U[i:i + 1], kernel=kernel, bandwidth=0.3)[0]
             for i in range(15)]
    np.testing.assert_allclose(diag, pairs, rtol=1e-12)


def test_one_dimensional_and_empty_inputs(rng):
    S = rng.uniform(size=10)
    assert kernel_sums(S, S, bandwidth=0.2).shape == (10,)
    assert kernel_sums(np.empty((0, 1)), S, bandwidth=0.2).shape == (0,)
    assert kernel_sums(S, np.empty((0, 1)), np.empty((0, 2)), bandwidth=0.2).shape == (10, 2)
    assert np.all(kernel_sums(S, np.empty((0, 1)), bandwidth=0.2) == 0.0)


def test_auto_method_choice():
    assert choose_method("epanechnikov", 1, 0.1, 1000) == "sweep"
    assert choose_method("epanechnikov", 2, 0.05, 1000) == "grid"
    assert choose_method("epanechnikov", 5, 0.3, 1000) == "tiled"
    assert choose_method("gaussian", 1, 0.1, 1000) == "tiled"
    assert choose_method("epanechnikov", 1, 0.1, 10) == "tiled"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kernel": "cosine"}, "kernel must be one of"),
        ({"method": "fft"}, "method must be one of"),
        ({"bandwidth": 0.0}, "bandwidth must be a positive"),
        ({"bandwidth": np.nan}, "bandwidth must be a positive"),
        ({"bandwidth": 1.5}, "at most 1"),
        ({"kernel": "gaussian", "method": "grid"}, "compactly supported"),
        ({"method": "sweep"}, "one dimension"),
    ],
)
def test_invalid_parameters_raise(kwargs, match, rng):
    U = rng.uniform(size=(5, 2))
    params = {"bandwidth": 0.2, **kwargs}
    with pytest.raises(ValueError, match=match):
        kernel_sums(U, U, **params)


def test_invalid_points_raise(rng):
    U = rng.uniform(size=(5, 2))
    with pytest.raises(ValueError, match="outside"):
        kernel_sums(U + 1.0, U, bandwidth=0.2)
    with pytest.raises(ValueError, match="dimensions"):
        kernel_sums(U, U[:, :1], bandwidth=0.2)
    with pytest.raises(ValueError, match="one row per source"):
        kernel_sums(U, U, np.ones(4), bandwidth=0.2)
    with pytest.raises(ValueError, match="NaN"):
        kernel_sums(np.array([[np.nan, 0.5]]), U, bandwidth=0.2)


# ------------------------------------------------------------ Rosenblatt


@pytest.mark.parametrize("d", [1, 2, 4])
def test_conditional_cdf_matches_reference(d, rng):
    Zr = rng.standard_normal((40, d))
    Zq = 2.0 * rng.standard_normal((25, d))
    Zq[0] = Zr[3]  # a tie: counts one half
    Zq[1] = 50.0  # far from everything: the nearest points dominate, no 0/0
    weights = rng.uniform(size=40)
    weights[5] = 0.0
    bandwidths = np.array([1.0, 0.4, 0.05, 0.8])[:d]
    result = conditional_cdf(Zq, Zr, weights, bandwidths)
    reference = conditional_cdf_ref(Zq, Zr, weights, bandwidths)
    np.testing.assert_allclose(result, reference, rtol=1e-10, atol=1e-12)
    assert np.all((result >= 0) & (result <= 1))


def test_conditional_cdf_needs_a_positive_weight(rng):
    Z = rng.standard_normal((5, 2))
    with pytest.raises(ValueError, match="positive"):
        conditional_cdf(Z, Z, np.zeros(5), np.ones(2))
