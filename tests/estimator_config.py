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

import importlib.util

import numpy as np
from sklearn.linear_model import LogisticRegression

# --- ensemble and conformal families ---------------------------------
from sklearn.linear_model import LinearRegression, QuantileRegressor, Ridge

from ._quantile_models import KNeighborsQuantileRegressor


def _linear_quantiles(levels):
    return {q: QuantileRegressor(quantile=q, alpha=0.0) for q in levels}


FAST_PARAMS = {
    # balancing: scikit-learn's check data are separated blobs, where the
    # propensity MLE does not exist; clipping keeps the weights finite.
    "PropensityBalancer": {"clip": 0.01},
}

FAST_PARAMS.update(
    ConvexEnsembleRegressor=dict(
        estimators=[("lr", LinearRegression()), ("ridge", Ridge(alpha=1.0))], cv=3
    ),
    PerQuantileRegressor=dict(estimators=_linear_quantiles((0.1, 0.5, 0.9))),
    MultiQuantileRegressor=dict(
        estimator=KNeighborsQuantileRegressor(n_neighbors=5), quantiles=(0.1, 0.5, 0.9)
    ),
    # The meta-estimators get the millisecond nearest-neighbour quantile model;
    # the per-level dict path is covered by PerQuantileRegressor's checks and
    # by tests/test_quantile_ensemble.py.
    QuantileAggregator=dict(
        estimators=[
            ("knn3", KNeighborsQuantileRegressor(n_neighbors=3)),
            ("knn8", KNeighborsQuantileRegressor(n_neighbors=8)),
        ],
        quantiles=(0.1, 0.5, 0.9),
        cv=3,
    ),
    ConformalQuantileRegressor=dict(
        estimator=KNeighborsQuantileRegressor(n_neighbors=5), confidence_level=0.9
    ),
)

FIT_DATA = {}

# balancing --------------------------------------------------------------
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

# --- ordinal: PRESTOClassifier, PRESTOClassifierCV, ProportionalOddsClassifier ---
FAST_PARAMS["PRESTOClassifierCV"] = {"alphas": 4, "cv": 3}


def _ordinal_fit_data(rng, n_samples=40):
    """Three ordered classes from a latent logistic regression (no separation)."""
    X = rng.standard_normal((n_samples, 3))
    latent = X @ np.array([1.0, -0.5, 0.3]) + rng.logistic(size=n_samples)
    y = np.digitize(latent, [-0.7, 0.7])
    y[:3] = [0, 1, 2]  # every class present whatever the seed
    return X, y, {}


# scikit-learn's checks train these on binary (or unordered string) targets;
# an ordinal model needs >= 3 ordered classes and K = 2 raises by design, with an
# error pointing to logistic regression. The same
# properties are checked on 3-class data in tests/test_ordinal.py.
_ORDINAL_BINARY_REASON = (
    "check fits binary y; ordinal models need >= 3 ordered classes and raise for K = 2 "
    "(covered on 3-class data in tests/test_ordinal.py)"
)
_ORDINAL_EXPECTED = {
    check: _ORDINAL_BINARY_REASON
    for check in (
        "check_estimators_dtypes",
        "check_sample_weights_pandas_series",
        "check_sample_weights_not_an_array",
        "check_all_zero_sample_weights_error",
        "check_sample_weights_shape",
        "check_sample_weights_not_overwritten",
        "check_pipeline_consistency",
        "check_estimators_nan_inf",
        "check_estimators_pickle",
        "check_classifier_data_not_an_array",
        "check_classifiers_train",
        "check_decision_proba_consistency",
        "check_fit2d_1feature",
        "check_fit_idempotent",
        "check_fit_check_is_fitted",
        "check_n_features_in",
    )
}
_ORDINAL_EXPECTED["check_classifiers_classes"] = (
    "string labels without an order must raise; the check also uses binary y"
)
for _name in ("PRESTOClassifier", "PRESTOClassifierCV", "ProportionalOddsClassifier"):
    FIT_DATA[_name] = _ordinal_fit_data
    EXPECTED_FAILED_CHECKS[_name] = dict(_ORDINAL_EXPECTED)
# --- end ordinal ---

SKOPS_TRUSTED_EXTRA = {}

