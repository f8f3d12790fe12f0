#!/usr/bin/env bash
# kvd test 2: redis-benchmark (SET, GET, INCR, MSET; 100000 requests each,
# 50 clients, pipelines of 16) completes without a single error, and the
# counter it increments ends exactly at 100000.
#
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

kvd_start
rc=0
timeout 300 "$REDIS_BENCHMARK" -p "$KVD_PORT" -q -t set,get,incr,mset \
  -n 100000 -c 50 -P 16 >"$WORK/bench.out" 2>"$WORK/bench.err" || rc=$?
# -q prints progress lines separated by CRs; keep the final lines.
tr '\r' '\n' <"$WORK/bench.out" | grep 'requests per second' |
  tee "$WORK/bench.summary"
check "redis-benchmark exit status" "0" "$rc"
check "no errors" "" "$(cat "$WORK/bench.err"; grep -i 'err' "$WORK/bench.out")"
for t in "SET" "GET" "INCR" "MSET (10 keys)"; do
  grep -q "^$t: [0-9.]* requests per second" "$WORK/bench.summary" && pass ||
    fail "no result for $t"
done
# Without -r every INCR hits the same key: none may be lost or repeated.
check "incr count" "100000" "$(cli GET 'counter:__rand_int__')"
# redis-benchmark's default 3-byte payload.
check "set value" "VXK" "$(cli GET 'key:__rand_int__')"
kvd_stop
done_ok
