"""Compacter: bottleneck adapters whose projections are PHM layers.

Karimi Mahabadi, Henderson & Ruder, "Compacter: Efficient Low-Rank
Hypercomplex Adapter Layers" (NeurIPS 2021), reference rabeehk/compacter
(``seq2seq/hypercomplex/layers.py``). A parameterised-hypercomplex-
multiplication (PHM) layer builds its ``in x out`` weight as a sum of
Kronecker products

    H = sum_{i=1}^{n} A_i (x) W_i,    y = x H + b,

with ``A`` of shape ``(n, n, n)`` (the "rule", shared by every PHM layer of
a Compacter model) and ``W_i`` of shape ``(in/n, out/n)`` factorised as
``W_i = s_i t_i`` with ``s_i`` of shape ``(in/n, rank)`` and ``t_i`` of shape
``(rank, out/n)``. Reference defaults: ``n=4``, ``rank=1``, rule from
``N(0, 0.01^2)``, factors Glorot-uniform with gain ``sqrt(2)``, zero bias;
the adapter is ``h + U(GELU(D(h)))`` with reduction factor 32.
"""

import math

import torch
from torch import nn

from ._base import check_positive_int

__all__ = ["BottleneckAdapter", "CompacterAdapter", "PHMLinear", "phm_rule"]


def phm_rule(n=4, *, std=0.01, dtype=None, device=None):
    """A trainable PHM rule ``A`` of shape ``(n, n, n)``, drawn from ``N(0, std^2)``.

    Pass the same rule to several :class:`PHMLinear` or
    :class:`CompacterAdapter` layers to share it, as Compacter does.

    Parameters
    ----------
    n : int, default=4
        Number of Kronecker summands (the hypercomplex dimension).
    std : float, default=0.01
        Standard deviation of the initial entries (the reference's
        ``phm_c_init="normal"``).
    dtype, device : torch dtype and device, default=None
        Where the rule lives (torch's defaults when None).

    Returns
    -------
    rule : torch.nn.Parameter of shape (n, n, n)
        The rule, drawn from the torch RNG.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import CompacterAdapter, phm_rule
    >>> _ = torch.manual_seed(0)
    >>> rule = phm_rule(4)
    >>> first = CompacterAdapter(64, 8, shared_rule=rule)
    >>> second = CompacterAdapter(64, 8, shared_rule=rule)
    >>> first.down.rule is second.up.rule
    True
    """
    n = check_positive_int(n, "n")
    if not std > 0:
        raise ValueError(f"std must be positive; got {std!r}.")
    return nn.Parameter(torch.empty(n, n, n, dtype=dtype, device=device).normal_(0.0, std))


