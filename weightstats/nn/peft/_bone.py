"""Bone and Bat: block-affine adaptation of a frozen linear layer.

Kang, "Bone: Block-Affine Adaptation of Large Language Models" (arXiv
2409.15371), as shipped in peft (``BoneConfig``, v0.14-0.18, now
``MissConfig(init_weights=True | "bat")``). With the base weight ``W`` of
shape ``(out, in)`` and block size ``r``:

* **Bone**: one trainable block ``B`` of shape ``(r, out)``, zeros at the
  start. The input is cut into groups of ``r`` features (zero-padded to a
  multiple of ``r``) and ``y = W x + b + (sum_g x_g) B``, i.e. every
  ``r``-column slice of ``W`` gets the same update ``B^T``.
* **Bat** ("weight-guided"): trainable blocks ``B_i`` of shape ``(r, r)``,
  one per row block ``i``, zeros at the start. Cutting ``W`` into ``r x r``
  blocks ``W_ij``, the update is ``dW_ij = W_ij B_i + B_i``, so the adapted
  block is ``W_ij (I + B_i) + B_i`` and unmerging solves
  ``W_ij = (W'_ij - B_i)(I + B_i)^{-1}``.
"""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ._base import MergeableLinear, check_positive_int

__all__ = ["BoneLinear"]

_VARIANTS = ("bone", "bat")


class BoneLinear(MergeableLinear):
    """A frozen ``nn.Linear`` with a Bone or Bat block-affine update.

    Parameters
    ----------
    base : torch.nn.Linear
        The pretrained layer; it is kept as ``base`` and frozen
        (``requires_grad=False``).
    r : int, default=64
        Block size. Bone: at most ``in_features`` (the input is zero-padded
        to a multiple of ``r``). Bat: must divide both ``in_features`` and
        ``out_features``.
    variant : {"bone", "bat"}, default="bone"
        ``"bone"`` adds ``(sum_g x_g) B`` with one block ``B`` of shape
        ``(r, out_features)``; ``"bat"`` updates every ``r x r`` weight
        block ``W_ij`` to ``W_ij (I + B_i) + B_i`` with blocks ``B`` of shape
        ``(out_features / r, r, r)``.

    Attributes
    ----------
    base : torch.nn.Linear
        The frozen layer (holding the merged weight while :attr:`merged`).
    block : torch.nn.Parameter
        The trainable update, zeros at the start, so the layer first
        computes exactly what ``base`` does.

    See Also
    --------
    add_adapters : Put adapters into chosen layers of any module.
    LoRALinear : The low-rank update ``W + BA``.

    Notes
    -----
    The rule and the parameter shapes are those of peft's MiSS layer
    (``init_weights=True`` for Bone, ``"bat"`` for Bat); outputs and
    gradients agree with peft to float precision (tested when peft is
    installed). Bat's forward pass forms the adapted weight, which costs
    about ``in * out * r`` multiply-adds per step; Bone's costs ``in + r *
    out`` per row. :meth:`merge` makes either as cheap as the base layer.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from weightstats.nn import BoneLinear
    >>> _ = torch.manual_seed(0)
    >>> layer = BoneLinear(nn.Linear(16, 8), r=4, variant="bat")
    >>> x = torch.randn(3, 16)
    >>> torch.equal(layer(x), layer.base(x))      # zero blocks: unchanged output
    True
    >>> with torch.no_grad():
    ...     _ = layer.block.normal_(std=0.1)
    >>> y = layer(x)
    >>> torch.allclose(layer.merge()(x), y, atol=1e-6), layer.merged
    (True, True)
    >>> _ = layer.unmerge()
    >>> sum(p.numel() for p in layer.parameters() if p.requires_grad)  # (8 / 4) * 4 * 4
    32
    """

    def __init__(self, base, r=64, variant="bone"):
        super().__init__(base, "BoneLinear")
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {_VARIANTS}; got {variant!r}.")
        r = check_positive_int(r, "r")
        n_in, n_out = base.in_features, base.out_features
        if variant == "bone" and r > n_in:
            raise ValueError(
                f"r={r} exceeds the layer's in_features={n_in}; Bone needs r <= in_features."
            )
        if variant == "bat" and (n_in % r or n_out % r):
            raise ValueError(
                f"Bat cuts the weight into r x r blocks, so r must divide in_features={n_in} "
                f"and out_features={n_out}; got r={r}."
            )
        self.r = r
        self.variant = variant
        shape = (r, n_out) if variant == "bone" else (n_out // r, r, r)
        weight = base.weight
        self.block = nn.Parameter(torch.zeros(shape, dtype=weight.dtype, device=weight.device))

    # ------------------------------------------------------------- the rule
    def _bone_delta(self, like):
        # dW[:, g*r:(g+1)*r] = B^T for every input group g (the last one cut
        # to the features that exist).
        n_groups = -(-self.in_features // self.r)
        delta = self.block.t().repeat(1, n_groups)[:, : self.in_features]
        return self._cast(delta, like)

    def _bat_blocks(self, weight):
        # W as [i, a, j, b] = W[i*r + a, j*r + b]: row block i, column block j.
        r = self.r
        return weight.unflatten(0, (-1, r)).unflatten(2, (-1, r))

    def _merged(self, weight):
        if self.variant == "bone":
            return weight + self._bone_delta(weight)
        blocks = self._bat_blocks(weight)
        B = self._cast(self.block, weight)
        # W_ij (I + B_i) + B_i, with B_i broadcast over the column blocks j.
        adapted = blocks + torch.einsum("iajb,ibc->iajc", blocks, B) + B[:, :, None, :]
        return adapted.flatten(2).flatten(0, 1)

    def _unmerged(self, weight):
        if self.variant == "bone":
            return weight - self._bone_delta(weight)
        r = self.r
        B = self._cast(self.block, weight)
        merged = self._bat_blocks(weight).permute(0, 2, 1, 3)  # [i, j, a, c]
        eye = torch.eye(r, dtype=weight.dtype, device=weight.device)
        try:
            original = torch.linalg.solve(eye + B[:, None], merged - B[:, None], left=False)
        except RuntimeError as exc:  # torch.linalg.LinAlgError
            raise ValueError(
                "cannot unmerge Bat: a block I + B_i is singular, so the original weight is "
                "not recoverable from the merged one."
            ) from exc
        # The merged weight was rounded to its storage dtype; solving with
        # I + B_i amplifies that rounding by the condition number.
        cond = float(torch.linalg.cond(eye + B).max())
        error = cond * torch.finfo(self.base.weight.dtype).eps
        if not error < 1e-4:
            warnings.warn(
                f"unmerging Bat is ill-conditioned: cond(I + B_i) reaches {cond:.1e}, so the "
                f"recovered weight may be off by a relative {error:.1e}.",
                RuntimeWarning,
                stacklevel=3,
            )
        return original.permute(0, 2, 1, 3).flatten(2).flatten(0, 1)

    def _adapted_forward(self, x):
        if self.variant == "bat":
            weight = self.base.weight
            return F.linear(x, self._merged(weight), self.base.bias)
        r = self.r
        pad = (-x.shape[-1]) % r
        grouped = F.pad(x, (0, pad)) if pad else x
        grouped = grouped.unflatten(-1, (-1, r)).sum(dim=-2)
        return self.base(x) + grouped @ self.block

    def extra_repr(self):
        """The layer's settings, for ``print``.

        Returns
        -------
        text : str
            Sizes, block size and variant.
        """
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, r={self.r}, "
            f"variant={self.variant!r}, merged={self.merged}"
        )
