"""Linear models: Kalman-filtered SGD regression (experimental)."""

from ._kalman_sgd import KalmanSGDRegressor

__all__ = ["KalmanSGDRegressor"]
