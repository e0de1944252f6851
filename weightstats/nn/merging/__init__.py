"""Functions of weights: merging, initialising from other models, sharing.

Functions from state dicts (or modules, fitted nets, arrays) to a state dict
ready for ``load_state_dict``, plus callbacks that apply them when training
starts: Model Stock (:func:`model_stock`) and weight selection
(:func:`weight_selection`, :class:`WeightSelectionInit`). Head-wise
shareable attention ties attention heads across layers in place
(:func:`head_similarity`, :func:`share_heads`, and the PostShare training
penalty :class:`HeadSharingPenalty`).
"""

from ._head_sharing import HeadSharingPenalty, HeadSharingReport, head_similarity, share_heads
from ._model_stock import model_stock
from ._weight_selection import WeightSelectionInit, uniform_element_selection, weight_selection

__all__ = [
    "HeadSharingPenalty",
    "HeadSharingReport",
    "WeightSelectionInit",
    "head_similarity",
    "model_stock",
    "share_heads",
    "uniform_element_selection",
    "weight_selection",
]
