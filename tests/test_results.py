import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from weightstats.utils import EstimateResults, Summary


def test_scalar_wald_inference_matches_scipy():
    res = EstimateResults(1.2, 0.4, names=["ATT"], title="Effect")
    assert res.estimate == 1.2 and res.se == 0.4
    assert res.statistic == pytest.approx(3.0)
    assert res.pvalue == pytest.approx(2 * stats.norm.sf(3.0))
    lo, hi = res.conf_int(0.1)
    assert (lo, hi) == pytest.approx((1.2 - 0.4 * stats.norm.ppf(0.95), 1.2 + 0.4 * stats.norm.ppf(0.95)))


def test_t_distribution_and_vector_estimates():
    res = EstimateResults([1.0, -2.0], [0.5, 1.0], names=["a", "b"], df=10, null_value=[0, -1])
    np.testing.assert_allclose(res.statistic, [2.0, -1.0])
    np.testing.assert_allclose(res.pvalue, 2 * stats.t(10).sf([2.0, 1.0]))
    assert res.conf_int().shape == (2, 2)
    frame = res.summary_frame()
    assert list(frame.index) == ["a", "b"]
    assert list(frame.columns) == ["estimate", "se", "statistic", "pvalue", "ci_lower", "ci_upper"]


def test_percentile_intervals_need_bootstrap():
    rng = np.random.default_rng(0)
    boot = rng.normal(1.0, 0.5, size=2000)
    res = EstimateResults(1.0, boot.std(), bootstrap_estimates=boot[:, None])
    lo, hi = res.conf_int(0.05, method="percentile")
    assert (lo, hi) == pytest.approx(tuple(np.quantile(boot, [0.025, 0.975])))
    assert "percentile" in str(res.summary(method="percentile"))
    with pytest.raises(ValueError, match="bootstrap replicates"):
        EstimateResults(1.0, 0.1).conf_int(method="percentile")


def test_summary_text_and_html():
    res = EstimateResults(3.0, 1.0, names=["ATE"], title="Treatment effect",
                          info={"method": "IPW", "n": 100}, notes=["SEs treat weights as fixed."])
    text = str(res.summary())
    for piece in ("Treatment effect", "method: IPW", "ATE", "[0.025", "0.975]", "P>|z|", "weights as fixed"):
        assert piece in text
    html = res.summary()._repr_html_()
    assert "<table" in html and "Treatment effect" in html
    assert res._repr_html_() == html
    assert isinstance(res.summary(), Summary)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"estimate": np.nan, "se": 1.0}, "NaN"),
        ({"estimate": 1.0, "se": -1.0}, "non-negative"),
        ({"estimate": [1.0, 2.0], "se": 1.0, "names": ["a"]}, "names"),
        ({"estimate": 1.0, "se": 1.0, "df": 0}, "df"),
    ],
)
def test_invalid_results_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EstimateResults(**kwargs)


def test_zero_standard_error_is_reported_not_nan():
    res = EstimateResults([0.0, 1.0], [0.0, 0.0])
    assert res.statistic[0] == 0.0 and np.isinf(res.statistic[1])
    assert res.pvalue[0] == 1.0 and res.pvalue[1] == 0.0
    with pytest.raises(ValueError, match="alpha"):
        res.conf_int(1.5)


@given(
    est=st.floats(-1e6, 1e6), se=st.floats(1e-6, 1e6), a1=st.floats(0.01, 0.5), a2=st.floats(0.01, 0.5)
)
def test_intervals_nest_and_contain_estimate(est, se, a1, a2):
    res = EstimateResults(est, se)
    small, large = sorted([a1, a2])
    lo_w, hi_w = res.conf_int(small)  # wider
    lo_n, hi_n = res.conf_int(large)
    assert lo_w <= lo_n <= est <= hi_n <= hi_w
    assert 0 <= res.pvalue <= 1


def test_summary_frame_is_dataframe():
    assert isinstance(EstimateResults(1.0, 1.0).summary_frame(), pd.DataFrame)
