"""Sphinx configuration of the skspread documentation.

Build with ``sphinx-build -W -b html doc doc/_build/html``; the gallery runs
every ``examples/plot_*.py`` script while building.
"""

import os
from datetime import date

import skspread

# The examples write figures only; a display is never needed.
os.environ.setdefault("MPLBACKEND", "Agg")
# The examples are small: one BLAS / OpenMP thread per example, and the
# examples run two at a time (``parallel`` below), uses two cores better than
# two threads per example, whose synchronisation costs more than it gains on
# problems this size.
for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

project = "skspread"
author = "skspread developers"
copyright = f"{date.today().year}, {author}"
version = release = skspread.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build"]
root_doc = "index"
default_role = "literal"

# API reference: one page per public name, generated from the docstrings.
autosummary_generate = True
# numpydoc lists the methods through the class template; its own member
# tables would duplicate them and point at pages that do not exist.
numpydoc_show_class_members = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# The docstrings are checked by numpydoc's structural parser (an unknown
# section or a malformed parameter list is a warning, hence an error with -W);
# the stylistic checks of numpydoc's validator are not errors here.
numpydoc_validation_checks = set()

html_theme = "pydata_sphinx_theme"
html_title = f"skspread {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": False,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path = []
html_show_sourcelink = False

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("skspread",),
    "reference_url": {"skspread": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "show_memory": False,
    # Every example runs in the build; one that raises fails the build.
    "only_warn_on_example_error": False,
    "abort_on_example_error": False,
    "plot_gallery": "True",
    "parallel": 2,
}
