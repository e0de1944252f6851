"""Class imbalance: long-tailed recognition and class-incremental learning.

Estimators that subclass :class:`~weightstats.nn.NeuralNetClassifier` and
change the per-row loss (``get_sample_losses``), the training stages
(``_train``) or the logits at prediction (``adjust_logits``): weight
balancing (:class:`WeightBalancingClassifier`) and weight aligning with
distillation (:class:`WeightAligningClassifier`, :func:`weight_aligning`).
"""

from ._weight_aligning import WeightAligningClassifier, weight_aligning
from ._weight_balancing import WeightBalancingClassifier

__all__ = ["WeightAligningClassifier", "WeightBalancingClassifier", "weight_aligning"]
