"""Metric-space magnitude and weighting vectors (Bunch et al., 2020, 2021).

The weighting vector ``w`` of points ``x_1..x_n`` at scale ``t`` solves
``Z w = 1`` with ``Z[i, j] = exp(-t d(x_i, x_j))``; the magnitude is
``sum(w)``. Boundary points get large weights, which makes weights useful for
boundary detection, outlier detection, classification and active learning.
"""

from ._active import MagnitudeActiveLearner, query_by_weight
from ._classifier import MagnitudeClassifier
from ._outliers import MagnitudeOutlierDetector
from ._scale import select_scale
from ._weighting import boundary_scores, magnitude, magnitude_function, weighting_vector

__all__ = [
    "MagnitudeActiveLearner",
    "MagnitudeClassifier",
    "MagnitudeOutlierDetector",
    "boundary_scores",
    "magnitude",
    "magnitude_function",
    "query_by_weight",
    "select_scale",
    "weighting_vector",
]
