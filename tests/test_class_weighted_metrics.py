"""Class-weighted precision/recall/F (weightstats.metrics._class_weighted)."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    classification_report,
    f1_score,
    make_scorer,
    precision_recall_fscore_support,
)
from sklearn.model_selection import GridSearchCV

from weightstats.metrics import (
    class_weighted_f1_score,
    class_weighted_precision_recall_fscore_support,
    class_weights,
    weighted_classification_report,
)

from .strategies import comonotone_scores, label_problems

ZERO_DIVISIONS = ["warn", 0.0, 1.0, np.nan]


def _run(func, *args, **kwargs):
    """Result and the warning messages ``func`` emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    return result, sorted({str(w.message) for w in caught})


@given(problem=label_problems(), zero_division=st.sampled_from(ZERO_DIVISIONS),
       beta=st.sampled_from([0.5, 1.0, 2.0]))
def test_equals_sklearn_for_macro_weighted_micro(problem, zero_division, beta):
    y_true, y_pred, labels, sample_weight = problem
    kwargs = dict(labels=labels, sample_weight=sample_weight, zero_division=zero_division,
                  beta=beta)
    vanishing = _weights_vanish(y_true, y_pred, **kwargs)
    for scheme in ("macro", "weighted", "micro"):
        if scheme == "weighted" and vanishing:
            # scikit-learn falls back to the plain mean there; we refuse.
            with pytest.raises(ValueError, match="sum to zero"):
                _run(class_weighted_precision_recall_fscore_support, y_true, y_pred,
                     scheme=scheme, **kwargs)
            continue
        ours, our_warnings = _run(
            class_weighted_precision_recall_fscore_support, y_true, y_pred, scheme=scheme,
            **kwargs)
        ref, ref_warnings = _run(
            precision_recall_fscore_support, y_true, y_pred, average=scheme, **kwargs)
        np.testing.assert_allclose(ours[:3], ref[:3], rtol=1e-12, atol=0, equal_nan=True)
        assert ours[3] is None and ref[3] is None
        assert our_warnings == ref_warnings
    # The power family contains both ends.
    kwargs.pop("beta")
    for exponent, average in ((0.0, "macro"), (1.0, "weighted")):
        if exponent == 1.0 and vanishing:
            continue
        ours = _run(class_weighted_f1_score, y_true, y_pred, scheme=exponent, **kwargs)[0]
        ref = _run(f1_score, y_true, y_pred, average=average, **kwargs)[0]
        np.testing.assert_allclose(ours, ref, rtol=1e-12, equal_nan=True)


def _weights_vanish(y_true, y_pred, **kwargs):
    """Whether the support weights of the labels with a defined P, R or F sum to zero."""
    *scores, supports = _run(precision_recall_fscore_support, y_true, y_pred, average=None,
                             **kwargs)[0]
    return any(
        np.any(~np.isnan(s)) and supports[~np.isnan(s)].sum() == 0 for s in scores
    )


def _weighted(scores, weights):
    return float(np.average(scores, weights=weights))


@given(problem=comonotone_scores())
def test_dodrans_and_entropy_lie_between_macro_and_weighted(problem):
    """With scores monotone in the support, raising the exponent moves the mean
    monotonically (Chebyshev's sum inequality), so dodrans lies between macro
    and support-weighted. Entropy does when no class holds more than 1/e of
    the samples (there -n log(n/N) grows with n); a large extra class of score
    equal to the mean keeps that condition without moving the averages."""
    supports, scores = problem
    y_true = np.repeat(np.arange(len(supports)), supports)
    macro = scores.mean()
    weighted = _weighted(scores, supports)
    low, high = min(macro, weighted) - 1e-12, max(macro, weighted) + 1e-12
    dodrans = _weighted(scores, class_weights(y_true, scheme="dodrans"))
    assert low <= dodrans <= high
    # Enlarge N with unlisted samples so every listed class has n_c / N <= 1/e.
    n_extra = int(np.ceil(np.e * supports.max())) - supports.sum()
    y_big = np.concatenate([y_true, np.full(max(n_extra, 0), -1)])
    entropy = _weighted(scores, class_weights(y_big, scheme="entropy",
                                              labels=np.arange(len(supports))))
    assert low <= entropy <= high


