#!/usr/bin/env bash
# tests/programs/python.sh - owns the python real-program test: python3
# runs a slice of its own regression suite, the one Debian ships in
# libpython3.11-testsuite, once with glibc's malloc and once with the
# library given as $1 preloaded (the regrtest workers and every python
# the tests spawn inherit the preload).
#
#   python3 -m test -j2 test_list test_dict test_set test_unicode
#                       test_json test_threading test_re
#
# About 1440 test cases, 13 s with glibc on 2 CPUs; none of the seven
# modules has failed here under plain glibc, so none is left out.  The
# interpreter is the first python3 on PATH whose test package is Debian's
# (dpkg says libpython3*-testsuite owns test/test_list.py).  One of another
# origin earlier on PATH is passed over: its suite is another, and a pyenv
# build of 3.11.7, for one, fails test_threading's
# test_import_from_another_thread under plain glibc (its site-packages
# imports threading at start-up).
#
# It checks that
#   - both runs exit 0 with "Tests result: SUCCESS";
#   - the same test cases ran with the same outcome (pass or skip) in both
#     runs, from regrtest's JUnit XML, and there are over 1000 of them;
#   - the preload was real: the dynamic linker's binding log (LD_DEBUG)
#     shows malloc bound to the library in at least 3 python processes
#     (regrtest and its two workers, which run the tests), and no process
#     bound any of the malloc family (malloc free calloc realloc
#     aligned_alloc memalign posix_memalign pvalloc valloc
#     malloc_usable_size) elsewhere.
#
# Usage: bash tests/programs/python.sh PRELOAD-LIBRARY
#   PRELOAD-LIBRARY ""  runs glibc against glibc (checks the script itself)
# Exit status: 0 pass, 1 fail (one line "python: FAIL: reason" on stderr),
# 2 usage, 77 skipped (no python3 with Debian's regression suite).
set -euo pipefail

name=python
# From lib.sh: fail and skip, the traps, the argument as lib, setup,
# check_bindings and same.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tests=(test_list test_dict test_set test_unicode test_json test_threading test_re)
command -v python3 >/dev/null || skip "python3 is not installed (Debian package python3)"
command -v dpkg-query >/dev/null || skip "dpkg-query is not there to tell Debian's python3 test suite"
python=
for cand in $(type -ap python3 python3.11); do
    origin=$("$cand" -I -c 'import importlib.util as u; print(u.find_spec("test.test_list").origin)' 2>/dev/null) ||
        continue
    case $(dpkg-query -S "$origin" 2>/dev/null || true) in
        libpython3*-testsuite*) python=$cand; break ;;
    esac
done
[ -n "$python" ] || skip "no python3 on PATH has Debian's regression suite (Debian package libpython3.11-testsuite)"

setup # $tmp, and lib made absolute and seen to preload

# One run in $tmp/MODE: regrtest's output, its JUnit XML and its status.
run() { # MODE (glibc or preload)
    local mode=$1 dir=$tmp/$1 rc=0
    local -a pre=()
    mkdir -p "$dir/tmp"
    preload_prefix "$mode" "$dir"
    # -E: no PYTHON* variables from outside; -B: no .pyc files written
    # next to the installed suite (both pass on to the workers); --timeout:
    # a test file hung for 80 s fails with the tracebacks of its threads.
    (cd "$dir" && TMPDIR=$dir/tmp timeout -k 10 100 "${pre[@]}" "$python" -E -B -m test -j2 --timeout 80 \
        --junit-xml "$dir/junit.xml" "${tests[@]}" >"$dir/out" 2>&1) || rc=$?
    echo "$rc" >"$dir/rc"
    [ "$rc" -ne 124 ] || { tail -n 20 "$dir/out" >&2; fail "the regression tests ($mode) did not finish within 100 s"; }
    [ "$rc" -eq 0 ] || { tail -n 30 "$dir/out" >&2; fail "the regression tests ($mode) exited with status $rc (output above)"; }
    grep -q 'Tests result: SUCCESS' "$dir/out" ||
        fail "the regression tests ($mode) exited 0 without 'Tests result: SUCCESS'"
    # Every test case and its outcome, sorted.
    "$python" -I - "$dir/junit.xml" >"$dir/cases" <<'EOF'
import sys
import xml.etree.ElementTree as ET
cases = []
for tc in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    kinds = [child.tag for child in tc if child.tag in ("skipped", "failure", "error")]
    cases.append("%s %s" % (tc.get("name"), ",".join(kinds) or "ok"))
print("\n".join(sorted(cases)))
EOF
}

echo "$name: $python ($("$python" -c 'import sys; print(sys.version.split()[0])')): ${tests[*]}"
run glibc
run preload
same "$tmp/glibc/rc" "$tmp/preload/rc" "the exit status"
same "$tmp/glibc/cases" "$tmp/preload/cases" "the test cases run and their outcomes"

cases=$tmp/preload/cases
n=$(wc -l <"$cases")
[ "$n" -gt 1000 ] || fail "only $n test cases ran (expected over 1000)"
! grep -q -e ' failure' -e ' error' "$cases" ||
    fail "a test case failed: $(grep -e ' failure' -e ' error' "$cases" | head -n1)"
for t in "${tests[@]}"; do
    grep -q "^test\.$t\." "$cases" || fail "no test case of $t ran"
done

if [ -n "$lib" ]; then
    check_bindings "$tmp/preload/ld" "$(basename "$python")":3
else
    echo "$name: no preload library given: glibc against glibc"
fi
echo "$name: PASS ($n test cases, $(grep -c ' ok$' "$cases") passed and $(grep -c ' skipped$' "$cases") skipped in both runs) in ${SECONDS}s"
