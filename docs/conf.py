"""Sphinx configuration for weightstats (built with -W in CI: warnings are errors)."""

import filecmp
import os
import shutil
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, os.path.abspath(".."))
# Figures drawn in this process (gallery, plot directive) need no display; the
# notebook kernels must keep their inline backend, so no MPLBACKEND for them.
os.environ.pop("MPLBACKEND", None)
import matplotlib  # noqa: E402

matplotlib.use("Agg")

import weightstats  # noqa: E402

project = "weightstats"
author = "The weightstats developers"
copyright = f"{date.today().year}, {author}"
release = weightstats.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_nb",
    "sphinxarg.ext",
    "matplotlib.sphinxext.plot_directive",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
templates_path = ["_templates"]
# auto_examples/*.ipynb: sphinx-gallery's notebook downloads, not pages of their own.
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints",
                    "examples/README.rst", "auto_examples/*.ipynb"]
root_doc = "index"

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
# scikit-learn adds set_<method>_request to estimators whose fit/score take
# sample_weight; their docstrings link to its glossary, which is not here.
autodoc_default_options["exclude-members"] = ", ".join(
    f"set_{method}_request"
    for method in ("fit", "score", "predict", "predict_proba", "predict_log_proba",
                   "decision_function", "transform", "inverse_transform", "partial_fit", "split")
)
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,
    "plot_gallery": "True",
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "download_all_examples": False,
}

html_theme = "pydata_sphinx_theme"
html_title = f"weightstats {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path = []

# Notebooks: the analyses in ../notebooks (stored without outputs) are copied
# to notebooks/ here and executed while the docs are built, so the pages show
# their tables and figures. Any error in a cell fails the build: this build is
# where the notebooks are tested (pytest does not run them again). Cells tagged
# "remove-cell" (the checks that keep a notebook's claims true) run but are not
# shown. Executed notebooks are kept in a jupyter-cache keyed by their code, so
# a rebuild only runs the notebooks that changed.
_DOCS = Path(__file__).parent
_NOTEBOOKS = _DOCS / "notebooks"


def _sync_notebooks():
    """Copy new or changed notebooks (unchanged copies keep their cache entries)."""
    _NOTEBOOKS.mkdir(exist_ok=True)
    sources = {p.name: p for p in (_DOCS.parent / "notebooks").glob("*.ipynb")}
    for stale in set(p.name for p in _NOTEBOOKS.glob("*.ipynb")) - set(sources):
        (_NOTEBOOKS / stale).unlink()
    for name, source in sources.items():
        target = _NOTEBOOKS / name
        if not target.exists() or not filecmp.cmp(source, target, shallow=False):
            shutil.copyfile(source, target)


_sync_notebooks()
nb_execution_mode = "cache"
nb_execution_cache_path = str(_DOCS / "_build" / ".jupyter_cache")
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 600  # seconds per cell
nb_merge_streams = True
myst_heading_anchors = 3


def _execute_notebooks(app):
    """Run the notebooks missing from the cache in parallel (one per core) before reading.

    myst-nb alone executes each notebook when Sphinx reads it, one after the
    other; the pool halves the wall time on two cores. Reading then finds
    every notebook in the cache.
    """
    import logging

    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor
    from sphinx.errors import ExtensionError

    cache = get_cache(nb_execution_cache_path)
    paths = {str(p.resolve()) for p in _NOTEBOOKS.glob("*.ipynb")}
    for record in cache.list_project_records():
        if record.uri not in paths:
            cache.remove_nb_from_project(record.uri)
    for path in sorted(paths):
        cache.add_nb_to_project(path)
    if not cache.list_unexecuted():
        return
    logger = logging.getLogger("weightstats.docs.notebooks")
    logger.setLevel(logging.WARNING)  # failures only; not every pool event
    executor = load_executor("local-parallel", cache=cache, logger=logger)
    result = executor.run_and_cache(timeout=nb_execution_timeout)
    failed = result.excepted + result.errored
    if failed:
        details = "\n\n".join(f"{uri}:\n{cache.get_project_record(uri).traceback}"
                               for uri in failed)
        raise ExtensionError(f"notebook(s) failed: {', '.join(failed)}\n\n{details}")


def setup(app):
    app.connect("builder-inited", _execute_notebooks)


# The landing page's figure (matplotlib's plot directive).
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
