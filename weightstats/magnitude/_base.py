"""What the magnitude estimators share: parameters, standardisation, scale and fitted space."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._scale import DEFAULT_SCALE_FACTOR, median_distance
from ._solvers import METHODS, METRICS
from ._space import fit_space

__all__ = ["MagnitudeMixin"]


class MagnitudeMixin:
    """Parameters, standardisation and scale shared by the magnitude estimators."""

    _parameter_constraints: dict = {
        "scale": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "method": [StrOptions(set(METHODS))],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), None],
        "standardize": ["boolean"],
        "metric": [StrOptions(set(METRICS))],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    def _standardise_fit(self, X):
        if self.standardize:
            self.mean_ = X.mean(axis=0)
            std = X.std(axis=0)
            # Constant features carry no information; dividing by 1 keeps them at 0.
            self.std_ = np.where(std > 0, std, 1.0)
        else:
            self.mean_ = np.zeros(X.shape[1])
            self.std_ = np.ones(X.shape[1])
        return (X - self.mean_) / self.std_

    def _standardise(self, X):
        return (X - self.mean_) / self.std_

    def _fit_scale(self, points):
        if self.scale == "auto":
            return DEFAULT_SCALE_FACTOR / median_distance(
                points, self.metric, random_state=getattr(self, "random_state", None)
            )
        return float(self.scale)

    def _fit_space(self, points):
        return fit_space(points, self.scale_, metric=self.metric, method=self.method,
                         n_neighbors=self.n_neighbors, n_jobs=self.n_jobs)
