"""Metrics: class-weighted averages of per-class scores."""

from ._class_weighted import (
    class_weighted_f1_score,
    class_weighted_precision_recall_fscore_support,
    class_weights,
    weighted_classification_report,
)

__all__ = [
    "class_weighted_f1_score",
    "class_weighted_precision_recall_fscore_support",
    "class_weights",
    "weighted_classification_report",
]