# --- KalmanSGDRegressor, CoresetReweighter ---------------------------
_KALMAN_SGD_UNSCALED = (
    "the check fits on un-scaled X ~ N(100, 1); SGD with a constant step (0.01) diverges "
    "there and fit raises a ValueError asking to standardise X; "
    "tests/test_kalman_sgd.py checks the same property on scaled data"
)
EXPECTED_FAILED_CHECKS["KalmanSGDRegressor"] = {
    "check_sample_weight_equivalence_on_dense_data": (
        "SGD's path depends on the rows visited: a weight-2 row is one step with twice "
        "the gradient, a repeated row two steps (as in sklearn's SGDRegressor)"
    ),
    "check_fit_idempotent": _KALMAN_SGD_UNSCALED,
    "check_fit_check_is_fitted": _KALMAN_SGD_UNSCALED,
    "check_n_features_in": _KALMAN_SGD_UNSCALED,
}
# The checks' data sets have 20-150 rows: 5% of them is too small a coreset
# to hold out a validation set from.
FAST_PARAMS["CoresetReweighter"] = {"coreset_size": 0.5, "max_iter": 5}
# ------------------------------------------------------------------------------
# Quantile models return one column per level from predict, shape
# (n_samples, n_levels), as quantile-forest does for a list of levels;
# these checks assert predict has the shape of y.
_QUANTILE_PREDICT_SHAPE = (
    "predict returns one column per quantile level, shape (n_samples, n_levels), "
    "not the shape of y"
)
_QUANTILE_SHAPE_CHECKS = {
    "check_regressors_train": _QUANTILE_PREDICT_SHAPE,
    "check_regressors_train(readonly_memmap=True)": _QUANTILE_PREDICT_SHAPE,
    "check_regressors_train(readonly_memmap=True,X_dtype=float32)": _QUANTILE_PREDICT_SHAPE,
}
EXPECTED_FAILED_CHECKS.update(
    MultiQuantileRegressor=dict(_QUANTILE_SHAPE_CHECKS),
    QuantileAggregator=dict(_QUANTILE_SHAPE_CHECKS),
    PerQuantileRegressor={
        **_QUANTILE_SHAPE_CHECKS,
        # QuantileRegressor fits sparse X; the check then asserts a 1-d predict.
        "check_estimator_sparse_array": _QUANTILE_PREDICT_SHAPE + " (sparse X itself works)",
        "check_estimator_sparse_matrix": _QUANTILE_PREDICT_SHAPE + " (sparse X itself works)",
    },
)

SKOPS_TRUSTED_EXTRA = {}

_TEST_QUANTILE_MODEL = {
    "tests._quantile_models.KNeighborsQuantileRegressor": (
        "the test-only multi-level quantile model of tests/_quantile_models.py (arrays only)"
    ),
}
SKOPS_TRUSTED_EXTRA.update(
    MultiQuantileRegressor=_TEST_QUANTILE_MODEL,
    QuantileAggregator=_TEST_QUANTILE_MODEL,
    ConformalQuantileRegressor=_TEST_QUANTILE_MODEL,
)
# --- weightstats.nn and its reweighting helpers -----------------------
if all(importlib.util.find_spec(m) is not None for m in ("torch", "skorch")):
    import torch

    # Tiny modules and a few Adam epochs: enough for scikit-learn's accuracy
    # and R^2 thresholds on its small problems, fast enough for ~50 checks.
    _NN_FAST = {
        "module__hidden_units": (8,),
        "optimizer": torch.optim.Adam,
        "lr": 0.05,
        "max_epochs": 10,
        "batch_size": 32,
        "random_state": 0,
    }
    # What every skorch-based net fails by design of skorch or of float32 SGD.
    _NN_EXPECTED_FAILURES = {
        "check_no_attributes_set_in_init": (
            "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_ and "
            "stores prefixed kwargs (module__*) as attributes; that is how skorch routes them"
        ),
        "check_sample_weight_equivalence_on_dense_data": (
            "training is float32 SGD: weighted and repeated rows agree only to ~1e-7 in "
            "full-batch mode and differ by batch composition with mini-batches"
        ),
    }
    # skorch nets hold torch *classes* as hyper-parameters (criterion, optimizer,
    # loaders, dataset); skops stores them as type references, and loading one
    # imports the class without running code. Weights and optimizer state are
    # NumPy arrays (weightstats.nn replaces skorch's pickled-blob __getstate__).
    _TORCH_CLASS_REFS = [
        "skorch.dataset.Dataset",
        "torch.nn.modules.loss.CrossEntropyLoss",
        "torch.nn.modules.loss.MSELoss",
        "torch.optim.adam.Adam",
        "torch.optim.sgd.SGD",
        "torch.utils.data.dataloader.DataLoader",
    ]
    for _name in (
        "NeuralNetClassifier",
        "NeuralNetRegressor",
        "WeightAligningClassifier",
        "WeightBalancingClassifier",
    ):
        FAST_PARAMS[_name] = dict(_NN_FAST)
        EXPECTED_FAILED_CHECKS[_name] = dict(_NN_EXPECTED_FAILURES)
        SKOPS_TRUSTED_EXTRA[_name] = list(_TORCH_CLASS_REFS)
    # The subclasses' signatures list only their own parameters, so the check
    # never sets 'callbacks' on them.
    for _name in ("NeuralNetClassifier", "NeuralNetRegressor"):
        EXPECTED_FAILED_CHECKS[_name]["check_do_not_raise_errors_in_init_or_set_params"] = (
            "skorch's set_params re-initialises callbacks when 'callbacks' is set, so a junk "
            "value (an int) raises at once inside skorch"
        )

