"""Metrics: scores for probabilistic and interval predictions, and class-weighted averages."""

from ._class_weighted import (
    class_weighted_f1_score,
    class_weighted_precision_recall_fscore_support,
    class_weights,
    weighted_classification_report,
)
from ._ordinal import multiclass_brier_score, ranked_probability_score

__all__ = [
    "class_weighted_f1_score",
    "class_weighted_precision_recall_fscore_support",
    "class_weights",
    "multiclass_brier_score",
    "ranked_probability_score",
    "weighted_classification_report",
]
