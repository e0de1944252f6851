"""Common tests run over every public estimator (found by ``all_estimators``).

New estimators are picked up automatically; per-estimator settings and the
central table of expected scikit-learn failures live in
``tests/estimator_config.py``.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from weightstats.utils import all_estimators

from . import _checks
from .estimator_config import (
    SKOPS_TRUSTED_EXTRA,
    build_estimator,
    expected_failed_checks,
    make_fit_data,
)

ESTIMATORS = [build_estimator(name, cls) for name, cls in all_estimators()]


def _id(estimator):
    return type(estimator).__name__


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


BAD_INPUT_PARAMS = [
    pytest.param(est, case, id=f"{_id(est)}-{case}")
    for est in ESTIMATORS
    for case in _checks.applicable_cases(est, make_fit_data(est)[1])
]


@pytest.mark.parametrize("estimator, case", BAD_INPUT_PARAMS)
def test_bad_fit_input_raises_clear_error(estimator, case):
    X, y, fit_kwargs = make_fit_data(estimator)
    _checks.check_bad_fit_input(estimator, case, X, y, fit_kwargs)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_id)
def test_bad_predict_input_raises_clear_error(estimator):
    _checks.check_bad_predict_input(estimator, *make_fit_data(estimator))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_id)
def test_outputs_are_finite(estimator):
    _checks.check_outputs_finite(estimator, *make_fit_data(estimator))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_id)
def test_persistence_round_trip(estimator):
    trusted = SKOPS_TRUSTED_EXTRA.get(_id(estimator), {})
    _checks.check_persistence(estimator, *make_fit_data(estimator), trusted_extra=tuple(trusted))


def test_expected_failures_name_real_estimators():
    """Stale entries in the central tables would silently stop mattering."""
    from . import estimator_config as config

    names = {name for name, _ in all_estimators()}
    for table in ("FAST_PARAMS", "FIT_DATA", "EXPECTED_FAILED_CHECKS", "SKOPS_TRUSTED_EXTRA"):
        stale = set(getattr(config, table)) - names
        assert not stale, f"{table} has entries for unknown estimators: {sorted(stale)}"
    for name, checks in config.EXPECTED_FAILED_CHECKS.items():
        for check, reason in checks.items():
            assert len(reason) > 15, f"{name}: give {check} a real reason, not {reason!r}"
