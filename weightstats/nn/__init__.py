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
* :mod:`weightstats.nn.peft`: adapters (:class:`BoneLinear`,
  :class:`LoRALinear`, :class:`PHMLinear`, :class:`CompacterAdapter`,
  :func:`add_adapters`, :func:`merge_adapters`, the :class:`AdapterTuning`
  callback) and the weight compander (:func:`weight_compander`, the
  :class:`WeightCompanding` callback);
* :mod:`weightstats.nn.diffusion`: classifier-free guidance schedules
  (:func:`guidance_schedule`, :class:`GuidanceSchedule`,
  :func:`cfg_combine`), timestep loss weights
  (:func:`diffusion_loss_weights`, :func:`noise_schedule`) and the
  conditional DDPM :class:`ConditionalDiffusion` with
  :class:`ConditionalDenoiser`;
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
from .diffusion import (
    ConditionalDenoiser,
    ConditionalDiffusion,
    GuidanceSchedule,
    cfg_combine,
    diffusion_loss_weights,
    guidance_schedule,
    noise_schedule,
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
    "ConditionalDenoiser",
    "ConditionalDiffusion",
    "DynamicDataPruning",
    "ETFHead",
    "GuidanceSchedule",
    "HeadSharingPenalty",
    "HeadSharingReport",
    "LoRALinear",
    "MLP",
    "MultiHeadMLP",
    "NeuralCriticIPM",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "PHMLinear",
    "PretrainThenMix",
    "SRWMLayer",
    "TaskMixtureSampler",
    "TinyTransformer",
    "WeightAligningClassifier",
    "WeightBalancingClassifier",
    "WeightCompanding",
    "WeightSelectionInit",
    "adapter_summary",
    "add_adapters",
    "cfg_combine",
    "diffusion_loss_weights",
    "el2n_scores",
    "get_head",
    "guidance_schedule",
    "head_similarity",
    "merge_adapters",
    "model_stock",
    "noise_schedule",
    "phm_rule",
    "remove_weight_compander",
    "share_heads",
    "temperature_task_probs",
    "uniform_element_selection",
    "unmerge_adapters",
    "weight_aligning",
    "weight_compander",
    "weight_selection",
]

# Idempotent: registering the same class again is a no-op.
register_ipm("neural", NeuralCriticIPM)
