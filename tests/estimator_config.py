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

FAST_PARAMS = {}

FIT_DATA = {}

EXPECTED_FAILED_CHECKS = {}

SKOPS_TRUSTED_EXTRA = {}

# --- weightstats.nn and its reweighting helpers (issue 9) -----------------------
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

# Meta-estimators of weightstats.reweighting need a base classifier.
FAST_PARAMS["LogitAdjustedClassifier"] = {"estimator": LogisticRegression()}
FAST_PARAMS["DSWeightSelfTraining"] = {"estimator": LogisticRegression(), "random_state": 0}
EXPECTED_FAILED_CHECKS["DSWeightSelfTraining"] = {
    "check_classifiers_classes": (
        "label -1 marks unlabelled rows (the SelfTrainingClassifier convention), so the "
        "check's integer class -1 is read as 'no label'"
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
