#!/bin/sh
# Fuzzes one of crisp's parsers with libFuzzer. Every object a target links is compiled by
# clang with coverage, ASan and UBSan in _build-fuzz/ (configure --enable-fuzzing), so the
# fuzzer is guided through crisp's own code, not only through the target file.
# Usage: contrib/fuzz.sh --build                  configure (once) and build every target
#        contrib/fuzz.sh TARGET [libFuzzer args]  e.g. contrib/fuzz.sh fuzz-spdy -max_total_time=60
# New inputs go to _build-fuzz/corpus/<name>/, crashes to _build-fuzz/artifacts/; a crashing
# input belongs in test/fuzz/corpus/<name>/, committed with its fix.
set -eu
cd "$(dirname "$0")/.."
build=_build-fuzz

build_targets () {
  if [ ! -x configure ] || [ configure.ac -nt configure ]; then
    NOCONFIGURE=1 ./autogen.sh
  fi
  mkdir -p "$build"
  if [ ! -f "$build/Makefile" ]; then
    (cd "$build" && ../configure CC=clang CFLAGS="-g -O1" --enable-fuzzing >/dev/null)
  fi
  make -C "$build" -j"$(nproc)" --no-print-directory fuzz-targets >/dev/null
}

target=${1:?usage: contrib/fuzz.sh --build | TARGET [libFuzzer args]}
shift
# FUZZ_PREBUILT=1: the caller has just built (parallel runs must not race in one make).
[ "${FUZZ_PREBUILT:-}" = 1 ] || build_targets
[ "$target" = --build ] && exit 0
name=${target#fuzz-}
[ -x "$build/test/fuzz/$target" ] || { echo "fuzz.sh: no target '$target' in test/fuzz/" >&2; exit 2; }
mkdir -p "$build/corpus/$name" "$build/artifacts"
# The unit tests' rules hold here too: a GLib warning is a failure, as is any UBSan report.
export G_DEBUG=fatal-warnings
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
exec "$build/test/fuzz/$target" -artifact_prefix="$build/artifacts/$name-" \
  "$build/corpus/$name" "test/fuzz/corpus/$name" "$@"
