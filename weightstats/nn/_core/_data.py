"""Data handling of the nets: input checks, weights in the batch, batching.

Sample weights travel with the features in a dict ``{"X": features,
"sample_weight": w}``; :func:`batch_features` strips them before the
module sees the batch and :func:`batch_sample_weight` reads them in the
loss. Plain arrays (and dicts of them) are fetched a whole batch at a time
by :class:`BatchedDataset`.
"""

import warnings
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import torch
from skorch.dataset import Dataset
from skorch.utils import is_dataset
from torch.utils.data import Subset, default_collate

__all__ = [
    "DATA_KEY",
    "SCALE_ADVICE",
    "WEIGHT_KEY",
    "BatchedDataset",
    "batch_features",
    "batch_sample_weight",
    "check_dict_input",
    "check_finite_tensor",
    "collate",
    "dataset_column",
    "first_output",
    "is_passthrough",
    "n_rows",
    "plain_arrays",
    "warn_if_unscaled",
    "writable",
]

# Keys of the dict that carries per-row weights next to the features.
DATA_KEY = "X"
WEIGHT_KEY = "sample_weight"

# Features beyond this magnitude make float32 SGD with the usual learning
# rates diverge or kill the ReLUs in the first steps.
_LARGE_FEATURE = 1e6
SCALE_ADVICE = (
    "Scale the features, e.g. make_pipeline(StandardScaler(), net) with "
    "sklearn.preprocessing.StandardScaler, or lower lr."
)


def is_passthrough(X):
    """Inputs that go to skorch without scikit-learn validation: datasets, tensors, dicts."""
    if sp.issparse(X):  # a DOK matrix is a dict
        return False
    return is_dataset(X) or isinstance(X, (torch.Tensor, Mapping))


def first_output(y_pred):
    """The prediction of a module output (the first element of a tuple)."""
    return y_pred[0] if isinstance(y_pred, (tuple, list)) else y_pred


def writable(array):
    """``array`` or a writable copy (torch.as_tensor warns on read-only memmaps)."""
    return array if array.flags.writeable else array.copy()


def batch_sample_weight(X):
    """The per-row weights travelling with a batch, or None."""
    if isinstance(X, Mapping):
        return X.get(WEIGHT_KEY)
    return None


def batch_features(X):
    """The module input of a batch without the weights."""
    if isinstance(X, Mapping) and WEIGHT_KEY in X:
        X = {key: value for key, value in X.items() if key != WEIGHT_KEY}
        if set(X) == {DATA_KEY}:
            return X[DATA_KEY]
    return X


def warn_if_unscaled(X):
    """Warn when a column of the feature array has a huge magnitude."""
    if X.size == 0:
        return
    magnitude = np.abs(X).max(axis=0)
    column = int(np.argmax(magnitude))
    if magnitude[column] > _LARGE_FEATURE:
        warnings.warn(
            f"column {column} of X reaches {magnitude[column]:.3g} in absolute value; networks "
            f"trained by SGD need features of moderate scale and usually diverge or stall "
            f"on such inputs. {SCALE_ADVICE}",
            UserWarning,
            stacklevel=4,
        )


def check_finite_tensor(value, name):
    """Raise when a floating-point tensor holds NaN or infinity; return it."""
    if (
        isinstance(value, torch.Tensor)
        and (value.is_floating_point() or value.is_complex())
        and not bool(torch.isfinite(value).all())
    ):
        raise ValueError(f"{name} contains NaN or infinity.")
    return value


def check_dict_input(X):
    """Dict input: float arrays to finite float32, equal lengths."""
    checked = {}
    for key, value in X.items():
        if isinstance(value, torch.Tensor):
            check_finite_tensor(value, f"X[{key!r}]")
        else:
            value = np.asarray(value)
            if value.dtype.kind == "f":
                if not np.all(np.isfinite(value)):
                    raise ValueError(f"X[{key!r}] contains NaN or infinity.")
                value = writable(value.astype(np.float32, copy=False))
            elif value.dtype.kind == "O":
                raise ValueError(f"X[{key!r}] has dtype object; pass numeric arrays.")
            else:
                value = writable(value)
        checked[key] = value
    lengths = {key: n_rows(value) for key, value in checked.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"the entries of X have inconsistent lengths: {lengths}.")
    return checked


def n_rows(value):
    """Number of rows of an array, tensor or sequence."""
    if hasattr(value, "shape") and len(value.shape) > 0:
        return int(value.shape[0])
    return len(value)


def plain_arrays(data):
    """Whether ``data`` is an array/tensor or a dict of them (batchable)."""
    if isinstance(data, Mapping):
        return all(plain_arrays(value) for value in data.values())
    return isinstance(data, (np.ndarray, torch.Tensor))


def _take(data, index):
    """Rows ``index`` of an array, tensor or dict of them, as tensors."""
    if isinstance(data, Mapping):
        return {key: _take(value, index) for key, value in data.items()}
    if isinstance(data, torch.Tensor):
        return data[torch.as_tensor(index, device=data.device)]
    return torch.as_tensor(data[index])


class _Batch(tuple):
    """A batch already assembled by :class:`BatchedDataset`."""


class BatchedDataset(Dataset):
    """skorch's Dataset, fetching a whole batch by one fancy index.

    The DataLoader then skips per-row ``__getitem__`` calls and collation
    (:func:`collate` passes the batch through); the batches are the same as
    skorch's (same rows, order and dtypes). Used only with loaders whose
    ``collate_fn`` is :func:`collate`.
    """

    def __getitems__(self, indices):
        index = np.asarray(indices, dtype=np.int64)
        yb = torch.zeros(index.shape[0]) if self.y is None else _take(self.y, index)
        return _Batch((_take(self.X, index), yb))


def collate(batch):
    """The default ``collate_fn``: batches from :class:`BatchedDataset` as they are."""
    if isinstance(batch, _Batch):
        return tuple(batch)
    return default_collate(batch)


def dataset_column(dataset, key):
    """Entry ``key`` of the dict input behind a (possibly split) dataset.

    Follows ``torch.utils.data.Subset`` (what skorch's ``ValidSplit``
    returns) down to the skorch Dataset and keeps the subset's rows, so
    callbacks read per-row side information (task ids, ...) of exactly the
    rows the training loader iterates.

    Parameters
    ----------
    dataset : torch Dataset
        ``dataset_train`` or ``dataset_valid`` as skorch passes them.
    key : str
        Key of the entry in the input dict.

    Returns
    -------
    values : ndarray of shape (len(dataset),)
        The entry's values, in the dataset's row order.
    """
    rows = None
    while isinstance(dataset, Subset):
        index = np.asarray(dataset.indices, dtype=np.int64)
        rows = index if rows is None else index[rows]
        dataset = dataset.dataset
    X = getattr(dataset, "X", None)
    if not isinstance(X, Mapping) or key not in X:
        raise ValueError(
            f"the training data have no entry {key!r}: fit on a dict "
            f"{{'X': features, {key!r}: values}} (a custom Dataset must keep that dict as .X)."
        )
    values = X[key]
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    values = np.asarray(values).reshape(-1)
    return values if rows is None else values[rows]
