"""CoresetReweighter (weightstats.reweighting._coreset)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import load_digits, make_blobs, make_classification
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from weightstats.reweighting import CoresetReweighter
from weightstats.reweighting._coreset import (
    _CoresetProblem,
    _LogisticSurrogate,
    _class_allocation,
    _moderate_coreset,
    _one_hot,
)


def _problem(rng, n=60, d=3, k=3):
    X = rng.standard_normal((n, d))
    y = rng.integers(0, k, n)
    return X, y


# -- the surrogate and its implicit gradient ----------------------------------


def test_surrogate_equals_sklearn_logistic_regression(rng):
    """sum w l / total + alpha/2 |theta|^2 is scikit-learn's objective with
    C = 1 / (alpha total), intercept penalised (a column of ones, no fitted
    intercept)."""
    X, y = _problem(rng)
    w = rng.uniform(0.2, 3.0, 60)
    alpha, total = 0.05, 60.0
    ours = _LogisticSurrogate(X, _one_hot(y, 3), alpha, 3, total).fit(w)
    Xt = np.column_stack([X, np.ones(60)])
    ref = LogisticRegression(C=1 / (alpha * total), fit_intercept=False, tol=1e-12,
                             max_iter=10_000).fit(Xt, y, sample_weight=w)
    np.testing.assert_allclose(ours.theta, ref.coef_, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("k", [2, 4])
def test_implicit_weight_gradient_matches_finite_differences(k, rng):
    X, y = _problem(rng, n=30, k=k)
    Xv, yv = _problem(rng, n=20, k=k)
    Yv = _one_hot(yv, k)
    w = rng.uniform(0.5, 2.0, 30)
    surrogate = _LogisticSurrogate(X, _one_hot(y, k), 0.1, k, 30.0)
    _, grad = surrogate.fit(w).weight_gradient(Xv, Yv)
    eps = 1e-3  # central differences: O(eps^2) error, far above the inner tolerance
    for i in (0, 7, 29):
        up, down = w.copy(), w.copy()
        up[i] += eps
        down[i] -= eps
        numeric = (surrogate.fit(up).validation(Xv, Yv)[0]
                   - surrogate.fit(down).validation(Xv, Yv)[0]) / (2 * eps)
        assert grad[i] == pytest.approx(numeric, rel=1e-3, abs=1e-7)


def test_coreset_problem_rows_and_point_gradient(rng):
    """Rows are (point, label) pairs with counts m * occurrences / n; the point
    gradient sums its rows' gradients."""
    X, y = _problem(rng, n=40)
    points = np.array([0, 5, 9, 20])
    nearest = rng.integers(0, 4, 40)
    nearest[points] = np.arange(4)
    problem = _CoresetProblem(X[points], y[points], nearest, y, 3, 0.1)
    labels = problem.surrogate.Y.argmax(1)
    for row, (owner, label) in enumerate(zip(problem.owner, labels, strict=True)):
        expected = np.sum((nearest == owner) & (y == label)) * 4 / 40
        assert problem.row_counts[row] == pytest.approx(expected)
    assert problem.point_counts.sum() == pytest.approx(4.0)
    Xv, yv = _problem(rng, n=15)
    Yv = _one_hot(yv, 3)
    w = problem.normalised(rng.standard_normal(4))
    assert np.dot(problem.point_counts, w) == pytest.approx(4.0)
    _, grad = problem.fit(w).validation_gradient(Xv, Yv)
    eps = 1e-3  # central differences: O(eps^2) error, far above the inner tolerance
    for i in range(4):
        up, down = w.copy(), w.copy()
        up[i] += eps
        down[i] -= eps
        numeric = (problem.fit(up).validation_loss(Xv, Yv)
                   - problem.fit(down).validation_loss(Xv, Yv)) / (2 * eps)
        assert grad[i] == pytest.approx(numeric, rel=1e-3, abs=1e-7)


# -- coreset selection -----------------------------------------------------------


