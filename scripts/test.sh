#!/usr/bin/env bash
# The whole test suite, set-up included. Extra arguments go to pytest: bash scripts/test.sh -k reader;
# bash scripts/test.sh -m fast runs the quick subset (no corpus, no C++/Java build).
set -euo pipefail
bash "$(dirname "$0")/system_packages.sh"   # compilers, JDK, valgrind, npm, aarch64 cross compiler, qemu (apt-get)
bash "$(dirname "$0")/setup.sh"
source "$(dirname "$0")/common.sh"
export PPNLP_HOME=$(mktemp -d)   # empty PaddleNLP cache: nothing may come from a hub
# Two worker processes (pytest-xdist), a test file each at a time: most tests use one core. TEST_WORKERS=0 runs
# the suite in this process.
exec "$PY" -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
