"""The magnitude kernels (``_kernels/_laplacian.py``, ``_kernels/_local.py``) against
their NumPy references. Marked ``kernel``: run again under ``NUMBA_DISABLE_JIT=1``."""

import numpy as np
import pytest
import scipy.sparse as sp

from weightstats._kernels._laplacian import (
    _exp_neg_jit,
    laplacian_lower,
    laplacian_matvec,
    laplacian_pair_matvec,
    laplacian_symv,
    symv_chunks,
)
from weightstats._kernels._laplacian_ref import (
    fsai_ref,
    laplacian_matrix_ref,
    local_weights_ref,
    nearest_neighbors_block_ref,
)
from weightstats._kernels._local import fsai_rows, local_weights

pytestmark = pytest.mark.kernel

METRICS = ["euclidean", "manhattan"]
# 1 to 6 features cover every remainder of the four-feature unrolling.
N_FEATURES = [1, 2, 3, 4, 6]


def _close(result, reference):
    # Entries below e^-70 only matter next to the unit diagonal, in absolute terms.
    np.testing.assert_allclose(result, reference, rtol=1e-12, atol=1e-30)


def test_exp_matches_numpy_to_a_few_ulp():
    x = np.concatenate([np.linspace(0.0, 50.0, 2001), np.linspace(50.0, 707.0, 500)])
    acc = x.copy()
    bits = np.empty(x.size, dtype=np.int64)
    _exp_neg_jit(acc, x.size, 1.0, bits, bits.view(np.float64))
    np.testing.assert_allclose(acc, np.exp(-x), rtol=1e-14, atol=0)


def test_exp_underflows_to_zero_below_the_normal_range():
    x = np.array([708.5, 720.0, 1e6, np.inf])
    bits = np.empty(x.size, dtype=np.int64)
    acc = x.copy()
    _exp_neg_jit(acc, x.size, 1.0, bits, bits.view(np.float64))
    assert np.all(acc == 0.0)
    assert np.all(np.exp(-x) < 1e-307)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n_features", N_FEATURES)
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_lower_triangle_matches_reference(metric, n_features, n_jobs, rng):
    X = rng.standard_normal((37, n_features))
    out = np.full((37, 37), -7.0)
    laplacian_lower(X, scale=0.9, metric=metric, out=out, n_jobs=n_jobs)
    lower = np.tril_indices(37)
    _close(out[lower], laplacian_matrix_ref(X, scale=0.9, metric=metric)[lower])
    assert np.all(out[np.triu_indices(37, 1)] == -7.0), "the strict upper triangle is untouched"


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n_features", N_FEATURES)
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_symmetric_matvec_matches_reference(metric, n_features, n_jobs, rng):
    X, v = rng.standard_normal((41, n_features)), rng.standard_normal(41)
    ref = laplacian_matrix_ref(X, scale=1.7, metric=metric) @ v
    np.testing.assert_allclose(
        laplacian_symv(X, v, scale=1.7, metric=metric, n_jobs=n_jobs), ref,
        rtol=1e-12, atol=1e-12 * np.abs(ref).max(),
    )


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n_features", N_FEATURES)
def test_single_precision_matvec_is_accurate_to_single_precision(metric, n_features, rng):
    from weightstats._kernels._laplacian import laplacian_symv_single

    X, v = rng.standard_normal((41, n_features)), rng.standard_normal(41)
    ref = laplacian_matrix_ref(X, scale=1.7, metric=metric) @ v
    result = laplacian_symv_single(X, v, scale=1.7, metric=metric, n_jobs=2)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, ref, rtol=0, atol=2e-6 * np.abs(ref).max())


def test_symmetric_matvec_does_not_depend_on_threads(rng):
    X, v = rng.standard_normal((50, 3)), rng.standard_normal(50)
    serial = laplacian_symv(X, v, scale=1.0)
    assert np.array_equal(serial, laplacian_symv(X, v, scale=1.0, n_jobs=2))


def test_symv_chunks_balance_pairs():
    bounds = symv_chunks(1000)
    pairs = np.diff(bounds**2)
    assert bounds[0] == 0 and bounds[-1] == 1000 and len(bounds) == 9
    assert pairs.max() / pairs.min() < 1.05


