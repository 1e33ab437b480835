#!/usr/bin/env bash
# run.sh: the main job. Installs what is missing, builds linesman, and runs the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh linesman >/dev/null
exec build/release/tools/linesman inspect tests/data/corpus/cases/*.bin "$@"
