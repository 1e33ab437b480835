#!/usr/bin/env bash
# test.sh: every test (tools/test.sh calls this). Installs what is missing, builds, checks the
# format and the docs' links, runs the unit and integration tests (ctest), then builds tls/ and
# capture's file parsers with clang + ASan + UBSan + libFuzzer and runs the tls unit tests and a
# short smoke run of each fuzzer under the sanitizers. The integration suite also runs against an
# ASan+UBSan build of the whole binary (build/asan).
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

# The whole binary under ASan+UBSan, driven by the same integration suite: a sanitizer report
# aborts linesman (the test fails) or lands in build/asan/reports (this stage fails).
echo "== integration tests against an ASan+UBSan build of the whole binary (build/asan)"
if [[ ! -f build/asan/build.ninja ]]; then
  cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLINESMAN_SANITIZE=ON \
    -DLINESMAN_TESTS=OFF -DLINESMAN_BENCH=OFF >/dev/null
fi
cmake --build build/asan -j "$(nproc)" --target linesman
rm -rf build/asan/reports && mkdir -p build/asan/reports
ASAN_OPTIONS="log_path=$PWD/build/asan/reports/asan:detect_leaks=1" \
  UBSAN_OPTIONS="log_path=$PWD/build/asan/reports/ubsan:print_stacktrace=1" \
  LINESMAN_SANITIZED=1 LINESMAN_BIN="$PWD/build/asan/tools/linesman" \
  LINESMAN_TEST_DATA="$PWD/tests/data" PYTHONDONTWRITEBYTECODE=1 \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration
if compgen -G "build/asan/reports/*" >/dev/null; then
  echo "sanitizer reports:" && cat build/asan/reports/* && exit 1
fi

echo "== tls/ and capture parsers under ASan+UBSan, fuzz smoke runs (build/fuzz, clang)"
if [[ ! -f build/fuzz/build.ninja ]]; then
  cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DLINESMAN_FUZZ=ON -DLINESMAN_TLS_ONLY=ON >/dev/null
fi
cmake --build build/fuzz -j "$(nproc)"
ctest --test-dir build/fuzz --output-on-failure -j "$(nproc)" --timeout 900
