"""Collection rules shared by the tests and the doctests of the package.

Optional-dependency code is skipped (with a reason) where its extra is not
installed; CI installs every extra, so nothing is skipped there.
"""

import importlib.util
import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

# Package modules whose doctests need an optional dependency.
_OPTIONAL_MODULES = {
    "weightstats/nn": ("torch", "skorch"),
    "weightstats/plotting": ("matplotlib",),
    # nn.rst and the nn_<subpackage>.rst pages
    "docs/user_guide/nn": ("torch", "skorch"),
    "tests/_diffusion_experiments.py": ("torch", "skorch"),
}


def _missing(modules):
    return [m for m in modules if importlib.util.find_spec(m) is None]


def pytest_ignore_collect(collection_path, config):
    path = collection_path.as_posix()
    for prefix, modules in _OPTIONAL_MODULES.items():
        if f"/{prefix}" in path and _missing(modules):
            return True
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        for marker in item.iter_markers("requires"):
            missing = _missing(marker.args)
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"needs {', '.join(missing)}"))
