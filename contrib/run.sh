#!/bin/sh
# Installs what crisp needs on Debian 12, builds and installs it under /usr/local, then runs
# it in the foreground on its default configuration (Ctrl-C stops it; containers keep running).
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run.sh: run me as root (crisp manages namespaces and mounts)" >&2; exit 1; }
contrib/install-deps.sh
contrib/build.sh
make -C _build install >/dev/null
exec /usr/local/bin/crisp "$@"
