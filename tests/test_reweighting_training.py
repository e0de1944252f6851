"""NumPy pieces of the training-weighting methods (issue 9), no torch needed:
class-balanced weights, logit adjustment, DS weights and Model Stock.

Unit tests check the exact rules against hand-computed values; hypothesis
checks invariances; slow tests run the small qualitative experiments with
their controls.
"""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LinearRegression, LogisticRegression, SGDClassifier
from sklearn.metrics import balanced_accuracy_score, recall_score

from weightstats.reweighting import (
    DSWeightSelfTraining,
    LogitAdjustedClassifier,
    class_balanced_weights,
    ds_weight_filter,
    ds_weights,
    model_stock,
    model_stock_linear,
)

from .strategies import permutations

# --------------------------------------------------------------------------
# class_balanced_weights


def test_class_balanced_weights_hand_computed():
    # beta = 0.5, counts (1, 2, 3): effective numbers 0.5, 0.75, 0.875,
    # raw weights 1, 2/3, 4/7; rescaled to sum 3.
    raw = np.array([1.0, 2.0 / 3.0, 4.0 / 7.0])
    np.testing.assert_allclose(
        class_balanced_weights([1, 2, 3], beta=0.5), raw / raw.sum() * 3, rtol=1e-15
    )


def test_class_balanced_weights_limits():
    counts = np.array([1000.0, 100.0, 10.0])
    np.testing.assert_array_equal(class_balanced_weights(counts, beta=0.0), np.ones(3))
    inverse = (1 / counts) / (1 / counts).sum() * 3
    np.testing.assert_allclose(class_balanced_weights(counts, beta=1 - 1e-12), inverse, rtol=1e-6)


def test_class_balanced_weights_reference_formula_at_default_beta():
    # The expression of the weight-balancing reference (np.power, then
    # normalise to sum C); ours avoids cancellation but must agree.
    counts = np.array([500, 158, 50, 16, 5])
    beta = 0.9999
    reference = (1.0 - beta) / (1.0 - np.power(beta, counts))
    reference = reference / reference.sum() * counts.size
    np.testing.assert_allclose(class_balanced_weights(counts), reference, rtol=1e-10)


@pytest.mark.parametrize("counts", [[3, 0, 2], [1, np.nan], [], [-1, 2]])
def test_class_balanced_weights_rejects_bad_counts(counts):
    with pytest.raises(ValueError, match="count"):
        class_balanced_weights(counts)


def test_class_balanced_weights_rejects_beta_one():
    with pytest.raises(ValueError, match="beta"):
        class_balanced_weights([1, 2], beta=1.0)


@given(
    counts=st.lists(st.integers(1, 10_000), min_size=2, max_size=8),
    beta=st.sampled_from([0.0, 0.5, 0.9, 0.999, 0.9999]),
    data=st.data(),
)
def test_class_balanced_weights_properties(counts, beta, data):
    counts = np.asarray(counts)
    weights = class_balanced_weights(counts, beta=beta)
    assert np.all(np.isfinite(weights)) and np.all(weights > 0)
    np.testing.assert_allclose(weights.sum(), counts.size, rtol=1e-12)
    # Rarer classes never get smaller weights.
    order = np.argsort(counts, kind="stable")
    assert np.all(np.diff(weights[order]) <= 1e-12)
    # Permuting the classes permutes the weights.
    perm = data.draw(permutations(counts.size))
    np.testing.assert_allclose(class_balanced_weights(counts[perm], beta=beta), weights[perm])


# --------------------------------------------------------------------------
# LogitAdjustedClassifier


class _FixedProba(ClassifierMixin, BaseEstimator):
    """A classifier with known probabilities, for exact checks."""

    def __init__(self, proba=(0.5, 0.5)):
        self.proba = proba

    def fit(self, X, y, sample_weight=None):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.tile(np.asarray(self.proba, dtype=float), (len(X), 1))