def test_moderate_selection_keeps_the_middle_distance_band():
    # One feature: distances to the class median are |x - median|.
    x0 = np.array([0.0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])  # median 5, distances 5..0..5
    x1 = np.array([100.0, 101, 102, 150])  # median 101.5
    X = np.r_[x0, x1][:, None]
    y = np.r_[np.zeros(11, int), np.ones(4, int)]
    chosen = _moderate_coreset(X, y, 6)  # 3 per class
    in_class0 = X[chosen[y[chosen] == 0], 0]
    # Class 0 distances sorted: 0 (5), 1 (4, 6), 2 (3, 7), ...: the middle
    # three of the 11 sorted distances are ranks 4-6, i.e. distances 2, 3, 3.
    np.testing.assert_array_equal(np.sort(np.abs(in_class0 - 5)), [2, 3, 3])
    # Class 1 (4 samples, distances 1.5, 0.5, 0.5, 48.5): the middle three.
    assert sorted(X[chosen[y[chosen] == 1], 0]) == [100.0, 101.0, 102.0]
    # Fewer points than classes: the same rule over all samples.
    assert len(_moderate_coreset(X, y, 1)) == 1


def test_small_classes_enter_the_coreset_whole(rng):
    X = rng.standard_normal((103, 2))
    y = np.r_[np.zeros(100, int), np.ones(3, int)]
    chosen = _moderate_coreset(X, y, 20)
    assert np.sum(y[chosen] == 1) == 3
    assert np.sum(y[chosen] == 0) == 17  # the small class's surplus goes to the other


@pytest.mark.parametrize("size, expected", [(3, [2, 1]), (5, [3, 2]), (7, [4, 3]), (60, [40, 20])])
def test_coreset_has_exactly_the_requested_size(size, expected, rng):
    """floor(size / n_classes) per class used to turn coreset_size=3 into 2 points."""
    X = rng.standard_normal((200, 2))
    y = np.r_[np.zeros(180, int), np.ones(20, int)]
    chosen = _moderate_coreset(X, y, size)
    assert len(chosen) == size and len(np.unique(chosen)) == size
    np.testing.assert_array_equal(np.bincount(y[chosen], minlength=2), expected)
    model = CoresetReweighter(coreset_size=size, random_state=0).fit(X, y)
    assert len(model.coreset_indices_) == size


@given(
    class_sizes=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    fraction=st.floats(0.0, 1.0),
)
def test_class_allocation_properties(class_sizes, fraction):
    class_sizes = np.array(class_sizes)
    size = int(round(fraction * class_sizes.sum()))
    alloc = _class_allocation(size, class_sizes)
    assert alloc.sum() == size and np.all(alloc <= class_sizes) and np.all(alloc >= 0)
    if size >= len(class_sizes):
        assert np.all(alloc >= 1)  # every class is represented
    # Equal shares: classes below their size differ by at most one point, and
    # no class gets more than one above a class that is not full.
    open_ = alloc < class_sizes
    if open_.any():
        assert alloc.max() <= alloc[open_].min() + 1


def test_tiny_coresets_warn_that_weights_cannot_differ():
    """One reweighted point left every sample the same weight without a word."""
    X, y = make_classification(200, n_features=4, random_state=0)
    with pytest.warns(UserWarning, match=r"only 1 reweighted coreset point\(s\) for 2 classes.*"
                                         r"same weight"):
        model = CoresetReweighter(coreset_size=2, random_state=0).fit(X, y)
    assert np.unique(model.sample_weights_).size == 1
    Xv, yv = X[:20], y[:20]
    with pytest.warns(UserWarning, match="only 2 reweighted coreset point.*3 classes"):
        X3, y3 = make_classification(300, n_features=4, n_informative=3, n_redundant=0,
                                     n_classes=3, random_state=0)
        CoresetReweighter(coreset_size=2, random_state=0).fit(X3, y3, X_val=X3[:30],
                                                             y_val=y3[:30])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        CoresetReweighter(coreset_size=3, random_state=0).fit(X, y)  # 2 points, 2 classes
        CoresetReweighter(coreset_size=2, random_state=0).fit(X, y, X_val=Xv, y_val=yv)


# -- the estimator -----------------------------------------------------------------


def _blobs(seed, n=300, noise=0.0):
    X, y = make_blobs(n, centers=[[-2, 0], [2, 0], [0, 3]], cluster_std=1.0, random_state=seed)
    rng = np.random.default_rng(seed)
    flipped = rng.random(n) < noise
    y_noisy = np.where(flipped, (y + rng.integers(1, 3, n)) % 3, y)
    return X, y, y_noisy, flipped


