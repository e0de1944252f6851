"""Machinery shared by the ensemble and conformal meta-estimators.

Named-estimator validation, fitting with ``sample_weight`` where a model
accepts it (also through a ``Pipeline``; the others are fitted without it,
with one warning), input checks that leave ``X`` untouched for the base models
(which may take DataFrames with string columns), and out-of-fold predictions
in parallel over (model, fold) pairs.
"""

import warnings

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils import Bunch, _safe_indexing, get_tags
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    has_fit_parameter,
    validate_data,
)

from ..utils import check_finite_vector, check_sample_weight

__all__ = [
    "NamedEstimatorsMixin",
    "accepts_sample_weight",
    "check_meta_input",
    "check_predict_input",
    "combine_input_tags",
    "fit_estimator",
    "is_frozen",
    "out_of_fold",
    "validate_named_estimators",
    "warn_unweighted",
]


def is_frozen(estimator):
    """Whether ``estimator`` is prefit (wrapped in ``FrozenEstimator``)."""
    return isinstance(estimator, FrozenEstimator)


def validate_named_estimators(estimators, *, owner, methods=("fit", "predict"), allow_empty=False):
    """Check a list of ``(name, estimator)`` pairs; return names and estimators.

    ``"drop"`` entries are skipped, as in scikit-learn's ensembles.
    """
    if not isinstance(estimators, (list, tuple)) or not all(
        isinstance(item, (list, tuple)) and len(item) == 2 for item in estimators
    ):
        raise TypeError(
            f"{owner} expects estimators as a list of (name, estimator) pairs, e.g. "
            "[('ridge', Ridge()), ('rf', RandomForestRegressor())]."
        )
    names = [name for name, _ in estimators]
    if not all(isinstance(name, str) and name for name in names):
        raise TypeError(f"{owner}: estimator names must be non-empty strings; got {names!r}.")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"{owner}: estimator names must be unique; duplicated: {duplicated}.")
    with_dunder = [name for name in names if "__" in name]
    if with_dunder:
        raise ValueError(f"{owner}: estimator names must not contain '__': {with_dunder}.")
    kept = [(name, est) for name, est in estimators if not (isinstance(est, str) and est == "drop")]
    if not kept and not allow_empty:
        raise ValueError(f"{owner} needs at least one estimator that is not 'drop'.")
    for name, est in kept:
        if isinstance(est, type):
            raise TypeError(
                f"{owner}: estimator {name!r} is the class {est.__name__}; pass an instance "
                f"such as {est.__name__}()."
            )
        missing = [m for m in methods if not callable(getattr(est, m, None))]
        if missing:
            raise TypeError(
                f"{owner}: estimator {name!r} ({type(est).__name__}) does not implement "
                f"{' and '.join(missing)}."
            )
    return [name for name, _ in kept], [est for _, est in kept]


def accepts_sample_weight(estimator):
    """Whether fitting ``estimator`` can use ``sample_weight`` (a pipeline's last
    step decides; prefit models are not refitted, so they count as accepting)."""
    if is_frozen(estimator):
        return True
    if isinstance(estimator, Pipeline):
        return has_fit_parameter(estimator.steps[-1][1], "sample_weight")
    return has_fit_parameter(estimator, "sample_weight")


def warn_unweighted(owner, names, estimators, sample_weight, *, still_used=None):
    """One warning naming the models that will be fitted without ``sample_weight``.

    As in R's SuperLearner, a model that cannot take the weights is fitted
    unweighted while the weights still enter the combination (``still_used``
    says where).
    """
    if sample_weight is None:
        return
    unweighted = [
        f"{name!r} ({type(est).__name__})"
        for name, est in zip(names, estimators, strict=True)
        if not accepts_sample_weight(est)
    ]
    if unweighted:
        one = len(unweighted) == 1
        warnings.warn(
            f"{owner}: {', '.join(unweighted)} {'does' if one else 'do'} not accept "
            f"sample_weight in fit and {'is' if one else 'are'} fitted without it"
            + (f"; sample_weight still {still_used}." if still_used else "."),
            UserWarning,
            stacklevel=4,  # the caller's fit runs inside scikit-learn's _fit_context
        )


def fit_estimator(estimator, X, y, sample_weight=None):
    """Fit ``estimator`` (in place), passing ``sample_weight`` where it is accepted.

    Pipelines get the weights on their final step. A model that does not
    accept them is fitted without them (callers warn once with
    :func:`warn_unweighted`). Prefit (frozen) estimators are left alone.
    """
    if is_frozen(estimator):
        return estimator
    if sample_weight is None or not accepts_sample_weight(estimator):
        return estimator.fit(X, y)
    if isinstance(estimator, Pipeline):
        last_name = estimator.steps[-1][0]
        return estimator.fit(X, y, **{f"{last_name}__sample_weight": sample_weight})
    return estimator.fit(X, y, sample_weight=sample_weight)


