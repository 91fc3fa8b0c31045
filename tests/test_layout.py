"""The tree is the architecture: layers import only the layers below them, no cycles, no private names
across modules, a façade whose names stay put, and a reference that runs without the compiled build."""

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import invert_fast as inv

PKG = Path(inv.__file__).resolve().parent

# Layer of every module (by its dotted name's second part) and the layers it may import.
LAYERS = {
    "files": set(),
    "ops": {"ops", "files"},
    "core": {"core", "ops", "files"},
    "dissection": {"dissection", "core", "ops", "files"},
    "io": {"io", "core", "ops", "files"},
    "concepts": {"concepts", "dissection", "core", "ops", "files"},
    "cases": {"cases", "concepts", "io", "dissection", "core", "ops", "files"},
    "apps": {"apps", "cases", "concepts", "io", "dissection", "core", "ops", "files", "reference", "facade"},
    "reference": {"core"},
    "compat": {"io", "core", "ops", "files"},
    "facade": {"cases", "concepts", "io", "dissection", "core", "ops", "files", "reference", "compat"},  # no app
}
FAST_PATH = {"invert_fast.ops", "invert_fast.core.auroc", "invert_fast.core.regions", "invert_fast.core.search"}
FAST_PATH |= {"invert_fast.core.scoring"}


def modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out[".".join(["invert_fast", *parts])] = path
    return out


MODULES = modules()


def layer(mod: str) -> str:
    parts = mod.split(".")
    if len(parts) == 1:
        return "facade"
    if parts[1] == "__main__":  # `python -m invert_fast`: the command line, an app
        return "apps"
    return parts[1]


def imports(mod: str, top_level_only: bool = False) -> list[tuple[str, list[str], int]]:
    """(imported invert_fast module, names taken from it, line) for every import of a module."""
    path = MODULES[mod]
    tree = ast.parse(path.read_text())
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "invert_fast"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "invert_fast":
                continue
            names = [a.name for a in node.names]
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            if subs:  # `from . import ops`: the submodules themselves
                out += [(s, [], node.lineno) for s in subs]
            else:
                out.append((target, names, node.lineno))
    return [(m, n, line) for m, n, line in out if m in MODULES or m == "invert_fast._C"]


def graph(top_level_only: bool = False) -> dict[str, set[str]]:
    return {m: {t for t, _, _ in imports(m, top_level_only) if t in MODULES} for m in MODULES}


def closure(g, start):
    seen, todo = set(), [start]
    while todo:
        for t in g[todo.pop()]:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


def test_every_module_imports_only_the_layers_below_it():
    g = graph()
    bad = []
    for m in MODULES:
        if layer(m) == "reference":
            continue
        for t in closure(g, m):
            if layer(t) not in LAYERS[layer(m)] | {layer(m)}:
                bad.append(f"{m} -> {t}")
    assert not bad, "layering violations (directly or transitively):\n" + "\n".join(sorted(bad))


def test_core_never_reaches_io_cases_apps_or_dissection():
    g = graph()
    for m in MODULES:
        if layer(m) == "core":
            reach = {layer(t) for t in closure(g, m)}
            assert reach <= {"core", "ops", "files"}, f"{m} reaches {sorted(reach)}"


def test_reference_imports_nothing_from_the_fast_path():
    direct = {t for t, _, _ in imports("invert_fast.reference")}
    assert direct <= {"invert_fast.core.formula"}, direct
    loaded = closure(graph(top_level_only=True), "invert_fast.reference") | direct
    fast = {m for m in loaded if any(m == f or m.startswith(f + ".") for f in FAST_PATH)}
    assert not fast, f"the reference loads fast-path modules: {sorted(fast)}"


def test_no_import_cycles():
    g = graph()
    for m in MODULES:
        if layer(m) == "facade" or m.count(".") == 1 and MODULES[m].name == "__init__.py":
            continue
        assert m not in closure({k: v for k, v in g.items()}, m), f"{m} imports itself through a cycle"


def test_no_private_name_crosses_a_module_boundary():
    bad = []
    for m in MODULES:
        for target, names, line in imports(m):
            if target == "invert_fast._C":
                continue
            bad += [
                f"{MODULES[m].relative_to(PKG)}:{line} imports {n} from {target}" for n in names if n.startswith("_")
            ]
    assert not bad, "\n".join(bad)


def test_at_most_six_modules_at_the_top():
    top = [p.name for p in PKG.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(top) <= 6, top
    subpackages = {p.parent.name for p in PKG.glob("*/__init__.py")}
    assert {"ops", "core", "dissection", "io", "concepts", "cases", "apps"} <= subpackages


def test_facade_names_survive_importing_every_submodule():
    before = {name: getattr(inv, name) for name in inv.__all__}
    for info in pkgutil.walk_packages(inv.__path__, "invert_fast."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
    for name, obj in before.items():
        now = getattr(inv, name)
        assert now is obj, f"invert_fast.{name} was rebound to {now!r} by a submodule of the same name"
        assert not isinstance(now, type(sys)), f"invert_fast.{name} is a module"
    for name in ("capture", "NeuronStore", "explain_to_file", "compare", "explain", "auroc", "ConceptSet"):
        assert name in inv.__all__


def test_packaging_lists_every_subpackage():
    setuptools = pytest.importorskip("setuptools")
    found = set(setuptools.find_packages(str(PKG.parent), include=["invert_fast*"]))
    on_disk = {".".join(p.parent.relative_to(PKG.parent).parts) for p in PKG.rglob("__init__.py")}
    assert found == on_disk
    text = (PKG.parent / "pyproject.toml").read_text()
    assert 'include = ["invert_fast*"]' in text and "invert_fast.apps.cli:main" in text


def test_reference_runs_without_the_compiled_extension():
    code = (
        "import sys\n"
        "sys.modules['invert_fast._C'] = None  # as if the build were missing or broken\n"
        "from invert_fast.reference import explain_reference\n"
        "print(explain_reference([[0.1], [0.9], [0.5]], [[0], [1], [1]], ['a'], 1, 1)[0][0][0])\n"
        "import invert_fast as inv, torch\n"
        "try:\n"
        "    inv.rank_doubled(torch.zeros(2, 1))\n"
        "except RuntimeError as e:\n"
        "    print('error:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "~a"  # a covers 2 of 3 samples: above max_fraction 0.5
    assert (
        lines[1].startswith("error: invert_fast's compiled operators are not available") and "pip install" in lines[1]
    )


def test_python_dash_m_runs_the_cli():
    res = subprocess.run([sys.executable, "-m", "invert_fast", "--help"], capture_output=True, text=True, check=True)
    assert "explain" in res.stdout and "compare" in res.stdout
