"""Ordinal classification: PRESTO and the proportional-odds model.

Cumulative-logit classifiers for ordered classes (``P(Y <= k | x) =
sigmoid(intercept_k + x @ coef_k)``), built for rare outcomes that are the last
step of a sequence of common ones.
"""

from ._base import CrossingWarning, SeparationWarning
from ._presto import PRESTOClassifier, PRESTOClassifierCV
from ._proportional_odds import ProportionalOddsClassifier

__all__ = [
    "CrossingWarning",
    "PRESTOClassifier",
    "PRESTOClassifierCV",
    "ProportionalOddsClassifier",
    "SeparationWarning",
]