def test_weights_are_propagated_from_the_nearest_coreset_point(rng):
    X, y, _, _ = _blobs(0)
    Xv, yv, _, _ = _blobs(1, n=60)
    for propagate in ("nearest", "nearest_same_class"):
        model = CoresetReweighter(coreset_size=0.1, propagate=propagate, random_state=0)
        model.fit(X, y, X_val=Xv, y_val=yv)
        core = model.coreset_indices_
        assert len(core) == 30 and len(model.validation_indices_) == 0
        assert model.sample_weights_.mean() == pytest.approx(1.0)
        for i in rng.choice(300, 20, replace=False):
            candidates = core if propagate == "nearest" else core[y[core] == y[i]]
            nearest = candidates[np.argmin(np.linalg.norm(X[candidates] - X[i], axis=1))]
            assert model.sample_weights_[i] == model.sample_weights_[nearest]


def test_validation_set_held_out_of_the_coreset():
    X, y, _, _ = _blobs(2)
    model = CoresetReweighter(coreset_size=0.2, random_state=0).fit(X, y)
    core, val = model.coreset_indices_, model.validation_indices_
    assert len(core) == 60
    assert len(val) == max(int(0.02 * 60), min(100, int(0.5 * 60)), 1) == 30
    assert set(val) <= set(core)
    assert model.validation_loss_["after"] <= model.validation_loss_["before"]


def test_meta_weights_down_weight_flipped_labels():
    """With every sample in the coreset and a clean validation set, the learned
    weights are lower on average for the samples whose label was flipped."""
    X, y, y_noisy, flipped = _blobs(3, n=200, noise=0.3)
    Xv, yv, _, _ = _blobs(4, n=90)
    model = CoresetReweighter(coreset_size=1.0, weight_penalty=0.01, random_state=0)
    model.fit(X, y_noisy, X_val=Xv, y_val=yv)
    w = model.sample_weights_
    assert w[flipped].mean() < 0.7 * w[~flipped].mean()
    loss_model = CoresetReweighter(coreset_size=1.0, reweighting="loss", random_state=0)
    loss_model.fit(X, y_noisy, X_val=Xv, y_val=yv)
    assert loss_model.beta_ < 0
    assert loss_model.sample_weights_[flipped].mean() < loss_model.sample_weights_[~flipped].mean()


def test_weight_penalty_shrinks_towards_equal_weights():
    X, y, y_noisy, _ = _blobs(5, n=150, noise=0.3)
    Xv, yv, _, _ = _blobs(6, n=60)
    spread = [
        np.std(np.log(CoresetReweighter(coreset_size=1.0, weight_penalty=p, random_state=0)
                      .fit(X, y_noisy, X_val=Xv, y_val=yv).sample_weights_))
        for p in (0.0, 0.1, 10.0)
    ]
    assert spread[0] > spread[1] > spread[2]


def _digits_long_tail(seed, ratio=0.05):
    """Digits with 1-pixel shifts (5x the images), a long-tailed training set,
    PCA features fitted without labels, a clean balanced validation set."""
    digits = load_digits()
    images, target = digits.images, digits.target
    rng = np.random.default_rng(seed)
    train, test = train_test_split(np.arange(len(target)), test_size=0.3, stratify=target,
                                   random_state=seed)
    shifted = [images[train]] + [np.roll(images[train], s, axis=a) for a in (1, 2)
                                 for s in (-1, 1)]
    X = np.concatenate(shifted).reshape(-1, 64)
    y = np.tile(target[train], 5)
    embed = make_pipeline(StandardScaler(), PCA(30, random_state=0)).fit(X)
    order = rng.permutation(10)
    keep = np.concatenate([
        rng.choice(np.flatnonzero(y == c), int(round(ratio ** (order[c] / 9) * np.sum(y == c))),
                   replace=False)
        for c in range(10)
    ])
    X_test, y_test = images[test].reshape(-1, 64), target[test]
    val = np.concatenate([np.flatnonzero(y_test == c)[:10] for c in range(10)])
    rest = np.setdiff1d(np.arange(len(y_test)), val)
    return (embed.transform(X[keep]), y[keep], embed.transform(X_test[val]), y_test[val],
            embed.transform(X_test[rest]), y_test[rest])


