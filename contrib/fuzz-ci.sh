#!/bin/sh
# CI's fuzz step: builds every target of test/fuzz/ with libFuzzer (contrib/fuzz.sh), replays
# each committed corpus, then fuzzes each target for FUZZ_SECONDS (default 20), one target per
# core. Any crash, leak, timeout or sanitizer report fails the step; the input that caused it
# is left in _build-fuzz/artifacts/ for test/fuzz/corpus/ and a fix; logs in _build-fuzz/logs/.
set -eu
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}

if [ "${1:-}" = --one ]; then
  target=$2
  log=_build-fuzz/logs/$target.log
  status=ok
  export FUZZ_PREBUILT=1
  contrib/fuzz.sh "$target" -runs=0 >"$log" 2>&1 \
    && contrib/fuzz.sh "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 >>"$log" 2>&1 || status=FAILED
  cov=$(grep -oE '(INITED|DONE) +cov: [0-9]+' "$log" | grep -oE '[0-9]+$' | sed -n '1p;$p' | paste -sd' ')
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "== $target: $status (cov: corpus, then fuzzed: ${cov:-?}; ${runs:-0} runs)"
  if [ "$status" != ok ]; then
    tail -n 60 "$log"
    exit 1
  fi
  exit 0
fi

contrib/fuzz.sh --build
mkdir -p _build-fuzz/logs
for t in test/fuzz/fuzz-*.c; do basename "$t" .c; done | xargs -P "$(nproc)" -n 1 "$0" --one
