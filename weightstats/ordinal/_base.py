"""Shared parts of the cumulative-logit classifiers: target handling, prediction."""

import warnings

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from .._kernels._isotonic import pava_rows
from ..utils import check_sample_weight
from ._labels import categorical_order, encode_ordinal

__all__ = ["CrossingWarning", "SeparationWarning"]


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


class SeparationWarning(ConvergenceWarning):
    """The classes are (quasi-)separable: the maximum-likelihood estimate does not exist.

    Some direction of the unpenalised parameters (the intercepts, plus the
    shared slopes of the proportional-odds model, PRESTO's first slope
    vector when ``penalize_first=False``, or every slope when ``alpha=0``)
    raises the likelihood of some training rows without bound and lowers
    that of none. The coefficients then grow along that direction, those
    rows' fitted cumulative probabilities tend to 0 or 1, and the solver
    stops only because the gradient becomes tiny: the reported
    coefficients, intercepts and standard errors are arbitrary points on
    the way to infinity, not estimates. statsmodels
    (``PerfectSeparationWarning``) and R (``glm``: "fitted probabilities
    numerically 0 or 1 occurred") warn in the same situation.

    The check is exact: the linear programme of Konis (2007), as in the R
    package ``detectseparation``, written for cumulative links. It runs
    after every fit that did not converge or has a slope above 5 per
    standard deviation of its feature (an odds ratio above 148 per SD):
    separated data drive the slopes far beyond that (29 to 2,400 per SD in
    our tests at the default ``tol``), and ordinary fits skip the cost of
    the linear programme. The message gives the number of rows whose
    likelihood rises without bound and the features of the direction.

    Remedies: remove or merge the separating features or classes, or
    penalise every slope (:class:`PRESTOClassifier` with
    ``penalize_first=True`` and ``alpha > 0`` has a finite solution for any
    data). A subclass of :class:`sklearn.exceptions.ConvergenceWarning`.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from weightstats.ordinal import ProportionalOddsClassifier, SeparationWarning
    >>> X = np.linspace(-3, 3, 60)[:, None]
    >>> y = np.digitize(X[:, 0], [-1.0, 1.0])  # the classes are ordered by x
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = ProportionalOddsClassifier().fit(X, y)
    >>> [w.category.__name__ for w in caught]
    ['SeparationWarning']
    """


# Standardised slope (log-odds per SD) above which a fit is checked for separation.
_SEPARATION_SCREEN = 5.0


def warn_if_separated(estimator, problem, slopes, converged):
    """Issue a :class:`SeparationWarning` when ``problem`` is separable along
    the free directions ``slopes`` (``"shared"`` or ``"free"``); return whether it was.

    Separated data drive the slopes to infinity, so the (linear-programme)
    check only runs for fits that stopped early or have a large standardised
    slope.
    """
    std_slopes = np.abs(np.asarray(estimator.coef_)) * problem.sd
    if converged and not np.any(std_slopes > _SEPARATION_SCREEN):
        return False
    found = problem.separation(slopes)
    if found is None:
        return False
    names = getattr(estimator, "feature_names_in_", None)
    features = [str(names[j]) if names is not None else f"x{j}" for j in found.features]
    largest = float(np.max(np.abs(estimator.coef_))) if np.size(estimator.coef_) else 0.0
    n = problem.Zt.shape[0]
    warnings.warn(
        f"{type(estimator).__name__}: the classes are (quasi-)separable: along a direction of "
        f"the unpenalised coefficients (involving features {features} and the intercepts) "
        f"the likelihood of {found.n_rows} of {n} training rows rises without bound and that of "
        "no row falls, so the maximum-likelihood estimate does not exist. Those rows' fitted "
        "cumulative probabilities tend to 0 or 1 and the coefficients (largest |coef_| = "
        f"{largest:.3g}) only stop growing because the solver stops; they, the intercepts "
        "and any standard errors are not estimates. Remove or merge the separating features "
        "or classes, or penalise the slopes (PRESTOClassifier with penalize_first=True and "
        "alpha > 0).",
        SeparationWarning,
        stacklevel=3,
    )
    return True


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
