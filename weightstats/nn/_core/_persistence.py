"""Pickle and skops persistence of the nets with NumPy arrays, not pickled blobs.

skorch's own ``__getstate__`` embeds the torch objects as a ``torch.save``
pickle, which skops cannot audit. Here the state dicts of the module,
criterion and optimizer are stored as NumPy arrays (bfloat16 through
float32, exactly) and the torch objects are rebuilt on load.

A module trained with :mod:`torch.nn.utils.prune` masks or
:mod:`torch.nn.utils.parametrize` parametrisations (the methods of
:mod:`weightstats.nn.sparse`) has state-dict entries a freshly built module
lacks (``weight_orig``, ``weight_mask``, ``parametrizations.weight.original``);
their places are recorded by name and recreated before the states are
loaded.
"""

import importlib
from collections.abc import Mapping

import numpy as np
import torch
from skorch.history import History
from skorch.utils import get_map_location
from torch.nn.utils import parametrize, prune

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


# Parametrisation classes rebuilt on load come from these packages only.
_TRUSTED_PARAMETRIZATIONS = ("weightstats.", "torch.")


def _reparametrizations(module):
    """Where ``module`` has prune masks and parametrisations, as plain lists."""
    pruned, parametrized = [], []
    for name, sub in module.named_modules():
        for hook in sub._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                pruned.append([name, hook._tensor_name])
        if parametrize.is_parametrized(sub):
            for tensor, chain in sub.parametrizations.items():
                classes = [f"{type(p).__module__}:{type(p).__qualname__}" for p in chain]
                parametrized.append([name, tensor, classes])
    return {"pruned": pruned, "parametrized": parametrized}


def _restore_reparametrizations(module, spec):
    """Recreate the recorded masks and parametrisations (their values come with the state dict)."""
    for name, tensor in spec.get("pruned", []):
        sub = module.get_submodule(name)
        if not hasattr(sub, tensor + "_mask"):
            prune.identity(sub, tensor)
    for name, tensor, classes in spec.get("parametrized", []):
        sub = module.get_submodule(name)
        if parametrize.is_parametrized(sub, tensor):
            continue
        for path in classes:
            module_name, _, qualname = path.partition(":")
            if not module_name.startswith(_TRUSTED_PARAMETRIZATIONS):
                raise ValueError(
                    f"cannot rebuild the parametrisation {path} of {name}.{tensor}: only "
                    "weightstats and torch parametrisations are restored on load."
                )
            cls = importlib.import_module(module_name)
            for part in qualname.split("."):
                cls = getattr(cls, part)
            parametrize.register_parametrization(sub, tensor, cls(), unsafe=True)


class PersistenceMixin:
    """``__getstate__`` / ``__setstate__`` of the skorch nets (placed before skorch in the MRO)."""

    def __getstate__(self):
        state = dict(self.__dict__)
        torch_states, reparametrized = {}, {}
        for name in (*self._modules, *self._criteria, *self._optimizers):
            obj = state.pop(name + "_", None)
            if obj is not None:
                torch_states[name] = numpy_tree(obj.state_dict())
                if isinstance(obj, torch.nn.Module):
                    spec = _reparametrizations(obj)
                    if spec["pruned"] or spec["parametrized"]:
                        reparametrized[name] = spec
        # Callbacks are rebuilt on load; their run-time bookkeeping is
        # transient (the history keeps what they recorded).
        state.pop("callbacks_", None)
        # Virtual parameters hold setter functions; they are re-registered.
        state["virtual_params_"] = {}
        if isinstance(state.get("history_"), History):
            state["history_"] = _plain(list(state["history_"]))
        state["torch_states_"] = torch_states
        state["torch_reparametrizations_"] = reparametrized
        return state

    def __setstate__(self, state):
        state = dict(state)
        torch_states = state.pop("torch_states_", {})
        reparametrized = state.pop("torch_reparametrizations_", {})
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
        # After the optimizer is built, as in training: its parameter order
        # is that of the dense module.
        for name, spec in reparametrized.items():
            _restore_reparametrizations(getattr(self, name + "_"), spec)
        for name, value in torch_states.items():
            obj = getattr(self, name + "_", None)
            if obj is not None:
                device = self.device if name in self._modules else "cpu"
                obj.load_state_dict(tensor_tree(value, device))
