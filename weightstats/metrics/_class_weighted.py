"""Class-weighted precision, recall and F-beta (Harbecke et al., 2022).

Micro and macro averaging are the two usual ways to summarise per-class scores.
Harbecke, Chen, Hennig and Alt ("Why only Micro-F1? Class Weighting of Measures
for Relation Classification", NLP Power! 2022) put the per-class averages in one
family: a weighted mean of per-class scores with class weights ``w_c`` computed
from the true supports ``n_c``:

* ``"macro"``: ``w_c = 1``;
* ``"weighted"``: ``w_c = n_c`` (scikit-learn's support-weighted average);
* ``"dodrans"``: ``w_c = n_c ** 0.75``;
* ``"entropy"``: ``w_c = -n_c log(n_c / N)``, the class's share of the label
  entropy (``N`` = total sample weight, see ``class_weights``);
* a number ``a``: ``w_c = n_c ** a``;
* a callable ``(supports, y_true) -> weights``.

``"micro"`` (pooled counts) and scikit-learn's ``"binary"`` / ``"samples"``
averages are passed through unchanged. Per-class precision, recall and F come
from :func:`sklearn.metrics.precision_recall_fscore_support` itself, so label
handling, ``zero_division``, multilabel input and ``sample_weight`` behave
exactly as there; only the averaging is new. As in the authors' code, P, R and
F are each averaged separately (the reported F is the weighted mean of the
per-class F, not the harmonic mean of the averaged P and R).
"""

import numbers
import warnings

import numpy as np
from scipy.special import entr
from sklearn.metrics import precision_recall_fscore_support
from sklearn.utils._param_validation import Interval, Options, StrOptions, validate_params
from sklearn.utils.multiclass import type_of_target, unique_labels

__all__ = [
    "class_weighted_f1_score",
    "class_weighted_precision_recall_fscore_support",
    "class_weights",
    "weighted_classification_report",
]

# Schemes that are weighted means of per-class scores, and their power exponent.
_POWER_SCHEMES = {"macro": 0.0, "weighted": 1.0, "dodrans": 0.75}
_CLASS_SCHEMES = frozenset({*_POWER_SCHEMES, "entropy"})
# scikit-learn averages that are not class weightings; handed to scikit-learn as is.
_PASS_THROUGH = frozenset({"micro", "binary", "samples"})

_SCHEME_CONSTRAINT = [
    StrOptions(_CLASS_SCHEMES | _PASS_THROUGH),
    Interval(numbers.Real, 0, None, closed="left"),
    callable,
    None,
]
_ZERO_DIVISION_CONSTRAINT = [Options(numbers.Real, {0.0, 1.0}), "nan", StrOptions({"warn"})]

_SCHEME_DOC = """scheme : {"dodrans", "entropy", "macro", "weighted", "micro", \
"binary", "samples"}, float, callable or None
        How per-class scores are averaged. ``"macro"``, ``"weighted"``
        (support-weighted), ``"dodrans"`` (support to the power 3/4) and
        ``"entropy"`` are class-weighted means; a float ``a >= 0`` weights
        classes by ``support ** a``; a callable ``(supports, y_true) ->
        weights`` returns one non-negative weight per label. ``"micro"``,
        ``"binary"`` and ``"samples"`` are scikit-learn's averages, unchanged.
        ``None`` returns the per-class scores."""


def _insert_scheme_doc(doc):
    """Put the shared ``scheme`` parameter text where ``{scheme}`` stands alone."""
    return doc.replace("    {scheme}\n", "    " + _SCHEME_DOC + "\n")


def _total_weight(y_true, sample_weight):
    """``N``: the number of samples, or their total weight."""
    n_samples = y_true.shape[0] if hasattr(y_true, "shape") else len(y_true)
    if sample_weight is None:
        return float(n_samples)
    return float(np.sum(sample_weight))