@pytest.mark.slow
def test_long_tailed_digits_beats_unweighted():
    """The accuracy claim on 3 draws of a smaller version of the notebook's task
    (notebooks/reweighting.ipynb has the full table, with times)."""
    from threadpoolctl import threadpool_limits

    acc = {"unweighted": [], "coreset": []}
    with threadpool_limits(1):  # small matrices: threads only add contention
        for seed in range(3):
            X, y, Xv, yv, Xt, yt = _digits_long_tail(seed)
            base = LogisticRegression(max_iter=3000)
            acc["unweighted"].append(accuracy_score(yt, base.fit(X, y).predict(Xt)))
            model = CoresetReweighter(base, coreset_size=0.05, random_state=seed)
            model.fit(X, y, X_val=Xv, y_val=yv)
            acc["coreset"].append(accuracy_score(yt, model.predict(Xt)))
    mean = {name: np.mean(values) for name, values in acc.items()}
    assert mean["coreset"] > mean["unweighted"] + 0.01, mean


def test_meta_estimator_interface(rng):
    X, y = make_classification(200, n_features=4, n_informative=3, n_redundant=0,
                               n_classes=3, random_state=0)
    labels = np.array(["a", "b", "c"])[y]
    frame = pd.DataFrame(X, columns=["f1", "f2", "f3", "f4"])
    model = CoresetReweighter(coreset_size=0.2, random_state=0).fit(frame, labels)
    np.testing.assert_array_equal(model.classes_, ["a", "b", "c"])
    np.testing.assert_array_equal(model.feature_names_in_, frame.columns)
    assert model.predict_proba(frame).shape == (200, 3)
    assert set(model.predict(frame)) <= {"a", "b", "c"}
    # The learned weights refit the same estimator outside the meta-estimator.
    refit = LogisticRegression().fit(frame, labels, sample_weight=model.sample_weights_)
    np.testing.assert_allclose(refit.coef_, model.estimator_.coef_)
    svc = CoresetReweighter(LinearSVC(), coreset_size=0.2, random_state=0).fit(X, y)
    assert not hasattr(svc, "predict_proba") and svc.decision_function(X).shape == (200, 3)
    scores = cross_val_score(CoresetReweighter(coreset_size=0.3, random_state=0), X, y, cv=3)
    assert np.all(scores > 0.5)
    again = CoresetReweighter(coreset_size=0.2, selection="random", random_state=3)
    np.testing.assert_array_equal(again.fit(X, y).coreset_indices_,
                                  again.fit(X, y).coreset_indices_)


@pytest.mark.parametrize(
    "params, fit_kwargs, error, match",
    [
        ({"coreset_size": 0}, {}, ValueError, "coreset_size"),
        ({"coreset_size": 0.0}, {}, ValueError, "coreset_size"),
        ({"coreset_size": 1.5}, {}, ValueError, "coreset_size"),
        ({"coreset_size": 500}, {}, ValueError, "larger than the data"),
        ({"coreset_size": 0.001}, {}, ValueError, "selects no sample"),
        ({"coreset_size": 1}, {}, ValueError, "too few to hold out"),
        ({"estimator": KNeighborsClassifier()}, {}, TypeError, "sample_weight"),
        ({"estimator": LinearRegression()}, {}, TypeError, "classifier"),
        ({"selection": "herding"}, {}, ValueError, "selection"),
        ({}, {"X_val": np.zeros((3, 2))}, ValueError, "both X_val and y_val"),
        ({}, {"X_val": np.zeros((3, 2)), "y_val": [0, 1, 9]}, ValueError, "not seen in y"),
        ({}, {"X_val": np.zeros((3, 5)), "y_val": [0, 1, 1]}, ValueError, "features"),
        ({}, {"X_val": np.zeros((3, 2)), "y_val": [0, 1]}, ValueError, "one label per row"),
    ],
)
def test_bad_input_raises(params, fit_kwargs, error, match):
    X, y, _, _ = _blobs(7, n=100)
    with pytest.raises(error, match=match):
        CoresetReweighter(**params).fit(X, y, **fit_kwargs)


def test_single_class_is_rejected():
    with pytest.raises(ValueError, match="class"):
        CoresetReweighter().fit(np.random.default_rng(0).standard_normal((20, 2)), np.zeros(20))
