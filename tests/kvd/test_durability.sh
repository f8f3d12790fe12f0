#!/usr/bin/env bash
# kvd test 4: stopping kvd in the middle of a write storm loses no
# acknowledged write. Clients pipeline SETs and record each key answered
# +OK; once thousands are acknowledged kvd gets SIGTERM (then, in a second
# round with --inline, SIGINT); after a restart on the same database every
# recorded key must hold its value. A graceful stop must also close the
# database cleanly: the WAL is checkpointed and removed.
#
# A third round kills kvd with SIGKILL. The task only requires durability
# across a graceful stop, but with WAL a commit is written to the log file
# before kvd replies, so acknowledged writes survive the process dying too
# (only an OS crash could lose them with synchronous=NORMAL).
#
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

dbfile="$WORK/db.sqlite3"

# storm_round SIGNAL PREFIX [kvd options]
storm_round() {
  local sig=$1 prefix=$2
  shift 2
  kvd_start "$@"
  "$KVD_STORM" write --port "$KVD_PORT" --keys "$WORK/$prefix.keys" \
    --prefix "$prefix" --conns 4 --pipeline 32 --timeout-ms 60000 \
    >"$WORK/$prefix.out" 2>&1 &
  local storm=$! n=0
  for _ in $(seq 1 600); do
    n=$(wc -l 2>/dev/null <"$WORK/$prefix.keys" || echo 0)
    [ "$n" -ge 5000 ] && break
    sleep 0.05
  done
  [ "$n" -ge 5000 ] || fail "only $n writes acknowledged in 30 s"
  if [ "$sig" = KILL ]; then
    kill -KILL "$KVD_PID"
    { wait "$KVD_PID"; } 2>/dev/null || true # no "Killed" job notice
    KVD_PID=""
  else
    kvd_stop "$sig"
    [ ! -e "$dbfile-wal" ] && pass || fail "WAL left behind after SIG$sig"
  fi
  local rc=0
  wait "$storm" || rc=$?
  cat "$WORK/$prefix.out"
  check "storm ended by the server, no error replies ($prefix)" "0" "$rc"
}

storm_round TERM pool
storm_round INT inline --inline
storm_round KILL killed

kvd_start
for prefix in pool inline killed; do
  acked=$(wc -l <"$WORK/$prefix.keys")
  out=$("$KVD_STORM" check --port "$KVD_PORT" --keys "$WORK/$prefix.keys") ||
    fail "acknowledged writes lost after restart: $out"
  echo "$prefix: $out"
  check "every acknowledged key checked ($prefix)" \
    "checked=$acked missing=0 wrong=0" "$out"
done
total=$(cat "$WORK"/*.keys | wc -l)
dbsize=$(cli DBSIZE)
[ "$dbsize" -ge "$total" ] && pass ||
  fail "DBSIZE $dbsize < $total acknowledged keys"
kvd_stop
[ ! -e "$dbfile-wal" ] && pass || fail "WAL left behind after the last stop"
done_ok
