"""Long-tailed classification: class-balanced weights and logit adjustment.

* :func:`class_balanced_weights`: the "effective number of samples" weights
  of Cui et al. (2019), ``w_c = (1 - beta) / (1 - beta^n_c)`` normalised to
  sum to the number of classes, as in the class-balanced loss used by the
  second stage of weight balancing (Alshammari et al., 2022).
* :class:`LogitAdjustedClassifier`: post-hoc logit adjustment (Menon et al.,
  2021) for any fitted scikit-learn classifier with ``predict_proba``:
  ``log p(c | x) - tau * log pi_c``, renormalised. With calibrated
  probabilities and ``tau = 1`` the argmax is the Bayes rule for the
  balanced error.
"""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, _fit_context, clone
from sklearn.utils._param_validation import HasMethods, Interval, validate_params
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._meta import check_meta_sample_weight, delegate_input_tags

__all__ = ["LogitAdjustedClassifier", "class_balanced_weights"]


@validate_params(
    {"counts": ["array-like"], "beta": [Interval(Real, 0, 1, closed="left")]},
    prefer_skip_nested_validation=True,
)
def class_balanced_weights(counts, beta=0.9999):
    """Class weights from the effective number of samples (Cui et al., 2019).

    ``w_c = (1 - beta) / (1 - beta ** n_c)``, rescaled so that the weights sum
    to the number of classes ``C``. ``beta = 0`` gives equal weights and
    ``beta -> 1`` approaches inverse class frequency.

    Parameters
    ----------
    counts : array-like of shape (n_classes,)
        Number of training samples per class (positive; need not be
        integers, e.g. weighted counts).
    beta : float in [0, 1), default=0.9999
        The effective-number hyper-parameter; 0.9999 is the value of the
        weight-balancing reference code.

    Returns
    -------
    weights : ndarray of shape (n_classes,)
        Per-class loss weights, summing to ``n_classes``.

    Examples
    --------
    >>> from weightstats.reweighting import class_balanced_weights
    >>> class_balanced_weights([1, 2], beta=0.5)  # (1, 2/3) rescaled to sum 2
    array([1.2, 0.8])
    >>> class_balanced_weights([100, 10, 1], beta=0.0)
    array([1., 1., 1.])
    """
    counts = column_or_1d(np.asarray(counts, dtype=np.float64))
    if counts.size == 0:
        raise ValueError("counts is empty; pass one count per class.")
    if not np.all(np.isfinite(counts)) or np.any(counts <= 0):
        raise ValueError(
            "every class needs a positive, finite count; a class without samples would get an "
            f"infinite weight. Got {counts.tolist()}."
        )
    if beta == 0.0:
        effective = np.ones_like(counts)
    else:
        # 1 - beta^n without cancellation for beta close to 1.
        effective = -np.expm1(counts * np.log(beta))
    weights = (1.0 - beta) / effective
    return weights / weights.sum() * counts.size


class LogitAdjustedClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Post-hoc logit adjustment of any probabilistic classifier.

    Fits ``estimator`` as usual, then predicts with the adjusted scores
    ``log p(c | x) - tau * log pi_c``, where ``pi`` is the training class
    distribution (or a given ``prior``). Rare classes get a boost; with
    ``tau = 1`` and calibrated probabilities the argmax minimises the
    balanced (class-averaged) error (Menon et al., 2021). For torch nets the
    same adjustment, and the multiplicative variant of Hasegawa & Sato
    (2024), is built into :class:`weightstats.nn.WeightBalancingClassifier`.

    Parameters
    ----------
    estimator : classifier with ``predict_proba``
        The base classifier; cloned and fitted in ``fit``.
    tau : float, default=1.0
        Strength of the adjustment; 0 leaves the estimator unchanged.
    prior : array-like of shape (n_classes,) or None, default=None
        Class prior to adjust for, in the order of ``classes_``; ``None``
        uses the (sample-weighted) class frequencies of the training data.

    Attributes
    ----------
    estimator_ : classifier
        The fitted base classifier.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_prior_ : ndarray of shape (n_classes,)
        The prior ``pi`` used for the adjustment.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string
        column names.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.metrics import balanced_accuracy_score
    >>> from weightstats.reweighting import LogitAdjustedClassifier
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], [950, 50])
    >>> X = rng.normal(loc=y[:, None] * 1.5, size=(1000, 2))
    >>> plain = LogisticRegression().fit(X, y)
    >>> adjusted = LogitAdjustedClassifier(LogisticRegression()).fit(X, y)
    >>> adjusted.class_prior_
    array([0.95, 0.05])
    >>> bool(balanced_accuracy_score(y, adjusted.predict(X))
    ...      > balanced_accuracy_score(y, plain.predict(X)))
    True
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "tau": [Interval(Real, 0, None, closed="left")],
        "prior": ["array-like", None],
    }

    def __init__(self, estimator, *, tau=1.0, prior=None):
        self.estimator = estimator
        self.tau = tau
        self.prior = prior

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None, **fit_params):
        """Fit the base classifier and record the class prior.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (validated by the base estimator).
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to the base estimator and used for the class frequencies.
        **fit_params : dict
            Passed to ``estimator.fit``.

        Returns
        -------
        self : object
            The fitted meta-estimator.
        """
        validate_data(self, X, skip_check_array=True)
        y = column_or_1d(np.asarray(y), warn=True)
        check_classification_targets(y)
        sample_weight = check_meta_sample_weight(self.estimator, sample_weight, y)
        if sample_weight is not None:
            fit_params["sample_weight"] = sample_weight
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        self.classes_ = self.estimator_.classes_
        if self.prior is None:
            weights = np.ones(y.shape[0]) if sample_weight is None else sample_weight
            prior = np.array([weights[y == c].sum() for c in self.classes_], dtype=float)
        else:
            prior = np.asarray(self.prior, dtype=float).reshape(-1)
            if prior.shape[0] != self.classes_.shape[0]:
                raise ValueError(
                    f"prior has {prior.shape[0]} entries but there are {self.classes_.shape[0]} "
                    "classes; give one probability per class, in the order of classes_."
                )
        if not np.all(np.isfinite(prior)) or np.any(prior <= 0):
            raise ValueError(
                f"the class prior must be positive and finite for every class; got {prior}."
            )
        self.class_prior_ = prior / prior.sum()
        return self

    def predict_log_proba(self, X):
        """Adjusted, renormalised log-probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            ``log p(c | x) - tau * log pi_c`` minus its log-sum-exp.
        """
        check_is_fitted(self)
        proba = np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)
        scores = np.log(np.maximum(proba, np.finfo(np.float64).tiny))
        scores -= self.tau * np.log(self.class_prior_)
        scores -= scores.max(axis=1, keepdims=True)
        return scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))

    def predict_proba(self, X):
        """Adjusted class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities proportional to ``p(c | x) / pi_c ** tau``.
        """
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """Class with the largest adjusted score.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        scores = self.predict_log_proba(X)
        return self.classes_[np.argmax(scores, axis=1)]

    def __sklearn_tags__(self):
        return delegate_input_tags(super().__sklearn_tags__(), self.estimator)
