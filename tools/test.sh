#!/usr/bin/env bash
# test.sh: the README's test command, which .ci/run calls; the script is tools/scripts/test.sh.
exec bash "$(dirname "$0")/scripts/test.sh" "$@"
