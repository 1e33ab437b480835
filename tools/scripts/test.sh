#!/usr/bin/env bash
# test.sh: every test (tools/test.sh calls this). Installs what is missing, builds, checks the
# format and the docs' links, runs the unit and integration tests (ctest), then builds tls/ and
# capture's file parsers with clang + ASan + UBSan + libFuzzer and runs the tls unit tests and a
# short smoke run of each fuzzer under the sanitizers.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/scripts/build.sh

echo "== format (clang-format-16, the repo's .clang-format)"
bash tools/scripts/format.sh --check

echo "== links (every relative link in README.md, docs/*.md, bench/README.md resolves)"
python3 tools/scripts/linkcheck.py

echo "== unit tests (build/release)"
ctest --test-dir build/release --output-on-failure -j "$(nproc)" --timeout 900 -L unit

# Integration tests start real peers and some assert on timeouts and CPU use: one file at a time.
echo "== integration tests with real peers (build/release)"
ctest --test-dir build/release --output-on-failure --timeout 900 -L integration

echo "== tls/ and capture parsers under ASan+UBSan, fuzz smoke runs (build/fuzz, clang)"
if [[ ! -f build/fuzz/build.ninja ]]; then
  cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DLINESMAN_FUZZ=ON -DLINESMAN_TLS_ONLY=ON >/dev/null
fi
cmake --build build/fuzz -j "$(nproc)"
ctest --test-dir build/fuzz --output-on-failure -j "$(nproc)" --timeout 900
