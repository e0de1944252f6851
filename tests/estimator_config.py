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

FAST_PARAMS = {
    # scikit-learn's checks pass treatments labelled {0, 1} or {1, 2}; pos_label=1
    # names the treated group in both (other labels need pos_label by design).
    "UniformTransformerEstimator": {"pos_label": 1, "n_bootstrap": 20},
}

def _treatment_and_outcome(rng, n_samples=60, n_features=2):
    """Covariates, a 0/1 treatment (passed as ``y``) and the outcome as a fit keyword."""
    X = rng.standard_normal((n_samples, n_features))
    treatment = np.arange(n_samples) % 2
    outcome = X.sum(axis=1) + treatment + 0.1 * rng.standard_normal(n_samples)
    return X, treatment, {"y": outcome}


FIT_DATA = {
    "UniformTransformerEstimator": _treatment_and_outcome,
}

EXPECTED_FAILED_CHECKS = {
    "UniformTransformerEstimator": {
        "check_fit_score_takes_y": (
            "fit(X, treatment, y): the second argument is the treatment and is named for it; "
            "positional calls (pipelines, fit_transform) work"
        ),
        "check_sample_weight_equivalence_on_dense_data": (
            "the check passes the treatment as the keyword y=, which here is the outcome; "
            "tests/test_uniform_transformer.py checks integer weights == repeated rows"
        ),
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
