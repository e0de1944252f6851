"""Multi-class Brier score and ranked probability score."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss

from weightstats.metrics import multiclass_brier_score, ranked_probability_score


def _random_forecasts(rng, n, K):
    proba = rng.dirichlet(np.ones(K), size=n)
    y = rng.integers(0, K, n)
    return y, proba


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), K=st.integers(3, 6))
def test_brier_matches_sklearn_and_decomposes(seed, n, K):
    rng = np.random.default_rng(seed)
    y, proba = _random_forecasts(rng, n, K)
    labels = np.arange(K)
    score = multiclass_brier_score(y, proba, labels=labels)
    assert score == pytest.approx(brier_score_loss(y, proba, labels=labels), rel=1e-12)
    per_class = multiclass_brier_score(y, proba, labels=labels, per_class=True)
    assert per_class.sum() == pytest.approx(score, rel=1e-12)
    assert 0.0 <= score <= 2.0


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30), K=st.integers(2, 6))
def test_rps_bounds_and_binary_case(seed, n, K):
    rng = np.random.default_rng(seed)
    y, proba = _random_forecasts(rng, n, K)
    labels = np.arange(K)
    rps = ranked_probability_score(y, proba, labels=labels)
    assert 0.0 <= rps <= K - 1
    if K == 2:
        # one threshold: RPS is half the (two-class, summed) Brier score
        assert rps == pytest.approx(multiclass_brier_score(y, proba, labels=labels) / 2)


def test_rps_rewards_mass_near_the_observed_class():
    near = ranked_probability_score([0], [[0.5, 0.5, 0.0]], labels=[0, 1, 2])
    far = ranked_probability_score([0], [[0.5, 0.0, 0.5]], labels=[0, 1, 2])
    assert far > near
    assert multiclass_brier_score([0], [[0.5, 0.5, 0.0]], labels=[0, 1, 2]) == pytest.approx(
        multiclass_brier_score([0], [[0.5, 0.0, 0.5]], labels=[0, 1, 2])
    )


def test_integer_weights_equal_repetition(rng):
    y, proba = _random_forecasts(rng, 20, 4)
    w = rng.integers(0, 4, 20)
    w[0] = 1
    rep_y, rep_p = np.repeat(y, w), np.repeat(proba, w, axis=0)
    for metric in (multiclass_brier_score, ranked_probability_score):
        assert metric(y, proba, labels=range(4), sample_weight=w) == pytest.approx(
            metric(rep_y, rep_p, labels=range(4))
        )


def test_labels_from_categoricals_and_classifier_order():
    y = pd.Series(pd.Categorical(["lo", "hi", "mid"], categories=["lo", "mid", "hi"], ordered=True))
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7], [0.2, 0.6, 0.2]])
    explicit = ranked_probability_score(y.astype(str), proba, labels=["lo", "mid", "hi"])
    assert ranked_probability_score(y, proba) == pytest.approx(explicit)
    # Brier score: the order does not matter but the columns must match the labels
    assert multiclass_brier_score(y, proba) == pytest.approx(
        multiclass_brier_score(y.astype(str), proba, labels=["lo", "mid", "hi"])
    )
    # classes absent from y_true are fine when labels says which column is which
    assert multiclass_brier_score(["lo"], [[1.0, 0.0, 0.0]], labels=["lo", "mid", "hi"]) == 0.0


@pytest.mark.parametrize(
    "func, y, proba, kwargs, match",
    [
        (multiclass_brier_score, [0, 1], [[0.5, 0.5]], {}, "same length"),
        (multiclass_brier_score, [0, 1], [[0.5, 0.6], [0.5, 0.5]], {}, "sum to 1"),
        (multiclass_brier_score, [0, 1], [[1.5, -0.5], [0.5, 0.5]], {}, r"\[0, 1\]"),
        (multiclass_brier_score, [0, 1], [[0.2, 0.3, 0.5]] * 2, {}, "labels="),
        (multiclass_brier_score, [0, 7], [[0.2, 0.3, 0.5]] * 2, {"labels": [0, 1, 2]}, "not in"),
        (multiclass_brier_score, [0, np.nan], [[0.5, 0.5]] * 2, {}, "NaN"),
        (ranked_probability_score, ["a", "b"], [[0.5, 0.5]] * 2, {}, "classes=|order"),
    ],
)
def test_bad_input(func, y, proba, kwargs, match):
    with pytest.raises(ValueError, match=match):
        func(y, proba, **kwargs)
