"""Functions of weights: merging and initialising from other models.

Functions from state dicts (or modules, fitted nets, arrays) to a state dict
ready for ``load_state_dict``, plus callbacks that apply them when training
starts: Model Stock (:func:`model_stock`) and weight selection
(:func:`weight_selection`, :class:`WeightSelectionInit`).
"""

from ._model_stock import model_stock
from ._weight_selection import WeightSelectionInit, uniform_element_selection, weight_selection

__all__ = ["WeightSelectionInit", "model_stock", "uniform_element_selection", "weight_selection"]
