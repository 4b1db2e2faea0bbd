#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit, also under the
# sanitizers, fuzzing, end-to-end on the real FashionMNIST, parity with the Python tutorial,
# the full default run).
# Pass ctest arguments to narrow it, e.g. `scripts/test.sh -LE slow` for the fast tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
# Unless a subset of the tests was asked for: the unit tests under ASan and UBSan, then each
# reader under libFuzzer (one clang build of their own, build-sanitize/).
if [ $# -eq 0 ]; then
  scripts/sanitize.sh
  scripts/fuzz.sh
fi
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
