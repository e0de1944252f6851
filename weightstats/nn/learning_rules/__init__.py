"""Learning rules other than backpropagation.

* :class:`EquilibriumPropagationClassifier`: a scikit-learn classifier
  trained by holomorphic equilibrium propagation with Jacobian
  homeostasis (or by recurrent backpropagation, for comparison);
* :class:`EquilibriumNet`: its layered recurrent network, trainable in a
  plain torch loop through :meth:`EquilibriumNet.accumulate_gradients`;
* :func:`jacobian_asymmetry` (``s / (s + a)``) and
  :func:`homeostatic_loss` (the stochastic estimate of
  ``||J - J^T||_F^2 / (2 dim)``).
"""

from ._equilibrium import (
    EquilibriumNet,
    EquilibriumPropagationClassifier,
    homeostatic_loss,
    jacobian_asymmetry,
)

__all__ = [
    "EquilibriumNet",
    "EquilibriumPropagationClassifier",
    "homeostatic_loss",
    "jacobian_asymmetry",
]
