#!/usr/bin/env bash
# Proves that the CUDA kernels (csrc/cuda/*.cu) compile and link: builds the extension with
# INVERT_FAST_CUDA=1 against torch 2.14.1+cu130 in a separate virtual environment, then imports
# it and runs the CPU ops through it. Needs nvcc (CUDA_HOME, default /usr/local/cuda); no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${INVERT_FAST_CUDA_VENV:-/tmp/invert_fast_cuda_venv}
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
[ -x "$CUDA_HOME/bin/nvcc" ] || { echo "cuda_compile_check: no nvcc under CUDA_HOME=$CUDA_HOME" >&2; exit 1; }
"$CUDA_HOME/bin/nvcc" --version | tail -2
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.version.cuda is None)" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check torch==2.14.1 numpy ninja "setuptools>=64" wheel 2>&1 | grep -v "^WARNING: Location" || true
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
INVERT_FAST_CUDA=1 "$VENV/bin/python" setup.py -q build_ext --build-lib "$OUT/lib" --build-temp "$OUT/tmp"
# The whole package tree (every subpackage), beside the freshly built invert_fast/_C*.so.
tar --exclude="*.so" --exclude=__pycache__ -cf - invert_fast | tar -xf - -C "$OUT/lib"
cd "$OUT/lib"
"$VENV/bin/python" - <<'PY'
import torch
import invert_fast as inv
assert inv.built_with_cuda(), "the extension was built without its CUDA kernels"
x = torch.tensor([[0.5, 1.0], [0.1, 1.0], [0.5, 2.0]])
assert inv.rank_doubled(x).tolist() == [[5, 3], [2, 3], [5, 6]]
print(f"CUDA build OK: torch {torch.__version__}, CUDA kernels compiled and linked; GPU present: {torch.cuda.is_available()}")
PY
