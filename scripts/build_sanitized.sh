#!/usr/bin/env bash
# Configures and builds the sanitizer build into build-sanitize/: the library, the unit tests and
# the libFuzzer targets, compiled by clang with AddressSanitizer and UndefinedBehaviorSanitizer.
# The build's output goes to build-sanitize.log, shown only when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
log=build-sanitize.log
if ! { CXX=clang++ cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVKIT_SANITIZE=ON "$@" &&
       cmake --build build-sanitize --parallel "$(nproc)"; } > "$log" 2>&1; then
  tail -n 60 "$log"
  echo "build_sanitized.sh: the sanitizer build failed (whole log: $log)" >&2
  exit 1
fi
