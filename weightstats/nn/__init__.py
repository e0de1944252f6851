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
* Diffusion (:mod:`weightstats.nn.diffusion`): classifier-free guidance
  schedules :func:`guidance_schedule`, :class:`GuidanceSchedule`,
  :func:`cfg_combine`; timestep loss weights :func:`diffusion_loss_weights`
  and :func:`noise_schedule`; the conditional DDPM
  :class:`ConditionalDiffusion` with :class:`ConditionalDenoiser`.
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
from .diffusion import (
    ConditionalDenoiser,
    ConditionalDiffusion,
    GuidanceSchedule,
    cfg_combine,
    diffusion_loss_weights,
    guidance_schedule,
    noise_schedule,
)

__all__ = [
    "ActiveSubsetSampler",
    "ConditionalDenoiser",
    "ConditionalDiffusion",
    "DynamicDataPruning",
    "ETFHead",
    "GuidanceSchedule",
    "MLP",
    "MultiHeadMLP",
    "NeuralCriticIPM",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "PretrainThenMix",
    "TaskMixtureSampler",
    "WeightAligningClassifier",
    "WeightBalancingClassifier",
    "WeightSelectionInit",
    "cfg_combine",
    "diffusion_loss_weights",
    "el2n_scores",
    "get_head",
    "guidance_schedule",
    "model_stock",
    "noise_schedule",
    "temperature_task_probs",
    "uniform_element_selection",
    "weight_aligning",
    "weight_selection",
]

# Idempotent: registering the same class again is a no-op.
register_ipm("neural", NeuralCriticIPM)