class PHMLinear(nn.Module):
    """A linear layer whose weight is a sum of Kronecker products.

    Parameters
    ----------
    in_features : int
        Input width (a multiple of ``n``).
    out_features : int
        Output width (a multiple of ``n``).
    n : int, default=4
        Number of Kronecker summands.
    rank : int or None, default=1
        Rank of each ``W_i = s_i t_i``; ``None`` trains each ``W_i`` in full
        (the PHM layer without factorisation).
    rule : torch.Tensor of shape (n, n, n) or None, default=None
        The rule ``A``. A ``torch.nn.Parameter`` (e.g. from
        :func:`phm_rule`) is shared with every layer that gets it and
        trained; a plain tensor is a fixed rule (a buffer); ``None`` gives
        the layer its own trainable rule.
    bias : bool, default=True
        Whether to add a bias (zeros at the start).

    Attributes
    ----------
    rule : torch.Tensor of shape (n, n, n)
        ``A``.
    W_left : torch.nn.Parameter of shape (n, in_features / n, rank)
        The factors ``s_i`` (``rank`` given).
    W_right : torch.nn.Parameter of shape (n, rank, out_features / n)
        The factors ``t_i`` (``rank`` given).
    W : torch.nn.Parameter of shape (n, in_features / n, out_features / n)
        The full ``W_i`` (``rank=None``).
    bias : torch.nn.Parameter of shape (out_features,) or None
        The bias.

    Notes
    -----
    Parameters: ``n^3`` for an own rule, plus ``rank * (in + out)``
    factorised (``= n * (in/n + out/n) * rank``) or ``in * out / n`` in full,
    plus ``out`` for the bias. A dense layer has ``in * out + out``.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import PHMLinear
    >>> _ = torch.manual_seed(0)
    >>> layer = PHMLinear(64, 16, n=4, rank=1)
    >>> H = sum(torch.kron(layer.rule[i], layer.W_left[i] @ layer.W_right[i]) for i in range(4))
    >>> torch.allclose(layer.weight, H), tuple(layer.weight.shape)
    (True, (64, 16))
    >>> sum(p.numel() for p in layer.parameters())  # 4**3 + 1 * (64 + 16) + 16
    160
    """

    def __init__(self, in_features, out_features, n=4, rank=1, rule=None, bias=True):
        super().__init__()
        n = check_positive_int(n, "n")
        in_features = check_positive_int(in_features, "in_features")
        out_features = check_positive_int(out_features, "out_features")
        rank = check_positive_int(rank, "rank", allow_none=True)
        if in_features % n or out_features % n:
            raise ValueError(
                f"a PHM layer with n={n} needs in_features and out_features divisible by n; "
                f"got {in_features} and {out_features}."
            )
        self.in_features, self.out_features = in_features, out_features
        self.n, self.rank = n, rank
        if rule is None:
            self.rule = phm_rule(n)
        elif not isinstance(rule, torch.Tensor) or tuple(rule.shape) != (n, n, n):
            raise ValueError(
                f"rule must be a tensor of shape ({n}, {n}, {n}); got "
                f"{tuple(rule.shape) if isinstance(rule, torch.Tensor) else type(rule).__name__}."
            )
        elif isinstance(rule, nn.Parameter):
            self.rule = rule  # shared: the same Parameter object in every layer
        else:
            self.register_buffer("rule", rule)
        options = {"dtype": self.rule.dtype, "device": self.rule.device}
        p, q = in_features // n, out_features // n
        if rank is None:
            self.W = nn.Parameter(torch.empty(n, p, q, **options))
            factors = [self.W]
        else:
            self.W_left = nn.Parameter(torch.empty(n, p, rank, **options))
            self.W_right = nn.Parameter(torch.empty(n, rank, q, **options))
            factors = [self.W_left, self.W_right]
        for factor in factors:
            for i in range(n):
                nn.init.xavier_uniform_(factor.data[i], gain=math.sqrt(2.0))
        self.bias = nn.Parameter(torch.zeros(out_features, **options)) if bias else None

    def factors(self):
        """The Kronecker factors ``W_i``.

        Returns
        -------
        W : torch.Tensor of shape (n, in_features / n, out_features / n)
            ``W_left[i] @ W_right[i]`` (or the full ``W``).
        """
        if self.rank is None:
            return self.W
        return torch.bmm(self.W_left, self.W_right)

    @property
    def weight(self):
        """The assembled weight ``H = sum_i A_i (x) W_i`` (differentiable).

        Returns
        -------
        H : torch.Tensor of shape (in_features, out_features)
            Note the orientation: ``y = x H + b`` (``nn.Linear`` stores the
            transpose).
        """
        n = self.n
        W = self.factors()
        # kron(A_i, W_i)[j*p + a, k*q + c] = A_i[j, k] W_i[a, c], summed over i.
        H = torch.einsum("ijk,iac->jakc", self.rule.to(W.dtype), W)
        return H.reshape(n * W.shape[1], n * W.shape[2])

    def forward(self, x):
        """Apply ``y = x H + b``.

        Parameters
        ----------
        x : torch.Tensor of shape (..., in_features)
            Inputs.

        Returns
        -------
        y : torch.Tensor of shape (..., out_features)
            Outputs.
        """
        y = x @ self.weight
        return y if self.bias is None else y + self.bias

    def extra_repr(self):
        """The layer's settings, for ``print``.

        Returns
        -------
        text : str
            Sizes, ``n`` and rank.
        """
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, n={self.n}, "
            f"rank={self.rank}, bias={self.bias is not None}"
        )


def _bottleneck(d_model, reduction, n=1):
    d_model = check_positive_int(d_model, "d_model")
    reduction = check_positive_int(reduction, "reduction")
    width = d_model // reduction
    if width < n or width % n or d_model % n:
        raise ValueError(
            f"d_model={d_model} with reduction={reduction} gives a bottleneck of {width}; it "
            f"must be a positive multiple of n={n} (as must d_model). Lower the reduction."
        )
    return d_model, width


