# shellcheck shell=bash
# Shared helpers for kvd's tests. Sourced by each test_*.sh, which are run
# as: test_X.sh KVD REDIS_CLI REDIS_BENCHMARK KVD_LATENCY KVD_STORM
#
# kvd is started on a free port (--port 0) with a database in a private
# temporary directory; readiness is its "kvd listening on" line, polled
# with a bounded loop. Every wait in here is bounded.
#
# SPDX-License-Identifier: MIT

set -euo pipefail
export LC_ALL=C

if [ $# -lt 5 ]; then
  echo "usage: $0 KVD REDIS_CLI REDIS_BENCHMARK KVD_LATENCY KVD_STORM" >&2
  exit 2
fi
# shellcheck disable=SC2034 # each test uses some of these
{
  KVD=$1
  REDIS_CLI=$2
  REDIS_BENCHMARK=$3
  KVD_LATENCY=$4
  KVD_STORM=$5
}
# Arguments after the five paths go to every kvd this test starts (the
# suite runs some tests again with --loops 2, or with --inline).
KVD_ARGS=("${@:6}")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvd-test.XXXXXX")
KVD_PID=""
KVD_PORT=""
PASSED=0
FAILED=0

cleanup() {
  if [ -n "$KVD_PID" ] && kill -0 "$KVD_PID" 2>/dev/null; then
    kill -KILL "$KVD_PID" 2>/dev/null || true
    wait "$KVD_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  if [ -s "$WORK/kvd.err" ]; then
    echo "--- kvd stderr:" >&2
    tail -n 20 "$WORK/kvd.err" >&2
  fi
  FAILED=$((FAILED + 1))
  echo "$PASSED passed, $FAILED failed"
  exit 1
}

pass() { PASSED=$((PASSED + 1)); }

# check NAME EXPECTED ACTUAL
check() {
  if [ "$2" == "$3" ]; then
    pass
  else
    fail "$1: expected [$(printf '%s' "$2" | od -An -c | tr -s ' ')]" \
      "got [$(printf '%s' "$3" | od -An -c | tr -s ' ')]"
  fi
}

# kvd_start [kvd options...]: starts kvd with these options and KVD_ARGS
# (database $WORK/db.sqlite3 unless
# --db is given) and sets KVD_PID and KVD_PORT.
kvd_start() {
  local db=(--db "$WORK/db.sqlite3")
  case " $* " in *" --db "*) db=() ;; esac
  : >"$WORK/kvd.out"
  "$KVD" --port 0 "${db[@]}" "$@" "${KVD_ARGS[@]}" >"$WORK/kvd.out" \
    2>>"$WORK/kvd.err" &
  KVD_PID=$!
  local line
  for _ in $(seq 1 200); do
    if line=$(grep -m1 '^kvd listening on 127.0.0.1:' "$WORK/kvd.out"); then
      KVD_PORT=${line##*:}
      return 0
    fi
    kill -0 "$KVD_PID" 2>/dev/null || fail "kvd exited during startup"
    sleep 0.05
  done
  fail "kvd printed no ready line within 10 s"
}

# kvd_stop [SIGNAL]: sends SIGTERM (or SIGNAL), then waits (at most 30 s)
# and requires exit status 0.
kvd_stop() {
  kill -"${1:-TERM}" "$KVD_PID"
  for _ in $(seq 1 600); do
    kill -0 "$KVD_PID" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$KVD_PID" 2>/dev/null && fail "kvd did not stop within 30 s"
  local rc=0
  wait "$KVD_PID" || rc=$?
  KVD_PID=""
  [ "$rc" -eq 0 ] || fail "kvd exited with status $rc after SIG${1:-TERM}"
  pass
}

# cli ARGS...: redis-cli against the running kvd (raw output, no tty).
cli() { timeout 10 "$REDIS_CLI" -p "$KVD_PORT" "$@"; }

# resp ARG...: appends the RESP encoding of one command to $REQ. (A
# variable, not output: command substitution would eat the final LF.)
REQ=""
resp() {
  local a
  REQ+="*$#"$'\r\n'
  for a in "$@"; do REQ+="\$${#a}"$'\r\n'"$a"$'\r\n'; done
}

# exchange PAYLOAD: sends PAYLOAD on a new connection and prints every byte
# received until the server closes the connection; if it does not within
# 10 s, or resets it, "<not closed cleanly>" follows. Callers end the
# payload with QUIT, or with input that makes kvd close.
exchange() {
  local fd payload="$WORK/payload.$BASHPID"
  # One write(): bash's printf may write piecemeal, and a server that
  # closes after QUIT would then make a later piece fail (SIGPIPE).
  printf '%s' "$1" >"$payload"
  exec {fd}<>"/dev/tcp/127.0.0.1/$KVD_PORT"
  (cat "$payload" >&$fd) 2>/dev/null || true
  # Every exchange must end with the server closing the connection.
  timeout 10 cat <&$fd || printf '<not closed cleanly>'
  exec {fd}>&-
  rm -f "$payload"
}

# reply ARG...: the raw reply to one command, with CRs removed (so
# expected values read as lines) and QUIT's own "+OK" dropped.
reply() {
  local out
  REQ=""
  resp "$@"
  resp QUIT
  out=$(exchange "$REQ" | tr -d '\r')
  printf '%s' "${out%+OK}"
}

# done_ok: prints the closing summary line.
done_ok() { echo "$PASSED passed, $FAILED failed"; }
