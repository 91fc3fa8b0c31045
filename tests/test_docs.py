"""The documentation's contracts: every public name documents its shapes' use with an example, README is a
landing page whose links into the docs resolve, and the docs build's page list covers every guide task."""

import inspect
import re
from pathlib import Path

import invert_fast as inv

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_has_a_docstring_with_an_example():
    missing = [n for n in inv.__all__ if "Example" not in (inspect.getdoc(getattr(inv, n)) or "")]
    assert not missing, f"public names without an Example in their docstring: {missing}"


def test_readme_is_a_landing_page_whose_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    links = re.findall(r"\]\(((?:docs|benchmarks)/[^)#]+)\)", text)
    assert len(links) >= 8
    for link in links:
        assert (ROOT / link).is_file(), link


def test_docs_pages_are_all_in_the_toctree():
    index = (ROOT / "docs" / "index.md").read_text()
    pages = {p.relative_to(ROOT / "docs").with_suffix("").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    pages.discard("index")
    listed = set(re.findall(r"^([\w/.-]+)$", index, flags=re.M))
    assert pages <= listed, pages - listed
    assert {"_generated/api", "cli"} <= listed
