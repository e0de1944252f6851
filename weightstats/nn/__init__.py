"""Torch methods as skorch-style estimators, callbacks and modules.

Needs the ``torch`` extra; ``import weightstats`` never imports this package.
"""

try:
    import skorch  # noqa: F401
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised where torch is absent
    raise ImportError(
        "weightstats.nn needs torch and skorch, which are not installed: "
        "pip install weightstats[torch]"
    ) from exc

from ._modules import MLP, ETFHead, MultiHeadMLP
from ._net import NeuralNetClassifier, NeuralNetRegressor

__all__ = [
    "ETFHead",
    "MLP",
    "MultiHeadMLP",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
]