def test_logit_adjustment_hand_computed():
    X = np.zeros((4, 1))
    y = np.array([0, 0, 0, 1])  # prior (0.75, 0.25)
    model = LogitAdjustedClassifier(_FixedProba([0.6, 0.4]), tau=1.0).fit(X, y)
    np.testing.assert_allclose(model.class_prior_, [0.75, 0.25])
    # p / pi = (0.8, 1.6), renormalised (1/3, 2/3): the rare class wins.
    np.testing.assert_allclose(model.predict_proba(X[:1]), [[1 / 3, 2 / 3]], rtol=1e-12)
    assert model.predict(X[:1])[0] == 1
    # tau = 0 is the base classifier.
    model.set_params(tau=0.0)
    np.testing.assert_allclose(model.fit(X, y).predict_proba(X[:1]), [[0.6, 0.4]], rtol=1e-12)


def test_logit_adjustment_prior_from_sample_weight_and_explicit_prior():
    X = np.zeros((4, 1))
    y = np.array([0, 0, 1, 1])
    model = LogitAdjustedClassifier(_FixedProba([0.5, 0.5]))
    model.fit(X, y, sample_weight=[3, 3, 1, 1])
    np.testing.assert_allclose(model.class_prior_, [0.75, 0.25])
    model.set_params(prior=[1, 4]).fit(X, y)
    np.testing.assert_allclose(model.class_prior_, [0.2, 0.8])
    with pytest.raises(ValueError, match="one probability per class"):
        model.set_params(prior=[1, 2, 3]).fit(X, y)
    with pytest.raises(ValueError, match="positive"):
        model.set_params(prior=[0, 1]).fit(X, y)


def test_logit_adjustment_with_string_labels_and_clone():
    rng = np.random.default_rng(0)
    y = np.array(["rare"] * 10 + ["common"] * 90)
    X = rng.normal(size=(100, 2)) + (y == "rare")[:, None]
    model = clone(LogitAdjustedClassifier(LogisticRegression(), tau=0.5)).fit(X, y)
    assert set(model.predict(X)) <= {"rare", "common"}
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)


@pytest.mark.slow
def test_logit_adjustment_lifts_balanced_and_tail_accuracy_on_long_tailed_digits():
    """Control: the same logistic regression without adjustment."""
    X_train, y_train, X_test, y_test = _long_tailed_digits(seed=0)
    plain = LogisticRegression(max_iter=500).fit(X_train, y_train)
    adjusted = LogitAdjustedClassifier(LogisticRegression(max_iter=500)).fit(X_train, y_train)
    bal = [balanced_accuracy_score(y_test, m.predict(X_test)) for m in (plain, adjusted)]
    tail = [
        recall_score(y_test, m.predict(X_test), average=None)[-3:].mean()
        for m in (plain, adjusted)
    ]
    # Measured: balanced 0.772 -> 0.905, tail 0.35 -> 0.83.
    assert bal[1] > bal[0] + 0.08
    assert tail[1] > tail[0] + 0.3


def _long_tailed_digits(seed, ratio=50, n_max=100, n_test=60):
    """Digits with class c keeping n_max * ratio^(-c/9) training rows; a
    balanced test set of n_test rows per class."""
    X, y = load_digits(return_X_y=True)
    X = X / 16
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in range(10):
        rows = rng.permutation(np.flatnonzero(y == c))
        n_c = int(round(n_max * ratio ** (-c / 9)))
        test.extend(rows[:n_test])
        train.extend(rows[n_test : n_test + n_c])
    return X[train], y[train], X[test], y[test]


# --------------------------------------------------------------------------
# DS weights


def test_ds_weights_hand_computed():
    # mean valid loss 1.0; a zero loss gets 0, as in the reference code
    # (record_weights.py: "if loss == 0: w = 0"), not the clip value.
    np.testing.assert_array_equal(
        ds_weights([0.25, 1.0, 4.0, 0.0, 100.0], [0.5, 1.5]), [2.0, 1.0, 0.25, 0.0, 0.01]
    )
    np.testing.assert_array_equal(ds_weights([0.5], [1.0], max_weight=1.5), [1.5])
    # A mean valid loss of 0 makes every weight 0 (the reference's else branch).
    np.testing.assert_array_equal(ds_weights([0.0, 0.5], [0.0, 0.0]), [0.0, 0.0])


