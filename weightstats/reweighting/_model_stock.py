"""Model Stock: merge fine-tuned weights towards their pre-trained anchor.

Jang, Yun & Han (ECCV 2024). For every layer (tensor) with pre-trained
weight ``w_0`` and fine-tuned weights ``w_1 .. w_N`` (N >= 2):

    cos = mean over pairs i < j of cos(w_i - w_0, w_j - w_0)
    t   = N cos / (1 + (N - 1) cos)
    w_H = t * mean_i(w_i) + (1 - t) * w_0

The paper gives the two-model case; for N > 2 the mean pairwise cosine is
the choice of mergekit's ``model_stock`` method (the official repository
has no code). ``filter_wise=True`` computes one ratio per output row, as
mergekit's option of the same name. This module is the NumPy
implementation; :func:`weightstats.nn.model_stock` applies it to torch
state dicts.
"""

import copy
from collections.abc import Mapping

import numpy as np
from sklearn.utils._param_validation import validate_params
from sklearn.utils.validation import check_is_fitted

__all__ = ["model_stock", "model_stock_linear"]

# Offsets shorter than this count as "no change" (cosine 0), as mergekit's
# clamp of the norm product.
_NORM_FLOOR = 1e-6


def _merge_array(w0, ws, filter_wise):
    """Merged array and ratio(s) ``t`` for one tensor (float64 maths)."""
    shape = w0.shape
    if filter_wise:
        base = w0.reshape(1, -1) if w0.ndim <= 1 else w0.reshape(w0.shape[0], -1)
    else:
        base = w0.reshape(1, -1)
    offsets = [w.reshape(base.shape) - base for w in ws]
    norms = [np.sqrt(np.einsum("ij,ij->i", d, d)) for d in offsets]
    cosines = []
    for i in range(len(offsets)):
        for j in range(i + 1, len(offsets)):
            dot = np.einsum("ij,ij->i", offsets[i], offsets[j])
            cosines.append(np.clip(dot / np.maximum(norms[i] * norms[j], _NORM_FLOOR), -1.0, 1.0))
    # Negative cosines lie outside the paper's geometry (and cos = -1/(N-1)
    # would divide by zero); they fall back to the anchor, t = 0.
    cos = np.maximum(np.mean(cosines, axis=0), 0.0)
    n = len(offsets)
    t = n * cos / (1.0 + (n - 1) * cos)
    # t * mean(w_i) + (1 - t) * w_0 = w_0 + t * mean(w_i - w_0)
    mean_offset = offsets[0].copy()
    for d in offsets[1:]:
        mean_offset += d
    mean_offset /= n
    merged = base + t[:, None] * mean_offset
    return merged.reshape(shape), (t if filter_wise else float(t[0]))


def _check_models(base, finetuned):
    if isinstance(finetuned, (np.ndarray, Mapping)) or not hasattr(finetuned, "__len__"):
        raise TypeError(
            "finetuned must be a list of fine-tuned weights (arrays or dicts), one per model."
        )
    finetuned = list(finetuned)
    if len(finetuned) < 2:
        raise ValueError(
            f"Model Stock needs at least two fine-tuned models; got {len(finetuned)}."
        )
    if isinstance(base, Mapping):
        for k, model in enumerate(finetuned):
            if not isinstance(model, Mapping) or set(model) != set(base):
                raise ValueError(
                    f"finetuned[{k}] must have the same keys as base; "
                    f"missing {sorted(set(base) - set(model or {}))[:5]}, "
                    f"extra {sorted(set(model or {}) - set(base))[:5]}."
                )
    return finetuned


def _merge_one(name, w0, ws, filter_wise):
    w0 = np.asarray(w0)
    ws = [np.asarray(w) for w in ws]
    for k, w in enumerate(ws):
        if w.shape != w0.shape:
            raise ValueError(
                f"{name}: finetuned[{k}] has shape {w.shape} but the base has {w0.shape}."
            )
    if w0.dtype.kind not in "fc":
        # Counters and integer buffers are not weights: keep the anchor's.
        return w0.copy(), None
    if not all(np.all(np.isfinite(w)) for w in (w0, *ws)):
        raise ValueError(f"{name}: weights contain NaN or infinity.")
    merged, t = _merge_array(w0.astype(np.float64), [w.astype(np.float64) for w in ws], filter_wise)
    return merged.astype(w0.dtype, copy=False), t


