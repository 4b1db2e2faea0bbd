#!/usr/bin/env bash
# Installs the Debian packages convkit needs to build, test and run. Safe to run again:
# it only asks apt for what is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config time iproute2 procps
  libtorch-dev libgloo-dev libopenblas0-pthread zlib1g-dev
  libcli11-dev nlohmann-json3-dev libstb-dev libturbojpeg0-dev libpng-dev
  libgtest-dev clang libfuzzer-14-dev libclang-rt-14-dev
  dataset-fashion-mnist
  libplplot-dev plplot-driver-cairo
  libonnx-dev libprotobuf-dev python3-onnx
  libopencv-dnn-dev libopencv-imgcodecs-dev python3-opencv
  python3-torch python3-torchvision python3-pil
  chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -q "${missing[@]}"