def test_ds_weights_rejects_bad_losses():
    with pytest.raises(ValueError, match="non-negative"):
        ds_weights([-1.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        ds_weights([np.nan], [1.0])
    with pytest.raises(ValueError, match="minimum|at least"):
        ds_weights([1.0], [])


def test_ds_weight_filter_follows_the_reference_rule():
    weights = np.array([1.0, 0.9, 1.2, 0.5, 1.5, 0.1, 1.05, 0.95, 0.8, 1.1, 0.0])
    # Deviations (w > 1 ? w : min(1/w, 5)) of the positive weights, sorted:
    # 1, 1.05, 1.0526, 1.1, 1.111, 1.2, 1.25, 1.5, 2, 5 -> the value at
    # int(0.8 * 10) = 8 is 2: keep deviations < 2; weight 0 is never kept.
    expected = np.array([1, 1, 1, 0, 1, 0, 1, 1, 1, 1, 0], dtype=bool)
    np.testing.assert_array_equal(ds_weight_filter(weights), expected)
    # Ties at the threshold are dropped, as in the reference.
    assert not ds_weight_filter(np.ones(5)).any()
    # The deviation of tiny weights is capped at max_deviation.
    capped = np.array([1.0, 1.0, 1.0, 0.01, 6.0])
    np.testing.assert_array_equal(ds_weight_filter(capped, quantile=0.6), [1, 1, 1, 0, 0])


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(2, 60),
    quantile=st.sampled_from([0.2, 0.5, 0.8]),
)
def test_ds_weight_properties(seed, n, quantile):
    rng = np.random.default_rng(seed)
    losses, valid = rng.exponential(size=n), rng.exponential(size=5)
    weights = ds_weights(losses, valid)
    assert np.all((weights >= 0) & (weights <= 2))
    # Weights fall as losses rise.
    order = np.argsort(losses)
    assert np.all(np.diff(weights[order]) <= 0)
    keep = ds_weight_filter(weights, quantile=quantile)
    assert keep.sum() <= int(n * quantile)
    # Scaling all losses together leaves the weights unchanged.
    np.testing.assert_allclose(ds_weights(3 * losses, 3 * valid), weights, rtol=1e-12)


def test_ds_self_training_without_unlabelled_rows_is_the_base_estimator():
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16, y[:300]
    model = DSWeightSelfTraining(LogisticRegression(max_iter=300), random_state=0).fit(X, y)
    base = LogisticRegression(max_iter=300).fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X), base.predict_proba(X))
    assert model.selected_.all() and model.pseudo_labeler_ is None


def test_ds_self_training_mechanics():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 200)
    X = rng.normal(loc=2.0 * y_true[:, None], size=(200, 2))
    y = np.where(np.arange(200) < 40, y_true, -1)
    model = DSWeightSelfTraining(LogisticRegression(), valid_size=10, random_state=0).fit(X, y)
    unlabelled = y == -1
    # The scorer saw exactly the 10 held-out labelled rows.
    assert model.scorer_.n_features_in_ == 2
    expected = ds_weight_filter(model.ds_weights_[unlabelled])
    np.testing.assert_array_equal(model.selected_[unlabelled], expected)
    assert np.all(model.transduction_[unlabelled][~expected] == -1)
    assert np.all(model.ds_weights_[~unlabelled] == 1.0)
    # A confidence threshold of 1 rejects every pseudo-label.
    strict = DSWeightSelfTraining(LogisticRegression(), threshold=1.0, random_state=0).fit(X, y)
    assert not strict.selected_[unlabelled].any()


def _semi_supervised(n=120, n_labels=40, seed=0):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n)
    X = rng.normal(loc=2.0 * y_true[:, None], size=(n, 2))
    return X, y_true, np.arange(n) < n_labels


def test_ds_self_training_without_labelled_rows_says_so():
    X, _, _ = _semi_supervised()
    with pytest.raises(ValueError, match="no labelled rows .*all 120 are -1"):
        DSWeightSelfTraining(LogisticRegression()).fit(X, -np.ones(120, dtype=int))


def test_ds_self_training_string_labels_follow_self_training_classifier():
    """The string "-1" used to become a class silently."""
    X, y_true, labelled = _semi_supervised()
    names = np.array(["ham", "spam"])[y_true]
    with pytest.raises(ValueError, match="dtype string"):
        DSWeightSelfTraining(LogisticRegression()).fit(X, np.where(labelled, names, "-1"))
    marked = np.where(labelled, names, "-1").astype(object)
    with pytest.raises(ValueError, match=r"string '-1' \(80 rows\).*number -1"):
        DSWeightSelfTraining(LogisticRegression()).fit(X, marked)
    y = np.array([name if keep else -1 for name, keep in zip(names, labelled)], dtype=object)
    model = DSWeightSelfTraining(LogisticRegression(), random_state=0).fit(X, y)
    assert list(model.classes_) == ["ham", "spam"]
    assert model.pseudo_labeler_ is not None and model.selected_[~labelled].any()
    assert set(model.transduction_[~labelled]) <= {"ham", "spam", -1}


