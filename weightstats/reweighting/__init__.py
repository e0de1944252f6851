"""Data reweighting: learn sample weights for a downstream estimator."""

from ._coreset import CoresetReweighter
from ._ds_weight import DSWeightSelfTraining, ds_weight_filter, ds_weights
from ._long_tail import LogitAdjustedClassifier, class_balanced_weights
from ._model_stock import model_stock, model_stock_linear

__all__ = [
    "CoresetReweighter",
    "DSWeightSelfTraining",
    "LogitAdjustedClassifier",
    "class_balanced_weights",
    "ds_weight_filter",
    "ds_weights",
    "model_stock",
    "model_stock_linear",
]
