#!/usr/bin/env bash
# Fuzzes for SECONDS over a scratch copy of the seed corpus; fails on any
# crash, leak or timeout. Needs a build configured with CC=clang and
# -DUVPOOL_FUZZ=ON:  tests/fuzz/run.sh BUILD_DIR SECONDS
# Inputs that break it land in BUILD_DIR/fuzz-artifacts: copy them to
# tests/fuzz/regressions, which ctest's fuzz_regressions replays.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR SECONDS" >&2; exit 2; }
build="$(cd "$1" && pwd)"
secs="$2"
here="$(cd "$(dirname "$0")" && pwd)"
bin="$build/tests/fuzz_api"
[ -x "$bin" ] || cmake --build "$build" --target fuzz_api -j2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here"/corpus/* "$work"/
mkdir -p "$build/fuzz-artifacts"
# One harness run makes threads and a pool: -timeout catches a task that
# never settles (the drain at the end would hang).
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
  "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 \
  -max_len=1024 -print_final_stats=1 \
  -artifact_prefix="$build/fuzz-artifacts/" "$work"
echo "fuzz_api: no crash in ${secs}s; corpus: $(ls "$work" | wc -l) inputs"
