# tests/programs/lib.sh - owns what the real-program tests (python.sh,
# sqlite.sh, redis.sh, git.sh, gcc.sh) share: bash's strict mode, failure
# and skip reporting (fail, skip, the ERR and signal traps), the argument
# check, the temporary directory, the check that ld.so takes the library,
# the proof of the preload from the dynamic linker's binding log
# (foreign_binding, check_bindings) and the comparison of the glibc and
# preload runs (same).
#
# Sourced, not executed, and by bash only.  A script sets name, the word
# its messages start with, and sources this file first, without arguments,
# so that the script's own ($1, the library or "") are the ones seen here:
#
#   name=python
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Sourcing it defines the functions below, installs the traps, exits 2
# with a usage line unless there is exactly one argument, sets lib to it
# and unsets LD_PRELOAD, LD_DEBUG and LD_DEBUG_OUTPUT.  The script then
# looks for its program (skip when it is missing) and only then calls
# setup, which makes $tmp (removed on exit) and turns lib into an absolute
# path that ld.so is seen to preload: a missing program is a skip whatever
# the argument.
#
#   fail REASON...  "NAME: FAIL: REASON" on stderr, exit 1
#   skip REASON...  "NAME: SKIP: REASON" on stdout, exit 77
#
# A command failing anywhere fails the test with its line number, which
# is this file's when the command is in one of the functions here.
# shellcheck shell=bash

[ "${BASH_SOURCE[0]}" != "$0" ] || { echo "${0##*/} is sourced by the test scripts, not run" >&2; exit 2; }
[ -n "${name:-}" ] || { echo "${BASH_SOURCE[0]}: set name before sourcing it" >&2; exit 2; }

set -euo pipefail
set -o errtrace # the ERR trap below also fires inside functions

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

# $tmp, removed on exit, and the library as an absolute path, with proof
# that ld.so takes it.  Called once the script has found its program.
setup() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/libslab-$name.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    if [ -n "$lib" ]; then
        [ -f "$lib" ] || fail "preload library not found: $lib"
        lib=$(cd "$(dirname "$lib")" && pwd -P)/$(basename "$lib")
        case $lib in *[[:space:]:]*) fail "LD_PRELOAD cannot take a path with a space or colon: $lib" ;; esac
        env LD_PRELOAD="$lib" true 2>"$tmp/preload.err"
        [ ! -s "$tmp/preload.err" ] || fail "ld.so does not preload $lib: $(head -n1 "$tmp/preload.err")"
    fi
}

# The command prefix of one run in MODE (glibc or preload), its ld.so log
# going to DIR/ld/: sets the caller's array `pre` (empty for glibc, or
# when no library was given).
preload_prefix() { # MODE DIR
    mkdir -p "$2/ld"
    pre=()
    if [ "$1" = preload ] && [ -n "$lib" ]; then
        # shellcheck disable=SC2034 # the caller's array
        pre=(env LD_PRELOAD="$lib" "LD_DEBUG=bindings,files" LD_DEBUG_OUTPUT="$2/ld/ld")
    fi
}

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
