#!/usr/bin/env bash
# kvd test 5: malformed and oversized requests get "-ERR Protocol error:
# ..." and lose their connection; replies to the requests before them
# still arrive, their writes are kept, and other clients are unaffected.
#
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

kvd_start --max-bulk 1000

# A bystander connection, open across every bad request below.
exec {bystander}<>"/dev/tcp/127.0.0.1/$KVD_PORT"
bystander_says() {
  local line
  REQ=""
  resp "$@"
  printf '%s' "$REQ" >&$bystander
  IFS= read -r -t 10 line <&$bystander || line="<no reply>"
  printf '%s' "${line%$'\r'}"
}
check "bystander before" "+PONG" "$(bystander_says PING)"

perr() { printf -- "-ERR Protocol error: %s" "$1"; }

check "integer argument" "$(perr "expected '\$', got ':'")" \
  "$(exchange $'*1\r\n:5\r\n' | tr -d '\r')"
check "status argument" "$(perr "expected '\$', got '+'")" \
  "$(exchange $'*2\r\n$3\r\nGET\r\n+OK\r\n' | tr -d '\r')"
check "unknown type byte" "$(perr "expected '\$', got 'x'")" \
  "$(exchange $'*1\r\nx' | tr -d '\r')"
check "nested array" "$(perr "expected '\$', got '*'")" \
  "$(exchange $'*1\r\n*1\r\n$4\r\nPING\r\n' | tr -d '\r')"
check "bad multibulk length" "$(perr "invalid multibulk length")" \
  "$(exchange $'*abc\r\n' | tr -d '\r')"
check "null bulk argument" "$(perr "invalid bulk length")" \
  "$(exchange $'*2\r\n$3\r\nGET\r\n$-1\r\n' | tr -d '\r')"
check "negative bulk length" "$(perr "invalid bulk length")" \
  "$(exchange $'*2\r\n$3\r\nGET\r\n$-7\r\n' | tr -d '\r')"
# Rejected on the header alone, before any payload arrives.
check "oversized bulk header" "$(perr "invalid bulk length")" \
  "$(exchange $'*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1001\r\n' | tr -d '\r')"
big=$(head -c 1001 /dev/zero | tr '\0' 'v')
check "oversized bulk" "$(perr "invalid bulk length")" \
  "$(exchange $'*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1001\r\n'"$big"$'\r\n' |
    tr -d '\r')"
ok=$(head -c 1000 /dev/zero | tr '\0' 'v')
REQ=""
resp SET atlimit "$ok"
resp QUIT
check "bulk at the limit" $'+OK\n+OK' "$(exchange "$REQ" | tr -d '\r')"
check "unbalanced quotes" "$(perr "unbalanced quotes in request")" \
  "$(exchange $'SET "a b\r\n' | tr -d '\r')"
long=$(head -c 70000 /dev/zero | tr '\0' 'a')
check "long inline" "$(perr "too big inline request")" \
  "$(exchange "$long" | tr -d '\r')"
check "long multibulk count" "$(perr "too big mbulk count string")" \
  "$(exchange "*$long" | tr -d '\r')"
check "long bulk count" "$(perr "too big bulk count string")" \
  "$(exchange $'*1\r\n$'"$long" | tr -d '\r')"

# Requests before the bad one are answered (and stored); nothing after it
# runs.
REQ=""
resp SET before 1
resp PING
REQ+=$'*1\r\n:1\r\n'
resp SET after 1
check "answers before the error" "+OK
+PONG
$(perr "expected '\$', got ':'")" "$(exchange "$REQ" | tr -d '\r')"

check "bystander after" "+PONG" "$(bystander_says PING)"
check "write before error kept" "\$1" "$(bystander_says GET before)"
IFS= read -r -t 10 line <&$bystander
check "write before error value" "1" "${line%$'\r'}"
check "nothing after the error" ":0" "$(bystander_says EXISTS after)"
exec {bystander}>&-

kvd_stop

# The default limit is Redis' 512 MB.
kvd_start
check "default limit" "$(perr "invalid bulk length")" \
  "$(exchange $'*2\r\n$4\r\nECHO\r\n$536870913\r\n' | tr -d '\r')"
check "still serving" "PONG" "$(cli PING)"
kvd_stop
done_ok
