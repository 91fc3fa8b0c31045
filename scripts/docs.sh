#!/usr/bin/env bash
# Builds the documentation site (Sphinx: MyST pages, autodoc API reference of every public name, the CLI
# from its parser) into docs/_build/html with warnings as errors. Installs its tools into .venv first.
#   bash scripts/docs.sh            # CI runs this
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
"$PY" -m pip install -q --disable-pip-version-check "sphinx>=8" "myst-parser>=4" furo sphinx-argparse 2>&1 |
  grep -v -E "^WARNING: Running pip as|^WARNING: Location|dependency conflicts|requires docutils" || true
"$PY" -c "import invert_fast" 2>/dev/null || bash scripts/setup.sh
"$PY" -m sphinx -W --keep-going -q -b html docs docs/_build/html
echo "docs: built docs/_build/html/index.html (no warnings)"
