"""Shared parts of the cumulative-logit classifiers: target handling, prediction."""

import warnings

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .._kernels._ordinal import pava_rows
from ..utils import check_sample_weight
from ._labels import categorical_order, encode_ordinal

__all__ = ["CrossingWarning"]


class CrossingWarning(UserWarning):
    """Fitted cumulative probabilities cross (the boundaries are not ordered).

    With boundary-specific slopes, ``P(Y <= k | x)`` can exceed
    ``P(Y <= k + 1 | x)`` at some ``x``, which would give a negative class
    probability. :meth:`PRESTOClassifier.predict_proba` then projects the
    cumulative probabilities of those rows onto ordered ones (least squares,
    pool-adjacent-violators) and warns with this category, giving the number
    of rows affected. Filter it with :func:`warnings.simplefilter` if the
    projection is acceptable for your use.

    Examples
    --------
    >>> import warnings
    >>> from weightstats.ordinal import CrossingWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", CrossingWarning)
    """


def cumulative_to_proba(eta):
    """Class probabilities from linear predictors ``(n, K-1)``.

    Rows whose cumulative probabilities are not non-decreasing are replaced by
    their least-squares projection onto non-decreasing vectors (so the classes
    between crossing boundaries get probability 0 and boundaries that do not
    cross are unchanged). Returns ``(proba, n_rows_changed)``.
    """
    F = expit(eta)
    changed = pava_rows(F) if F.shape[0] else 0
    n = F.shape[0]
    proba = np.diff(np.hstack([np.zeros((n, 1)), F, np.ones((n, 1))]), axis=1)
    return proba, int(changed)


def count_crossings(eta):
    """Number of rows where some boundary ``k`` lies above boundary ``k + 1``."""
    return int(np.count_nonzero(np.any(np.diff(eta, axis=1) < 0, axis=1)))


class _BaseOrdinalClassifier(ClassifierMixin, BaseEstimator):
    """Prediction for fitted ``coef_`` / ``intercept_`` of a cumulative logit.

    Convention (ordinalNet, the PRESTO paper): ``P(Y <= k | x) =
    sigmoid(intercept_[k] + x @ coef_[k])``; positive coefficients move mass to
    the *lower* classes. statsmodels' ``OrderedModel`` and R's ``polr`` write
    ``F(threshold_k - x @ beta)``: their ``beta`` is ``-coef_``.
    """

    def _validate_fit_data(self, X, y, sample_weight):
        categorical = categorical_order(y)
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
        codes, classes = encode_ordinal(y, classes=self.classes, categorical=categorical)
        sample_weight = check_sample_weight(sample_weight, X)
        totals = np.bincount(codes, weights=sample_weight, minlength=classes.shape[0])
        if np.any(totals <= 0):
            raise ValueError(
                f"class(es) {list(classes[totals <= 0])} have zero total sample_weight; every "
                "class needs positive weight."
            )
        self.classes_ = classes
        return X, codes, sample_weight

    def _coef_matrix(self):
        coef = np.asarray(self.coef_)
        if coef.ndim == 1:
            return np.broadcast_to(coef, (self.intercept_.shape[0], coef.shape[0]))
        return coef

    def decision_function(self, X):
        """The ``K - 1`` linear predictors: log-odds of ``Y <= classes_[k]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        eta : ndarray of shape (n_samples, n_classes - 1)
            ``intercept_[k] + X @ coef_[k]``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self._coef_matrix().T + self.intercept_

    def predict_proba(self, X):
        """Class probabilities.

        Rows where the fitted boundaries cross are projected onto ordered
        cumulative probabilities, with a :class:`CrossingWarning`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Non-negative rows summing to 1, columns in the order of
            ``classes_``.
        """
        proba, changed = cumulative_to_proba(self.decision_function(X))
        if changed:
            warnings.warn(
                f"the fitted boundaries cross at {changed} of {proba.shape[0]} rows (some "
                "P(Y <= k) > P(Y <= k + 1)); their cumulative probabilities were projected onto "
                "ordered ones, giving probability 0 to the classes in between. A larger alpha "
                "shrinks the boundaries towards parallel ones.",
                CrossingWarning,
                stacklevel=2,
            )
        return proba

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba` (``-inf`` for probability 0).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log class probabilities.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = False
        return tags