def _scheme_weights(scheme, supports, y_true, total):
    """Unnormalised class weights of a class-weighting scheme."""
    supports = np.asarray(supports, dtype=float)
    if callable(scheme):
        weights = np.asarray(scheme(supports.copy(), y_true), dtype=float)
        name = getattr(scheme, "__name__", repr(scheme))
        if weights.shape != supports.shape:
            raise ValueError(
                f"the scheme callable {name} returned weights of shape {weights.shape}; "
                f"it must return one weight per label, shape {supports.shape}."
            )
        if not np.all(np.isfinite(weights)):
            raise ValueError(f"the scheme callable {name} returned non-finite class weights.")
        if np.any(weights < 0):
            raise ValueError(f"the scheme callable {name} returned negative class weights.")
        return weights
    if scheme == "entropy":
        # -n log(n / N) = N * entr(n / N), with the 0 log 0 = 0 limit for absent labels.
        return total * entr(supports / total) if total > 0 else np.zeros_like(supports)
    exponent = _POWER_SCHEMES.get(scheme, scheme)
    # 0 ** 0 == 1: macro keeps labels that never occur, as scikit-learn does.
    return supports ** float(exponent)


def _weighted_mean(values, weights, scheme):
    """Weighted mean that drops NaN scores (and their weights), like scikit-learn.

    When the remaining weights all vanish (no selected label with a defined
    score occurs in ``y_true`` with positive weight, or one class holds all
    samples under ``"entropy"``), the class-weighted mean is undefined and a
    ValueError says so, as :func:`class_weights` does. (scikit-learn's
    ``average="weighted"`` falls back to the plain mean there.)
    """
    keep = ~np.isnan(values)
    if not np.any(keep):
        return float("nan")
    values, weights = values[keep], weights[keep]
    if not weights.sum() > 0:
        raise ValueError(_zero_weights_message(scheme))
    return float(np.average(values, weights=weights))


def _zero_weights_message(scheme):
    if callable(scheme):
        return (
            f"the class weights returned by {getattr(scheme, '__name__', repr(scheme))} sum to "
            "zero for the labels with a defined score, so the class-weighted average is "
            "undefined; at least one such label needs a positive weight."
        )
    return (
        f"the {scheme!r} class weights sum to zero for these labels (no selected label occurs "
        "in y_true with positive sample_weight, or one class holds all samples under "
        "'entropy'), so the class-weighted average is undefined; pass labels that occur in "
        "y_true or use scheme='macro'."
    )


def _column_labels(labels, n_labels):
    """Multilabel ``labels`` as column indices in ``[0, n_labels)``, or a clear error."""
    labels = np.asarray(labels)
    integral = labels.dtype.kind in "iu" or (
        labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels % 1 == 0)
    )
    if labels.ndim != 1 or not integral:
        raise ValueError(
            f"labels must be column indices of the multilabel y_true (integers in [0, "
            f"{n_labels})); got {labels.tolist()}."
        )
    labels = labels.astype(np.intp)
    bad = labels[(labels < 0) | (labels >= n_labels)]
    if bad.size:
        raise ValueError(
            f"labels {bad.tolist()} are out of range: multilabel y_true has {n_labels} columns, "
            f"so labels must be column indices in [0, {n_labels})."
        )
    return labels


def _is_class_scheme(scheme):
    return scheme in _CLASS_SCHEMES or callable(scheme) or isinstance(scheme, numbers.Real)


def _check_scheme(scheme):
    # validate_params accepts bools as numbers; a bool scheme is a mistake.
    if isinstance(scheme, bool):
        raise ValueError(f"scheme={scheme!r} is not a scheme name, exponent or callable.")


