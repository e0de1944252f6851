"""Ordered class labels: where the order of an ordinal target comes from.

The order is taken, in this priority, from

1. an explicit ``classes=[lowest, ..., highest]``;
2. a pandas ordered Categorical ``y`` (its categories, in order);
3. numeric (or boolean) labels, sorted ascending.

Anything else (strings, unordered Categoricals, mixed objects) has no order we
could trust (``"10" < "9"`` as strings), so it raises and says how to give one.
"""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils.multiclass import check_classification_targets

__all__ = ["categorical_order", "encode_ordinal"]

_HOW_TO_ORDER = (
    "pass classes=[lowest, ..., highest] to the estimator, or give y as a pandas ordered "
    "Categorical, e.g. pd.Categorical(y, categories=[lowest, ..., highest], ordered=True)"
)


def categorical_order(y):
    """``(categories, ordered)`` if ``y`` is a pandas Categorical (or Series of one), else None."""
    dtype = getattr(y, "dtype", None)
    if isinstance(dtype, pd.CategoricalDtype):
        return np.asarray(dtype.categories), bool(dtype.ordered)
    return None


def _preview(values, limit=6):
    values = list(values)
    shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _is_orderable_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (str, bytes))


def encode_ordinal(
    y, *, classes=None, categorical=None, min_classes=3, require_all=True, name="y"
):
    """Codes ``0..K-1`` of ordinal labels and the ordered labels.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        The labels (already validated as 1-d and free of missing values).
    classes : array-like of shape (n_classes,), default=None
        Explicit order, lowest first.
    categorical : tuple or None
        ``categorical_order`` of the original ``y`` (before conversion to an
        array), so the order of a pandas Categorical survives validation.
    min_classes : int, default=3
        Fewer distinct labels raise.
    require_all : bool, default=True
        Raise if a class of ``classes`` (or of the Categorical) has no sample.
    name : str, default="y"
        Name in messages.

    Returns
    -------
    codes : ndarray of int of shape (n_samples,)
    classes : ndarray of shape (n_classes,)
    """
    y = np.asarray(y)
    if classes is not None:
        order = np.asarray(classes)
        if order.ndim != 1:
            raise ValueError(f"classes must be a 1-d list of labels; got shape {order.shape}.")
        if len(pd.unique(order)) != order.shape[0]:
            raise ValueError(f"classes has repeated labels: {_preview(order)}.")
        source = "classes="
    elif categorical is not None:
        categories, ordered = categorical
        if not ordered:
            raise ValueError(
                f"{name} is an unordered pandas Categorical {_preview(categories)}; the order "
                f"of the classes is unknown: {_HOW_TO_ORDER}."
            )
        order = categories
        source = "the categories of the ordered Categorical"
    else:
        if y.dtype.kind == "O" and all(_is_orderable_number(v) for v in y):
            y = y.astype(np.float64)
        if y.dtype.kind not in "biuf":
            labels = pd.unique(y)
            raise ValueError(
                f"{name} has labels {_preview(labels)} without a known order (only numbers are "
                f"sorted automatically): {_HOW_TO_ORDER}."
            )
        try:
            check_classification_targets(y)
        except ValueError as exc:
            raise ValueError(
                f"{exc} If these values are ordered class labels, pass them as "
                "classes=[lowest, ..., highest]."
            ) from exc
        order = np.unique(y)
        source = None
    if classes is not None or categorical is not None:
        codes = pd.Index(order).get_indexer(y).astype(np.intp)
        unknown = codes < 0
        if np.any(unknown):
            raise ValueError(
                f"{name} has labels {_preview(pd.unique(y[unknown]))} that are not in "
                f"{source} {_preview(order)}."
            )
    else:
        codes = np.searchsorted(order, y).astype(np.intp)
    n_classes = order.shape[0]
    counts = np.bincount(codes, minlength=n_classes)
    if require_all and np.any(counts == 0):
        missing = order[counts == 0]
        raise ValueError(
            f"class(es) {_preview(missing)} of {source} have no samples in {name}; every class "
            "needs at least one sample. Drop unused levels (y.cat.remove_unused_categories()) "
            "or list only the observed classes."
        )
    n_present = int(np.count_nonzero(counts))
    if n_present < min_classes:
        if n_present == 2:
            hint = (
                " For two classes use logistic regression "
                "(sklearn.linear_model.LogisticRegression)."
            )
        else:
            hint = ""
        raise ValueError(
            f"{name} has {n_present} class(es) {_preview(order[counts > 0])}; an ordinal model "
            f"needs at least {min_classes} ordered classes.{hint}"
        )
    return codes, order
