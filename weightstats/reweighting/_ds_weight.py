"""DS weight: importance weighting of self-generated training data.

Jiang et al. (AAAI 2025), "Importance Weighting Can Help Large Language
Models Self-Improve" (reference code rubickkcibur/IWSI):

* the DS weight of a self-generated sample is
  ``w_i = min(2, mean(valid losses) / loss_i)``, with every loss taken
  under a model tuned on a tiny clean validation set, and ``w_i = 0`` when
  ``loss_i = 0`` or the mean valid loss is 0 (``record_weights.py``,
  ``record_weight``);
* IWSI keeps the consistent samples whose deviation
  ``d_i = w_i if w_i > 1 else min(1 / w_i, 5)`` is below the value at
  position ``int(0.8 n)`` of the sorted deviations, i.e. it drops the ~20 %
  most distribution-shifted ones (``filter_data.py``, mode "K-Mixed").

:class:`DSWeightSelfTraining` transfers this to pseudo-labelled
self-training of any scikit-learn classifier: pseudo-labels from a model
fitted on part of the labels, losses from a model fitted on the held-out
part (the "valid set"), DS filtering, then a final fit on labels plus kept
pseudo-labels.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, _fit_context, clone
from sklearn.model_selection import train_test_split
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import HasMethods, Interval, validate_params
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import (
    check_is_fitted,
    check_random_state,
    validate_data,
)

from ..utils import check_finite_vector
from ._meta import check_meta_sample_weight, delegate_input_tags

__all__ = ["DSWeightSelfTraining", "ds_weight_filter", "ds_weights"]


@validate_params(
    {
        "losses": ["array-like"],
        "valid_losses": ["array-like"],
        "max_weight": [Interval(Real, 0, None, closed="neither")],
    },
    prefer_skip_nested_validation=True,
)
def ds_weights(losses, valid_losses, *, max_weight=2.0):
    """DS weights ``min(max_weight, mean(valid_losses) / losses)``; 0 for a zero loss.

    As in the reference code (``record_weights.py``): a sample with loss 0
    gets weight 0, and so does every sample when the mean valid loss is 0
    (the ratio is then undefined or 0).

    Parameters
    ----------
    losses : array-like of shape (n_samples,)
        Non-negative losses of the self-generated samples (e.g. mean token
        negative log-likelihood, or cross-entropy of a pseudo-label) under
        the model tuned on the validation set.
    valid_losses : array-like of shape (n_valid,)
        Losses of the validation samples under the same model.
    max_weight : float, default=2.0
        Upper clip.

    Returns
    -------
    weights : ndarray of shape (n_samples,)
        DS weights in ``[0, max_weight]``; 1 means "as likely as a typical
        validation sample".

    Examples
    --------
    >>> from weightstats.reweighting import ds_weights
    >>> ds_weights([0.5, 1.0, 4.0, 0.0], valid_losses=[0.5, 1.5])
    array([2.  , 1.  , 0.25, 0.  ])
    """
    losses = check_finite_vector(losses, "losses")
    valid_losses = check_finite_vector(valid_losses, "valid_losses")
    if valid_losses.size == 0:
        raise ValueError("valid_losses is empty; the DS weight needs at least one valid sample.")
    if np.any(losses < 0) or np.any(valid_losses < 0):
        raise ValueError("losses must be non-negative (they are negative log-likelihoods).")
    reference = valid_losses.mean()
    defined = (losses > 0) & (reference > 0)
    ratio = np.divide(reference, losses, out=np.zeros_like(losses), where=defined)
    return np.minimum(ratio, max_weight)


@validate_params(
    {
        "weights": ["array-like"],
        "quantile": [Interval(Real, 0, 1, closed="neither")],
        "max_deviation": [Interval(Real, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def ds_weight_filter(weights, *, quantile=0.8, max_deviation=5.0):
    """IWSI's filter: keep samples whose DS deviation is below a quantile.

    The deviation of a weight is ``w`` if ``w > 1`` and ``min(1 / w,
    max_deviation)`` otherwise; the threshold is the sorted deviation at
    position ``int(quantile * n)`` among the samples with a positive weight,
    and a sample is kept when its deviation is strictly below it. Samples
    with weight 0 are never kept. As in the reference, ties at the
    threshold are dropped.

    Parameters
    ----------
    weights : array-like of shape (n_samples,)
        DS weights (see :func:`ds_weights`).
    quantile : float in (0, 1), default=0.8
        Fraction of the positive-weight samples kept (up to ties).
    max_deviation : float, default=5.0
        Cap on the deviation of small weights.

    Returns
    -------
    keep : ndarray of bool of shape (n_samples,)
        Which samples to train on.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.reweighting import ds_weight_filter
    >>> w = np.array([1.0, 0.9, 1.2, 0.5, 1.5, 0.1, 1.05, 0.95, 0.8, 1.1])
    >>> ds_weight_filter(w)  # drops the two most deviating: 0.1 (10x) and 0.5 (2x)
    array([ True,  True,  True, False,  True, False,  True,  True,  True,
            True])
    """
    weights = check_finite_vector(weights, "weights")
    if np.any(weights < 0):
        raise ValueError("DS weights must be non-negative.")
    positive = weights > 0
    keep = np.zeros(weights.shape[0], dtype=bool)
    if not np.any(positive):
        return keep
    deviation = _deviation(weights[positive], max_deviation)
    threshold = np.sort(deviation)[int(deviation.shape[0] * quantile)]
    keep[positive] = deviation < threshold
    return keep


def _deviation(weights, max_deviation):
    with np.errstate(divide="ignore"):
        return np.where(weights > 1, weights, np.minimum(1.0 / weights, max_deviation))


def _unlabelled_rows(y):
    """Rows marked -1, with SelfTrainingClassifier's rules for string labels."""
    if y.dtype.kind in "US":
        raise ValueError(
            "y has dtype string, where the unlabelled marker -1 would be the string '-1'. For "
            "string class labels use a y of dtype object with the number -1 for unlabelled "
            "rows (the convention of sklearn.semi_supervised.SelfTrainingClassifier)."
        )
    if y.dtype.kind == "O":
        strings = np.array([isinstance(label, str) and label.strip() == "-1" for label in y])
        if strings.any():
            raise ValueError(
                f"y contains the string '-1' ({int(strings.sum())} rows); the unlabelled marker "
                "is the number -1. Replace those labels by -1 (y of dtype object)."
            )
        return np.array([not isinstance(label, str) and label == -1 for label in y], dtype=bool)
    if y.dtype.kind in "iuf":
        return y == -1
    return np.zeros(y.shape[0], dtype=bool)


