#!/usr/bin/env bash
# package.sh: builds the Debian package build/release/linesman_<version>_<arch>.deb (binary,
# systemd units, example config, logrotate snippet, man page, bash completion; dependencies from
# dpkg-shlibdeps) and prints its path. Reuses build/release (tools/scripts/build.sh). See
# docs/install.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/scripts/build.sh linesman linesman_man >&2
# CPack runs `cmake --install` into its own staging directory, then dpkg-deb.
(cd build/release && cpack -G DEB -B "$PWD" >&2)
deb=$(ls -t build/release/linesman_*.deb | head -n 1)
echo "$PWD/$deb"