# --- weightstats.nn.learning_rules -------------------------------------
if all(importlib.util.find_spec(m) is not None for m in ("torch", "skorch")):
    # A small recurrent net and a few Adam epochs reach scikit-learn's accuracy
    # thresholds on its blobs; the same expected failures as every skorch net.
    FAST_PARAMS["EquilibriumPropagationClassifier"] = {
        "hidden_layer_sizes": (8,),
        "optimizer": torch.optim.Adam,
        "lr": 0.05,
        "max_epochs": 10,
        "batch_size": 32,
        "random_state": 0,
    }
    EXPECTED_FAILED_CHECKS["EquilibriumPropagationClassifier"] = {
        **_NN_EXPECTED_FAILURES,
        "check_methods_sample_order_invariance": (
            "each row's fixed point is iterated in float32 inside a batch; BLAS blocking "
            "depends on the batch's rows, so reordered rows agree to about 1e-6 relative "
            "(the check asks for 1e-7) on some machines"
        ),
    }
    SKOPS_TRUSTED_EXTRA["EquilibriumPropagationClassifier"] = list(_TORCH_CLASS_REFS)

# Meta-estimators of weightstats.reweighting need a base classifier.
FAST_PARAMS["LogitAdjustedClassifier"] = {"estimator": LogisticRegression()}
FAST_PARAMS["DSWeightSelfTraining"] = {"estimator": LogisticRegression(), "random_state": 0}
EXPECTED_FAILED_CHECKS["DSWeightSelfTraining"] = {
    "check_classifiers_classes": (
        "label -1 marks unlabelled rows and a y of dtype string is refused (the "
        "SelfTrainingClassifier conventions), so the check's integer class -1 is read as "
        "'no label' and its string labels need dtype object"
    ),
}


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

# --- UniformTransformerEstimator -------------------------------------
# scikit-learn's checks pass treatments labelled {0, 1} or {1, 2}; pos_label=1
# names the treated group in both (other labels need pos_label by design).
FAST_PARAMS["UniformTransformerEstimator"] = {"pos_label": 1, "n_bootstrap": 20}


def _treatment_and_outcome(rng, n_samples=60, n_features=2):
    """Covariates, a 0/1 treatment (passed as ``y``) and the outcome as a fit keyword."""
    X = rng.standard_normal((n_samples, n_features))
    treatment = np.arange(n_samples) % 2
    outcome = X.sum(axis=1) + treatment + 0.1 * rng.standard_normal(n_samples)
    return X, treatment, {"y": outcome}


FIT_DATA["UniformTransformerEstimator"] = _treatment_and_outcome
EXPECTED_FAILED_CHECKS["UniformTransformerEstimator"] = {
    "check_fit_score_takes_y": _TREATMENT_ARG,
    "check_sample_weight_equivalence_on_dense_data": (
        "the check passes the treatment as the keyword y=, which here is the outcome; "
        "tests/test_uniform_transformer.py checks integer weights == repeated rows"
    ),
}
# ------------------------------------------------------------------------------

# --- weightstats.nn.diffusion.ConditionalDiffusion --------------------
if all(importlib.util.find_spec(m) is not None for m in ("torch", "skorch")):
    # A tiny network and two epochs: the checks test the interface, not the model.
    FAST_PARAMS["ConditionalDiffusion"] = {
        "module__hidden_units": (8,),
        "max_epochs": 2,
        "batch_size": 32,
        "random_state": 0,
    }

    def _labelled_rows(rng, n_samples=40, n_features=3):
        """Rows with three class labels (the conditional model)."""
        return rng.standard_normal((n_samples, n_features)), np.arange(n_samples) % 3, {}

    FIT_DATA["ConditionalDiffusion"] = _labelled_rows
    # Its signature lists the skorch parameters (callbacks too), as the nets' do.
    EXPECTED_FAILED_CHECKS["ConditionalDiffusion"] = {
        check: EXPECTED_FAILED_CHECKS["NeuralNetClassifier"][check]
        for check in (
            "check_no_attributes_set_in_init",
            "check_do_not_raise_errors_in_init_or_set_params",
        )
    }
    SKOPS_TRUSTED_EXTRA["ConditionalDiffusion"] = list(_TORCH_CLASS_REFS)
# ------------------------------------------------------------------------------
