"""Sphinx configuration of gradstat's documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (``pip install
".[docs]"``). The pages generated from the registries (estimator families, claims, the
TOML keys) are written into ``docs/generated/`` when the build starts
(``_ext/gradstat_docs.py``), so they always describe the installed code.

intersphinx links to numpy, scipy, numba, hypothesis, pandas, matplotlib, torch and JAX need the
network: when ``numpy.org`` cannot be resolved the mapping is left empty (the build
says so), so that an offline build passes with ``-W`` and those references stay plain
text.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

import gradstat  # noqa: E402

project = "gradstat"
author = "the gradstat authors"
copyright = "the gradstat authors"
release = gradstat.__version__
version = release

extensions = [
    "myst_nb",  # MyST Markdown (it includes myst_parser) and the executed example pages
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "gradstat_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
exclude_patterns = [
    "_build",
    "jupyter_execute",
    "README.md",
    "generated/claims.rst",
    "generated/config_keys.rst",
]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# The pages under examples/ are executed at every build (a cache keyed by their code
# skips unchanged ones between builds of one output folder); an error fails the build.
nb_execution_mode = "cache"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
# The kernel imports this source tree's gradstat, installed or not.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(HERE.parent), os.environ.get("PYTHONPATH", "")) if p
)

autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()


def _online(host: str = "numpy.org") -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "scipy": ("https://docs.scipy.org/doc/scipy", None),
    "numba": ("https://numba.readthedocs.io/en/stable", None),
    "hypothesis": ("https://hypothesis.readthedocs.io/en/latest", None),
    "pandas": ("https://pandas.pydata.org/docs", None),
    "matplotlib": ("https://matplotlib.org/stable", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
    "jax": ("https://docs.jax.dev/en/latest", None),
}
intersphinx_timeout = 5
# GRADSTAT_DOCS_OFFLINE=1 builds without them even online (the test suite's build must not
# depend on other projects' servers answering within the timeout).
if os.environ.get("GRADSTAT_DOCS_OFFLINE") or not _online():
    print("gradstat docs: offline, intersphinx links to numpy, scipy, ... left out")
    intersphinx_mapping = {}
templates_path = ["_templates"]

html_theme = "pydata_sphinx_theme"
html_title = f"gradstat {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 4,
}
# Pages at the top of the table of contents have no section to navigate: their empty
# left sidebar would only narrow the wide tables and outputs (estimators, API and the
# generated pages keep it).
html_sidebars = {
    page: []
    for page in (
        "index",
        "getting-started",
        "model",
        "engines",
        "claims",
        "analyses",
        "performance",
        "examples/*",
        "guides/*",
    )
}
