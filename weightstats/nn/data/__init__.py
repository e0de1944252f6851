"""Which rows and tasks a network trains on, epoch by epoch.

Each method is a skorch callback that updates a mutable sampler passed as
``iterator_train__sampler`` (the DataLoader is built once per fit but
re-iterates its sampler every epoch): dynamic data pruning by EL2N
(:class:`DynamicDataPruning` + :class:`ActiveSubsetSampler`) and
pre-training on high-resource tasks before a task mixture
(:class:`PretrainThenMix` + :class:`TaskMixtureSampler`).
"""

from ._pruning import ActiveSubsetSampler, DynamicDataPruning, el2n_scores
from ._task_mixture import PretrainThenMix, TaskMixtureSampler, temperature_task_probs

__all__ = [
    "ActiveSubsetSampler",
    "DynamicDataPruning",
    "PretrainThenMix",
    "TaskMixtureSampler",
    "el2n_scores",
    "temperature_task_probs",
]
