#!/usr/bin/env bash
# tests/programs/sqlite.sh - owns the sqlite3 real-program test: the
# sqlite3 shell runs one scripted workload on a file database, once with
# glibc's malloc and once with the library given as $1 preloaded.
#
# The workload: a 16 MiB page cache, WAL journal, a table filled with 100k
# rows of variable-length text in one transaction by a recursive CTE, two
# indexes, aggregates, a full sort, a window function, a join, an update
# and a delete in a transaction, a temporary table, a SHA3 hash of every
# row, integrity_check, a WAL checkpoint and VACUUM.
#
# It checks that
#   - both runs exit 0 and print exactly the same output (stdout and
#     stderr), and that output has the row counts this script expects and
#     integrity_check's "ok";
#   - the database files both runs leave after VACUUM are byte-identical;
#   - the preload was real: the dynamic linker's binding log (LD_DEBUG)
#     shows sqlite3's malloc bound to the library, and no process bound any
#     of the malloc family (malloc free calloc realloc aligned_alloc
#     memalign posix_memalign pvalloc valloc malloc_usable_size) elsewhere.
#
# Usage: bash tests/programs/sqlite.sh PRELOAD-LIBRARY
#   PRELOAD-LIBRARY ""  runs glibc against glibc (checks the script itself)
# Exit status: 0 pass, 1 fail (one line "sqlite: FAIL: reason" on stderr),
# 2 usage, 77 skipped (sqlite3 is not installed).
set -euo pipefail
set -o errtrace # the ERR trap below also fires inside functions

name=sqlite
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

sqlite3=$(command -v sqlite3) || skip "sqlite3 is not installed (Debian package sqlite3)"

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

cat >"$tmp/workload.sql" <<'EOF'
.bail on
.headers off
.mode list
PRAGMA page_size = 4096;
PRAGMA cache_size = -16384;
PRAGMA journal_mode = WAL;
CREATE TABLE item(
    id INTEGER PRIMARY KEY,
    grp INTEGER NOT NULL,
    name TEXT NOT NULL,
    qty INTEGER NOT NULL,
    price REAL NOT NULL,
    note TEXT
);
BEGIN;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000)
INSERT INTO item(id, grp, name, qty, price, note)
SELECT x,
       (x * 7919) % 1000,
       printf('item-%07d-%s', (x * 104729) % 1000003, hex(x)),
       (x * 31) % 97,
       ((x * 17) % 10007) / 100.0,
       CASE WHEN x % 10 = 0 THEN NULL
            ELSE replace(printf('%.*c', x % 61, 'x'), 'x', 'ab') || hex(x * x) END
FROM n;
COMMIT;
CREATE INDEX item_grp ON item(grp, qty);
CREATE UNIQUE INDEX item_name ON item(name);
SELECT 'rows', count(*), sum(grp), sum(qty), printf('%.2f', sum(price)), count(note), sum(length(note)) FROM item;
SELECT 'grp', grp, count(*), sum(qty), printf('%.4f', avg(price)) FROM item
    GROUP BY grp ORDER BY count(*) DESC, grp LIMIT 5;
SELECT 'name', name FROM item ORDER BY name LIMIT 3;
SELECT 'qty', qty, count(DISTINCT grp) FROM item GROUP BY qty ORDER BY qty LIMIT 5;
SELECT 'sort', group_concat(id) FROM (SELECT id FROM item ORDER BY price DESC, note, id LIMIT 12);
SELECT 'rank', grp, id, rnk FROM (
    SELECT grp, id, rank() OVER (PARTITION BY grp ORDER BY price DESC, id) AS rnk FROM item)
    WHERE rnk <= 2 AND grp < 4 ORDER BY grp, rnk;
SELECT 'join', count(*), sum(b.id % 1000) FROM item a JOIN item b ON b.grp = a.grp AND b.qty = a.qty + 1
    WHERE a.id <= 3000;
