"""Metrics for weighted methods: interval and quantile forecast scores."""

from ._intervals import (
    interval_coverage,
    mean_interval_width,
    pinball_loss,
    quantile_crossing_rate,
    weighted_interval_score,
)

__all__ = [
    "interval_coverage",
    "mean_interval_width",
    "pinball_loss",
    "quantile_crossing_rate",
    "weighted_interval_score",
]
