"""Torch methods as skorch-style estimators, callbacks and modules.

Needs the ``torch`` extra; ``import weightstats`` never imports this package.

* Estimators (skorch nets with scikit-learn defaults and sample weights):
  :class:`NeuralNetClassifier`, :class:`NeuralNetRegressor`,
  :class:`WeightBalancingClassifier`, :class:`WeightAligningClassifier`.
* Training extras as skorch callbacks with mutable samplers:
  :class:`DynamicDataPruning` + :class:`ActiveSubsetSampler` (EL2N data
  diets), :class:`PretrainThenMix` + :class:`TaskMixtureSampler`,
  :class:`WeightSelectionInit`.
* Functions on weights and outputs: :func:`el2n_scores`,
  :func:`temperature_task_probs`, :func:`weight_aligning`,
  :func:`model_stock`, :func:`weight_selection`,
  :func:`uniform_element_selection`, :func:`get_head`.
* Modules: :class:`MLP`, :class:`MultiHeadMLP`, :class:`ETFHead`.
* Parameter-efficient fine-tuning and reparametrisation
  (:mod:`weightstats.nn.peft`): :class:`BoneLinear`, :class:`LoRALinear`,
  :class:`PHMLinear`, :class:`CompacterAdapter`, :func:`add_adapters` and
  the :class:`AdapterTuning` callback, :func:`weight_compander` and the
  :class:`WeightCompanding` callback.
* Balancing: :class:`NeuralCriticIPM`, registered on import as
  ``IPMBalancer(ipm="neural")`` (an adversarially trained MLP critic).
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
from ._balancing import NeuralCriticIPM
from ._data_diet import ActiveSubsetSampler, DynamicDataPruning, el2n_scores
from ._long_tail import WeightBalancingClassifier, get_head
from ._model_stock import model_stock
from ._modules import MLP, ETFHead, MultiHeadMLP
from ._net import NeuralNetClassifier, NeuralNetRegressor
from ._task_mixture import PretrainThenMix, TaskMixtureSampler, temperature_task_probs
from ._weight_aligning import WeightAligningClassifier, weight_aligning
from ._weight_selection import WeightSelectionInit, uniform_element_selection, weight_selection
from .peft import (
    AdapterSummary,
    AdapterTuning,
    BoneLinear,
    BottleneckAdapter,
    CompacterAdapter,
    Compander,
    LoRALinear,
    PHMLinear,
    WeightCompanding,
    adapter_summary,
    add_adapters,
    merge_adapters,
    phm_rule,
    remove_weight_compander,
    unmerge_adapters,
    weight_compander,
)

__all__ = [
    "ActiveSubsetSampler",
    "AdapterSummary",
    "AdapterTuning",
    "BoneLinear",
    "BottleneckAdapter",
    "CompacterAdapter",
    "Compander",
    "DynamicDataPruning",
    "ETFHead",
    "LoRALinear",
    "MLP",
    "MultiHeadMLP",
    "NeuralCriticIPM",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "PHMLinear",
    "PretrainThenMix",
    "TaskMixtureSampler",
    "WeightAligningClassifier",
    "WeightBalancingClassifier",
    "WeightCompanding",
    "WeightSelectionInit",
    "adapter_summary",
    "add_adapters",
    "el2n_scores",
    "get_head",
    "merge_adapters",
    "model_stock",
    "phm_rule",
    "remove_weight_compander",
    "temperature_task_probs",
    "uniform_element_selection",
    "unmerge_adapters",
    "weight_aligning",
    "weight_compander",
    "weight_selection",
]

# Idempotent: registering the same class again is a no-op.
register_ipm("neural", NeuralCriticIPM)
