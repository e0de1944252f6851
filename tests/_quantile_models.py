"""A small quantile model used by the tests of the ensemble and conformal families.

``KNeighborsQuantileRegressor`` predicts any set of levels at once (the
interface of quantile-forest's ``RandomForestQuantileRegressor``) in
milliseconds, so the common tests and the statistical tests exercise
:class:`~weightstats.ensemble.MultiQuantileRegressor` without an optional
dependency. It stores only arrays, and its ``sample_weight`` is exactly
equivalent to repeating rows: neighbours are taken until their total weight
reaches ``n_neighbors`` (the last one partially), and quantiles are the
weighted inverted-CDF quantiles of their targets.
"""

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data


class KNeighborsQuantileRegressor(RegressorMixin, BaseEstimator):
    """Empirical quantiles of the targets of the nearest (standardised) neighbours."""

    def __init__(self, n_neighbors=20):
        self.n_neighbors = n_neighbors

    def fit(self, X, y, sample_weight=None):
        X, y = validate_data(self, X, y, y_numeric=True)
        w = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        v = w / w.sum()
        self.mean_ = v @ X
        scale = np.sqrt(v @ (X - self.mean_) ** 2)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.X_ = (X - self.mean_) / self.scale_
        self.y_ = np.asarray(y, dtype=float)
        self.weights_ = w
        return self

    def predict(self, X, quantiles=0.5):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        levels = np.atleast_1d(np.asarray(quantiles, dtype=float))
        order = np.argsort(cdist((X - self.mean_) / self.scale_, self.X_), axis=1, kind="stable")
        w = self.weights_[order]
        k = min(self.n_neighbors, self.weights_.sum())
        taken = np.clip(k - (np.cumsum(w, axis=1) - w), 0.0, w)
        y = self.y_[order]
        by_y = np.argsort(y, axis=1, kind="stable")
        y = np.take_along_axis(y, by_y, axis=1)
        cumulative = np.cumsum(np.take_along_axis(taken, by_y, axis=1), axis=1)
        out = np.empty((X.shape[0], levels.shape[0]))
        for j, level in enumerate(levels):
            index = np.argmax(cumulative >= level * cumulative[:, -1:], axis=1)
            out[:, j] = y[np.arange(X.shape[0]), index]
        return out[:, 0] if np.ndim(quantiles) == 0 else out
