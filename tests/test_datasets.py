import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weightstats.datasets import load_lalonde, make_kang_schafer


def test_lalonde_nsw_is_the_dehejia_wahba_sample():
    nsw = load_lalonde()
    assert nsw.data.shape == (445, 8)
    assert nsw.treatment.value_counts().to_dict() == {0: 260, 1: 185}
    att = nsw.target[nsw.treatment == 1].mean() - nsw.target[nsw.treatment == 0].mean()
    assert att == pytest.approx(nsw.experimental_att, abs=0.005)
    assert list(nsw.frame.columns) == ["treat", *nsw.feature_names, "re78"]
    assert "Dehejia" in nsw.DESCR and "1,794.34" in nsw.DESCR


def test_lalonde_cps_pairs_nsw_treated_with_cps_controls():
    cps = load_lalonde(controls="cps")
    assert cps.treatment.value_counts().to_dict() == {0: 15992, 1: 185}
    nsw = load_lalonde()
    treated = cps.frame[cps.frame.treat == 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(treated, nsw.frame[nsw.frame.treat == 1].reset_index(drop=True))
    naive = cps.target[cps.treatment == 1].mean() - cps.target[cps.treatment == 0].mean()
    assert naive == pytest.approx(-8497.52, abs=0.01)
    assert not cps.frame.isna().any().any()


def test_lalonde_as_arrays():
    nsw = load_lalonde(as_frame=False)
    assert isinstance(nsw.data, np.ndarray) and nsw.data.dtype == float
    assert nsw.frame is None and nsw.treatment.shape == (445,)


def test_lalonde_rejects_unknown_controls():
    with pytest.raises(ValueError, match="controls"):
        load_lalonde(controls="psid")


def test_kang_schafer_design():
    ks = make_kang_schafer(20000, misspecified=False, random_state=0)
    Z, t, y = ks.data, ks.treatment, ks.target
    # Outcome model: y = 210 + 27.4 Z1 + 13.7 (Z2 + Z3 + Z4) + noise(1)
    coef = np.linalg.lstsq(np.column_stack([np.ones(len(y)), Z]), y, rcond=None)[0]
    np.testing.assert_allclose(coef, [210, 27.4, 13.7, 13.7, 13.7], atol=0.05)
    assert np.mean(t) == pytest.approx(0.5, abs=0.02)
    np.testing.assert_allclose(ks.latent, Z)
    naive = y[t == 1].mean() - y[t == 0].mean()
    assert -22 < naive < -18  # the classic bias of about -20


def test_kang_schafer_transforms_and_overlap():
    ks = make_kang_schafer(500, random_state=1, as_frame=True)
    Z = ks.latent.to_numpy()
    np.testing.assert_allclose(ks.data["X1"], np.exp(Z[:, 0] / 2))
    np.testing.assert_allclose(ks.data["X2"], Z[:, 1] / (1 + np.exp(Z[:, 0])) + 10)
    np.testing.assert_allclose(ks.data["X3"], (Z[:, 0] * Z[:, 2] / 25 + 0.6) ** 3)
    np.testing.assert_allclose(ks.data["X4"], (Z[:, 1] + Z[:, 3] + 20) ** 2)
    low = make_kang_schafer(500, overlap=2.0, random_state=1)
    assert np.std(low.propensity) > np.std(ks.propensity)


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 50))
def test_kang_schafer_is_reproducible(seed, n):
    a, b = make_kang_schafer(n, random_state=seed), make_kang_schafer(n, random_state=seed)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.target, b.target)
    assert set(np.unique(a.treatment)) <= {0, 1}


@pytest.mark.parametrize(
    "kwargs", [{"n_samples": 1}, {"n_samples": 10, "overlap": -1.0}, {"n_samples": 10, "noise": -1}]
)
def test_kang_schafer_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        make_kang_schafer(**kwargs)