def test_ds_self_training_checks_feature_names_at_predict():
    X, y_true, labelled = _semi_supervised()
    frame = pd.DataFrame(X, columns=["a", "b"])
    model = DSWeightSelfTraining(LogisticRegression(), random_state=0).fit(
        frame, np.where(labelled, y_true, -1))
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b"])
    np.testing.assert_array_equal(model.predict(frame), model.estimator_.predict(X))
    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(ValueError, match="same order"):
            getattr(model, method)(frame[["b", "a"]])
    with pytest.raises(ValueError, match="features"), pytest.warns(UserWarning, match="names"):
        model.predict(X[:, :1])


def test_ds_self_training_rejects_tiny_label_sets():
    X = np.arange(10.0).reshape(-1, 1)
    y = np.array([0, 1] + [-1] * 8)
    with pytest.raises(ValueError, match="valid set"):
        DSWeightSelfTraining(LogisticRegression(), valid_size=5).fit(X, y)


@pytest.mark.slow
def test_ds_filtering_drops_shifted_pseudo_labels_and_beats_no_filter():
    """Digits: 150 labels (50 of them the valid set), 1000 unlabelled rows of
    which 200 are colour-inverted (a shift the labeller mislabels, all of
    them). Controls: labels only, all pseudo-labels."""
    X, y = load_digits(return_X_y=True)
    X = X / 16
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    labelled, unlabelled, test = order[:150], order[150:1150], order[1150:]
    X_u = X[unlabelled].copy()
    shifted = np.zeros(len(unlabelled), dtype=bool)
    shifted[rng.choice(len(unlabelled), 200, replace=False)] = True
    X_u[shifted] = 1.0 - X_u[shifted]
    X_all = np.vstack([X[labelled], X_u])
    y_all = np.concatenate([y[labelled], -np.ones(len(unlabelled), dtype=int)])

    model = DSWeightSelfTraining(
        LogisticRegression(max_iter=1000), valid_size=50, random_state=0
    ).fit(X_all, y_all)
    kept = model.selected_[len(labelled) :]
    pseudo = model.pseudo_labeler_.predict(X_u)
    everything = LogisticRegression(max_iter=1000).fit(
        X_all, np.concatenate([y[labelled], pseudo])
    )
    labels_only = LogisticRegression(max_iter=1000).fit(X[labelled], y[labelled])
    scores = {
        name: m.score(X[test], y[test])
        for name, m in [("ds", model), ("all", everything), ("labels", labels_only)]
    }
    # Measured: 53 % of shifted rows kept vs 87 % of clean ones;
    # accuracy DS 0.934, all pseudo-labels 0.921, labels only 0.917.
    assert kept[shifted].mean() < kept[~shifted].mean() - 0.2
    assert scores["ds"] >= scores["all"] and scores["ds"] >= scores["labels"]


# --------------------------------------------------------------------------
# Model Stock


def test_model_stock_two_models_hand_computed():
    w0 = np.array([1.0, 1.0])
    tuned = [np.array([2.0, 1.0]), np.array([1.5, 2.0])]
    # offsets (1, 0), (0.5, 1): cos = 0.5 / sqrt(1.25); t = 2 cos / (1 + cos).
    cos = 0.5 / np.sqrt(1.25)
    t = 2 * cos / (1 + cos)
    merged, ratio = model_stock(w0, tuned, return_ratio=True)
    assert ratio == pytest.approx(t, rel=1e-15)
    np.testing.assert_allclose(merged, t * np.array([1.75, 1.5]) + (1 - t) * w0, rtol=1e-15)


def test_model_stock_three_models_uses_mean_pairwise_cosine():
    w0 = np.zeros(3)
    tuned = [np.array([1.0, 0, 0]), np.array([1.0, 1.0, 0]), np.array([0, 1.0, 0])]
    cos = np.mean([1 / np.sqrt(2), 0.0, 1 / np.sqrt(2)])
    t = 3 * cos / (1 + 2 * cos)
    merged, ratio = model_stock(w0, tuned, return_ratio=True)
    assert ratio == pytest.approx(t, rel=1e-14)
    np.testing.assert_allclose(merged, t * np.mean(tuned, axis=0), rtol=1e-14)


