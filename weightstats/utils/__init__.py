"""Shared machinery: validation, discovery, docstring fragments, results tables."""

from ._docstring import fill_doc
from ._optional import check_matplotlib_support, import_optional
from ._progress import progress
from ._results import EstimateResults, Summary
from ._validation import (
    check_binary_treatment,
    check_finite_vector,
    check_group_sizes,
    check_sample_weight,
)
from .discovery import all_estimators, all_functions

__all__ = [
    "EstimateResults",
    "Summary",
    "all_estimators",
    "all_functions",
    "check_binary_treatment",
    "check_finite_vector",
    "check_group_sizes",
    "check_matplotlib_support",
    "check_sample_weight",
    "fill_doc",
    "import_optional",
    "progress",
]
