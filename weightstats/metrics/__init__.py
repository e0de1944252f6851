"""Metrics: scores for probabilistic predictions and fitted weights."""

from ._ordinal import multiclass_brier_score, ranked_probability_score

__all__ = [
    "multiclass_brier_score",
    "ranked_probability_score",
]
