"""Discover the public estimators and functions of weightstats.

Tests and docs both use these lists, so a new estimator is picked up by the
common tests and the API page without registering it anywhere else.
"""

import importlib
import importlib.util
import inspect
import pkgutil

from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    OutlierMixin,
    RegressorMixin,
    TransformerMixin,
)

__all__ = ["all_estimators", "all_functions", "public_modules"]

_TYPE_MIXINS = {
    "classifier": ClassifierMixin,
    "regressor": RegressorMixin,
    "transformer": TransformerMixin,
    "outlier_detector": OutlierMixin,
}


def public_modules():
    """Names of the public subpackages that can be imported here.

    ``weightstats.nn`` and its public subpackages (``weightstats.nn.layers``,
    ...) are included only when torch and skorch are installed.

    Returns
    -------
    names : list of str
        Fully qualified module names, sorted.

    Examples
    --------
    >>> from weightstats.utils.discovery import public_modules
    >>> "weightstats.datasets" in public_modules()
    True
    """
    import weightstats

    names = []
    for sub in sorted(weightstats._SUBMODULES):
        if sub == "nn":
            if not all(importlib.util.find_spec(dep) is not None for dep in ("torch", "skorch")):
                continue
            names.append("weightstats.nn")
            names.extend(_public_subpackages("weightstats.nn"))
            continue
        names.append(f"weightstats.{sub}")
    return names


def _public_subpackages(package):
    """Public subpackages of ``package``, found without importing it."""
    paths = importlib.util.find_spec(package).submodule_search_locations
    return [
        f"{package}.{info.name}"
        for info in sorted(pkgutil.iter_modules(paths), key=lambda info: info.name)
        if info.ispkg and not info.name.startswith("_")
    ]


def _public_members(predicate):
    found = {}
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if predicate(obj):
                found[name] = obj
    return sorted(found.items())


def all_estimators(type_filter=None):
    """List the public estimators of weightstats.

    Parameters
    ----------
    type_filter : {"classifier", "regressor", "transformer", "outlier_detector"} \
            or list of those, default=None
        Keep only estimators of these kinds; ``None`` keeps all.

    Returns
    -------
    estimators : list of (name, class) tuples
        Sorted by name.

    Examples
    --------
    >>> from weightstats.utils import all_estimators
    >>> all(isinstance(name, str) for name, _ in all_estimators())
    True
    """

    def is_estimator(obj):
        return (
            inspect.isclass(obj)
            and issubclass(obj, BaseEstimator)
            and not inspect.isabstract(obj)
            and not obj.__name__.startswith("_")
        )

    estimators = _public_members(is_estimator)
    if type_filter is None:
        return estimators
    filters = [type_filter] if isinstance(type_filter, str) else list(type_filter)
    unknown = set(filters) - set(_TYPE_MIXINS)
    if unknown:
        raise ValueError(
            f"type_filter must be among {sorted(_TYPE_MIXINS)} or None; got {sorted(unknown)}."
        )
    mixins = tuple(_TYPE_MIXINS[f] for f in filters)
    return [(name, cls) for name, cls in estimators if issubclass(cls, mixins)]


def all_functions():
    """List the public functions of weightstats.

    Returns
    -------
    functions : list of (name, function) tuples
        Sorted by name.

    Examples
    --------
    >>> from weightstats.utils import all_functions
    >>> "load_lalonde" in dict(all_functions())
    True
    """
    return _public_members(inspect.isfunction)
