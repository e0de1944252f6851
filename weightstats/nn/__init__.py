"""Torch methods as skorch-style estimators, callbacks and modules.

Needs the ``torch`` extra; ``import weightstats`` never imports this package.
Every public name is importable from here; the subpackages group them by
the kind of method (see the user guide, "Where methods live"):

* the nets (skorch estimators with scikit-learn defaults and sample
  weights): :class:`NeuralNetClassifier`, :class:`NeuralNetRegressor`;
* :mod:`weightstats.nn.layers`: modules (:class:`MLP`,
  :class:`MultiHeadMLP`, :class:`ETFHead`, :func:`get_head`);
* :mod:`weightstats.nn.data`: which rows and tasks are trained on
  (:class:`DynamicDataPruning`, :class:`PretrainThenMix`, their samplers,
  :func:`el2n_scores`, :func:`temperature_task_probs`);
* :mod:`weightstats.nn.imbalance`: :class:`WeightBalancingClassifier`,
  :class:`WeightAligningClassifier`, :func:`weight_aligning`;
* :mod:`weightstats.nn.merging`: :func:`model_stock`,
  :func:`weight_selection`, :class:`WeightSelectionInit`,
  :func:`uniform_element_selection`;
* :mod:`weightstats.nn.sparse`: which weights to keep
  (:class:`SparseMomentum`, :class:`SoftThresholdSparsity`,
  :class:`GradualMagnitudePruning`, :class:`DPruner`,
  :func:`magnitude_prune`, :func:`sparsity_report`);
* :mod:`weightstats.nn.balancing`: :class:`NeuralCriticIPM`, registered on
  import as ``IPMBalancer(ipm="neural")`` (an adversarially trained MLP
  critic).
"""

try:
    import skorch  # noqa: F401
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised where torch is absent
    raise ImportError(
        "weightstats.nn needs torch and skorch, which are not installed: "
        "pip install weightstats[torch]"
    ) from exc

from ..balancing import register_ipm
from ._core import NeuralNetClassifier, NeuralNetRegressor
from .balancing import NeuralCriticIPM
from .data import (
    ActiveSubsetSampler,
    DynamicDataPruning,
    PretrainThenMix,
    TaskMixtureSampler,
    el2n_scores,
    temperature_task_probs,
)
from .imbalance import WeightAligningClassifier, WeightBalancingClassifier, weight_aligning
from .layers import MLP, ETFHead, MultiHeadMLP, get_head
from .merging import WeightSelectionInit, model_stock, uniform_element_selection, weight_selection
from .sparse import (
    DPruner,
    GradualMagnitudePruning,
    SoftThresholdSparsity,
    SparseMomentum,
    magnitude_prune,
    sparsity_report,
)

__all__ = [
    "ActiveSubsetSampler",
    "DPruner",
    "DynamicDataPruning",
    "ETFHead",
    "GradualMagnitudePruning",
    "MLP",
    "MultiHeadMLP",
    "NeuralCriticIPM",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "PretrainThenMix",
    "SoftThresholdSparsity",
    "SparseMomentum",
    "TaskMixtureSampler",
    "WeightAligningClassifier",
    "WeightBalancingClassifier",
    "WeightSelectionInit",
    "el2n_scores",
    "get_head",
    "magnitude_prune",
    "model_stock",
    "sparsity_report",
    "temperature_task_probs",
    "uniform_element_selection",
    "weight_aligning",
    "weight_selection",
]

# Idempotent: registering the same class again is a no-op.
register_ipm("neural", NeuralCriticIPM)
