#!/bin/sh
# Builds crisp with ThreadSanitizer in _build-tsan/ and runs the integration suite against it
# (as root, in a network namespace of its own), with test/tsan.supp's suppressions for the
# libraries TSan cannot see into. The harness gives crisp and its monitors a TSan log_path of
# their own and fails a test on any report (or a process TSan ended with status 66), exactly as
# it does for ASan: this script fails when the suite does.
# Arguments, if any, are a pytest -k expression choosing a subset of the suite:
#   contrib/tsan.sh 'test_concurrency or test_pod.py'
# Not part of contrib/test.sh: under TSan the suite takes several times as long.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "tsan.sh: run me as root (the integration tests run containers)" >&2; exit 1; }
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
  NOCONFIGURE=1 ./autogen.sh
fi
mkdir -p _build-tsan
if [ ! -f _build-tsan/Makefile ]; then
  (cd _build-tsan && ../configure --sysconfdir=/etc --enable-sanitizers=thread >/dev/null)
fi
make -C _build-tsan -j"$(nproc)" >/dev/null

# history_size=4 keeps the earlier access of a race findable in long runs.
export TSAN_OPTIONS="suppressions=$PWD/test/tsan.supp:history_size=4"
export G_SLICE=always-malloc
# The crowd and chaos tests run smaller, as under ASan in contrib/test.sh.
export CRISP_CONCURRENCY="${CRISP_CONCURRENCY:-60}" CRISP_CHAOS_KILLS="${CRISP_CHAOS_KILLS:-10}"

if [ "$#" -gt 0 ]; then
  exec unshare -n sh -c 'ip link set lo up && exec make -C _build-tsan integration PYTEST_ARGS="-k \"$1\""' \
    tsan "$*"
fi
exec unshare -n sh -c 'ip link set lo up && exec make -C _build-tsan integration'
