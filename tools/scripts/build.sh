#!/usr/bin/env bash
# build.sh [TARGET...]: installs what is missing, configures build/release once, builds.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/scripts/setup.sh
if [[ ! -f build/release/build.ninja ]]; then
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build/release -j "$(nproc)" "${targets[@]}"
