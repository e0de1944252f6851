"""Weight tools and diagnostics for any weights: weight_summary, trim_weights, checked
against hand computations and properties."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weightstats.balancing import (
    BalanceWarning,
    EntropyBalancer,
    IPMBalancer,
    OverlapWarning,
    PropensityBalancer,
    UniformTransformerEstimator,
    WeightSummary,
    balance_table,
    check_weighting,
    love_plot,
    trim_weights,
    weight_summary,
)
from weightstats.balancing._weights import _quantile_type3
from weightstats.datasets import load_lalonde, make_kang_schafer

from .strategies import binary_treatments


def _kish(w):
    return w.sum() ** 2 / (w**2).sum()


# --------------------------------------------------------------------- weight_summary


def test_weight_summary_matches_hand_computation():
    rng = np.random.default_rng(0)
    t = np.r_[np.ones(30), np.zeros(50)].astype(int)
    w = np.r_[np.ones(30), rng.exponential(size=50)]
    w[35] = 0.0
    summary = weight_summary(w, t, top=3)
    table = summary.table
    assert list(table.index) == ["treated", "control"]
    c = w[t == 0]
    row = table.loc["control"]
    assert row["n"] == 50 and row["n_zero"] == 1
    assert row["min"] == 0.0 and row["max"] == pytest.approx(c.max())
    assert row["mean"] == pytest.approx(c.mean())
    # WeightIt: sd with divisor n - 1 over the mean; MAD of w / mean; entropy of
    # the positive weights scaled to mean one.
    assert row["cv"] == pytest.approx(np.std(c, ddof=1) / c.mean())
    assert row["mad"] == pytest.approx(np.mean(np.abs(c / c.mean() - 1)))
    v = c[c > 0] / c[c > 0].mean()
    assert row["entropy"] == pytest.approx(np.mean(v * np.log(v)))
    assert row["ess"] == pytest.approx(_kish(c))
    assert row["ess_share"] == pytest.approx(_kish(c) / 50)
    treated_row = table.loc["treated"]
    assert treated_row["cv"] == 0 and treated_row["ess"] == 30 and treated_row["ess_share"] == 1
    largest = summary.largest
    assert list(largest.columns) == ["arm", "row", "weight"]
    top_controls = largest[largest["arm"] == "control"]
    expected = np.argsort(-w * (t == 0), kind="stable")[:3]
    assert top_controls["row"].tolist() == expected.tolist()
    np.testing.assert_allclose(top_controls["weight"], w[expected])
    assert (largest["arm"] == "treated").sum() == 3


def test_weight_summary_with_sample_weights_and_labels():
    t = pd.Series([1, 1, 0, 0, 0], index=list("abcde"))
    w = np.array([1.0, 1.0, 0.5, 2.0, 0.5])
    s = np.array([1.0, 1.0, 2.0, 1.0, 1.0])
    summary = weight_summary(w, t, sample_weight=s, top=2)
    ww = (w * s)[2:]
    assert summary.table.loc["control", "ess"] == pytest.approx(_kish(ww))
    # The share compares with the arm's size in sample weights: Kish of s.
    assert summary.table.loc["control", "ess_share"] == pytest.approx(_kish(ww) / _kish(s[2:]))
    assert summary.largest["row"].tolist() == ["a", "b", "d", "c"]
    # The statistics are of the final weights s * w (as WeightIt's and the balancers' ess_).
    assert summary.table.loc["control", "max"] == 2.0 and summary.table.loc["control", "n"] == 3
    single = weight_summary(pd.Series(w, index=list("vwxyz")), top=1)
    assert list(single.table.index) == ["all"] and single.largest["row"].tolist() == ["y"]


def test_weight_summary_prints_and_serialises():
    summary = weight_summary([1.0, 1.0, 1.0, 0.5, 2.0, 0.5], [1, 1, 1, 0, 0, 0], top=2)
    text = str(summary)
    assert text == summary.as_text() == repr(summary)
    for piece in ("Summary of weights", "ess_share", "treated", "control", "66.7%"):
        assert piece in text, piece
    assert "<table" in summary._repr_html_()
    plain = summary.to_dict()
    assert json.loads(json.dumps(plain)) == plain
    assert plain["arms"]["control"]["n"] == 3 and isinstance(plain["arms"]["control"]["n"], int)
    assert plain["largest"][2] == {"arm": "control", "row": 4, "weight": 2.0}


def test_weight_summary_rejects_bad_input():
    with pytest.raises(ValueError, match="non-negative"):
        weight_summary([1.0, -1.0], [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        weight_summary([1.0, np.nan], [0, 1])
    with pytest.raises(ValueError, match="no positive weight"):
        weight_summary([1.0, 0.0, 0.0], [1, 0, 0])
    with pytest.raises(ValueError, match="top must be"):
        weight_summary([1.0, 1.0], [0, 1], top=-1)
    with pytest.raises(ValueError, match="same length"):
        weight_summary([1.0, 1.0, 1.0], [0, 1])


@pytest.mark.parametrize("make", [
    lambda: IPMBalancer(), lambda: EntropyBalancer(), lambda: PropensityBalancer(estimand="ATT"),
    lambda: UniformTransformerEstimator(),
], ids=["IPMBalancer", "EntropyBalancer", "PropensityBalancer", "UniformTransformerEstimator"])
def test_every_balancer_summarises_its_weights(make):
    ks = make_kang_schafer(200, random_state=0)
    X = pd.DataFrame(ks.data, columns=[f"x{j}" for j in range(4)],
                     index=[f"unit{i}" for i in range(200)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make().fit(X, ks.treatment)
    summary = est.weight_summary(top=4)
    assert isinstance(summary, WeightSummary)
    direct = weight_summary(pd.Series(est.weights_, index=X.index), ks.treatment, top=4)
    pd.testing.assert_frame_equal(summary.table, direct.table)
    pd.testing.assert_frame_equal(summary.largest, direct.largest)
    assert summary.largest["row"].str.startswith("unit").all()
    assert summary.table.loc["control", "ess"] == pytest.approx(est.ess_["control"])
    # Without an index the rows are positions.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = make().fit(ks.data, ks.treatment).weight_summary()
    assert plain.largest["row"].map(type).eq(int).all()


# --------------------------------------------------------------------- trim_weights


def test_quantile_matches_numpy_type3_and_repeated_rows():
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 7, 10, 100, 101):
        x = rng.exponential(size=n)
        for p in (0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
            expected = np.quantile(x, p, method="closest_observation")
            assert _quantile_type3(x, np.ones(n), p) == expected, (n, p)
    x = rng.exponential(size=20)
    counts = rng.integers(1, 4, size=20)
    for p in (0.5, 0.8, 0.9, 0.99):
        assert _quantile_type3(x, counts.astype(float), p) == np.quantile(
            np.repeat(x, counts), p, method="closest_observation")


def test_trim_at_a_quantile_is_weightits_trim_rescaled():
    rng = np.random.default_rng(2)
    t = np.r_[np.ones(40), np.zeros(200)].astype(int)
    w = np.r_[np.ones(40), rng.lognormal(sigma=1.5, size=200)]
    trimmed = trim_weights(w, t, at=0.9)
    c = w[t == 0]
    q = np.quantile(c, 0.9, method="closest_observation")
    winsorised = np.minimum(c, q)  # WeightIt: trim(w, at = .9, treat = t)
    np.testing.assert_allclose(trimmed[t == 0], winsorised * c.sum() / winsorised.sum())
    np.testing.assert_array_equal(trimmed[t == 1], 1.0)  # the focal group is left alone
    assert trimmed[t == 0].sum() == pytest.approx(c.sum())
    assert np.count_nonzero(winsorised == q) == np.count_nonzero(c >= q)
    # at < 0.5 means 1 - at, as in WeightIt.
    np.testing.assert_array_equal(trim_weights(w, t, at=0.1), trimmed)
    # lower=True also raises the smallest weights to the 10% quantile.
    both = trim_weights(w, t, at=0.9, lower=True)
    lo = np.quantile(c, 0.1, method="closest_observation")
    expected = np.clip(c, lo, q)
    np.testing.assert_allclose(both[t == 0], expected * c.sum() / expected.sum())


def test_trim_a_count_sets_the_largest_to_the_next():
    t = np.array([1, 1, 0, 0, 0, 0, 0])
    w = np.array([1.0, 1.0, 0.5, 0.1, 3.0, 0.9, 0.5])
    out = trim_weights(w, t, at=2)
    expected = np.array([0.5, 0.1, 0.5, 0.5, 0.5])  # 3.0 and 0.9 set to 0.5
    np.testing.assert_allclose(out[2:], expected * 5.0 / expected.sum())
    out = trim_weights(w, t, at=1, lower=True)
    expected = np.array([0.5, 0.5, 0.9, 0.9, 0.5])  # top to 0.9, bottom (0.1) to 0.5
    np.testing.assert_allclose(out[2:], expected * 5.0 / expected.sum())
    with pytest.raises(ValueError, match="smaller than the number of control weights"):
        trim_weights(w, t, at=5)


def test_trim_arms_follow_the_estimand():
    t = np.r_[np.ones(5), np.zeros(5)].astype(int)
    w = np.array([1, 1, 1, 1, 9, 1, 2, 3, 4, 20], dtype=float)
    att = trim_weights(w, t, at=1, estimand="ATT")
    np.testing.assert_array_equal(att[:5], w[:5])
    atc = trim_weights(w, t, at=1, estimand="ATC")
    np.testing.assert_array_equal(atc[5:], w[5:])
    assert atc[:5].max() == pytest.approx(atc[:5].min())  # 9 -> 1: all equal
    ate = trim_weights(w, t, at=1, estimand="ATE")
    np.testing.assert_array_equal(ate[:5], atc[:5])
    np.testing.assert_array_equal(ate[5:], att[5:])
    np.testing.assert_array_equal(trim_weights(w, t, at=1), ate)  # None: arms that vary
    pooled = trim_weights(w, at=1)  # one group: only the 20 moves, to 9
    np.testing.assert_allclose(pooled, np.where(w == 20, 9, w) * w.sum() / (w.sum() - 11))


def test_trim_at_max_weight_caps_after_rescaling():
    t = np.r_[np.ones(3), np.zeros(5)]
    w = np.r_[np.ones(3), [0.1, 0.2, 0.3, 0.4, 2.0]]
    out = trim_weights(w, t, max_weight=1.0)
    # Hand computation: cap 2.0 at 1, then the rest (sum 1.0) must scale to 2.0,
    # which pushes 0.4 and 0.3 to 0.8 and 0.6 < 1: the scale is 2.
    np.testing.assert_allclose(out[3:], [0.2, 0.4, 0.6, 0.8, 1.0])
    out = trim_weights(w, t, max_weight=0.7)
    assert out[3:].max() <= 0.7 + 1e-12 and out[3:].sum() == pytest.approx(3.0)
    # k = 3 capped: the rest (0.1 + 0.2) scale by (3 - 3 * 0.7) / 0.3 = 3.
    np.testing.assert_allclose(out[3:], [0.3, 0.6, 0.7, 0.7, 0.7])
    # The mean weight (3 / 5) is the smallest feasible cap: all equal.
    np.testing.assert_allclose(trim_weights(w, t, max_weight=0.6)[3:], 0.6)
    with pytest.raises(ValueError, match=r"max_weight=0.5 is infeasible.*>= 0\.6"):
        trim_weights(w, t, max_weight=0.5)
    # Weights already below the cap are unchanged.
    np.testing.assert_allclose(trim_weights(w, t, max_weight=5.0), w)


def test_trim_keeps_series_and_sample_weight_totals():
    rng = np.random.default_rng(3)
    t = np.r_[np.ones(20), np.zeros(60)].astype(int)
    w = pd.Series(np.r_[np.ones(20), rng.exponential(size=60)], index=np.arange(80) + 100,
                  name="w")
    s = rng.integers(1, 4, size=80).astype(float)
    out = trim_weights(w, t, at=0.9, sample_weight=s)
    assert isinstance(out, pd.Series) and out.index.equals(w.index) and out.name == "w"
    assert (s * out)[t == 0].sum() == pytest.approx((s * w)[t == 0].sum())
    rows = np.repeat(np.arange(80), s.astype(int))
    repeated = trim_weights(w.to_numpy()[rows], t[rows], at=0.9)
    np.testing.assert_allclose(out.to_numpy()[rows], repeated)


def test_trim_rejects_bad_input():
    t, w = np.array([0, 0, 1, 1]), np.array([1.0, 2.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="exactly one of at"):
        trim_weights(w, t)
    with pytest.raises(ValueError, match="exactly one of at"):
        trim_weights(w, t, at=0.9, max_weight=2.0)
    with pytest.raises(ValueError, match="must be an integer"):
        trim_weights(w, t, at=1.5)
    for bad in (0, -1, np.inf, True):
        with pytest.raises(ValueError, match="at must be"):
            trim_weights(w, t, at=bad)
    with pytest.raises(ValueError, match="max_weight must be a positive"):
        trim_weights(w, t, max_weight=0)
    with pytest.raises(ValueError, match="estimand must be"):
        trim_weights(w, t, at=0.9, estimand="ATM")
    with pytest.raises(ValueError, match="lower=True needs at"):
        trim_weights(w, t, max_weight=3.0, lower=True)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_trimming_never_lowers_the_effective_sample_size(data):
    """Capping weights at c raises Kish's ESS, more so the lower c: d log ESS / dc has
    the sign of sum over uncapped w (w - c) <= 0."""
    n = data.draw(st.integers(6, 40))
    t = data.draw(binary_treatments(n, min_per_group=3))
    rng = np.random.default_rng(data.draw(st.integers(0, 10**6)))
    w = rng.lognormal(sigma=data.draw(st.floats(0.1, 3.0)), size=n)
    before = weight_summary(w, t).table["ess"]
    at = data.draw(st.sampled_from([0.5, 0.8, 0.95, 0.99, 1, 2]))
    lower = data.draw(st.booleans())
    trimmed = trim_weights(w, t, at=at, lower=lower and at < 1)
    after = weight_summary(trimmed, t).table["ess"]
    assert np.all(after >= before * (1 - 1e-12))
    for arm in (0, 1):
        assert trimmed[t == arm].sum() == pytest.approx(w[t == arm].sum())
    cap = data.draw(st.floats(1.0, 5.0)) * max(w[t == 0].mean(), w[t == 1].mean())
    capped = trim_weights(w, t, max_weight=cap)
    assert capped.max() <= cap * (1 + 1e-9)
    assert np.all(weight_summary(capped, t).table["ess"] >= before * (1 - 1e-12))


# --------------------------------------------------------------------- balance_table options


def _smd_by_hand(x, t, w, estimand="ATT"):
    treated = t == 1
    m1 = np.average(x[treated], weights=w[treated])
    m0 = np.average(x[~treated], weights=w[~treated])
    v1, v0 = np.var(x[treated], ddof=1), np.var(x[~treated], ddof=1)
    sd = np.sqrt(v1) if estimand == "ATT" else np.sqrt((v1 + v0) / 2)
    return (m1 - m0) / sd


def test_balance_table_interactions_squares_and_threshold_by_hand():
    rng = np.random.default_rng(4)
    n = 300
    X = pd.DataFrame({"age": rng.normal(40, 10, n), "black": rng.integers(0, 2, n),
                      "income": rng.exponential(1e4, n)})
    t = (rng.uniform(size=n) < 0.4).astype(int)
    w = rng.uniform(0.2, 3, n)
    table = balance_table(X, t, w, interactions=True, squares=True, threshold=0.1,
                          estimand="ATE")
    # Squares of the non-binary covariates only, then every pair.
    assert list(table.index) == ["age", "black", "income", "age^2", "income^2",
                                 "age * black", "age * income", "black * income"]
    terms = {"age^2": X["age"] ** 2, "income^2": X["income"] ** 2,
             "age * black": X["age"] * X["black"], "age * income": X["age"] * X["income"],
             "black * income": X["black"] * X["income"]}
    for name, column in terms.items():
        expected = _smd_by_hand(column.to_numpy(), t, w, "ATE")
        assert table.loc[name, "smd_after"] == pytest.approx(expected, rel=1e-9), name
        assert table.loc[name, "smd_before"] == pytest.approx(
            _smd_by_hand(column.to_numpy(), t, np.ones(n), "ATE"), rel=1e-9)
    flagged = table["smd_after"].abs() > 0.1
    assert (table["balance"] == np.where(flagged, "not balanced", "balanced")).all()
    assert table.attrs["balance_tally"] == {"balanced": int((~flagged).sum()),
                                            "not balanced": int(flagged.sum())}
    assert table.attrs["threshold"] == 0.1
    # Off by default; the balancers pass the options through.
    assert "balance" not in balance_table(X, t, w).columns
    eb = EntropyBalancer().fit(X, t)
    from_balancer = eb.balance_table(squares=True, threshold=0.05)
    assert from_balancer.loc["age", "balance"] == "balanced"
    assert len(from_balancer) == 5
    with pytest.raises(ValueError, match="threshold must be"):
        balance_table(X, t, threshold=-1)


def test_balance_table_of_a_constant_column_is_exactly_balanced():
    X = np.column_stack([np.arange(10.0), np.full(10, 0.3)])
    t = np.arange(10) % 2
    table = balance_table(X, t, np.linspace(0.5, 2, 10))
    assert table.loc["x1", "smd_after"] == 0 and table.loc["x1", "ks_after"] == 0
    assert table.loc["x1", "mean_control"] == 0.3


# --------------------------------------------------------------------- BalanceWarning


def _balance_warnings(fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit()
    return [str(w.message) for w in caught if issubclass(w.category, BalanceWarning)]


def test_ess_collapse_warns_at_default_settings():
    """One outlier of 1e12 in a treated unit's covariate inflates that covariate's
    scale: IPM control ESS falls from 17 to 5.5 (of about 200), with a warning."""
    ks = make_kang_schafer(400, misspecified=False, random_state=0)
    X = ks.data.copy()
    assert _balance_warnings(lambda: IPMBalancer().fit(X, ks.treatment)) == []
    X[np.flatnonzero(ks.treatment == 1)[0], 3] = 1e12
    messages = _balance_warnings(lambda: IPMBalancer().fit(X, ks.treatment))
    assert any(m.startswith("the control arm's effective sample size after weighting is 5.")
               for m in messages), messages


def test_ess_collapse_of_inverse_propensity_weights_warns_at_default_settings():
    """Strong selection (log-odds 8 x): the ATE weights 1 / (1 - e) of the few controls
    with large x carry the control arm (ESS 3.2 of 505)."""
    from scipy.special import expit

    rng = np.random.default_rng(2)
    x = rng.standard_normal((1000, 1))
    t = (rng.uniform(size=1000) < expit(8 * x[:, 0])).astype(int)
    messages = _balance_warnings(lambda: PropensityBalancer().fit(x, t))
    assert len(messages) == 1
    assert messages[0].startswith("the control arm's effective sample size after weighting is "
                                  "3.22, 0.64% of 505")


def test_ess_collapse_rule_by_hand():
    """Below 5% of min(arm size, target size): for ATT with 40 treated and 400
    controls, a control ESS under 2; k equal weights (the rest 0) give ESS k."""
    t = np.r_[np.ones(40), np.zeros(400)].astype(int)
    X = (np.arange(440) % 7.0)[:, None]
    for k, fires in ((1, True), (2, False), (3, False)):
        w = np.r_[np.ones(40), np.zeros(400)]
        w[40:40 + k] = 40.0 / k
        problems = check_weighting(X, t, w, warn=False)
        assert any("control arm's effective sample size" in p for p in problems) == fires, k
    # ATE: each arm against its own size (the target, everyone, is larger).
    w = np.r_[np.ones(40), np.zeros(400)]
    w[40:59] = 1.0  # 19 of 400 controls: 4.75%
    problems = check_weighting(X, t, w, estimand="ATE", warn=False)
    assert any("control arm's effective sample size after weighting is 19, 4.8% of 400" in p
               for p in problems)
    assert not any("treated arm" in p for p in problems)


def test_worse_balance_warns_at_default_settings_and_names_the_covariate():
    """Inverse probability weights from a misspecified logistic model (Kang-Schafer's
    transformed covariates) make x2 less balanced than before."""
    ks = make_kang_schafer(1000, misspecified=True, random_state=6)
    messages = _balance_warnings(lambda: PropensityBalancer().fit(ks.data, ks.treatment))
    assert len(messages) == 1
    assert messages[0].startswith("balance got worse after weighting on covariate(s) x2 "
                                  "(|SMD| 0.105 -> 0.342)")


def test_worse_balance_rule_by_hand():
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"age": rng.standard_normal(2000), "noise": rng.standard_normal(2000)})
    t = (rng.uniform(size=2000) < 0.5).astype(int)
    # Up-weighting old controls pushes the control mean of age up: worse balance.
    w = np.where((t == 0) & (X["age"] > 1), 6.0, 1.0)
    problems = check_weighting(X, t, w, warn=False)
    assert len(problems) == 1 and "covariate(s) age (|SMD|" in problems[0]
    assert "noise" not in problems[0]
    table = balance_table(X, t, w)
    ess = table.attrs["ess"]["after"]
    noise = np.sqrt(1 / ess["treated"] + 1 / ess["control"])
    assert abs(table.loc["age", "smd_after"]) > max(0.1, 2.576 * noise)
    with pytest.warns(BalanceWarning, match="age"):
        check_weighting(X, t, w)
    # Uniform weights never trip either rule.
    assert check_weighting(X, t, np.ones(2000), warn=False) == []


@pytest.mark.parametrize("make", [
    lambda: EntropyBalancer(), lambda: PropensityBalancer(estimand="ATT"),
    lambda: PropensityBalancer(estimand="ATO"),
    lambda: UniformTransformerEstimator(transformation="ot", random_state=0),
], ids=["EntropyBalancer", "PropensityBalancer-ATT", "PropensityBalancer-ATO",
        "UniformTransformerEstimator-ot"])
def test_sensible_default_fits_do_not_warn(make):
    for ks in (make_kang_schafer(1000, random_state=0),
               make_kang_schafer(1000, misspecified=True, random_state=0)):
        assert _balance_warnings(lambda: make().fit(ks.data, ks.treatment)) == []
    data = load_lalonde(controls="cps")
    if not isinstance(make(), UniformTransformerEstimator):
        assert _balance_warnings(lambda: make().fit(data.data, data.treatment)) == []


# --------------------------------------------------------------------- love plot


@pytest.mark.requires("matplotlib")
def test_love_plot_compares_several_weight_sets():
    import matplotlib.pyplot as plt

    ks = make_kang_schafer(300, random_state=0)
    X, t = ks.data, ks.treatment
    eb = EntropyBalancer().fit(X, t)
    ipw = PropensityBalancer(estimand="ATT").fit(X, t)
    sets = {"entropy": eb, "IPW": ipw.weights_, "table": balance_table(X, t, ipw.weights_)}
    ax = love_plot(sets, X=X, treatment=t)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["unadjusted", "entropy", "IPW", "table"]
    assert len(ax.collections) == 4  # unadjusted + three sets
    # Points are the |SMD| of each set, in the order of the imbalance before weighting.
    table = eb.balance_table()
    order = np.argsort(table["smd_before"].abs().to_numpy())
    np.testing.assert_allclose(ax.collections[1].get_offsets()[:, 0],
                               table["smd_after"].abs().to_numpy()[order])
    assert [tick.get_text() for tick in ax.get_yticklabels()] == list(table.index[order])
    plt.close(ax.figure)
    ax = love_plot({"entropy": eb}, squares=True, interactions=True, stat="ks")
    assert len(ax.get_yticklabels()) == 4 + 4 + 6
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="pass X= and treatment="):
        love_plot({"w": ipw.weights_})
    with pytest.raises(ValueError, match="different covariates"):
        love_plot({"a": eb, "b": balance_table(X[:, :2], t)})
    with pytest.raises(ValueError, match="non-empty dict"):
        love_plot({})
