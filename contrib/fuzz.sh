#!/bin/sh
# Builds one fuzz target with clang's libFuzzer (+ASan/UBSan) and runs it on its corpus.
# Usage: contrib/fuzz.sh TARGET [libFuzzer args], e.g. contrib/fuzz.sh fuzz-cri-request -max_total_time=60
# Run contrib/build.sh first: the target links the libraries from _build/.
set -eu
cd "$(dirname "$0")/.."
target=$1
shift
out=_build/fuzz
mkdir -p "$out" "$out/$target-corpus"
case "$target" in
  fuzz-cri-request) libs="_build/libcrisp-proto.a $(pkg-config --libs libprotobuf-c)" ;;
  *) libs="${FUZZ_LIBS:?set FUZZ_LIBS to the libraries $target needs}" ;;
esac
# shellcheck disable=SC2086
clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ulinux -I_build -I. \
  -Ipkg/base -Ipkg/core $(pkg-config --cflags glib-2.0 libprotobuf-c) \
  "test/fuzz/$target.c" $libs $(pkg-config --libs glib-2.0) -o "$out/$target"
exec "$out/$target" "$out/$target-corpus" "test/fuzz/corpus/${target#fuzz-}" "$@"
