"""Input validation shared by all weightstats estimators and functions.

scikit-learn's ``validate_data`` / ``check_array`` do most of the work; these
helpers add what weighting methods need on top: binary treatments with a clear
positive label, sample weights that are non-negative and not all zero, finite
1-d vectors, and minimum group sizes.
"""

import inspect
import numbers

import numpy as np
import pandas as pd
from sklearn.utils.validation import _check_sample_weight, check_array, column_or_1d

# scikit-learn >= 1.8 rejects all-zero weights itself; we let it through so the
# message is the same on every supported version.
_ZERO_WEIGHTS_KW = (
    {"allow_all_zero_weights": True}
    if "allow_all_zero_weights" in inspect.signature(_check_sample_weight).parameters
    else {}
)

__all__ = [
    "check_binary_treatment",
    "check_finite_vector",
    "check_group_sizes",
    "check_sample_weight",
]


def check_sample_weight(sample_weight, X, *, dtype=np.float64, allow_zero_sum=False):
    """Validate ``sample_weight``: finite, non-negative, not all zero.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,), float or None
        Weights; ``None`` means unit weights and a scalar means constant weights.
    X : array-like of shape (n_samples, n_features)
        The data the weights belong to (only its length is used).
    dtype : dtype, default=np.float64
        Output dtype.
    allow_zero_sum : bool, default=False
        Whether weights that sum to zero are acceptable.

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,)
        Validated weights.

    Raises
    ------
    ValueError
        If the weights contain NaN or infinity, are negative, have the wrong
        length, or all are zero.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.utils import check_sample_weight
    >>> check_sample_weight(None, np.zeros((3, 2)))
    array([1., 1., 1.])
    >>> check_sample_weight([0, 0, 0], np.zeros((3, 2)))
    Traceback (most recent call last):
    ...
    ValueError: sample_weight sums to zero: at least one sample needs a positive weight.
    """
    n_samples = X.shape[0] if hasattr(X, "shape") else len(X)
    if sample_weight is not None and not isinstance(sample_weight, numbers.Number):
        sample_weight = np.asarray(sample_weight)
        if sample_weight.ndim != 1 or sample_weight.shape[0] != n_samples:
            raise ValueError(
                f"sample_weight has shape {sample_weight.shape} but X has {n_samples} rows; "
                "pass one weight per row."
            )
    sample_weight = _check_sample_weight(
        sample_weight, X, dtype=dtype, ensure_non_negative=True, **_ZERO_WEIGHTS_KW
    )
    if not allow_zero_sum and not np.any(sample_weight > 0):
        raise ValueError(
            "sample_weight sums to zero: at least one sample needs a positive weight."
        )
    return sample_weight


def check_finite_vector(values, name, *, n_samples=None, dtype=np.float64):
    """Return ``values`` as a finite 1-d float array, naming ``name`` in errors.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        The vector to check (a column vector of shape (n, 1) is accepted).
    name : str
        What the vector is called in error messages (e.g. ``"y"``).
    n_samples : int, default=None
        The required length, if known.
    dtype : dtype, default=np.float64
        Output dtype.

    Returns
    -------
    values : ndarray of shape (n_samples,)
        The validated vector.

    Examples
    --------
    >>> from weightstats.utils import check_finite_vector
    >>> check_finite_vector([1, 2, 3], "y")
    array([1., 2., 3.])
    >>> check_finite_vector([1, float("nan")], "y")
    Traceback (most recent call last):
    ...
    ValueError: Input y contains NaN.
    """
    try:
        values = column_or_1d(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric 1-d array: {exc}") from exc
    values = check_array(
        values, ensure_2d=False, dtype=dtype, ensure_all_finite=True, input_name=name
    )
    if n_samples is not None and values.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {values.shape[0]} entries but the other inputs have {n_samples}; "
            "they must have the same length."
        )
    return values


