"""Interval and quantile scores: conventions, identities and bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics import mean_pinball_loss

from weightstats.metrics import (
    interval_coverage,
    mean_interval_width,
    pinball_loss,
    quantile_crossing_rate,
    weighted_interval_score,
)

from .strategies import finite_floats


def test_pinball_matches_sklearn_level_by_level(rng):
    y = rng.standard_normal(50)
    levels = np.array([0.05, 0.3, 0.5, 0.9])
    pred = rng.standard_normal((50, 4))
    w = rng.uniform(0, 2, 50)
    ours = pinball_loss(y, pred, levels, sample_weight=w)
    expected = [mean_pinball_loss(y, pred[:, k], alpha=a, sample_weight=w)
                for k, a in enumerate(levels)]
    np.testing.assert_allclose(ours, expected, rtol=1e-13)
    assert pinball_loss(y, pred, levels, multioutput="uniform_average") == pytest.approx(
        np.mean(pinball_loss(y, pred, levels)))
    # A 1-d prediction with one level is scored like a single column.
    np.testing.assert_allclose(pinball_loss(y, pred[:, 0], 0.05, sample_weight=w), expected[:1])


def test_wis_by_hand_bracher_example():
    # y = 5, median 3, 50% interval [2, 4], 90% interval [0, 6] (alphas 0.5, 0.1).
    lower, upper, alpha = [[2.0, 0.0]], [[4.0, 6.0]], [0.5, 0.1]
    is_50 = (4 - 2) + 2 / 0.5 * (5 - 4)  # 6
    is_90 = 6 - 0  # inside
    expected = (0.5 * abs(5 - 3) + 0.25 * is_50 + 0.05 * is_90) / 2.5
    assert weighted_interval_score([5.0], lower, upper, alpha, median=[3.0]) == pytest.approx(
        expected)
    assert weighted_interval_score([5.0], lower, upper, alpha) == pytest.approx(
        (0.25 * is_50 + 0.05 * is_90) / 2)


@given(
    data=st.data(),
    n=st.integers(1, 20),
    alphas=st.lists(st.floats(0.01, 0.99), min_size=1, max_size=4, unique=True),
    with_median=st.booleans(),
)
def test_wis_is_twice_the_mean_pinball_loss(data, n, alphas, with_median):
    """Bracher's WIS = 2 x mean pinball over the levels alpha/2, 1 - alpha/2 (, 1/2)."""
    alphas = np.array(alphas)
    k = alphas.shape[0]
    y = data.draw(hnp.arrays(np.float64, n, elements=finite_floats()))
    lo = data.draw(hnp.arrays(np.float64, (n, k), elements=finite_floats()))
    width = data.draw(hnp.arrays(np.float64, (n, k), elements=st.floats(0, 1e3)))
    hi = lo + width
    median = data.draw(hnp.arrays(np.float64, n, elements=finite_floats())) if with_median else None
    wis = weighted_interval_score(y, lo, hi, alphas, median=median)
    levels = np.concatenate([alphas / 2, 1 - alphas / 2])
    preds = np.hstack([lo, hi])
    if with_median:
        levels = np.append(levels, 0.5)
        preds = np.column_stack([preds, median])
    mean_pinball = pinball_loss(y, preds, levels, multioutput="uniform_average")
    assert wis == pytest.approx(2 * mean_pinball, rel=1e-9, abs=1e-9)


@given(y=st.floats(-10, 10), lo=st.floats(-10, 10), width=st.floats(0, 10), a=st.floats(0.01, 0.99))
def test_interval_score_pinball_identity(y, lo, width, a):
    """alpha (u - l) + 2 dist(y, [l, u]) = 2 [psi_{a/2}(y - l) + psi_{1-a/2}(y - u)]."""
    hi = lo + width
    dist = max(lo - y, 0.0) + max(y - hi, 0.0)
    lhs = a * (hi - lo) + 2 * dist
    rhs = 2 * pinball_loss([y], [[lo, hi]], [a / 2, 1 - a / 2]).sum()
    assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-9)


