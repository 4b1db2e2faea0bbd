#!/usr/bin/env bash
# Runs the unit tests under AddressSanitizer and UndefinedBehaviorSanitizer (build-sanitize/):
# any report fails the test that caused it. Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build_sanitized.sh
export ASAN_OPTIONS=abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
cd build-sanitize
ctest --output-on-failure -j "$(nproc)" -L '^unit$' "$@"
