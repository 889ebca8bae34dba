#!/bin/sh
# Regenerates configure and Makefile.in; pass configure's arguments to run it too.
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
autoreconf -fi
if [ -z "${NOCONFIGURE:-}" ] && [ "$#" -gt 0 ]; then
  exec ./configure "$@"
fi