def test_coverage_width_and_crossing():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    lo = np.column_stack([np.zeros(4), np.full(4, 1.0)])
    hi = np.column_stack([np.full(4, 2.0), np.full(4, 1.5)])
    np.testing.assert_allclose(interval_coverage(y, lo, hi), [0.75, 0.25])
    assert interval_coverage(y, lo[:, 0], hi[:, 0], sample_weight=[0, 0, 0, 1]) == 0.0
    np.testing.assert_allclose(mean_interval_width(lo, hi), [2.0, 0.5])
    pred = np.array([[1.0, 2.0, 2.0], [3.0, 2.0, 4.0], [0.0, 1.0, 0.5]])
    assert quantile_crossing_rate(pred) == pytest.approx(2 / 3)
    # Columns given in another order are put in level order first.
    assert quantile_crossing_rate(pred[:, [2, 0, 1]], quantiles=[0.9, 0.1, 0.5]) == pytest.approx(
        2 / 3)
    assert quantile_crossing_rate(np.sort(pred, axis=1)) == 0.0


@pytest.mark.parametrize(
    "score",
    [
        lambda y, lo, hi: interval_coverage(y, lo, hi),
        lambda y, lo, hi: mean_interval_width(lo, hi),
        lambda y, lo, hi: weighted_interval_score(y, lo, hi, [0.5, 0.1][: np.ndim(lo)]),
    ],
    ids=["coverage", "width", "wis"],
)
def test_inverted_intervals_raise_with_rows(score):
    """lower > upper used to count as covering nothing, with a negative width."""
    y = np.zeros(5)
    lo = np.column_stack([np.full(5, -1.0), np.full(5, -2.0)])
    hi = -lo
    lo[3, 1], lo[4, 0] = 3.0, 1.5  # rows 3 and 4 inverted
    with pytest.raises(ValueError, match=r"lower > upper in 2 of 5 rows \(first at row 3, "
                                         r"interval column 1: lower=3 > upper=2\)"):
        score(y, lo, hi)
    with pytest.raises(ValueError, match=r"in 1 of 5 rows \(first at row 4: lower=1.5 > upper=1\)"):
        score(y, lo[:, 0], hi[:, 0])
    score(y, np.minimum(lo, hi), np.maximum(lo, hi))  # ordered bounds are fine
    score(y, lo[:, 0] * 0, hi[:, 0] * 0)  # and so are empty intervals


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: pinball_loss([1.0, 2.0], [[1.0], [2.0]], [1.5]), "between 0 and 1"),
        (lambda: pinball_loss([1.0, 2.0], [[1.0, 2.0], [2.0, 3.0]], [0.5]), "columns"),
        (lambda: pinball_loss([1.0, np.nan], [1.0, 2.0], 0.5), "NaN"),
        (lambda: pinball_loss([1.0, 2.0], [1.0, 2.0, 3.0], 0.5), "same length"),
        (lambda: pinball_loss([], [], 0.5), "empty"),
        (lambda: pinball_loss([1.0, 2.0], [1.0, 2.0], 0.5, sample_weight=[-1, 1]), "(?i)negative"),
        (lambda: weighted_interval_score([1.0], [[0.0, 0.0]], [[1.0, 1.0]], 0.1),
         "one miscoverage"),
        (lambda: weighted_interval_score([1.0], [0.0], [np.inf], 0.1), "infinity"),
        (lambda: interval_coverage([1.0, 2.0], [0.0], [1.0]), "same length"),
        (lambda: quantile_crossing_rate([[1.0, 2.0]], quantiles=[0.5, 0.5]), "duplicated"),
        (lambda: quantile_crossing_rate([1.0, 2.0]), "2-d"),
    ],
)
def test_bad_input_raises_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
