"""Multilayer perceptrons: the default module and a multi-task trunk."""

import numbers

import torch
from torch import nn

from ._heads import ETFHead

__all__ = ["MLP", "MultiHeadMLP"]

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
