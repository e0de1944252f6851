"""Conformal prediction intervals around quantile models.

* :class:`ConformalQuantileRegressor`: conformalized quantile regression
  (split CQR, its asymmetric variant, and CV+), with MAPIE's vocabulary.
"""

from ._cqr import ConformalQuantileRegressor

__all__ = ["ConformalQuantileRegressor"]