def test_entropy_can_leave_the_macro_weighted_interval():
    """The documented caveat: -n log(n/N) falls for n > N/e, so a dominant class
    gets less weight than a mid-sized one and the order can break."""
    supports = np.array([1, 30, 300])
    y_true = np.repeat(np.arange(3), supports)
    scores = np.array([0.0, 0.0, 1.0])  # monotone in the support
    macro, weighted = scores.mean(), _weighted(scores, supports)
    entropy = _weighted(scores, class_weights(y_true, scheme="entropy"))
    assert entropy < macro < weighted


def test_scores_computed_through_the_metric_follow_the_order():
    """End to end: a classifier that is better on frequent classes."""
    y_true = np.repeat([0, 1, 2, 3], [5, 10, 20, 40])
    rng = np.random.default_rng(0)
    accuracy = {0: 0.2, 1: 0.5, 2: 0.7, 3: 0.95}
    y_pred = np.array([t if rng.random() < accuracy[t] else (t + 1) % 4 for t in y_true])
    f1 = {s: class_weighted_f1_score(y_true, y_pred, scheme=s)
          for s in ("macro", "entropy", "dodrans", "weighted")}
    assert f1["macro"] < f1["entropy"] < f1["dodrans"] < f1["weighted"]


def test_class_weights_formulas():
    y = np.array(["a"] * 6 + ["b"] * 3 + ["c"])
    n = np.array([6.0, 3.0, 1.0])
    np.testing.assert_allclose(class_weights(y, scheme="macro"), np.full(3, 1 / 3))
    np.testing.assert_allclose(class_weights(y, scheme="weighted"), n / 10)
    np.testing.assert_allclose(class_weights(y, scheme="dodrans", normalize=False), n**0.75)
    np.testing.assert_allclose(class_weights(y, scheme=0.3, normalize=False), n**0.3)
    np.testing.assert_allclose(class_weights(y, scheme="entropy", normalize=False),
                               -n * np.log(n / 10))
    # Weighted counts: integer weights equal repeated rows.
    w = np.array([1, 1, 1, 1, 1, 1, 2, 2, 2, 3])
    np.testing.assert_allclose(class_weights(y, scheme="entropy", sample_weight=w),
                               class_weights(np.repeat(y, w), scheme="entropy"))


def test_n_counts_samples_of_excluded_labels():
    """With labels= leaving out "no_relation", N is still every sample (as in
    the authors' code); the supports are those of the kept labels."""
    y_true = np.array(["no_relation"] * 10 + ["founded"] * 3 + ["born_in"] * 2)
    y_pred = np.array(["no_relation"] * 9 + ["founded"] + ["founded", "founded", "born_in"]
                      + ["born_in", "no_relation"])
    labels = ["born_in", "founded"]
    n, big_n = np.array([2.0, 3.0]), 15.0
    expected_w = -n * np.log(n / big_n)
    np.testing.assert_allclose(
        class_weights(y_true, scheme="entropy", labels=labels, normalize=False), expected_w)
    _, _, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None)
    ours = class_weighted_f1_score(y_true, y_pred, scheme="entropy", labels=labels)
    assert ours == pytest.approx(np.average(f, weights=expected_w), rel=1e-12)
    # Had N counted only the kept labels (N = 5), the score would differ.
    assert ours != pytest.approx(np.average(f, weights=-n * np.log(n / 5.0)), rel=1e-6)


def test_callable_scheme_gets_supports_and_y_true():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 1, 0]
    seen = {}

    def inverse(supports, y):
        seen["supports"], seen["y"] = supports, y
        return 1.0 / supports

    _, _, f, _ = precision_recall_fscore_support(y_true, y_pred, average=None,
                                                 zero_division=0.0)
    ours = class_weighted_f1_score(y_true, y_pred, scheme=inverse, zero_division=0.0)
    np.testing.assert_array_equal(seen["supports"], [3, 2, 1])
    assert seen["y"] is y_true
    assert ours == pytest.approx(np.average(f, weights=[1 / 3, 1 / 2, 1]))


