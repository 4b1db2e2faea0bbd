#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job: `convkit train` with the tutorial's
# defaults (LeNet, 10 epochs, batch 64, Adam 1e-3, seed 1234) on the real FashionMNIST.
# Extra arguments go to `convkit train` (e.g. --model mlp).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh > build.log 2>&1 || { cat build.log; exit 1; }
exec build/convkit train "$@"
