"""Shared docstring text of the skorch-based estimators.

Estimators write ``{net_params}``, ``{random_state}`` or ``{net_attributes}``
on a line of their own docstring and decorate the class with
:func:`fill_net_doc`.
"""

__all__ = ["fill_net_doc"]

NET_PARAMS_DOC = """module : torch.nn.Module class or instance, default=MLP
    The network. Classes are instantiated with the ``module__*`` parameters;
    when its constructor takes ``n_features`` / ``n_outputs`` they are filled
    in from the training data unless given.
criterion : torch criterion class, default=torch.nn.CrossEntropyLoss
    The loss (``torch.nn.MSELoss`` for the regressor). It is evaluated per
    sample (``reduction="none"`` is set on the instance; multi-output losses
    are averaged over outputs) and reduced by the weighted mean.
optimizer : torch optimizer class, default=torch.optim.SGD
    Set its options with ``optimizer__*`` (e.g. ``optimizer__momentum=0.9``,
    ``optimizer__weight_decay=5e-4``).
lr : float, default=0.01
    Learning rate.
max_epochs : int, default=10
    Number of epochs per ``fit`` (and per ``partial_fit`` call).
batch_size : int, default=128
    Mini-batch size; -1 uses the whole data set.
iterator_train, iterator_valid : DataLoader class, default=DataLoader
    Loaders; options via ``iterator_train__*``. Training batches are
    shuffled unless ``iterator_train__shuffle=False`` or a sampler is given
    (``iterator_train__sampler``).
dataset : skorch Dataset class, default=skorch.dataset.Dataset
    Wraps ``X`` and ``y``.
train_split : callable or None, default=None
    Internal validation split; ``None`` trains on all rows (pass
    ``skorch.dataset.ValidSplit(5)`` for skorch's default).
callbacks : list of skorch callbacks or None, default=None
    Training extras, e.g. :class:`DynamicDataPruning`,
    ``skorch.callbacks.LRScheduler``.
predict_nonlinearity : callable, None or "auto", default="auto"
    Applied to the module output in ``predict_proba``; "auto" is softmax
    for ``CrossEntropyLoss``.
warm_start : bool, default=False
    Whether ``fit`` continues from the current parameters.
verbose : int, default=0
    1 prints skorch's table of epochs.
device : str or None, default="cpu"
    Torch device, e.g. ``"cuda"``.
compile : bool, default=False
    Whether to ``torch.compile`` the module.
use_caching : bool or "auto", default="auto"
    Whether scoring callbacks reuse the forward pass.
torch_load_kwargs : dict or None, default=None
    Passed to ``torch.load`` by skorch's own ``load_params``."""

RANDOM_STATE_DOC = """random_state : int, RandomState instance or None, default=None
    Seeds torch (module initialisation, dropout, batch order) inside a
    forked RNG for each ``fit``; ``None`` uses the global torch RNG as skorch
    does. Pass an int for reproducible training on CPU (GPU kernels may
    still be non-deterministic)."""

NET_ATTRIBUTES_DOC = """module_ : torch.nn.Module
    The trained network.
criterion_ : torch.nn.Module
    The loss (with ``reduction="none"``).
optimizer_ : torch.optim.Optimizer
    The optimizer.
history_ : skorch.history.History
    Per-epoch (and per-batch) records: losses, timings, and whatever the
    callbacks record.
n_features_in_ : int
    Number of features seen during ``fit`` (array input only).
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Names of features seen during ``fit``, when ``X`` has string column
    names."""


def fill_net_doc(obj):
    """Insert the shared skorch parameter text into ``obj.__doc__``."""
    fragments = {
        "net_params": NET_PARAMS_DOC,
        "random_state": RANDOM_STATE_DOC,
        "net_attributes": NET_ATTRIBUTES_DOC,
    }
    lines = []
    for line in obj.__doc__.splitlines():
        key = line.strip()[1:-1]
        if line.strip().startswith("{") and key in fragments:
            indent = line[: len(line) - len(line.lstrip())]
            lines.extend(indent + part if part else part for part in fragments[key].splitlines())
        else:
            lines.append(line)
    obj.__doc__ = "\n".join(lines)
    return obj
