#!/usr/bin/env bash
# tests/tool_check.sh - runs tests/tool_uaf in one mode under a memory
# checker and checks the checker's report: what libslab's annotations
# (src/annotate.c) must make it see.
#
#   tool_check.sh memcheck VALGRIND TOOL_UAF MODE
#   tool_check.sh asan TOOL_UAF MODE        (TOOL_UAF built with ASan)
#
# memcheck: valgrind --error-exitcode=99 --leak-check=full
#   --errors-for-leak-kinds=definite; each error mode must exit 99 with
#   the error named and the stacks of the block's allocation and free
#   (the lines after "alloc'd" / "free'd") running from libslab's
#   annotation (annotate_*: the API reaches it by a tail call) to the
#   program's call, the leak mode with both lost blocks "definitely
#   lost", and clean with no error.
# asan: each error mode must stop with an AddressSanitizer report of a
#   use-after-poison (or heap-use-after-free) read, or write for
#   cache_overflow; clean must exit 0 with no report.
# Prints the report, then "tool_check: ok" or what was missing; exits 0
# or 1, or 77 (a skip) when valgrind cannot read the program's debug
# information (valgrind 3.19 and clang 14's DWARF 5).
set -uo pipefail

tool=$1
shift
case $tool in
    memcheck) valgrind=$1 prog=$2 mode=$3 ;;
    asan) prog=$1 mode=$2 ;;
    *) echo "tool_check: unknown tool $tool" >&2; exit 2 ;;
esac

out=$(mktemp)
trap 'rm -f "$out"' EXIT
if [ "$tool" = memcheck ]; then
    "$valgrind" --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --num-callers=30 "$prog" "$mode" >"$out" 2>&1
else
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 "$prog" "$mode" >"$out" 2>&1
fi
rc=$?
cat "$out"
echo "--- exit status $rc"

# valgrind 3.19 cannot read the DWARF 5 that clang 14 writes: a skip, not a failure
if [ "$tool" = memcheck ] && grep -q 'Possibly corrupted debuginfo file' "$out"; then
    echo "tool_check: skipped: valgrind cannot read this build's debug information"
    exit 77
fi

failed=0
fail() {
    echo "tool_check: $*"
    failed=1
}
want_exit() {
    [ "$rc" -eq "$1" ] || fail "exit status $rc, expected $1"
}
want() { # ERE
    grep -Eq -e "$1" "$out" || fail "no line matches: $1"
}
deny() { # ERE
    ! grep -Eq -e "$1" "$out" || fail "a line matches: $1"
}
# A line matching $2 among the stack lines that follow a line matching $1.
want_stack() {
    awk -v head="$1" -v frame="$2" '
        $0 ~ head { in_stack = 1; next }
        in_stack && /(at|by) 0x[0-9A-Fa-f]+:/ { if ($0 ~ frame) found = 1; next }
        { in_stack = 0 }
        END { exit !found }' "$out" ||
        fail "no frame matching '$2' in the stack after '$1'"
}

case $tool:$mode in
    memcheck:cache_uaf)
        want_exit 99
        want 'Invalid read of size 1'
        want '8 bytes inside a block of size 64 free'"'"'d'
        want_stack "free'd" 'annotate_cache_free'
        want_stack "free'd" 'cache_uaf \(tool_uaf\.c'
        want_stack "alloc'd" 'annotate_cache_alloc'
        want_stack "alloc'd" 'cache_uaf \(tool_uaf\.c'
        ;;
    memcheck:malloc_uaf)
        want_exit 99
        want 'Invalid read of size 1'
        want '40 bytes inside a block of size 100 free'"'"'d'
        want_stack "free'd" 'annotate_km_free'
        want_stack "free'd" 'malloc_uaf \(tool_uaf\.c'
        want_stack "alloc'd" 'annotate_(km|cache)_alloc'
        want_stack "alloc'd" 'malloc_uaf \(tool_uaf\.c'
        ;;
    memcheck:cache_overflow)
        want_exit 99
        want 'Invalid write of size 1'
        want '0 bytes after a block of size 64 alloc'"'"'d'
        want_stack "alloc'd" 'annotate_cache_alloc'
        want_stack "alloc'd" 'cache_overflow \(tool_uaf\.c'
        ;;
    memcheck:cache_leak)
        want_exit 99
        want '64 bytes in 1 blocks are definitely lost'
        want '100 bytes in 1 blocks are definitely lost'
        want 'definitely lost: 164 bytes in 2 blocks'
        want_stack 'definitely lost in loss record' 'annotate_(km|cache)_alloc'
        want_stack 'definitely lost in loss record' 'leak \(tool_uaf\.c'
        deny 'Invalid (read|write|free)'
        ;;
    memcheck:clean)
        want_exit 0
        want 'ERROR SUMMARY: 0 errors'
        want '^clean: '
        deny 'definitely lost: [1-9]'
        ;;
    asan:cache_uaf | asan:malloc_uaf)
        [ "$rc" -ne 0 ] || fail "exit status 0: the bad read went unseen"
        want 'ERROR: AddressSanitizer: (use-after-poison|heap-use-after-free)'
        want 'READ of size 1'
        deny '^read after free'
        ;;
    asan:cache_overflow)
        [ "$rc" -ne 0 ] || fail "exit status 0: the bad write went unseen"
        want 'ERROR: AddressSanitizer: use-after-poison'
        want 'WRITE of size 1'
        ;;
    asan:clean)
        want_exit 0
        want '^clean: '
        deny 'ERROR: AddressSanitizer'
        ;;
    *) fail "no expectations for $tool $mode" ;;
esac

if [ "$failed" -eq 0 ]; then
    echo "tool_check: ok"
fi
exit "$failed"
