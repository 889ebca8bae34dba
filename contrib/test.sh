#!/bin/sh
# Installs what the tests need on Debian 12, builds crisp with warnings as errors, runs the
# unit tests (make check) and the integration suite against the real daemon (as root); then
# the same suites again on an ASan+UBSan build (leak detection on). CRISP_SKIP_SANITIZERS=1
# skips that second pass. Between the two, contrib/fuzz-ci.sh replays every fuzz corpus and
# fuzzes each target for a bounded time (FUZZ_SECONDS).
#
# Each integration run gets a network namespace of its own (registry, crisp and the CNI
# bridges all inside it): every run starts from the network state of a fresh machine, and the
# host's links and iptables are never touched. The namespace goes away with its last process.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: run me as root (the integration tests run containers)" >&2; exit 1; }

in_fresh_netns() {
  unshare -n sh -c 'ip link set lo up && exec "$@"' in_fresh_netns "$@"
}

contrib/install-deps.sh --test
contrib/build.sh --enable-werror
make -C _build -j"$(nproc)" check
contrib/fuzz-ci.sh
in_fresh_netns make -C _build integration
if [ "${CRISP_SKIP_SANITIZERS:-}" != 1 ]; then
  mkdir -p _build-asan
  (cd _build-asan && ../configure --sysconfdir=/etc --enable-werror --enable-sanitizers >/dev/null)
  make -C _build-asan -j"$(nproc)" >/dev/null
  ASAN_OPTIONS=detect_leaks=1 make -C _build-asan -j"$(nproc)" check
  # Under ASan the crowd and chaos tests run smaller, and the upgrade test reuses the earlier
  # build it made in the first pass.
  ASAN_OPTIONS=detect_leaks=1 CRISP_CONCURRENCY=60 CRISP_CHAOS_KILLS=15 \
    CRISP_UPGRADE_CACHE="$PWD/_build/upgrade-cache" in_fresh_netns make -C _build-asan integration
fi