@validate_params(
    {
        "y_true": ["array-like", "sparse matrix"],
        "labels": ["array-like", None],
        "scheme": [StrOptions(_CLASS_SCHEMES), Interval(numbers.Real, 0, None, closed="left"),
                   callable],
        "sample_weight": ["array-like", None],
        "normalize": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def class_weights(y_true, *, scheme="dodrans", labels=None, sample_weight=None, normalize=True):
    """Class weights of a class-weighting scheme.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or indicator matrix of shape \
            (n_samples, n_labels)
        True labels; the weights depend only on their (weighted) counts.
    scheme : {"dodrans", "entropy", "macro", "weighted"}, float or callable, \
            default="dodrans"
        ``"macro"``: 1; ``"weighted"``: ``n_c``; ``"dodrans"``:
        ``n_c ** 0.75``; ``"entropy"``: ``-n_c log(n_c / N)``; a float ``a``:
        ``n_c ** a``; a callable ``(supports, y_true) -> weights``.
    labels : array-like, default=None
        The labels to weight, in this order; default: the sorted labels of
        ``y_true`` (column indices for indicator input). ``N`` counts all
        samples, including those whose label is left out.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights: ``n_c`` is the total weight of class ``c`` and ``N``
        the total weight.
    normalize : bool, default=True
        Scale the weights to sum to one.

    Returns
    -------
    weights : ndarray of shape (n_labels,)
        One weight per label.

    Examples
    --------
    >>> from weightstats.metrics import class_weights
    >>> y = ["a"] * 90 + ["b"] * 9 + ["c"]
    >>> class_weights(y, scheme="dodrans").round(3)
    array([0.825, 0.147, 0.028])
    >>> class_weights(y, scheme="entropy").round(3)
    array([0.265, 0.606, 0.129])
    """
    _check_scheme(scheme)
    if type_of_target(y_true) == "multilabel-indicator":
        y_arr = y_true
        n_labels = y_arr.shape[1]
        labels = np.arange(n_labels) if labels is None else _column_labels(labels, n_labels)
        column_weight = np.ones(y_arr.shape[0]) if sample_weight is None else np.asarray(
            sample_weight, dtype=float)
        counts = np.asarray(y_arr.T @ column_weight).ravel()
        supports = counts[labels]
    else:
        y_arr = np.asarray(y_true)
        labels = unique_labels(y_arr) if labels is None else np.asarray(labels)
        sw = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if sw is not None and sw.shape != y_arr.shape:
            raise ValueError(
                f"sample_weight has shape {sw.shape} but y_true has {y_arr.shape[0]} entries."
            )
        supports = np.array(
            [np.sum(y_arr == label) if sw is None else sw[y_arr == label].sum()
             for label in labels],
            dtype=float,
        )
    weights = _scheme_weights(scheme, supports, y_true, _total_weight(y_arr, sample_weight))
    if normalize:
        total = weights.sum()
        if not total > 0:
            raise ValueError(_zero_weights_message(scheme))
        weights = weights / total
    return weights


@validate_params(
    {
        "y_true": ["array-like", "sparse matrix"],
        "y_pred": ["array-like", "sparse matrix"],
        "scheme": _SCHEME_CONSTRAINT,
        "beta": [Interval(numbers.Real, 0.0, None, closed="both")],
        "labels": ["array-like", None],
        "pos_label": [numbers.Real, str, "boolean", None],
        "warn_for": [list, tuple, set],
        "sample_weight": ["array-like", None],
        "zero_division": _ZERO_DIVISION_CONSTRAINT,
    },
    prefer_skip_nested_validation=True,
)
def class_weighted_precision_recall_fscore_support(
    y_true,
    y_pred,
    *,
    scheme="dodrans",
    beta=1.0,
    labels=None,
    pos_label=1,
    warn_for=("precision", "recall", "f-score"),
    sample_weight=None,
    zero_division="warn",
):
    """Precision, recall, F-beta and support, averaged with class weights.

    Same arguments and edge cases as
    :func:`sklearn.metrics.precision_recall_fscore_support`, with ``scheme``
    in place of ``average``. Per-class scores come from scikit-learn; each of
    P, R and F is then averaged separately with the scheme's class weights
    (weights of labels whose score is NaN under ``zero_division=np.nan`` are
    dropped, as scikit-learn does).

    Parameters
    ----------
    y_true : 1d array-like, or label indicator array / sparse matrix
        Ground truth (correct) target values.
    y_pred : 1d array-like, or label indicator array / sparse matrix
        Estimated targets.
    {scheme}
    beta : float, default=1.0
        The strength of recall versus precision in the F-score.
    labels : array-like, default=None
        The labels to include, as in scikit-learn (e.g. leave out a
        ``"no_relation"`` class). Class weights use the supports of these
        labels, but ``N`` in the entropy scheme is the total weight of all
        samples, including those of left-out labels (as in the authors'
        code).
    pos_label : int, float, bool or str, default=1
        The positive class for ``scheme="binary"``; ignored (with a warning if
        set) otherwise.
    warn_for : list, tuple or set
        Which metrics may warn about zero division, as in scikit-learn.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights; supports ``n_c`` and ``N`` become weighted totals.
    zero_division : {"warn", 0.0, 1.0, np.nan}, default="warn"
        The value for a zero division, as in scikit-learn.

    Returns
    -------
    precision : float or ndarray of shape (n_labels,)
        Precision; per label when ``scheme=None``.
    recall : float or ndarray of shape (n_labels,)
        Recall; per label when ``scheme=None``.
    fbeta_score : float or ndarray of shape (n_labels,)
        F-beta score; per label when ``scheme=None``.
    support : None or ndarray of shape (n_labels,)
        The (weighted) true counts per label when ``scheme=None``, else None.

    See Also
    --------
    sklearn.metrics.precision_recall_fscore_support : The per-class scores.
    class_weights : The class weights of each scheme.

    Examples
    --------
    >>> from weightstats.metrics import class_weighted_precision_recall_fscore_support
    >>> y_true = [0] * 8 + [1] * 3 + [2]
    >>> y_pred = [0] * 7 + [1] + [1, 1, 0] + [0]
    >>> p, r, f, _ = class_weighted_precision_recall_fscore_support(
    ...     y_true, y_pred, scheme="dodrans", zero_division=0.0)
    >>> round(p, 3), round(r, 3), round(f, 3)
    (0.649, 0.707, 0.677)
    """
    _check_scheme(scheme)
    if scheme in _PASS_THROUGH or scheme is None:
        return precision_recall_fscore_support(
            y_true, y_pred, beta=beta, labels=labels, pos_label=pos_label, average=scheme,
            warn_for=warn_for, sample_weight=sample_weight, zero_division=zero_division,
        )
    if pos_label not in (None, 1):
        warnings.warn(
            f"pos_label={pos_label!r} is ignored when scheme={scheme!r} (it only selects "
            "the class for scheme='binary'); use labels=[pos_label] to score one class.",
            UserWarning,
            stacklevel=2,
        )
    precision, recall, fscore, supports = precision_recall_fscore_support(
        y_true, y_pred, beta=beta, labels=labels, average=None, warn_for=warn_for,
        sample_weight=sample_weight, zero_division=zero_division,
    )
    weights = _scheme_weights(scheme, supports, y_true, _total_weight(y_true, sample_weight))
    return (
        _weighted_mean(precision, weights, scheme),
        _weighted_mean(recall, weights, scheme),
        _weighted_mean(fscore, weights, scheme),
        None,
    )


class_weighted_precision_recall_fscore_support.__doc__ = _insert_scheme_doc(
    class_weighted_precision_recall_fscore_support.__doc__
)


@validate_params(
    {
        "y_true": ["array-like", "sparse matrix"],
        "y_pred": ["array-like", "sparse matrix"],
        "scheme": _SCHEME_CONSTRAINT,
        "labels": ["array-like", None],
        "beta": [Interval(numbers.Real, 0.0, None, closed="both")],
        "pos_label": [numbers.Real, str, "boolean", None],
        "sample_weight": ["array-like", None],
        "zero_division": _ZERO_DIVISION_CONSTRAINT,
    },
    prefer_skip_nested_validation=True,
)
def class_weighted_f1_score(
    y_true,
    y_pred,
    *,
    scheme="dodrans",
    labels=None,
    beta=1.0,
    pos_label=1,
    sample_weight=None,
    zero_division="warn",
):
    """F1 (or F-beta) score averaged over classes with a class-weighting scheme.

    The class-weighted mean of the per-class F-beta scores. Works as a scorer:
    ``make_scorer(class_weighted_f1_score, scheme="entropy")``.

    Parameters
    ----------
    y_true : 1d array-like, or label indicator array / sparse matrix
        Ground truth (correct) target values.
    y_pred : 1d array-like, or label indicator array / sparse matrix
        Estimated targets.
    {scheme}
    labels : array-like, default=None
        The labels to include (see
        :func:`class_weighted_precision_recall_fscore_support`).
    beta : float, default=1.0
        The strength of recall versus precision; 1 gives F1.
    pos_label : int, float, bool or str, default=1
        The positive class for ``scheme="binary"``.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    zero_division : {"warn", 0.0, 1.0, np.nan}, default="warn"
        The value for a zero division, as in scikit-learn.

    Returns
    -------
    score : float or ndarray of shape (n_labels,)
        The averaged score; per label when ``scheme=None``.

    See Also
    --------
    class_weighted_precision_recall_fscore_support : Precision and recall too.
    sklearn.metrics.f1_score : The macro, weighted and micro cases.

    Examples
    --------
    >>> from weightstats.metrics import class_weighted_f1_score
    >>> y_true = [0] * 8 + [1] * 3 + [2]
    >>> y_pred = [0] * 7 + [1] + [1, 1, 0] + [0]
    >>> for scheme in ["macro", "entropy", "dodrans", "weighted", "micro"]:
    ...     f1 = class_weighted_f1_score(y_true, y_pred, scheme=scheme, zero_division=0.0)
    ...     print(f"{scheme:>8} {f1:.3f}")
       macro 0.497
     entropy 0.551
     dodrans 0.677
    weighted 0.716
       micro 0.750
    """
    _, _, fscore, _ = class_weighted_precision_recall_fscore_support(
        y_true, y_pred, scheme=scheme, beta=beta, labels=labels, pos_label=pos_label,
        warn_for=("f-score",), sample_weight=sample_weight, zero_division=zero_division,
    )
    return fscore


class_weighted_f1_score.__doc__ = _insert_scheme_doc(class_weighted_f1_score.__doc__)


def _scheme_name(scheme):
    if callable(scheme):
        return getattr(scheme, "__name__", "custom")
    if isinstance(scheme, numbers.Real):
        return f"power {scheme:g}"
    return scheme


@validate_params(
    {
        "y_true": ["array-like", "sparse matrix"],
        "y_pred": ["array-like", "sparse matrix"],
        "labels": ["array-like", None],
        "target_names": ["array-like", None],
        "schemes": [list, tuple],
        "sample_weight": ["array-like", None],
        "digits": [Interval(numbers.Integral, 0, None, closed="left")],
        "output_dict": ["boolean"],
        "zero_division": _ZERO_DIVISION_CONSTRAINT,
    },
    prefer_skip_nested_validation=True,
)
def weighted_classification_report(
    y_true,
    y_pred,
    *,
    labels=None,
    target_names=None,
    schemes=("micro", "macro", "weighted", "dodrans", "entropy"),
    sample_weight=None,
    digits=2,
    output_dict=False,
    zero_division="warn",
):
    """Text report of per-class scores and their averages under several schemes.

    Like :func:`sklearn.metrics.classification_report`, with one average row
    per class-weighting scheme. As there, the micro row is labelled
    ``accuracy`` when micro-F1 equals accuracy (single-label input and all
    labels included).

    Parameters
    ----------
    y_true : 1d array-like, or label indicator array / sparse matrix
        Ground truth (correct) target values.
    y_pred : 1d array-like, or label indicator array / sparse matrix
        Estimated targets.
    labels : array-like of shape (n_labels,), default=None
        The labels to include in the report.
    target_names : array-like of shape (n_labels,), default=None
        Display names of the labels (same order).
    schemes : sequence, default=("micro", "macro", "weighted", "dodrans", "entropy")
        The averages to report: names, exponents or callables accepted by
        :func:`class_weighted_f1_score` (not None, not ``"binary"``).
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    digits : int, default=2
        Digits of the floats in the text report.
    output_dict : bool, default=False
        Return a dict of dicts instead of text.
    zero_division : {"warn", 0.0, 1.0, np.nan}, default="warn"
        The value for a zero division, as in scikit-learn.

    Returns
    -------
    report : str or dict
        The text report, or ``{row: {"precision": ..., "recall": ...,
        "f1-score": ..., "support": ...}}`` (``"accuracy"`` maps to a float).

    Examples
    --------
    >>> from weightstats.metrics import weighted_classification_report
    >>> y_true = [0] * 8 + [1] * 3 + [2]
    >>> y_pred = [0] * 7 + [1] + [1, 1, 0] + [0]
    >>> print(weighted_classification_report(y_true, y_pred, zero_division=0.0))
                  precision    recall  f1-score   support
    <BLANKLINE>
               0       0.78      0.88      0.82         8
               1       0.67      0.67      0.67         3
               2       0.00      0.00      0.00         1
    <BLANKLINE>
        accuracy                           0.75        12
       macro avg       0.48      0.51      0.50        12
    weighted avg       0.69      0.75      0.72        12
     dodrans avg       0.65      0.71      0.68        12
     entropy avg       0.54      0.57      0.55        12
    <BLANKLINE>
    """
    for scheme in schemes:
        _check_scheme(scheme)
        if scheme is None or scheme == "binary" or not (
            _is_class_scheme(scheme) or scheme in _PASS_THROUGH
        ):
            raise ValueError(
                f"schemes may hold class-weighting schemes, 'micro' or 'samples'; got {scheme!r}."
            )
    y_type = type_of_target(y_true, input_name="y_true")
    present = unique_labels(y_true, y_pred)
    labels_given = labels is not None
    labels = present if labels is None else np.asarray(labels)
    if target_names is None:
        target_names = [f"{label}" for label in labels]
    elif len(target_names) != len(labels):
        raise ValueError(
            f"target_names has {len(target_names)} entries but there are {len(labels)} labels; "
            "pass one name per label (or set labels=)."
        )
    precision, recall, fscore, supports = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, sample_weight=sample_weight,
        zero_division=zero_division,
    )
    micro_is_accuracy = y_type in ("binary", "multiclass") and (
        not labels_given or set(labels.tolist()) >= set(present.tolist())
    )
    total_support = supports.sum()
    rows = {
        str(name): [p, r, f, s]
        for name, p, r, f, s in zip(target_names, precision, recall, fscore, supports,
                                    strict=True)
    }
    averages = {}
    for scheme in schemes:
        p, r, f, _ = class_weighted_precision_recall_fscore_support(
            y_true, y_pred, scheme=scheme, labels=labels, sample_weight=sample_weight,
            zero_division=zero_division,
        )
        if scheme == "micro" and micro_is_accuracy:
            averages["accuracy"] = [p, r, f, total_support]
        else:
            averages[f"{_scheme_name(scheme)} avg"] = [p, r, f, total_support]
    if output_dict:
        headers = ("precision", "recall", "f1-score", "support")
        report = {name: dict(zip(headers, map(float, row), strict=True))
                  for name, row in rows.items()}
        for name, row in averages.items():
            report[name] = float(row[2]) if name == "accuracy" else dict(
                zip(headers, map(float, row), strict=True))
        return report
    width = max([len(n) for n in rows] + [len(n) for n in averages] + [len("weighted avg"), digits])

    def support_text(value):
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.{digits}f}"

    lines = [f"{'':>{width}s}  {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}", ""]
    for name, (p, r, f, s) in rows.items():
        lines.append(
            f"{name:>{width}s}  {p:>9.{digits}f} {r:>9.{digits}f} {f:>9.{digits}f} "
            f"{support_text(s):>9}"
        )
    lines.append("")
    for name, (p, r, f, s) in averages.items():
        if name == "accuracy":
            lines.append(f"{name:>{width}s}  {'':>9} {'':>9} {f:>9.{digits}f} {support_text(s):>9}")
        else:
            lines.append(
                f"{name:>{width}s}  {p:>9.{digits}f} {r:>9.{digits}f} {f:>9.{digits}f} "
                f"{support_text(s):>9}"
            )
    return "\n".join(lines) + "\n"