BEGIN;
UPDATE item SET price = price * 2, note = upper(coalesce(note, 'none')) WHERE grp % 3 = 0;
DELETE FROM item WHERE id % 5 = 0 OR qty = 0;
COMMIT;
SELECT 'after', count(*), sum(grp), printf('%.2f', sum(price)), sum(length(note)) FROM item;
SELECT 'range', grp, count(*) FROM item WHERE grp BETWEEN 10 AND 14 GROUP BY grp ORDER BY grp;
CREATE TEMP TABLE agg AS SELECT grp, sum(price) AS total, group_concat(name, ',') AS names FROM item GROUP BY grp;
SELECT 'agg', count(*), printf('%.2f', max(total)), printf('%.2f', min(total)), max(length(names)) FROM agg;
SELECT 'json', json_group_array(id) FROM (SELECT id FROM item WHERE grp = 42 ORDER BY id LIMIT 8);
SELECT 'sha3', hex(sha3_query('SELECT * FROM item ORDER BY id'));
SELECT 'integrity', * FROM pragma_integrity_check;
PRAGMA wal_checkpoint(TRUNCATE);
PRAGMA journal_mode = DELETE;
VACUUM;
SELECT 'final', count(*), max(id) FROM item;
EOF

# One run of the workload in $tmp/MODE: its output, stderr and status.
run() { # MODE (glibc or preload)
    local mode=$1 dir=$tmp/$1 rc=0
    local -a pre=()
    mkdir -p "$dir/ld"
    if [ "$mode" = preload ] && [ -n "$lib" ]; then
        pre=(env LD_PRELOAD="$lib" "LD_DEBUG=bindings,files" LD_DEBUG_OUTPUT="$dir/ld/ld")
    fi
    (cd "$dir" && timeout -k 5 60 "${pre[@]}" "$sqlite3" -batch work.db \
        <"$tmp/workload.sql" >"$dir/out" 2>"$dir/err") || rc=$?
    echo "$rc" >"$dir/rc"
    [ "$rc" -ne 124 ] || fail "sqlite3 ($mode) did not finish within 60 s"
    [ "$rc" -eq 0 ] || { tail -n 5 "$dir/err" >&2; fail "sqlite3 ($mode) exited with status $rc"; }
}

run glibc
run preload
same "$tmp/glibc/rc" "$tmp/preload/rc" "the exit status"
same "$tmp/glibc/out" "$tmp/preload/out" "sqlite3's output"
same "$tmp/glibc/err" "$tmp/preload/err" "sqlite3's stderr"
cmp -s "$tmp/glibc/work.db" "$tmp/preload/work.db" ||
    fail "the database files left by the two runs differ"

# What the workload must have printed, whatever the allocator.
out=$tmp/preload/out
grep -qx 'wal' "$out" || fail "journal_mode=WAL was not taken (no 'wal' line)"
grep -qx 'rows|100000|49950000|4800114|5000007.82|90000|7118918' "$out" ||
    fail "the 100000 rows inserted are not the expected ones: $(grep '^rows' "$out" || echo 'no rows line')"
grep -qx 'integrity|ok' "$out" || fail "integrity_check did not answer ok: $(grep '^integrity' "$out" | head -n1)"
grep -qx 'final|79176|99999' "$out" || fail "unexpected count after the update and delete: $(grep '^final' "$out" || echo 'no final line')"
[ "$(grep -c '^grp|' "$out")" -eq 5 ] || fail "the GROUP BY query did not print 5 rows"
[ ! -s "$tmp/preload/err" ] || fail "sqlite3 wrote to stderr: $(head -n1 "$tmp/preload/err")"

if [ -n "$lib" ]; then
    check_bindings "$tmp/preload/ld" sqlite3:1
else
    echo "$name: no preload library given: glibc against glibc"
fi
echo "$name: PASS ($(wc -l <"$out") lines of output identical, database files identical) in ${SECONDS}s"
