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
* :mod:`weightstats.nn.quantization`: quantisation-aware training with
  :class:`StatsQ` / :class:`LSQ` (:func:`prepare_qat`),
  :class:`TrackOscillation`, :class:`ConfidenceGuidedAnnealing`,
  :class:`QKReparamAttention`; post-training :class:`SignRound` and
  :func:`rtn_quantize` into :class:`QuantLinear` layers;
* :mod:`weightstats.nn.sparse`: which weights to keep
  (:class:`SparseMomentum`, :class:`SoftThresholdSparsity`,
  :class:`GradualMagnitudePruning`, :class:`DPruner`,
  :func:`magnitude_prune`, :func:`sparsity_report`);
* :mod:`weightstats.nn.balancing`: :class:`NeuralCriticIPM`, registered on
  import as ``IPMBalancer(ipm="neural")`` (an adversarially trained MLP
  critic);
* :mod:`weightstats.nn.robust`: adversarial training with AWP/RWP weight
  perturbation (:class:`AdversarialTraining`, :func:`pgd_attack`,
  :func:`adversarial_weight_perturbation`) and weight-poisoning audits
  (:func:`ripple_poison`, :func:`embedding_surgery`, :func:`label_flip_rate`,
  :func:`scan_for_triggers`, :func:`insert_triggers`);
* :mod:`weightstats.nn.learning_rules`: equilibrium propagation
  (:class:`EquilibriumPropagationClassifier`, :class:`EquilibriumNet`,
  :func:`jacobian_asymmetry`, :func:`homeostatic_loss`).
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
from .layers import (
    MLP,
    EmbeddingBagClassifier,
    ETFHead,
    MultiHeadMLP,
    SRWMLayer,
    TinyTransformer,
    get_head,
)
from .learning_rules import (
    EquilibriumNet,
    EquilibriumPropagationClassifier,
    homeostatic_loss,
    jacobian_asymmetry,
)
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
from .quantization import (
    LSQ,
    ConfidenceGuidedAnnealing,
    QKReparamAttention,
    QuantLinear,
    SignRound,
    StatsQ,
    TrackOscillation,
    confident_weights,
    lsq_fake_quantize,
    prepare_qat,
    quantized_weights,
    rtn_quantize,
    signround_fake_quantize,
    statsq_quantize,
)
from .sparse import (
    DPruner,
    GradualMagnitudePruning,
    SoftThresholdSparsity,
    SparseMomentum,
    magnitude_prune,
    sparsity_report,
)
from .robust import (
    AdversarialTraining,
    adversarial_weight_perturbation,
    embedding_surgery,
    insert_triggers,
    label_flip_rate,
    pgd_attack,
    ripple_poison,
    scan_for_triggers,
)

__all__ = [
    "ActiveSubsetSampler",
    "AdapterSummary",
    "AdapterTuning",
    "AdversarialTraining",
    "BoneLinear",
    "BottleneckAdapter",
    "CompacterAdapter",
    "Compander",
    "ConditionalDenoiser",
    "ConditionalDiffusion",
    "ConfidenceGuidedAnnealing",
    "DPruner",
    "DynamicDataPruning",
    "ETFHead",
    "EmbeddingBagClassifier",
    "EquilibriumNet",
    "EquilibriumPropagationClassifier",
    "GradualMagnitudePruning",
    "GuidanceSchedule",
    "HeadSharingPenalty",
    "HeadSharingReport",
    "LSQ",
    "LoRALinear",
    "MLP",
    "MultiHeadMLP",
    "NeuralCriticIPM",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "PHMLinear",
    "PretrainThenMix",
    "QKReparamAttention",
    "QuantLinear",
    "SRWMLayer",
    "SignRound",
    "SoftThresholdSparsity",
    "SparseMomentum",
    "StatsQ",
    "TaskMixtureSampler",
    "TinyTransformer",
    "TrackOscillation",
    "WeightAligningClassifier",
    "WeightBalancingClassifier",
    "WeightCompanding",
    "WeightSelectionInit",
    "adapter_summary",
    "add_adapters",
    "adversarial_weight_perturbation",
    "cfg_combine",
    "confident_weights",
    "diffusion_loss_weights",
    "el2n_scores",
    "embedding_surgery",
    "get_head",
    "guidance_schedule",
    "head_similarity",
    "homeostatic_loss",
    "insert_triggers",
    "jacobian_asymmetry",
    "label_flip_rate",
    "lsq_fake_quantize",
    "magnitude_prune",
    "merge_adapters",
    "model_stock",
    "noise_schedule",
    "pgd_attack",
    "phm_rule",
    "prepare_qat",
    "quantized_weights",
    "remove_weight_compander",
    "ripple_poison",
    "rtn_quantize",
    "scan_for_triggers",
    "share_heads",
    "signround_fake_quantize",
    "sparsity_report",
    "statsq_quantize",
    "temperature_task_probs",
    "uniform_element_selection",
    "unmerge_adapters",
    "weight_aligning",
    "weight_compander",
    "weight_selection",
]

# Idempotent: registering the same class again is a no-op.
register_ipm("neural", NeuralCriticIPM)
