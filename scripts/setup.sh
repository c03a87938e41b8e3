#!/usr/bin/env bash
# The project's two Python environments, each from its own interpreter, pinned and locked:
#   .venv         CPython 3.12: requirements.txt (Paddle 3, PaddleNLP, PaddleSlim, ONNX Runtime, the server, tests)
#   .venv-legacy  CPython 3.9:  requirements-legacy.txt (FastDeploy 1.0.7 and Paddle Lite 2.13rc0's Python
#                 package, which publish wheels for CPython <= 3.10 only, on the Paddle 2.6 they were built with)
# The commands that need the second one start it themselves (slu/envs.py). Each install resolves against its
# .lock file (every transitive version pinned), so a later install gets the same packages.
# Idempotent: when neither file of an environment changed since its last install it takes a second.
# Interpreters: $PYTHON312 / $PYTHON39, pyenv's 3.12.x / 3.9.x, python3.12 / python3.9 on PATH (each checked).
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {  # find_python 3.12 PYTHON312
  local version=$1 override=${!2:-} c
  for c in "$override" \
           $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python"$version" 2>/dev/null | sort -rV) \
           "$(command -v python"$version" 2>/dev/null || true)"; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    if "$c" -c "import sys, venv; sys.exit(0 if '%d.%d' % sys.version_info[:2] == '$version' else 1)" \
        >/dev/null 2>&1; then
      echo "$c"; return 0
    fi
  done
  return 1
}

venv_ok() {  # venv_ok DIR VERSION: DIR is a venv of that CPython
  [ -x "$1/bin/python" ] && "$1/bin/python" -c \
    "import sys; sys.exit(0 if '%d.%d' % sys.version_info[:2] == '$2' else 1)" 2>/dev/null
}

# interpreter DIR VERSION OVERRIDE_VAR WHY: the CPython to make DIR from ("" when DIR is already made), or exit 1
# with what to install; both environments are checked before either is installed
interpreter() {
  local dir=$1 version=$2 var=$3 why=$4
  venv_ok "$dir" "$version" && return 0
  find_python "$version" "$var" && return 0
  echo "setup: no CPython $version interpreter found for $dir ($why)." >&2
  echo "  Install it (e.g. 'pyenv install $version', or Debian/Ubuntu 'apt install python$version python$version-venv')," >&2
  echo "  or point $var at a python$version executable, then run this again." >&2
  exit 1
}

# make_env DIR INTERPRETER REQUIREMENTS LOCK IMPORTS
make_env() {
  local dir=$1 py=$2 requirements=$3 lock=$4 imports=$5
  if [ -n "$py" ]; then
    echo "setup: creating $dir with $py"
    rm -rf "$dir"
    "$py" -m venv "$dir"
  fi
  local stamp="$dir/.requirements.sha256" want
  want=$(cat "$requirements" "$lock" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing $requirements into $dir (a few minutes the first time)"
    local log
    log=$(mktemp)
    if ! "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" -c "$lock" >"$log" 2>&1; then
      grep -v "is ignored: it is neither" "$log" >&2; rm -f "$log"; echo "setup: pip install failed in $dir" >&2; exit 1
    fi
    rm -f "$log"
    "$dir/bin/python" -m pip check >/dev/null 2>&1 || { "$dir/bin/python" -m pip check; echo "setup: pip check failed in $dir" >&2; exit 1; }
    "$dir/bin/python" -c "import $imports" || { echo "setup: the packages installed in $dir do not import" >&2; exit 1; }
    echo "$want" > "$stamp"
  fi
  # The repository on the venv's import path (what `pip install -e .` does): `import slu` works from every entry
  # script (deploy/, benchmarks/, scripts/) without sys.path edits. Rewritten each time, so a moved clone works.
  local site
  site=$("$dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  if [ "$(cat "$site/ernie_tiny_slu.pth" 2>/dev/null)" != "$(pwd)" ]; then  # atomically: tests run Python meanwhile
    pwd > "$site/ernie_tiny_slu.pth.tmp" && mv "$site/ernie_tiny_slu.pth.tmp" "$site/ernie_tiny_slu.pth"
  fi
}

PY_DEFAULT=$(interpreter .venv 3.12 PYTHON312 "the default environment: Paddle 3 and all but FastDeploy and Paddle Lite")
PY_LEGACY=$(interpreter .venv-legacy 3.9 PYTHON39 "FastDeploy and Paddle Lite publish wheels for CPython <= 3.10 only")
make_env .venv "$PY_DEFAULT" requirements.txt requirements.lock \
  "slu, paddle, paddlenlp, paddleslim, paddle2onnx, onnxruntime, tokenizers, fastapi, uvicorn, prometheus_client"
make_env .venv-legacy "$PY_LEGACY" requirements-legacy.txt requirements-legacy.lock \
  "slu, paddle, paddlenlp, paddleslim, fastdeploy, paddlelite, fast_tokenizer, tokenizers, fastapi"
# Training on NVIDIA GPUs: Paddle's CUDA build instead of the CPU one. NOT VERIFIED on this project's machines
# (they have no GPU). After `bash scripts/setup.sh`:
#   .venv/bin/pip uninstall -y paddlepaddle && .venv/bin/pip install -r requirements-gpu.txt
# then train with GPUS=0 (one GPU) or GPUS=0,1,2,3 (data parallel): see docs/distributed.md.
