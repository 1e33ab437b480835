#!/bin/sh
# man-run-section.sh LINESMAN OUT: writes a help2man include file whose section [RUN OPTIONS] is
# `LINESMAN run --help` as no-fill text, with roff's escape character and leading control
# characters neutralised. Called by packaging.cmake when it builds the man page.
set -eu
{
  printf '[RUN OPTIONS]\n.nf\n'
  "$1" run --help | sed -e 's|^Usage: .*/linesman |Usage: linesman |' -e 's/\\/\\e/g' -e "s/^[.']/\\\\\&&/"
  printf '.fi\n'
} >"$2"
