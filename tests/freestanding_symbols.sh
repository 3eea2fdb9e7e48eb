#!/bin/sh
# freestanding_symbols.sh LIB.a - the freestanding library references no
# symbol from outside itself but memcpy, memmove, memset and memcmp (the
# four every freestanding C environment has) and the compiler's own
# runtime helpers (libgcc or compiler-rt: __popcountdi2 and the like).
# Sanitizer builds add their runtime's entry points (__asan_*, __tsan_*,
# __ubsan_*, __sanitizer_*), allowed there too.
set -eu
lib=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
nm -u "$lib" | awk 'NF == 2 {print $2}' | sort -u >"$dir/undefined"
nm --defined-only "$lib" | awk 'NF == 3 {print $3}' | sort -u >"$dir/defined"
comm -23 "$dir/undefined" "$dir/defined" >"$dir/outside"
echo "symbols $lib takes from outside itself:"
sed 's/^/  /' "$dir/outside"
bad=$(grep -v -x -e memcpy -e memmove -e memset -e memcmp -e _GLOBAL_OFFSET_TABLE_ "$dir/outside" |
      grep -v -e '^__popcount' -e '^__[a-z]*[sdt]i[0-9]$' -e '^__asan_' -e '^__tsan_' \
              -e '^__ubsan_' -e '^__sanitizer_' -e '^__msan_' || true)
if [ -n "$bad" ]; then
    echo "not allowed in a freestanding library:"
    echo "$bad" | sed 's/^/  /'
    exit 1
fi
echo "ok: nothing but memcpy/memmove/memset/memcmp and compiler runtime helpers"
