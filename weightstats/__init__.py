"""weightstats: weighting and estimation methods, scikit-learn compatible.

Subpackages are imported lazily on first attribute access, so ``import
weightstats`` stays fast and never imports torch, matplotlib or numba.

>>> import weightstats
>>> weightstats.__version__  # doctest: +SKIP
'0.1.0.dev0'
"""

import importlib
import pkgutil

from ._version import __version__

# Public subpackages (every non-underscore package here); ``nn`` needs the torch
# extra and is imported only on request.
_SUBMODULES = frozenset(
    info.name for info in pkgutil.iter_modules(__path__) if info.ispkg and not info.name.startswith("_")
)

__all__ = ["__version__", *sorted(_SUBMODULES)]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
