#!/usr/bin/env bash
# The main job on the embedded real case: installs, builds, then labels every neuron of ImageNet
# MobileNetV2's penultimate layer (and the logits of Fashion-MNIST-like classes) on real Fashion-MNIST
# images with INVERT formulas, and writes out/demo/labels.csv and out/demo/report.html (--case mnist:
# out/demo-mnist/, --case minilm: out/demo-minilm/).
# Extra arguments go to `python -m invert_fast.apps.demo` (e.g. --case mnist, --samples, --size, --out).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh
exec "$PY" -m invert_fast.apps.demo "$@"