@pytest.mark.parametrize("metric", METRICS)
def test_rectangular_matvec_matches_reference(metric, rng):
    X, Y, v = rng.standard_normal((13, 5)), rng.standard_normal((29, 5)), rng.standard_normal(29)
    np.testing.assert_allclose(
        laplacian_matvec(X, Y, v, scale=0.4, metric=metric, n_jobs=2),
        laplacian_matrix_ref(X, Y, scale=0.4, metric=metric) @ v,
        rtol=1e-12,
    )


def test_nearby_points_keep_full_precision():
    X = np.array([[1e4, 1e4], [1e4 + 1e-9, 1e4]])
    Z = laplacian_lower(X, scale=1e6, out=np.zeros((2, 2)))
    d = X[1, 0] - X[0, 0]  # exact in floating point: ~1e-9
    assert Z[1, 0] == pytest.approx(np.exp(-1e6 * d), rel=1e-14)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"scale": 0.0}, "scale must be a positive"),
        ({"scale": np.nan}, "scale must be a positive"),
        ({"scale": 1.0, "metric": "cosine"}, "metric must be one of"),
    ],
)
def test_kernel_arguments_are_checked(bad, message, rng):
    with pytest.raises(ValueError, match=message):
        laplacian_symv(rng.standard_normal((4, 2)), np.ones(4), **bad)


def test_lower_rejects_a_wrong_output_array(rng):
    with pytest.raises(ValueError, match="C-contiguous float64"):
        laplacian_lower(rng.standard_normal((4, 2)), scale=1.0, out=np.zeros((4, 4), order="F"))


def _neighbours(X, k, rng):
    D = laplacian_matrix_ref(X, scale=1.0)
    order = np.argsort(-D, axis=1)[:, 1 : k + 1]
    order[rng.random(len(X)) < 0.3, k // 2 :] = -1  # some short lists, padded
    return order


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("schur", [False, True])
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_local_weights_match_reference(metric, schur, n_jobs, rng):
    X, Q = rng.standard_normal((30, 3)), rng.standard_normal((12, 3))
    neighbours = _neighbours(X, 6, rng)
    result, jittered = local_weights(X, X, neighbours, scale=1.3, metric=metric, schur=schur,
                                     n_jobs=n_jobs)
    np.testing.assert_allclose(
        result, local_weights_ref(X, X, neighbours, scale=1.3, metric=metric, schur=schur),
        rtol=1e-10,
    )
    assert not jittered.any()
    query_neighbours = np.argsort(laplacian_matrix_ref(Q, X, scale=1.0), axis=1)[:, ::-1][:, :5]
    np.testing.assert_allclose(
        local_weights(Q, X, query_neighbours, scale=1.3, metric=metric, schur=schur)[0],
        local_weights_ref(Q, X, query_neighbours, scale=1.3, metric=metric, schur=schur),
        rtol=1e-10,
    )


def test_local_weights_jitter_near_duplicates_and_say_so():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1e-15, 0.0]])
    weights, jittered = local_weights(X, X, [[1, 2, 3], [0, 2, -1], [0, 1, -1], [0, 1, 2]],
                                      scale=1.0)
    assert np.all(np.isfinite(weights))
    assert jittered.tolist() == [True, False, False, True]


def test_local_weights_check_their_neighbour_lists(rng):
    X = rng.standard_normal((5, 2))
    with pytest.raises(ValueError, match="beyond the 5 points"):
        local_weights(X, X, [[7]] * 5, scale=1.0)
    with pytest.raises(ValueError, match="one row per point"):
        local_weights(X, X, [[1]], scale=1.0)


@pytest.mark.parametrize("metric", METRICS)
def test_fsai_rows_match_reference(metric, rng):
    X = rng.standard_normal((25, 3))
    candidates = _neighbours(X, 6, rng)
    pattern = np.where(candidates < np.arange(25)[:, None], candidates, -1)
    pattern = -np.sort(-pattern, axis=1)  # valid indices first, padding last
    data, indices, indptr, jittered = fsai_rows(X, pattern, scale=0.8, metric=metric, n_jobs=2)
    G = sp.csr_matrix((data, indices, indptr), shape=(25, 25)).toarray()
    np.testing.assert_allclose(G, fsai_ref(X, pattern, scale=0.8, metric=metric), rtol=1e-10,
                               atol=1e-14)
    # G Z G' has a unit diagonal by construction.
    Z = laplacian_matrix_ref(X, scale=0.8, metric=metric)
    np.testing.assert_allclose(np.diag(G @ Z @ G.T), 1.0, rtol=1e-12)
    assert not jittered.any()


