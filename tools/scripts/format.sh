#!/usr/bin/env bash
# format.sh [--check]: clang-format-16 over the C++ sources (16 is the first with InsertBraces).
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=(-i)
if [[ ${1:-} == --check ]]; then mode=(--dry-run -Werror); fi
git ls-files '*.cpp' '*.hpp' | xargs clang-format-16 "${mode[@]}"
