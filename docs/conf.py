"""Sphinx configuration for weightstats (built with -W in CI: warnings are errors)."""

import os
import sys
from datetime import date

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("MPLBACKEND", "Agg")

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
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "examples/README.rst"]
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
myst_heading_anchors = 3
