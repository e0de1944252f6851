"""Metric-space magnitude and weighting vectors (issue 7): closed forms, invariances,
solver agreement, numerics, scale selection and the estimators built on them."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import LinAlgWarning
from scipy.stats import ortho_group, spearmanr
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_outliers_fit_predict, check_outliers_train

from weightstats._kernels._laplacian_ref import laplacian_matrix_ref
from weightstats.magnitude import (
    MagnitudeActiveLearner,
    MagnitudeClassifier,
    MagnitudeOutlierDetector,
    boundary_scores,
    magnitude,
    magnitude_function,
    query_by_weight,
    select_scale,
    weighting_vector,
)
from weightstats.magnitude._space import fit_space, new_point_weights

from .strategies import well_conditioned_matrices


def _exact(X, t, metric="euclidean"):
    return np.linalg.solve(laplacian_matrix_ref(X, scale=t, metric=metric), np.ones(len(X)))


# ------------------------------------------------------------------ closed forms


@given(t=st.floats(0.05, 20.0), d=st.floats(0.01, 10.0))
def test_two_points(t, d):
    X = np.array([[0.0, 0.0], [d, 0.0]])
    assert magnitude(X, t) == pytest.approx(2.0 / (1.0 + np.exp(-t * d)), rel=1e-12)


@pytest.mark.parametrize("method", ["cholesky", "cg"])
@given(n=st.integers(2, 25), t=st.floats(0.05, 5.0), d=st.floats(0.1, 3.0))
@settings(max_examples=15)
def test_equally_spaced_points_on_a_line(method, n, t, d):
    X = d * np.arange(n, dtype=float).reshape(-1, 1)
    expected = 1.0 + (n - 1) * np.tanh(t * d / 2.0)
    assert magnitude(X, t, method=method, tol=1e-12) == pytest.approx(expected, rel=1e-9)


def test_local_method_is_exact_on_a_line_with_all_neighbours():
    X = np.arange(8.0).reshape(-1, 1)
    w = weighting_vector(X, 0.7, method="local", n_neighbors=7)
    np.testing.assert_allclose(w, _exact(X, 0.7), rtol=1e-12)


def test_magnitude_refuses_the_local_method(rng):
    """Local weights are each point's weight in its own neighbourhood; their sum is no
    magnitude (on 3000 uniform points in 10 dimensions it is -945 where the magnitude is
    5.1, and 1299 where it is 902), so the functions that return magnitudes refuse them."""
    X = rng.random((300, 10))
    t = select_scale(X, factor=1.0)
    assert np.sum(weighting_vector(X, t, method="local")) < 1.0 <= magnitude(X, t)
    with pytest.raises(ValueError, match="local weights do not sum to the magnitude"):
        magnitude(X, t, method="local")
    with pytest.raises(ValueError, match="local weights do not sum to the magnitude"):
        magnitude_function(X, ts=[t], method="local")
    assert MagnitudeOutlierDetector(method="local").fit(X).magnitude_ is None
    exact = MagnitudeOutlierDetector().fit(X)
    assert exact.magnitude_ == pytest.approx(
        magnitude(StandardScaler().fit_transform(X), exact.scale_), rel=1e-10
    )


def test_limits_in_t(rng):
    X = rng.standard_normal((12, 3))
    assert magnitude(X, 1e4) == pytest.approx(12.0, rel=1e-12)
    small = magnitude(X, 1e-3)
    assert 1.0 < small < 1.02
    # Mag(tX) - 1 shrinks linearly as t -> 0.
    assert magnitude(X, 1e-4) - 1 < (small - 1) / 5


def test_svm_view_and_schur_update(rng):
    X = rng.standard_normal((30, 2))
    t = 1.5
    Z = laplacian_matrix_ref(X, scale=t)
    w = weighting_vector(X, t)
    mag = w.sum()
    v = w / mag
    assert v @ Z @ v == pytest.approx(1.0 / mag, rel=1e-10)
    for _ in range(5):  # feasible perturbations increase v'Zv
        e = rng.standard_normal(30)
        e -= e.mean()
        assert (v + 1e-3 * e) @ Z @ (v + 1e-3 * e) > v @ Z @ v
    # Adding one point: its weight (1 - c'w) / s and the magnitude increase (1 - c'w)^2 / s.
    x = rng.standard_normal((1, 2))
    c = laplacian_matrix_ref(x, X, scale=t)[0]
    s = 1.0 - c @ np.linalg.solve(Z, c)
    augmented = weighting_vector(np.vstack([X, x]), t)
    assert augmented[-1] == pytest.approx((1.0 - c @ w) / s, rel=1e-10)
    assert augmented.sum() - mag == pytest.approx((1.0 - c @ w) ** 2 / s, rel=1e-9)
    space = fit_space(X, t, metric="euclidean", method="cholesky")
    assert new_point_weights(space, x)[0] == pytest.approx(augmented[-1], rel=1e-10)


# ------------------------------------------------------------------ properties


@given(X=well_conditioned_matrices(min_rows=3, max_rows=25, max_cols=4), seed=st.integers(0, 99))
def test_weights_are_permutation_equivariant(X, seed):
    t = select_scale(X)
    perm = np.random.default_rng(seed).permutation(len(X))
    np.testing.assert_allclose(weighting_vector(X[perm], t), weighting_vector(X, t)[perm],
                               rtol=1e-8, atol=1e-10)


@given(X=well_conditioned_matrices(min_rows=3, max_rows=25, min_cols=2, max_cols=4),
       seed=st.integers(0, 99))
def test_weights_are_invariant_to_rigid_motions(X, seed):
    rng = np.random.default_rng(seed)
    t = select_scale(X)
    moved = X @ ortho_group.rvs(X.shape[1], random_state=seed) + rng.standard_normal(X.shape[1])
    np.testing.assert_allclose(weighting_vector(moved, t), weighting_vector(X, t), rtol=1e-7,
                               atol=1e-9)


@given(X=well_conditioned_matrices(min_rows=2, max_rows=25, max_cols=4),
       factor=st.sampled_from([0.5, 2.0, 8.0]), metric=st.sampled_from(["euclidean", "manhattan"]))
def test_magnitude_is_at_least_one_and_grows_with_the_set(X, factor, metric):
    t = select_scale(X, factor=factor, metric=metric)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)
        full = magnitude(X, t, metric=metric)
        part = magnitude(X[: max(2, len(X) // 2)], t, metric=metric)
    assert full >= 1.0 - 1e-9
    assert full >= part - 1e-7 * full  # monotone under inclusion (positive definite spaces)


@given(X=well_conditioned_matrices(min_rows=3, max_rows=20, max_cols=3), c=st.floats(0.5, 4.0))
def test_scaling_the_points_and_dividing_t_changes_nothing(X, c):
    t = select_scale(X)
    np.testing.assert_allclose(weighting_vector(c * X, t / c), weighting_vector(X, t), rtol=1e-8,
                               atol=1e-10)


# ------------------------------------------------------------------ solvers and numerics


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_cholesky_and_cg_agree_with_a_dense_solve(metric, rng):
    X = rng.standard_normal((150, 4))
    t = select_scale(X, factor=2.0, metric=metric)
    exact = _exact(X, t, metric)
    np.testing.assert_allclose(weighting_vector(X, t, metric=metric), exact, rtol=1e-10)
    w, info = weighting_vector(X, t, metric=metric, method="cg", tol=1e-11, return_info=True)
    np.testing.assert_allclose(w, exact, rtol=1e-8, atol=1e-9)
    assert info["converged"] and info["preconditioner"] == "fsai"
    Z = laplacian_matrix_ref(X, scale=t, metric=metric)
    assert np.linalg.norm(1 - Z @ w) / np.sqrt(150) < 1e-11


@pytest.mark.parametrize("tol", [1e-6, 1e-10])
def test_mixed_precision_cg_reaches_double_precision_tolerances(tol, rng):
    from weightstats.magnitude._solvers import solve_cg

    X = rng.random((400, 6))
    t = select_scale(X)
    w, info = solve_cg(X, t, tol=tol, mixed=True, n_neighbors=8)
    assert info["n_iter_single"] > 0 and info["n_matvec_double"] >= 1
    true_residual = np.linalg.norm(1 - laplacian_matrix_ref(X, scale=t) @ w) / np.sqrt(400)
    assert true_residual <= 1.5 * tol
    np.testing.assert_allclose(w, _exact(X, t), rtol=0, atol=100 * tol)


def test_fsai_preconditioner_cuts_iterations(rng):
    X = rng.random((400, 5))
    t = select_scale(X)
    plain = weighting_vector(X, t, method="cg", n_neighbors=1, return_info=True)[1]["n_iter"]
    fsai = weighting_vector(X, t, method="cg", n_neighbors=32, return_info=True)[1]["n_iter"]
    assert fsai < plain


def test_cg_preconditioner_is_validated(rng):
    from weightstats.magnitude._solvers import solve_cg

    X = rng.random((100, 3))
    t = select_scale(X)
    with pytest.raises(ValueError, match="preconditioner must be 'fsai' or None; got 'jacobi'"):
        solve_cg(X, t, preconditioner="jacobi")
    plain = solve_cg(X, t, preconditioner=None, tol=1e-10)
    fsai = solve_cg(X, t, tol=1e-10)
    assert plain[1]["preconditioner"] is None and fsai[1]["n_iter"] < plain[1]["n_iter"]
    np.testing.assert_allclose(plain[0], _exact(X, t), rtol=1e-7)


def test_cg_reports_non_convergence(rng):
    X = rng.standard_normal((60, 2))
    with pytest.warns(ConvergenceWarning, match=r"relative residual .* > tol"):
        weighting_vector(X, 0.5, method="cg", max_iter=1, n_neighbors=2)


def test_local_method_ranks_like_the_exact_weights_at_large_scale(rng):
    X = rng.random((500, 5))
    t = select_scale(X)  # 8 / median(d)
    rho = spearmanr(weighting_vector(X, t, method="local", n_neighbors=50), _exact(X, t))[0]
    assert rho > 0.95


def test_duplicates_share_their_point_weight(rng):
    X = rng.standard_normal((40, 3))
    w = weighting_vector(X, 2.0)
    Xd = np.vstack([X, X[:3], X[:1]])
    wd = weighting_vector(Xd, 2.0)
    assert wd.sum() == pytest.approx(w.sum(), rel=1e-12)
    assert wd[0] == pytest.approx(w[0] / 3) and wd[-1] == wd[0]
    assert wd[1] == pytest.approx(w[1] / 2)
    for method in ("cg", "local"):
        assert np.all(np.isfinite(weighting_vector(Xd, 2.0, method=method)))
    negative_zero = np.array([[0.0, 1.0], [-0.0, 1.0], [1.0, 1.0]])
    assert magnitude(negative_zero, 1.0) == pytest.approx(2 / (1 + np.exp(-1.0)))


def test_near_duplicates_get_reported_jitter(rng):
    X = rng.standard_normal((50, 3))
    near = np.vstack([X, X[:1] + 1e-13])
    with pytest.warns(LinAlgWarning, match=r"added jitter 1\.0e-10 .* relative residual"):
        w, info = weighting_vector(near, 2.0, return_info=True)
    assert info["jitter"] == 1e-10 and info["residual"] < 1e-12
    assert w.sum() == pytest.approx(magnitude(X, 2.0), rel=1e-8)


def test_tiny_scale_is_ill_conditioned_and_reported(rng):
    # The Cholesky pivots of exp(-t D) shrink like t: below t ~ 1e-10 they drop under
    # the 1e-10 threshold, jitter is added and refinement recovers the solution.
    X = rng.standard_normal((40, 2))
    slope = (magnitude(X, 1e-9) - 1.0) / 1e-9
    with pytest.warns(LinAlgWarning, match=r"numerically singular at t=1e-11.*jitter"):
        w, info = weighting_vector(X, 1e-11, return_info=True)
    assert info["jitter"] > 0 and info["residual"] < 1e-12
    assert w.sum() == pytest.approx(1.0 + slope * 1e-11, abs=2e-12)


def test_return_info_describes_the_solve(rng):
    X = rng.standard_normal((20, 2))
    _, info = weighting_vector(X, 1.0, return_info=True)
    assert info == {"method": "cholesky", "jitter": 0.0, "residual": None, "t": 1.0,
                    "n_distinct": 20}
    _, info = weighting_vector(X, 1.0, method="local", n_neighbors=5, return_info=True)
    assert info["method"] == "local" and info["n_neighbors"] == 5


@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


@pytest.mark.requires("distributed")
def test_dask_cluster_runs_the_cg_products(dask_client, rng):
    X = rng.standard_normal((120, 3))
    w, info = weighting_vector(X, 1.0, client=dask_client, tol=1e-10, return_info=True)
    assert info["method"] == "cg" and info["n_blocks"] == 3 and info["converged"]
    # Symmetric blocks: each pair's kernel value is formed once per product.
    assert info["pairs_per_product"] == 120 * 119 // 2
    np.testing.assert_allclose(w, _exact(X, 1.0), rtol=1e-7, atol=1e-9)


@pytest.mark.requires("distributed")
@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_distributed_products_and_preconditioner_match_one_machine(dask_client, metric, rng):
    from weightstats._kernels._laplacian_ref import fsai_ref, nearest_neighbors_block_ref
    from weightstats.magnitude._distributed import DistributedPoints

    X, v = rng.standard_normal((50, 3)), rng.standard_normal(50)
    points = DistributedPoints(dask_client, X, metric, n_blocks=4)
    Z = laplacian_matrix_ref(X, scale=0.7, metric=metric)
    np.testing.assert_allclose(points.matvec(0.7)(v), Z @ v, rtol=1e-12, atol=1e-12)
    precondition, n_jittered = points.fsai(0.7, 6)
    rank = np.empty(50, dtype=np.int64)
    rank[np.random.default_rng(0).permutation(50)] = np.arange(50)
    ids = np.arange(50)
    pattern = nearest_neighbors_block_ref(X, X, 6, q_ids=ids, y_ids=ids, q_rank=rank,
                                          y_rank=rank, metric=metric)
    G = fsai_ref(X, pattern, scale=0.7, metric=metric)
    np.testing.assert_allclose(precondition(v), G.T @ (G @ v), rtol=1e-10, atol=1e-12)
    assert n_jittered == 0


@pytest.mark.requires("distributed")
def test_dask_array_points_never_pass_through_the_client(dask_client, rng, monkeypatch):
    """The blocks of a dask array go from the cluster's tasks straight to the solver's
    tasks: materialising the array on the client (np.asarray) is not needed."""
    da = pytest.importorskip("dask.array")
    X = rng.standard_normal((90, 4))
    Xd = da.from_array(X, chunks=(25, 4))

    def refuse(*args, **kwargs):
        raise AssertionError("the dask array was materialised on the client")

    monkeypatch.setattr(da.Array, "__array__", refuse)
    w = weighting_vector(Xd, 1.5, client=dask_client, tol=1e-10)
    np.testing.assert_allclose(w, _exact(X, 1.5), rtol=1e-7, atol=1e-9)
    frame = magnitude_function(Xd, ts=[0.5, 1.5], client=dask_client, tol=1e-10)
    np.testing.assert_allclose(frame["magnitude"], [magnitude(X, 0.5), w.sum()], rtol=1e-8)
    with pytest.raises(ValueError, match="duplicated rows"):
        weighting_vector(da.concatenate([Xd, Xd[:2]]), 1.5, client=dask_client)
    with pytest.raises(ValueError, match="NaN or infinity"):
        weighting_vector(da.where(Xd > 2, np.nan, Xd), 1.5, client=dask_client)
    with pytest.raises(ValueError, match="pass the scales ts"):
        magnitude_function(Xd, client=dask_client)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda X: weighting_vector(X, 0.0), "t must be a positive"),
        (lambda X: weighting_vector(X, -1.0), "t must be a positive"),
        (lambda X: magnitude(X, np.inf), "t must be a positive"),
        (lambda X: weighting_vector(X, True), "t must be a positive"),
        (lambda X: weighting_vector(X[:1], 1.0), "at least 2 points"),
        (lambda X: weighting_vector(np.where(X > 0.5, np.nan, X), 1.0), "NaN"),
        (lambda X: weighting_vector(np.where(X > 0.5, np.inf, X), 1.0), "infinity"),
        (lambda X: weighting_vector(np.ones_like(X), 1.0), "all points of X are identical"),
        (lambda X: weighting_vector(X, 1.0, metric="cosine"), "metric='cosine' is not supported"),
        (lambda X: weighting_vector(X, 1.0, method="svd"), "method must be one of"),
        (lambda X: weighting_vector(X, 1.0, tol=0.0), "tol must be"),
        (lambda X: weighting_vector(X, 1.0, n_neighbors=0), "n_neighbors must be"),
        (lambda X: weighting_vector(X, 1.0, method="local", client=object()), "client="),
        (lambda X: magnitude_function(X, ts=[1.0, 0.0]), "each t in ts must be a positive"),
        (lambda X: magnitude_function(X, ts=[]), "ts is empty"),
        (lambda X: select_scale(X, "silverman"), "method must be one of"),
        (lambda X: select_scale(np.ones_like(X)), "identical"),
        (lambda X: select_scale(X[:1]), "at least 2 points"),
        (lambda X: select_scale(X[:2], "scattered"), "at least 3 distinct"),
        (lambda X: select_scale(X, "convergence", target=1.0), "target must be in"),
        (lambda X: select_scale(X, "convergence", solver="local"), "local weights do not sum"),
        (lambda X: MagnitudeOutlierDetector(scale=0.0).fit(X), "scale"),
        (lambda X: MagnitudeOutlierDetector().fit(np.ones_like(X)), "identical"),
        (lambda X: MagnitudeOutlierDetector(metric="cosine").fit(X), "metric"),
    ],
)
def test_bad_input_raises_a_clear_error(call, message, rng):
    with pytest.raises(ValueError, match=message):
        call(rng.random((10, 2)))


# ------------------------------------------------------------------ scales and functions


def test_scale_rules(rng):
    X = np.array([[0.0], [1.0], [2.0], [4.0]])
    assert select_scale(X) == 4.0
    assert select_scale(X, factor=1.0) == 0.5
    assert select_scale(X, "scattered") == pytest.approx(np.log(3.0))
    assert select_scale(X, "scattered", quantile=0.5) == pytest.approx(np.log(3.0) / 2.0)
    Y = rng.standard_normal((60, 3))
    t_conv = select_scale(Y, "convergence")
    assert magnitude(Y, t_conv) == pytest.approx(0.95 * 60, rel=1e-5)
    assert select_scale(Y, "convergence", target=0.5) < t_conv
    big = rng.standard_normal((300, 2))
    assert select_scale(big, max_samples=50, random_state=1) == select_scale(
        big, max_samples=50, random_state=1
    )
    assert select_scale(big, max_samples=50, random_state=1) == pytest.approx(
        select_scale(big), rel=0.3
    )


def test_scattered_scale_gives_positive_weights(rng):
    X = rng.standard_normal((40, 2))
    assert np.all(weighting_vector(X, select_scale(X, "scattered")) > 0)


@pytest.mark.parametrize("method", ["cholesky", "cg"])
def test_magnitude_function(method, rng):
    X = rng.standard_normal((80, 3))
    frame = magnitude_function(X, ts=[2.0, 0.5, 1.0], method=method, n_neighbors=79)
    assert isinstance(frame, pd.DataFrame) and frame.index.name == "t"
    assert frame.index.tolist() == [0.5, 1.0, 2.0]
    assert frame["magnitude"].is_monotonic_increasing
    expected = [magnitude(X, t) for t in (0.5, 1.0, 2.0)]
    np.testing.assert_allclose(frame["magnitude"], expected, rtol=1e-7)


def test_default_magnitude_function_runs_up_to_the_convergence_scale(rng):
    X = rng.standard_normal((40, 2))
    frame = magnitude_function(X, n_ts=5)
    assert len(frame) == 5
    assert frame["magnitude"].iloc[-1] == pytest.approx(0.95 * 40, rel=1e-5)
    assert frame.index[-1] == pytest.approx(5 * frame.index[0])


def test_boundary_scores_single_out_the_boundary():
    side = np.linspace(0.0, 1.0, 15)
    grid = np.array([[a, b] for a in side for b in side])
    scores = boundary_scores(grid)
    assert scores.mean() == pytest.approx(1.0)
    on_edge = (grid == 0).any(axis=1) | (grid == 1).any(axis=1)
    assert scores[on_edge].min() > scores[~on_edge].max()
    doubled = boundary_scores(np.vstack([grid, grid[:1]]))
    assert doubled[0] == doubled[-1] == pytest.approx(scores[0])


# ------------------------------------------------------------------ outlier detector


def _outlier_task(seed):
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(seed)
    inliers = np.flatnonzero(y == 1)
    outliers = rng.choice(np.flatnonzero(y == 0), 40, replace=False)
    return X[np.r_[inliers, outliers]], np.r_[np.zeros(len(inliers)), np.ones(40)]


def test_detector_finds_malignant_tumours():
    X, y = _outlier_task(0)
    detector = MagnitudeOutlierDetector(contamination=40 / len(y)).fit(X)
    assert roc_auc_score(y, detector.decision_scores_) > 0.85
    assert detector.labels_.sum() == 40
    assert detector.scale_ == pytest.approx(8.0 / np.median(
        np.linalg.norm(detector.space_["points"][:, None] - detector.space_["points"], axis=2)[
            np.triu_indices(len(y), 1)]))


def test_detector_scores_are_consistent(rng):
    X = np.vstack([rng.standard_normal((60, 3)), [[5.0, 5.0, 5.0]]])
    detector = MagnitudeOutlierDetector().fit(X)
    np.testing.assert_array_equal(-detector.score_samples(X), detector.decision_scores_)
    np.testing.assert_array_equal(detector.fit_predict(X), np.where(detector.labels_, -1, 1))
    assert detector.predict(X)[-1] == -1
    np.testing.assert_allclose(detector.decision_function(X),
                               detector.score_samples(X) - detector.offset_)
    # A new point scores its weight in the enlarged (standardised) training set.
    x = rng.standard_normal((1, 3))
    augmented = weighting_vector(
        (np.vstack([X, x]) - detector.mean_) / detector.std_, detector.scale_
    )
    assert -detector.score_samples(x)[0] == pytest.approx(augmented[-1], rel=1e-9)


def test_detector_ignores_duplicated_rows(rng):
    X = rng.standard_normal((50, 2))
    plain = MagnitudeOutlierDetector(standardize=False, scale=2.0).fit(X)
    repeated = MagnitudeOutlierDetector(standardize=False, scale=2.0).fit(np.vstack([X, X[:5]]))
    np.testing.assert_allclose(repeated.decision_scores_[:50], plain.decision_scores_, rtol=1e-10)
    np.testing.assert_allclose(repeated.decision_scores_[50:], plain.decision_scores_[:5])


@pytest.mark.parametrize("method", ["cg", "local"])
def test_detector_large_scale_methods_rank_like_the_exact_one(method, rng):
    X = rng.standard_normal((300, 4))
    Q = rng.standard_normal((20, 4)) * 1.5
    exact = MagnitudeOutlierDetector().fit(X)
    other = MagnitudeOutlierDetector(method=method, n_neighbors=60).fit(X)
    assert spearmanr(exact.decision_scores_, other.decision_scores_)[0] > 0.9
    assert spearmanr(exact.score_samples(Q), other.score_samples(Q))[0] > 0.9


@pytest.mark.parametrize("contamination", ["auto", 0.1])
def test_detector_passes_the_outlier_checks(contamination):
    detector = MagnitudeOutlierDetector(contamination=contamination)
    check_outliers_train("MagnitudeOutlierDetector", detector)
    check_outliers_fit_predict("MagnitudeOutlierDetector", detector)


def _flagged_share(X, **params):
    return MagnitudeOutlierDetector(**params).fit(X).labels_.mean()


def test_auto_contamination_is_a_robust_threshold_on_the_log_odds():
    """contamination="auto" flags log-odds log(w / (1 - w)) above median + 3 MAD: a few
    percent of every data set, at every scale. The former absolute threshold (w > 0.95)
    flagged 0% of the outlier checks' blobs, and 0% to 94% of wine as the scale went from
    4 to 16 / median(d)."""
    from scipy.special import expit, logit
    from scipy.stats import median_abs_deviation
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_blobs
    from sklearn.utils import shuffle

    data = {
        "blobs": shuffle(make_blobs(n_samples=300, random_state=0)[0], random_state=7),
        "breast_cancer": load_breast_cancer(return_X_y=True)[0],
        "digits": load_digits(return_X_y=True)[0],
        "wine": load_wine(return_X_y=True)[0],
    }
    for X in data.values():
        detector = MagnitudeOutlierDetector().fit(X)
        assert 0.01 <= detector.labels_.mean() <= 0.06
        odds = logit(np.clip(detector.decision_scores_, 1e-12, 1 - 1e-12))
        assert detector.threshold_ == pytest.approx(
            expit(np.median(odds) + 3 * median_abs_deviation(odds, scale="normal")), rel=1e-12
        )
    for name in ("breast_cancer", "wine"):
        Xs = StandardScaler().fit_transform(data[name])
        for factor in (4.0, 16.0):
            assert _flagged_share(data[name], scale=select_scale(Xs, factor=factor)) <= 0.06


def test_detector_keeps_pandas_feature_names(rng):
    frame = pd.DataFrame(rng.standard_normal((30, 2)), columns=["a", "b"])
    detector = MagnitudeOutlierDetector().fit(frame)
    assert detector.feature_names_in_.tolist() == ["a", "b"]
    with pytest.warns(UserWarning, match="feature names"):
        detector.predict(frame.to_numpy())


# ------------------------------------------------------------------ classifier


@pytest.mark.parametrize("decision", ["abs", "cdf"])
def test_classifier_separates_wine(decision):
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                        stratify=y)
    clf = MagnitudeClassifier(decision=decision).fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.88
    proba = clf.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X_test))
    assert clf.temperature_ > 0


def test_classifier_scores_are_leave_one_out_weights(rng):
    X = rng.standard_normal((40, 2))
    y = (X[:, 0] > 0).astype(int)
    clf = MagnitudeClassifier(standardize=False, scale=1.0).fit(X, y)
    scores = clf.class_scores(X)
    own = weighting_vector(X[y == 1], 1.0)
    np.testing.assert_allclose(scores[y == 1, 1], np.abs(own), rtol=1e-10)
    x = np.array([[0.3, -0.2]])
    augmented = weighting_vector(np.vstack([X[y == 0], x]), 1.0)
    assert clf.class_scores(x)[0, 0] == pytest.approx(abs(augmented[-1]), rel=1e-9)


def test_classifier_fixed_temperature_and_binary_decision(rng):
    X = rng.standard_normal((30, 2))
    y = np.where(X[:, 1] > 0, "up", "down")
    clf = MagnitudeClassifier(temperature=0.1).fit(X, y)
    assert clf.temperature_ == 0.1
    decision = clf.decision_function(X)
    assert decision.shape == (30,)
    np.testing.assert_array_equal(np.where(decision > 0, "up", "down"), clf.predict(X))


# ------------------------------------------------------------------ active learning


def _brute_force_greedy(pool, labeled, n, t):
    chosen = []
    for _ in range(n):
        base = np.vstack([labeled, pool[chosen]])
        gains = [
            -np.inf if i in chosen else magnitude(np.vstack([base, pool[i]]), t)
            for i in range(len(pool))
        ]
        chosen.append(int(np.argmax(gains)))
    return chosen


def test_query_by_weight_is_greedy_magnitude_maximisation(rng):
    pool, labeled = rng.standard_normal((25, 2)), rng.standard_normal((4, 2))
    assert query_by_weight(pool, labeled, 6, t=1.3).tolist() == _brute_force_greedy(
        pool, labeled, 6, 1.3
    )
    assert query_by_weight(pool, labeled[:1], 3, t=0.7).tolist() == _brute_force_greedy(
        pool, labeled[:1], 3, 0.7
    )


def test_query_by_weight_checks_its_input(rng):
    with pytest.raises(ValueError, match="n_queries"):
        query_by_weight(rng.random((3, 2)), rng.random((2, 2)), 4)
    with pytest.raises(ValueError, match="features"):
        query_by_weight(rng.random((3, 2)), rng.random((2, 3)), 1)


def test_active_learner_strategies():
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    seed = np.array([0, 50, 100, 1, 51, 101])
    pool = np.setdiff1d(np.arange(150), seed)
    learner = MagnitudeActiveLearner().fit(X[seed], y[seed])
    picked = learner.query(X[pool], 5)
    assert len(set(picked.tolist())) == 5
    margin = MagnitudeActiveLearner(strategy="margin").fit(X[seed], y[seed])
    proba = np.sort(margin.predict_proba(X[pool]), axis=1)
    gaps = proba[:, -1] - proba[:, -2]
    assert gaps[margin.query(X[pool], 3)].max() <= np.sort(gaps)[2]
    tree = MagnitudeActiveLearner(DecisionTreeClassifier(), strategy="margin")
    assert tree.fit(X[seed], y[seed]).query(X[pool], 2).shape == (2,)


def test_weight_queries_discover_every_cluster_first():
    """Diversity sampling: on 8 separated clusters of very different sizes, 7 weight
    queries from one labelled point reach all 8 clusters; random queries mostly land in
    the big ones (expected number of clusters reached well below 8)."""
    from sklearn.datasets import make_blobs

    sizes = [400, 200, 100, 50, 25, 12, 6, 3]
    X, y = make_blobs(n_samples=sizes, cluster_std=0.5, center_box=(-30, 30), random_state=0)
    start = np.flatnonzero(y == 0)[:1]
    pool = np.setdiff1d(np.arange(len(y)), start)
    picked = pool[query_by_weight(X[pool], X[start], 7)]
    assert len(set(y[np.r_[start, picked]])) == 8
    rng = np.random.default_rng(0)
    reached = [len(set(y[np.r_[start, rng.choice(pool, 7, replace=False)]])) for _ in range(200)]
    assert np.mean(reached) < 5
