#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit, end-to-end on the real
# FashionMNIST, parity with the Python tutorial, the full default run).
# Pass ctest arguments to narrow it, e.g. `scripts/test.sh -LE slow` for the fast tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
# The readers under libFuzzer with ASan and UBSan (a clang build of their own), unless a subset
# of the tests was asked for.
if [ $# -eq 0 ]; then scripts/fuzz.sh; fi
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
