#!/usr/bin/env bash
# setup.sh: installs every Debian package that linesman's build, tests and benchmarks need.
# Non-interactive and idempotent: when everything is present it only asks dpkg and exits.
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ clang libclang-rt-14-dev pkg-config clang-format-16
  libasio-dev libssl-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libyaml-cpp-dev libtomlplusplus-dev
  libcpp-httplib-dev
  # real peers and independent readers used by the tests
  openssl haproxy nginx libnginx-mod-stream tshark postgresql redis-server redis-tools
  iproute2 nftables procps psmisc python3 python3-pytest python3-jsonschema tmux
  prometheus  # server and promtool: admin endpoint, tests/integration/test_prometheus.py
  strace  # tests/integration/test_faults.py: a faulted connection never calls splice(2)
  chromium chromium-driver python3-selenium  # tests/browser: the admin page, headless
  # the Debian package (tools/scripts/package.sh, tests/integration/test_package.py)
  help2man dpkg-dev file man-db systemd bash-completion logrotate
  # benchmarks
  iperf3 wrk socat gnuplot-nox
  linux-perf  # bench/e2e/run.py --perf (optional profiles of a contender)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
"${sudo_cmd[@]}" apt-get update -qq
# Services that Debian starts on install (nginx, haproxy, redis, postgresql) are not used as
# such: tests start their own instances on free ports. policy-rc.d keeps them from starting.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod +x "$policy"
  made_policy=1
fi
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
if ((made_policy)); then "${sudo_cmd[@]}" rm -f "$policy"; fi
