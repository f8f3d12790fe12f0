#!/usr/bin/env bash
# kvd test 1: every command through redis-cli and raw RESP, binary-safe
# values, the error replies Redis 7 gives, pipelined reply order, inline
# commands. Extra arguments after the five standard ones are passed to kvd
# (the suite runs it with the pool, with --inline and with --loops 2).
#
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

kvd_start

# ---- PING, ECHO, CONFIG, INFO, QUIT (answered on the loop) ----
check "ping" "PONG" "$(cli PING)"
check "ping msg" "hello" "$(cli PING hello)"
check "echo" "hi there" "$(cli ECHO "hi there")"
check "config get save" $'*2\n$4\nsave\n$0' "$(reply CONFIG GET save)"
check "config get none" '*0' "$(reply CONFIG GET nosuch)"
info=$(cli INFO)
case "$info" in *"# uvpool"*uvpool_mode:*) pass ;; *) fail "INFO: $info" ;; esac
check "info section" "# uvpool" "$(cli INFO uvpool | head -n1 | tr -d '\r')"
case "$(cli INFO server)" in *uvpool_mode*) fail "INFO server" ;; *) pass ;; esac
# One thread per loop, named after it: as many as INFO reports.
loops=$(cli INFO server | tr -d '\r' | sed -n 's/^kvd_loops://p')
named=$(cat /proc/"$KVD_PID"/task/*/comm | grep -c '^kvd-loop-[0-9]*$' || true)
check "loop threads" "$loops" "$named"
REQ=""
resp QUIT
resp PING
check "quit" "+OK" "$(exchange "$REQ" | tr -d '\r')"

# ---- strings ----
check "set" "OK" "$(cli SET k v)"
check "get" "v" "$(cli GET k)"
check "get raw" $'$1\nv' "$(reply GET k)"
check "get missing" '$-1' "$(reply GET nosuch)"
check "set empty" "OK" "$(cli SET empty "")"
check "get empty" '$0' "$(reply GET empty)"
check "set nx exists" '$-1' "$(reply SET k v2 NX)"
check "set nx new" "OK" "$(cli SET nxkey v NX)"
check "set xx missing" '$-1' "$(reply SET xxkey v XX)"
check "set xx exists" "OK" "$(cli SET k v3 XX)"
check "get after xx" "v3" "$(cli GET k)"
check "set get" "v3" "$(cli SET k v4 GET)"
check "set get missing" '$-1' "$(reply SET newget v GET)"
check "set ex" "OK" "$(cli SET t v EX 100)"
check "ttl" "100" "$(cli TTL t)"
check "set px" "OK" "$(cli SET t v PX 50000)"
check "ttl px" "50" "$(cli TTL t)"
check "set keepttl" "OK" "$(cli SET t v2 KEEPTTL)"
check "ttl keepttl" "50" "$(cli TTL t)"
check "set drops ttl" "OK" "$(cli SET t v3)"
check "ttl none" "-1" "$(cli TTL t)"
check "ttl missing" "-2" "$(cli TTL nosuch)"
# An absolute expiry in the past: set, and invisible at once.
check "set pxat past" "OK" "$(cli SET gone v PXAT 1)"
check "expired get" '$-1' "$(reply GET gone)"
check "expired exists" "0" "$(cli EXISTS gone)"
check "expired ttl" "-2" "$(cli TTL gone)"
check "expired nx" "OK" "$(cli SET gone v2 NX)"
check "exat future" "OK" "$(cli SET at v EXAT 99999999999)"

# ---- binary-safe values ----
printf 'a\0b\r\nc\377' >"$WORK/bin"
check "set binary" "OK" "$(cli -x SET bin <"$WORK/bin")"
cli GET bin >"$WORK/bin.out"
printf '\n' | cat "$WORK/bin" - | cmp -s - "$WORK/bin.out" && pass ||
  fail "binary value with NUL/CRLF did not round-trip"
for i in $(seq 0 255); do printf "\\$(printf %03o "$i")"; done >"$WORK/all"
check "set 256 bytes" "OK" "$(cli -x SET all <"$WORK/all")"
cli GET all >"$WORK/all.out"
printf '\n' | cat "$WORK/all" - | cmp -s - "$WORK/all.out" && pass ||
  fail "value with every byte value did not round-trip"
head -c 1048576 /dev/urandom >"$WORK/big"
check "set 1 MiB" "OK" "$(cli -x SET big <"$WORK/big")"
cli GET big >"$WORK/big.out"
printf '\n' | cat "$WORK/big" - | cmp -s - "$WORK/big.out" && pass ||
  fail "1 MiB random value did not round-trip"
cli MGET bin nosuch >"$WORK/mget.out"
printf '\n\n' | cat "$WORK/bin" - | cmp -s - "$WORK/mget.out" && pass ||
  fail "MGET of a binary value"

# ---- counters ----
check "incr new" "1" "$(cli INCR c)"
check "incr" "2" "$(cli INCR c)"
check "incrby" "12" "$(cli INCRBY c 10)"
check "incrby neg" "-3" "$(cli INCRBY c -15)"
check "get counter" "-3" "$(cli GET c)"
cli SET ct 5 EX 100 >/dev/null
check "incr keeps ttl" "6 100" "$(cli INCR ct) $(cli TTL ct)"
cli SET s abc >/dev/null
check "incr not int" "-ERR value is not an integer or out of range" \
  "$(reply INCR s)"
cli SET s " 1" >/dev/null
check "incr spaces" "-ERR value is not an integer or out of range" \
  "$(reply INCR s)"
check "incrby bad" "-ERR value is not an integer or out of range" \
  "$(reply INCRBY c 1.5)"
cli SET max 9223372036854775807 >/dev/null
check "incr overflow" "-ERR increment or decrement would overflow" \
  "$(reply INCR max)"
check "incrby underflow" "-ERR increment or decrement would overflow" \
  "$(reply INCRBY c -9223372036854775807)"

# ---- multi-key ----
check "mset" "OK" "$(cli MSET m1 a m2 b m3 c)"
check "mget" $'a\nb\n\nc' "$(cli MGET m1 m2 nosuch m3)"
check "mget raw" $'*2\n$1\na\n$-1' "$(reply MGET m1 nosuch)"
check "exists" "3" "$(cli EXISTS m1 m1 m2 nosuch)"
check "del" "2" "$(cli DEL m1 m2 nosuch)"
check "del again" "0" "$(cli DEL m1)"
check "exists after del" "0" "$(cli EXISTS m1 m2)"

# ---- keyspace ----
check "flushdb" "OK" "$(cli FLUSHDB)"
check "dbsize empty" "0" "$(cli DBSIZE)"
check "mset glob" "OK" \
  "$(cli MSET hello 1 hallo 1 hxllo 1 hllo 1 heeeello 1 'h*llo' 1 other 1)"
cli SET hexpired 1 PXAT 1 >/dev/null
check "dbsize" "7" "$(cli DBSIZE)"
keys() { cli KEYS "$1" | sort | tr '\n' ' '; }
check "keys ?" "h*llo hallo hello hxllo " "$(keys 'h?llo')"
check "keys *" "h*llo hallo heeeello hello hllo hxllo " "$(keys 'h*llo')"
check "keys set" "hallo hello " "$(keys 'h[ae]llo')"
check "keys negated" "h*llo hallo hxllo " "$(keys 'h[^e]llo')"
check "keys range" "hallo " "$(keys 'h[a-b]llo')"
check "keys escape" "h*llo " "$(keys 'h\*llo')"
check "keys all" "h*llo hallo heeeello hello hllo hxllo other " "$(keys '*')"
check "keys none" '*0' "$(reply KEYS 'zz*')"
check "flushdb async" "OK" "$(cli FLUSHDB ASYNC)"
check "flushdb syntax" "-ERR syntax error" "$(reply FLUSHDB NOW)"

# ---- EXPIRE ----
cli SET e v >/dev/null
check "expire" "1" "$(cli EXPIRE e 100)"
check "expire ttl" "100" "$(cli TTL e)"
check "expire nx" "0" "$(cli EXPIRE e 200 NX)"
check "expire xx" "1" "$(cli EXPIRE e 200 XX)"
check "expire gt no" "0" "$(cli EXPIRE e 100 GT)"
check "expire gt" "1" "$(cli EXPIRE e 300 GT)"
check "expire lt" "1" "$(cli EXPIRE e 50 lt)"
check "expire lt ttl" "50" "$(cli TTL e)"
check "expire missing" "0" "$(cli EXPIRE nosuch 10)"
cli SET np v >/dev/null
check "expire xx no ttl" "0" "$(cli EXPIRE np 10 XX)"
check "expire gt no ttl" "0" "$(cli EXPIRE np 10 GT)"
check "expire lt no ttl" "1" "$(cli EXPIRE np 10 LT)"
check "expire past" "1" "$(cli EXPIRE np -1)"
check "expire past deletes" "0" "$(cli EXISTS np)"
check "expire not int" "-ERR value is not an integer or out of range" \
  "$(reply EXPIRE e soon)"
check "expire nx xx" \
  "-ERR NX and XX, GT or LT options at the same time are not compatible" \
  "$(reply EXPIRE e 10 NX XX)"
check "expire gt lt" \
  "-ERR GT and LT options at the same time are not compatible" \
  "$(reply EXPIRE e 10 GT LT)"
check "expire bad option" "-ERR Unsupported option FOO" \
  "$(reply EXPIRE e 10 FOO)"
check "expire overflow" "-ERR invalid expire time in 'expire' command" \
  "$(reply EXPIRE e 9223372036854775)"

# ---- errors as Redis 7 words them ----
check "unknown" "-ERR unknown command 'foo', with args beginning with: " \
  "$(reply foo)"
check "unknown args" \
  "-ERR unknown command 'FOO', with args beginning with: 'a' 'b c' " \
  "$(reply FOO a "b c")"
check "arity get" "-ERR wrong number of arguments for 'get' command" \
  "$(reply GET)"
check "arity get 2" "-ERR wrong number of arguments for 'get' command" \
  "$(reply get a b)"
check "arity set" "-ERR wrong number of arguments for 'set' command" \
  "$(reply SET a)"
check "arity ping" "-ERR wrong number of arguments for 'ping' command" \
  "$(reply PING a b)"
check "arity echo" "-ERR wrong number of arguments for 'echo' command" \
  "$(reply ECHO)"
check "arity dbsize" "-ERR wrong number of arguments for 'dbsize' command" \
  "$(reply DBSIZE x)"
check "arity mset" "-ERR wrong number of arguments for 'mset' command" \
  "$(reply MSET a b c)"
check "arity incrby" "-ERR wrong number of arguments for 'incrby' command" \
  "$(reply INCRBY a)"
check "arity expire" "-ERR wrong number of arguments for 'expire' command" \
  "$(reply EXPIRE a)"
check "set syntax" "-ERR syntax error" "$(reply SET a b NX XX)"
check "set syntax 2" "-ERR syntax error" "$(reply SET a b EX 10 PX 10)"
check "set syntax 3" "-ERR syntax error" "$(reply SET a b KEEPTTL EX 1)"
check "set syntax 4" "-ERR syntax error" "$(reply SET a b EX)"
check "set ex not int" "-ERR value is not an integer or out of range" \
  "$(reply SET a b EX ten)"
check "set ex zero" "-ERR invalid expire time in 'set' command" \
  "$(reply SET a b EX 0)"
check "set px negative" "-ERR invalid expire time in 'set' command" \
  "$(reply SET a b PX -5)"
check "debug sub" "-ERR unknown subcommand or wrong number of arguments \
for 'FOO'. Try DEBUG HELP." "$(reply DEBUG FOO)"
check "debug sleep bad" "-ERR value is not a valid float" \
  "$(reply DEBUG SLEEP x)"
check "debug sleep" "OK" "$(cli DEBUG SLEEP 0.01)"
check "errors left no key" "0" "$(cli EXISTS a)"

# ---- pipelining: replies in request order ----
# PING is answered on the loop at once but must wait behind the sleep.
REQ=""
for c in "DEBUG SLEEP 0.2" PING "SET p 1" "GET p" "ECHO x" "INCR p" nope \
  "GET nosuch" QUIT; do
  resp $c
done
check "pipeline order" "+OK
+PONG
+OK
\$1
1
\$1
x
:2
-ERR unknown command 'nope', with args beginning with: 
\$-1
+OK" "$(exchange "$REQ" | tr -d '\r')"
# Commands after QUIT are ignored.
REQ=""
resp PING
resp QUIT
resp SET afterquit 1
check "after quit" $'+PONG\n+OK' "$(exchange "$REQ" | tr -d '\r')"
check "after quit not run" "0" "$(cli EXISTS afterquit)"

# ---- inline commands (telnet style) ----
check "inline" $'+PONG\n+OK\n$3\nc d\n$1\n"\n+OK' \
  "$(exchange $'PING\r\nSET "a b" \'c d\'\r\n\r\nGET "a b"\nECHO "\\x22"\r\nQUIT\r\n' | tr -d '\r')"

kvd_stop
done_ok
