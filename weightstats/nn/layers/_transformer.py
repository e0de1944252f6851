"""A small pre-norm transformer with Llama-style attention projections.

Used by the tests, the examples and the head-sharing tools of
:mod:`weightstats.nn.merging`. Its attention modules have the layout of
Hugging Face's ``LlamaAttention`` (separate ``q_proj``, ``k_proj``,
``v_proj``, ``o_proj`` linear maps without bias, head ``h`` owning rows
``h * head_dim : (h + 1) * head_dim`` of the first three and the same
columns of ``o_proj``; ``num_heads`` and ``head_dim`` attributes), so code
written for one works on the other.
"""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TinyTransformer"]

_POOLING = (None, "mean", "last")


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention, Llama layout.

    Parameters
    ----------
    d_model : int
        Width of the token features.
    num_heads : int
        Number of heads; must divide ``d_model``.
    causal : bool, default=False
        Whether a position attends only to itself and earlier positions.
    dropout : float, default=0.0
        Dropout on the attention weights while training.

    """

    def __init__(self, d_model, num_heads, causal=False, dropout=0.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}.")
        self.num_heads, self.head_dim = int(num_heads), int(d_model // num_heads)
        self.causal, self.dropout = bool(causal), float(dropout)
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.o_proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x):
        """Attention output of a batch.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, T, d_model)
            Token features.

        Returns
        -------
        out : torch.Tensor of shape (batch, T, d_model)
            ``o_proj`` of the concatenated heads.
        """
        batch, n_tokens, _ = x.shape

        def heads(proj):
            return proj(x).view(batch, n_tokens, self.num_heads, self.head_dim).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            heads(self.q_proj), heads(self.k_proj), heads(self.v_proj),
            dropout_p=self.dropout if self.training else 0.0, is_causal=self.causal,
        )
        return self.o_proj(out.transpose(1, 2).reshape(batch, n_tokens, -1))


class _Block(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``."""

    def __init__(self, d_model, n_heads, d_ff, causal, dropout):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(d_model)
        self.self_attn = SelfAttention(d_model, n_heads, causal=causal, dropout=dropout)
        self.post_attention_layernorm = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model), nn.Dropout(dropout)
        )

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class TinyTransformer(nn.Module):
    """A small pre-norm transformer over token sequences.

    Token and learned position embeddings, ``n_layers`` pre-norm blocks
    (multi-head self-attention, then a GELU feed-forward network, each
    added to its input), a final layer norm and a linear ``head``. The
    attention modules (``layers[i].self_attn``) follow the Hugging Face
    Llama layout (:class:`SelfAttention`), so the head-sharing tools treat
    both alike.

    Parameters
    ----------
    vocab_size : int, default=16
        Number of token ids (inputs are integers in ``[0, vocab_size)``).
    d_model : int, default=64
        Width of the token features.
    n_layers : int, default=3
        Number of blocks.
    n_heads : int, default=4
        Attention heads per block; must divide ``d_model``.
    d_ff : int, default=None
        Width of the feed-forward networks; ``4 * d_model`` when None.
    max_len : int, default=64
        Longest sequence (number of position embeddings).
    n_outputs : int, default=None
        Outputs per position (or per sequence when pooled); ``vocab_size``
        when None. The weightstats classifiers fill it in from the data.
    pooling : {None, "mean", "last"}, default=None
        None returns one output per position; "mean" and "last" pool the
        final features over positions first (a sequence classifier).
    causal : bool, default=False
        Whether positions attend only to earlier ones (a decoder).
    dropout : float, default=0.0
        Dropout on attention weights and feed-forward outputs.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import TinyTransformer
    >>> _ = torch.manual_seed(0)
    >>> model = TinyTransformer()
    >>> tokens = torch.randint(0, 16, (2, 8))
    >>> model(tokens).shape  # (batch, positions, vocab_size) logits
    torch.Size([2, 8, 16])
    >>> attn = model.layers[0].self_attn
    >>> attn.num_heads, attn.head_dim, attn.q_proj.weight.shape
    (4, 16, torch.Size([64, 64]))
    """

    def __init__(
        self,
        vocab_size=16,
        d_model=64,
        n_layers=3,
        n_heads=4,
        d_ff=None,
        max_len=64,
        n_outputs=None,
        pooling=None,
        causal=False,
        dropout=0.0,
    ):
        super().__init__()
        for name, value in [("vocab_size", vocab_size), ("d_model", d_model),
                            ("n_layers", n_layers), ("n_heads", n_heads), ("max_len", max_len)]:
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
        if d_model % n_heads:
            raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}.")
        if pooling not in _POOLING:
            raise ValueError(f"pooling must be one of {_POOLING}; got {pooling!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout!r}.")
        self.vocab_size, self.max_len, self.pooling = int(vocab_size), int(max_len), pooling
        d_ff = 4 * d_model if d_ff is None else int(d_ff)
        self.embed_tokens = nn.Embedding(vocab_size, d_model)
        self.embed_positions = nn.Embedding(max_len, d_model)
        self.layers = nn.ModuleList(
            _Block(d_model, n_heads, d_ff, causal, dropout) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size if n_outputs is None else int(n_outputs))

    def forward(self, X):
        """Logits of a batch of token sequences.

        Parameters
        ----------
        X : torch.Tensor of shape (batch, T)
            Token ids (integers; a floating tensor of whole numbers, as the
            scikit-learn-style nets pass arrays, is accepted).

        Returns
        -------
        logits : torch.Tensor
            Shape (batch, T, n_outputs), or (batch, n_outputs) when pooled.
        """
        if not isinstance(X, torch.Tensor) or X.ndim != 2:
            shape = tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__
            raise ValueError(f"TinyTransformer expects token ids of shape (batch, T); got {shape}.")
        if X.is_floating_point():
            if not bool(torch.isfinite(X).all()) or not bool((X == X.round()).all()):
                raise ValueError("token ids must be whole numbers; got fractional or non-finite values.")
        tokens = X.long()
        n_tokens = tokens.shape[1]
        if n_tokens > self.max_len:
            raise ValueError(f"sequences of {n_tokens} tokens exceed max_len={self.max_len}.")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.vocab_size - 1}].")
        positions = torch.arange(n_tokens, device=tokens.device)
        h = self.embed_tokens(tokens) + self.embed_positions(positions)
        for layer in self.layers:
            h = layer(h)
        h = self.norm(h)
        if self.pooling == "mean":
            h = h.mean(dim=1)
        elif self.pooling == "last":
            h = h[:, -1]
        return self.head(h)
