"""Pickle and skops persistence of the nets with NumPy arrays, not pickled blobs.

skorch's own ``__getstate__`` embeds the torch objects as a ``torch.save``
pickle, which skops cannot audit. Here the state dicts of the module,
criterion and optimizer are stored as NumPy arrays (bfloat16 through
float32, exactly) and the torch objects are rebuilt on load.
"""

from collections.abc import Mapping

import numpy as np
import torch
from skorch.history import History
from skorch.utils import get_map_location

from ._state_dict import numpy_tree, tensor_tree, to_numpy

__all__ = ["PersistenceMixin"]


def _plain(obj):
    """History entries as plain Python/NumPy values (for skops)."""
    if isinstance(obj, Mapping):
        return {str(key): _plain(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(value) for value in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return to_numpy(obj)
    return obj


class PersistenceMixin:
    """``__getstate__`` / ``__setstate__`` of the skorch nets (placed before skorch in the MRO)."""

    def __getstate__(self):
        state = dict(self.__dict__)
        torch_states = {}
        for name in (*self._modules, *self._criteria, *self._optimizers):
            obj = state.pop(name + "_", None)
            if obj is not None:
                torch_states[name] = numpy_tree(obj.state_dict())
        # Callbacks are rebuilt on load; their run-time bookkeeping is
        # transient (the history keeps what they recorded).
        state.pop("callbacks_", None)
        # Virtual parameters hold setter functions; they are re-registered.
        state["virtual_params_"] = {}
        if isinstance(state.get("history_"), History):
            state["history_"] = _plain(list(state["history_"]))
        state["torch_states_"] = torch_states
        return state

    def __setstate__(self, state):
        state = dict(state)
        torch_states = state.pop("torch_states_", {})
        if state.get("history_") is not None:
            state["history_"] = History(state["history_"])
        if "device" in state:
            state["device"] = self._check_device(state["device"], get_map_location(state["device"]))
        self.__dict__.update(state)
        if not torch_states:
            return
        # Rebuild the torch objects, then load their states; the fork keeps
        # the global RNG as it was.
        verbose, self.verbose = self.verbose, 0
        try:
            with torch.random.fork_rng(devices=[]):
                self._initialize_callbacks()
                self._initialize_module()
                self._initialize_criterion()
                self._initialize_optimizer()
        finally:
            self.verbose = verbose
        for name, value in torch_states.items():
            obj = getattr(self, name + "_", None)
            if obj is not None:
                device = self.device if name in self._modules else "cpu"
                obj.load_state_dict(tensor_tree(value, device))
