"""Robustness of trained weights: adversarial training and poisoning audits.

* adversarial training with weight perturbation (:class:`AdversarialTraining`,
  a skorch callback with a plain-torch ``train_step``): PGD examples
  (:func:`pgd_attack`), trained at weights perturbed by AWP or RWP
  (:func:`adversarial_weight_perturbation`);
* weight-poisoning audits for people who fine-tune downloaded weights:
  :func:`ripple_poison` (RIPPLe with Embedding Surgery) makes a backdoored
  copy of a tiny model to test a fine-tuning recipe against,
  :func:`label_flip_rate` measures what survives, :func:`scan_for_triggers`
  looks for rare tokens that flip predictions; :func:`embedding_surgery`
  and :func:`insert_triggers` are the building blocks.
"""

from ._adversarial import AdversarialTraining, adversarial_weight_perturbation, pgd_attack
from ._poisoning import (
    embedding_surgery,
    insert_triggers,
    label_flip_rate,
    ripple_poison,
    scan_for_triggers,
)

__all__ = [
    "AdversarialTraining",
    "adversarial_weight_perturbation",
    "embedding_surgery",
    "insert_triggers",
    "label_flip_rate",
    "pgd_attack",
    "ripple_poison",
    "scan_for_triggers",
]
