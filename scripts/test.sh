#!/usr/bin/env bash
# The test suite: installs, builds (scripts/setup.sh, into .venv), then runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh
# The report test renders HTML in a real headless browser: Debian's chromium.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || echo "test: chromium not installed; the browser test will skip" >&2
fi
exec "$PY" -m pytest -q "$@"
