#!/usr/bin/env bash
# kvd with the pool on one loop, on two loops (--loops 2, the two loops'
# pools sharing the workers) and --inline, side by side.
#
#   demo/kvd/bench.sh KVD_BINARY [KVD_LATENCY_CLIENT]
#
# For each mode, starts kvd on a free port with a fresh database in a
# temporary directory, then measures:
#   - throughput: redis-benchmark -q -t set,get -n 50000 -c 50 -P 16;
#   - responsiveness: PING round trips (p50/p99) while 8 clients run
#     "DEBUG SLEEP 0.2" back to back (tests/kvd/kvd_latency.c; by default
#     the one built next to kvd, in tests/ of kvd's build directory);
# then stops kvd with SIGTERM and requires exit status 0. Prints a table.
# Needs redis-benchmark (Debian: redis-tools). Takes about 20 s.
#
# SPDX-License-Identifier: MIT
set -euo pipefail
export LC_ALL=C

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 KVD_BINARY [KVD_LATENCY_CLIENT]" >&2
  exit 2
fi
kvd=$1
latency=${2:-$(dirname "$kvd")/tests/kvd_latency}
bench=${REDIS_BENCHMARK:-$(command -v redis-benchmark || true)}
[ -x "$latency" ] || { echo "no latency client at $latency" >&2; exit 2; }
[ -n "$bench" ] || { echo "redis-benchmark not found (redis-tools)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kvd-bench.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

start() { # kvd options...; sets pid and port
  rm -f "$work"/db.sqlite3*
  : >"$work/out"
  "$kvd" --port 0 --db "$work/db.sqlite3" "$@" >"$work/out" 2>>"$work/err" &
  pid=$!
  local line
  for _ in $(seq 1 200); do
    if line=$(grep -m1 '^kvd listening on ' "$work/out"); then
      port=${line##*:}
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "kvd did not start:" >&2
  cat "$work/err" >&2
  exit 1
}

stop() {
  kill -TERM "$pid"
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  local rc=0
  wait "$pid" || rc=$?
  pid=""
  if [ "$rc" -ne 0 ]; then
    echo "kvd exited with status $rc after SIGTERM" >&2
    exit 1
  fi
}

# rps NAME: the requests/s redis-benchmark reported for test NAME.
rps() {
  tr '\r' '\n' <"$work/bench" |
    sed -n "s/^$1: \([0-9.]*\) requests per second.*/\1/p" | tail -n1
}

# field NAME: a value from the latency client's line.
field() { tr ' ' '\n' <<<"$lat" | sed -n "s/^$1=//p"; }

declare -A result
modes=(pool pool-2loops inline)
for mode in "${modes[@]}"; do
  opts=()
  [ "$mode" = inline ] && opts=(--inline)
  [ "$mode" = pool-2loops ] && opts=(--loops 2)
  start "${opts[@]}"
  echo "$mode: redis-benchmark on port $port..." >&2
  timeout 120 "$bench" -p "$port" -q -t set,get -n 50000 -c 50 -P 16 \
    >"$work/bench" 2>&1
  echo "$mode: PING latency under 8 x DEBUG SLEEP 0.2..." >&2
  lat=$(timeout 60 "$latency" --port "$port" --pings 200 --interval-ms 5 \
    --duration-ms 4000 --sleepers 8 --sleep 0.2) || true
  [ -n "$lat" ] || { echo "latency client failed" >&2; exit 1; }
  result[$mode]="$(rps SET) $(rps GET) $(field p50_ms) $(field p99_ms)"
  result[$mode.pings]=$(field pings)
  stop
done

printf '\n%-12s %12s %12s %13s %13s %7s\n' mode "SET req/s" "GET req/s" \
  "PING p50 ms" "PING p99 ms" pings
for mode in "${modes[@]}"; do
  read -r set get p50 p99 <<<"${result[$mode]}"
  printf '%-12s %12.0f %12.0f %13.3f %13.3f %7s\n' "$mode" "$set" "$get" \
    "$p50" "$p99" "${result[$mode.pings]}"
done
echo
echo "PING is answered on the loop thread. With the pool, the sleeps run on"
echo "workers and PING stays fast; with --inline they run on the loop, and"
echo "PING waits behind them (pings: how many fit in the 4 s window)."
echo "pool-2loops: two loop threads share the port (SO_REUSEPORT) and the"
echo "four workers (one uvpool group)."
