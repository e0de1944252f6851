"""Classifier heads and the ``head`` naming convention.

The weight-level methods find a network's classifier layer by the attribute
name ``head`` (:func:`get_head`): weight selection skips it, weight
aligning rescales its rows, the second stage of weight balancing retrains
it. Everything before it is ``body``.
"""

import torch
from torch import nn

__all__ = ["ETFHead", "get_head"]


def get_head(module):
    """The classifier layer of a module: its ``head`` attribute.

    Parameters
    ----------
    module : torch.nn.Module
        A network following the ``body``/``head`` convention of
        :class:`MLP`.

    Returns
    -------
    head : torch.nn.Module
        The last layer, with a 2-d ``weight`` of shape (n_classes, width).

    Examples
    --------
    >>> from weightstats.nn import MLP, get_head
    >>> get_head(MLP(4, 3, hidden_units=8)).weight.shape
    torch.Size([3, 8])
    """
    head = getattr(module, "head", None)
    weight = getattr(head, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise ValueError(
            f"{type(module).__name__} has no classifier layer 'head' with a 2-d weight; name "
            "the last layer of the module 'head' (as weightstats.nn.MLP does)."
        )
    return head


class ETFHead(nn.Module):
    """A fixed simplex equiangular tight frame (ETF) classifier layer.

    The weight is ``W = sqrt(C / (C - 1)) * (I - 11'/C) U'`` with ``U`` a
    random ``in_features x C`` matrix with orthonormal columns: the ``C``
    class vectors have unit norm and pairwise cosine ``-1/(C-1)``. The
    weight is a buffer, not a parameter, so neither its directions nor its
    norms are trained; the bias is trained. This is the classifier of the
    one-stage recipe of Hasegawa & Sato (2024) with ``train_etf_norm``
    off, as in their configurations (reference ``ETFClassifier``; its bias
    starts uniform in ``[-1/in_features, 1/in_features]``).

    Parameters
    ----------
    in_features : int
        Width of the features; at least ``out_features``.
    out_features : int
        Number of classes ``C`` (at least 2).
    bias : bool, default=True
        Whether to add a trainable bias.

    Attributes
    ----------
    weight : torch.Tensor of shape (out_features, in_features)
        The fixed ETF (a buffer, saved in the state dict).
    bias : torch.nn.Parameter of shape (out_features,) or None
        The trainable bias.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import ETFHead
    >>> _ = torch.manual_seed(0)
    >>> head = ETFHead(8, 4)
    >>> gram = head.weight @ head.weight.T
    >>> torch.allclose(gram.diagonal(), torch.ones(4), atol=1e-6)
    True
    >>> round(float(gram[0, 1]), 4)  # -1 / (C - 1)
    -0.3333
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        if out_features < 2:
            raise ValueError(f"an ETF needs at least 2 classes; got out_features={out_features}.")
        if in_features < out_features:
            raise ValueError(
                f"an ETF with {out_features} classes needs at least {out_features} features; "
                f"got in_features={in_features}. Widen the last hidden layer."
            )
        self.in_features = in_features
        self.out_features = out_features
        # Orthonormal columns from the QR decomposition of a Gaussian matrix
        # (the torch RNG, so the estimator's random_state fixes it).
        basis, _ = torch.linalg.qr(torch.randn(in_features, out_features, dtype=torch.float64))
        centred = torch.eye(out_features, dtype=torch.float64) - 1.0 / out_features
        scale = (out_features / (out_features - 1)) ** 0.5
        weight = scale * (basis @ centred).T
        self.register_buffer("weight", weight.to(torch.get_default_dtype()))
        if bias:
            bound = 1.0 / in_features
            self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)

    def forward(self, features):
        """Class scores ``features @ W' + b``.

        Parameters
        ----------
        features : torch.Tensor of shape (n_samples, in_features)
            The features.

        Returns
        -------
        logits : torch.Tensor of shape (n_samples, out_features)
            The class scores.
        """
        logits = features @ self.weight.T
        return logits if self.bias is None else logits + self.bias

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, fixed weight"
        )
