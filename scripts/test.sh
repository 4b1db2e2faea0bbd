#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit, end-to-end on the real
# FashionMNIST, parity with the Python tutorial, the full default run).
# Pass ctest arguments to narrow it, e.g. `scripts/test.sh -LE slow` for the fast tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
