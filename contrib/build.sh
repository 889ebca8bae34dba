#!/bin/sh
# Configures (once) and builds crisp in _build/; extra arguments go to configure.
set -eu
cd "$(dirname "$0")/.."
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
  NOCONFIGURE=1 ./autogen.sh
fi
mkdir -p _build
if [ ! -f _build/Makefile ] || [ "$#" -gt 0 ]; then
  (cd _build && ../configure --prefix=/usr/local --sysconfdir=/etc --localstatedir=/var "$@")
fi
make -C _build -j"$(nproc)"
