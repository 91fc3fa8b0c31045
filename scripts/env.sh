# Sourced by the other scripts: sets PY, the Python that installs, builds and runs everything.
#   PYTHON=/path/to/python   that interpreter, as is
#   an active virtual environment ($VIRTUAL_ENV)   its python
#   otherwise   the project's own .venv, created on first use with --system-site-packages (so an
#               installed torch, e.g. a CUDA build, stays importable); the system Python is never
#               written to, which also works where it refuses pip installs (PEP 668).
if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
elif [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
  PY=$VIRTUAL_ENV/bin/python
else
  if [ ! -x .venv/bin/python ]; then
    echo "setup: creating the virtual environment .venv (with the system's site-packages)"
    python3 -m venv --system-site-packages .venv
  fi
  PY=$PWD/.venv/bin/python
fi
export PY
