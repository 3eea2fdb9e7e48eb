#!/usr/bin/env bash
# tests/programs/redis.sh - owns the redis real-program test: redis-server
# on loopback, once with glibc's malloc and once with the library given as
# $1 preloaded; in the preloaded run the clients (redis-cli,
# redis-benchmark) are preloaded too.  Debian's redis-server is linked
# with jemalloc but calls the plain malloc, free, calloc, realloc and
# malloc_usable_size, so the preload replaces them; it relies on
# malloc_usable_size being exact (its strings grow into the slack it
# reports).
#
# Each run: redis-server --bind 127.0.0.1 on a port free at the time (a
# bind failure is retried on another), --save '' --appendonly no, in the
# foreground as a background job; wait until redis-cli ping answers;
# redis-benchmark -q -n 20000 -r 10000 (every default test, 50 clients);
# then redis-cli runs a fixed script of strings, counters, lists, hashes,
# sets and sorted sets, small and large (Lua loops build a 50000-element
# list, a 20000-field hash and a 1 MiB string), and reads them back;
# then redis-cli shutdown nosave.
#
# It checks that
#   - the preloaded server really has the library mapped
#     (/proc/PID/maps), and the dynamic linker's binding log (LD_DEBUG)
#     shows malloc bound to the library in redis-server, redis-cli and
#     redis-benchmark, and no process bound any of the malloc family
#     (malloc free calloc realloc aligned_alloc memalign posix_memalign
#     pvalloc valloc malloc_usable_size) elsewhere;
#   - redis-benchmark exits 0, reports no error and completes the same
#     tests in both runs;
#   - the script's replies are exactly the ones written below, in both runs;
#   - the server exits 0 after shutdown nosave, within 20 s.
#
# Usage: bash tests/programs/redis.sh PRELOAD-LIBRARY
#   PRELOAD-LIBRARY ""  runs glibc against glibc (checks the script itself)
# Exit status: 0 pass, 1 fail (one line "redis: FAIL: reason" on stderr),
# 2 usage, 77 skipped (redis-server or the clients are not installed).
set -euo pipefail

name=redis
# From lib.sh: fail and skip, the traps, the argument as lib, setup,
# check_bindings and same.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

redis_server=$(command -v redis-server) || skip "redis-server is not installed (Debian package redis-server)"
redis_cli=$(command -v redis-cli) || skip "redis-cli is not installed (Debian package redis-tools)"
redis_benchmark=$(command -v redis-benchmark) || skip "redis-benchmark is not installed (Debian package redis-tools)"

setup # $tmp, and lib made absolute and seen to preload

# The server of the current run; stopped by the EXIT trap if still there.
server_pid=
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=
}
trap 'stop_server; rm -rf "$tmp"' EXIT

# A TCP port in 20000..32767 (below Linux's ephemeral range) that no
# socket on this machine uses now.
pick_port() {
    local used port
    used=" $(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk 'NR > 1 && $2 ~ /:/ { sub(/.*:/, "", $2); print $2 }' |
        while read -r hex; do echo $((16#$hex)); done | tr '\n' ' ') "
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 12768))
        case $used in *" $port "*) continue ;; esac
        echo "$port"
        return 0
    done
    return 1
}

# The commands, one per line, and their replies as redis-cli prints them
# when its output is not a terminal.
cat >"$tmp/commands" <<'EOF'
FLUSHALL
SET greeting "hello, world"
APPEND greeting "!!!"
GET greeting
STRLEN greeting
GETRANGE greeting 0 4
SET counter 41
INCR counter
INCRBY counter 1000
DECR counter
RPUSH list a b c d e f g
LPUSH list z
LRANGE list 0 -1
LPOP list
RPOP list
LINDEX list 2
LLEN list
HSET user:1 name Ada lang C born 1815 city London
HGET user:1 name
HINCRBY user:1 born 1
HDEL user:1 city
HGETALL user:1
SADD numbers 5 3 9 1 7
SMEMBERS numbers
SISMEMBER numbers 9
ZADD board 10 alice 30 carol 20 bob
ZINCRBY board 15 alice
ZRANGE board 0 -1 WITHSCORES
MSET k1 v1 k2 v2 k3 v3
MGET k1 k2 missing k3
DEL k2
EXISTS k1 k2 k3
EVAL "for i = 1, 50000 do redis.call('RPUSH', KEYS[1], 'item-' .. i) end return redis.call('LLEN', KEYS[1])" 1 biglist
LINDEX biglist 49999
LRANGE biglist 20000 20002
EVAL "for i = 1, 20000 do redis.call('HSET', KEYS[1], 'field' .. i, string.rep('v', i % 100)) end return redis.call('HLEN', KEYS[1])" 1 bighash
HSTRLEN bighash field7777
OBJECT ENCODING bighash
EVAL "for i = 1, 5000 do redis.call('ZADD', KEYS[1], (i * 7919) % 5000, 'member' .. i) end return redis.call('ZCARD', KEYS[1])" 1 bigzset
ZRANGE bigzset 0 2
OBJECT ENCODING bigzset
EVAL "for i = 1, 3000 do redis.call('SADD', KEYS[1], 'm' .. i) end return redis.call('SCARD', KEYS[1])" 1 bigset
OBJECT ENCODING bigset
EVAL "redis.call('SET', KEYS[1], string.rep('x', 1048576)) return redis.call('STRLEN', KEYS[1])" 1 big
APPEND big tail
GETRANGE big 1048574 1048580
LTRIM biglist 100 199
LLEN biglist
DEL bighash bigzset bigset big
TYPE list
DBSIZE
EOF
cat >"$tmp/expected" <<'EOF'
OK
OK
15
hello, world!!!
15
hello
OK
42
1042
1041
7
8
z
a
b
c
d
e
f
g
z
g
c
6
4
Ada
1816
1
name
Ada
lang
C
born
1816
5
1
3
5
7
9
1
3
25
bob
20
alice
25
carol
30
OK
v1
v2

