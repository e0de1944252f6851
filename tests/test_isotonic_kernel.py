"""The row-wise isotonic regression (PAVA) kernel against scikit-learn's isotonic_regression.

One kernel serves quantile monotonisation (``isotonic_rows``) and the ordinal
classifiers' crossing boundaries (``pava_rows``, in place, counting the rows it
changes).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from weightstats._kernels import _ordinal, isotonic_rows
from weightstats._kernels._isotonic import pava_rows
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


@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 20), cols=st.integers(1, 6))
def test_pava_rows_in_place_counts_changed_rows(seed, rows, cols):
    F = np.random.default_rng(seed).random((rows, cols))
    F[::2] = np.sort(F[::2], axis=1)  # some rows already ordered
    out = F.copy()
    changed = pava_rows(out)
    np.testing.assert_allclose(out, isotonic_rows_ref(F), atol=1e-14)
    assert changed == int(np.count_nonzero(np.any(np.diff(F, axis=1) < 0, axis=1)))
    np.testing.assert_array_equal(out[::2], F[::2])  # ordered rows untouched


def test_pava_rows_parallel_variant():
    F = np.random.default_rng(0).random((50, 5))
    serial, parallel = F.copy(), F.copy()
    assert pava_rows(serial) == pava_rows(parallel, n_jobs=2)
    np.testing.assert_array_equal(serial, parallel)


def test_one_pava_kernel():
    """The ordinal classifiers use this kernel; the ordinal module has no copy."""
    from weightstats.ordinal import _base

    assert _base.pava_rows is pava_rows
    assert not hasattr(_ordinal, "pava_rows")
