#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into build-fuzz/ and runs them.
#   scripts/fuzz.sh                 the targets of label fuzz for 30 s each (what the test suite does)
#   scripts/fuzz.sh TARGET MINUTES  one target (idx, image) for longer
# A crash leaves its input in build-fuzz/ as crash-*; add it to tests/fuzz/corpus/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=30
if [ $# -ge 2 ]; then seconds=$(( $2 * 60 )); fi
scripts/setup.sh > /dev/null
CXX=clang++ cmake -S tests/fuzz -B build-fuzz -G Ninja -DFUZZ_SECONDS="$seconds" > build-fuzz.log
cmake --build build-fuzz >> build-fuzz.log || { cat build-fuzz.log; exit 1; }
cd build-fuzz
if [ $# -ge 1 ]; then
  # Directly, so that libFuzzer's progress and final statistics are shown.
  mkdir -p "corpus/$1"
  exec "./fuzz_$1" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    "corpus/$1" "../tests/fuzz/corpus/$1"
fi
# Each target of the suite's label; fuzz_image is not among them (see tests/fuzz/CMakeLists.txt).
exec ctest --output-on-failure -L '^fuzz$'
