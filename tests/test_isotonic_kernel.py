"""Row-wise isotonic regression kernel against scikit-learn's isotonic_regression."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from weightstats._kernels import isotonic_rows
from weightstats._kernels._reference import isotonic_rows_ref

from .strategies import finite_floats

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_matches_reference_with_ties_and_crossings(n_jobs):
    rng = np.random.default_rng(0)
    values = np.sort(rng.standard_normal((40, 9)), axis=1) + 0.5 * rng.standard_normal((40, 9))
    values[0] = 1.0  # constant row
    values[1] = np.arange(9)[::-1]  # fully decreasing: one block
    values[2, 3:6] = values[2, 3]  # ties
    np.testing.assert_allclose(isotonic_rows(values, n_jobs=n_jobs), isotonic_rows_ref(values),
                               rtol=1e-12, atol=1e-12)


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 8)),
                  elements=finite_floats()))
def test_matches_reference_hypothesis(values):
    out = isotonic_rows(values)
    np.testing.assert_allclose(out, isotonic_rows_ref(values), rtol=1e-10, atol=1e-9)
    assert np.all(np.diff(out, axis=1) >= -1e-9)
    # Means of rows are preserved by the L2 projection onto monotone sequences.
    np.testing.assert_allclose(out.mean(axis=1), values.mean(axis=1), rtol=1e-9, atol=1e-9)
