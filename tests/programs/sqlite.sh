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

name=sqlite
# From lib.sh: fail and skip, the traps, the argument as lib, setup,
# check_bindings and same.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sqlite3=$(command -v sqlite3) || skip "sqlite3 is not installed (Debian package sqlite3)"

setup # $tmp, and lib made absolute and seen to preload

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
    preload_prefix "$mode" "$dir"
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
