#!/usr/bin/env bash
# The system tools the tests and the C++/Java demos need (compilers, JDK, valgrind, npm for ONNX Runtime's C++
# library, the aarch64 cross compiler and qemu for the ARM builds), installed with apt-get when a command is missing. Run as root (CI is); otherwise it says what to
# install. Idempotent: with everything there it only checks.
set -euo pipefail
declare -A PACKAGE=([g++]=g++ [cmake]=cmake [make]=make [javac]=openjdk-17-jdk-headless [valgrind]=valgrind
                    [curl]=curl [npm]=npm [dpkg-deb]=dpkg [xz]=xz-utils [git]=git
                    [aarch64-linux-gnu-g++]=g++-aarch64-linux-gnu [qemu-aarch64-static]=qemu-user-static)
missing=()
for tool in "${!PACKAGE[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${PACKAGE[$tool]}")
done
[ -f /usr/include/valgrind/callgrind.h ] || missing+=(valgrind)
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "system_packages: missing ${missing[*]}; install them (Debian/Ubuntu: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "system_packages: apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
