#!/usr/bin/env bash
# Fetch ONNX Runtime (once) and build infer_demo, slu_bench, slu_chars and slu_golden (the last two for the tests);
# prints the paths of slu_bench and infer_demo, infer_demo last.
# BUILD_DIR (default deploy/cpp/build), ASAN=1 for a sanitizer build, BUILD_TYPE (default Release), JOBS
# (default 2), PYTHON: the Python 3.9 that generates the tokenizer's Unicode tables (default: the repo's .venv).
set -euo pipefail
cd "$(dirname "$0")"
bash fetch_onnxruntime.sh
BUILD_DIR=${BUILD_DIR:-build}
args=(-DSLU_ASAN="${ASAN:-0}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}")
[ -z "${PYTHON:-}" ] || args+=(-DPython="$PYTHON")
cmake -S . -B "$BUILD_DIR" "${args[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-2}" >/dev/null
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
echo "$BUILD_DIR/slu_bench"
echo "$BUILD_DIR/infer_demo"
