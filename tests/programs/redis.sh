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
set -o errtrace # the ERR trap below also fires inside functions

name=redis
# A failure in the preloaded run names, on the same line, the first
# malloc-family binding that missed the library, if there is one.
fail() {
    local hint=
    if [ -n "${lib:-}" ] && [ -z "${failing:-}" ] && [ -n "${tmp:-}" ] &&
        compgen -G "$tmp/preload/ld/ld.*" >/dev/null; then
        failing=1
        hint=$(foreign_binding "$tmp/preload/ld" 2>/dev/null || true)
    fi
    echo "$name: FAIL: $*${hint:+ (and the preload is incomplete: $hint)}" >&2
    exit 1
}
skip() { echo "$name: SKIP: $*"; exit 77; }
trap 'fail "line $LINENO: exit status $? from: $BASH_COMMAND"' ERR
trap 'fail "stopped by a signal"' HUP INT TERM
[ $# -eq 1 ] || { echo "usage: bash $name.sh PRELOAD-LIBRARY (\"\" for glibc only)" >&2; exit 2; }
lib=$1
unset LD_PRELOAD LD_DEBUG LD_DEBUG_OUTPUT

redis_server=$(command -v redis-server) || skip "redis-server is not installed (Debian package redis-server)"
redis_cli=$(command -v redis-cli) || skip "redis-cli is not installed (Debian package redis-tools)"
redis_benchmark=$(command -v redis-benchmark) || skip "redis-benchmark is not installed (Debian package redis-tools)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/libslab-$name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The library as an absolute path, and proof that ld.so takes it.
if [ -n "$lib" ]; then
    [ -f "$lib" ] || fail "preload library not found: $lib"
    lib=$(cd "$(dirname "$lib")" && pwd -P)/$(basename "$lib")
    case $lib in *[[:space:]:]*) fail "LD_PRELOAD cannot take a path with a space or colon: $lib" ;; esac
    env LD_PRELOAD="$lib" true 2>"$tmp/preload.err"
    [ ! -s "$tmp/preload.err" ] || fail "ld.so does not preload $lib: $(head -n1 "$tmp/preload.err")"
fi

# The preload is proved from the dynamic linker's log of a run under
# LD_DEBUG=bindings,files (one file per process, ld.PID).  In every
# process, every binding of a malloc-family symbol must go to the library,
# or to an object whose own reference to that symbol went to the library
# (a non-PIE program's PLT entry, which is the function's address when the
# program takes it, as cc1 does for free); the library's own bindings are
# not checked (it may forward to glibc).  And for each EXE:MIN, at least
# MIN processes running EXE (a name, or a path ending in /EXE) must have
# bound malloc to the library.
malloc_family='malloc|free|calloc|realloc|aligned_alloc|memalign|posix_memalign|pvalloc|valloc|malloc_usable_size'
# The first binding of a malloc-family symbol, in any process logged in
# DIR, that missed the library: "OBJ bound SYM to TARGET", or nothing.
foreign_binding() { # DIR
    # "PID: binding file OBJ [0] to TARGET [0]: normal symbol `SYM' [VERSION]"
    awk -v lib="$lib" -v family="^($malloc_family)\$" '
        $2 == "binding" && $3 == "file" && $6 == "to" {
            sym = substr($11, 2, length($11) - 2)
            # Look-ups by the library itself (dlsym, RTLD_NEXT) are its business.
            if (sym !~ family || $4 == lib) next
            if ($7 == lib) to_lib[FILENAME, $4, sym] = 1
            else elsewhere[FILENAME, $7, sym] = $4
        }
        END {
            for (k in elsewhere) {
                split(k, a, SUBSEP)
                if (!((a[1], a[2], a[3]) in to_lib)) {
                    print elsewhere[k] " bound " a[3] " to " a[2]
                    exit
                }
            }
        }' "$1"/ld.*
}
check_bindings() { # DIR EXE:MIN...
    local dir=$1 bad f n exe min proved=()
    shift
    compgen -G "$dir/ld.*" >/dev/null ||
        fail "no binding log in $dir: ld.so ignored LD_DEBUG, so the preload cannot be proved"
    bad=$(foreign_binding "$dir")
    failing=1
    [ -z "$bad" ] || fail "$bad, not to the preloaded $lib"
    failing=
    for exe in "$@"; do
        min=${exe##*:}
        exe=${exe%:*}
        n=0
        for f in "$dir"/ld.*; do
            # A process's program is named by "transferring control: PROG";
            # the bindings before the first such line are its start-up.
            if awk -v lib="$lib" -v exe="$exe" '
                function is_exe(p) { return p == exe || substr(p, length(p) - length(exe)) == "/" exe }
                /\ttransferring control: / { cur = $NF; if (pending && is_exe(cur)) found = 1; pending = 0; next }
                index($0, " to " lib " [") && index($0, "normal symbol `malloc'"'"'") {
                    if (cur == "") pending = 1; else if (is_exe(cur)) found = 1
                }
                END { exit !found }' "$f"; then
                n=$((n + 1))
            fi
        done
        [ "$n" -ge "$min" ] || fail "$n $exe process(es) had malloc bound to $lib (expected at least $min)"
        proved+=("$exe x$n")
    done
    echo "$name: preload proved: malloc bound to $(basename "$lib") in ${proved[*]};" \
        "no malloc-family symbol bound elsewhere in any of $(compgen -G "$dir/ld.*" | wc -l) processes"
}
same() { # GLIBC-FILE PRELOAD-FILE WHAT
    cmp -s "$1" "$2" && return 0
    diff -u "$1" "$2" | head -n 20 >&2 || true
    fail "$3: the glibc and preload runs differ (diff above)"
}

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
    mkdir -p "$dir/ld"
    if [ "$mode" = preload ] && [ -n "$lib" ]; then
        pre=(env LD_PRELOAD="$lib" "LD_DEBUG=bindings,files" LD_DEBUG_OUTPUT="$dir/ld/ld")
    fi
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
