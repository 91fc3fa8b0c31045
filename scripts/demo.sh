#!/usr/bin/env bash
# The main job on the embedded real case: installs, builds, then labels every neuron of a trained
# MNIST CNN with exact AUROC against digit concepts. Extra arguments go to `python -m invert_fast.demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m invert_fast.demo "$@"