def _estimator_has(attr):
    def check(self):
        return hasattr(self.estimator_ if hasattr(self, "estimator_") else self.estimator, attr)

    return check


class DSWeightSelfTraining(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Self-training whose pseudo-labels are filtered by DS weight.

    Rows labelled ``-1`` are unlabelled, with the conventions of
    :class:`sklearn.semi_supervised.SelfTrainingClassifier`: the marker is
    the number ``-1``, so string class labels go in a ``y`` of dtype object
    with ``-1`` for the unlabelled rows; a ``y`` of dtype string (where
    ``-1`` could only be the string ``"-1"``) and the string ``"-1"`` in an
    object ``y`` are errors, as is a ``y`` without labelled rows. ``fit``:

    1. splits the labelled rows into a training part and a small
       "valid" part (``valid_size``, stratified);
    2. fits ``estimator`` on the training part and pseudo-labels the
       unlabelled rows (optionally keeping only those predicted with
       probability at least ``threshold``, the analogue of IWSI's
       self-consistency filter);
    3. fits a second copy on the valid part (the "model tuned on the valid
       set") and computes the cross-entropy of each pseudo-label and of each
       valid label under it;
    4. computes :func:`ds_weights` and keeps the pseudo-labels passing
       :func:`ds_weight_filter`;
    5. fits the final estimator on all labelled rows plus the kept
       pseudo-labelled rows.

    Without unlabelled rows it is the base estimator fitted on the labels.

    Parameters
    ----------
    estimator : classifier with ``predict_proba``
        Cloned for the pseudo-labeller, the scorer and the final model.
    valid_size : float or int, default=0.25
        Fraction (or number) of the labelled rows held out as the valid set.
    threshold : float or None, default=None
        Minimum pseudo-labeller probability of a pseudo-label; ``None``
        keeps all.
    quantile : float in (0, 1), default=0.8
        Passed to :func:`ds_weight_filter`.
    max_weight : float, default=2.0
        Passed to :func:`ds_weights`.
    max_deviation : float, default=5.0
        Passed to :func:`ds_weight_filter`.
    random_state : int, RandomState instance or None, default=None
        Controls the labelled split.

    Attributes
    ----------
    estimator_ : classifier
        The final fitted classifier.
    pseudo_labeler_ : classifier or None
        The model fitted on the training part of the labels.
    scorer_ : classifier or None
        The model fitted on the valid part.
    ds_weights_ : ndarray of shape (n_samples,)
        DS weight of each row; 1 for labelled rows, 0 for unlabelled rows
        that failed the confidence threshold.
    selected_ : ndarray of bool of shape (n_samples,)
        Rows the final estimator was trained on.
    transduction_ : ndarray of shape (n_samples,)
        Labels used for the final fit; -1 for dropped unlabelled rows.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string
        column names.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from weightstats.reweighting import DSWeightSelfTraining
    >>> rng = np.random.default_rng(0)
    >>> y_true = rng.integers(0, 2, 300)
    >>> X = rng.normal(loc=2.0 * y_true[:, None], size=(300, 2))
    >>> y = np.where(np.arange(300) < 60, y_true, -1)   # 60 labels
    >>> model = DSWeightSelfTraining(LogisticRegression(), random_state=0).fit(X, y)
    >>> int(model.selected_[60:].sum())  # pseudo-labels kept out of 240
    192
    >>> model.score(X, y_true) > 0.9
    True
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "valid_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "threshold": [Interval(Real, 0, 1, closed="both"), None],
        "quantile": [Interval(Real, 0, 1, closed="neither")],
        "max_weight": [Interval(Real, 0, None, closed="neither")],
        "max_deviation": [Interval(Real, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator,
        *,
        valid_size=0.25,
        threshold=None,
        quantile=0.8,
        max_weight=2.0,
        max_deviation=5.0,
        random_state=None,
    ):
        self.estimator = estimator
        self.valid_size = valid_size
        self.threshold = threshold
        self.quantile = quantile
        self.max_weight = max_weight
        self.max_deviation = max_deviation
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Pseudo-label, DS-filter and fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Labelled and unlabelled rows (validated by the base estimator).
        y : array-like of shape (n_samples,)
            Labels; the number -1 marks unlabelled rows (use dtype object
            for string labels).
        sample_weight : array-like of shape (n_samples,), default=None
            Passed (subset) to every fit of the base estimator.

        Returns
        -------
        self : object
            The fitted meta-estimator.
        """
        # Only shapes and lengths here; finiteness and dtypes are the base
        # estimator's business (some accept NaN).
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], dtype=None, ensure_all_finite=False
        )
        n_samples = y.shape[0]
        sample_weight = check_meta_sample_weight(self.estimator, sample_weight, y)
        unlabelled = _unlabelled_rows(y)
        labelled = np.flatnonzero(~unlabelled)
        if labelled.size == 0:
            raise ValueError(
                f"y has no labelled rows (all {n_samples} are -1, unlabelled); "
                "DSWeightSelfTraining needs labelled rows to fit the pseudo-labeller and the "
                "valid-set scorer."
            )
        check_classification_targets(y[labelled])

        self.ds_weights_ = np.ones(n_samples)
        self.selected_ = ~unlabelled
        self.transduction_ = y.copy()
        self.pseudo_labeler_ = self.scorer_ = None
        if np.any(unlabelled):
            self._pseudo_label(X, y, labelled, np.flatnonzero(unlabelled), sample_weight)

        rows = np.flatnonzero(self.selected_)
        self.estimator_ = self._fit_on(
            clone(self.estimator), X, self.transduction_, rows, sample_weight
        )
        self.classes_ = self.estimator_.classes_
        return self

    def _fit_on(self, estimator, X, y, rows, sample_weight):
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight[rows]}
        return estimator.fit(_safe_indexing(X, rows), y[rows], **kwargs)

    def _pseudo_label(self, X, y, labelled, unlabelled, sample_weight):
        rng = check_random_state(self.random_state)
        labels = y[labelled]
        _, counts = np.unique(labels, return_counts=True)
        stratify = labels if counts.min() >= 2 else None
        try:
            train, valid = train_test_split(
                labelled, test_size=self.valid_size, stratify=stratify, random_state=rng
            )
        except ValueError as exc:
            raise ValueError(
                f"cannot hold out a valid set from {labelled.size} labelled rows "
                f"(valid_size={self.valid_size}): {exc}"
            ) from exc
        self.pseudo_labeler_ = self._fit_on(clone(self.estimator), X, y, train, sample_weight)
        X_u = _safe_indexing(X, unlabelled)
        proba = self.pseudo_labeler_.predict_proba(X_u)
        pseudo = self.pseudo_labeler_.classes_[np.argmax(proba, axis=1)]
        consistent = (
            np.ones(unlabelled.size, dtype=bool)
            if self.threshold is None
            else proba.max(axis=1) >= self.threshold
        )

        self.scorer_ = self._fit_on(clone(self.estimator), X, y, valid, sample_weight)
        losses = _cross_entropy(self.scorer_, X_u, pseudo)
        valid_losses = _cross_entropy(self.scorer_, _safe_indexing(X, valid), y[valid])
        if valid_losses.mean() == 0:
            warnings.warn(
                "the scorer fits its valid set perfectly (mean valid loss 0), so every DS weight "
                "is 0 and no pseudo-label is kept; use a regularised estimator.",
                UserWarning,
                stacklevel=3,
            )
        weights = np.where(
            consistent, ds_weights(losses, valid_losses, max_weight=self.max_weight), 0.0
        )
        keep = ds_weight_filter(weights, quantile=self.quantile, max_deviation=self.max_deviation)
        self.ds_weights_[unlabelled] = weights
        self.selected_[unlabelled] = keep
        self.transduction_ = self.transduction_.astype(np.result_type(y, pseudo), copy=True)
        self.transduction_[unlabelled] = np.where(keep, pseudo, -1)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the final estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities.
        """
        X = self._check_X(X)
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the final estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Scores.
        """
        X = self._check_X(X)
        return self.estimator_.decision_function(X)

    def predict(self, X):
        """Labels predicted by the final estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        X = self._check_X(X)
        return self.estimator_.predict(X)

    def _check_X(self, X):
        """Checked like ``fit``'s ``X`` (feature names and count), values left to the model."""
        check_is_fitted(self)
        return validate_data(
            self, X, reset=False, accept_sparse=["csr", "csc"], dtype=None,
            ensure_all_finite=False,
        )

    def __sklearn_tags__(self):
        return delegate_input_tags(super().__sklearn_tags__(), self.estimator)


def _cross_entropy(estimator, X, labels):
    """-log p(label | x); labels the estimator never saw get probability 0."""
    proba = estimator.predict_proba(X)
    columns = {label: j for j, label in enumerate(estimator.classes_)}
    picked = np.array(
        [proba[i, columns[label]] if label in columns else 0.0 for i, label in enumerate(labels)]
    )
    return -np.log(np.maximum(picked, np.finfo(np.float64).tiny))
