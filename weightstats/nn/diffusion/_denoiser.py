"""A small conditional noise-prediction network for tabular diffusion."""

import math
import numbers

import torch
from torch import nn

__all__ = ["ConditionalDenoiser"]

_ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def timestep_embedding(timesteps, dim, max_period=10000.0):
    """Sinusoidal features of integer timesteps (Vaswani et al.; DDPM's embedding).

    Parameters
    ----------
    timesteps : torch.Tensor of shape (n,)
        Timesteps (integers or floats).
    dim : int
        Number of features (even).
    max_period : float, default=10000.0
        Longest period of the sinusoids.

    Returns
    -------
    features : torch.Tensor of shape (n, dim)
        ``[cos(t f_k), sin(t f_k)]`` with ``f_k = max_period^(-k / (dim / 2))``.
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=timesteps.device, dtype=torch.float32)
        / half
    )
    angles = timesteps.float().reshape(-1, 1) * freqs
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


class ConditionalDenoiser(nn.Module):
    """MLP prediction network ``f(x_t, t, y)`` with a class embedding.

    ``x_t`` is projected and added to an MLP embedding of sinusoidal
    timestep features; that sum goes through ``hidden_units`` layers. The
    class enters as a learned per-class bias on the pre-activations of the
    last ``n_class_layers`` hidden layers; label ``n_classes`` is the *null*
    label of classifier-free guidance (the unconditional model).

    Because everything up to the first conditioned layer's linear map does
    not depend on the label, :meth:`forward_guided` computes it once for
    both branches of guided sampling and runs only the rest on the stacked
    batch.

    Parameters
    ----------
    n_features : int
        Dimension of ``x`` (filled in from the data by
        :class:`ConditionalDiffusion`).
    n_classes : int
        Number of classes (filled in from the data); 0 for an unconditional
        model.
    hidden_units : tuple of int, default=(128, 128, 128)
        Widths of the hidden layers.
    n_class_layers : int, default=1
        How many of the last hidden layers receive the class embedding
        (``len(hidden_units)`` conditions every layer).
    time_embedding_dim : int, default=32
        Number of sinusoidal timestep features.
    activation : {"silu", "relu", "gelu", "tanh"}, default="silu"
        Activation of the hidden layers.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn.diffusion import ConditionalDenoiser
    >>> _ = torch.manual_seed(0)
    >>> net = ConditionalDenoiser(2, 3, hidden_units=(16, 16))
    >>> x, t, y = torch.zeros(4, 2), torch.tensor([0, 10, 500, 999]), torch.tensor([0, 1, 2, 3])
    >>> net(x, t, y).shape
    torch.Size([4, 2])
    >>> uncond, cond = net.forward_guided(x, t, y)
    >>> torch.allclose(uncond, net(x, t, torch.full((4,), 3)), atol=1e-6)
    True
    """

    def __init__(
        self,
        n_features,
        n_classes,
        hidden_units=(128, 128, 128),
        n_class_layers=1,
        time_embedding_dim=32,
        activation="silu",
    ):
        super().__init__()
        if isinstance(hidden_units, numbers.Integral):
            hidden_units = (hidden_units,)
        hidden_units = tuple(int(h) for h in hidden_units)
        if not hidden_units or any(h < 1 for h in hidden_units):
            raise ValueError(
                f"hidden_units must be a non-empty tuple of positive integers; got {hidden_units}."
            )
        if not 1 <= n_class_layers <= len(hidden_units):
            raise ValueError(
                f"n_class_layers must be between 1 and len(hidden_units) = {len(hidden_units)}; "
                f"got {n_class_layers}."
            )
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}; got {activation!r}."
            )
        if time_embedding_dim < 2 or time_embedding_dim % 2:
            raise ValueError(
                f"time_embedding_dim must be an even integer >= 2; got {time_embedding_dim}."
            )
        if n_classes < 0:
            raise ValueError(f"n_classes must be >= 0; got {n_classes}.")
        self.n_features = int(n_features)
        self.n_classes = int(n_classes)
        self.time_embedding_dim = int(time_embedding_dim)
        width = hidden_units[0]
        self.input = nn.Linear(self.n_features, width)
        self.time = nn.Sequential(
            nn.Linear(self.time_embedding_dim, width), _ACTIVATIONS[activation]()
        )
        self.layers = nn.ModuleList()
        for units in hidden_units:
            self.layers.append(nn.Linear(width, units))
            width = units
        self.activation = _ACTIVATIONS[activation]()
        self.first_class_layer = len(hidden_units) - int(n_class_layers)
        # One embedding per conditioned layer; starts at zero, so the net
        # begins as an unconditional one and learns how each class shifts it.
        self.class_embeddings = nn.ModuleList(
            nn.Embedding(self.n_classes + 1, units)
            for units in hidden_units[self.first_class_layer:]
        )
        for embedding in self.class_embeddings:
            nn.init.zeros_(embedding.weight)
        self.head = nn.Linear(width, self.n_features)

    @property
    def null_label(self):
        """The label of the unconditional model (``n_classes``)."""
        return self.n_classes

    def _shared(self, x, t):
        """The label-independent part: every layer before the first conditioned
        one, and that layer's linear map (the label only adds a bias to it)."""
        h = self.input(x) + self.time(timestep_embedding(t, self.time_embedding_dim))
        for layer in self.layers[: self.first_class_layer]:
            h = self.activation(layer(h))
        return self.layers[self.first_class_layer](h)

    def _first_conditioned(self, z, y):
        """The first conditioned layer's output; ``y=None`` is the null label."""
        embedding = self.class_embeddings[0]
        # The null label's bias is one row, broadcast instead of gathered.
        bias = embedding.weight[self.null_label] if y is None else embedding(y)
        return self.activation(z + bias)

    def _tail(self, h, y):
        """The remaining conditioned layers and the output head."""
        for layer, embedding in zip(
            self.layers[self.first_class_layer + 1 :], self.class_embeddings[1:], strict=True
        ):
            h = self.activation(layer(h) + embedding(y))
        return self.head(h)

    def forward(self, x, t, y):
        """Prediction (noise, ``v`` or ``x_0``) for a batch.

        Parameters
        ----------
        x : torch.Tensor of shape (n, n_features)
            Noisy inputs ``x_t``.
        t : torch.Tensor of shape (n,)
            Integer timesteps.
        y : torch.Tensor of shape (n,)
            Labels ``0 .. n_classes - 1``, or ``n_classes`` for none.

        Returns
        -------
        prediction : torch.Tensor of shape (n, n_features)
            The network output.
        """
        y = y.long()
        return self._tail(self._first_conditioned(self._shared(x, t), y), y)

    def forward_guided(self, x, t, y):
        """Unconditional and conditional predictions in one batched pass.

        Everything up to the first conditioned layer's linear map runs once
        on ``n`` rows; the label's bias and activation are applied for each
        branch and the rest runs on the ``2 n`` stacked rows (null labels
        first).

        Parameters
        ----------
        x : torch.Tensor of shape (n, n_features)
            Noisy inputs ``x_t``.
        t : torch.Tensor of shape (n,)
            Integer timesteps.
        y : torch.Tensor of shape (n,)
            Labels of the conditional branch.

        Returns
        -------
        uncond, cond : torch.Tensor of shape (n, n_features)
            The two predictions, equal to ``forward(x, t, null)`` and
            ``forward(x, t, y)``.
        """
        z = self._shared(x, t)
        y = y.long()
        h = torch.cat([self._first_conditioned(z, None), self._first_conditioned(z, y)])
        labels = torch.cat([torch.full_like(y, self.null_label), y])
        return self._tail(h, labels).chunk(2)
