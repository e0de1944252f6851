"""State dicts: unwrapping nets and modules, NumPy round trips safe for bfloat16.

NumPy has no bfloat16 (nor the float8 types), so ``tensor.numpy()`` fails on
the dtype most large models are stored in. These helpers convert such
tensors through float32 (exact for bfloat16 and float16) and back to the
dtype and device of a template tensor.
"""

from collections.abc import Mapping

import numpy as np
import torch

__all__ = ["numpy_tree", "tensor_like", "tensor_tree", "to_numpy", "unwrap_state_dict"]

# Floating dtypes NumPy represents exactly; others go through float32.
_NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)


def unwrap_state_dict(obj):
    """The weights of a fitted skorch net or a module as a state dict.

    Anything else (a state dict, a tensor, an array) is returned unchanged.
    """
    module = getattr(obj, "module_", obj)
    if isinstance(module, torch.nn.Module):
        return module.state_dict()
    return obj


def to_numpy(value):
    """A tensor as a NumPy array (bfloat16 and float8 as float32); other values unchanged."""
    if not isinstance(value, torch.Tensor):
        return value
    value = value.detach()
    if value.is_floating_point() and value.dtype not in _NUMPY_FLOATS:
        value = value.float()
    return value.cpu().numpy()


def tensor_like(value, template):
    """``value`` as a tensor with the dtype and device of ``template`` (if a tensor)."""
    if isinstance(template, torch.Tensor):
        return torch.as_tensor(np.asarray(value)).to(dtype=template.dtype, device=template.device)
    return value


def numpy_tree(obj):
    """Tensors anywhere in nested dicts, lists and tuples as NumPy copies."""
    if isinstance(obj, torch.Tensor):
        return to_numpy(obj).copy()
    if isinstance(obj, Mapping):
        return {key: numpy_tree(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(numpy_tree(value) for value in obj)
    return obj


def tensor_tree(obj, device):
    """NumPy arrays anywhere in nested dicts, lists and tuples as tensors on ``device``."""
    if isinstance(obj, np.ndarray):
        return torch.as_tensor(obj, device=device)
    if isinstance(obj, Mapping):
        return {key: tensor_tree(value, device) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(tensor_tree(value, device) for value in obj)
    return obj