def check_meta_input(X, y, sample_weight=None, *, min_samples=2, y_name="y", require_y=True):
    """Validate inputs for a meta-estimator without converting ``X``.

    ``X`` is checked (2-d, non-empty, enough rows) but arrays, DataFrames and
    sparse matrices are returned unchanged so that base models and pipelines
    receive the caller's object; lists become arrays. NaN in ``X`` is left
    for the base models to accept or reject.
    """
    checked = check_array(
        X,
        accept_sparse=["csr", "csc"],
        dtype=None,
        ensure_all_finite=False,
        ensure_min_samples=min_samples,
        input_name="X",
    )
    if not hasattr(X, "shape") or sp.issparse(X):  # lists, other array-likes, COO/DIA
        X = checked
    if y is None:
        if require_y:
            raise ValueError(
                "this estimator requires y to be passed, but the target y is None."
            )
        return X, None, sample_weight
    check_consistent_length(X, y)
    if hasattr(y, "ndim") and y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    n_samples = X.shape[0]
    y = check_finite_vector(y, y_name, n_samples=n_samples)
    if sample_weight is not None:
        sample_weight = check_sample_weight(sample_weight, np.empty((n_samples, 0)))
    return X, y, sample_weight


def out_of_fold(estimators, X, y, sample_weight, *, cv, predict, n_jobs=None, verbose=0):
    """Out-of-fold outputs of each estimator, stacked along the first axis.

    Parameters
    ----------
    estimators : list of estimators
        Unfitted (or frozen) estimators.
    predict : callable ``(fitted_estimator, X) -> ndarray``
        How to get outputs from a fitted estimator.
    cv : cross-validation generator
        Already checked with ``check_cv``.

    Returns
    -------
    outputs : list of ndarray
        One array per estimator with ``n_samples`` rows; frozen estimators
        are not refitted and predict on all rows.
    """
    n_samples = X.shape[0]
    splits = list(cv.split(X, y))
    covered = np.zeros(n_samples, dtype=int)
    for _, test in splits:
        covered[test] += 1
    if np.any(covered != 1):
        raise ValueError(
            "cv must put every row in exactly one test fold (a partition such as KFold) to "
            f"give out-of-fold predictions; {int(np.sum(covered != 1))} rows are not covered "
            "exactly once."
        )

    def task(est, train, test):
        if train is None:
            return predict(est, X)
        fitted = fit_estimator(
            clone(est),
            _safe_indexing(X, train),
            y[train],
            None if sample_weight is None else sample_weight[train],
        )
        return predict(fitted, _safe_indexing(X, test))

    jobs = []
    for j, est in enumerate(estimators):
        if is_frozen(est):
            jobs.append((j, None, delayed(task)(est, None, None)))
        else:
            for train, test in splits:
                jobs.append((j, test, delayed(task)(est, train, test)))
    results = Parallel(n_jobs=n_jobs, verbose=verbose)(job for _, _, job in jobs)
    outputs = [None] * len(estimators)
    for (j, test, _), result in zip(jobs, results, strict=True):
        result = np.asarray(result, dtype=float)
        if test is None:
            outputs[j] = result
            continue
        if outputs[j] is None:
            outputs[j] = np.empty((n_samples,) + result.shape[1:])
        outputs[j][test] = result
    return outputs


def checked_cv(cv, y):
    """``check_cv`` for regression targets."""
    return check_cv(cv, y, classifier=False)


def combine_input_tags(tags, estimators):
    """Allow NaN / sparse input only when every base model does (as sklearn's ensembles)."""
    try:
        models = [est for _, est in estimators if not (isinstance(est, str) and est == "drop")]
        tags.input_tags.allow_nan = all(get_tags(est).input_tags.allow_nan for est in models)
        tags.input_tags.sparse = all(get_tags(est).input_tags.sparse for est in models)
    except Exception:  # malformed estimators: fit will explain
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
    return tags


def check_predict_input(estimator, X, attribute=None):
    """Post-fit input check of a meta-estimator: fitted, 2-d, same features.

    ``X`` itself goes to the base models unchanged (they check its values).
    """
    check_is_fitted(estimator, attribute)
    check_array(X, accept_sparse=True, dtype=None, ensure_all_finite=False, input_name="X")
    validate_data(estimator, X, skip_check_array=True, reset=False)


class NamedEstimatorsMixin(_BaseComposition):
    """``get_params`` / ``set_params`` over a list of named ``estimators`` (with
    ``<name>__<param>`` access, as scikit-learn's ensembles), and
    ``named_estimators_`` built from ``model_names_`` and ``estimators_``."""

    def get_params(self, deep=True):
        """Get the parameters, including those of the named base models.

        Parameters
        ----------
        deep : bool, default=True
            Also return the base models and their parameters as
            ``<name>__<param>``.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        return self._get_params("estimators", deep=deep)

    def set_params(self, **params):
        """Set parameters, including ``<name>__<param>`` of the base models.

        Parameters
        ----------
        **params : dict
            Parameters to set; a model name replaces that model.

        Returns
        -------
        self : estimator
            This estimator.
        """
        self._set_params("estimators", **params)
        return self

    @property
    def named_estimators_(self):
        """The fitted base models by name (a :class:`~sklearn.utils.Bunch`)."""
        check_is_fitted(self, "estimators_")
        return Bunch(**dict(zip(self.model_names_, self.estimators_, strict=True)))
