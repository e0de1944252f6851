"""Outcome models behind the effect standard errors: kernel ridge regression.

Balancing weights make the weighted mean of every function they balance equal
to its target mean, so the part of the outcome such a function explains
cancels from the estimation error; what remains is the residual of the
outcome on that class. The default standard error of the kernel balancers is
therefore a sandwich on residuals from a regression in the balancing kernel's
reproducing-kernel Hilbert space: kernel ridge regression with the same
Gaussian kernel, plus the linear terms.

The regression uses the Nystroem features of a pivoted-Cholesky factor
(``K ~= Phi Phi'``, landmarks chosen by the factor, at most ``max_rank``; the
fit then costs O(n r^2) instead of O(n^3)) and chooses the ridge penalty by
efficient leave-one-out cross-validation (scikit-learn's ``RidgeCV``).
"""

import numbers

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import RidgeCV
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._kernels import kernel_matrix, pairwise_distances
from .._kernels._lowrank import pivoted_cholesky
from ..utils import check_sample_weight

__all__ = ["KernelRidgeOutcome"]

#: Ridge penalties tried by leave-one-out cross-validation.
DEFAULT_ALPHAS = tuple(np.logspace(-6, 3, 19))


class KernelRidgeOutcome(RegressorMixin, BaseEstimator):
    """Kernel ridge regression (Gaussian kernel plus linear terms) for outcome models.

    Covariates are standardised by their (weighted) mean and standard
    deviation; the features are the standardised covariates and the
    Nystroem features of the Gaussian kernel
    ``exp(-|x - y|^2 / (2 bandwidth^2))`` at up to ``max_rank`` landmarks
    chosen by a pivoted Cholesky factorisation (trace error below
    ``1e-8`` per unit, or ``max_rank`` landmarks). A ridge regression on those
    features with the penalty chosen by leave-one-out cross-validation over
    ``alphas`` is kernel ridge regression with the kernel ``linear +
    Gaussian`` (up to the factor's error).

    Parameters
    ----------
    bandwidth : float or "median", default="median"
        Gaussian bandwidth on the standardised covariates; ``"median"`` is
        the median pairwise distance of (up to 1000 of) the training points.
    max_rank : int, default=300
        Most landmarks.
    alphas : tuple of float, default=DEFAULT_ALPHAS
        Candidate ridge penalties (19 values from 1e-6 to 1e3).
    scaling : tuple of (ndarray, ndarray), default=None
        Fixed ``(center, scale)`` of the covariates, e.g. those a balancer
        standardised with, so that the kernel is the balancing kernel;
        ``None`` standardises by the training data.

    Attributes
    ----------
    bandwidth_ : float
        The bandwidth used.
    landmarks_ : ndarray of shape (n_landmarks, n_features)
        Standardised landmark points.
    ridge_ : sklearn.linear_model.RidgeCV
        The fitted ridge regression (``ridge_.alpha_`` the chosen penalty).

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.balancing._outcome import KernelRidgeOutcome
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, size=(400, 2))
    >>> y = X[:, 0] ** 2 + X[:, 0] * X[:, 1] + 0.1 * rng.standard_normal(400)
    >>> model = KernelRidgeOutcome().fit(X, y)
    >>> bool(np.std(y - model.predict(X)) < 0.15)
    True
    """

    _parameter_constraints = {
        "bandwidth": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"median"})],
        "max_rank": [Interval(numbers.Integral, 1, None, closed="left")],
        "alphas": ["array-like"],
        "scaling": [tuple, None],
    }

    def __init__(self, bandwidth="median", max_rank=300, alphas=DEFAULT_ALPHAS, scaling=None):
        self.bandwidth = bandwidth
        self.max_rank = max_rank
        self.alphas = alphas
        self.scaling = scaling

    def fit(self, X, y, sample_weight=None):
        """Fit the regression.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Covariates.
        y : array-like of shape (n_samples,)
            Outcomes.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights.

        Returns
        -------
        self : object
            The fitted model.
        """
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        s = check_sample_weight(sample_weight, X)
        if self.scaling is not None:
            self.mean_, sd = (np.asarray(v, dtype=float) for v in self.scaling)
        else:
            p = s / s.sum()
            self.mean_ = p @ X
            sd = np.sqrt(p @ (X - self.mean_) ** 2)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        Z = (X - self.mean_) / self.scale_
        if self.bandwidth == "median":
            idx = np.linspace(0, Z.shape[0] - 1, min(Z.shape[0], 1000)).astype(int)
            D = pairwise_distances(Z[idx])
            values = D[np.triu_indices_from(D, k=1)]
            values = values[values > 0]
            self.bandwidth_ = float(np.median(values)) if values.size else 1.0
        else:
            self.bandwidth_ = float(self.bandwidth)
        L, pivots, _ = pivoted_cholesky(Z, bandwidth=self.bandwidth_, tol=1e-8,
                                        max_rank=min(self.max_rank, Z.shape[0]))
        self.landmarks_ = Z[pivots]
        self._chol = L[pivots]
        self.ridge_ = RidgeCV(alphas=np.asarray(self.alphas, dtype=float), gcv_mode="svd").fit(
            self._features(Z), y, sample_weight=s)
        return self

    def _features(self, Z):
        K = kernel_matrix(Z, self.landmarks_, bandwidth=self.bandwidth_)
        phi = linalg.solve_triangular(self._chol, K.T, lower=True, check_finite=False).T
        return np.hstack([Z, phi])

    def predict(self, X):
        """Predicted outcomes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Covariates.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predictions.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.ridge_.predict(self._features((X - self.mean_) / self.scale_))
