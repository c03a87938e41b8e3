#!/usr/bin/env bash
# Fetch ONNX Runtime 1.21.0's C/C++ headers (Debian trixie's libonnxruntime-dev, unpacked, not installed)
# and its shared library (from the npm package onnxruntime-node@1.21.0) into deploy/cpp/third_party/
# (git-ignored). Idempotent. FastDeploy's and FastTokenizer's C++ SDKs cannot be obtained here.
set -euo pipefail
cd "$(dirname "$0")"
DEST=third_party/onnxruntime
[ -f "$DEST/lib/libonnxruntime.so" ] && [ -f "$DEST/include/onnxruntime_cxx_api.h" ] && exit 0
DEB_URL=${ORT_DEB_URL:-https://deb.debian.org/debian/pool/main/o/onnxruntime/libonnxruntime-dev_1.21.0+dfsg-1_amd64.deb}
NPM_PKG=${ORT_NPM_PKG:-onnxruntime-node@1.21.0}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "fetch_onnxruntime: headers from $DEB_URL"
curl -fsSL --retry 3 -o "$tmp/dev.deb" "$DEB_URL"
mkdir -p "$tmp/deb" && dpkg -x "$tmp/dev.deb" "$tmp/deb"
echo "fetch_onnxruntime: library from npm $NPM_PKG"
(cd "$tmp" && npm pack --silent "$NPM_PKG" >/dev/null) && tar -xzf "$tmp"/onnxruntime-node-*.tgz -C "$tmp"
mkdir -p "$DEST/include" "$DEST/lib"
inc=$(dirname "$(find "$tmp/deb" -name onnxruntime_cxx_api.h | head -n 1)")
cp -r "$inc"/. "$DEST/include/"
so=$(find "$tmp/package" -path '*linux/x64*' -name 'libonnxruntime.so*' | sort | tail -n 1)
[ -n "$so" ] || { echo "fetch_onnxruntime: no linux x64 libonnxruntime.so in $NPM_PKG" >&2; exit 1; }
cp "$so" "$DEST/lib/"
(cd "$DEST/lib" && base=$(basename "$so") && ln -sf "$base" libonnxruntime.so.1 && ln -sf "$base" libonnxruntime.so)
ls "$DEST/lib" "$DEST/include" | sed 's/^/  /'
