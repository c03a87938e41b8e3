#!/usr/bin/env bash
# Fetch the runtime (once, cached) and build the C++ programs; prints the paths of the runtime's programs, the demo
# last: RUNTIME=ort (default): slu_bench, infer_demo; RUNTIME=lite: lite_demo. slu_chars and slu_golden (for the
# tests) are built beside them.
# ARCH: x86_64 or aarch64 (default: this machine's; aarch64 on another machine cross-compiles with Debian's
# g++-aarch64-linux-gnu, and the programs run under qemu-aarch64-static -L /usr/aarch64-linux-gnu). RUNTIME=lite is
# aarch64 only (Paddle Lite's armv8 light API, scripts/build_lite_arm.sh).
# BUILD_DIR (default deploy/cpp/build), ASAN=1 for a sanitizer build, BUILD_TYPE (default Release), JOBS
# (default 2), PYTHON: the Python 3.12 that generates the tokenizer's Unicode tables (default: the repo's .venv).
set -euo pipefail
cd "$(dirname "$0")"
ARCH=${ARCH:-$(uname -m)}
RUNTIME=${RUNTIME:-ort}
BUILD_DIR=${BUILD_DIR:-build}
args=(-DSLU_ASAN="${ASAN:-0}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" -DSLU_RUNTIME="$RUNTIME")
case "$RUNTIME" in
  ort) args+=(-DORT_DIR="$(bash fetch_onnxruntime.sh "$ARCH" | tail -n 1)"); programs=(slu_bench infer_demo) ;;
  lite)
    [ "$ARCH" = aarch64 ] || { echo "build.sh: RUNTIME=lite needs ARCH=aarch64 (Paddle Lite's armv8 build)" >&2; exit 1; }
    args+=(-DLITE_DIR="$(bash ../../scripts/build_lite_arm.sh | tail -n 1)"); programs=(lite_demo) ;;
  *) echo "build.sh: RUNTIME must be ort or lite, not '$RUNTIME'" >&2; exit 1 ;;
esac
if [ "$ARCH" != "$(uname -m)" ]; then
  [ -f "$ARCH-linux-gnu.cmake" ] || { echo "build.sh: cannot cross-compile for $ARCH" >&2; exit 1; }
  args+=(-DCMAKE_TOOLCHAIN_FILE="$PWD/$ARCH-linux-gnu.cmake")
fi
[ -z "${PYTHON:-}" ] || args+=(-DPython="$PYTHON")
cmake -S . -B "$BUILD_DIR" "${args[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-2}" >/dev/null
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
for p in "${programs[@]}"; do echo "$BUILD_DIR/$p"; done
