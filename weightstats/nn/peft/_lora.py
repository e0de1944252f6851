"""LoRA: a low-rank update of a frozen linear layer (the usual baseline).

Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models" (ICLR
2022), with peft's defaults: ``W' = W + (alpha / r) B A``, ``A`` of shape
``(r, in)`` initialised like ``nn.Linear`` (Kaiming-uniform, ``a=sqrt(5)``),
``B`` of shape ``(out, r)`` zeros, optional dropout on the adapter's input.
"""

import math

import torch
from torch import nn

from ._base import MergeableLinear, check_positive_int

__all__ = ["LoRALinear"]


class LoRALinear(MergeableLinear):
    """A frozen ``nn.Linear`` with a low-rank update ``(alpha / r) B A``.

    Parameters
    ----------
    base : torch.nn.Linear
        The pretrained layer, kept as ``base`` and frozen.
    r : int, default=8
        Rank of the update.
    alpha : float or None, default=None
        Scale numerator: the update is ``(alpha / r) B A``; ``None`` uses
        ``alpha = r`` (scale 1).
    dropout : float, default=0.0
        Dropout probability on the adapter's input (training only).

    Attributes
    ----------
    lora_A : torch.nn.Parameter of shape (r, in_features)
        Down projection, Kaiming-uniform at the start.
    lora_B : torch.nn.Parameter of shape (out_features, r)
        Up projection, zeros at the start (the layer starts as ``base``).
    scaling : float
        ``alpha / r``.

    See Also
    --------
    BoneLinear : Block-affine updates with the same merge/unmerge.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from weightstats.nn import LoRALinear
    >>> _ = torch.manual_seed(0)
    >>> layer = LoRALinear(nn.Linear(16, 8), r=2)
    >>> x = torch.randn(3, 16)
    >>> torch.equal(layer(x), layer.base(x))
    True
    >>> [name for name, p in layer.named_parameters() if p.requires_grad]
    ['lora_A', 'lora_B']
    """

    def __init__(self, base, r=8, alpha=None, dropout=0.0):
        super().__init__(base, "LoRALinear")
        r = check_positive_int(r, "r")
        if alpha is not None and not (isinstance(alpha, (int, float)) and math.isfinite(alpha)):
            raise ValueError(f"alpha must be a finite number or None; got {alpha!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout!r}.")
        self.r = r
        self.alpha = alpha
        self.scaling = (r if alpha is None else alpha) / r
        weight = base.weight
        options = {"dtype": weight.dtype, "device": weight.device}
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **options))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **options))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def _delta(self, like):
        return self.scaling * (self._cast(self.lora_B, like) @ self._cast(self.lora_A, like))

    def _merged(self, weight):
        return weight + self._delta(weight)

    def _unmerged(self, weight):
        return weight - self._delta(weight)

    def _adapted_forward(self, x):
        update = (self.dropout(x) @ self.lora_A.t()) @ self.lora_B.t()
        return self.base(x) + self.scaling * update

    def extra_repr(self):
        """The layer's settings, for ``print``.

        Returns
        -------
        text : str
            Sizes, rank and scale.
        """
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, r={self.r}, "
            f"scaling={self.scaling:g}, merged={self.merged}"
        )
