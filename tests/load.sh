#!/usr/bin/env bash
# Runs the library's tests (every ctest test but kvd's) RUNS times in a row
# while busy processes keep every CPU occupied, as on a shared CI host, and
# fails at the first failing run, naming the test.
#   tests/load.sh BUILD_DIR [RUNS] [BUSY]
# BUSY: how many busy processes (default: one per CPU).
set -euo pipefail
build="$(cd "$1" && pwd)"
runs="${2:-20}"
busy="${3:-$(nproc)}"
pids=()
stop_busy() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_busy EXIT
for _ in $(seq "$busy"); do
  (while :; do :; done) &
  pids+=($!)
done
start=$(date +%s)
for i in $(seq "$runs"); do
  log="$build/load-run-$i.log"
  if ! (cd "$build" && ctest -LE kvd -j2 --timeout 600 >"$log" 2>&1); then
    echo "load: run $i of $runs FAILED under $busy busy processes:"
    grep -E "Failed|Timeout|\*\*\*" "$log" || tail -n 30 "$log"
    echo "load: the whole log is $log"
    exit 1
  fi
  echo "load: run $i of $runs passed ($(grep -Eo '[0-9]+ tests failed out of [0-9]+' "$log" | sed 's/^0 tests failed out of /tests: /'), $(($(date +%s) - start)) s so far)"
  rm -f "$log"
done
echo "load: $runs runs passed under $busy busy processes in $(($(date +%s) - start)) s"
