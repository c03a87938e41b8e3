#!/usr/bin/env bash
# ONNX Runtime for the C++ demo, for x86_64 (default) or aarch64.
#   x86_64: libonnxruntime.so.1.32.0 from PyPI's onnxruntime 1.32.0 manylinux_2_28 wheel, the very file the Python
#           environment's onnxruntime loads (the library does not depend on the Python version of the wheel's tag).
#   aarch64: libonnxruntime.so.1.21.0 from PyPI's 1.21.0 aarch64 wheel: 1.32.0's aarch64 library crashes under
#           qemu-aarch64 here (SIGSEGV on the first session; not tried on a real board), 1.21.0's runs.
# Both are compiled against the C/C++ headers of Debian trixie's libonnxruntime-dev 1.21.0 (unpacked with dpkg -x,
# not installed): no registry reachable here ships 1.32's headers, and ONNX Runtime's C API is versioned, so a
# program built on API 21 runs on 1.32's library unchanged. Every download's sha256 is checked; downloads and the
# unpacked result are cached outside the repository and reused offline:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/ernie-tiny-slu/onnxruntime-<version>/<arch>/{include,lib}
# Prints that directory (last line). Usage: fetch_onnxruntime.sh [x86_64|aarch64]. ORT_CACHE_DIR: another root.
# FastDeploy's and FastTokenizer's C++ SDKs cannot be obtained here.
set -euo pipefail
ARCH=${1:-x86_64}
case "$ARCH" in
  x86_64) VERSION=1.32.0 WHEEL=onnxruntime-1.32.0-cp312-cp312-manylinux_2_28_x86_64.whl PY_TAG=312
          WHEEL_SHA256=99e1074c4b2197accd5073052a465361be17b89c093b8ffb6e6bd8f986c52df8 ;;
  aarch64) VERSION=1.21.0 WHEEL=onnxruntime-1.21.0-cp310-cp310-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl PY_TAG=310
           WHEEL_SHA256=635d4ab13ae0f150dd4c6ff8206fd58f1c6600636ecc796f6f0c42e4c918585b ;;
  *) echo "fetch_onnxruntime: unknown architecture '$ARCH': x86_64 or aarch64" >&2; exit 1 ;;
esac
CACHE=${ORT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ernie-tiny-slu}/onnxruntime-$VERSION
DEST=$CACHE/$ARCH
DEB=libonnxruntime-dev_1.21.0+dfsg-1_amd64.deb  # headers only: the same on every architecture
DEB_URL=https://deb.debian.org/debian/pool/main/o/onnxruntime/$DEB
DEB_SHA256=14f7d959d5deacbcf1504830d4189f91fc67382b399ed9ae9d3aa9c4050ced08

die() { echo "fetch_onnxruntime: $*" >&2; exit 1; }

# Downloads $1 into the cache with command $3..., unless a copy with sha256 $2 is there; checks the sha256.
fetch() {
  local name=$1 sha=$2 dl=$CACHE/downloads
  shift 2
  mkdir -p "$dl"
  if ! echo "$sha  $dl/$name" | sha256sum -c --quiet - >/dev/null 2>&1; then
    echo "fetch_onnxruntime: downloading $name" >&2
    rm -f "$dl/$name"
    (cd "$dl" && "$@") >&2 || die "could not download $name (offline? the cache $dl has no copy)"
  fi
  echo "$sha  $dl/$name" | sha256sum -c --quiet - || die "$dl/$name: sha256 mismatch (expected $sha)"
  echo "$dl/$name"
}

headers() {
  local deb
  deb=$(fetch "$DEB" "$DEB_SHA256" curl -fsSL --retry 3 -o "$DEB" "$DEB_URL")
  dpkg -x "$deb" "$tmp/deb"
  cp -r "$(dirname "$(find "$tmp/deb" -name onnxruntime_cxx_api.h | head -n 1)")"/. "$tmp/dest/include/"
}

library() {
  local pkg
  pkg=$(fetch "$WHEEL" "$WHEEL_SHA256" pip download -q --no-deps --only-binary=:all: \
        --platform "manylinux_2_28_$ARCH" --python-version "$PY_TAG" onnxruntime==$VERSION -d .)
  python3 -c 'import sys, zipfile; open(sys.argv[3], "wb").write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
    "$pkg" onnxruntime/capi/libonnxruntime.so.$VERSION "$tmp/dest/lib/libonnxruntime.so.$VERSION"
  (cd "$tmp/dest/lib" && ln -sf libonnxruntime.so.$VERSION libonnxruntime.so.1 \
     && ln -sf libonnxruntime.so.$VERSION libonnxruntime.so)
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock" && flock 9  # one fetch at a time (parallel test workers, two builds)
if [ ! -f "$DEST/lib/libonnxruntime.so.$VERSION" ] || [ ! -f "$DEST/include/onnxruntime_cxx_api.h" ]; then
  tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/dest/include" "$tmp/dest/lib"
  headers
  library
  rm -rf "$DEST" && mv "$tmp/dest" "$DEST"
fi
echo "$DEST"
