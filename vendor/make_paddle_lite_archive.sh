#!/usr/bin/env bash
# How vendor/paddle-lite-v2.13-rc-102697b.tar.xz was made: the files of Paddle-Lite's tag v2.13-rc (commit 102697b)
# that its tiny-publish armv8 light-API build reads (no gflags, glog, googletest, protobuf or pybind submodules;
# no docs, demos or CI files), from a clone of https://github.com/PaddlePaddle/Paddle-Lite:
#   bash vendor/make_paddle_lite_archive.sh /path/to/Paddle-Lite/.git
# It rewrites the archive; scripts/build_lite_arm.sh pins its sha256 (the same bytes again here, git 2.39 and xz 5.4.1).
set -euo pipefail
GIT_DIR=${1:?usage: make_paddle_lite_archive.sh PADDLE_LITE_GIT_DIR}
COMMIT=102697b54f58bbc775f82945c14cf7f16027ddd4
OUT=$(cd "$(dirname "$0")" && pwd)/paddle-lite-v2.13-rc-102697b.tar.xz
git --git-dir="$GIT_DIR" archive --format=tar --prefix=Paddle-Lite/ "$COMMIT" -- \
    CMakeLists.txt LICENSE cmake lite third-party/flatbuffers | xz -T1 -6 > "$OUT"
sha256sum "$OUT"
