"""Covariate balancing with neural networks.

:class:`NeuralCriticIPM`, an adversarially trained MLP critic, plugs into
:class:`weightstats.balancing.IPMBalancer` as ``ipm="neural"``; importing
:mod:`weightstats.nn` registers it.
"""

from ._neural_critic import NeuralCriticIPM

__all__ = ["NeuralCriticIPM"]
