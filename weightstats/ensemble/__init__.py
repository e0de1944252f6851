"""Weighted ensembles: QP-optimal convex regression ensembles and quantile aggregation.

* :class:`ConvexEnsembleRegressor`: convex weights (non-negative, summing to
  one) that minimise the out-of-fold squared error, solved exactly.
* :class:`QuantileAggregator`: pinball-optimal convex weights over quantile
  models (global, per level, or feature-dependent), with non-crossing
  quantiles.
* :class:`PerQuantileRegressor` and :class:`MultiQuantileRegressor`: adapters
  for the two common shapes of base quantile model.
"""

from ._convex import ConvexEnsembleRegressor
from ._quantile_adapters import MultiQuantileRegressor, PerQuantileRegressor
from ._quantile_aggregation import QuantileAggregator, monotonize_quantiles

__all__ = [
    "ConvexEnsembleRegressor",
    "MultiQuantileRegressor",
    "PerQuantileRegressor",
    "QuantileAggregator",
    "monotonize_quantiles",
]
