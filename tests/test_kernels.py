"""numba kernels against their NumPy/SciPy references.

Marked ``kernel``: CI runs these a second time with ``NUMBA_DISABLE_JIT=1``
so the kernel source is also checked as plain Python (and covered).
"""

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weightstats._kernels import (
    kernel_matrix,
    kernel_matvec,
    n_threads_from_jobs,
    numba_threads,
    pairwise_distances,
)
from weightstats._kernels._reference import (
    kernel_matrix_ref,
    kernel_matvec_ref,
    pairwise_distances_ref,
)

from .strategies import well_conditioned_matrices

pytestmark = pytest.mark.kernel

KERNELS = [
    {"kernel": "gaussian", "bandwidth": 1.7},
    {"kernel": "laplacian", "scale": 0.8},
    {"kernel": "laplacian", "scale": 2.5, "metric": "manhattan"},
    {"kernel": "distance"},
    {"kernel": "distance", "metric": "manhattan"},
]
KERNEL_IDS = ["gaussian", "laplacian", "laplacian-manhattan", "distance", "distance-manhattan"]


def _relative_error(result, reference, scale):
    return np.max(np.abs(result - reference) / scale)


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "sqeuclidean"])
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_pairwise_distances_match_scipy(metric, n_jobs, rng):
    X, Y = rng.standard_normal((37, 4)), rng.standard_normal((23, 4))
    np.testing.assert_allclose(
        pairwise_distances(X, Y, metric=metric, n_jobs=n_jobs),
        pairwise_distances_ref(X, Y, metric=metric),
        rtol=1e-12,
        atol=1e-12,
    )


def test_distances_are_exact_for_nearby_points():
    # The BLAS expansion |x|^2 + |y|^2 - 2 x.y would give ~1e-8 here.
    X = np.array([[1e4, 1e4], [1e4 + 1e-9, 1e4]])
    assert pairwise_distances(X)[0, 1] == pytest.approx(1e-9, rel=1e-6)
    assert pairwise_distances(X)[0, 0] == 0.0


@pytest.mark.parametrize("params", KERNELS, ids=KERNEL_IDS)
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_kernel_matrix_matches_reference(params, n_jobs, rng):
    X, Y = rng.standard_normal((31, 3)), rng.standard_normal((17, 3))
    np.testing.assert_allclose(
        kernel_matrix(X, Y, n_jobs=n_jobs, **params),
        kernel_matrix_ref(X, Y, **params),
        rtol=1e-12,
        atol=1e-14,
    )


@pytest.mark.parametrize("params", KERNELS, ids=KERNEL_IDS)
@pytest.mark.parametrize("n_jobs", [None, 2])
@pytest.mark.parametrize("block_size", [1, 7, 2048])
@pytest.mark.parametrize("n_vectors", [None, 1, 3])
def test_kernel_matvec_matches_reference(params, n_jobs, block_size, n_vectors, rng):
    X, Y = rng.standard_normal((29, 3)), rng.standard_normal((41, 3))
    shape = (41,) if n_vectors is None else (41, n_vectors)
    V = rng.standard_normal(shape)
    result = kernel_matvec(X, Y, V, block_size=block_size, n_jobs=n_jobs, **params)
    reference = kernel_matvec_ref(X, Y, V, **params)
    assert result.shape == reference.shape
    # Relative to the magnitude of the summands, the meaningful scale for sums
    # with cancellation.
    scale = kernel_matrix_ref(X, Y, **params) @ np.abs(V)
    assert _relative_error(result, reference, scale) < 1e-12


@given(X=well_conditioned_matrices(min_rows=1, max_rows=25, max_cols=4), data=st.data())
def test_kernel_matvec_is_linear_and_symmetric(X, data):
    params = data.draw(st.sampled_from(KERNELS))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    u, v = rng.standard_normal((2, X.shape[0]))
    Ku, Kv = kernel_matvec(X, None, u, **params), kernel_matvec(X, None, v, **params)
    K_uv = kernel_matvec(X, None, 2 * u - v, **params)
    scale = kernel_matrix_ref(X, **params) @ (2 * np.abs(u) + np.abs(v)) + 1e-300
    assert np.all(np.abs(K_uv - (2 * Ku - Kv)) <= 1e-12 * scale)
    # symmetric kernels: v' K u = u' K v
    assert v @ Ku == pytest.approx(u @ Kv, rel=1e-10, abs=1e-10 * float(np.abs(v) @ scale))


def test_matvec_single_point_and_single_column(rng):
    X = rng.standard_normal((1, 2))
    assert kernel_matvec(X, None, np.array([2.0]), kernel="gaussian").tolist() == [2.0]
    assert kernel_matvec(X, None, np.array([2.0]), kernel="distance").tolist() == [0.0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kernel": "cosine"}, "kernel must be one of"),
        ({"kernel": "laplacian", "metric": "chebyshev"}, "metric must be"),
        ({"kernel": "gaussian", "metric": "manhattan"}, "metric='euclidean' only"),
        ({"kernel": "gaussian", "bandwidth": 0.0}, "bandwidth must be a positive"),
        ({"kernel": "laplacian", "scale": -1.0}, "scale must be a positive"),
        ({"kernel": "laplacian", "scale": np.inf}, "scale must be a positive"),
        ({"block_size": 0}, "block_size must be a positive"),
    ],
)
def test_invalid_parameters_raise(kwargs, match, rng):
    X = rng.standard_normal((5, 2))
    with pytest.raises(ValueError, match=match):
        kernel_matvec(X, None, np.ones(5), **kwargs)


def test_shape_and_value_errors(rng):
    X = rng.standard_normal((5, 2))
    with pytest.raises(ValueError, match="features"):
        kernel_matrix(X, rng.standard_normal((5, 3)))
    with pytest.raises(ValueError, match="V has 4 rows"):
        kernel_matvec(X, None, np.ones(4))
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pairwise_distances(X)


def test_thread_count_is_restored():
    import numba

    before = numba.get_num_threads()
    with numba_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    assert n_threads_from_jobs(None) == 1
    assert 1 <= n_threads_from_jobs(-1) <= numba.config.NUMBA_NUM_THREADS


def test_parallel_and_serial_variants_are_distinct():
    """The numba cache names variants after the function; both must not share one."""
    from weightstats._kernels._pairwise import _matvec_kernel

    if os.environ.get("NUMBA_DISABLE_JIT") == "1":
        assert not hasattr(_matvec_kernel.parallel, "signatures")
        return
    assert _matvec_kernel.serial.py_func.__qualname__ != _matvec_kernel.parallel.py_func.__qualname__
    assert _matvec_kernel.parallel.targetoptions.get("parallel") is True
