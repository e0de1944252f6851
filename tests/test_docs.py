"""Docs stay in sync with the code: every public name is on the API page and
every public docstring passes numpydoc validation."""

import importlib
import inspect
import re
from pathlib import Path

import pytest

from weightstats.utils.discovery import public_modules

DOCS = Path(__file__).resolve().parents[1] / "docs"

# numpydoc checks we do not enforce, and why.
IGNORED_CHECKS = {
    "ES01",  # extended summary: optional for short helpers
    "SA01",  # See Also: added where useful, not everywhere
    "GL08",  # private or inherited members without docstrings are not public API
    "RT02",  # return names are numpydoc's recommendation, not a requirement
    "PR04",  # dtypes are described in prose for *args-style parameters
    "EX01",  # examples: enforced for classes and functions below, not for methods
    "SS05",  # summary verbs in infinitive form ("Return") vs third person: either reads fine
    "GL02",  # blank line after the opening quotes
    "YD01",  # generators document Yields where they have any
}


def _public_names():
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            yield module_name, name, getattr(module, name)


def test_api_page_lists_every_public_name():
    api = (DOCS / "api.rst").read_text()
    listed = set(re.findall(r"^\s{3}(\w+)\s*$", api, flags=re.MULTILINE))
    missing = [f"{m}.{n}" for m, n, _ in _public_names() if n not in listed]
    assert not missing, f"add these to docs/api.rst: {missing}"
    for module_name in public_modules():
        assert f".. automodule:: {module_name}\n" in api, f"{module_name} has no API section"


def _own_public_members(cls):
    """Public methods and properties that weightstats itself defines for ``cls``
    (including those inherited from private weightstats base classes)."""
    for attr in dir(cls):
        if attr.startswith("_") or re.fullmatch(r"set_\w+_request", attr):
            continue
        owner = next((k for k in cls.__mro__ if attr in vars(k)), None)
        member = vars(owner)[attr] if owner is not None else None
        if owner is None or not owner.__module__.startswith("weightstats"):
            continue
        if inspect.isfunction(member) or isinstance(member, (property, classmethod, staticmethod)):
            yield attr


def _docstring_targets():
    seen = set()
    for module_name, name, obj in _public_names():
        # A name re-exported by a parent package (weightstats.nn.MLP is
        # weightstats.nn.layers.MLP) is checked once.
        if not (inspect.isclass(obj) or inspect.isfunction(obj)) or id(obj) in seen:
            continue
        seen.add(id(obj))
        yield pytest.param(f"{module_name}.{name}", obj, id=f"{module_name}.{name}")
        if inspect.isclass(obj):
            for attr in _own_public_members(obj):
                yield pytest.param(f"{module_name}.{name}.{attr}", None, id=f"{module_name}.{name}.{attr}")


@pytest.mark.parametrize("import_path, obj", list(_docstring_targets()))
def test_docstring_is_valid_numpydoc(import_path, obj):
    from numpydoc.validate import validate

    result = validate(import_path)
    errors = [(code, msg) for code, msg in result["errors"] if code not in IGNORED_CHECKS]
    if obj is not None and "Examples" not in (obj.__doc__ or ""):
        errors.append(("EX01", "public classes and functions need a doctested Examples section"))
    assert not errors, "\n".join(f"{code}: {msg}" for code, msg in errors)


NOTEBOOKS = sorted((DOCS.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_are_stored_without_outputs_and_listed_in_the_docs(path):
    """The docs build executes and renders them; stored outputs would go stale.

    Cells tagged ``remove-cell`` (the checks that keep a notebook's claims
    true) run when the docs are built but are not shown.
    """
    import json

    notebook = json.loads(path.read_text())
    stale = [i for i, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not stale, f"clear the outputs of cells {stale} (e.g. jupyter nbconvert --clear-output)"
    assert f"notebooks/{path.stem}\n" in (DOCS / "notebooks.rst").read_text()