def test_model_stock_limits_and_dict_input():
    base = {"w": np.zeros((2, 2)), "steps": np.array(7)}
    same_direction = [
        {"w": np.ones((2, 2)), "steps": np.array(9)},
        {"w": 3 * np.ones((2, 2)), "steps": np.array(8)},
    ]
    merged, ratio = model_stock(base, same_direction, return_ratio=True)
    np.testing.assert_allclose(merged["w"], 2 * np.ones((2, 2)))  # cos = 1: the average
    assert ratio["w"] == pytest.approx(1.0) and ratio["steps"] is None
    assert merged["steps"] == 7 and merged["steps"].dtype == base["steps"].dtype
    opposite = [
        {"w": np.ones((2, 2)), "steps": np.array(1)},
        {"w": -np.ones((2, 2)), "steps": np.array(1)},
    ]
    np.testing.assert_array_equal(model_stock(base, opposite)["w"], base["w"])  # cos < 0: t = 0


def test_model_stock_filter_wise():
    w0 = np.zeros((2, 2))
    tuned = [np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])]
    merged, ratio = model_stock(w0, tuned, filter_wise=True, return_ratio=True)
    np.testing.assert_allclose(ratio, [1.0, 0.0])  # row 0 parallel, row 1 orthogonal
    np.testing.assert_allclose(merged, [[1.0, 0.0], [0.0, 0.0]])


def test_model_stock_input_errors():
    with pytest.raises(ValueError, match="at least two"):
        model_stock(np.zeros(2), [np.ones(2)])
    with pytest.raises(ValueError, match="shape"):
        model_stock(np.zeros(2), [np.ones(2), np.ones(3)])
    with pytest.raises(ValueError, match="same keys"):
        model_stock({"a": np.zeros(1)}, [{"a": np.ones(1)}, {"b": np.ones(1)}])
    with pytest.raises(ValueError, match="NaN"):
        model_stock(np.zeros(2), [np.ones(2), np.array([np.nan, 1.0])])


@given(seed=st.integers(0, 2**31 - 1), n_models=st.integers(2, 4), size=st.integers(1, 6))
def test_model_stock_properties(seed, n_models, size):
    rng = np.random.default_rng(seed)
    w0 = rng.normal(size=size)
    tuned = [w0 + rng.normal(size=size) for _ in range(n_models)]
    merged, t = model_stock(w0, tuned, return_ratio=True)
    assert 0.0 <= t <= 1.0
    # The merge lies on the segment between the anchor and the average.
    np.testing.assert_allclose(merged, t * np.mean(tuned, axis=0) + (1 - t) * w0, atol=1e-12)
    # Order of the fine-tuned models does not matter.
    np.testing.assert_allclose(model_stock(w0, tuned[::-1]), merged, atol=1e-12)
    # Translating every model translates the merge.
    shift = rng.normal(size=size)
    np.testing.assert_allclose(
        model_stock(w0 + shift, [w + shift for w in tuned]), merged + shift, atol=1e-9
    )


def test_model_stock_linear_merges_coef_and_intercept():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    base = LinearRegression().fit(X, [1.0, 2.0, 2.0])
    tuned = [LinearRegression().fit(X, [1.0, 3.0, 2.0]), LinearRegression().fit(X, [1.0, 2.5, 3.0])]
    merged = model_stock_linear(base, tuned)
    expected = model_stock(base.coef_, [m.coef_ for m in tuned])
    np.testing.assert_allclose(merged.coef_, expected)
    assert merged is not base
    np.testing.assert_allclose(base.coef_, [1.0, 1.0])
    assert isinstance(merged.intercept_, float)


def test_model_stock_linear_needs_matching_classes():
    X = np.random.default_rng(0).normal(size=(30, 2))
    a = SGDClassifier(random_state=0).fit(X, np.arange(30) % 2)
    b = SGDClassifier(random_state=0).fit(X, np.arange(30) % 3)
    with pytest.raises(ValueError, match="classes_"):
        model_stock_linear(a, [a, b])
