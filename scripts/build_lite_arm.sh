#!/usr/bin/env bash
# Build Paddle Lite's light API for armv8 Linux (libpaddle_light_api_shared.so and its C++ headers) from the
# vendored source (vendor/, Paddle-Lite v2.13-rc, the release of requirements-legacy.txt's paddlelite==2.13rc0 that writes
# the .nb files), with Debian's aarch64 cross compiler (g++-aarch64-linux-gnu). Upstream's tiny publish:
# lite/tools/build_linux.sh --arch=armv8 --toolchain=gcc --with_extra=ON --with_exception=ON; it downloads nothing.
# The archive's sha256 is checked; the result is cached outside the repository and reused offline:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/ernie-tiny-slu/paddle-lite-<commit>-armv8/{include,lib}
# Prints that directory (last line). JOBS (default 2) build threads; LITE_CACHE_DIR another cache root.
# On a real aarch64 board (Debian/Ubuntu arm64, where aarch64-linux-gnu-g++ is the native compiler) the same
# command builds natively, and the programs run without qemu.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMMIT=102697b54f58bbc775f82945c14cf7f16027ddd4  # tag v2.13-rc
ARCHIVE=${LITE_ARCHIVE:-$ROOT/vendor/paddle-lite-v2.13-rc-102697b.tar.xz}  # LITE_ARCHIVE: a copy elsewhere (the same sha256)
ARCHIVE_SHA256=4ac4d33cac8a996cc0b7fffef7080d0c46433a0324264d52f70512c6f2b4735e
OPTIONS="--arch=armv8 --toolchain=gcc --with_extra=ON --with_exception=ON"
CACHE=${LITE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ernie-tiny-slu}
DEST=$CACHE/paddle-lite-${COMMIT:0:7}-armv8
LIB=lib/libpaddle_light_api_shared.so

die() { echo "build_lite_arm: $*" >&2; exit 1; }

# The cached build is reused when its record names this archive and these options and its library's sha256 holds.
cached() {
  [ -f "$DEST/BUILD_INFO" ] && [ -f "$DEST/$LIB" ] || return 1
  grep -qx "archive_sha256 $ARCHIVE_SHA256" "$DEST/BUILD_INFO" && grep -qx "options $OPTIONS" "$DEST/BUILD_INFO" \
    || return 1
  grep -qx "lib_sha256 $(sha256sum "$DEST/$LIB" | cut -d' ' -f1)" "$DEST/BUILD_INFO" \
    || die "$DEST/$LIB does not match its recorded sha256: remove $DEST and run again"
}

check_tools() {
  local t missing=()
  for t in aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ cmake make git python3 xz sha256sum; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: install them (as root: bash scripts/system_packages.sh)"
}

build() {
  [ -f "$ARCHIVE" ] || die "$ARCHIVE not found"
  echo "$ARCHIVE_SHA256  $ARCHIVE" | sha256sum -c --quiet - || die "$ARCHIVE: sha256 mismatch"
  mkdir -p "$CACHE"
  work=$(mktemp -d "$CACHE/paddle-lite-build.XXXXXX")  # global: the EXIT trap removes it
  trap 'rm -rf "$work"' EXIT
  tar -xJf "$ARCHIVE" -C "$work"
  echo "build_lite_arm: building Paddle Lite ${COMMIT:0:7} ($OPTIONS) in $work, ${JOBS:-2} threads" >&2
  local start=$SECONDS
  (cd "$work/Paddle-Lite" && LITE_BUILD_THREADS=${JOBS:-2} ./lite/tools/build_linux.sh $OPTIONS) \
    > "$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; die "build failed (log above)"; }
  local out=$work/Paddle-Lite/build.lite.linux.armv8.gcc/inference_lite_lib.armlinux.armv8/cxx
  [ -f "$out/$LIB" ] || die "the build wrote no $LIB"
  mkdir -p "$work/dest"
  cp -r "$out/include" "$out/lib" "$work/dest/"
  { echo "commit $COMMIT"; echo "archive_sha256 $ARCHIVE_SHA256"; echo "options $OPTIONS"
    echo "lib_sha256 $(sha256sum "$work/dest/$LIB" | cut -d' ' -f1)"; echo "build_seconds $((SECONDS - start))"
  } > "$work/dest/BUILD_INFO"
  rm -rf "$DEST" && mv "$work/dest" "$DEST"
  echo "build_lite_arm: built in $((SECONDS - start)) s" >&2
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lite-build.lock" && flock 9  # one build at a time (parallel test workers)
if ! cached; then
  check_tools
  build
fi
echo "$DEST"
