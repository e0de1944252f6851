"""Shared machinery of the adapters that wrap a frozen ``nn.Linear``.

An adapter layer keeps the pretrained layer as ``base`` (frozen) and adds a
trainable update. Linear updates (Bone, Bat, LoRA) can be merged into the
base weight for inference and taken out again; the merged state travels in
the state dict (``get_extra_state``), so a saved merged model loads merged.
"""

import numbers

import torch
from torch import nn

from .._core import check_finite_tensor

__all__ = ["MergeableLinear", "check_positive_int", "linear_base"]


def check_positive_int(value, name, *, allow_none=False):
    """``value`` as an int >= 1 (or None when allowed); ValueError otherwise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def linear_base(base, owner):
    """Check that ``base`` is an ``nn.Linear`` the adapter ``owner`` can wrap."""
    if not isinstance(base, nn.Linear):
        raise TypeError(
            f"{owner} adapts torch.nn.Linear layers; got {type(base).__name__}. Pick Linear "
            "layers with target_modules."
        )
    check_finite_tensor(base.weight.detach(), f"the weight of the layer given to {owner}")
    return base


def _exact_dtype(weight):
    # Merging is a one-off: do it in float64 where the device has it, so
    # merge followed by unmerge returns the original weight to rounding.
    return torch.float32 if weight.device.type == "mps" else torch.float64


class MergeableLinear(nn.Module):
    """Base of the adapters whose update is linear in the input.

    Subclasses define ``_merged(weight)`` (the adapted weight computed from
    the original one) and ``_unmerged(weight)`` (its inverse), both in the
    dtype they are given, and ``_adapted_forward(x)``.
    """

    def __init__(self, base, owner):
        super().__init__()
        self.base = linear_base(base, owner)
        self.base.requires_grad_(False)
        self._merged_state = False

    @property
    def in_features(self):
        """Number of input features of the base layer.

        Returns
        -------
        in_features : int
            The width of the input.
        """
        return self.base.in_features

    @property
    def out_features(self):
        """Number of output features of the base layer.

        Returns
        -------
        out_features : int
            The width of the output.
        """
        return self.base.out_features

    @property
    def merged(self):
        """Whether the update is currently merged into ``base.weight``.

        Returns
        -------
        merged : bool
            True after :meth:`merge`, False after :meth:`unmerge`.
        """
        return self._merged_state

    def forward(self, x):
        """Apply the adapted layer.

        Parameters
        ----------
        x : torch.Tensor of shape (..., in_features)
            Inputs.

        Returns
        -------
        y : torch.Tensor of shape (..., out_features)
            Outputs of the base layer plus the update (merged or not).
        """
        if self._merged_state:
            return self.base(x)
        return self._adapted_forward(x)

    def merge(self):
        """Write the update into ``base.weight`` (no-op when merged).

        The forward pass is then the base layer alone, as cheap as the
        original layer. The update's parameters get no gradient while merged.

        Returns
        -------
        self : object
            The layer.
        """
        if self._merged_state:
            return self
        weight = self.base.weight
        with torch.no_grad():
            merged = self._merged(weight.to(_exact_dtype(weight)))
            if not torch.isfinite(merged).all():
                raise ValueError(
                    f"merging the {type(self).__name__} update gives NaN or infinity; its "
                    "parameters are not finite."
                )
            weight.copy_(merged.to(weight.dtype))
        self._merged_state = True
        return self

    def unmerge(self):
        """Take the update out of ``base.weight`` again (no-op when unmerged).

        Returns
        -------
        self : object
            The layer.
        """
        if not self._merged_state:
            return self
        weight = self.base.weight
        with torch.no_grad():
            weight.copy_(self._unmerged(weight.to(_exact_dtype(weight))).to(weight.dtype))
        self._merged_state = False
        return self

    def delta_weight(self):
        """The update ``W_adapted - W`` of the base weight, of its shape.

        Returns
        -------
        delta : torch.Tensor of shape (out_features, in_features)
            Computed from the original weight (recovered first when merged),
            detached, in the base weight's dtype.
        """
        weight = self.base.weight.detach()
        exact = weight.to(_exact_dtype(weight))
        with torch.no_grad():
            if self._merged_state:
                return (exact - self._unmerged(exact)).to(weight.dtype)
            return (self._merged(exact) - exact).to(weight.dtype)

    def get_extra_state(self):
        """The merged flag, saved with the state dict.

        Returns
        -------
        state : dict
            ``{"merged": bool}``.
        """
        return {"merged": bool(self._merged_state)}

    def set_extra_state(self, state):
        """Restore the merged flag from a state dict.

        Parameters
        ----------
        state : dict
            As returned by :meth:`get_extra_state`.
        """
        self._merged_state = bool(state["merged"])

    def _cast(self, tensor, like):
        return tensor.to(dtype=like.dtype, device=like.device)
