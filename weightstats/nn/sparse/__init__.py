"""Sparse networks: which weights to keep.

* :class:`SparseMomentum`: sparse training at a fixed density that moves
  weights between and within layers by momentum (Dettmers & Zettlemoyer,
  2019), a skorch callback with :meth:`~SparseMomentum.attach` for plain
  loops;
* :class:`SoftThresholdSparsity`: ST-3, dense-to-sparse training by soft
  thresholding with straight-through gradients on a cubic schedule
  (Vanderschueren & De Vleeschouwer, 2023), a parametrisation plus a
  schedule callback; :class:`GradualMagnitudePruning` is its baseline;
* :class:`DPruner`: domain-specific pruning by general and domain weight
  importance (Zhang et al., 2024);
* :func:`magnitude_prune` (one-shot baseline) and :func:`sparsity_report`
  (density, non-zeros and FLOPs per layer).

Masks are :mod:`torch.nn.utils.prune` masks (``weight_orig``,
``weight_mask``): pruned models are ordinary torch models and
``torch.nn.utils.prune.remove`` makes them permanent.
"""

from ._dpruner import DPruner
from ._masks import magnitude_prune, sparsity_report
from ._momentum import SparseMomentum
from ._soft_threshold import GradualMagnitudePruning, SoftThresholdSparsity

__all__ = [
    "DPruner",
    "GradualMagnitudePruning",
    "SoftThresholdSparsity",
    "SparseMomentum",
    "magnitude_prune",
    "sparsity_report",
]
