"""Metrics: scores for ordinal, interval and quantile predictions, and class-weighted averages."""

from ._class_weighted import (
    class_weighted_f1_score,
    class_weighted_precision_recall_fscore_support,
    class_weights,
    weighted_classification_report,
)
from ._intervals import (
    interval_coverage,
    mean_interval_width,
    pinball_loss,
    quantile_crossing_rate,
    weighted_interval_score,
)
from ._ordinal import multiclass_brier_score, ranked_probability_score

__all__ = [
    "class_weighted_f1_score",
    "class_weighted_precision_recall_fscore_support",
    "class_weights",
    "interval_coverage",
    "mean_interval_width",
    "multiclass_brier_score",
    "pinball_loss",
    "quantile_crossing_rate",
    "ranked_probability_score",
    "weighted_classification_report",
    "weighted_interval_score",
]
