"""Checks every estimator must pass beyond scikit-learn's own: bad input gets a
clear error, outputs are never silently NaN, and fitted estimators round-trip
through pickle, joblib and skops.

Each check takes an estimator and valid ``(X, y, fit_kwargs)`` and raises
``AssertionError`` with an explanation when the estimator misbehaves.
``tests/test_harness.py`` runs them on known-good and known-bad estimators to
prove that they can fail.
"""

import io
import pickle
import re

import joblib
import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import has_fit_parameter

# Methods whose outputs are compared and checked for NaN after fitting.
OUTPUT_METHODS = (
    "predict",
    "predict_proba",
    "decision_function",
    "score_samples",
    "transform",
)
# Fitted attributes compared after a round trip when an estimator has no output method.
OUTPUT_ATTRIBUTES = ("weights_", "coef_", "effect_")

# Each bad-input case: how to corrupt valid data, and what the error must mention.
BAD_FIT_CASES = {
    "nan": r"(?i)nan",
    "inf": r"(?i)inf",
    "empty": r"(?i)(0 sample|empty|minimum|at least|no samples)",
    "one_row": r"(?i)(sample|row|unit|class|at least|minimum|fewer|only one|single|group|least)",
    "mismatched_lengths": r"(?i)(inconsistent|length|same number|mismatch|rows|entries)",
    "X_1d": r"(?i)(2d|1d|dimension|reshape)",
    "X_3d": r"(?i)(2d|3d|dimension|dim)",
    "string_column": r"(?i)(string|could not convert|numeric|dtype|float)",
    "negative_weight": r"(?i)negative",
    "zero_weights": r"(?i)(zero|positive|sum)",
}


def corrupt(case, X, y, fit_kwargs):
    """Return ``(X, y, fit_kwargs)`` with the defect named by ``case``."""
    X = np.array(X, dtype=float, copy=True)
    y = None if y is None else np.array(y, copy=True)
    fit_kwargs = dict(fit_kwargs)
    if case == "nan":
        X[1, 0] = np.nan
    elif case == "inf":
        X[1, 0] = np.inf
    elif case == "empty":
        X = X[:0]
        y = None if y is None else y[:0]
    elif case == "one_row":
        X = X[:1]
        y = None if y is None else y[:1]
    elif case == "mismatched_lengths":
        if y is None:
            fit_kwargs["sample_weight"] = np.ones(X.shape[0] - 1)
        else:
            y = y[:-1]
    elif case == "X_1d":
        X = X[:, 0]
    elif case == "X_3d":
        X = X[:, :, np.newaxis]
    elif case == "string_column":
        X = X.astype(object)
        X[:, 0] = "abc"
    elif case == "negative_weight":
        weights = np.ones(X.shape[0])
        weights[0] = -1.0
        fit_kwargs["sample_weight"] = weights
    elif case == "zero_weights":
        fit_kwargs["sample_weight"] = np.zeros(X.shape[0])
    else:
        raise ValueError(f"unknown case {case!r}")
    return X, y, fit_kwargs


def applicable_cases(estimator, y):
    """The bad-input cases that apply to ``estimator``."""
    cases = list(BAD_FIT_CASES)
    if not has_fit_parameter(estimator, "sample_weight"):
        cases = [c for c in cases if c not in ("negative_weight", "zero_weights")]
        if y is None:
            cases.remove("mismatched_lengths")
    return cases


def _fit(estimator, X, y, fit_kwargs):
    if y is None:
        return estimator.fit(X, **fit_kwargs)
    return estimator.fit(X, y, **fit_kwargs)


def check_bad_fit_input(estimator, case, X, y, fit_kwargs):
    """``fit`` on corrupted data raises ValueError/TypeError naming the problem."""
    Xb, yb, kw = corrupt(case, X, y, fit_kwargs)
    try:
        _fit(clone(estimator), Xb, yb, kw)
    except (ValueError, TypeError) as exc:
        pattern = BAD_FIT_CASES[case]
        assert re.search(pattern, str(exc)), (
            f"{type(estimator).__name__}.fit with {case!r} input raised {type(exc).__name__} "
            f"but the message does not name the problem (expected /{pattern}/): {exc}"
        )
    else:
        raise AssertionError(
            f"{type(estimator).__name__}.fit accepted {case!r} input without an error."
        )


def fitted_outputs(estimator, X):
    """Outputs of every output method and attribute, by name."""
    outputs = {}
    for method in OUTPUT_METHODS:
        if hasattr(estimator, method):
            outputs[method] = np.asarray(getattr(estimator, method)(X))
    for attribute in OUTPUT_ATTRIBUTES:
        if hasattr(estimator, attribute):
            outputs[attribute] = np.asarray(getattr(estimator, attribute))
    return outputs


def check_outputs_finite(estimator, X, y, fit_kwargs):
    """After a valid fit, no output is NaN or infinite."""
    fitted = _fit(clone(estimator), X, y, fit_kwargs)
    for name, value in fitted_outputs(fitted, X).items():
        if value.dtype.kind in "fc":
            assert np.all(np.isfinite(value)), (
                f"{type(estimator).__name__}.{name} returned non-finite values on valid input."
            )


def check_bad_predict_input(estimator, X, y, fit_kwargs):
    """After fitting, NaN input or the wrong number of features raises ValueError."""
    fitted = _fit(clone(estimator), X, y, fit_kwargs)
    X = np.asarray(X, dtype=float)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    X_wide = np.hstack([X, X[:, :1]])
    for method in OUTPUT_METHODS:
        if not hasattr(fitted, method):
            continue
        for bad, pattern in ((X_nan, r"(?i)nan"), (X_wide, r"(?i)feature")):
            try:
                getattr(fitted, method)(bad)
            except ValueError as exc:
                assert re.search(pattern, str(exc)), (
                    f"{type(estimator).__name__}.{method} error does not name the problem "
                    f"(expected /{pattern}/): {exc}"
                )
            else:
                raise AssertionError(
                    f"{type(estimator).__name__}.{method} accepted bad input (/{pattern}/)."
                )


def _assert_same_outputs(before, after, how, name):
    assert before.keys() == after.keys(), f"{name}: outputs differ after {how}"
    for key in before:
        np.testing.assert_array_equal(
            before[key], after[key], err_msg=f"{name}.{key} changed after a {how} round trip"
        )


def check_persistence(estimator, X, y, fit_kwargs, trusted_extra=()):
    """Fitted estimators round-trip through pickle, joblib and skops.

    Only weightstats' own types (and ``trusted_extra``) may need trusting in
    skops; everything else must be among skops' default trusted types.
    """
    import skops.io as sio

    name = type(estimator).__name__
    fitted = _fit(clone(estimator), X, y, fit_kwargs)
    before = fitted_outputs(fitted, X)
    assert before, f"{name} has no output method or attribute to compare after persistence."
    _assert_same_outputs(before, fitted_outputs(pickle.loads(pickle.dumps(fitted)), X), "pickle", name)
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    buffer.seek(0)
    _assert_same_outputs(before, fitted_outputs(joblib.load(buffer), X), "joblib", name)
    blob = sio.dumps(fitted)
    untrusted = sio.get_untrusted_types(data=blob)
    unexpected = [
        t for t in untrusted if not t.startswith("weightstats.") and t not in trusted_extra
    ]
    assert not unexpected, (
        f"{name} needs skops to trust foreign types {unexpected}; store plain arrays instead "
        "or list them with a reason in SKOPS_TRUSTED_EXTRA."
    )
    _assert_same_outputs(before, fitted_outputs(sio.loads(blob, trusted=untrusted), X), "skops", name)