def test_multilabel_and_sparse_indicator_input():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 2, (40, 4))
    y_pred = rng.integers(0, 2, (40, 4))
    dense = class_weighted_f1_score(y_true, y_pred, scheme="entropy")
    sparse = class_weighted_f1_score(sp.csr_matrix(y_true), sp.csr_matrix(y_pred),
                                     scheme="entropy")
    _, _, f, s = precision_recall_fscore_support(y_true, y_pred, average=None)
    expected = np.average(f, weights=-s * np.log(s / 40))  # N = n_samples
    assert dense == pytest.approx(expected, rel=1e-12)
    assert sparse == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(class_weights(sp.csr_matrix(y_true), scheme="weighted"),
                               s / s.sum())
    samples = class_weighted_f1_score(y_true, y_pred, scheme="samples")
    assert samples == f1_score(y_true, y_pred, average="samples")


def test_binary_and_per_class_pass_through():
    y_true = ["spam", "ham", "spam", "ham", "ham"]
    y_pred = ["spam", "spam", "spam", "ham", "ham"]
    assert class_weighted_f1_score(y_true, y_pred, scheme="binary", pos_label="spam") == (
        f1_score(y_true, y_pred, pos_label="spam"))
    np.testing.assert_array_equal(class_weighted_f1_score(y_true, y_pred, scheme=None),
                                  f1_score(y_true, y_pred, average=None))


def test_pos_label_is_ignored_with_a_warning_for_class_schemes():
    with pytest.warns(UserWarning, match="pos_label='spam' is ignored"):
        class_weighted_f1_score(["spam", "ham"], ["spam", "spam"], scheme="dodrans",
                                pos_label="spam", zero_division=0.0)


def test_vanishing_class_weights_raise_in_every_function():
    """labels= naming only classes absent from y_true: every class weight is zero.
    The averaged scores used to fall back silently to the plain mean while
    class_weights raised on the same input; now both raise."""
    y_true, y_pred = [0, 0, 1], [0, 2, 2]
    for scheme in ("weighted", "dodrans", "entropy", 1.0):
        with pytest.raises(ValueError, match="sum to zero for these labels"):
            class_weighted_f1_score(y_true, y_pred, scheme=scheme, labels=[2, 3],
                                    zero_division=0.0)
        with pytest.raises(ValueError, match="sum to zero for these labels"):
            class_weights(y_true, scheme=scheme, labels=[2, 3])
    # One class holding every sample: all entropy weights vanish.
    with pytest.raises(ValueError, match="'entropy' class weights sum to zero"):
        class_weighted_f1_score([0, 0, 0], [0, 0, 1], scheme="entropy", zero_division=0.0)
    with pytest.raises(ValueError, match="'entropy' class weights sum to zero"):
        class_weights([0, 0, 0], scheme="entropy")
    # Zero sample weights count as absent.
    with pytest.raises(ValueError, match="sum to zero"):
        class_weighted_f1_score([0, 1, 2], [0, 1, 2], scheme="weighted", labels=[1, 2],
                                sample_weight=[1, 0, 0], zero_division=0.0)
    # Macro weights never vanish.
    assert class_weighted_f1_score(y_true, y_pred, scheme="macro", labels=[2, 3],
                                   zero_division=0.0) == 0.0


def test_out_of_range_multilabel_labels_raise_a_clear_error():
    Y = np.array([[1, 0, 1], [0, 1, 0]])
    for labels in ([0, 5], [-1], [0.5]):
        with pytest.raises(ValueError, match=r"(out of range|column indices).*\[0, 3\)"):
            class_weights(Y, labels=labels)
    np.testing.assert_allclose(class_weights(Y, labels=[2, 0], scheme="weighted"), [0.5, 0.5])
    with pytest.raises(ValueError, match=r"\[0, n labels\)"):  # scikit-learn's own check
        class_weighted_f1_score(Y, Y, labels=[0, 5])


