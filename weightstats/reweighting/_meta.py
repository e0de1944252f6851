"""Shared pieces of the meta-estimators in this subpackage."""

from sklearn.utils import get_tags
from sklearn.utils.validation import has_fit_parameter

from ..utils import check_sample_weight


def check_meta_sample_weight(estimator, sample_weight, y):
    """Validate ``sample_weight`` and check that ``estimator.fit`` takes it.

    Returns the validated weights, or ``None``.
    """
    if sample_weight is None:
        return None
    sample_weight = check_sample_weight(sample_weight, y)
    if not has_fit_parameter(estimator, "sample_weight"):
        raise ValueError(f"{type(estimator).__name__}.fit does not accept sample_weight.")
    return sample_weight


def delegate_input_tags(tags, estimator):
    """Copy the input capabilities (NaN, sparse) of the base estimator."""
    inner = get_tags(estimator)
    tags.input_tags.allow_nan = inner.input_tags.allow_nan
    tags.input_tags.sparse = inner.input_tags.sparse
    return tags
