"""ST-3 kernels (threshold quantile, thresholded weights) against NumPy."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weightstats._kernels._sparse import (
    magnitude_band,
    magnitudes,
    soft_threshold_deltas,
    threshold_quantile,
)

pytestmark = pytest.mark.kernel


def _st3_numpy(w, th, soft, rescale):
    """ST-3's forward value (stthree, quantized.py), rows along axis 0."""
    w2 = w.reshape(w.shape[0], -1).astype(np.float64)
    keep = np.abs(w2) > th
    value = (w2 - np.sign(w2) * th) * keep if soft else w2 * keep
    if rescale:
        kept = ((np.abs(w2) * keep).mean(axis=1) + 1e-6) / (np.abs(w2).mean(axis=1) + 1e-6)
        value = value * (1.01 / (kept + 0.01))[:, None]
    return value.reshape(w.shape)


def _layers(seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((7, 5)).astype(dtype),
        (0.3 * rng.standard_normal((4, 7))).astype(dtype),
        rng.standard_normal((3, 4)).astype(dtype),
    )


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.5, 0.9, 0.97])
def test_threshold_is_numpys_linear_quantile(ratio):
    layers = _layers(0)
    flat = np.abs(np.concatenate([w.ravel() for w in layers]))
    buffer = np.empty(flat.size, np.float32)
    expected = np.quantile(flat.astype(np.float64), ratio)
    assert threshold_quantile(layers, ratio, buffer) == pytest.approx(expected, rel=1e-6)
    # From a nearby previous threshold (the band holds the quantile) and a
    # far one (it does not: the full partial sort is used).
    for previous in (expected * 1.02, expected * 3 + 1, 1e-9):
        assert threshold_quantile(layers, ratio, buffer, previous) == pytest.approx(expected, rel=1e-6)


def test_band_counts_and_magnitudes():
    layers = _layers(1)
    flat = np.abs(np.concatenate([w.ravel() for w in layers]))
    band = np.empty(flat.size, np.float32)
    below, count = magnitude_band(layers, 0.4, 0.9, band)
    assert below == np.sum(flat < np.float32(0.4))
    np.testing.assert_array_equal(np.sort(band[:count]), np.sort(flat[(flat >= np.float32(0.4)) & (flat <= np.float32(0.9))]))
    out = np.empty(flat.size, np.float32)
    assert magnitudes(layers, out) == flat.size
    np.testing.assert_array_equal(out, flat)


@pytest.mark.parametrize("soft", [True, False])
@pytest.mark.parametrize("rescale", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_deltas_match_the_st3_formula(soft, rescale, dtype):
    layers = _layers(2, dtype)
    thresholds = np.array([0.6, 0.2, -1.0])  # the last layer is not pruned
    deltas = tuple(np.full_like(w, np.nan) for w in layers)
    soft_threshold_deltas(layers, thresholds, soft, rescale, deltas)
    for w, th, d in zip(layers[:2], thresholds, deltas):
        expected = _st3_numpy(w, th, soft, rescale)
        np.testing.assert_allclose(w + d, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)
        # Pruned weights become exactly zero in the forward value W + delta.
        assert np.all((w + d)[np.abs(w) <= th] == 0)
    assert np.all(np.isnan(deltas[2]))


@given(st.integers(0, 2**31 - 1), st.floats(0.0, 0.99))
def test_threshold_hypothesis(seed, ratio):
    rng = np.random.default_rng(seed)
    layers = (rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((2, 5)).astype(np.float32))
    flat = np.abs(np.concatenate([w.ravel() for w in layers])).astype(np.float64)
    expected = np.quantile(flat, ratio)
    buffer = np.empty(flat.size, np.float32)
    assert threshold_quantile(layers, ratio, buffer, expected * 0.99) == pytest.approx(expected, rel=1e-6, abs=1e-12)
