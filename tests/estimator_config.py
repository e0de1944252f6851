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
    # balancing (issue 3): scikit-learn's check data are separated blobs, where the
    # propensity MLE does not exist; clipping keeps the weights finite.
    "PropensityBalancer": {"clip": 0.01},
}

FIT_DATA = {}

# balancing (issue 3) --------------------------------------------------------------
_TREATMENT_ARG = (
    "fit's second argument is the binary treatment, named `treatment` because "
    "`estimate_effect(y)` takes the outcome"
)
_SAMPLE_WEIGHT_BY_KEYWORD = (
    "calls fit(X, y=...) by keyword and compares predictions, which balancers do not make; "
    "tests/test_balancing.py checks that integer sample weights equal repeated rows"
)
# scikit-learn's check data are well-separated blobs or treatments computed from X[:, 0]:
# no overlap, so exact balance is infeasible and EntropyBalancer raises by design.
_NO_OVERLAP = (
    "the check's data have no overlap between the two groups, where exact mean balance is "
    "infeasible and EntropyBalancer raises ValueError by design (IPMBalancer passes it)"
)
_BALANCERS = ("EntropyBalancer", "IPMBalancer", "PropensityBalancer")

EXPECTED_FAILED_CHECKS = {
    name: {
        "check_fit_score_takes_y": _TREATMENT_ARG,
        "check_sample_weight_equivalence_on_dense_data": _SAMPLE_WEIGHT_BY_KEYWORD,
    }
    for name in _BALANCERS
}
EXPECTED_FAILED_CHECKS["EntropyBalancer"].update({
        "check_dict_unchanged": _NO_OVERLAP,
        "check_dont_overwrite_parameters": _NO_OVERLAP,
        "check_dtype_object": _NO_OVERLAP,
        "check_estimators_dtypes": _NO_OVERLAP,
        "check_estimators_fit_returns_self": _NO_OVERLAP,
        "check_estimators_overwrite_params": _NO_OVERLAP,
        "check_estimators_pickle": _NO_OVERLAP,
        "check_estimators_pickle(readonly_memmap=True)": _NO_OVERLAP,
        "check_f_contiguous_array_estimator": _NO_OVERLAP,
        "check_fit2d_1feature": _NO_OVERLAP,
        "check_fit2d_predict1d": _NO_OVERLAP,
        "check_methods_sample_order_invariance": _NO_OVERLAP,
        "check_methods_subset_invariance": _NO_OVERLAP,
        "check_n_features_in_after_fitting": _NO_OVERLAP,
        "check_pipeline_consistency": _NO_OVERLAP,
        "check_positive_only_tag_during_fit": _NO_OVERLAP,
        "check_readonly_memmap_input": _NO_OVERLAP,
        "check_sample_weights_not_an_array": _NO_OVERLAP,
        "check_sample_weights_not_overwritten": _NO_OVERLAP,
        "check_sample_weights_pandas_series": _NO_OVERLAP,
        "check_sample_weights_shape": _NO_OVERLAP,
})

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