def check_binary_treatment(treatment, *, pos_label=None, n_samples=None, name="treatment"):
    """Validate a binary treatment indicator.

    Accepts 0/1, booleans, or any two labels (strings, categories). With two
    labels other than 0/1 or False/True, ``pos_label`` says which one is the
    treated group.

    Parameters
    ----------
    treatment : array-like of shape (n_samples,)
        The treatment labels.
    pos_label : object, default=None
        The label of the treated group. Required unless the labels are
        {0, 1} or {False, True}.
    n_samples : int, default=None
        The required length, if known.
    name : str, default="treatment"
        What the vector is called in error messages.

    Returns
    -------
    treated : ndarray of bool of shape (n_samples,)
        True for treated units.
    classes : ndarray of shape (2,)
        The labels as ``[control_label, treated_label]``.

    Raises
    ------
    ValueError
        If there are not exactly two labels, a label is missing, or the
        positive label is ambiguous.

    Examples
    --------
    >>> from weightstats.utils import check_binary_treatment
    >>> treated, classes = check_binary_treatment([0, 1, 1, 0])
    >>> treated
    array([False,  True,  True, False])
    >>> treated, classes = check_binary_treatment(["a", "b", "b"], pos_label="a")
    >>> treated, classes
    (array([ True, False, False]), array(['b', 'a'], dtype='<U1'))
    """
    if isinstance(treatment, (pd.Series, pd.Index)):
        treatment = treatment.to_numpy()
    treatment = np.asarray(treatment)
    if treatment.ndim == 2 and treatment.shape[1] == 1:
        treatment = treatment.ravel()
    if treatment.ndim != 1:
        raise ValueError(
            f"{name} must be 1-d with one label per row; got an array of shape {treatment.shape}."
        )
    if n_samples is not None and treatment.shape[0] != n_samples:
        raise ValueError(
            # Neutral wording: the other input may be X (fit) or y (effect estimates).
            f"{name} has {treatment.shape[0]} entries but the other inputs have {n_samples}; "
            "they must have the same length (one per unit)."
        )
    if treatment.shape[0] == 0:
        raise ValueError(f"{name} is empty; at least one treated and one control unit are needed.")
    missing = pd.isna(treatment)
    if np.any(missing):
        raise ValueError(
            f"{name} contains {int(missing.sum())} missing value(s) (NaN/None); "
            "drop those rows or impute the treatment first."
        )
    if treatment.dtype.kind == "f" and not np.all(np.isfinite(treatment)):
        raise ValueError(f"{name} contains infinity.")
    labels = np.unique(treatment.astype(object) if treatment.dtype.kind == "O" else treatment)
    if labels.shape[0] != 2:
        raise ValueError(
            f"{name} must have exactly two distinct values (treated and control); "
            f"got {labels.shape[0]}: {_preview(labels)}."
        )
    if pos_label is None:
        if treatment.dtype.kind == "b" or set(labels.tolist()) <= {0, 1}:
            pos_label = labels[1]
        else:
            raise ValueError(
                f"{name} has labels {_preview(labels)}; pass pos_label= to say which one "
                "marks the treated group."
            )
    elif not np.any(labels == pos_label):
        raise ValueError(
            f"pos_label={pos_label!r} is not one of the {name} labels {_preview(labels)}."
        )
    treated = treatment == pos_label
    control_label = labels[labels != pos_label][0]
    classes = np.array([control_label, pos_label], dtype=labels.dtype)
    return np.asarray(treated, dtype=bool), classes


def check_group_sizes(treated, *, minimum=2, names=("control", "treated")):
    """Raise if a group of a binary split has fewer than ``minimum`` units.

    Parameters
    ----------
    treated : ndarray of bool of shape (n_samples,)
        Group membership (True for the second group).
    minimum : int, default=2
        The smallest acceptable group size.
    names : tuple of str, default=("control", "treated")
        Names of the False and True groups for the message.

    Returns
    -------
    sizes : tuple of int
        The sizes of the False and True groups.

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.utils import check_group_sizes
    >>> check_group_sizes(np.array([True, False, True, False]))
    (2, 2)
    """
    if not isinstance(minimum, numbers.Integral) or minimum < 1:
        raise ValueError(f"minimum must be a positive integer; got {minimum!r}.")
    n_true = int(np.count_nonzero(treated))
    n_false = int(treated.shape[0] - n_true)
    for size, group in ((n_false, names[0]), (n_true, names[1])):
        if size < minimum:
            raise ValueError(
                f"the {group} group has {size} unit(s); at least {minimum} are needed."
            )
    return n_false, n_true


def _preview(values, limit=5):
    # Python values, not numpy reprs: [0, 1] rather than [np.int64(0), np.int64(1)].
    shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v)
                      for v in list(values)[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"
