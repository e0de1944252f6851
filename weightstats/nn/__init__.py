"""Torch methods as skorch-style estimators, callbacks and modules.

Needs the ``torch`` extra; ``import weightstats`` never imports this package.
Every public name is importable from here; the subpackages group them by
the kind of method (see the user guide, "Where methods live"):

* the nets (skorch estimators with scikit-learn defaults and sample
  weights): :class:`NeuralNetClassifier`, :class:`NeuralNetRegressor`;
* :mod:`weightstats.nn.layers`: modules (:class:`MLP`,
  :class:`MultiHeadMLP`, :class:`ETFHead`, :func:`get_head`,
  :class:`TinyTransformer`, :class:`SRWMLayer`);
* :mod:`weightstats.nn.data`: which rows and tasks are trained on
  (:class:`DynamicDataPruning`, :class:`PretrainThenMix`, their samplers,
  :func:`el2n_scores`, :func:`temperature_task_probs`);
* :mod:`weightstats.nn.imbalance`: :class:`WeightBalancingClassifier`,
  :class:`WeightAligningClassifier`, :func:`weight_aligning`;
* :mod:`weightstats.nn.merging`: :func:`model_stock`,
  :func:`weight_selection`, :class:`WeightSelectionInit`,
  :func:`uniform_element_selection`; head-wise shareable attention
  (:func:`head_similarity`, :func:`share_heads`,
  :class:`HeadSharingPenalty`, :class:`HeadSharingReport`);
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
from .layers import MLP, ETFHead, MultiHeadMLP, SRWMLayer, TinyTransformer, get_head
from .merging import (
    HeadSharingPenalty,
    HeadSharingReport,
    WeightSelectionInit,
    head_similarity,
    model_stock,
    share_heads,
    uniform_element_selection,
    weight_selection,
)

__all__ = [
    "ActiveSubsetSampler",
    "DynamicDataPruning",
    "ETFHead",
    "HeadSharingPenalty",
    "HeadSharingReport",
    "MLP",
    "MultiHeadMLP",
    "NeuralCriticIPM",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "PretrainThenMix",
    "SRWMLayer",
    "TaskMixtureSampler",
    "TinyTransformer",
    "WeightAligningClassifier",
    "WeightBalancingClassifier",
    "WeightSelectionInit",
    "el2n_scores",
    "get_head",
    "head_similarity",
    "model_stock",
    "share_heads",
    "temperature_task_probs",
    "uniform_element_selection",
    "weight_aligning",
    "weight_selection",
]

# Idempotent: registering the same class again is a no-op.
register_ipm("neural", NeuralCriticIPM)
