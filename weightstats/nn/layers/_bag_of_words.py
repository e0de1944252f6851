"""A bag-of-embeddings text classifier: ``nn.EmbeddingBag`` then ``nn.Linear``."""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EmbeddingBagClassifier"]


class EmbeddingBagClassifier(nn.Module):
    """Mean of the token embeddings of a document, then a linear layer.

    The input is a batch of token ids, one row per document, padded with
    ``padding_idx`` (padding is left out of the mean; an all-padding row
    gives the zero vector). The embedding table is an ``nn.EmbeddingBag``
    (``embedding``), but the forward pass computes the same mean from an
    embedding lookup: torch's ``embedding_bag`` kernel has no second
    derivative, which gradient-of-gradient methods (RIPPLe's restricted
    inner product) need.

    Parameters
    ----------
    n_tokens : int
        Vocabulary size (token ids are ``0 .. n_tokens - 1``).
    n_outputs : int
        Number of classes (filled in from the data by the estimators).
    embedding_dim : int, default=32
        Width of the embeddings.
    padding_idx : int or None, default=0
        The padding token; None treats every id as a token.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import EmbeddingBagClassifier
    >>> _ = torch.manual_seed(0)
    >>> model = EmbeddingBagClassifier(n_tokens=50, n_outputs=2, embedding_dim=8)
    >>> tokens = torch.tensor([[4, 7, 9, 0], [3, 0, 0, 0]])   # 0 pads
    >>> model(tokens).shape
    torch.Size([2, 2])
    >>> bags = model.embedding(tokens)                        # torch's EmbeddingBag
    >>> bool(torch.allclose(model.head(bags), model(tokens)))
    True
    """

    def __init__(self, n_tokens, n_outputs, embedding_dim=32, padding_idx=0):
        super().__init__()
        if n_tokens < 1 or embedding_dim < 1 or n_outputs < 1:
            raise ValueError(
                "n_tokens, n_outputs and embedding_dim must be positive; got "
                f"{n_tokens}, {n_outputs}, {embedding_dim}."
            )
        self.padding_idx = padding_idx
        self.embedding = nn.EmbeddingBag(
            n_tokens, embedding_dim, mode="mean", padding_idx=padding_idx
        )
        self.head = nn.Linear(embedding_dim, n_outputs)

    def forward(self, X):
        """Logits of a batch of token-id rows.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_positions)
            Token ids (integers).

        Returns
        -------
        logits : torch.Tensor of shape (n_samples, n_outputs)
            The logits.
        """
        if X.ndim != 2 or X.is_floating_point() or X.is_complex():
            raise ValueError(
                f"X must be a 2-d integer tensor of token ids; got shape {tuple(X.shape)} and "
                f"dtype {X.dtype}."
            )
        X = X.long()
        n_tokens = self.embedding.num_embeddings
        if X.numel() and (int(X.min()) < 0 or int(X.max()) >= n_tokens):
            raise ValueError(f"token ids must be in [0, {n_tokens - 1}].")
        vectors = F.embedding(X, self.embedding.weight, padding_idx=self.padding_idx)
        if self.padding_idx is None:
            bags = vectors.mean(dim=1)
        else:
            keep = (X != self.padding_idx).unsqueeze(-1).to(vectors.dtype)
            bags = (vectors * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)
        return self.head(bags)
