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
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = True

# Every cross-reference must resolve (the build runs with -n -W): every link between pages and
# every reference to a public name. References in docstrings to internal names (which have no
# page: the reference covers ``pyro_vae.__all__``) and to other libraries (whose inventories are
# not fetched: no network) are let through by ``_internal_or_external`` below.
nitpicky = True

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


def _describe_table(app, what, name, obj, options, lines):
    """A public table (``PRIORS``, ``DATASETS``, ...) is documented by the docstring its own
    module gives it, then its keys, instead of the docstring of ``dict``."""
    if what != "data" or not name.startswith("pyro_vae."):
        return
    from sphinx.pycode import ModuleAnalyzer

    short = name.rsplit(".", 1)[1]
    source = f"pyro_vae.{pyro_vae._EXPORTS[short]}"
    doc = ModuleAnalyzer.for_module(source).find_attr_docs().get(("", short), [])
    lines[:] = [line for line in doc if line.strip()] or [f"Defined in ``{source}``."]
    if isinstance(obj, dict):
        lines += ["", "Names: " + ", ".join(f"``{key}``" for key in obj) + "."]


def _internal_or_external(app, domain, node):
    """True (no warning) for a Python reference that is not to a public name of pyro_vae."""
    if domain is None or domain.name != "py":
        return None
    target = node.get("reftarget", "")
    public = target.removeprefix("pyro_vae.").split(".")[0] in pyro_vae.__all__
    return None if public else True


def _attribute_docstring_as_written(self):
    """Napoleon reads an attribute's or property's first line up to a colon as its type; these
    docstrings are sentences ("Monte Carlo error of each estimate: ..."), so keep them whole."""
    lines = self.__class__(list(self._consume_to_end()), self._config).lines()
    return self._format_field("", "", lines)


def _keep_numbers_whole(app, doctree, docname):
    """In tables, keep "-238.68 ± 0.76" on one line: the spaces around ± do not break."""
    from docutils import nodes

    for table in doctree.findall(nodes.table):
        for text in list(table.findall(nodes.Text)):
            if " ± " in text:
                text.parent.replace(text, nodes.Text(text.replace(" ± ", "\u00a0±\u00a0")))


def setup(app):
    from sphinx.ext.napoleon.docstring import GoogleDocstring

    GoogleDocstring._parse_attribute_docstring = _attribute_docstring_as_written
    app.connect("autodoc-process-docstring", _describe_table)
    app.connect("warn-missing-reference", _internal_or_external)
    app.connect("doctree-resolved", _keep_numbers_whole)