class _ResidualBottleneck(nn.Module):
    """``h + up(GELU(down(h)))``; subclasses build ``down`` and ``up``."""

    def forward(self, h):
        """Apply the adapter with its residual connection.

        Parameters
        ----------
        h : torch.Tensor of shape (..., d_model)
            Hidden states.

        Returns
        -------
        out : torch.Tensor of shape (..., d_model)
            ``h + up(GELU(down(h)))``.
        """
        return h + self.up(self.activation(self.down(h)))


class CompacterAdapter(_ResidualBottleneck):
    """The Compacter adapter ``h + U(GELU(D(h)))`` with PHM projections.

    Parameters
    ----------
    d_model : int
        Width of the hidden states it adapts.
    reduction : int, default=32
        Bottleneck width is ``d_model // reduction`` (a multiple of ``n``).
    n : int, default=4
        Kronecker summands of both PHM layers.
    rank : int or None, default=1
        Rank of the PHM factors (see :class:`PHMLinear`).
    shared_rule : torch.nn.Parameter of shape (n, n, n) or None, default=None
        The rule of both projections; pass one :func:`phm_rule` to every
        adapter of a model to share it across layers as Compacter does.
        ``None`` gives this adapter its own rule (shared by its two
        projections).

    Attributes
    ----------
    down : PHMLinear
        ``D``: ``d_model -> d_model // reduction``.
    up : PHMLinear
        ``U``: back to ``d_model``.

    See Also
    --------
    BottleneckAdapter : The same adapter with dense projections.
    add_adapters : Put adapters after chosen layers of any module.

    Notes
    -----
    GELU is the tanh approximation (the reference's ``gelu_new``). The
    reference starts from its random initialisation (small because the rule
    is ``N(0, 0.01^2)``), so the adapter is close to, not exactly, the
    identity at the start.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import CompacterAdapter
    >>> _ = torch.manual_seed(0)
    >>> adapter = CompacterAdapter(128, reduction=8, n=4)
    >>> h = torch.randn(2, 128)
    >>> adapter(h).shape
    torch.Size([2, 128])
    >>> sum(p.numel() for p in adapter.parameters())  # 4**3 + (144 + 16) + (144 + 128)
    496
    """

    def __init__(self, d_model, reduction=32, n=4, rank=1, shared_rule=None):
        super().__init__()
        d_model, width = _bottleneck(d_model, reduction, check_positive_int(n, "n"))
        self.d_model, self.reduction = d_model, reduction
        rule = phm_rule(n) if shared_rule is None else shared_rule
        self.down = PHMLinear(d_model, width, n=n, rank=rank, rule=rule)
        self.up = PHMLinear(width, d_model, n=n, rank=rank, rule=rule)
        self.activation = nn.GELU(approximate="tanh")


class BottleneckAdapter(_ResidualBottleneck):
    """A dense bottleneck adapter ``h + U(GELU(D(h)))`` (Houlsby-style).

    The baseline Compacter is measured against: the same structure with
    ``nn.Linear`` projections.

    Parameters
    ----------
    d_model : int
        Width of the hidden states it adapts.
    reduction : int, default=32
        Bottleneck width is ``d_model // reduction``.

    Attributes
    ----------
    down : torch.nn.Linear
        ``d_model -> d_model // reduction``, default ``nn.Linear``
        initialisation.
    up : torch.nn.Linear
        Back to ``d_model``, zeros at the start, so the adapter starts as the
        identity.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import BottleneckAdapter
    >>> adapter = BottleneckAdapter(128, reduction=8)
    >>> h = torch.randn(2, 128)
    >>> torch.equal(adapter(h), h)
    True
    >>> sum(p.numel() for p in adapter.parameters())  # (128 * 16 + 16) + (16 * 128 + 128)
    4240
    """

    def __init__(self, d_model, reduction=32):
        super().__init__()
        d_model, width = _bottleneck(d_model, reduction)
        self.d_model, self.reduction = d_model, reduction
        self.down = nn.Linear(d_model, width)
        self.up = nn.Linear(width, d_model)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.activation = nn.GELU(approximate="tanh")
