"""Reusable ``torch.nn.Module`` building blocks.

Plain modules, usable in any skorch net or torch training loop. The
estimators of :mod:`weightstats.nn` fill in ``n_features`` and
``n_outputs`` from the training data when a module's constructor takes
them, so these modules serve as defaults. By convention the classifier
layer is the attribute ``head`` (found by :func:`get_head`) and everything
before it is ``body``. Sequence layers: :class:`TinyTransformer` (a small
transformer with Llama-layout attention) and :class:`SRWMLayer` (the
self-referential weight matrix).
"""

from ._bag_of_words import EmbeddingBagClassifier
from ._heads import ETFHead, get_head
from ._mlp import MLP, MultiHeadMLP
from ._srwm import SRWMLayer
from ._transformer import TinyTransformer

__all__ = [
    "ETFHead",
    "EmbeddingBagClassifier",
    "MLP",
    "MultiHeadMLP",
    "SRWMLayer",
    "TinyTransformer",
    "get_head",
]
