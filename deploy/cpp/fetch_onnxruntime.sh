#!/usr/bin/env bash
# ONNX Runtime 1.21.0 for the C++ demo, for x86_64 (default) or aarch64: its C/C++ headers (Debian trixie's
# libonnxruntime-dev, unpacked with dpkg -x, not installed) and libonnxruntime.so.1.21.0 (x86_64: the npm package
# onnxruntime-node@1.21.0; aarch64: PyPI's onnxruntime 1.21.0 manylinux_2_28_aarch64 wheel, whose library does not
# depend on the Python version of its tag). Every download's sha256 is checked; downloads and the unpacked result
# are cached outside the repository and reused offline:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/ernie-tiny-slu/onnxruntime-1.21.0/<arch>/{include,lib}
# Prints that directory (last line). Usage: fetch_onnxruntime.sh [x86_64|aarch64]. ORT_CACHE_DIR: another root.
# FastDeploy's and FastTokenizer's C++ SDKs cannot be obtained here.
set -euo pipefail
ARCH=${1:-x86_64}
VERSION=1.21.0
CACHE=${ORT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ernie-tiny-slu}/onnxruntime-$VERSION
DEST=$CACHE/$ARCH
DEB=libonnxruntime-dev_1.21.0+dfsg-1_amd64.deb
DEB_URL=https://deb.debian.org/debian/pool/main/o/onnxruntime/$DEB
DEB_SHA256=14f7d959d5deacbcf1504830d4189f91fc67382b399ed9ae9d3aa9c4050ced08
NPM=onnxruntime-node-1.21.0.tgz  # npm's own integrity (sha512) of this file was checked when it was pinned
NPM_SHA256=c711a4048a8b460a70de25a5008b1628e3773878ef9deec1dd4a4ccab46de01a
WHEEL=onnxruntime-1.21.0-cp310-cp310-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl
WHEEL_SHA256=635d4ab13ae0f150dd4c6ff8206fd58f1c6600636ecc796f6f0c42e4c918585b

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
  case "$ARCH" in
    x86_64)
      pkg=$(fetch "$NPM" "$NPM_SHA256" npm pack --silent onnxruntime-node@$VERSION)
      tar -xzf "$pkg" -C "$tmp" package/bin/napi-v3/linux/x64/libonnxruntime.so.$VERSION
      cp "$tmp/package/bin/napi-v3/linux/x64/libonnxruntime.so.$VERSION" "$tmp/dest/lib/" ;;
    aarch64)
      pkg=$(fetch "$WHEEL" "$WHEEL_SHA256" pip download -q --no-deps --only-binary=:all: \
            --platform manylinux_2_28_aarch64 --python-version 310 onnxruntime==$VERSION -d .)
      python3 -c 'import sys, zipfile; open(sys.argv[3], "wb").write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
        "$pkg" onnxruntime/capi/libonnxruntime.so.$VERSION "$tmp/dest/lib/libonnxruntime.so.$VERSION" ;;
    *) die "unknown architecture '$ARCH': x86_64 or aarch64" ;;
  esac
  (cd "$tmp/dest/lib" && ln -sf libonnxruntime.so.$VERSION libonnxruntime.so.1 \
     && ln -sf libonnxruntime.so.$VERSION libonnxruntime.so)
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock" && flock 9  # one fetch at a time (parallel test workers, two builds)
if [ ! -f "$DEST/lib/libonnxruntime.so.$VERSION" ] || [ ! -f "$DEST/include/onnxruntime_cxx_api.h" ]; then
  [ "$ARCH" = x86_64 ] || [ "$ARCH" = aarch64 ] || die "unknown architecture '$ARCH': x86_64 or aarch64"
  tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/dest/include" "$tmp/dest/lib"
  headers
  library
  rm -rf "$DEST" && mv "$tmp/dest" "$DEST"
fi
echo "$DEST"
