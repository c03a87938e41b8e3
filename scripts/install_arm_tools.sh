#!/usr/bin/env bash
# The ARM tool chain the tests use: Debian's aarch64 cross compiler and qemu's user-mode emulator (as root, through
# apt-get; nothing to do when both are there). scripts/test.sh runs it.
set -euo pipefail
if command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64-static >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install_arm_tools: run as root, or: sudo apt-get install -y g++-aarch64-linux-gnu qemu-user-static" >&2
  exit 1
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q g++-aarch64-linux-gnu qemu-user-static
