#!/usr/bin/env bash
# kvd test 3: the loop stays responsive while the pool is busy. Eight
# clients keep "DEBUG SLEEP 0.2" running back to back (more sleeps than
# workers, so the pool is saturated and has a queue); meanwhile PING round
# trips, answered on the loop, must stay fast: p99 under 50 ms.
#
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

kvd_start --workers 4
out=$("$KVD_LATENCY" --port "$KVD_PORT" --pings 200 --interval-ms 5 \
  --duration-ms 20000 --sleepers 8 --sleep 0.2 --max-p99-ms 50) ||
  fail "PING latency too high or bad replies: $out"
echo "$out"
read -r pings _ _ _ sleeps errors <<<"$(echo "$out" |
  sed 's/[a-z0-9_]*=//g')"
check "pings answered" "200" "$pings"
check "no bad replies" "0" "$errors"
# The sleeps really ran alongside: 200 pings take at least one second, in
# which 4 workers complete about 20 sleeps of 0.2 s.
[ "$sleeps" -ge 8 ] && pass || fail "only $sleeps sleeps completed"
peak=$(cli INFO uvpool | tr -d '\r' | sed -n 's/^uvpool_peak_workers://p')
check "pool saturated" "4" "$peak"
kvd_stop
done_ok
