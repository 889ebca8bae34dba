#!/bin/sh
# Installs what the tests need on Debian 12, builds crisp with warnings as errors, runs the
# unit tests (make check) and the integration suite against the real daemon (as root).
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: run me as root (the integration tests run containers)" >&2; exit 1; }
contrib/install-deps.sh --test
contrib/build.sh --enable-werror
make -C _build -j"$(nproc)" check
make -C _build integration
