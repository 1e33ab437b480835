#!/usr/bin/env bash
# run.sh: the README's first command (the main job); the script is tools/scripts/run.sh.
exec bash "$(dirname "$0")/scripts/run.sh" "$@"