def test_fsai_rows_of_a_block_with_their_own_neighbour_coordinates(rng):
    # What a worker holding one row block does: the neighbours' coordinates come as Y.
    X = rng.standard_normal((30, 3))
    pattern = np.where(_neighbours(X, 5, rng) < np.arange(30)[:, None], _neighbours(X, 5, rng), -1)
    pattern = -np.sort(-pattern, axis=1)
    whole = sp.csr_matrix(fsai_rows(X, pattern, scale=0.6)[:3], shape=(30, 30)).toarray()
    rows = np.arange(10, 20)
    local = np.where(pattern[rows] >= 0, np.arange(50).reshape(10, 5), -1)
    data, indices, indptr, _ = fsai_rows(X[rows], local, scale=0.6, Y=X[pattern[rows].ravel()])
    diagonal = indptr[:-1]
    assert np.all(indices[diagonal] == np.arange(10))
    np.testing.assert_allclose(data[diagonal], whole[rows, rows], rtol=1e-14)
    off = np.setdiff1d(np.arange(len(data)), diagonal)
    G = whole[np.repeat(rows, np.diff(indptr) - 1), pattern[rows].ravel()[indices[off]]]
    np.testing.assert_allclose(data[off], G, rtol=1e-14)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n_features", N_FEATURES)
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_pair_matvec_gives_both_products_of_a_block(metric, n_features, n_jobs, rng):
    X, Y = rng.standard_normal((37, n_features)), rng.standard_normal((23, n_features))
    u, v = rng.standard_normal(37), rng.standard_normal(23)
    K = laplacian_matrix_ref(X, Y, scale=0.8, metric=metric)
    Kv, KTu = laplacian_pair_matvec(X, Y, u, v, scale=0.8, metric=metric, n_jobs=n_jobs)
    np.testing.assert_allclose(Kv, K @ v, rtol=1e-12, atol=1e-12 * np.abs(K @ v).max())
    np.testing.assert_allclose(KTu, K.T @ u, rtol=1e-12, atol=1e-12 * np.abs(K.T @ u).max())
    assert np.array_equal(KTu, laplacian_pair_matvec(X, Y, u, v, scale=0.8, metric=metric)[1])


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_block_neighbours_among_earlier_points_match_reference(metric, n_jobs, rng):
    from weightstats._kernels._knn import nearest_neighbors_block

    X = np.vstack([rng.standard_normal((50, 4)), np.repeat([[0.0, 0, 0, 0]], 3, axis=0)])
    ids, rank = np.arange(53), rng.permutation(53)
    Q, Y = slice(0, 20), slice(15, 53)  # overlapping blocks: a point never finds itself
    found, dist = nearest_neighbors_block(
        X[Q], X[Y], 8, q_ids=ids[Q], y_ids=ids[Y], q_rank=rank[Q], y_rank=rank[Y],
        metric=metric, n_jobs=n_jobs,
    )
    np.testing.assert_array_equal(found, nearest_neighbors_block_ref(
        X[Q], X[Y], 8, q_ids=ids[Q], y_ids=ids[Y], q_rank=rank[Q], y_rank=rank[Y],
        metric=metric))
    assert np.all(np.isinf(dist[found < 0])) and np.all(np.isfinite(dist[found >= 0]))
    assert np.all(np.diff(np.minimum(dist, 1e300), axis=1) >= 0)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_brute_force_neighbours_match_a_stable_sort(metric, n_jobs, rng):
    from weightstats._kernels._knn import nearest_neighbors_brute
    from weightstats._kernels._laplacian_ref import nearest_neighbors_ref

    X = rng.standard_normal((60, 5))
    np.testing.assert_array_equal(
        nearest_neighbors_brute(X, 9, metric=metric, n_jobs=n_jobs),
        nearest_neighbors_ref(X, 9, metric=metric),
    )
    grid = np.array([[i, j] for i in range(5) for j in range(5)], dtype=float)  # many ties
    np.testing.assert_array_equal(nearest_neighbors_brute(grid, 6, metric=metric),
                                  nearest_neighbors_ref(grid, 6, metric=metric))
    with pytest.raises(ValueError, match="n_neighbors must be between 1 and 59"):
        nearest_neighbors_brute(X, 60)