@pytest.mark.parametrize(
    "scheme, match",
    [
        ("dodrans_typo", "scheme"),
        (-0.5, "scheme"),
        (True, "scheme"),
        (lambda s, y: np.zeros_like(s), "sum to zero"),
        (lambda s, y: -s, "negative"),
        (lambda s, y: s[:1], "one weight per label"),
        (lambda s, y: s * np.nan, "non-finite"),
    ],
)
def test_bad_schemes_raise(scheme, match):
    with pytest.raises(ValueError, match=match):
        class_weighted_f1_score([0, 1, 1], [0, 1, 0], scheme=scheme)


def test_other_bad_input_raises():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        class_weighted_f1_score([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="sum to zero"):
        class_weights([0, 0, 0], scheme="entropy")  # one class holds all samples
    with pytest.raises(ValueError, match="micro"):
        class_weights([0, 1], scheme="micro")
    with pytest.raises(ValueError, match="schemes"):
        weighted_classification_report([0, 1], [0, 1], schemes=("binary",))
    with pytest.raises(ValueError, match="target_names"):
        weighted_classification_report([0, 1], [0, 1], target_names=["a"])


def test_scorer_in_grid_search():
    X, y = make_classification(200, n_features=6, n_informative=4, n_classes=3,
                               weights=[0.7, 0.2, 0.1], random_state=0)
    scorer = make_scorer(class_weighted_f1_score, scheme="entropy")
    search = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.01, 1.0]},
                          scoring={"entropy": scorer, "macro": "f1_macro"}, refit="entropy",
                          cv=3).fit(X, y)
    assert set(search.cv_results_) >= {"mean_test_entropy", "mean_test_macro"}
    best = search.best_estimator_
    assert scorer(best, X, y) == pytest.approx(
        class_weighted_f1_score(y, best.predict(X), scheme="entropy"))


def test_report_agrees_with_sklearn_classification_report():
    rng = np.random.default_rng(3)
    y_true = rng.choice(["x", "y", "z"], 60, p=[0.6, 0.3, 0.1])
    y_pred = np.where(rng.random(60) < 0.7, y_true, rng.choice(["x", "y", "z"], 60))
    w = rng.uniform(0.5, 2, 60)
    ours = weighted_classification_report(y_true, y_pred, sample_weight=w, output_dict=True)
    ref = classification_report(y_true, y_pred, sample_weight=w, output_dict=True)
    for key in ("x", "y", "z", "macro avg", "weighted avg"):
        for column in ("precision", "recall", "f1-score", "support"):
            assert ours[key][column] == pytest.approx(ref[key][column], rel=1e-12)
    assert ours["accuracy"] == pytest.approx(ref["accuracy"])
    assert ours["dodrans avg"]["f1-score"] == pytest.approx(
        class_weighted_f1_score(y_true, y_pred, sample_weight=w))
    text = weighted_classification_report(y_true, y_pred, digits=3)
    ref_text = classification_report(y_true, y_pred, digits=3)
    # The shared rows are formatted the same way (scikit-learn's layout).
    for line in ref_text.splitlines():
        if line.strip():
            assert line in text.splitlines(), line
    assert "entropy avg" in text and "power 0.5 avg" in weighted_classification_report(
        y_true, y_pred, schemes=("macro", 0.5))


def test_report_with_excluded_label_has_micro_row():
    y_true = ["none", "a", "b", "none", "a"]
    y_pred = ["none", "a", "none", "a", "a"]
    report = weighted_classification_report(y_true, y_pred, labels=["a", "b"],
                                            zero_division=0.0, output_dict=True)
    assert "micro avg" in report and "accuracy" not in report
    assert report["micro avg"]["f1-score"] == pytest.approx(
        f1_score(y_true, y_pred, labels=["a", "b"], average="micro"))
