#!/usr/bin/env bash
# Builds the libFuzzer targets (the sanitizer build, build-sanitize/) and runs them.
#   scripts/fuzz.sh                 each target of label fuzz for 30 s (what the test suite does)
#   scripts/fuzz.sh TARGET MINUTES  one target (idx, image, state_dict, spec, settings, sweep) for longer
# A crash leaves its input in build-sanitize/ as crash-*; once fixed, add it to tests/fuzz/corpus/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=30
if [ $# -ge 2 ]; then seconds=$(( $2 * 60 )); fi
scripts/build_sanitized.sh -DFUZZ_SECONDS="$seconds"
cd build-sanitize
if [ $# -ge 1 ]; then
  if [ ! -x "tests/fuzz/fuzz_$1" ]; then echo "fuzz.sh: no fuzz target '$1'" >&2; exit 2; fi
  # Directly, so that libFuzzer's progress and final statistics are shown.
  exec "tests/fuzz/fuzz_$1" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    "corpus/$1" "../tests/fuzz/corpus/$1"
fi
exec ctest --output-on-failure -L '^fuzz$'
