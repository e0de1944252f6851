"""Parameter-efficient fine-tuning and weight reparametrisation.

* Adapter layers around a frozen ``nn.Linear``: :class:`BoneLinear`
  (Bone / Bat block-affine updates), :class:`LoRALinear`; bottleneck
  adapters :class:`CompacterAdapter` (PHM projections, :class:`PHMLinear`,
  :func:`phm_rule`) and :class:`BottleneckAdapter`.
* On any module: :func:`add_adapters`, :func:`merge_adapters`,
  :func:`unmerge_adapters`, :func:`adapter_summary`; in the skorch-style
  estimators: the :class:`AdapterTuning` callback.
* Weight compander: :class:`Compander` (a ``torch.nn.utils.parametrize``
  parametrisation), :func:`weight_compander`,
  :func:`remove_weight_compander`, the :class:`WeightCompanding` callback.
"""

from ._adapters import (
    AdapterSummary,
    AdapterTuning,
    adapter_summary,
    add_adapters,
    merge_adapters,
    unmerge_adapters,
)
from ._bone import BoneLinear
from ._compacter import BottleneckAdapter, CompacterAdapter, PHMLinear, phm_rule
from ._compander import Compander, WeightCompanding, remove_weight_compander, weight_compander
from ._lora import LoRALinear

__all__ = [
    "AdapterSummary",
    "AdapterTuning",
    "BoneLinear",
    "BottleneckAdapter",
    "CompacterAdapter",
    "Compander",
    "LoRALinear",
    "PHMLinear",
    "WeightCompanding",
    "adapter_summary",
    "add_adapters",
    "merge_adapters",
    "phm_rule",
    "remove_weight_compander",
    "unmerge_adapters",
    "weight_compander",
]
