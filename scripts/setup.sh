#!/usr/bin/env bash
# Create .venv from a CPython 3.9 interpreter and install requirements.txt into it.
# Idempotent: when requirements.txt has not changed since the last install it takes a second.
# Interpreter search order: $PYTHON39, pyenv's 3.9.x, python3.9 on PATH (checked to really be 3.9).
set -euo pipefail
cd "$(dirname "$0")/.."

find_python39() {
  local c
  for c in "${PYTHON39:-}" \
           "$(pyenv prefix 3.9.18 2>/dev/null)/bin/python3.9" \
           $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.9*/bin/python3.9 2>/dev/null | sort -rV) \
           "$(command -v python3.9 2>/dev/null || true)"; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    if "$c" -c 'import sys, venv; sys.exit(0 if sys.version_info[:2] == (3, 9) else 1)' >/dev/null 2>&1; then
      echo "$c"; return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 9) else 1)' 2>/dev/null; then
  if ! PY=$(find_python39); then
    echo "setup: no CPython 3.9 interpreter found." >&2
    echo "  FastDeploy, FastTokenizer and Paddle Lite publish wheels for CPython <= 3.10; the pins are tested on 3.9." >&2
    echo "  Install it (e.g. 'pyenv install 3.9.18', or Debian/Ubuntu 'apt install python3.9 python3.9-venv')," >&2
    echo "  or point PYTHON39 at a python3.9 executable, then run this again." >&2
    exit 1
  fi
  echo "setup: creating .venv with $PY"
  rm -rf .venv
  "$PY" -m venv .venv
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing requirements.txt into .venv (a few minutes the first time)"
  log=$(mktemp)
  if ! .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt >"$log" 2>&1; then
    grep -v "is ignored: it is neither" "$log" >&2; rm -f "$log"; echo "setup: pip install failed" >&2; exit 1
  fi
  rm -f "$log"
  .venv/bin/python -m pip check >/dev/null 2>&1 || { .venv/bin/python -m pip check; echo "setup: pip check failed" >&2; exit 1; }
  .venv/bin/python -c 'import slu, paddle, paddlenlp, paddleslim, fastdeploy, paddlelite, onnxruntime, fastapi, prometheus_client' \
    || { echo "setup: the installed packages do not import" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
# The repository on the venv's import path (what `pip install -e .` does): `import slu` works from every entry
# script (deploy/, benchmarks/, scripts/) without sys.path edits. Rewritten each time, so a moved clone works.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ "$(cat "$site/ernie_tiny_slu.pth" 2>/dev/null)" != "$(pwd)" ]; then  # atomically: tests run Python meanwhile
  pwd > "$site/ernie_tiny_slu.pth.tmp" && mv "$site/ernie_tiny_slu.pth.tmp" "$site/ernie_tiny_slu.pth"
fi
