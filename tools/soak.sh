#!/usr/bin/env bash
# soak.sh --minutes N [--out DIR] [--bin PATH] [--loads A,B,..]: the bounded soak of tests/soak/soak.py against a
# linesman binary (default build/release/tools/linesman, built when missing). Writes DIR/soak.csv,
# DIR/soak.png and DIR/summary.json (default DIR: build/soak) and exits 1 when a pass condition
# fails. The access log sits on a tmpfs in a private mount namespace (unshare -m) when this is
# allowed, else the soak uses /dev/full for the full-disk half.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=2
out=build/soak
bin=build/release/tools/linesman
loads=churn,idle,slow,flap,reload,fill  # all; fewer to find which load drives a figure
while (($#)); do
  case $1 in
    --minutes) minutes=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --loads) loads=$2; shift 2 ;;
    *) echo "soak.sh: unknown argument $1 (use --minutes N [--out DIR] [--bin PATH] [--loads A,B,..])" >&2; exit 2 ;;
  esac
done
# The chart needs matplotlib (Debian's python3-matplotlib); installed once, non-interactively.
if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends python3-matplotlib
fi
if [[ ! -x $bin ]]; then
  bash tools/scripts/build.sh linesman
fi
rm -rf "$out" && mkdir -p "$out"
bin=$(realpath "$bin")
args=(tests/soak/soak.py --minutes "$minutes" --bin "$bin" --out "$out" --loads "$loads")
if unshare -m --propagation private true 2>/dev/null; then
  exec unshare -m --propagation private /usr/bin/python3 "${args[@]}" --tmpfs
fi
exec /usr/bin/python3 "${args[@]}"
