"""Docstring fragments shared by many estimators.

Write ``{random_state}`` (etc.) in a docstring and decorate the class or
function with ``@fill_doc`` to insert the shared text, so that parameters
common to many estimators are described once.
"""

import textwrap

__all__ = ["DOC_FRAGMENTS", "fill_doc"]

DOC_FRAGMENTS = {
    "random_state": """random_state : int, RandomState instance or None, default=None
    Controls the randomness of the method. Pass an int for reproducible
    output across calls.""",
    "n_jobs": """n_jobs : int, default=None
    Number of parallel workers (threads for numba kernels, processes or
    threads for joblib loops). ``None`` means 1 unless in a
    ``joblib.parallel_config`` context; ``-1`` means all processors.""",
    "verbose": """verbose : int, default=0
    Verbosity: 0 is silent, 1 shows a progress bar for long loops, higher
    values print more detail.""",
    "sample_weight": """sample_weight : array-like of shape (n_samples,), default=None
    Non-negative sample weights; ``None`` gives every sample weight 1. Integer
    weights are equivalent to repeating rows.""",
    "n_features_in_": """n_features_in_ : int
    Number of features seen during ``fit``.""",
    "feature_names_in_": """feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Names of features seen during ``fit``. Defined only when `X` has
    feature names that are all strings.""",
}


def fill_doc(obj):
    """Insert the shared fragments into ``obj.__doc__``.

    Each ``{name}`` placeholder is replaced with the fragment of that name,
    re-indented to the placeholder's indentation. Other braces are left alone.

    Parameters
    ----------
    obj : class or function
        The object whose docstring to fill.

    Returns
    -------
    obj : class or function
        The same object, with the docstring filled in.

    Examples
    --------
    >>> from weightstats.utils import fill_doc
    >>> @fill_doc
    ... def f(random_state=None):
    ...     '''Do something.
    ...
    ...     Parameters
    ...     ----------
    ...     {random_state}
    ...     '''
    >>> "Pass an int for reproducible" in f.__doc__
    True
    """
    doc = obj.__doc__
    if not doc:
        return obj
    lines = []
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.startswith("{") and stripped.endswith("}") and stripped[1:-1] in DOC_FRAGMENTS:
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(textwrap.indent(DOC_FRAGMENTS[stripped[1:-1]], indent))
        else:
            lines.append(line)
    obj.__doc__ = "\n".join(lines)
    return obj
