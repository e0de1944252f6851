"""Causal balancing weights and treatment-effect estimators."""

from ._uniform_transformer import UniformTransformerEstimator

__all__ = [
    "UniformTransformerEstimator",
]
