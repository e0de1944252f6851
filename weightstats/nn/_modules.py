"""Small reusable ``torch.nn.Module`` building blocks.

The estimators of :mod:`weightstats.nn` fill in ``n_features`` and
``n_outputs`` from the training data when the module's constructor takes
them, so these modules work as defaults and inside any other skorch net.

Naming convention used by the weight-level methods: the classifier layer is
the attribute ``head`` (skipped by weight selection, rescaled by weight
aligning, retrained in the second stage of weight balancing) and everything
before it is ``body``.
"""

import numbers

import torch
from torch import nn

__all__ = ["ETFHead", "MLP", "MultiHeadMLP"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "identity": nn.Identity}


def _hidden_units(hidden_units):
    if isinstance(hidden_units, numbers.Integral):
        hidden_units = (hidden_units,)
    hidden_units = tuple(int(h) for h in hidden_units)
    if any(h < 1 for h in hidden_units):
        raise ValueError(f"hidden_units must be positive integers; got {hidden_units}.")
    return hidden_units


def _body(n_features, hidden_units, activation, dropout):
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}; got {activation!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1); got {dropout!r}.")
    layers, width = [], int(n_features)
    for units in _hidden_units(hidden_units):
        layers += [nn.Linear(width, units), _ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = units
    return nn.Sequential(*layers), width


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


class MLP(nn.Module):
    """A multilayer perceptron: ``body`` (hidden layers) then ``head``.

    Parameters
    ----------
    n_features : int
        Number of input features (filled in from the data by the
        weightstats estimators).
    n_outputs : int
        Number of outputs: classes for classifiers, targets for regressors
        (filled in from the data).
    hidden_units : int or tuple of int, default=(100,)
        Widths of the hidden layers; ``()`` gives a linear model.
    activation : {"relu", "tanh", "gelu", "identity"}, default="relu"
        Activation after each hidden layer.
    dropout : float, default=0.0
        Dropout probability after each hidden activation.
    head : {"linear", "etf"}, default="linear"
        The output layer: a trainable ``nn.Linear`` or an
        :class:`ETFHead` (fixed weight, trainable bias).
    return_features : bool, default=False
        Whether ``forward`` returns ``(logits, features)`` instead of the
        logits alone. skorch uses the first element of a tuple for
        ``predict``; losses that regularise the features (e.g.
        :class:`WeightBalancingClassifier`) use the second.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MLP
    >>> _ = torch.manual_seed(0)
    >>> net = MLP(4, 3, hidden_units=(8, 8))
    >>> net(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    >>> [name for name, _ in net.named_parameters()]
    ['body.0.weight', 'body.0.bias', 'body.2.weight', 'body.2.bias', 'head.weight', 'head.bias']
    """

    def __init__(
        self,
        n_features,
        n_outputs,
        hidden_units=(100,),
        activation="relu",
        dropout=0.0,
        head="linear",
        return_features=False,
    ):
        super().__init__()
        self.body, width = _body(n_features, hidden_units, activation, dropout)
        if head == "linear":
            self.head = nn.Linear(width, n_outputs)
        elif head == "etf":
            self.head = ETFHead(width, n_outputs)
        else:
            raise ValueError(f"head must be 'linear' or 'etf'; got {head!r}.")
        self.return_features = return_features

    def forward(self, X):
        """Outputs (and features) of a batch.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)
            The inputs.

        Returns
        -------
        output : torch.Tensor of shape (n_samples, n_outputs) or tuple
            The logits, or ``(logits, features)`` with ``return_features``.
        """
        features = self.body(X)
        logits = self.head(features)
        return (logits, features) if self.return_features else logits


class MultiHeadMLP(nn.Module):
    """A shared MLP trunk with one output head per task.

    For multi-task training with :class:`TaskMixtureSampler`: the input is a
    dict ``{"X": features, "task": task ids}`` (skorch passes dict entries
    as keyword arguments to ``forward``) and each row gets the logits of its
    own task's head.

    Parameters
    ----------
    n_features : int
        Number of input features.
    n_outputs : int
        Number of outputs of every head (the union of the tasks' labels).
    n_tasks : int, default=2
        Number of tasks (task ids are ``0 .. n_tasks - 1``).
    hidden_units : int or tuple of int, default=(100,)
        Widths of the shared hidden layers.
    activation : {"relu", "tanh", "gelu", "identity"}, default="relu"
        Activation after each hidden layer.
    dropout : float, default=0.0
        Dropout probability after each hidden activation.

    Examples
    --------
    >>> import torch
    >>> from weightstats.nn import MultiHeadMLP
    >>> _ = torch.manual_seed(0)
    >>> net = MultiHeadMLP(4, 3, n_tasks=2, hidden_units=8)
    >>> net(torch.zeros(5, 4), torch.tensor([0, 1, 1, 0, 1])).shape
    torch.Size([5, 3])
    """

    def __init__(
        self, n_features, n_outputs, n_tasks=2, hidden_units=(100,), activation="relu", dropout=0.0
    ):
        super().__init__()
        if n_tasks < 1:
            raise ValueError(f"n_tasks must be at least 1; got {n_tasks}.")
        self.body, width = _body(n_features, hidden_units, activation, dropout)
        self.heads = nn.ModuleList(nn.Linear(width, n_outputs) for _ in range(n_tasks))

    def forward(self, X, task):
        """Logits of each row from its task's head.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)
            The inputs.
        task : torch.Tensor of shape (n_samples,)
            Integer task id of each row.

        Returns
        -------
        logits : torch.Tensor of shape (n_samples, n_outputs)
            The logits.
        """
        features = self.body(X)
        task = task.long().reshape(-1)
        if task.numel() and (int(task.min()) < 0 or int(task.max()) >= len(self.heads)):
            raise ValueError(f"task ids must be in [0, {len(self.heads) - 1}].")
        outputs = torch.stack([head(features) for head in self.heads], dim=1)
        return outputs[torch.arange(features.shape[0], device=features.device), task]
