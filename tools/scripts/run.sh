#!/usr/bin/env bash
# run.sh: the main job. Installs what is missing, builds linesman, and runs the embedded default:
# `linesman demo` (the quiet Traefik TCP failures reproduced through linesman; exit 0 = as expected).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/scripts/build.sh linesman >/dev/null
exec build/release/tools/linesman demo "$@"
