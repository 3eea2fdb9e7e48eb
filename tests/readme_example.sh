#!/bin/sh
# readme_example.sh README FILE - the code block README shows after the
# line "<!-- FILE -->" is FILE, byte for byte (FILE relative to the source
# root), so the example README gives is the one the tests build and run.
set -eu
readme=$1
file=$2
root=$(dirname "$readme")
awk -v mark="<!-- $file -->" '
    $0 == mark { found = 1; next }
    found == 1 && /^```/ { found = 2; next }
    found == 2 && /^```$/ { exit }
    found == 2 { print }
' "$readme" >"${TMPDIR:-/tmp}/readme_example.$$"
if cmp -s "${TMPDIR:-/tmp}/readme_example.$$" "$root/$file"; then
    rm -f "${TMPDIR:-/tmp}/readme_example.$$"
    echo "README shows $file as it is"
else
    diff -u "$root/$file" "${TMPDIR:-/tmp}/readme_example.$$" || true
    rm -f "${TMPDIR:-/tmp}/readme_example.$$"
    echo "README's copy of $file differs from the file"
    exit 1
fi
