"""Self-attention with query-key reparametrisation (QKR; Liu, Liu & Cheng, ICML 2023).

In quantised attention the logits ``(W_q x_i)^T (W_k x_j)`` depend on the
product of two quantised matrices, so a flip of one integer weight of
``W_q`` changes which flips of ``W_k`` pay off and the two oscillate
together. QKR quantises the product instead: per head ``h``,
``W_qk^h = W_q^h^T W_k^h`` (``C x C``), the ``H`` products stacked as an
``(H C) x C`` matrix are quantised with StatsQ (one scale per row), and the
logits are ``x_i^T Q(W_qk^h) x_j / sqrt(d_head)`` (nbasyl/OFQ
``QAttention_qkreparam``). ``W_q`` and ``W_k`` stay full-precision factors
that training updates through the quantised product.
"""

import numbers

import torch
from torch import nn
from torch.nn.utils import parametrize

from ._cga import confident_weights
from ._quantizers import StatsQ

__all__ = ["QKReparamAttention"]


class QKReparamAttention(nn.Module):
    """Multi-head self-attention whose weights are quantised with StatsQ, QKR optional.

    Input and output have shape ``(batch, tokens, embed_dim)``. With
    ``bits`` set, the value and output projections (and, without QKR, the
    query and key projections) carry :class:`StatsQ` parametrisations; with
    ``qk_reparam`` the per-head query-key products are quantised instead of
    the query and key weights. Activations stay in full precision. The
    query and key projections have no bias (a bias has no place in the
    product form; the reference drops it too).

    Parameters
    ----------
    embed_dim : int
        Model width ``C``.
    num_heads : int, default=1
        Heads; must divide ``embed_dim``.
    bits : int in [2, 8] or None, default=2
        Weight bit width; None keeps every weight in full precision.
    qk_reparam : bool, default=True
        Quantise ``W_q^h^T W_k^h`` (QKR) rather than ``W_q`` and ``W_k``.
    bias : bool, default=True
        Bias of the value and output projections.

    Attributes
    ----------
    q, k, v, proj : torch.nn.Linear
        Query, key, value and output projections.
    qk_quantizer : StatsQ or None
        The quantiser of the query-key products (QKR with ``bits``).
    cga_boundary_range : float or None
        Set by :class:`ConfidenceGuidedAnnealing` while it anneals: the
        gradient of the confident product entries is then zero.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import QKReparamAttention, quantized_weights
    >>> _ = torch.manual_seed(0)
    >>> attention = QKReparamAttention(8, num_heads=2, bits=2)
    >>> attention(torch.randn(3, 5, 8)).shape
    torch.Size([3, 5, 8])
    >>> [t.name for t in quantized_weights(attention)]
    ['qk', 'v.weight', 'proj.weight']
    >>> attention.qk_product().shape  # one C x C product per head
    torch.Size([2, 8, 8])
    """

    def __init__(self, embed_dim, num_heads=1, bits=2, qk_reparam=True, bias=True):
        super().__init__()
        if (
            isinstance(embed_dim, bool)
            or not isinstance(embed_dim, numbers.Integral)
            or embed_dim < 1
        ):
            raise ValueError(f"embed_dim must be a positive integer; got {embed_dim!r}.")
        if (
            isinstance(num_heads, bool)
            or not isinstance(num_heads, numbers.Integral)
            or num_heads < 1
            or embed_dim % num_heads
        ):
            raise ValueError(
                f"num_heads must be a positive integer dividing embed_dim={embed_dim}; got "
                f"{num_heads!r}."
            )
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        self.bits = bits
        self.qk_reparam = bool(qk_reparam)
        self.q = nn.Linear(embed_dim, embed_dim, bias=False)
        self.k = nn.Linear(embed_dim, embed_dim, bias=False)
        self.v = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.qk_quantizer = None
        self.cga_boundary_range = None
        if bits is not None:
            quantized = [self.v, self.proj]
            if self.qk_reparam:
                self.qk_quantizer = StatsQ(bits)
            else:
                quantized = [self.q, self.k, *quantized]
            for layer in quantized:
                parametrize.register_parametrization(layer, "weight", StatsQ(bits))

    def qk_product(self):
        """The per-head products ``W_q^h^T W_k^h`` in full precision.

        Returns
        -------
        product : torch.Tensor of shape (num_heads, embed_dim, embed_dim)
            One ``C x C`` product per head (differentiable).
        """
        q = self.q.weight.reshape(self.num_heads, self.head_dim, self.embed_dim)
        k = self.k.weight.reshape(self.num_heads, self.head_dim, self.embed_dim)
        return q.transpose(1, 2) @ k

    def quantized_products(self):
        """The computed tensors this module quantises (for the QAT callbacks).

        Returns
        -------
        products : dict
            ``{"qk": (quantizer, get_value)}`` with QKR and ``bits``, where
            ``get_value()`` is the ``(heads * C, C)`` product; else empty.
        """
        if self.qk_quantizer is None:
            return {}
        return {"qk": (self.qk_quantizer, lambda: self._stacked_product())}

    def _stacked_product(self):
        return self.qk_product().reshape(self.num_heads * self.embed_dim, self.embed_dim)

    def _quantized_product(self):
        product = self._stacked_product()
        if self.training and self.cga_boundary_range is not None:
            confident = confident_weights(
                self.qk_quantizer.pre_round(product), self.cga_boundary_range
            )
            product = torch.where(confident, product.detach(), product)
        quantized = self.qk_quantizer(product)
        return quantized.reshape(self.num_heads, self.embed_dim, self.embed_dim)

    def forward(self, x):
        """Self-attention of a batch of token sequences.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, tokens, embed_dim)
            The tokens.

        Returns
        -------
        out : torch.Tensor of shape (batch, tokens, embed_dim)
            The attended tokens.
        """
        if x.dim() != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(
                f"x must have shape (batch, tokens, {self.embed_dim}); got {tuple(x.shape)}."
            )
        batch, tokens, _ = x.shape
        scale = self.head_dim**-0.5
        if self.qk_quantizer is not None:
            product = self._quantized_product()
            logits = torch.einsum("bnc,hcd,bmd->bhnm", x, product, x) * scale
        else:
            q = self.q(x).reshape(batch, tokens, self.num_heads, self.head_dim).transpose(1, 2)
            k = self.k(x).reshape(batch, tokens, self.num_heads, self.head_dim).transpose(1, 2)
            logits = (q @ k.transpose(-2, -1)) * scale
        attention = torch.softmax(logits, dim=-1)
        v = self.v(x).reshape(batch, tokens, self.num_heads, self.head_dim).transpose(1, 2)
        out = (attention @ v).transpose(1, 2).reshape(batch, tokens, self.embed_dim)
        return self.proj(out)

    def extra_repr(self):
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, bits={self.bits}, "
            f"qk_reparam={self.qk_reparam}"
        )
