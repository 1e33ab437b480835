#!/usr/bin/env bash
# run.sh: the end-to-end comparative benchmark in one command. Installs what is missing and builds
# linesman (tools/scripts/build.sh), then runs the harness bench/e2e/run.py, which writes
# bench/results/results.md, results.json and chart.png. Extra arguments go to the harness
# (for example --quick, --rounds 5, --contenders direct,haproxy-forced,linesman).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/scripts/build.sh linesman
# Debian's interpreter (stdlib only), not whatever python3 comes first in PATH.
py=/usr/bin/python3
[[ -x $py ]] || py=python3
exec "$py" bench/e2e/run.py --linesman build/release/tools/linesman "$@"