v3
1
2
50000
item-50000
item-20001
item-20002
item-20003
20000
77
hashtable
5000
member5000
member2679
member358
skiplist
3000
hashtable
1048576
1048580
xxtail
OK
100
4
list
9
EOF

# One run in $tmp/MODE.
run() { # MODE (glibc or preload)
    local mode=$1 dir=$tmp/$1 rc
    local -a pre=()
    preload_prefix "$mode" "$dir"
    cli() { timeout -k 5 30 "${pre[@]}" "$redis_cli" -h 127.0.0.1 -p "$port" "$@"; }

    # Start the server; a port taken between the pick and the bind means
    # another pick.
    for _ in 1 2 3 4 5; do
        port=$(pick_port) || fail "found no free TCP port in 20000..32767"
        : >"$dir/server.log"
        "${pre[@]}" "$redis_server" --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
            --daemonize no --dir "$dir" --logfile "$dir/server.log" >"$dir/server.out" 2>&1 &
        server_pid=$!
        for _ in $(seq 100); do
            # The server that answers must be this one, not another
            # that took the port first.
            if [ "$(cli info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" = "$server_pid" ] &&
                [ "$(cli ping 2>/dev/null)" = PONG ]; then
                break 2
            fi
            if ! kill -0 "$server_pid" 2>/dev/null; then
                rc=0
                wait "$server_pid" || rc=$?
                server_pid=
                grep -q 'Address already in use' "$dir/server.log" && continue 2
                tail -n 5 "$dir/server.log" "$dir/server.out" >&2
                fail "redis-server ($mode) exited with status $rc before answering ping"
            fi
            sleep 0.2
        done
        fail "redis-server ($mode) did not answer ping within 20 s on port $port"
    done
    [ -n "$server_pid" ] || fail "redis-server ($mode) found no free port in 5 attempts"
    echo "$name: $mode: redis-server pid $server_pid on 127.0.0.1:$port"

    if [ "$mode" = preload ] && [ -n "$lib" ]; then
        grep -qF " $lib" "/proc/$server_pid/maps" ||
            fail "the preloaded redis-server (pid $server_pid) does not have $lib mapped"
    fi

    rc=0
    timeout -k 5 60 "${pre[@]}" "$redis_benchmark" -h 127.0.0.1 -p "$port" -q -n 20000 -r 10000 \
        >"$dir/bench.raw" 2>"$dir/bench.err" || rc=$?
    [ "$rc" -ne 124 ] || fail "redis-benchmark ($mode) did not finish within 60 s"
    [ "$rc" -eq 0 ] || { tail -n 5 "$dir/bench.err" >&2; fail "redis-benchmark ($mode) exited with status $rc"; }
    # Each test's last progress update (after a carriage return) is its result.
    tr '\r' '\n' <"$dir/bench.raw" | grep ' requests per second' >"$dir/bench.out" || true
    ! grep -qi 'error' "$dir/bench.raw" "$dir/bench.err" ||
        fail "redis-benchmark ($mode) reported an error: $(grep -hi 'error' "$dir/bench.raw" "$dir/bench.err" | head -n1)"
    [ "$(wc -l <"$dir/bench.out")" -ge 15 ] ||
        fail "redis-benchmark ($mode) completed only $(wc -l <"$dir/bench.out") tests"
    sed 's/: [0-9.]* requests per second.*//' "$dir/bench.out" >"$dir/bench.tests"

    rc=0
    cli <"$tmp/commands" >"$dir/replies" 2>"$dir/cli.err" || rc=$?
    [ "$rc" -eq 0 ] || fail "redis-cli ($mode) exited with status $rc: $(head -n1 "$dir/cli.err")"
    if ! cmp -s "$tmp/expected" "$dir/replies"; then
        diff -u "$tmp/expected" "$dir/replies" | head -n 20 >&2 || true
        fail "redis-cli ($mode) did not read back exactly what was written (diff above)"
    fi

    rc=0
    cli shutdown nosave >"$dir/shutdown.out" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || fail "redis-cli shutdown nosave ($mode) exited with status $rc: $(head -n1 "$dir/shutdown.out")"
    for _ in $(seq 100); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        fail "redis-server ($mode) still running 20 s after shutdown nosave"
    fi
    rc=0
    wait "$server_pid" || rc=$?
    server_pid=
    [ "$rc" -eq 0 ] || { tail -n 5 "$dir/server.log" >&2; fail "redis-server ($mode) exited with status $rc after shutdown"; }
    grep -q 'ready to exit, bye bye' "$dir/server.log" ||
        fail "redis-server ($mode) exited without its shutdown message"
}

run glibc
run preload
same "$tmp/glibc/bench.tests" "$tmp/preload/bench.tests" "the tests redis-benchmark completed"
same "$tmp/glibc/replies" "$tmp/preload/replies" "redis-cli's replies"

if [ -n "$lib" ]; then
    check_bindings "$tmp/preload/ld" redis-server:1 redis-cli:3 redis-benchmark:1
else
    echo "$name: no preload library given: glibc against glibc"
fi
echo "$name: PASS ($(wc -l <"$tmp/preload/bench.out") benchmark tests, $(wc -l <"$tmp/expected") replies exact, clean shutdown) in ${SECONDS}s"
