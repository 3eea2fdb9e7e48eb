#!/usr/bin/env bash
# bench/plot_smoke.sh - owns the bench_plot_smoke test: runs bench/plot.sh
# on the tiny CSVs in bench/testdata/ into a temporary directory and checks
# that cache.png, malloc-time.png and malloc-rss.png are there and are PNG
# files (their first 8 bytes).  Exits 77 (skipped) when gnuplot is not
# installed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! command -v gnuplot >/dev/null 2>&1; then
    echo "plot_smoke: gnuplot is not installed (Debian: gnuplot-nox); skipped"
    exit 77
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bash "$here/plot.sh" --cache-csv "$here/testdata/cache.csv" \
    --malloc-csv "$here/testdata/malloc.csv" --out "$out/charts"

status=0
for png in cache.png malloc-time.png malloc-rss.png; do
    f=$out/charts/$png
    if [ ! -s "$f" ]; then
        echo "plot_smoke: $png was not written" >&2
        status=1
        continue
    fi
    magic=$(od -An -tx1 -N8 "$f" | tr -d ' \n')
    if [ "$magic" != 89504e470d0a1a0a ]; then
        echo "plot_smoke: $png is not a PNG file (starts with $magic)" >&2
        status=1
        continue
    fi
    echo "plot_smoke: $png ok ($(wc -c < "$f") bytes)"
done
exit "$status"
