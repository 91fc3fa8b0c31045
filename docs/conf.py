"""Sphinx configuration of invert_fast's documentation (built by scripts/docs.sh, warnings as errors).

Pages are Markdown (MyST); the API reference is generated at build time from invert_fast.__all__
(every public name gets its entry: docs/_generated/api.rst, never committed), the CLI reference from
the argparse parser itself (sphinx-argparse). intersphinx is off: the build runs offline and fetching
torch's and numpy's inventories would need the network.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import invert_fast  # noqa: E402

project = "invert_fast"
author = "the invert_fast developers"
release = invert_fast.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "myst_parser", "sphinxarg.ext"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 4
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # "Attributes:" as fields: dataclass members are documented once (autodoc)
html_theme = "furo"
html_title = f"invert_fast {release}"
# ref.python: a field name several classes share (`names`: ConceptSet, Dissection) is an ambiguous
# cross-reference target in napoleon's fields; the entries themselves are all there.
suppress_warnings = ["ref.python"]


def write_api_reference(app) -> None:
    """docs/_generated/api.rst: one autodoc entry per name of invert_fast.__all__, grouped by kind."""
    out = Path(app.srcdir) / "_generated"
    out.mkdir(exist_ok=True)
    classes, functions = [], []
    for name in sorted(invert_fast.__all__):
        obj = getattr(invert_fast, name)
        (classes if inspect.isclass(obj) else functions).append(name)
    lines = [
        "API reference",
        "=============",
        "",
        "Every public name of ``invert_fast`` (its ``__all__``); module paths may move, these do not.",
        "Generated at build time from the docstrings (shapes, defaults, an example each).",
        "",
        ".. currentmodule:: invert_fast",
        "",
        "Classes",
        "-------",
        "",
    ]
    for name in classes:
        lines += [f".. autoclass:: {name}", "   :members:", ""]
    lines += ["Functions", "---------", ""]
    for name in functions:
        lines += [f".. autofunction:: {name}", ""]
    text = "\n".join(lines)
    path = out / "api.rst"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def setup(app):
    app.connect("builder-inited", write_api_reference)
