"""Data reweighting: learn sample weights for a downstream estimator."""

from ._coreset import CoresetReweighter

__all__ = ["CoresetReweighter"]
