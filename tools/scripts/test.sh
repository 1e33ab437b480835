#!/usr/bin/env bash
# test.sh: every test (tools/test.sh calls this). Installs what is missing, builds, checks the
# format and the docs' links, runs the unit and integration tests (ctest), then builds tls/ and
# capture's file parsers with clang + ASan + UBSan + libFuzzer and runs the tls unit tests and a
# short smoke run of each fuzzer under the sanitizers. The integration suite also runs against an
# ASan+UBSan build of the whole binary (build/asan), its multi-threaded files against a
# ThreadSanitizer build (build/tsan), and a 2-minute soak runs (tools/soak.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/scripts/build.sh

echo "== [${SECONDS} s] format (clang-format-16, the repo's .clang-format)"
bash tools/scripts/format.sh --check

echo "== [${SECONDS} s] links (every relative link in README.md, docs/*.md, bench/README.md resolves)"
python3 tools/scripts/linkcheck.py

echo "== [${SECONDS} s] unit tests (build/release)"
ctest --test-dir build/release --output-on-failure -j "$(nproc)" --timeout 900 -L unit

# Integration tests start real peers and some assert on timeouts and CPU use: one file at a time.
echo "== [${SECONDS} s] integration tests with real peers (build/release)"
ctest --test-dir build/release --output-on-failure --timeout 900 -L integration

# The admin page in a headless Chromium (tests/browser, docs/live-view.md): once, against the
# release build; one browser for the module. Screenshots land in build/release/browser-shots.
# setup.sh installed Chromium, so a missing browser fails here instead of skipping.
echo "== [${SECONDS} s] admin page in headless Chromium (build/release)"
LINESMAN_REQUIRE_BROWSER=1 ctest --test-dir build/release --output-on-failure --timeout 300 -L browser

# The whole binary under ASan+UBSan, driven by the same integration suite: a sanitizer report
# aborts linesman (the test fails) or lands in build/asan/reports (this stage fails). -O1 -g1, as
# for TSan below: the -O2 -g build was most of this stage's time (about 420 s of 600 on 2 cores).
# The sanitizer builds are unity builds (a few files per compiler run, so Asio and the other
# headers are parsed once per batch): 198 s instead of 362 s for this one on 2 cores.
echo "== [${SECONDS} s] integration tests against an ASan+UBSan build of the whole binary (build/asan)"
if [[ ! -f build/asan/build.ninja ]]; then
  cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DLINESMAN_SANITIZE=ON -DCMAKE_UNITY_BUILD=ON \
    -DLINESMAN_TESTS=OFF -DLINESMAN_BENCH=OFF >/dev/null
fi
cmake --build build/asan -j "$(nproc)" --target linesman
rm -rf build/asan/reports && mkdir -p build/asan/reports
ASAN_OPTIONS="log_path=$PWD/build/asan/reports/asan:detect_leaks=1" \
  UBSAN_OPTIONS="log_path=$PWD/build/asan/reports/ubsan:print_stacktrace=1" \
  LINESMAN_SANITIZED=1 LINESMAN_BIN="$PWD/build/asan/tools/linesman" \
  LINESMAN_TEST_DATA="$PWD/tests/data" PYTHONDONTWRITEBYTECODE=1 \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider --durations=15 tests/integration
if compgen -G "build/asan/reports/*" >/dev/null; then
  echo "sanitizer reports:" && cat build/asan/reports/* && exit 1
fi

# The whole binary under ThreadSanitizer, driven by the integration files whose linesman runs
# several threads at once: 2 worker threads (LINESMAN_THREADS), the log sink's writer, the live
# registry and the ring of recent records read by the admin API's thread, and reloads from the
# signal thread. GCC's TSan (the
# same runtime as clang's): Debian's clang 14 cannot build the whole binary (Asio 1.22 finds no
# coroutines with libstdc++ under clang, and tools/doctor uses C++20 that clang 14 refuses).
# -O1 -g1 keeps the build short; a report lands in build/tsan/reports (this stage fails). The
# big-body test measures RSS, which TSan's shadow memory inflates; it has nothing threaded.
echo "== [${SECONDS} s] multi-threaded integration tests against a ThreadSanitizer build (build/tsan)"
if [[ ! -f build/tsan/build.ninja ]]; then
  cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DLINESMAN_TSAN=ON -DCMAKE_UNITY_BUILD=ON \
    -DLINESMAN_TESTS=OFF -DLINESMAN_BENCH=OFF >/dev/null
fi
cmake --build build/tsan -j "$(nproc)" --target linesman
rm -rf build/tsan/reports && mkdir -p build/tsan/reports
TSAN_OPTIONS="log_path=$PWD/build/tsan/reports/tsan:second_deadlock_stack=1:suppressions=$PWD/tools/scripts/tsan.supp" \
  LINESMAN_SANITIZED=1 LINESMAN_THREADS=2 LINESMAN_BIN="$PWD/build/tsan/tools/linesman" \
  LINESMAN_TEST_DATA="$PWD/tests/data" PYTHONDONTWRITEBYTECODE=1 \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration/test_reload.py \
  tests/integration/test_admin.py tests/integration/test_lifecycle.py \
  tests/integration/test_hostile_admin.py tests/integration/test_forwarding.py \
  tests/integration/test_admin_records.py \
  --deselect tests/integration/test_hostile_admin.py::test_admin_big_body_is_refused_without_buffering
if compgen -G "build/tsan/reports/*" >/dev/null; then
  echo "ThreadSanitizer reports:" && cat build/tsan/reports/* && exit 1
fi

# A bounded soak (tests/soak, docs/reload-and-soak.md): every load at once for 2 minutes.
echo "== [${SECONDS} s] soak, 2 minutes (tools/soak.sh, build/soak)"
bash tools/soak.sh --minutes 2 --out build/soak

echo "== [${SECONDS} s] tls/ and capture parsers under ASan+UBSan, fuzz smoke runs (build/fuzz, clang)"
if [[ ! -f build/fuzz/build.ninja ]]; then
  cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DLINESMAN_FUZZ=ON -DLINESMAN_TLS_ONLY=ON \
    -DCMAKE_UNITY_BUILD=ON >/dev/null
fi
cmake --build build/fuzz -j "$(nproc)"
ctest --test-dir build/fuzz --output-on-failure -j "$(nproc)" --timeout 900
echo "== all stages passed in ${SECONDS} s"
