"""Per-estimator settings for the common tests, kept in one place.

Every public estimator is found by :func:`weightstats.utils.all_estimators`
and checked automatically. Add an entry here only when an estimator needs it:

* ``FAST_PARAMS``: constructor arguments that keep the ~50 scikit-learn checks
  fast (fewer iterations, smaller ensembles) or that a meta-estimator needs.
* ``FIT_DATA``: how to build valid training data when the default (float
  ``X``; continuous ``y`` for regressors, two classes otherwise) does not fit.
* ``EXPECTED_FAILED_CHECKS``: scikit-learn checks an estimator fails by
  design, each with the reason. Keep reasons specific; "it fails" is not one.
* ``SKOPS_TRUSTED_EXTRA``: non-weightstats types that skops does not trust by
  default but that an estimator legitimately stores, with the reason.
"""

import numpy as np

FAST_PARAMS = {}

FIT_DATA = {}

EXPECTED_FAILED_CHECKS = {
    # --- issue 7: magnitude (weightstats.magnitude) ---
    "MagnitudeOutlierDetector": {
        check: (
            "contamination='auto' is an absolute threshold (weight > 0.95: the other points "
            "cover less than 5% of a point); the check's three Gaussian blobs contain no such "
            "isolated point, so predict(X) is all inliers, which the check forbids. With a "
            "float contamination the check's quantile logic passes (tested in "
            "tests/test_magnitude.py)."
        )
        for check in (
            "check_outliers_train",
            "check_outliers_train(readonly_memmap=True)",
            "check_outliers_fit_predict",
        )
    },
}

SKOPS_TRUSTED_EXTRA = {}


def build_estimator(name, cls):
    """An instance of ``cls`` with its fast settings."""
    return cls(**FAST_PARAMS.get(name, {}))


def expected_failed_checks(estimator):
    """The callable ``parametrize_with_checks`` expects."""
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


def make_fit_data(estimator, seed=0, n_samples=40, n_features=3):
    """Valid ``(X, y, fit_kwargs)`` for ``estimator``.

    ``y`` is ``None`` for estimators that take no target, continuous for
    regressors, and two interleaved classes (0/1) otherwise, which also serves
    as a binary treatment.
    """
    name = type(estimator).__name__
    rng = np.random.default_rng(seed)
    if name in FIT_DATA:
        return FIT_DATA[name](rng)
    X = rng.standard_normal((n_samples, n_features))
    tags = estimator.__sklearn_tags__()
    if not tags.target_tags.required and tags.estimator_type not in ("classifier", "regressor"):
        return X, None, {}
    if tags.estimator_type == "regressor":
        y = X @ rng.standard_normal(n_features) + 0.1 * rng.standard_normal(n_samples)
    else:
        y = np.arange(n_samples) % 2
    return X, y, {}
