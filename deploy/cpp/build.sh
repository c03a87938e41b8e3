#!/usr/bin/env bash
# Fetch ONNX Runtime (once) and build infer_demo. BUILD_DIR (default deploy/cpp/build), ASAN=1 for a
# sanitizer build.
set -euo pipefail
cd "$(dirname "$0")"
bash fetch_onnxruntime.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DSLU_ASAN="${ASAN:-0}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" >/dev/null
cmake --build "$BUILD_DIR" -j 2 >/dev/null
echo "$(pwd)/$BUILD_DIR/infer_demo"
