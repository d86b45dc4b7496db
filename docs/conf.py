"""Sphinx configuration of pyro-vae's documentation (``make -C docs html`` or
``sphinx-build -W --keep-going -n -b html docs docs/_build/html``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # the checkout's pyro_vae, also without an install
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the gallery's examples: one thread each
os.environ.setdefault("MPLBACKEND", "Agg")

import pyro_vae  # noqa: E402

project = "pyro-vae"
author = "the pyro-vae authors"
copyright = "the pyro-vae authors, MIT license"
release = pyro_vae.__version__  # the one place the version is stated
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "examples"]
templates_path = ["_templates"]

# MyST: headings get anchors (`page.md#heading`), so cross-page links are checked by the build.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

# The API reference: one page per public name, generated from the docstrings.
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_class_signature = "separated"
napoleon_google_docstring = True
napoleon_numpy_docstring = True

# Every cross-reference must resolve (the build runs with -n -W), except to the libraries whose
# own documentation is not fetched here (no network): PyTorch, Pyro, NumPy, the standard library.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|pyro|numpy|np|nn|dist|matplotlib|sklearn|collections|typing|pathlib)\b.*"),
    (r"py:.*", r"(Tensor|Path|Callable|Iterator|Iterable|Sequence|Mapping|Any|Module)"),
    (r"py:class", r"(optional|default.*|callable)"),
]

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
}

html_theme = "furo"
html_title = f"pyro-vae {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