@validate_params(
    {
        "base": ["array-like", dict],
        "finetuned": [list, tuple],
        "filter_wise": ["boolean"],
        "return_ratio": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def model_stock(base, finetuned, *, filter_wise=False, return_ratio=False):
    """Merge fine-tuned weights with Model Stock (NumPy).

    Parameters
    ----------
    base : ndarray or dict of str to ndarray
        Pre-trained (anchor) weights: one array, or a dict of named arrays
        (a state dict). Non-float arrays are copied from the base.
    finetuned : list of ndarray or list of dict
        At least two fine-tuned versions, each shaped like ``base``.
    filter_wise : bool, default=False
        One ratio per output row (first axis) instead of one per array.
    return_ratio : bool, default=False
        Also return the interpolation ratio ``t`` of every array.

    Returns
    -------
    merged : ndarray or dict of str to ndarray
        The merged weights, same type, shapes and dtypes as ``base``.
    ratio : float, ndarray or dict
        Only with ``return_ratio``: ``t`` per array (an array of per-row
        ratios with ``filter_wise``; ``None`` for non-float arrays).

    Examples
    --------
    >>> import numpy as np
    >>> from weightstats.reweighting import model_stock
    >>> w0 = np.zeros(2)
    >>> # Offsets at 60 degrees (cos = 0.5): t = 2 * 0.5 / 1.5 = 2/3.
    >>> merged, t = model_stock(w0, [np.array([1.0, 0.0]), np.array([0.5, 0.75**0.5])],
    ...                         return_ratio=True)
    >>> round(t, 4), merged.round(4)
    (0.6667, array([0.5   , 0.2887]))
    """
    finetuned = _check_models(base, finetuned)
    if isinstance(base, Mapping):
        merged, ratios = {}, {}
        for name in base:
            merged[name], ratios[name] = _merge_one(
                name, base[name], [model[name] for model in finetuned], filter_wise
            )
        if isinstance(base, dict) and type(base) is not dict:
            merged = type(base)(merged)
    else:
        merged, ratios = _merge_one("weights", base, finetuned, filter_wise)
    return (merged, ratios) if return_ratio else merged


def model_stock_linear(base, finetuned, *, filter_wise=False):
    """Model Stock for fitted scikit-learn linear models.

    Merges ``coef_`` and ``intercept_`` (each its own "layer") of fitted
    linear models, e.g. a :class:`~sklearn.linear_model.SGDClassifier`
    pre-trained on one task and fine-tuned with ``partial_fit`` on another
    from several seeds.

    Parameters
    ----------
    base : fitted estimator with ``coef_``
        The pre-trained model.
    finetuned : list of fitted estimators
        At least two fine-tuned copies (same class, same ``classes_``).
    filter_wise : bool, default=False
        One ratio per row of ``coef_`` (per class).

    Returns
    -------
    merged : estimator
        A deep copy of ``base`` with the merged ``coef_`` and ``intercept_``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from weightstats.reweighting import model_stock_linear
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> base = LinearRegression().fit(X, [0.0, 1.0, 1.0])            # coef (1, 1)
    >>> tuned = [LinearRegression().fit(X, [0.0, 2.0, 1.0]),         # coef (2, 1)
    ...          LinearRegression().fit(X, [0.0, 1.5, 2.0])]         # coef (1.5, 2)
    >>> merged = model_stock_linear(base, tuned)
    >>> merged.coef_.round(4)  # t = 0.618 of the way from the base to the average
    array([1.4635, 1.309 ])
    """
    models = [base, *finetuned] if isinstance(finetuned, (list, tuple)) else None
    if models is None:
        raise TypeError("finetuned must be a list of fitted estimators.")
    for model in models:
        check_is_fitted(model, "coef_")
    classes = [getattr(model, "classes_", None) for model in models]
    if classes[0] is not None and any(
        c is None or not np.array_equal(c, classes[0]) for c in classes[1:]
    ):
        raise ValueError("all models must have the same classes_ (in the same order).")
    names = [name for name in ("coef_", "intercept_") if hasattr(base, name)]

    def weights(model):
        return {
            name: np.atleast_1d(np.asarray(getattr(model, name), dtype=float)) for name in names
        }

    merged_weights = model_stock(
        weights(base), [weights(model) for model in finetuned], filter_wise=filter_wise
    )
    merged = copy.deepcopy(base)
    for name in names:
        original = getattr(base, name)
        value = merged_weights[name]
        value = value.reshape(np.shape(original)) if np.ndim(original) else float(value[0])
        setattr(merged, name, value)
    return merged
